import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@testable import QSSLPKCS11

/// Handshakes whose signature is made in SoftHSM2, checked by OpenSSL 3.0 and by Q-SSL, and what
/// a failing or overloaded token does to a handshake: internal_error, fast, never a hang.
@Suite("SoftHSM2: handshakes", .enabled(if: SoftHSM.isAvailable, SoftHSM.skipReason))
struct SoftHSMHandshakeTests {
    static let cases: [(String, String)] = [("1.3", "p384"), ("1.3", "rsa"), ("1.2", "p384"), ("1.2", "rsa")]

    @Test("OpenSSL 3.0 s_client verifies a server signature made in the token", arguments: cases)
    func opensslVerifiesTokenSignature(version: String, keyName: String) async throws {
        let openssl = try #require(opensslPath, "openssl is not installed (scripts/install-peers installs it)")
        let f = try SoftHSM.shared
        let key = keyName == "rsa" ? f.rsa : f.p384
        let (server, outcomes) = try await startServer(try f.certifiedKey(key)) { $0.versions = [version == "1.3" ? .tls13 : .tls12] }
        let signedBefore = f.token.signingStatistics.completed
        let sigalg = keyName == "rsa" ? "rsa_pss_rsae_sha256" : "ecdsa_secp384r1_sha384"
        let result = try await run(
            openssl,
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", f.caFile, "-servername", "localhost",
                "-verify_return_error", "-brief", version == "1.3" ? "-tls1_3" : "-tls1_2", "-sigalgs", sigalg
            ], timeout: 30)
        try await server.close()
        #expect(result.status == 0, "s_client: \(result.text)")
        #expect(result.text.contains("Verification: OK"), "s_client: \(result.text)")
        #expect(result.text.contains(version == "1.3" ? "TLSv1.3" : "TLSv1.2"), "s_client: \(result.text)")
        #expect(result.text.contains(keyName == "rsa" ? "Signature type: RSA-PSS" : "Signature type: ECDSA"), "s_client: \(result.text)")
        #expect(result.text.contains(keyName == "rsa" ? "Hash used: SHA256" : "Hash used: SHA384"), "s_client: \(result.text)")
        let summary = try #require(outcomes.summaries.first, "server errors: \(outcomes.errors)")
        #expect(summary.localSignatureScheme == (keyName == "rsa" ? .rsaPSSRSAESHA256 : .ecdsaSecp384r1SHA384))
        // The signature went through the token's signing threads (the handshake paused for it).
        #expect(f.token.signingStatistics.completed > signedBefore)
    }

    @Test("a Q-SSL client verifies both halves of a composite signature whose ECDSA half is made in the token")
    func compositeWithECDSAHalfInToken() async throws {
        let f = try SoftHSM.shared
        let key = try PKCS11CompositeKey(ecdsa: f.p384, mldsa: .software(try MLDSA65.PrivateKey()))
        #expect(!key.isMLDSAInToken)
        #expect(key.placement.contains("ML-DSA-65 half in software"))
        let leaf = try f.certificate(for: key.subjectPublicKeyInfo)
        #expect(leaf.publicKey.description.contains("composite"))
        let certified = try CertificateFiles.certifiedKey(chain: [leaf], key: key, subjectPublicKeyInfo: key.subjectPublicKeyInfo)
        let (server, outcomes) = try await startServer(certified)
        let signedBefore = f.token.signingStatistics.completed
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.versions = [.tls13]
        configuration.sessionStore = nil  // every handshake signs: no resumption
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        await client.close()
        try await server.close()
        #expect(client.summary.peerSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(client.summary.peerIdentity?.verifiedSignatureComponents.count == 2)
        #expect(outcomes.errors.isEmpty)
        #expect(f.token.signingStatistics.completed > signedBefore)
        // The token's half is a real ECDSA P-384 signature over M′: the whole verifies offline too.
        let message = Array("offline".utf8)
        #expect(key.publicKey.isValidSignature(try await key.signAsynchronously(message, scheme: .qsslMLDSA65ECDSASecp384r1SHA512), for: message))
        #expect(key.publicKey.isValidSignature(try key.sign(message, scheme: .qsslMLDSA65ECDSASecp384r1SHA512), for: message))
    }

    @Test("a client certificate key in the token authenticates a Q-SSL client (mTLS)", arguments: [ProtocolVersion.tls13, .tls12])
    func clientKeyInToken(version: ProtocolVersion) async throws {
        let f = try SoftHSM.shared
        let clientCertificate = try PKIBuilder.issue(
            subject: "CN=token client", subjectPublicKeyInfo: f.p256.subjectPublicKeyInfo,
            issuerCertificate: f.ca.certificate, issuerSigner: try CertificateSigner(f.ca.key), client: true)
        let serverKey = try DemoPKI().serverKey
        let serverCertificate = try PKIBuilder.issue(subject: "CN=localhost", key: serverKey, by: f.ca, dnsNames: ["localhost"])
        let (server, outcomes) = try await startServer(try CertificateFiles.certifiedKey(chain: [serverCertificate], key: serverKey)) {
            $0.clientAuthentication = .required
            $0.clientCertificateVerifier = f.verifier
            $0.versions = [version]
        }
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.clientCertificates = [
            try CertificateFiles.certifiedKey(chain: [clientCertificate], key: f.p256, subjectPublicKeyInfo: f.p256.subjectPublicKeyInfo)
        ]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        try await client.send(Array("ping".utf8))
        _ = try await client.read()
        await client.close()
        try await server.close()
        #expect(client.summary.clientCertificateSent)
        #expect(outcomes.summaries.first?.peerIdentity?.subject.contains("token client") == true)
    }

    @Test("a module finalized mid-run fails the next handshake with internal_error, at once, naming the CKR_ code")
    func moduleFinalizedMidRun() async throws {
        let f = try SoftHSM.shared
        let (module, _, key) = try f.privateModule("finalize")
        let (server, outcomes) = try await startServer(try f.certifiedKey(key))
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.versions = [.tls13]
        configuration.sessionStore = nil  // every handshake signs: no resumption
        let first = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        await first.close()

        #expect(module.finalize())  // the token "goes away"
        let started = ContinuousClock.now
        await #expect {
            try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        } throws: { tlsError($0)?.code.receivedAlert == .internalError }
        #expect(ContinuousClock.now - started < .seconds(9), "fails, not waits for the 10 s connect timeout")
        try await Task.sleep(for: .milliseconds(100))
        try await server.close()
        let serverError = outcomes.errors.map { "\($0)" }.joined(separator: "\n")
        #expect(serverError.contains("CKR_CRYPTOKI_NOT_INITIALIZED"), "server errors: \(serverError)")
        // The shared module is another instance and still signs.
        _ = try f.p384.sign([1], scheme: .ecdsaSecp384r1SHA384)
    }

    @Test("a module finalized behind Q-SSL's back answers CKR_CRYPTOKI_NOT_INITIALIZED: internal_error, no crash, no hang")
    func moduleFinalizedBehindOurBack() async throws {
        let f = try SoftHSM.shared
        let (module, _, key) = try f.privateModule("raw-finalize")
        let (server, outcomes) = try await startServer(try f.certifiedKey(key))
        // Straight through the function list, as another component of the process might.
        #expect(module.functions.pointee.C_Finalize!(nil) == 0)
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.versions = [.tls13]
        configuration.sessionStore = nil  // every handshake signs: no resumption
        let started = ContinuousClock.now
        await #expect {
            try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        } throws: { tlsError($0)?.code.receivedAlert == .internalError }
        #expect(ContinuousClock.now - started < .seconds(9), "fails, not waits for the 10 s connect timeout")
        try await Task.sleep(for: .milliseconds(100))
        try await server.close()
        #expect(outcomes.errors.map { "\($0)" }.joined().contains("CKR_CRYPTOKI_NOT_INITIALIZED"))
    }

    @Test("with the token's signing threads busy and no queue, a handshake fails fast with internal_error")
    func queueFullFailsHandshakeFast() async throws {
        let f = try SoftHSM.shared
        let token = try PKCS11Token.open(
            module: f.module, label: SoftHSM.label, pin: .file(f.pinFile),
            configuration: .init(sessionPoolSize: 1, signingThreads: 1, signingQueueLimit: 0))
        defer { token.close() }
        let key = try token.signingKey(matching: PKCS11URI(object: "server-p384"))
        let (server, outcomes) = try await startServer(try f.certifiedKey(key))
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.versions = [.tls13]
        configuration.sessionStore = nil  // every handshake signs: no resumption
        // Occupy the one signing thread.
        let gate = Gate()
        async let occupied = token.executor.run(timeout: .seconds(30)) {
            gate.wait()
            return []
        }
        try await waitUntil { token.signingStatistics.running == 1 }
        let started = ContinuousClock.now
        await #expect {
            try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        } throws: { tlsError($0)?.code.receivedAlert == .internalError }
        #expect(ContinuousClock.now - started < .seconds(6), "refused, not queued until the signing timeout (10 s by default)")
        #expect(token.signingStatistics.rejected == 1)
        gate.open()
        _ = await occupied
        // Free again: handshakes complete.
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        await client.close()
        try await server.close()
        #expect(outcomes.errors.map { "\($0)" }.joined().contains("signing queue full"))
    }

    @Test("while the token is busy, the event loop goes on serving other connections; the paused handshake completes when it answers")
    func eventLoopNotBlocked() async throws {
        let f = try SoftHSM.shared
        let token = try PKCS11Token.open(
            module: f.module, label: SoftHSM.label, pin: .file(f.pinFile),
            configuration: .init(sessionPoolSize: 1, signingThreads: 1, signingQueueLimit: 8))
        defer { token.close() }
        let key = try token.signingKey(matching: PKCS11URI(object: "server-p384"))
        // One event loop thread for both servers: a blocking signature would stall the other.
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let hsmServer = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: ServerConfiguration(provider: .swiftCrypto, certificates: [try f.certifiedKey(key)]),
            group: loop
        ) { [Outcomes()] }
        let memoryKey = SwiftCryptoSigningKey.p384(.init())
        let memoryCertificate = try PKIBuilder.issue(subject: "CN=localhost", key: memoryKey, by: f.ca, dnsNames: ["localhost"])
        let memoryServer = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0,
            configuration: ServerConfiguration(
                provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chain: [memoryCertificate], key: memoryKey)]),
            group: loop
        ) { [Outcomes()] }
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.sessionStore = nil
        let gate = Gate()
        async let occupied = token.executor.run(timeout: .seconds(30)) {
            gate.wait()
            return []
        }
        try await waitUntil { token.signingStatistics.running == 1 }
        let client = configuration
        let paused = Task { try await NIOQSSLClient.connect(host: "127.0.0.1", port: hsmServer.port, configuration: client, serverName: "localhost") }
        try await waitUntil { token.signingStatistics.waiting == 1 }
        // The token's handshake waits for its signature; the loop serves another connection meanwhile.
        for _ in 0..<3 {
            let other = try await NIOQSSLClient.connect(host: "127.0.0.1", port: memoryServer.port, configuration: configuration, serverName: "localhost")
            await other.close()
        }
        gate.open()
        _ = await occupied
        let completed = try await paused.value
        #expect(completed.summary.peerSignatureScheme == .ecdsaSecp384r1SHA384)
        await completed.close()
        try await hsmServer.close()
        try await memoryServer.close()
        try await loop.shutdownGracefully()
    }

    @Test("a token that does not answer within the signing timeout fails the handshake with internal_error")
    func signingTimeout() async throws {
        let f = try SoftHSM.shared
        let token = try PKCS11Token.open(
            module: f.module, label: SoftHSM.label, pin: .file(f.pinFile),
            configuration: .init(sessionPoolSize: 1, signingThreads: 1, signingQueueLimit: 4, signingTimeout: .milliseconds(300)))
        defer { token.close() }
        let key = try token.signingKey(matching: PKCS11URI(object: "server-p384"))
        let (server, _) = try await startServer(try f.certifiedKey(key))
        var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
        configuration.versions = [.tls13]
        configuration.sessionStore = nil  // every handshake signs: no resumption
        let gate = Gate()
        async let occupied = token.executor.run(timeout: .seconds(30)) {
            gate.wait()
            return []
        }
        try await waitUntil { token.signingStatistics.running == 1 }
        let started = ContinuousClock.now
        await #expect {
            try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
        } throws: { tlsError($0)?.code.receivedAlert == .internalError }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(8))
        gate.open()
        _ = await occupied
        try await server.close()
    }
}
