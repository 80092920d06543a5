import Synchronization
import Testing

@testable import QSSL

@Suite("SecretBytes", .serialized)  // the wipe observer is one global hook
struct SecretBytesTests {
    @Test("never printed: description, debug description, reflection and interpolation are redacted")
    func redacted() {
        let secret = SecretBytes([0xDE, 0xAD, 0xBE, 0xEF])
        for text in [
            "\(secret)", String(describing: secret), String(reflecting: secret), "\([secret])", "\(Mirror(reflecting: secret).children.map { "\($0.value)" })"
        ] {
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

    @Test("when the last copy goes, the bytes are zero in memory before it is freed (debug builds observe the wipe)")
    func wipedWhenReleased() {
        // A length no other test uses, so that parallel tests' secrets are not counted.
        let length = 97
        let seen = Mutex<[[UInt8]]>([])
        SecretBytes.wipeObserver.withLock { $0 = { buffer in if buffer.count == length { seen.withLock { $0.append(Array(buffer)) } } } }
        defer { SecretBytes.wipeObserver.withLock { $0 = nil } }
        do {
            let secret = SecretBytes([UInt8](repeating: 0xA5, count: length))
            let copy = secret
            #expect(copy.count == length)
            #expect(seen.withLock { $0.isEmpty }, "not wiped while a copy lives")
        }
        let wiped = seen.withLock { $0 }
        #expect(wiped.count == 1 && wiped.allSatisfy { $0 == [UInt8](repeating: 0, count: length) }, "\(wiped)")
    }

    @Test("zeroise (what SecretBytes runs when its storage is freed) overwrites the buffer")
    func zeroising() {
        var bytes: [UInt8] = [1, 2, 3, 4, 5]
        bytes.withUnsafeMutableBytes { zeroise($0) }
        #expect(bytes == [0, 0, 0, 0, 0])
    }
}
