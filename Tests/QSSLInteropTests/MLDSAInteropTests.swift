import Foundation
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// ML-DSA certificates against independent implementations: PyPI's cryptography (OpenSSL 4.0)
/// for X.509 and PKCS#8, OpenSSL 4.0 (pyOpenSSL) and tlslite-ng 0.9 for TLS 1.3.
@Suite("Interop: ML-DSA certificates and keys", .serialized)
struct MLDSAInteropTests {
    /// Writes a Q-SSL-made PKI of `algorithm` to a fresh directory: ca.pem, server.pem, server.key.
    static func qsslFiles(_ algorithm: PKIBuilder.Algorithm) throws -> (String, DemoPKI) {
        let pki = try DemoPKI(algorithm: algorithm)
        let dir = InteropPKI.shared.directory + "/qssl-\(algorithm.rawValue)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try CertificateFiles.pem([pki.ca.certificate]).write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try CertificateFiles.pem([pki.serverCertificate]).write(toFile: dir + "/server.pem", atomically: true, encoding: .utf8)
        try CertificateFiles.pkcs8PEM(pki.serverKey).write(toFile: dir + "/server.key", atomically: true, encoding: .utf8)
        return (dir, pki)
    }

    /// A PKI made by cryptography (OpenSSL 4.0).
    static func cryptographyFiles(_ alg: String) throws -> String {
        let dir = InteropPKI.shared.directory + "/cryptography-\(alg)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let result = try peerResult(PeerProcess.run(try Peers.requirePython(), [Peers.script("mldsa_pki.py"), "make", dir, alg]))
        guard result["ok"] as? Bool == true else { throw PeerError("cryptography could not make an \(alg) PKI: \(result)") }
        return dir
    }

    @Test("cryptography verifies Q-SSL's ML-DSA certificates and loads its seed-form PKCS#8 keys", arguments: [PKIBuilder.Algorithm.mldsa65, .mldsa87])
    func cryptographyReadsOurs(algorithm: PKIBuilder.Algorithm) throws {
        let (dir, _) = try Self.qsslFiles(algorithm)
        let result = try peerResult(
            PeerProcess.run(
                try Peers.requirePython(),
                [Peers.script("mldsa_pki.py"), "check", dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"]))
        #expect(result["ok"] as? Bool == true, "\(result)")
    }

    @Test("Q-SSL verifies cryptography's ML-DSA certificates and loads its PKCS#8 keys", arguments: ["mldsa65", "mldsa87"])
    func weReadTheirs(alg: String) throws {
        let dir = try Self.cryptographyFiles(alg)
        let roots = try CertificateFiles.certificates(atPath: dir + "/ca.pem")
        let chain = try CertificateFiles.certificates(atPath: dir + "/server.pem")
        let verifier = X509CertificateVerifier(roots: roots)
        #expect(throws: Never.self) { _ = try verifier.verify(chain: chain.map(\.der), role: .server(name: "localhost")) }
        #expect(throws: Never.self) { _ = try CertificateFiles.certifiedKey(chainPath: dir + "/server.pem", keyPath: dir + "/server.key") }
    }

    @Test("OpenSSL 4 client ↔ Q-SSL server with an ML-DSA-65 certificate (Q-SSL's and cryptography's)", arguments: [false, true])
    func openssl4Client(theirCertificate: Bool) async throws {
        let dir = theirCertificate ? try Self.cryptographyFiles("mldsa65") : try Self.qsslFiles(.mldsa65).0
        let certified = try CertificateFiles.certifiedKey(chainPath: dir + "/server.pem", keyPath: dir + "/server.key")
        let (server, outcomes) = try await startQSSLServer { $0.certificates = [certified] }
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("openssl4_peer.py"), "client", "\(server.port)", dir + "/ca.pem", "localhost", "X25519MLKEM768"])
        let result = try peerResult(peer.finish())
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(outcomes.summaries.first?.localSignatureScheme == .mldsa65)
    }

    @Test("Q-SSL client ↔ OpenSSL 4 server with a Q-SSL-made ML-DSA-65 certificate")
    func openssl4Server() async throws {
        let (dir, pki) = try Self.qsslFiles(.mldsa65)
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("openssl4_peer.py"), "server", "\(port)", dir + "/server.pem", dir + "/server.key", "SecP384r1MLKEM1024"])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        config.versions = [.tls13]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
        try await client.send(Array("ml-dsa".utf8))
        _ = try await client.read(expectedBytes: 6)
        await client.close()
        #expect(client.summary.peerSignatureScheme == .mldsa65)
        #expect(client.summary.group == .secp384r1MLKEM1024)
        #expect(try peerResult(peer.finish())["ok"] as? Bool == true)
    }

    @Test("tlslite-ng 0.9 client ↔ Q-SSL server with an ML-DSA-65 certificate")
    func tlsliteClient() async throws {
        let (dir, _) = try Self.qsslFiles(.mldsa65)
        let certified = try CertificateFiles.certifiedKey(chainPath: dir + "/server.pem", keyPath: dir + "/server.key")
        let (server, outcomes) = try await startQSSLServer { $0.certificates = [certified] }
        let peer = try PeerProcess(try Peers.requirePython(), [Peers.script("tlslite_peer.py"), "client", "\(server.port)", "localhost", "x25519mlkem768"])
        let result = try peerResult(peer.finish(timeout: 60))
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(outcomes.summaries.first?.localSignatureScheme == .mldsa65)
    }

    @Test("Q-SSL client ↔ tlslite-ng 0.9 server with a Q-SSL-made ML-DSA-65 certificate and seed-only key")
    func tlsliteServer() async throws {
        let (dir, pki) = try Self.qsslFiles(.mldsa65)
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("tlslite_peer.py"), "server", "\(port)", dir + "/server.pem", dir + "/server.key", "x25519mlkem768"])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        config.versions = [.tls13]
        config.keyShareGroups = [.x25519MLKEM768]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost", timeout: .seconds(60))
        try await client.send(Array("ml-dsa".utf8))
        let echoed = try await client.read(expectedBytes: 6, idleTimeout: .seconds(20))
        await client.close()
        #expect(echoed == Array("ml-dsa".utf8))
        #expect(client.summary.peerSignatureScheme == .mldsa65)
        #expect(try peerResult(peer.finish(timeout: 60))["ok"] as? Bool == true)
    }
}

