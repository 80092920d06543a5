import Foundation
import NIOQSSL
import QSSL
import QSSLWire
import Testing

/// Parses the one JSON line a Python peer prints.
func peerResult(_ output: String) throws -> [String: Any] {
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else {
        throw PeerError("no result from peer:\n\(output)")
    }
    return object
}

/// OpenSSL 4.0 as bundled in PyPI's cryptography, through pyOpenSSL: the hybrid groups.
@Suite("Interop: OpenSSL 4.0 (pyOpenSSL) with hybrid ML-KEM groups", .serialized)
struct OpenSSL4Tests {
    static let groups: [(String, NamedGroup)] = [("SecP384r1MLKEM1024", .secp384r1MLKEM1024), ("X25519MLKEM768", .x25519MLKEM768)]

    @Test("Q-SSL client ↔ OpenSSL 4 server", arguments: groups)
    func qsslClient(name: String, group: NamedGroup) async throws {
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("openssl4_peer.py"), "server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"), name
            ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(), serverName: "localhost")
        try await client.send(Array("hybrid".utf8))
        let echoed = try await client.read(expectedBytes: 6)
        await client.close()
        let result = try peerResult(peer.finish())
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect((result["openssl"] as? String)?.hasPrefix("OpenSSL 4") == true)
        #expect(echoed == Array("hybrid".utf8))
        #expect(client.summary.group == group)
        #expect(client.summary.helloRetryRequest == (group != .secp384r1MLKEM1024))
    }

    @Test("OpenSSL 4 client ↔ Q-SSL server", arguments: groups)
    func qsslServer(name: String, group: NamedGroup) async throws {
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("openssl4_peer.py"), "client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"), "localhost", name
            ])
        let result = try peerResult(peer.finish())
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["received"] as? String == "hello from OpenSSL 4")
        #expect(outcomes.summaries.first?.group == group)
    }

    @Test("an OpenSSL 4 client sharing only x25519 is moved to SecP384r1MLKEM1024 by HelloRetryRequest")
    func serverHelloRetryToHybrid() async throws {
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("openssl4_peer.py"), "client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"), "localhost",
                "x25519:SecP384r1MLKEM1024"
            ])
        let result = try peerResult(peer.finish())
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(outcomes.summaries.first?.group == .secp384r1MLKEM1024)
        #expect(outcomes.summaries.first?.helloRetryRequest == true)
    }
}

/// tlslite-ng: an independent, pure-Python implementation of the hybrid groups (kyber-py).
@Suite("Interop: tlslite-ng with hybrid ML-KEM groups", .serialized)
struct TLSLiteTests {
    static let groups: [(String, NamedGroup)] = [
        ("secp384r1mlkem1024", .secp384r1MLKEM1024), ("x25519mlkem768", .x25519MLKEM768), ("secp256r1mlkem768", .secp256r1MLKEM768)
    ]

    @Test("tlslite-ng client ↔ Q-SSL server", arguments: groups)
    func qsslServer(name: String, group: NamedGroup) async throws {
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(try Peers.requirePython(), [Peers.script("tlslite_peer.py"), "client", "\(server.port)", "localhost", name])
        let result = try peerResult(peer.finish(timeout: 60))
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["received"] as? String == "hello from tlslite-ng")
        #expect(outcomes.summaries.first?.group == group)
        #expect(outcomes.summaries.first?.helloRetryRequest == false)
    }

    @Test("Q-SSL client ↔ tlslite-ng server, reaching the hybrid through HelloRetryRequest", arguments: groups)
    func qsslClient(name: String, group: NamedGroup) async throws {
        let port = try Peers.freePort()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("tlslite_peer.py"), "server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"), name
            ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        // Share only x25519, which the server does not accept: it must ask for the hybrid.
        let config = qsslClientConfig(groups: [group, .x25519], keyShares: [.x25519])
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: config, serverName: "localhost",
            timeout: .seconds(60))
        try await client.send(Array("hybrid".utf8))
        let echoed = try await client.read(expectedBytes: 6, idleTimeout: .seconds(20))
        await client.close()
        let result = try peerResult(peer.finish(timeout: 60))
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(echoed == Array("hybrid".utf8))
        #expect(client.summary.group == group)
        #expect(client.summary.helloRetryRequest)
    }

    @Test("a tlslite-ng client sharing only x25519 is moved to SecP384r1MLKEM1024 by HelloRetryRequest")
    func serverHelloRetryToHybrid() async throws {
        let (server, outcomes) = try await startQSSLServer()
        let peer = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("tlslite_peer.py"), "client", "\(server.port)", "localhost", "x25519,secp384r1mlkem1024", "x25519"
            ])
        let result = try peerResult(peer.finish(timeout: 60))
        try await server.close()
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(outcomes.summaries.first?.group == .secp384r1MLKEM1024)
        #expect(outcomes.summaries.first?.helloRetryRequest == true)
    }
}

/// GnuTLS 3.7: classical TLS 1.3.
@Suite("Interop: GnuTLS gnutls-serv / gnutls-cli", .serialized)
struct GnuTLSTests {
    static let cases: [(String, String)] = [("X25519", "ecdsa"), ("SECP384R1", "ecdsa"), ("SECP256R1", "rsa")]

    @Test("Q-SSL client ↔ gnutls-serv", arguments: cases)
    func qsslClient(group: String, pki: String) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("gnutls-serv"),
            [
                "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("\(pki).pem"), "--x509keyfile", InteropPKI.shared.path("\(pki).key"),
                "--echo", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-\(group)"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: qsslClientConfig(pki: pki), serverName: "localhost")
        try await client.send(Array("gnutls\n".utf8))
        let echoed = try await client.read(expectedBytes: 7)
        await client.close()
        #expect(echoed == Array("gnutls\n".utf8))
        #expect(client.summary.group.description.lowercased() == group.lowercased())
    }

    @Test("gnutls-cli ↔ Q-SSL server", arguments: cases)
    func qsslServer(group: String, pki: String) async throws {
        let (server, outcomes) = try await startQSSLServer(pki: pki)
        let client = try PeerProcess(
            try Peers.executable("gnutls-cli"),
            [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("\(pki)-ca.pem"),
                "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-\(group)", "localhost"
            ], stdin: "hello-gnutls\n")
        try client.waitFor("Handshake was completed")
        try client.waitFor("hello-gnutls")
        client.terminate()
        try await server.close()
        #expect(outcomes.summaries.first?.group.description.lowercased() == group.lowercased())
    }
}
