import Crypto
import Foundation
import QSSL
import Synchronization
import Testing

@testable import QSSLPKCS11

/// What needs no token: encodings, error names, the signing threads.
@Suite("PKCS#11 without a token")
struct PKCS11UnitTests {
    @Test("CKM_ECDSA's raw r‖s becomes the DER signature swift-crypto verifies", arguments: [PKCS11KeyAlgorithm.ecdsaP256, .ecdsaP384])
    func ecdsaRawToDER(algorithm: PKCS11KeyAlgorithm) throws {
        let message = Array("to be signed".utf8)
        if algorithm == .ecdsaP384 {
            let key = P384.Signing.PrivateKey()
            let raw = Array(try key.signature(for: message).rawRepresentation)
            let der = try SignOperation.derECDSASignature(rawRS: raw, curve: algorithm)
            #expect(key.publicKey.isValidSignature(try P384.Signing.ECDSASignature(derRepresentation: der), for: message))
        } else {
            let key = P256.Signing.PrivateKey()
            let raw = Array(try key.signature(for: message).rawRepresentation)
            let der = try SignOperation.derECDSASignature(rawRS: raw, curve: algorithm)
            #expect(key.publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: der), for: message))
        }
    }

    @Test("r‖s of the wrong length is an error, not a bad signature")
    func ecdsaWrongLength() {
        #expect(throws: PKCS11Error.self) { try SignOperation.derECDSASignature(rawRS: [UInt8](repeating: 1, count: 95), curve: .ecdsaP384) }
    }

    @Test("a session whose signing operation is left active is closed, not pooled; one failed C_Sign is not enough")
    func operationLeftActiveEndsTheSession() {
        #expect(SessionPool.endsSession(PKCS11Error.call("C_Sign", CKR.operationActive)))
        #expect(!SessionPool.endsSession(PKCS11Error.call("C_Sign", 0x06)), "CKR_FUNCTION_FAILED ends the operation, not the session")
    }

    @Test("a failed call names the function and the CKR_ code")
    func errorNamesReturnValue() {
        let error = PKCS11Error.call("C_Login", 0xA0, "token 'x'")
        #expect(error.description == "PKCS#11: C_Login returned CKR_PIN_INCORRECT (0xa0): token 'x'")
        #expect(error.returnValueName == "CKR_PIN_INCORRECT")
        #expect(PKCS11Error.call("C_Sign", 0x8000_0001).returnValueName == "CKR_VENDOR_DEFINED+0x1")
    }

    @Test("a PKCS#11 error becomes internal_error in TLS")
    func mapsToInternalError() {
        let tls = PKCS11Error.call("C_Sign", 0x32).tlsError
        #expect(tls.alert == .internalError)
        #expect(tls.description.contains("CKR_DEVICE_REMOVED"))
    }

    @Test("PIN sources describe themselves without the PIN")
    func pinDescription() throws {
        #expect(PKCS11PIN.value("123456").description == "PIN given by the application")
        #expect(PKCS11PIN.file("/etc/pin").description == "PIN from file /etc/pin")
        let path = NSTemporaryDirectory() + "qssl-pin-\(getpid())"
        try "4321\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(chmod(path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try PKCS11PIN.file(path).read() == Array("4321".utf8))
        #expect(throws: PKCS11Error.self) { try PKCS11PIN.environment("QSSL_NO_SUCH_VARIABLE_\(getpid())").read() }
    }

    @Test("with every thread busy and the queue full, a signature is refused at once")
    func queueFullFailsFast() async throws {
        let executor = SigningExecutor(threads: 1, queueLimit: 1, name: "test")
        let gate = Gate()
        // One job runs (blocked), one waits: the third is refused.
        async let first = executor.run(timeout: .seconds(10)) {
            gate.wait()
            return [1]
        }
        try await waitUntil { executor.statistics.running == 1 }
        async let second = executor.run(timeout: .seconds(10)) { [2] }
        try await waitUntil { executor.statistics.waiting == 1 }
        let started = ContinuousClock.now
        let third = await executor.run(timeout: .seconds(10)) { [3] }
        #expect(ContinuousClock.now - started < .seconds(8), "refused without waiting for the 10 s timeout")
        guard case .failure(let error) = third else {
            Issue.record("the third job ran")
            return
        }
        #expect(error.reason == .signingQueueFull)
        #expect(error.tlsError.alert == .internalError)
        gate.open()
        #expect(try await first.get() == [1])
        #expect(try await second.get() == [2])
        #expect(executor.statistics.rejected == 1)
        executor.shutdown()
    }