/// ML-DSA-44, which swift-crypto lacks: Q-SSL's own FIPS 204 verifier against OpenSSL 4.0's signer.
@Suite("Interop: ML-DSA-44 verification against OpenSSL 4.0", .serialized)
struct MLDSA44InteropTests {
    static func bytes(_ hex: Any?) -> [UInt8] {
        guard let s = hex as? String else { return [] }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    @Test("signatures made by OpenSSL 4.0 verify, with and without context; tampering fails", arguments: 0..<3)
    func verifiesOpenSSLSignatures(run: Int) throws {
        let r = try peerResult(PeerProcess.run(try Peers.requirePython(), [Peers.script("mldsa_pki.py"), "sign44"]))
        let key = try MLDSA44PublicKey(rawRepresentation: Self.bytes(r["pk"]))
        let message = Self.bytes(r["message"])
        let signature = Self.bytes(r["signature"])
        let withContext = Self.bytes(r["signature_ctx"])
        #expect(key.isValidSignature(signature, for: message))
        #expect(key.isValidSignature(withContext, for: message, context: Array("qssl".utf8)))
        #expect(!key.isValidSignature(withContext, for: message))
        #expect(!key.isValidSignature(signature, for: message + [0]))
        var tampered = signature
        tampered[100] ^= 0x01
        #expect(!key.isValidSignature(tampered, for: message))
        #expect(!key.isValidSignature(Array(signature.dropLast()), for: message))
    }

    @Test("an ML-DSA-44 chain made by cryptography verifies, and an OpenSSL 4 server authenticates with mldsa44 (0x0904)")
    func chainAndHandshake() async throws {
        let dir = try MLDSAInteropTests.cryptographyFiles("mldsa44")
        let roots = try CertificateFiles.certificates(atPath: dir + "/ca.pem")
        let chain = try CertificateFiles.certificates(atPath: dir + "/server.pem")
        let verifier = X509CertificateVerifier(roots: roots)
        #expect(throws: Never.self) { _ = try verifier.verify(chain: chain.map(\.der), role: .server(name: "localhost")) }

        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("openssl4_peer.py"), "server", "\(port)", dir + "/server.pem", dir + "/server.key", "X25519MLKEM768"])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        config.versions = [.tls13]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
        try await client.send(Array("44".utf8))
        _ = try await client.read(expectedBytes: 2)
        await client.close()
        #expect(client.summary.peerSignatureScheme == .mldsa44)
    }
}
