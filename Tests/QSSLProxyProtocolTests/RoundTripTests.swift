import QSSLProxyProtocol
import Testing

@Suite("Round trips")
struct RoundTripTests {
    static let transports: [ProxyHeader.Transport] = [
        sampleTCP4, sampleTCP6, .unspecified,
        .udp4(source: IPv4Address(10, 0, 0, 1), sourcePort: 53, destination: IPv4Address(10, 0, 0, 2), destinationPort: 5353),
        .udp6(source: IPv6Address("::1")!, sourcePort: 0, destination: IPv6Address("::ffff:10.1.2.3")!, destinationPort: 65535),
        .unix(source: ascii("/var/run/a.sock"), destination: ascii("/var/run/b.sock")),
        .unix(source: [0] + ascii("abstract"), destination: []),  // abstract socket: leading NUL kept
        .unix(source: [UInt8](repeating: 0x61, count: 108), destination: [UInt8](repeating: 0x62, count: 108)),
        .unixDatagram(source: ascii("/tmp/d1"), destination: ascii("/tmp/d2"))
    ]

    @Test("v2 PROXY round-trips every transport", arguments: transports)
    func v2(_ transport: ProxyHeader.Transport) throws {
        let header = ProxyHeader(transport: transport)
        let wire = try header.encodeV2()
        let (parsed, version, consumed) = try parseComplete(wire)
        #expect(parsed == header)
        #expect(version == .v2)
        #expect(consumed == wire.count)
    }

    @Test("v2 LOCAL round-trips, with and without TLVs")
    func v2Local() throws {
        for header in [ProxyHeader.local(), ProxyHeader.local(tlvs: [.authority("health.example"), .noop(count: 3)])] {
            let (parsed, _, _) = try parseComplete(try header.encodeV2())
            #expect(parsed == header)
        }
    }

    @Test("v1 round-trips TCP4, TCP6 and UNKNOWN")
    func v1() throws {
        for transport in [
            sampleTCP4, sampleTCP6, .unspecified,
            .tcp4(source: IPv4Address(0, 0, 0, 0), sourcePort: 0, destination: IPv4Address(255, 255, 255, 255), destinationPort: 65535),
            .tcp6(source: IPv6Address("::")!, sourcePort: 1, destination: IPv6Address("::ffff:1.2.3.4")!, destinationPort: 2)
        ] {
            let header = ProxyHeader(transport: transport)
            let wire = try header.encodeV1()
            let (parsed, version, consumed) = try parseComplete(wire)
            #expect(parsed == header)
            #expect(version == .v1)
            #expect(consumed == wire.count)
        }
        // LOCAL has no v1 form: it is sent as UNKNOWN, which reads back as PROXY + unspecified.
        let (local, _, _) = try parseComplete(try ProxyHeader.local().encodeV1())
        #expect(local == ProxyHeader(command: .proxy, transport: .unspecified))
    }

    @Test("v2 with every standard TLV, the SSL TLV and the Q-SSL TLV, with a checksum")
    func v2AllTLVs() throws {
        let ssl = try ProxyTLV.ssl(
            version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384",
            clientCertificate: .presented(verified: true), commonName: "client.example",
            signatureAlgorithm: "ML-DSA-65", keyAlgorithm: "ML-DSA-65",
            group: "X25519MLKEM768", signatureScheme: "mldsa65")
        let qssl = try ProxyTLV.qssl(.init(groupCodePoint: 0x11EC, groupName: "X25519MLKEM768", postQuantum: true, resumed: false))
        let header = ProxyHeader(
            transport: sampleTCP6,
            tlvs: [
                .alpn(ascii("h2")), .authority("www.example.com"), try .uniqueID([UInt8](repeating: 7, count: 128)),
                ssl, .netns("blue"), qssl, .noop(count: 4), ProxyTLV(type: 0xF3, value: ascii("experimental"))
            ])
        let wire = try header.encodeV2(addingChecksum: true)
        let (parsed, _, _) = try parseComplete(wire)
        #expect(Array(parsed.tlvs.dropLast()) == header.tlvs)
        #expect(parsed.tlvs.last?.type == ProxyTLV.crc32cType)
        #expect(parsed.alpn == ascii("h2"))
        #expect(parsed.authority == "www.example.com")
        #expect(parsed.uniqueID?.count == 128)
        #expect(parsed.netns == "blue")
        #expect(parsed.crc32c != nil)
        let info = try #require(parsed.sslInfo)
        #expect(info.version == "TLSv1.3")
        #expect(info.cipher == "TLS_AES_256_GCM_SHA384")
        #expect(info.commonName == "client.example")
        #expect(info.signatureAlgorithm == "ML-DSA-65")
        #expect(info.keyAlgorithm == "ML-DSA-65")
        #expect(info.group == "X25519MLKEM768")
        #expect(info.signatureScheme == "mldsa65")
        #expect(info.client == [.ssl, .certificateOnConnection, .certificateInSession])
        #expect(info.verify == 0)
        #expect(info.clientCertificateVerified)
        #expect(parsed.qsslInfo == ProxyTLV.QSSLInfo(groupCodePoint: 0x11EC, groupName: "X25519MLKEM768", postQuantum: true, resumed: false))
        // Re-encoding the parsed header (CRC TLV included) gives the same bytes.
        #expect(try parsed.encodeV2() == wire)
    }

    @Test("random headers round-trip through v2")
    func randomV2() throws {
        var rng = SplitMix64(seed: 2)
        for _ in 0..<300 {
            let transport = Self.transports[Int.random(in: 0..<Self.transports.count, using: &rng)]
            let tlvs = (0..<Int.random(in: 0...5, using: &rng)).map { _ in
                // Types that the parser validates structurally are avoided here.
                let type = [0x01, 0x02, 0x04, 0x30, 0xE0, 0xE5, 0xF0, 0xFF][Int.random(in: 0..<8, using: &rng)]
                return ProxyTLV(type: UInt8(type), value: (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            }
            let command: ProxyHeader.Command = Bool.random(using: &rng) ? .proxy : .local
            let header = ProxyHeader(command: command, transport: command == .local ? .unspecified : transport, tlvs: tlvs)
            let checksum = Bool.random(using: &rng)
            let wire = try header.encodeV2(addingChecksum: checksum)
            let (parsed, _, consumed) = try parseComplete(wire + ascii("trailing"))
            #expect(consumed == wire.count)
            #expect(checksum ? Array(parsed.tlvs.dropLast()) == tlvs : parsed == header)
        }
    }
}
