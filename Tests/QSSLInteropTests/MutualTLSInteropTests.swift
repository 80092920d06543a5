import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Mutual TLS (client certificates) against OpenSSL 3.0, GnuTLS 3.7, OpenSSL 4.0 (pyOpenSSL),
// tlslite-ng 0.9 and Q-SSL itself, in TLS 1.3 and TLS 1.2, with post-handshake authentication.
// The servers' own certificates are the shared interop ECDSA P-384 ones (InteropPKI); the client
// certificates come from client CAs of their own, so that a server trusting the client CA proves
// it verified the client and nothing else.

private func opensslVersionFlag(_ v: ProtocolVersion) -> String { v == .tls13 ? "-tls1_3" : "-tls1_2" }
private func gnutlsPriority(_ v: ProtocolVersion) -> String { "NORMAL:-VERS-ALL:+VERS-TLS\(v == .tls13 ? "1.3" : "1.2")" }
/// Whether one line of `text` contains every one of `parts`.
func someLine(of text: String, contains parts: String...) -> Bool {
    text.split(separator: "\n").contains { line in parts.allSatisfy { line.contains($0) } }
}
/// TLS 1.3 binds ECDSA schemes to curves; in TLS 1.2 a P-384 key may sign with any hash the
/// server lists, and OpenSSL and GnuTLS pick SHA-256 from our list.
private func expectedECDSASchemes(_ v: ProtocolVersion) -> [SignatureScheme] {
    v == .tls13 ? [.ecdsaSecp384r1SHA384] : [.ecdsaSecp384r1SHA384, .ecdsaSecp256r1SHA256]
}

// MARK: - OpenSSL 3.0

@Suite("Interop: mutual TLS with OpenSSL 3.0 (s_server -Verify / s_client -cert)", .serialized)
struct MutualTLSInteropOpenSSL3Tests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("s_client -cert/-key (ECDSA P-384) ↔ Q-SSL server requiring a client certificate", arguments: versions)
    func sClientWithCertificate(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                "-verify_return_error", MutualTLSInteropOpenSSL3Tests.flag(version), "-cert", pki.path("client.pem"), "-key", pki.path("client.key")
            ], stdin: "hello-mtls\n")
        defer { client.terminate() }
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("hello-mtls")  // s_client prints what it reads, never what it sends
        let output = client.text
        client.terminate()
        try await server.close()
        // Our CertificateRequest listed the client CA (certificate_authorities / TLS 1.2 CA list).
        #expect(output.contains("Acceptable client certificate CA names\nCN = Q-SSL Interop Client CA"), "\(output)")
        #expect(someLine(of: output, contains: "Requested Signature Algorithms:", "ECDSA+SHA384"), "\(output)")
        if version == .tls12 { #expect(someLine(of: output, contains: "Client Certificate Types:", "ECDSA sign"), "\(output)") }
        let summary = try #require(record.summaries.first)
        #expect(summary.version == version)
        #expect(summary.peerIdentity?.subject.contains("client-1") == true, "\(String(describing: summary.peerIdentity))")
        #expect(summary.peerIdentity?.keyAlgorithm == "ECDSA P-384")
        #expect(summary.peerSignatureScheme.map(expectedECDSASchemes(version).contains) == true, "\(String(describing: summary.peerSignatureScheme))")
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("s_client without a certificate is refused: certificate_required (1.3), handshake_failure (1.2)", arguments: versions)
    func sClientWithoutCertificate(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                MutualTLSInteropOpenSSL3Tests.flag(version)
            ], stdin: "no-cert\n")
        defer { client.terminate() }
        let expected: (AlertDescription, String) =
            version == .tls13 ? (.certificateRequired, "SSL alert number 116") : (.handshakeFailure, "SSL alert number 40")
        try client.waitFor(expected.1, timeout: 15)
        let output = client.text
        client.terminate()
        await record.wait { !$0.errors.isEmpty }
        try await server.close()
        #expect(output.contains(version == .tls13 ? "alert certificate required" : "alert handshake failure"), "\(output)")
        #expect(record.tlsErrors.first?.alert == expected.0, "\(record.errors)")
        #expect(record.summaries.isEmpty)
    }

    static let rejections: [(ProtocolVersion, String, AlertDescription)] = [.tls13, .tls12].flatMap { v in
        [(v, "rogue", AlertDescription.unknownCA), (v, "expired", .certificateExpired), (v, "server-only", .unsupportedCertificate)]
    }

    @Test(
        "s_client with an untrusted / expired / serverAuth-only certificate: the Q-SSL server's alert reaches s_client",
        arguments: rejections)
    func sClientRejected(version: ProtocolVersion, file: String, alert: AlertDescription) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                MutualTLSInteropOpenSSL3Tests.flag(version), "-cert", pki.path("\(file).pem"), "-key", pki.path("\(file).key")
            ], stdin: "rejected\n")
        defer { client.terminate() }
        try client.waitFor("SSL alert number \(alert.rawValue)", timeout: 15)
        client.terminate()
        await record.wait { !$0.errors.isEmpty }
        try await server.close()
        #expect(record.tlsErrors.first?.alert == alert, "\(record.errors)")
        #expect(record.summaries.isEmpty)
    }

    @Test("Q-SSL client (ECDSA P-384 certificate) ↔ s_server -Verify 1 -verify_return_error", arguments: versions)
    func sServerVerifies(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
                "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version)
            ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.ecdsaClient),
            serverName: "localhost")
        try await client.send(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let page = String(decoding: try await client.read(), as: UTF8.self)
        await client.close()
        #expect(client.summary.version == version)
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .ecdsaSecp384r1SHA384)
        // s_server -www reports the client certificate it accepted; its verify callback logs the chain.
        #expect(page.hasPrefix("HTTP/1.0 200 ok"), "\(page)")
        #expect(page.contains("Client certificate") && someLine(of: page, contains: "Subject:", "client-1"), "\(page)")
        try server.waitFor("depth=0 CN = client-1, O = Q-SSL interop\nverify return:1", timeout: 5)
    }

    @Test("a client certificate from an unknown CA: s_server sends unknown_ca and the Q-SSL client reports it", arguments: versions)
    func sServerUnknownCA(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
                "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version)
            ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        // s_server lists its CA, and the Q-SSL client would rightly not offer a certificate from
        // another issuer: forget the issuer so that the client sends it anyway.
        var rogue = pki.rogueClient
        rogue.issuerNames = nil
        let outcome = await mtlsClientFailure(port: port, configuration: mtlsClientConfig(rogue))
        #expect(outcome.error?.code.receivedAlert == .unknownCA, "\(outcome.description)")
        try server.waitFor("unable to get local issuer certificate", timeout: 5)
    }

    @Test("a client certificate whose issuer s_server does not list is not sent: s_server refuses the empty Certificate", arguments: versions)
    func sServerIssuerNotListed(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
                "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version)
            ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let outcome = await mtlsClientFailure(port: port, configuration: mtlsClientConfig(pki.rogueClient))
        #expect(outcome.error?.code.receivedAlert == (version == .tls13 ? .certificateRequired : .handshakeFailure), "\(outcome.description)")
        try server.waitFor("peer did not return a certificate", timeout: 5)
    }

    static func flag(_ v: ProtocolVersion) -> String { opensslVersionFlag(v) }
}

