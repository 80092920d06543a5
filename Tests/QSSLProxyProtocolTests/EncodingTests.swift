import QSSLProxyProtocol
import Testing

/// Byte strings written out by hand from proxy-protocol.txt §2.2.
@Suite("Encoding: known answers")
struct EncodingTests {
    @Test("v2 PROXY TCP/IPv4, no TLVs")
    func v2TCP4() throws {
        let expected = bytes(
            """
            0d0a0d0a000d0a515549540a 21 11 000c \
            c0000201 c6336407 c822 01bb
            """)
        #expect(try ProxyHeader(transport: sampleTCP4).encodeV2() == expected)
    }

    @Test("v2 PROXY TCP/IPv4 with ALPN and a CRC32C computed over the header")
    func v2TCP4WithCRC() throws {
        // CRC-32C of the header with the checksum field zeroed, computed independently: 0x9ABB9E6C.
        let expected = bytes(
            """
            0d0a0d0a000d0a515549540a 21 11 0018 \
            c0000201 c6336407 c822 01bb \
            01 0002 6832 \
            03 0004 9abb9e6c
            """)
        let header = ProxyHeader(transport: sampleTCP4, tlvs: [.alpn(ascii("h2"))])
        #expect(try header.encodeV2(addingChecksum: true) == expected)
        // A CRC32C TLV already in the list (with any value) is recomputed in place.
        let withPlaceholder = ProxyHeader(transport: sampleTCP4, tlvs: [.alpn(ascii("h2")), ProxyTLV(type: 3, value: [1, 2, 3, 4])])
        #expect(try withPlaceholder.encodeV2() == expected)
        #expect(try withPlaceholder.encodeV2(addingChecksum: true) == expected)
        let (parsed, _, consumed) = try parseComplete(expected)
        #expect(consumed == expected.count)
        #expect(parsed.crc32c == 0x9ABB_9E6C)
        #expect(parsed.alpn == ascii("h2"))
    }

    @Test("v2 PROXY TCP/IPv6")
    func v2TCP6() throws {
        let expected = bytes(
            """
            0d0a0d0a000d0a515549540a 21 21 0024 \
            20010db8000000000000000000000001 \
            20010db8000000010000000000000443 \
            9c40 20fb
            """)
        #expect(try ProxyHeader(transport: sampleTCP6).encodeV2() == expected)
    }

    @Test("v2 UDP families use 0x12 and 0x22")
    func v2UDP() throws {
        guard case .tcp4(let s, let sp, let d, let dp) = sampleTCP4 else { return }
        let udp = try ProxyHeader(transport: .udp4(source: s, sourcePort: sp, destination: d, destinationPort: dp)).encodeV2()
        #expect(udp == v2(0x21, 0x12, tcp4Addresses))
    }

    @Test("v2 LOCAL: UNSPEC family, no addresses, whatever the transport says")
    func v2Local() throws {
        let expected = bytes("0d0a0d0a000d0a515549540a 20 00 0000")
        #expect(try ProxyHeader.local().encodeV2() == expected)
        #expect(try ProxyHeader(command: .local, transport: sampleTCP4).encodeV2() == expected)
    }

    @Test("v2 PROXY UNSPEC with a NOOP TLV")
    func v2Unspec() throws {
        let expected = bytes("0d0a0d0a000d0a515549540a 21 00 0005 04 0002 0000")
        #expect(try ProxyHeader(transport: .unspecified, tlvs: [.noop(count: 2)]).encodeV2() == expected)
    }

    @Test("v2 unix stream: two 108-byte zero-padded paths")
    func v2Unix() throws {
        let src = ascii("/run/client.sock")
        let dst = ascii("/run/qssl.sock")
        let body = src + [UInt8](repeating: 0, count: 108 - src.count) + dst + [UInt8](repeating: 0, count: 108 - dst.count)
        let expected = v2Signature + [0x21, 0x31, 0x00, 0xD8] + body
        #expect(try ProxyHeader(transport: .unix(source: src, destination: dst)).encodeV2() == expected)
        let dgram = try ProxyHeader(transport: .unixDatagram(source: src, destination: dst)).encodeV2()
        #expect(dgram[13] == 0x32)
    }

