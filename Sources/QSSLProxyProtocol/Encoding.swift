extension ProxyHeader {
    /// The header in the binary v2 format.
    ///
    /// A LOCAL header is written with family UNSPEC and no addresses, whatever `transport`
    /// says (the receiver ignores them). Any CRC32C TLV in `tlvs` gets its value recomputed over
    /// the finished header (with the checksum field zeroed, as the spec says); with
    /// `addingChecksum`, a CRC32C TLV is appended if there is none.
    ///
    /// Throws if a unix path is longer than 108 bytes, a TLV value is longer than 65535 bytes,
    /// the addresses and TLVs together exceed 65535 bytes, or a CRC32C TLV is malformed or
    /// repeated.
    public func encodeV2(addingChecksum: Bool = false) throws(ProxyProtocolError) -> [UInt8] {
        let transport = command == .local ? Transport.unspecified : self.transport
        var out = ProxyHeader.v2Signature
        out.append(0x20 | command.rawValue)
        out.append(transport.familyByte)
        out += [0, 0]  // length, filled in below
        func port(_ p: UInt16) -> [UInt8] { [UInt8(p >> 8), UInt8(p & 0xFF)] }
        func path(_ p: [UInt8], _ which: String) throws(ProxyProtocolError) -> [UInt8] {
            guard p.count <= ProxyHeader.maximumUnixPathLength else {
                throw ProxyProtocolError(.cannotEncode, "PROXY v2: unix \(which) path of \(p.count) bytes is longer than 108")
            }
            return p + [UInt8](repeating: 0, count: ProxyHeader.maximumUnixPathLength - p.count)
        }
        switch transport {
        case .unspecified: break
        case .tcp4(let s, let sp, let d, let dp), .udp4(let s, let sp, let d, let dp):
            out += s.bytes + d.bytes + port(sp) + port(dp)
        case .tcp6(let s, let sp, let d, let dp), .udp6(let s, let sp, let d, let dp):
            out += s.bytes + d.bytes + port(sp) + port(dp)
        case .unix(let s, let d), .unixDatagram(let s, let d):
            out += try path(s, "source") + path(d, "destination")
        }

        var tlvs = self.tlvs
        let checksums = tlvs.indices.filter { tlvs[$0].type == ProxyTLV.crc32cType }
        guard checksums.count <= 1 else {
            throw ProxyProtocolError(.cannotEncode, "PROXY v2: more than one CRC32C TLV")
        }
        if addingChecksum, checksums.isEmpty { tlvs.append(ProxyTLV(type: ProxyTLV.crc32cType, value: [0, 0, 0, 0])) }
        var checksumOffset: Int?
        for (i, t) in tlvs.enumerated() where t.type == ProxyTLV.crc32cType {
            guard t.value.count == 4 else {
                throw ProxyProtocolError(.cannotEncode, "PROXY v2: CRC32C TLV value of \(t.value.count) bytes (must be 4)")
            }
            tlvs[i].value = [0, 0, 0, 0]
            // Offset of this TLV's value: the header so far plus the TLVs before it.
            checksumOffset = out.count + tlvs[..<i].reduce(0) { $0 + 3 + $1.value.count } + 3
        }
        try ProxyTLV.encode(tlvs, into: &out, context: "PROXY v2")
        let length = out.count - 16
        guard length <= 0xFFFF else {
            throw ProxyProtocolError(.cannotEncode, "PROXY v2: addresses and TLVs take \(length) bytes, more than 65535")
        }
        out[14] = UInt8(length >> 8)
        out[15] = UInt8(length & 0xFF)
        if let at = checksumOffset {
            let crc = CRC32C.checksum(out)
            out[at] = UInt8(crc >> 24)
            out[at + 1] = UInt8((crc >> 16) & 0xFF)
            out[at + 2] = UInt8((crc >> 8) & 0xFF)
            out[at + 3] = UInt8(crc & 0xFF)
        }
        return out
    }

    /// The header as a v1 text line, e.g. "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n".
    ///
    /// v1 carries only TCP over IPv4 and IPv6: a LOCAL header, `.unspecified`, and UDP or unix
    /// transports are written "PROXY UNKNOWN\r\n" (the spec's form for anything else; the
    /// receiver then uses the real connection endpoints). IPv6 addresses use the RFC 5952
    /// form. Throws if there are TLVs, which v1 cannot carry.
    public func encodeV1() throws(ProxyProtocolError) -> [UInt8] {
        guard tlvs.isEmpty else {
            throw ProxyProtocolError(.cannotEncode, "PROXY v1 cannot carry TLVs (\(tlvs.count) given); use v2")
        }
        var line = "PROXY UNKNOWN"
        if command == .proxy {
            switch transport {
            case .tcp4(let s, let sp, let d, let dp): line = "PROXY TCP4 \(s) \(d) \(sp) \(dp)"
            case .tcp6(let s, let sp, let d, let dp): line = "PROXY TCP6 \(s) \(d) \(sp) \(dp)"
            default: break
            }
        }
        let out = Array(line.utf8) + [0x0D, 0x0A]
        guard out.count <= ProxyHeader.maximumV1Length else {  // cannot happen: 104 at most
            throw ProxyProtocolError(.cannotEncode, "PROXY v1: line of \(out.count) bytes is longer than 107")
        }
        return out
    }

    /// The header in `version`'s format (see `encodeV1()` and `encodeV2(addingChecksum:)`).
    public func encode(_ version: Version, addingChecksum: Bool = false) throws(ProxyProtocolError) -> [UInt8] {
        switch version {
        case .v1: try encodeV1()
        case .v2: try encodeV2(addingChecksum: addingChecksum)
        }
    }
}