// MARK: - GnuTLS 3.7

@Suite("Interop: mutual TLS with GnuTLS 3.7 (gnutls-serv --require-client-cert / gnutls-cli --x509certfile)", .serialized)
struct MutualTLSInteropGnuTLSTests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("gnutls-cli --x509certfile/--x509keyfile ↔ Q-SSL server requiring a client certificate", arguments: versions)
    func gnutlsClient(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(
            try Peers.executable("gnutls-cli"),
            [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "--x509certfile", pki.path("client.pem"), "--x509keyfile", pki.path("client.key"),
                "--priority", gnutlsPriority(version), "localhost"
            ], stdin: "hello-gnutls-mtls\n")
        defer { client.terminate() }
        try client.waitFor("Handshake was completed")
        try client.waitFor("hello-gnutls-mtls\n", timeout: 10)
        let output = client.text
        client.terminate()
        try await server.close()
        #expect(output.contains("- Successfully sent 1 certificate(s) to server."), "\(output)")
        let summary = try #require(record.summaries.first)
        #expect(summary.version == version)
        #expect(summary.peerIdentity?.subject.contains("client-1") == true)
        #expect(summary.peerSignatureScheme.map(expectedECDSASchemes(version).contains) == true, "\(String(describing: summary.peerSignatureScheme))")
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("gnutls-cli without a certificate is refused: certificate_required (1.3), handshake_failure (1.2)", arguments: versions)
    func gnutlsClientWithoutCertificate(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(
            try Peers.executable("gnutls-cli"),
            [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", gnutlsPriority(version), "localhost"
            ], stdin: "no-cert\n")
        defer { client.terminate() }
        let alert: AlertDescription = version == .tls13 ? .certificateRequired : .handshakeFailure
        try client.waitFor("Received alert [\(alert.rawValue)]", timeout: 15)
        client.terminate()
        await record.wait { !$0.errors.isEmpty }
        try await server.close()
        #expect(record.tlsErrors.first?.alert == alert, "\(record.errors)")
    }

    @Test("Q-SSL client (ECDSA P-384 certificate) ↔ gnutls-serv --require-client-cert --verify-client-cert", arguments: versions)
    func gnutlsServer(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("gnutls-serv"),
            [
                "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
                "--x509cafile", pki.path("client-ca.pem"), "--require-client-cert", "--verify-client-cert", "--echo",
                "--priority", gnutlsPriority(version)
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.ecdsaClient),
            serverName: "localhost")
        try await client.send(Array("gnutls-mtls\n".utf8))
        let echoed = try await client.read(expectedBytes: 12, idleTimeout: .seconds(10))
        await client.close()
        #expect(echoed == Array("gnutls-mtls\n".utf8))
        #expect(client.summary.version == version)
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .ecdsaSecp384r1SHA384)
        try server.waitFor("- Status: The certificate is trusted.", timeout: 5)
        try server.waitFor("CN=client-1", timeout: 5)
        #expect(someLine(of: server.text, contains: "Subject:", "CN=client-1"), "\(server.text)")
        #expect(someLine(of: server.text, contains: "Client Signature: ECDSA"), "\(server.text)")
    }

    @Test("a client certificate from an unknown CA: gnutls-serv refuses it (access_denied) and the Q-SSL client reports it", arguments: versions)
    func gnutlsServerUnknownCA(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("gnutls-serv"),
            [
                "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
                "--x509cafile", pki.path("client-ca.pem"), "--require-client-cert", "--verify-client-cert", "--echo",
                "--priority", gnutlsPriority(version)
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        var rogue = pki.rogueClient
        rogue.issuerNames = nil
        let outcome = await mtlsClientFailure(port: port, configuration: mtlsClientConfig(rogue), probe: "x\n")
        // GnuTLS answers an untrusted client chain with access_denied (49), not unknown_ca.
        #expect(outcome.error?.code.receivedAlert == .accessDenied, "\(outcome.description)")
        try server.waitFor("Error in the certificate", timeout: 5)
    }
}
