import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Mutual TLS with ML-DSA-65 client certificates: OpenSSL 4.0 and tlslite-ng 0.9 (TLS 1.3).

@Suite("Interop: ML-DSA-65 client certificates with OpenSSL 4.0 and tlslite-ng 0.9 (TLS 1.3)", .serialized)
struct MutualTLSInteropMLDSATests {
    /// An ML-DSA-65 client CA, certificate and key made by cryptography (OpenSSL 4.0).
    static func cryptographyClientFiles() throws -> String {
        let dir = MTLSInteropPKI.shared.directory + "/cryptography-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let result = try peerResult(PeerProcess.run(try Peers.requirePython(), [Peers.script("mtls_peer.py"), "make-client", dir]))
        guard result["ok"] as? Bool == true else { throw PeerError("cryptography could not make an ML-DSA-65 client certificate: \(result)") }
        return dir
    }

    @Test("OpenSSL 4 client with an ML-DSA-65 certificate (Q-SSL's, then cryptography's) ↔ Q-SSL server requiring one", arguments: [false, true])
    func openssl4Client(theirCertificate: Bool) async throws {
        let pki = MTLSInteropPKI.shared
        var (ca, cert, key) = (pki.path("mldsa-client-ca.pem"), pki.path("mldsa-client.pem"), pki.path("mldsa-client.key"))
        if theirCertificate {
            let dir = try Self.cryptographyClientFiles()
            (ca, cert, key) = (dir + "/client-ca.pem", dir + "/client.pem", dir + "/client.key")
        }
        let roots = try CertificateFiles.certificates(atPath: ca)
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: roots)
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("mtls_peer.py"), "openssl4-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"), "localhost",
                "SecP384r1MLKEM1024", cert, key
            ])
        let result = try peerResult(peer.finish(timeout: 60))
        await record.wait { !$0.summaries.isEmpty || !$0.errors.isEmpty }
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect((result["openssl"] as? String)?.hasPrefix("OpenSSL 4") == true)
        #expect(result["received"] as? String == "hello from OpenSSL 4 with a client certificate")
        let summary = try #require(record.summaries.first, "\(record.errors)")
        #expect(summary.group == .secp384r1MLKEM1024)
        #expect(summary.peerSignatureScheme == .mldsa65)
        #expect(summary.peerIdentity?.keyAlgorithm.hasPrefix("ML-DSA-65") == true, "\(String(describing: summary.peerIdentity))")
        #expect(summary.peerIdentity?.subject.contains(theirCertificate ? "cryptography-client" : "mldsa-client") == true)
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("Q-SSL client with an ML-DSA-65 certificate ↔ OpenSSL 4 server verifying it")
    func openssl4Server() async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("mtls_peer.py"), "openssl4-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
                pki.path("mldsa-client-ca.pem"), "SecP384r1MLKEM1024"
            ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.mldsaClient, versions: [.tls13]),
            serverName: "localhost", timeout: .seconds(30))
        try await client.send(Array("ml-dsa-client".utf8))
        let echoed = try await client.read(expectedBytes: 13, idleTimeout: .seconds(10))
        await client.close()
        let result = try peerResult(peer.finish())
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(echoed == Array("ml-dsa-client".utf8))
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .mldsa65)
        #expect(client.summary.group == .secp384r1MLKEM1024)
        #expect(result["client_key"] as? String == "MLDSA65PublicKey", "\(result)")
        #expect((result["client_subject"] as? String)?.contains("CN=mldsa-client") == true, "\(result)")
        let verify = result["verify"] as? [[String: Any]] ?? []
        #expect(verify.contains { $0["depth"] as? Int == 0 && $0["ok"] as? Bool == true }, "OpenSSL verified the leaf: \(verify)")
    }

    @Test("tlslite-ng 0.9 client with a Q-SSL-made ML-DSA-65 certificate ↔ Q-SSL server requiring one")
    func tlsliteClient() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.mldsaCA.certificate])
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("mtls_peer.py"), "tlslite-client", "\(server.port)", "localhost", "x25519mlkem768",
                pki.path("mldsa-client.pem"), pki.path("mldsa-client.key")
            ])
        let result = try peerResult(peer.finish(timeout: 90))
        await record.wait { !$0.summaries.isEmpty || !$0.errors.isEmpty }
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["received"] as? String == "hello from tlslite-ng with a client certificate")
        let summary = try #require(record.summaries.first, "\(record.errors)")
        #expect(summary.group == .x25519MLKEM768)
        #expect(summary.peerSignatureScheme == .mldsa65)
        #expect(summary.peerIdentity?.subject.contains("mldsa-client") == true)
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("Q-SSL client with an ML-DSA-65 certificate ↔ tlslite-ng 0.9 server requiring one")
    func tlsliteServer() async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("mtls_peer.py"), "tlslite-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
                "secp384r1mlkem1024", pki.path("mldsa-client-ca.pem")
            ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.mldsaClient, versions: [.tls13]),
            serverName: "localhost", timeout: .seconds(60))
        try await client.send(Array("ml-dsa-client".utf8))
        let echoed = try await client.read(expectedBytes: 13, idleTimeout: .seconds(20))
        await client.close()
        let result = try peerResult(peer.finish(timeout: 60))
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(echoed == Array("ml-dsa-client".utf8))
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .mldsa65)
        #expect(result["client_key_type"] as? String == "mldsa65", "\(result)")
        #expect(result["chain_ok"] as? Bool == true, "cryptography verified the chain tlslite-ng received: \(result)")
    }
}