    @Test("a waiting job whose caller gave up (timed out) holds no place in the queue")
    func abandonedJobsFreeTheQueue() async throws {
        let executor = SigningExecutor(threads: 1, queueLimit: 1, name: "test")
        let gate = Gate()
        async let first = executor.run(timeout: .seconds(20)) {
            gate.wait()
            return [1]
        }
        try await waitUntil { executor.statistics.running == 1 }
        // Queued behind the blocked one, and given up on after 100 ms.
        let second = await executor.run(timeout: .milliseconds(100)) { [2] }
        guard case .failure(let timedOut) = second else {
            Issue.record("the second job ran though the thread was blocked")
            return
        }
        #expect(timedOut.reason == .signingTimedOut)
        // The queue's one place is held only by the abandoned job: the third is taken.
        async let third = executor.run(timeout: .seconds(20)) { [3] }
        try await waitUntil { executor.statistics.submitted == 3 || executor.statistics.rejected > 0 }
        #expect(executor.statistics.rejected == 0)
        gate.open()
        #expect(try await first.get() == [1])
        #expect(try await third.get() == [3])
        executor.shutdown()
    }

    @Test("a token that does not answer fails the signature after the timeout")
    func timeout() async throws {
        let executor = SigningExecutor(threads: 1, queueLimit: 4, name: "test")
        let gate = Gate()
        let started = ContinuousClock.now
        let result = await executor.run(timeout: .milliseconds(200)) {
            gate.wait()
            return []
        }
        #expect(ContinuousClock.now - started < .seconds(8), "the gate never opens: only the timeout ends it")
        guard case .failure(let error) = result else {
            Issue.record("no timeout")
            return
        }
        #expect(error.reason == .signingTimedOut)
        gate.open()
        executor.shutdown()
    }

    @Test("a signature whose task is cancelled before it starts never reaches the token and fails at once")
    func cancelledBeforeStarting() async throws {
        let executor = SigningExecutor(threads: 1, queueLimit: 4, name: "test")
        let ran = Mutex(false)
        let started = ContinuousClock.now
        let result = await Task {
            // Cancelled before `run` installs its handler: the handler runs before the job exists.
            withUnsafeCurrentTask { $0?.cancel() }
            return await executor.run(timeout: .seconds(20)) {
                ran.withLock { $0 = true }
                return [1]
            }
        }.value
        #expect(ContinuousClock.now - started < .seconds(15), "only the 20 s timeout ended it: the cancellation was lost")
        guard case .failure(let error) = result else {
            Issue.record("the cancelled job ran")
            return
        }
        #expect(error.description.contains("cancelled"))
        // Were it queued, the one thread would have run it by now.
        try await Task.sleep(for: .milliseconds(200))
        #expect(ran.withLock { $0 } == false)
        #expect(executor.statistics.submitted == 0)
        executor.shutdown()
    }

    @Test("a PIN file is checked as the ticket key files are: a FIFO, an open mode or a large file is refused at once; a private one gives its first line")
    func pinFileChecks() throws {
        let dir = NSTemporaryDirectory() + "qssl-pin-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        #expect { _ = try PKCS11PIN.file(dir + "/fifo").read() } throws: { "\($0)".contains("not a regular file") }
        #expect(FileManager.default.createFile(atPath: dir + "/open", contents: Data("1234\n".utf8)))
        #expect(chmod(dir + "/open", 0o644) == 0)
        #expect { _ = try PKCS11PIN.file(dir + "/open").read() } throws: { "\($0)".contains("chmod 600") }
        #expect(FileManager.default.createFile(atPath: dir + "/big", contents: Data(repeating: 0x31, count: 5000)))
        #expect(chmod(dir + "/big", 0o600) == 0)
        #expect { _ = try PKCS11PIN.file(dir + "/big").read() } throws: { "\($0)".contains("too large") }
        #expect(chmod(dir + "/open", 0o600) == 0)
        #expect(try PKCS11PIN.file(dir + "/open").read() == Array("1234".utf8))
    }
}

/// A latch a blocked job waits on.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    func wait() { condition.withLock { while !isOpen { condition.wait() } } }
    func open() {
        condition.withLock {
            isOpen = true
            condition.broadcast()
        }
    }
}

func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)  // generous: CI machines are loaded
    while !condition() {
        guard ContinuousClock.now < deadline else { throw FixtureError("condition not reached") }
        try await Task.sleep(for: .milliseconds(5))
    }

}
