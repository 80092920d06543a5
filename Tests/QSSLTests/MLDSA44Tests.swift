import Foundation
import Testing

@testable import QSSLSwiftCrypto

@Suite("ML-DSA-44 verification and SHAKE (FIPS 202/204)")
struct MLDSA44Tests {
    @Test(
        "SHAKE128/256 match Python's hashlib",
        arguments: [
            ("abc", 128, "5881092dd818bf5cf8a3ddb793fbcba74097d5c526a6d35f97b83351940f2cc844c50af32acd3f2c"),
            ("abc", 256, "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739d5a15bef186a5386")
        ])
    func shake(input: String, bits: Int, expected: String) {
        var x = bits == 128 ? SHAKE.shake128() : SHAKE.shake256()
        x.absorb(Array(input.utf8))
        #expect(hexString(x.squeeze(40)) == expected)
    }

    @Test("SHAKE256 over several blocks")
    func shakeLong() {
        let input = Array((0..<512).map { UInt8($0 & 0xFF) })
        #expect(hexString(SHAKE.hash256(input, count: 32)) == "a1d71885b0a841f03d1dc7f2738a15cc984071a17ffed5ecacb9f58720a473be")
    }

    func hexString(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
}
