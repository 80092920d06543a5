import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Post-handshake client authentication (RFC 8446 §4.6.2) with OpenSSL 3.0.

/// A named pipe that becomes a peer's standard input, so that the test can type commands
/// (s_server's `c`) while the peer runs.
final class MTLSTypedInput {
    let path: String
    private var fd: Int32 = -1

    init(directory: String) throws {
        path = directory + "/stdin-\(UInt32.random(in: 0...UInt32.max))"
        guard mkfifo(path, 0o600) == 0 else { throw PeerError("mkfifo \(path): errno \(errno)") }
        // A peer that exits while we still write must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Starts `executable` with the pipe as its standard input (through sh's redirection).
    func start(_ executable: String, _ arguments: [String]) throws -> PeerProcess {
        let peer = try PeerProcess(
            "/bin/sh", ["-c", "exec \"$@\" < \"$QSSL_TYPED_INPUT\"", "sh", executable] + arguments,
            environment: ["QSSL_TYPED_INPUT": path])
        // Opening the write end succeeds once the peer's shell has the read end open.
        let deadline = Date().addingTimeInterval(10)
        while fd < 0 {
            fd = open(path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { break }
            guard errno == ENXIO, Date() < deadline else {
                peer.terminate()
                throw PeerError("cannot open \(path) for writing: errno \(errno)\n\(peer.text)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return peer
    }

    func type(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func finish() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(path)
    }

    deinit { finish() }
}

@Suite("Interop: post-handshake client authentication with OpenSSL 3.0", .serialized)
struct MutualTLSInteropPostHandshakeTests {
    @Test("s_client -enable_pha -cert/-key ↔ Q-SSL server calling requestClientCertificate() after the handshake")
    func sClientAnswersRequest() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .none, clientRoots: [pki.clientCA.certificate], requestAfterHandshake: true)
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                "-verify_return_error", "-tls1_3", "-enable_pha", "-cert", pki.path("client.pem"), "-key", pki.path("client.key")
            ], stdin: "hello-pha\n")
        defer { client.terminate() }
        try client.waitFor("Verify return code: 0 (ok)")
        // The server tells the client who it proved to be once the answer has verified.
        try client.waitFor("authenticated:", timeout: 15)
        try client.waitFor("hello-pha")
        let output = client.text
        client.terminate()
        try await server.close()
        #expect(someLine(of: output, contains: "authenticated:", "CN=client-1"), "\(output)")
        let summary = try #require(record.summaries.first)
        #expect(summary.version == .tls13)
        #expect(summary.peerIdentity == nil, "no certificate was asked for during the handshake")
        #expect(record.requestResults.count == 1, "\(record.requestResults)")
        if case .failure(let error) = record.requestResults.first { Issue.record("requestClientCertificate() failed: \(error)") }
        let identity = try #require(record.authenticated.first ?? nil)
        #expect(identity.subject.contains("client-1"))
        #expect(identity.handshakeSignatureScheme == .ecdsaSecp384r1SHA384)
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("s_client -enable_pha without a certificate answers with an empty Certificate: clientAuthenticated(nil)")
    func sClientDeclines() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .none, clientRoots: [pki.clientCA.certificate], requestAfterHandshake: true)
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                "-verify_return_error", "-tls1_3", "-enable_pha"
            ], stdin: "hello-pha\n")
        defer { client.terminate() }
        try client.waitFor("authenticated:none", timeout: 15)
        client.terminate()
        try await server.close()
        #expect(record.authenticated.count == 1 && record.authenticated.first! == nil)
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("s_client without -enable_pha: requestClientCertificate() fails as misuse and the connection goes on")
    func sClientDidNotOffer() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .none, clientRoots: [pki.clientCA.certificate], requestAfterHandshake: true)
        let client = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
                "-verify_return_error", "-tls1_3", "-cert", pki.path("client.pem"), "-key", pki.path("client.key")
            ], stdin: "still-here\n")
        defer { client.terminate() }
        try client.waitFor("still-here")
        await record.wait { !$0.requestResults.isEmpty }
        client.terminate()
        try await server.close()
        let result = try #require(record.requestResults.first)
        if case .failure(let error) = result {
            #expect(tlsError(error)?.code.isAPIMisuse == true, "\(error)")
        } else {
            Issue.record("requestClientCertificate() succeeded for a client that did not offer post_handshake_auth")
        }
        #expect(record.authenticated.isEmpty)
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    /// s_server (sv_body mode, stdin from a pipe we type into) for a post-handshake request.
    static func startSServer(port: Int, input: MTLSTypedInput, requestDuringHandshake: Bool) throws -> PeerProcess {
        let pki = MTLSInteropPKI.shared
        // OpenSSL 3.0's s_server has no option to defer the request to after the handshake:
        // -verify asks during the handshake too. Without it, `c` sets VERIFY_PEER and sends a
        // post-handshake CertificateRequest; the verify callback logs the chain either way.
        return try input.start(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
                "-CAfile", pki.path("client-ca.pem"), "-verify_return_error", "-tls1_3"
            ] + (requestDuringHandshake ? ["-verify", "1"] : []))
    }

    @Test(
        "Q-SSL client offering post_handshake_auth ↔ s_server: typing `c` sends a CertificateRequest the client answers",
        arguments: [false, true])
    func sServerRequests(requestDuringHandshake: Bool) async throws {
        let pki = MTLSInteropPKI.shared
        let port = try Peers.freePort()
        let input = try MTLSTypedInput(directory: pki.directory)
        defer { input.finish() }
        let server = try Self.startSServer(port: port, input: input, requestDuringHandshake: requestDuringHandshake)
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let config = mtlsClientConfig(pki.ecdsaClient, versions: [.tls13]) { $0.offerPostHandshakeAuthentication = true }
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
        try server.waitFor("CIPHER is")
        let verified = "depth=0 CN = client-1, O = Q-SSL interop\nverify return:1"
        // With -verify the certificate went in the handshake already; without, not at all yet.
        #expect(client.summary.clientCertificateSent == requestDuringHandshake)
        #expect(occurrences(verified, in: server.text) == (requestDuringHandshake ? 1 : 0), "\(server.text)")

        input.type("c\n")
        try server.waitFor("SSL_do_handshake -> 1", timeout: 10)
        let deadline = Date().addingTimeInterval(10)
        while occurrences(verified, in: server.text) < (requestDuringHandshake ? 2 : 1) && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(
            occurrences(verified, in: server.text) == (requestDuringHandshake ? 2 : 1), "s_server did not verify the post-handshake answer:\n\(server.text)")

        // Traffic goes on under the same keys, both ways.
        try await client.send(Array("after-pha\n".utf8))
        try server.waitFor("after-pha", timeout: 10)
        input.type("from-s_server\n")
        let echoed = String(decoding: try await client.read(expectedBytes: 14, idleTimeout: .seconds(10)), as: UTF8.self)
        #expect(echoed == "from-s_server\n")
        let error = await client.error
        let serverOutput = server.text
        await client.close()
        #expect(error == nil, "\(String(describing: error))")
        #expect(!serverOutput.contains(":error:"), "\(serverOutput)")
    }
}

private func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
