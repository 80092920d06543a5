import Foundation
import NIOQSSL
import QSSL
import QSSLWire
import Testing

/// TLS 1.2 against OpenSSL 3.0, GnuTLS and tlslite-ng, and version negotiation with peers
/// limited to one version.
@Suite("Interop: TLS 1.2 and version negotiation", .serialized)
struct TLS12InteropTests {
    /// (OpenSSL cipher name, our suite, certificate)
    static let suites: [(String, CipherSuite, String)] = [
        ("ECDHE-ECDSA-AES256-GCM-SHA384", .ecdheECDSAWithAES256GCMSHA384, "ecdsa"),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", .ecdheECDSAWithAES128GCMSHA256, "ecdsa"),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", .ecdheECDSAWithChaCha20Poly1305SHA256, "ecdsa"),
        ("ECDHE-RSA-AES256-GCM-SHA384", .ecdheRSAWithAES256GCMSHA384, "rsa"),
        ("ECDHE-RSA-AES128-GCM-SHA256", .ecdheRSAWithAES128GCMSHA256, "rsa"),
        ("ECDHE-RSA-CHACHA20-POLY1305", .ecdheRSAWithChaCha20Poly1305SHA256, "rsa")
    ]
    static let groups = ["x25519", "secp384r1", "secp256r1"]

    static var matrix: [(String, CipherSuite, String, String)] {
        suites.flatMap { s in groups.map { (s.0, s.1, s.2, $0) } }
    }

    @Test("Q-SSL client ↔ s_server over TLS 1.2", arguments: matrix)
    func qsslClient(cipher: String, suite: CipherSuite, pki: String, group: String) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("\(pki).pem"), "-key", InteropPKI.shared.path("\(pki).key"),
                "-www", "-tls1_2", "-cipher", cipher, "-groups", group
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(pki: pki), serverName: "localhost")
        try await client.send(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let answer = String(decoding: try await client.read(), as: UTF8.self)
        await client.close()
        #expect(answer.hasPrefix("HTTP/1.0 200 ok"))
        #expect(client.summary.version == .tls12)
        #expect(client.summary.cipherSuite == suite)
        #expect(client.summary.group == NamedGroup(name: group))
    }

    @Test("s_client ↔ Q-SSL server over TLS 1.2, with extended master secret", arguments: matrix)
    func qsslServer(cipher: String, suite: CipherSuite, pki: String, group: String) async throws {
        let (server, outcomes) = try await startQSSLServer(pki: pki) { $0.groups = [NamedGroup(name: group)!] + Defaults.groups }
        // RFC 8422 §5.1: a TLS 1.2 client must list the curve of an ECDSA certificate (P-384 here)
        // among its groups; the key exchange group is still the first.
        let groups = pki == "ecdsa" && group != "secp384r1" ? "\(group):secp384r1" : group
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("\(pki)-ca.pem"), "-servername", "localhost",
                "-verify_return_error", "-tls1_2", "-cipher", cipher, "-groups", groups
            ], stdin: "hello-tls12\n")
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("---\nhello-tls12")
        let output = client.text
        client.terminate()
        try await server.close()
        #expect(output.contains("Extended master secret: yes"))
        #expect(outcomes.summaries.first?.version == .tls12)
        #expect(outcomes.summaries.first?.cipherSuite == suite)
        #expect(outcomes.summaries.first?.group == NamedGroup(name: group))
    }

    @Test("Q-SSL client ↔ gnutls-serv over TLS 1.2", arguments: [("ecdsa", "SECP384R1"), ("rsa", "X25519")])
    func gnutlsServer(pki: String, group: String) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("gnutls-serv"),
            [
                "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("\(pki).pem"), "--x509keyfile", InteropPKI.shared.path("\(pki).key"),
                "--echo", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-\(group)"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(pki: pki), serverName: "localhost")
        try await client.send(Array("gnutls12\n".utf8))
        let echoed = try await client.read(expectedBytes: 9)
        await client.close()
        #expect(echoed == Array("gnutls12\n".utf8))
        #expect(client.summary.version == .tls12)
    }

    @Test("gnutls-cli ↔ Q-SSL server over TLS 1.2", arguments: [("ecdsa", "SECP256R1"), ("rsa", "SECP384R1")])
    func gnutlsClient(pki: String, group: String) async throws {
        let (server, outcomes) = try await startQSSLServer(pki: pki) { $0.groups = [NamedGroup(name: group.lowercased())!] + Defaults.groups }
        // RFC 8422 §5.1: the client lists the ECDSA certificate's curve (P-384) too.
        let client = try PeerProcess(
            try Peers.executable("gnutls-cli"),
            [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("\(pki)-ca.pem"),
                "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-GROUP-ALL:+GROUP-\(group):+GROUP-SECP384R1", "localhost"
            ], stdin: "hello-gnutls12\n")
        try client.waitFor("Handshake was completed")
        try client.waitFor("hello-gnutls12")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.first?.version == .tls12)
        #expect(outcomes.summaries.first?.group.description.lowercased() == group.lowercased())
    }

    @Test("tlslite-ng client ↔ Q-SSL server over TLS 1.2")
    func tlsliteClient() async throws {
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("tlslite_peer.py"), "client", "\(server.port)", "localhost", "x25519,secp384r1"],
            environment: ["TLSLITE_VERSION": "1.2"])
        let result = try peerResult(peer.finish(timeout: 60))
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["version"] as? String == "TLSv1.2")
        #expect(outcomes.summaries.first?.version == .tls12)
    }

    @Test("without extended master secret (a legacy TLS 1.2 peer): the legacy master secret, and data flows both ways")
    func legacyMasterSecret() async throws {
        // tlslite-ng client without EMS → Q-SSL server (standard suites only: the hybrid ones require EMS).
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(
            try Peers.requirePython(), [Peers.script("tlslite_peer.py"), "client", "\(server.port)", "localhost", "x25519,secp384r1"],
            environment: ["TLSLITE_VERSION": "1.2", "TLSLITE_NO_EMS": "1"])
        let result = try peerResult(peer.finish(timeout: 60))
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["received"] as? String == "hello from tlslite-ng", "the echo came back through the legacy-master-secret keys")
        #expect(outcomes.summaries.first?.version == .tls12)
        #expect(outcomes.summaries.first.map { TLS12CipherSuite.named($0.cipherSuite)?.isHybrid == false } == true)

        // Q-SSL client → tlslite-ng server without EMS.
        let port = try Peers.freePort()
        let serverPeer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("tlslite_peer.py"), "server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
                "x25519,secp256r1"
            ], environment: ["TLSLITE_VERSION": "1.2", "TLSLITE_NO_EMS": "1"])
        defer { serverPeer.terminate() }
        try serverPeer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: qsslClientConfig(), serverName: "localhost",
            timeout: .seconds(60))
        try await client.send(Array("legacy".utf8))
        #expect(try await client.read(expectedBytes: 6, idleTimeout: .seconds(20)) == Array("legacy".utf8))
        await client.close()
        #expect(client.summary.version == .tls12)
        #expect(try peerResult(serverPeer.finish(timeout: 60))["ok"] as? Bool == true)
    }

    @Test("Q-SSL client ↔ tlslite-ng server over TLS 1.2")
    func tlsliteServer() async throws {
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("tlslite_peer.py"), "server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
                "x25519,secp256r1"
            ], environment: ["TLSLITE_VERSION": "1.2"])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: qsslClientConfig(), serverName: "localhost",
            timeout: .seconds(60))
        try await client.send(Array("tls12".utf8))
        let echoed = try await client.read(expectedBytes: 5, idleTimeout: .seconds(20))
        await client.close()
        #expect(echoed == Array("tls12".utf8))
        #expect(client.summary.version == .tls12)
        let result = try peerResult(peer.finish(timeout: 60))
        #expect(result["ok"] as? Bool == true, "\(result)")
    }

    @Test("a client offering 1.2 and 1.3 gets what a version-limited s_server speaks", arguments: [("-tls1_2", ProtocolVersion.tls12), ("-tls1_3", .tls13)])
    func versionLimitedServer(flag: String, version: ProtocolVersion) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"), "-www",
                flag
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(), serverName: "localhost")
        await client.close()
        #expect(client.summary.version == version)
    }

    @Test(
        "a Q-SSL server speaking 1.2 and 1.3 answers a version-limited s_client in its version",
        arguments: [("-tls1_2", ProtocolVersion.tls12), ("-tls1_3", .tls13)])
    func versionLimitedClient(flag: String, version: ProtocolVersion) async throws {
        let (server, outcomes) = try await startQSSLServer()
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                "-verify_return_error", flag
            ], stdin: "v\n")
        try client.waitFor("Verify return code: 0 (ok)")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.first?.version == version)
    }

    @Test("a TLS 1.3-only Q-SSL client and a TLS 1.2-only s_server fail with protocol_version")
    func noCommonVersion() async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"), "-www",
                "-tls1_2"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        do {
            _ = try await NIOQSSLClient.connect(
                host: "127.0.0.1", port: port, configuration: qsslClientConfig { $0.versions = [.tls13] }, serverName: "localhost")
            Issue.record("handshake succeeded without a common version")
        } catch {
            #expect(tlsError(error)?.alertSentOrReceived == .protocolVersion, "\(error)")
        }
    }

    @Test("a TLS 1.3-only Q-SSL server refuses a TLS 1.2-only s_client with protocol_version")
    func serverNoCommonVersion() async throws {
        let (server, outcomes) = try await startQSSLServer { $0.versions = [.tls13] }
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_2"
            ], stdin: "x\n")
        let output = client.finish(timeout: 10)
        try await server.close()
        #expect(output.contains("alert protocol version"), "\(output)")
        #expect(outcomes.errors.compactMap { tlsError($0)?.alert }.first == .protocolVersion)
    }
}

extension TLSError {
    var alertSentOrReceived: AlertDescription? {
        if let a = code.receivedAlert { return a }
        return alert
    }
}
