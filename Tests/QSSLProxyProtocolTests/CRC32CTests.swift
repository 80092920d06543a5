import QSSLProxyProtocol
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    /// A bit-at-a-time reference, independent of the table the module uses.
    static func reference(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    @Test("standard check value: CRC32C(\"123456789\") = 0xE3069283")
    func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("RFC 3720 B.4 test vectors")
    func rfc3720() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test("matches a bitwise reference; update() composes")
    func randomAgainstReference() {
        var rng = SplitMix64(seed: 32)
        for _ in 0..<200 {
            let data = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(CRC32C.checksum(data) == Self.reference(data))
            let cut = Int.random(in: 0...data.count, using: &rng)
            #expect(CRC32C.update(CRC32C.checksum(data[..<cut]), data[cut...]) == CRC32C.checksum(data))
        }
    }
}