    @Test("v2 TLV wire form: type, 16-bit big-endian length, value")
    func v2TLVLayout() throws {
        let tlv = ProxyTLV(type: 0xE7, value: [UInt8](repeating: 0xAB, count: 0x0102))
        let out = try ProxyHeader(transport: .unspecified, tlvs: [tlv]).encodeV2()
        #expect(Array(out[14..<20]) == [0x01, 0x05, 0xE7, 0x01, 0x02, 0xAB])
        #expect(out.count == 16 + 3 + 0x0102)
    }

    @Test("v1 lines")
    func v1() throws {
        #expect(try ProxyHeader(transport: sampleTCP4).encodeV1() == ascii("PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n"))
        #expect(try ProxyHeader(transport: sampleTCP6).encodeV1() == ascii("PROXY TCP6 2001:db8::1 2001:db8:0:1::443 40000 8443\r\n"))
        #expect(try ProxyHeader.local().encodeV1() == ascii("PROXY UNKNOWN\r\n"))
        #expect(try ProxyHeader(transport: .unspecified).encodeV1() == ascii("PROXY UNKNOWN\r\n"))
        #expect(try ProxyHeader(transport: .unix(source: [1], destination: [2])).encodeV1() == ascii("PROXY UNKNOWN\r\n"))
        #expect(try ProxyHeader(transport: sampleTCP4).encode(.v1) == ascii("PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n"))
    }

    @Test("v1 worst case fits in 107 bytes")
    func v1Longest() throws {
        let a = try #require(IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        let line = try ProxyHeader(transport: .tcp6(source: a, sourcePort: 65535, destination: a, destinationPort: 65535)).encodeV1()
        #expect(line.count == 104)
        let m = IPv6Address(ipv4Mapped: IPv4Address(255, 255, 255, 255))
        #expect(try ProxyHeader(transport: .tcp6(source: m, sourcePort: 65535, destination: m, destinationPort: 65535)).encodeV1().count <= 107)
    }

    @Test("encoding errors say why")
    func encodingErrors() {
        let v1TLV = thrown { try ProxyHeader(transport: sampleTCP4, tlvs: [.alpn(ascii("h2"))]).encodeV1() }
        #expect(v1TLV?.kind == .cannotEncode)
        #expect(v1TLV?.message.contains("TLV") == true)

        let longPath = thrown { try ProxyHeader(transport: .unix(source: [UInt8](repeating: 0x41, count: 109), destination: [])).encodeV2() }
        #expect(longPath?.message.contains("109 bytes is longer than 108") == true)

        let bigTLV = thrown { try ProxyHeader(transport: .unspecified, tlvs: [ProxyTLV(type: 0xE1, value: [UInt8](repeating: 0, count: 65536))]).encodeV2() }
        #expect(bigTLV?.message.contains("65536 bytes") == true)

        let tooMuch = thrown {
            try ProxyHeader(transport: sampleTCP4, tlvs: [ProxyTLV(type: 0xE1, value: [UInt8](repeating: 0, count: 65535 - 3 - 12 + 1))]).encodeV2()
        }
        #expect(tooMuch?.kind == .cannotEncode)
        #expect(tooMuch?.message.contains("65536 bytes, more than 65535") == true)
        // Exactly 65535 bytes of addresses and TLVs is fine.
        #expect(
            thrown { try ProxyHeader(transport: sampleTCP4, tlvs: [ProxyTLV(type: 0xE1, value: [UInt8](repeating: 0, count: 65535 - 3 - 12))]).encodeV2() }
                == nil)

        let twoCRC = thrown {
            try ProxyHeader(transport: .unspecified, tlvs: [ProxyTLV(type: 3, value: [0, 0, 0, 0]), ProxyTLV(type: 3, value: [0, 0, 0, 0])]).encodeV2()
        }
        #expect(twoCRC?.message.contains("more than one CRC32C") == true)
        let shortCRC = thrown { try ProxyHeader(transport: .unspecified, tlvs: [ProxyTLV(type: 3, value: [0, 0])]).encodeV2() }
        #expect(shortCRC?.message.contains("CRC32C TLV value of 2 bytes") == true)

        let bigID = thrown { try ProxyTLV.uniqueID([UInt8](repeating: 1, count: 129)) }
        #expect(bigID?.message.contains("129 bytes is longer than 128") == true)
    }
}
