/// The binary v2 format.
enum V2Parser {
    /// Checks the first up-to-16 bytes as far as they go. Returns `.needMoreData` if they are a
    /// valid beginning but fewer than 16, nil if the fixed part is complete and valid.
    static func checkFixedPart(_ b: [UInt8], bound: Int) throws(ProxyProtocolError) -> ProxyHeaderParser.ParseResult? {
        let signature = ProxyHeader.v2Signature
        for i in 0..<min(b.count, 12) where b[i] != signature[i] {
            throw ProxyProtocolError(.invalidSignature, "PROXY v2: bad signature: byte \(i) is 0x\(hexByte(b[i])), expected 0x\(hexByte(signature[i]))")
        }
        if b.count > 12 {
            let version = b[12] >> 4
            let command = b[12] & 0x0F
            guard version == 2 else {
                throw ProxyProtocolError(
                    .unsupportedVersion, "PROXY v2: version \(version) is not supported (byte 12 is 0x\(hexByte(b[12])), expected 0x20 or 0x21)")
            }
            guard command <= 1 else {
                throw ProxyProtocolError(.unsupportedCommand, "PROXY v2: unknown command \(command) (expected 0 LOCAL or 1 PROXY)")
            }
        }
        if b.count > 13, b[12] & 0x0F == ProxyHeader.Command.proxy.rawValue,
            ProxyHeader.Transport.addressLength(familyByte: b[13]) == nil
        {
            throw ProxyProtocolError(.unsupportedFamily, "PROXY v2: unknown address family/transport byte 0x\(hexByte(b[13]))")
        }
        guard b.count >= 16 else { return .needMoreData }
        let length = Int(b[14]) << 8 | Int(b[15])
        guard 16 + length <= bound else {
            throw ProxyProtocolError(.headerTooLong, "PROXY v2: header of 16 + \(length) bytes is longer than the maximum of \(bound)")
        }
        if b[12] & 0x0F == ProxyHeader.Command.proxy.rawValue, let needed = ProxyHeader.Transport.addressLength(familyByte: b[13]),
            length < needed
        {
            throw ProxyProtocolError(
                .addressLengthMismatch, "PROXY v2: address length \(length) too short for \(ProxyHeader.Transport.familyName(b[13])) (needs \(needed))")
        }
        return nil
    }

    /// Parses a header whose fixed part `checkFixedPart` accepted; `b` holds up to `total` bytes.
    static func parse(_ b: [UInt8], total: Int, verifyChecksum: Bool) throws(ProxyProtocolError) -> ProxyHeaderParser.ParseResult {
        guard b.count >= total else { return .needMoreData }
        let command: ProxyHeader.Command = b[12] & 0x0F == 0 ? .local : .proxy
        let family = b[13]
        var transport = ProxyHeader.Transport.unspecified
        var tlvStart = total  // LOCAL with an unknown family or a short block: all ignored
        if let addressLength = ProxyHeader.Transport.addressLength(familyByte: family), 16 + addressLength <= total {
            tlvStart = 16 + addressLength
            if command == .proxy { transport = addresses(b, family: family) }
        }
        let tlvs = try ProxyTLV.decodeList(b[tlvStart..<total], context: "PROXY v2")
        try validate(tlvs, header: b[0..<total], tlvStart: tlvStart, verifyChecksum: verifyChecksum)
        return .header(ProxyHeader(command: command, transport: transport, tlvs: tlvs), version: .v2, consumed: total)
    }

    private static func addresses(_ b: [UInt8], family: UInt8) -> ProxyHeader.Transport {
        func port(_ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
        func v4(_ at: Int) -> IPv4Address { IPv4Address(b[at], b[at + 1], b[at + 2], b[at + 3]) }
        func v6(_ at: Int) -> IPv6Address { IPv6Address(bytes: b[at..<(at + 16)]) ?? IPv6Address(ipv4Mapped: IPv4Address(0, 0, 0, 0)) }
        func path(_ at: Int) -> [UInt8] {
            var p = Array(b[at..<(at + ProxyHeader.maximumUnixPathLength)])
            while p.last == 0 { p.removeLast() }
            return p
        }
        switch family {
        case 0x11: return .tcp4(source: v4(16), sourcePort: port(24), destination: v4(20), destinationPort: port(26))
        case 0x12: return .udp4(source: v4(16), sourcePort: port(24), destination: v4(20), destinationPort: port(26))
        case 0x21: return .tcp6(source: v6(16), sourcePort: port(48), destination: v6(32), destinationPort: port(50))
        case 0x22: return .udp6(source: v6(16), sourcePort: port(48), destination: v6(32), destinationPort: port(50))
        case 0x31: return .unix(source: path(16), destination: path(124))
        case 0x32: return .unixDatagram(source: path(16), destination: path(124))
        default: return .unspecified
        }
    }

    /// Checks the TLVs whose layout the spec fixes: one CRC32C of 4 bytes that matches, an SSL
    /// TLV whose sub-TLVs fill it exactly, and a UNIQUE_ID of at most 128 bytes.
    private static func validate(
        _ tlvs: [ProxyTLV], header: ArraySlice<UInt8>, tlvStart: Int,
        verifyChecksum: Bool
    ) throws(ProxyProtocolError) {
        var offset = tlvStart
        var checksumAt: Int?
        for t in tlvs {
            switch t.type {
            case ProxyTLV.crc32cType:
                guard checksumAt == nil else {
                    throw ProxyProtocolError(.malformedTLV, "PROXY v2: more than one CRC32C TLV")
                }
                guard t.value.count == 4 else {
                    throw ProxyProtocolError(.malformedTLV, "PROXY v2: CRC32C TLV value is \(t.value.count) bytes (must be 4)")
                }
                checksumAt = offset + 3
            case ProxyTLV.sslType:
                guard t.value.count >= 5 else {
                    throw ProxyProtocolError(.malformedTLV, "PROXY v2: SSL TLV of \(t.value.count) bytes is shorter than 5 (client flags + verify)")
                }
                _ = try ProxyTLV.decodeList(t.value[5...], context: "PROXY v2: SSL TLV")
            case ProxyTLV.uniqueIDType:
                guard t.value.count <= ProxyTLV.maximumUniqueIDLength else {
                    throw ProxyProtocolError(.malformedTLV, "PROXY v2: UNIQUE_ID of \(t.value.count) bytes is longer than 128")
                }
            default:
                break
            }
            offset += 3 + t.value.count
        }
        guard verifyChecksum, let at = checksumAt else { return }
        let received = UInt32(header[at]) << 24 | UInt32(header[at + 1]) << 16 | UInt32(header[at + 2]) << 8 | UInt32(header[at + 3])
        var crc = CRC32C.update(0, header[..<at])
        crc = CRC32C.update(crc, [0, 0, 0, 0])
        crc = CRC32C.update(crc, header[(at + 4)...])
        guard crc == received else {
            throw ProxyProtocolError(.checksumMismatch, "PROXY v2: CRC32C TLV says 0x\(hex32(received)) but the header's checksum is 0x\(hex32(crc))")
        }
    }

    static func hex32(_ v: UInt32) -> String {
        hexByte(UInt8(v >> 24)) + hexByte(UInt8((v >> 16) & 0xFF)) + hexByte(UInt8((v >> 8) & 0xFF)) + hexByte(UInt8(v & 0xFF))
    }
}
