import QSSLProxyProtocol
import Testing

@Suite("Parsing: incremental and accepted forms")
struct ParserTests {
    static let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]

    static func samples() throws -> [([UInt8], ProxyHeader)] {
        let withTLVs = ProxyHeader(
            transport: sampleTCP6,
            tlvs: [
                .authority("example.com"), try .ssl(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256"), ProxyTLV(type: 0xEE, value: [1])
            ])
        return [
            (try ProxyHeader(transport: sampleTCP4).encodeV1(), ProxyHeader(transport: sampleTCP4)),
            (try ProxyHeader(transport: sampleTCP6).encodeV1(), ProxyHeader(transport: sampleTCP6)),
            (ascii("PROXY UNKNOWN\r\n"), ProxyHeader(transport: .unspecified)),
            (try ProxyHeader(transport: sampleTCP4).encodeV2(), ProxyHeader(transport: sampleTCP4)),
            (try withTLVs.encodeV2(), withTLVs),
            (try ProxyHeader.local().encodeV2(), ProxyHeader.local())
        ]
    }

    @Test("byte-at-a-time: needMoreData for every proper prefix, then the header and what follows")
    func byteAtATime() throws {
        for (wire, expected) in try Self.samples() {
            let input = wire + Self.clientHello
            let parser = ProxyHeaderParser()
            for n in 0..<wire.count {
                #expect(try parser.parse(input[..<n]) == .needMoreData, "prefix \(n) of \(wire.count)")
            }
            for n in wire.count...input.count {
                guard case .header(let h, _, let consumed) = try parser.parse(input[..<n]) else {
                    Issue.record("no header at \(n)")
                    continue
                }
                #expect(h == expected)
                #expect(consumed == wire.count)
            }
        }
    }

    @Test("feed(): buffers pieces and hands back the bytes after the header")
    func feed() throws {
        for (wire, expected) in try Self.samples() {
            let input = wire + Self.clientHello
            for chunk in [1, 2, 5, 17, 1000] {
                var parser = ProxyHeaderParser()
                var result: ProxyHeaderParser.FeedResult = .needMoreData
                var offset = 0
                while offset < input.count {
                    let piece = input[offset..<min(offset + chunk, input.count)]
                    offset += piece.count
                    result = try parser.feed(piece)
                    if case .header = result { break }
                }
                guard case .header(let h, _, let remaining) = result else {
                    Issue.record("no header with chunk \(chunk)")
                    continue
                }
                #expect(h == expected)
                #expect(remaining == Array(input[wire.count..<offset]))
            }
        }
    }

    @Test("feed() resets after an error")
    func feedError() throws {
        var parser = ProxyHeaderParser()
        #expect(thrown { try parser.feed([0x16]) }?.kind == .invalidSignature)
        #expect(try parser.feed(ascii("PROXY")) == .needMoreData)
    }

    @Test("accepted versions")
    func versions() throws {
        let v1 = try ProxyHeader(transport: sampleTCP4).encodeV1()
        let v2 = try ProxyHeader(transport: sampleTCP4).encodeV2()
        #expect(try parseComplete(v1, ProxyHeaderParser(accepting: .v1)).1 == .v1)
        #expect(try parseComplete(v2, ProxyHeaderParser(accepting: .v2)).1 == .v2)
        #expect(try parseComplete(v1, ProxyHeaderParser(accepting: .either)).1 == .v1)
        #expect(try parseComplete(v2, ProxyHeaderParser(accepting: .either)).1 == .v2)
        let noV1 = rejection(v1, ProxyHeaderParser(accepting: .v2))
        #expect(noV1?.kind == .invalidSignature)
        #expect(noV1?.message.contains("PROXY v1 header, which is not accepted") == true)
        let noV2 = rejection(v2, ProxyHeaderParser(accepting: .v1))
        #expect(noV2?.kind == .invalidSignature)
        #expect(noV2?.message.contains("PROXY v2 header, which is not accepted") == true)
        // Decided on the first byte alone.
        #expect(rejection([0x0D], ProxyHeaderParser(accepting: .v1)) != nil)
        #expect(rejection([UInt8(ascii: "P")], ProxyHeaderParser(accepting: .v2)) != nil)
    }

    @Test("LOCAL: addresses are ignored, TLVs after them are read")
    func localIgnoresAddresses() throws {
        let tlv = [UInt8(0x02), 0x00, 0x01, UInt8(ascii: "h")]
        let (h, _, n) = try parseComplete(v2(0x20, 0x11, tcp4Addresses + tlv))
        #expect(h == ProxyHeader(command: .local, transport: .unspecified, tlvs: [.authority("h")]))
        #expect(n == 16 + 12 + 4)
        // A LOCAL block too short for its family, or with an unassigned family, is ignored whole.
        #expect(try parseComplete(v2(0x20, 0x21, [1, 2, 3])).0 == ProxyHeader.local())
        #expect(try parseComplete(v2(0x20, 0x99, [1, 2, 3, 4, 5])).0 == ProxyHeader.local())
        #expect(try parseComplete(v2(0x20, 0x00, [])).0 == ProxyHeader.local())
    }

    @Test("v1 UNKNOWN ignores the rest of the line")
    func v1Unknown() throws {
        let line = ascii("PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n")
        let (h, _, n) = try parseComplete(line + [0x16])
        #expect(h == ProxyHeader(transport: .unspecified))
        #expect(n == line.count)
    }

    @Test("v1 accepts the longest legal line (107 bytes) and IPv6 in any valid text form")
    func v1Longest() throws {
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"  // 45 characters
        let line = ascii("PROXY TCP6 \(a) \(a) 65535 65535\r\n")
        #expect(line.count == 116)  // too long: the spec's 107 assumes the shortest forms
        #expect(rejection(line)?.message.contains("no CRLF within the first 107 bytes") == true)
        let unknown = ascii("PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n")
        #expect(unknown.count == 107)
        #expect(try parseComplete(unknown).2 == 107)
        let full = ascii("PROXY TCP6 2001:0DB8:0:0:0:0:0:1 ::FFFF:10.0.0.1 1 65535\r\n")
        let (h, _, _) = try parseComplete(full)
        #expect(
            h.transport
                == .tcp6(
                    source: IPv6Address("2001:db8::1")!, sourcePort: 1,
                    destination: IPv6Address(ipv4Mapped: IPv4Address(10, 0, 0, 1)), destinationPort: 65535))
    }

    @Test("unknown TLV types are kept in order; checksum verification can be turned off")
    func unknownTLVs() throws {
        let body = tcp4Addresses + [0xE9, 0, 2, 0xAA, 0xBB, 0x7F, 0, 0, 0xF1, 0, 1, 0x00]
        let (h, _, _) = try parseComplete(v2(0x21, 0x11, body))
        #expect(h.tlvs == [ProxyTLV(type: 0xE9, value: [0xAA, 0xBB]), ProxyTLV(type: 0x7F, value: []), ProxyTLV(type: 0xF1, value: [0])])
        let wrongCRC = v2(0x21, 0x11, tcp4Addresses + [0x03, 0, 4, 1, 2, 3, 4])
        #expect(rejection(wrongCRC)?.kind == .checksumMismatch)
        #expect(try parseComplete(wrongCRC, ProxyHeaderParser(verifiesChecksum: false)).0.crc32c == 0x0102_0304)
    }

    @Test("maximum header length is configurable and clamped")
    func maximum() throws {
        let big = try ProxyHeader(transport: sampleTCP4, tlvs: [.noop(count: 5000)]).encodeV2()
        #expect(rejection(big)?.kind == .headerTooLong)
        #expect(try parseComplete(big, ProxyHeaderParser(maximumHeaderLength: 65551)).2 == big.count)
        #expect(ProxyHeaderParser(maximumHeaderLength: 1).maximumHeaderLength == 16)
        #expect(ProxyHeaderParser(maximumHeaderLength: 1 << 20).maximumHeaderLength == 65551)
        let exact = try ProxyHeader(transport: .unspecified, tlvs: [.noop(count: 100 - 16 - 3)]).encodeV2()
        #expect(exact.count == 100)
        #expect(try parseComplete(exact, ProxyHeaderParser(maximumHeaderLength: 100)).2 == 100)
        #expect(rejection(exact, ProxyHeaderParser(maximumHeaderLength: 99))?.message == "PROXY v2: header of 16 + 84 bytes is longer than the maximum of 99")
    }
}
