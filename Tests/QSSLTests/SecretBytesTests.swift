@testable import QSSL
import Testing

@Suite("SecretBytes")
struct SecretBytesTests {
    @Test("never printed: description, debug description, reflection and interpolation are redacted")
    func redacted() {
        let secret = SecretBytes([0xDE, 0xAD, 0xBE, 0xEF])
        for text in ["\(secret)", String(describing: secret), String(reflecting: secret), "\([secret])", "\(Mirror(reflecting: secret).children.map { "\($0.value)" })"] {
            #expect(!text.contains("222") && !text.contains("173") && !text.contains("190") && !text.contains("239"), "\(text)")
        }
        #expect("\(secret)" == "SecretBytes(4 bytes, redacted)")
    }

    @Test("equality compares contents; hashing sees only the length")
    func equality() {
        #expect(SecretBytes([1, 2, 3]) == SecretBytes([1, 2, 3]))
        #expect(SecretBytes([1, 2, 3]) != SecretBytes([1, 2, 4]))
        #expect(SecretBytes([1, 2, 3]) != SecretBytes([1, 2]))
        #expect(SecretBytes([1, 2, 3]).hashValue == SecretBytes([9, 9, 9]).hashValue)
    }

    @Test("zeroise (what SecretBytes runs when its storage is freed) overwrites the buffer")
    func zeroising() {
        var bytes: [UInt8] = [1, 2, 3, 4, 5]
        bytes.withUnsafeMutableBytes { zeroise($0) }
        #expect(bytes == [0, 0, 0, 0, 0])
    }
}
