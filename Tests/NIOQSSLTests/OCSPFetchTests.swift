import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import Synchronization
import Testing

/// What the test responder answers.
final class OCSPAnswers: Sendable {
    enum Mode: Sendable { case good, revoked, garbage, silent }
    let mode = Mutex<Mode>(.good)
    let requests = Mutex<Int>(0)
}

@Suite("OCSP over HTTP: the verifier fetches through the pause; down, slow and garbage responders")
struct OCSPFetchTests {
    static let ca = try! PKIBuilder.makeCA(subject: "CN=Fetch CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())

    /// A responder on loopback answering for `ca` as `answers` says, and a leaf naming it in AIA.
    static func setUp(_ answers: OCSPAnswers) async throws -> (Channel, X509Certificate, SwiftCryptoSigningKey) {
        // Its own loop: the "silent" responder blocks it on purpose, and must not stall other tests.
        let responder = try await OCSPHTTPResponder.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup(numberOfThreads: 1)) { body in
            answers.requests.withLock { $0 += 1 }
            guard let request = try? OCSPRequest(der: body) else { return OCSPResponseWriter.error(1) }
            switch answers.mode.withLock({ $0 }) {
            case .good, .revoked:
                let revoked = answers.mode.withLock { $0 } == .revoked
                return
                    (try? OCSPResponseWriter.response(
                        certID: request.certID, status: revoked ? .revoked(at: Date(), reason: .keyCompromise) : .good,
                        signer: ca, nonce: request.nonce, nextUpdate: Date().addingTimeInterval(600))) ?? []
            case .garbage: return [0x30, 0x01, 0x00]
            case .silent:
                Thread.sleep(forTimeInterval: 6)  // far longer than the verifier's 1 s timeout
                return OCSPResponseWriter.error(3)
            }
        }
        let port = responder.localAddress?.port ?? 0
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let leaf = try PKIBuilder.issue(subject: "CN=localhost", key: key, by: ca, dnsNames: ["localhost"], ocspURL: "http://127.0.0.1:\(port)/")
        return (responder, leaf, key)
    }

    /// A verifier fetching OCSP with a deadline: 1 s where a test needs the deadline to pass
    /// (the silent responder answers after 6 s), longer where an answer is expected, so that a
    /// loaded machine does not turn a good answer into "no answer within".
    static func verifier(_ policy: RevocationPolicy, timeout: Duration = .seconds(4)) -> X509CertificateVerifier {
        var v = X509CertificateVerifier(roots: [ca.certificate])
        v.ocspFetcher = NIOOCSPFetcher()
        v.ocspTimeout = timeout
        v.revocationPolicy = policy
        return v
    }

    @Test("good passes, revoked is certificate_revoked; answers are cached until nextUpdate")
    func goodRevokedCached() async throws {
        let answers = OCSPAnswers()
        let (responder, leaf, _) = try await Self.setUp(answers)
        defer { responder.close(promise: nil) }
        let v = Self.verifier(.hardFail)
        #expect(!v.isSynchronous, "fetching makes the verifier pause the handshake")
        let request = PeerVerificationRequest(chain: [leaf.der], role: .server(name: "localhost"), verifier: v)
        _ = try await v.verifyPeerAsynchronously(request)
        _ = try await v.verifyPeerAsynchronously(request)
        #expect(answers.requests.withLock { $0 } == 1, "the second verification used the cache")

        answers.mode.withLock { $0 = .revoked }
        let fresh = Self.verifier(.softFail)  // another cache
        await #expect(throws: TLSError(.certificateRejected(.revoked))) {
            try await fresh.verifyPeerAsynchronously(PeerVerificationRequest(chain: [leaf.der], role: .server(name: "localhost"), verifier: fresh))
        }
    }

    @Test("a responder that answers garbage, is slow or is down: soft-fail goes on, hard-fail refuses", arguments: ["garbage", "silent", "down"])
    func failures(kind: String) async throws {
        let answers = OCSPAnswers()
        answers.mode.withLock { $0 = kind == "garbage" ? .garbage : .silent }
        let (responder, leaf, _) = try await Self.setUp(answers)
        if kind == "down" { try await responder.close() }
        defer { responder.close(promise: nil) }
        let started = ContinuousClock.now
        let soft = Self.verifier(.softFail, timeout: .seconds(1))
        _ = try await soft.verifyPeerAsynchronously(PeerVerificationRequest(chain: [leaf.der], role: .server(name: "localhost"), verifier: soft))
        let hard = Self.verifier(.hardFail, timeout: .seconds(1))
        let error = await #expect(throws: TLSError.self) {
            try await hard.verifyPeerAsynchronously(PeerVerificationRequest(chain: [leaf.der], role: .server(name: "localhost"), verifier: hard))
        }
        // The silent responder would answer tryLater after 6 s: only the 1 s deadline gives "no answer … within".
        let expected = ["garbage": "OCSP", "silent": "no answer from", "down": "OCSP"][kind]!
        #expect(error.map { "\($0)" }?.contains(expected) == true, "\(String(describing: error))")
        if kind != "silent" { #expect(!"\(String(describing: error))".contains("no answer from")) }
        // A guard against hanging, far above the two 1 s deadlines (a loaded 2-core CI machine
        // delays event-loop tasks by seconds); the deadline itself is checked by the error above.
        #expect(ContinuousClock.now - started < .seconds(60), "bounded")
    }

    @Test("a full NIO handshake pauses for the fetch and fails with certificate_revoked when revoked")
    func handshake() async throws {
        let answers = OCSPAnswers()
        answers.mode.withLock { $0 = .revoked }
        let (responder, leaf, key) = try await Self.setUp(answers)
        defer { responder.close(promise: nil) }
        let config = ServerConfiguration(provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chain: [leaf], key: key)])
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config) { [] }
        defer { Task { try? await server.close() } }
        let client = ClientConfiguration(provider: .swiftCrypto, verifier: Self.verifier(.softFail))
        do {
            _ = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: client, serverName: "localhost")
            Issue.record("a revoked server was accepted")
        } catch {
            #expect("\(error)".contains("certificate_revoked") || "\(error)".contains("revoked"), "\(error)")
        }
    }
}
