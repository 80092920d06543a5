/// CRC-32C (Castagnoli), as RFC 4960 Appendix B and RFC 3720 define it: reflected polynomial
/// 0x82F63B78, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF.
/// `CRC32C.checksum("123456789".utf8) == 0xE3069283`.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        update(0, bytes)
    }

    /// Continues a CRC-32C: `update(checksum(a), b) == checksum(a + b)`.
    public static func update(_ crc: UInt32, _ bytes: some Sequence<UInt8>) -> UInt32 {
        var c = ~crc
        let t = table
        for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }
}
