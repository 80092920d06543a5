import Foundation
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// OpenSSL 3.0 (Debian's `openssl`): classical TLS 1.3 groups, ECDSA and RSA-PSS certificates.
@Suite("Interop: OpenSSL 3.0 s_server / s_client", .serialized)
struct OpenSSL3Tests {
    static let cases: [(String, String)] = [
        ("x25519", "ecdsa"), ("secp384r1", "ecdsa"), ("secp256r1", "ecdsa"),
        ("x25519", "rsa"), ("secp384r1", "rsa"), ("secp256r1", "rsa")
    ]

    @Test("Q-SSL client completes a handshake with s_server", arguments: cases)
    func qsslClient(group: String, pki: String) async throws {
        let pkiFiles = InteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", pkiFiles.path("\(pki).pem"), "-key", pkiFiles.path("\(pki).key"),
                "-www", "-tls1_3", "-groups", group
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(pki: pki), serverName: "localhost")
        try await client.send(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let answer = String(decoding: try await client.read(), as: UTF8.self)
        await client.close()
        #expect(answer.hasPrefix("HTTP/1.0 200 ok"))
        #expect(client.summary.group == NamedGroup(name: group))
        #expect(client.summary.peerSignatureScheme == (pki == "rsa" ? .rsaPSSRSAESHA384 : .ecdsaSecp384r1SHA384))
        // Our default shares are SecP384r1MLKEM1024 and x25519, so any other classical group needs a HelloRetryRequest.
        #expect(client.summary.helloRetryRequest == (group != "x25519"))
    }

    @Test("s_client completes a handshake with the Q-SSL server", arguments: cases)
    func qsslServer(group: String, pki: String) async throws {
        let (server, outcomes) = try await startQSSLServer(pki: pki)
        let pkiFiles = InteropPKI.shared
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", pkiFiles.path("\(pki)-ca.pem"), "-servername", "localhost",
                "-verify_return_error", "-tls1_3", "-groups", group
            ], stdin: "hello-from-openssl\n")
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("---\nhello-from-openssl")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.first?.group == NamedGroup(name: group))
        #expect(outcomes.errors.isEmpty)
    }

    @Test("a Q-SSL server whose key signs asynchronously (as an HSM does) serves s_client")
    func asynchronousKey() async throws {
        let pki = InteropPKI.shared.ecdsa
        let key = SlowKey(inner: pki.serverKey)
        let (server, outcomes) = try await startQSSLServer { $0.certificates = [CertifiedKey(chain: try! pki.serverCertifiedKey.chain, key: key)] }
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-verify_return_error", "-tls1_3"
            ], stdin: "hsm\n")
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("---\nhsm")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.count == 1)
        #expect(outcomes.errors.isEmpty)
    }

    @Test("a Q-SSL server preferring secp384r1 makes s_client retry with HelloRetryRequest")
    func serverHelloRetryRequest() async throws {
        let (server, outcomes) = try await startQSSLServer { $0.groups = [.secp384r1] }
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-verify_return_error", "-tls1_3", "-groups", "x25519:secp384r1"
            ], stdin: "hrr\n")
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("---\nhrr")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.first?.helloRetryRequest == true)
        #expect(outcomes.summaries.first?.group == .secp384r1)
    }

    @Test("a PQ-required Q-SSL server refuses classical-only s_client with insufficient_security")
    func pqRequiredServer() async throws {
        let (server, outcomes) = try await startQSSLServer { $0.requirePostQuantum = true }
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-tls1_3"
            ], stdin: "x\n")
        let output = client.finish(timeout: 10)
        try await server.close()
        #expect(output.contains("alert insufficient security"), "s_client said: \(output)")
        #expect(outcomes.errors.compactMap { tlsError($0)?.alert }.first == .insufficientSecurity)
    }

    @Test("a PQ-required Q-SSL client refuses classical-only s_server with insufficient_security")
    func pqRequiredClient() async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-tls1_3"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        await #expect(throws: (any Error).self) {
            _ = try await NIOQSSLClient.connect(
                host: "127.0.0.1", port: port, configuration: qsslClientConfig { $0.requirePostQuantum = true },
                serverName: "localhost")
        }
        do {
            _ = try await NIOQSSLClient.connect(
                host: "127.0.0.1", port: port, configuration: qsslClientConfig { $0.requirePostQuantum = true },
                serverName: "localhost")
        } catch {
            #expect(tlsError(error)?.alert == .insufficientSecurity)
        }
        try server.waitFor("insufficient security", timeout: 10)
    }

    @Test("a Q-SSL client that does not trust the server's root sends unknown_ca to s_server")
    func unknownCA() async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("rsa.pem"),
                "-key", InteropPKI.shared.path("rsa.key"), "-www", "-tls1_3"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        do {
            _ = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(pki: "ecdsa"), serverName: "localhost")
            Issue.record("handshake with an untrusted root succeeded")
        } catch {
            #expect(tlsError(error)?.alert == .unknownCA)
        }
        try server.waitFor("unknown ca", timeout: 10)
    }
}

/// Signs off the event loop after a delay, like a network HSM.
struct SlowKey: SigningKey {
    let inner: SwiftCryptoSigningKey
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var isSynchronous: Bool { false }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        Issue.record("the event loop must not sign with an asynchronous key")
        return try inner.sign(message, scheme: scheme)
    }
    func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        try? await Task.sleep(for: .milliseconds(20))
        return try inner.sign(message, scheme: scheme)
    }
}

/// Keys and certificates written by OpenSSL's own tools load and serve.
@Suite("Interop: PEM files made by openssl", .serialized)
struct PEMFileTests {
    static let keyKinds: [(String, [String])] = [
        ("SEC1 P-256", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "KEY"]),
        ("PKCS#8 P-384", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "KEY"]),
        ("PKCS#8 Ed25519", ["genpkey", "-algorithm", "ed25519", "-out", "KEY"]),
        ("PKCS#8 RSA-3072", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", "KEY"]),
        ("PKCS#1 RSA-2048", ["genrsa", "-traditional", "-out", "KEY", "2048"])
    ]

    @Test("an openssl-made key and self-signed certificate serve s_client", arguments: keyKinds)
    func serve(kind: String, generate: [String]) async throws {
        let openssl = try Peers.executable("openssl")
        let dir = InteropPKI.shared.directory + "/pem-\(kind.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "#", with: ""))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        PeerProcess.run(openssl, generate.map { $0 == "KEY" ? dir + "/key.pem" : $0 })
        PeerProcess.run(
            openssl,
            [
                "req", "-x509", "-new", "-key", dir + "/key.pem", "-out", dir + "/cert.pem", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"
            ])
        let certified = try CertificateFiles.certifiedKey(chainPath: dir + "/cert.pem", keyPath: dir + "/key.pem")
        let (server, outcomes) = try await startQSSLServer { $0.certificates = [certified] }
        let client = try PeerProcess(
            openssl,
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", dir + "/cert.pem", "-servername", "localhost",
                "-verify_return_error", "-tls1_3"
            ], stdin: "pem\n")
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("---\npem")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.count == 1, "\(kind)")
    }
}
