import QSSLProxyProtocol
import Testing

@Suite("Rejections: every malformed header, as early as the bytes allow, saying why")
struct RejectionTests {
    /// Checks that `input` is rejected with `kind` and a message containing `why`, and that no
    /// shorter prefix than `decidedAt` bytes is rejected (it is undecided there) while the
    /// `decidedAt`-byte prefix already is.
    func expectRejected(
        _ input: [UInt8], _ kind: ProxyProtocolError.Kind, _ why: String, decidedAt: Int? = nil,
        parser: ProxyHeaderParser = ProxyHeaderParser(), sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = rejection(input, parser)
        #expect(error?.kind == kind, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error?.message.contains(why) == true, "message: \(error?.message ?? "none")", sourceLocation: sourceLocation)
        guard let decidedAt else { return }
        #expect(rejection(Array(input.prefix(decidedAt)), parser)?.kind == kind, "not rejected at \(decidedAt) bytes", sourceLocation: sourceLocation)
        for n in 0..<decidedAt {
            #expect((try? parser.parse(input.prefix(n))) == .needMoreData, "prefix \(n)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Signatures

    @Test("a TLS ClientHello is rejected on its first byte")
    func tlsClientHello() {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
        for p in [ProxyHeaderParser(accepting: .either), ProxyHeaderParser(accepting: .v1), ProxyHeaderParser(accepting: .v2)] {
            expectRejected(hello, .invalidSignature, "first byte 0x16 (a TLS handshake record", decidedAt: 1, parser: p)
        }
    }

    @Test("other first bytes")
    func otherFirstBytes() {
        expectRejected(ascii("GET / HTTP/1.1\r\n"), .invalidSignature, "first byte 0x47 (plain text", decidedAt: 1)
        expectRejected(ascii("proxy TCP4"), .invalidSignature, "first byte 0x70", decidedAt: 1)
        expectRejected([0x00], .invalidSignature, "expected \"PROXY \" (v1) or the v2 signature", decidedAt: 1)
    }

    @Test("v1 signature mismatches are caught at the first wrong byte")
    func v1Signature() {
        expectRejected(ascii("POST / HTTP/1.1\r\n"), .invalidSignature, "does not start with \"PROXY \" (byte 1 is 0x4F)", decidedAt: 2)
        expectRejected(ascii("PROXX TCP4"), .invalidSignature, "byte 4 is 0x58", decidedAt: 5)
        expectRejected(ascii("PROXY\tTCP4"), .invalidSignature, "byte 5 is 0x09", decidedAt: 6)
    }

    @Test("v2 signature mismatches are caught at the first wrong byte")
    func v2SignatureMismatch() {
        var bad = try! ProxyHeader(transport: sampleTCP4).encodeV2()
        bad[5] = 0x0A
        expectRejected(bad, .invalidSignature, "bad signature: byte 5 is 0x0A, expected 0x0D", decidedAt: 6)
        var bad11 = try! ProxyHeader(transport: sampleTCP4).encodeV2()
        bad11[11] = 0x0D
        expectRejected(bad11, .invalidSignature, "byte 11 is 0x0D, expected 0x0A", decidedAt: 12)
    }

    // MARK: v2 fixed part

    @Test("v2 unsupported versions and commands")
    func v2VersionCommand() {
        expectRejected(v2(0x11, 0x11, tcp4Addresses), .unsupportedVersion, "version 1 is not supported", decidedAt: 13)
        expectRejected(v2(0x31, 0x11, tcp4Addresses), .unsupportedVersion, "version 3 is not supported", decidedAt: 13)
        expectRejected(v2(0x22, 0x11, tcp4Addresses), .unsupportedCommand, "unknown command 2", decidedAt: 13)
        expectRejected(v2(0x2F, 0x11, tcp4Addresses), .unsupportedCommand, "unknown command 15", decidedAt: 13)
    }

    @Test("v2 unassigned family/transport bytes", arguments: [UInt8(0x01), 0x02, 0x10, 0x13, 0x23, 0x30, 0x33, 0x41, 0xFF])
    func v2Family(_ family: UInt8) {
        let hex = String(family, radix: 16, uppercase: true)
        expectRejected(
            v2(0x21, family, tcp4Addresses), .unsupportedFamily,
            "unknown address family/transport byte 0x\(hex.count == 1 ? "0" + hex : hex)", decidedAt: 14)
    }

    @Test("v2 address block too short for the family")
    func v2AddressLength() {
        expectRejected(
            v2(0x21, 0x11, Array(tcp4Addresses.prefix(7))), .addressLengthMismatch,
            "PROXY v2: address length 7 too short for TCP/IPv4 (needs 12)", decidedAt: 16)
        expectRejected(v2(0x21, 0x12, []), .addressLengthMismatch, "address length 0 too short for UDP/IPv4", decidedAt: 16)
        expectRejected(v2(0x21, 0x21, tcp4Addresses), .addressLengthMismatch, "address length 12 too short for TCP/IPv6 (needs 36)", decidedAt: 16)
        expectRejected(v2(0x21, 0x22, [UInt8](repeating: 0, count: 35)), .addressLengthMismatch, "35 too short for UDP/IPv6", decidedAt: 16)
        expectRejected(v2(0x21, 0x31, [UInt8](repeating: 0, count: 215)), .addressLengthMismatch, "215 too short for UNIX stream (needs 216)", decidedAt: 16)
        expectRejected(v2(0x21, 0x32, [UInt8](repeating: 0, count: 108)), .addressLengthMismatch, "108 too short for UNIX datagram", decidedAt: 16)
    }

    @Test("v2 header longer than the maximum is rejected on its length field")
    func v2TooLong() {
        let header = v2Signature + [0x21, 0x11, 0x10, 0x00]  // 16 + 4096
        expectRejected(header, .headerTooLong, "header of 16 + 4096 bytes is longer than the maximum of 4096", decidedAt: 16)
        let max = v2Signature + [0x21, 0x11, 0xFF, 0xFF]
        expectRejected(
            max, .headerTooLong, "16 + 65535 bytes is longer than the maximum of 200", decidedAt: 16,
            parser: ProxyHeaderParser(maximumHeaderLength: 200))
        // At the protocol maximum the parser waits for the bytes.
        #expect((try? ProxyHeaderParser(maximumHeaderLength: 65551).parse(max)) == .needMoreData)
    }

    // MARK: v2 TLVs

    @Test("v2 truncated and overlong TLVs")
    func v2TLVs() {
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x01]), .malformedTLV, "truncated TLV header (1 byte left")
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x01, 0x00]), .malformedTLV, "truncated TLV header (2 bytes left")
        expectRejected(
            v2(0x21, 0x11, tcp4Addresses + [0x02, 0x00, 0x05, 0x61, 0x62]), .malformedTLV,
            "AUTHORITY TLV length 5 overruns the 2 bytes left")
        expectRejected(v2(0x21, 0x00, [0xE4, 0xFF, 0xFF]), .malformedTLV, "0xE4 TLV length 65535 overruns the 0 bytes left")
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x04, 0, 0, 0x05, 0, 1]), .malformedTLV, "UNIQUE_ID TLV length 1 overruns the 0 bytes left")
    }

    @Test("v2 TLVs with a fixed layout are checked")
    func v2KnownTLVs() {
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x03, 0, 3, 1, 2, 3]), .malformedTLV, "CRC32C TLV value is 3 bytes (must be 4)")
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x03, 0, 4, 0, 0, 0, 0, 0x03, 0, 4, 0, 0, 0, 0]), .malformedTLV, "more than one CRC32C TLV")
        expectRejected(v2(0x21, 0x11, tcp4Addresses + [0x20, 0, 4, 1, 0, 0, 0]), .malformedTLV, "SSL TLV of 4 bytes is shorter than 5")
        expectRejected(
            v2(0x21, 0x11, tcp4Addresses + [0x20, 0, 8, 1, 0, 0, 0, 0, 0x21, 0, 9]), .malformedTLV,
            "SSL TLV: 0x21 TLV length 9 overruns the 0 bytes left")
        expectRejected(
            v2(0x21, 0x11, tcp4Addresses + [0x05, 0, 129] + [UInt8](repeating: 1, count: 129)), .malformedTLV,
            "UNIQUE_ID of 129 bytes is longer than 128")
        #expect(rejection(v2(0x21, 0x11, tcp4Addresses + [0x05, 0, 128] + [UInt8](repeating: 1, count: 128))) == nil)
    }

    @Test("v2 CRC32C that does not match")
    func v2Checksum() throws {
        var wire = try ProxyHeader(transport: sampleTCP4, tlvs: [.authority("example.com")]).encodeV2(addingChecksum: true)
        #expect(rejection(wire) == nil)
        wire[20] ^= 0x01  // corrupt a destination address byte
        expectRejected(wire, .checksumMismatch, "CRC32C TLV says 0x")
        var crcByte = try ProxyHeader(transport: sampleTCP4).encodeV2(addingChecksum: true)
        crcByte[crcByte.count - 1] ^= 0x80
        expectRejected(crcByte, .checksumMismatch, "but the header's checksum is 0x")
    }

    // MARK: v1

    @Test("v1 line endings and length")
    func v1Lines() {
        expectRejected(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), .malformedV1, "LF at byte 30 without a preceding CR")
        expectRejected(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), .malformedV1, "CR at byte 30 is not followed by LF")
        expectRejected(ascii("PROXY UNKNOWN " + String(repeating: "x", count: 200)), .malformedV1, "no CRLF within the first 107 bytes", decidedAt: 107)
        expectRejected(ascii("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n"), .malformedV1, "no CRLF within the first 107 bytes")
        expectRejected(ascii("PROXY TCP4 1.2.3.4") + [0xC3, 0xA9], .malformedV1, "byte 18 is 0xC3, not printable US-ASCII", decidedAt: 19)
        expectRejected(ascii("PROXY TCP4 1.2.3.4\0"), .malformedV1, "byte 18 is 0x00", decidedAt: 19)
    }

    @Test("v1 protocol word is checked before the line ends")
    func v1Protocol() {
        expectRejected(ascii("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), .malformedV1, "unknown protocol \"TCP5", decidedAt: 10)
        expectRejected(ascii("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), .malformedV1, "unknown protocol \"UD", decidedAt: 8)
        expectRejected(ascii("PROXY UNKNOWNX"), .malformedV1, "unknown protocol \"UNKNOWNX\"", decidedAt: 14)
        expectRejected(ascii("PROXY TCP4\t"), .malformedV1, "unknown protocol \"TCP4\"", decidedAt: 11)
        for valid in ["PROXY TCP", "PROXY TCP6", "PROXY TCP4 ", "PROXY UNKNOWN", "PROXY UNKNOWN ", "PROXY UNKNOWN\r"] {
            #expect((try? ProxyHeaderParser().parse(ascii(valid))) == .needMoreData, "\(valid)")
        }
        expectRejected(ascii("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), .malformedV1, "unknown protocol", decidedAt: 7)
        expectRejected(ascii("PROXY TCP4\r\n"), .malformedV1, "TCP4 line must be \"PROXY TCP4 <src> <dst> <srcport> <dstport>\"")
        expectRejected(ascii("PROXY UNKNOWNX\r\n"), .malformedV1, "unknown protocol \"UNKNOWNX\"")
        expectRejected(ascii("PROXY \r\n"), .malformedV1, "unknown protocol \"\"")
        expectRejected(ascii("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), .malformedV1, "unknown protocol", decidedAt: 7)
    }

    @Test("v1 field counts and spacing")
    func v1Fields() {
        let why = "line must be \"PROXY TCP4 <src> <dst> <srcport> <dstport>\" with single spaces"
        expectRejected(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), .malformedV1, why)
        expectRejected(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), .malformedV1, why)
        expectRejected(ascii("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), .malformedV1, why)
        expectRejected(ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), .malformedV1, why)
    }

    @Test(
        "v1 bad addresses",
        arguments: [
            ("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "bad source address \"01.2.3.4\" for TCP4"),
            ("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", "bad destination address \"5.6.7.256\" for TCP4 (not a valid IPv4 address)"),
            ("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad source address \"::1\" for TCP4"),
            ("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad source address \"1.2.3.4\" for TCP6 (not a valid IPv6 address)"),
            ("PROXY TCP6 ::1 ::g 1 2\r\n", "bad destination address \"::g\" for TCP6"),
            ("PROXY TCP6 [::1] ::1 1 2\r\n", "bad source address \"[::1]\""),
            ("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad source address \"fe80::1%eth0\"")
        ])
    func v1Addresses(_ line: String, _ why: String) {
        expectRejected(ascii(line), .malformedV1, why)
    }

    @Test(
        "v1 bad ports",
        arguments: [
            ("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", "bad source port \"080\""),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 80 0443\r\n", "bad destination port \"0443\""),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n", "bad source port \"65536\" (must be 0-65535 in decimal, no leading zeros)"),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 1 999999\r\n", "bad destination port \"999999\""),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad source port \"-1\""),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad source port \"+1\""),
            ("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", "bad source port \"0x10\""),
            ("PROXY TCP6 ::1 ::2 00 2\r\n", "bad source port \"00\"")
        ])
    func v1Ports(_ line: String, _ why: String) {
        expectRejected(ascii(line), .malformedV1, why)
    }

    @Test("v1 boundary values are accepted")
    func v1Boundaries() throws {
        let (h, _, _) = try parseComplete(ascii("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"))
        #expect(
            h.transport
                == .tcp4(
                    source: IPv4Address(0, 0, 0, 0), sourcePort: 0,
                    destination: IPv4Address(255, 255, 255, 255), destinationPort: 65535))
    }
}
