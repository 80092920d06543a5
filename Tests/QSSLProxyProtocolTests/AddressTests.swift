import QSSLProxyProtocol
import Testing

@Suite("IPv4 and IPv6 addresses")
struct AddressTests {
    @Test("IPv4 text round-trips", arguments: ["0.0.0.0", "192.0.2.1", "255.255.255.255", "10.0.10.100", "1.2.3.4"])
    func ipv4RoundTrip(_ text: String) throws {
        let a = try #require(IPv4Address(text))
        #expect(a.description == text)
        #expect(IPv4Address(bytes: a.bytes) == a)
    }

    @Test(
        "IPv4 rejects malformed text",
        arguments: [
            "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.04", "1.2.3.00", "1..3.4", ".1.2.3", "1.2.3.4.",
            " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "1.2.3.-4", "a.b.c.d", "1.2.3.4444", "1000.2.3.4", "::1", "1.2.3.4/8"
        ])
    func ipv4Rejects(_ text: String) {
        #expect(IPv4Address(text) == nil, "\(text) accepted")
    }

    @Test("IPv4 from bytes needs exactly four")
    func ipv4Bytes() {
        #expect(IPv4Address(bytes: [1, 2, 3]) == nil)
        #expect(IPv4Address(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(IPv4Address(bytes: [192, 0, 2, 1])?.description == "192.0.2.1")
    }

    @Test(
        "IPv6 canonical text (RFC 5952)",
        arguments: [
            ("::1", "::1"),
            ("::", "::"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group is not compressed
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // tie: the first run is compressed
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // the longest run wins
            ("1:0:0:0:0:0:0:0", "1::"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("fe80::abcd:ef01:2345:6789", "fe80::abcd:ef01:2345:6789"),
            ("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("0:0:0:0:0:ffff:c000:201", "::ffff:192.0.2.1"),  // IPv4-mapped uses dotted quad
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
            ("::192.0.2.1", "::c000:201"),  // IPv4-compatible (deprecated): hex
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            ("0001:0002::000a", "1:2::a"),
            ("1::2:3:4:5:6:7", "1:0:2:3:4:5:6:7")  // "::" standing for one group
        ])
    func ipv6Canonical(_ input: String, _ expected: String) throws {
        let a = try #require(IPv6Address(input), "\(input) rejected")
        #expect(a.description == expected)
        #expect(IPv6Address(a.description) == a)
    }

    @Test(
        "IPv6 rejects malformed text",
        arguments: [
            "", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:",
            "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "12345::1", "g::1", "::1%eth0", "[::1]", "::1.2.3", "::1.2.3.4:5",
            "::01.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4", " ::1", "::1 ", "1:::2", "::-1", "fe80::1/64",
            "1:2:3:4:5:6:7:8:1.2.3.4"
        ])
    func ipv6Rejects(_ text: String) {
        #expect(IPv6Address(text) == nil, "\(text) accepted")
    }

    @Test("IPv6 random addresses round-trip through text")
    func ipv6Random() throws {
        var rng = SplitMix64(seed: 6)
        for _ in 0..<2000 {
            // Bias towards zero groups so that runs of zeros are common.
            let groups = (0..<8).map { _ in Bool.random(using: &rng) ? 0 : UInt16.random(in: 0...0xFFFF, using: &rng) }
            let a = try #require(IPv6Address(groups: groups))
            let text = a.description
            #expect(IPv6Address(text) == a, "\(text)")
            #expect(text == text.lowercased())
            #expect(!text.contains(":::"))
            #expect(text.count <= 39 || text.hasPrefix("::ffff:"))
        }
    }

    @Test("IPv4-mapped helpers")
    func mapped() throws {
        let v4 = IPv4Address(203, 0, 113, 9)
        let m = IPv6Address(ipv4Mapped: v4)
        #expect(m.ipv4Mapped == v4)
        #expect(m.description == "::ffff:203.0.113.9")
        #expect(try #require(IPv6Address("2001:db8::1")).ipv4Mapped == nil)
        #expect(IPv6Address(bytes: [UInt8](repeating: 0, count: 15)) == nil)
        #expect(IPv6Address(groups: [1, 2, 3]) == nil)
    }
}
