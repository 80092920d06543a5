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

/// Client certificates and their CAs, in memory and on disk.
struct MTLSInteropPKI: Sendable {
    let directory: String
    /// ECDSA P-384 client CA and a client certificate it issued (EKU clientAuth).
    let clientCA: PKIBuilder.Issuer
    let ecdsaClient: CertifiedKey
    /// A CA no server trusts, and a client certificate it issued.
    let rogueCA: PKIBuilder.Issuer
    let rogueClient: CertifiedKey
    /// From the client CA, but expired, and with EKU serverAuth only.
    let expiredClient: CertifiedKey
    let serverOnlyClient: CertifiedKey
    /// ML-DSA-65 client CA and client certificate.
    let mldsaCA: PKIBuilder.Issuer
    let mldsaClient: CertifiedKey
    /// Composite ML-DSA-65 + ECDSA P-384 client CA and client certificate.
    let compositeCA: PKIBuilder.Issuer
    let compositeClient: CertifiedKey

    static let shared: MTLSInteropPKI = {
        do { return try MTLSInteropPKI() } catch { fatalError("cannot create the mTLS interop PKI: \(error)") }
    }()

    init() throws {
        let directory = InteropPKI.shared.directory + "/mtls"
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func issue(_ algorithm: PKIBuilder.Algorithm, _ subject: String, by ca: PKIBuilder.Issuer, file: String,
                   serverAuthOnly: Bool = false, notAfter: Date = Date().addingTimeInterval(365 * 86400)) throws -> CertifiedKey {
            let key = try algorithm.generateKey()
            let cert = try PKIBuilder.issue(subject: subject, key: key, by: ca, client: true, extendedKeyUsage: serverAuthOnly ? [.serverAuth] : nil,
                                            notBefore: min(Date().addingTimeInterval(-3600), notAfter.addingTimeInterval(-2 * 86400)), notAfter: notAfter)
            try CertificateFiles.pem([cert]).write(toFile: directory + "/\(file).pem", atomically: true, encoding: .utf8)
            try CertificateFiles.pkcs8PEM(key).write(toFile: directory + "/\(file).key", atomically: true, encoding: .utf8)
            return try CertificateFiles.certifiedKey(chain: [cert], key: key)
        }
        func ca(_ algorithm: PKIBuilder.Algorithm, _ subject: String, file: String) throws -> PKIBuilder.Issuer {
            let issuer = try PKIBuilder.makeCA(subject: subject, key: algorithm.generateKey())
            try CertificateFiles.pem([issuer.certificate]).write(toFile: directory + "/\(file).pem", atomically: true, encoding: .utf8)
            return issuer
        }
        clientCA = try ca(.ecdsaP384, "CN=Q-SSL Interop Client CA, O=Q-SSL", file: "client-ca")
        ecdsaClient = try issue(.ecdsaP384, "CN=client-1, O=Q-SSL interop", by: clientCA, file: "client")
        expiredClient = try issue(.ecdsaP384, "CN=expired-client, O=Q-SSL interop", by: clientCA, file: "expired",
                                  notAfter: Date().addingTimeInterval(-3600))
        serverOnlyClient = try issue(.ecdsaP384, "CN=server-only-client, O=Q-SSL interop", by: clientCA, file: "server-only",
                                     serverAuthOnly: true)
        rogueCA = try ca(.ecdsaP384, "CN=Rogue CA, O=Nobody", file: "rogue-ca")
        rogueClient = try issue(.ecdsaP384, "CN=rogue-client, O=Nobody", by: rogueCA, file: "rogue")
        mldsaCA = try ca(.mldsa65, "CN=Q-SSL Interop ML-DSA-65 Client CA, O=Q-SSL", file: "mldsa-client-ca")
        mldsaClient = try issue(.mldsa65, "CN=mldsa-client, O=Q-SSL interop", by: mldsaCA, file: "mldsa-client")
        compositeCA = try ca(.mldsa65ECDSAP384, "CN=Q-SSL Interop Composite Client CA, O=Q-SSL", file: "composite-client-ca")
        compositeClient = try issue(.mldsa65ECDSAP384, "CN=composite-client, O=Q-SSL interop", by: compositeCA, file: "composite-client")
    }

    func path(_ name: String) -> String { directory + "/" + name }
}

/// Behind the TLS handler of an in-process Q-SSL server: echoes, records what happened and,
/// when asked to, requests a client certificate right after the handshake (RFC 8446 §4.6.2) and
/// tells the client who it proved to be ("authenticated:<subject>" or "authenticated:none").
final class MTLSServerApp: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let record: MTLSServerRecord
    let requestAfterHandshake: Bool

    init(record: MTLSServerRecord, requestAfterHandshake: Bool) {
        self.record = record
        self.requestAfterHandshake = requestAfterHandshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? QSSLUserEvent {
            switch e {
            case .handshakeCompleted(let summary):
                record.add(summary: summary)
                if requestAfterHandshake {
                    let promise = context.eventLoop.makePromise(of: Void.self)
                    let record = self.record
                    promise.futureResult.whenComplete { record.add(requestResult: $0) }
                    context.triggerUserOutboundEvent(QSSLOutboundRequest.requestClientCertificate, promise: promise)
                }
            case .clientAuthenticated(let identity):
                record.add(authenticated: identity)
                let line = "authenticated:\(identity?.subject ?? "none")\n"
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: line)), promise: nil)
            case .sessionIssued:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NIOQSSLError, case .uncleanShutdown = e { return }
        record.add(error: error)
    }
}

/// What the server's connections did (shared by all of them).
final class MTLSServerRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var _summaries: [HandshakeSummary] = []
    private var _errors: [Error] = []
    private var _authenticated: [PeerIdentity?] = []
    private var _requestResults: [Result<Void, Error>] = []

    var summaries: [HandshakeSummary] { lock.withLock { _summaries } }
    var errors: [Error] { lock.withLock { _errors } }
    var tlsErrors: [TLSError] { errors.compactMap(tlsError) }
    var authenticated: [PeerIdentity?] { lock.withLock { _authenticated } }
    var requestResults: [Result<Void, Error>] { lock.withLock { _requestResults } }

    func add(summary: HandshakeSummary) { lock.withLock { _summaries.append(summary) } }
    func add(error: Error) { lock.withLock { _errors.append(error) } }
    func add(authenticated: PeerIdentity?) { lock.withLock { _authenticated.append(authenticated) } }
    func add(requestResult: Result<Void, Error>) { lock.withLock { _requestResults.append(requestResult) } }

    /// Waits (polling) until `condition` holds or `timeout` passes.
    func wait(timeout: Double = 15, until condition: (MTLSServerRecord) -> Bool) async {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition(self) && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// An in-process Q-SSL server (ECDSA P-384 interop certificate) asking for client certificates.
func startMTLSServer(policy: ClientAuthenticationPolicy, clientRoots: [X509Certificate], requestAfterHandshake: Bool = false,
                     configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> (NIOQSSLServer, MTLSServerRecord) {
    var config = ServerConfiguration(provider: .swiftCrypto, certificates: [try InteropPKI.shared.ecdsa.serverCertifiedKey])
    config.clientAuthentication = policy
    config.clientCertificateVerifier = X509CertificateVerifier(roots: clientRoots)
    config.allowPostHandshakeAuthentication = requestAfterHandshake
    configure(&config)
    let record = MTLSServerRecord()
    let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config) {
        [MTLSServerApp(record: record, requestAfterHandshake: requestAfterHandshake)]
    }
    return (server, record)
}

/// A Q-SSL client of the interop servers (which use the shared ECDSA P-384 server PKI).
func mtlsClientConfig(_ certificate: CertifiedKey?, versions: [ProtocolVersion] = Defaults.versions,
                      configure: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
    qsslClientConfig {
        $0.clientCertificate = certificate
        $0.versions = versions
        configure(&$0)
    }
}

/// Connects, sends `probe` and reads the answer; returns the TLS error the Q-SSL client ended
/// with, if any. In TLS 1.3 the client's handshake completes before the server has judged the
/// client's certificate, so the server's alert arrives after `connect` returns: it is read here.
func mtlsClientFailure(port: Int, configuration: ClientConfiguration, probe: String = "GET / HTTP/1.0\r\n\r\n") async -> (error: TLSError?, handshakeCompleted: Bool, description: String) {
    let client: NIOQSSLClient
    do {
        client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: configuration, serverName: "localhost",
                                                 timeout: .seconds(30))
    } catch {
        return (tlsError(error), false, "\(error)")
    }
    var failure: Error?
    do {
        try await client.send(Array(probe.utf8))
        _ = try await client.read(idleTimeout: .seconds(10))
    } catch {
        failure = (error as? NIOQSSLClient.IncompleteRead)?.underlying ?? error
    }
    let recorded = await client.error
    await client.close()
    let error = recorded ?? failure
    return (error.flatMap(tlsError), true, error.map { "\($0)" } ?? "no error")
}

private func opensslVersionFlag(_ v: ProtocolVersion) -> String { v == .tls13 ? "-tls1_3" : "-tls1_2" }
private func gnutlsPriority(_ v: ProtocolVersion) -> String { "NORMAL:-VERS-ALL:+VERS-TLS\(v == .tls13 ? "1.3" : "1.2")" }
private func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
/// Whether one line of `text` contains every one of `parts`.
private func someLine(of text: String, contains parts: String...) -> Bool {
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
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            "-verify_return_error", MutualTLSInteropOpenSSL3Tests.flag(version), "-cert", pki.path("client.pem"), "-key", pki.path("client.key"),
        ], stdin: "hello-mtls\n")
        defer { client.terminate() }
        try client.waitFor("Verify return code: 0 (ok)")
        try client.waitFor("hello-mtls")   // s_client prints what it reads, never what it sends
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
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            MutualTLSInteropOpenSSL3Tests.flag(version),
        ], stdin: "no-cert\n")
        defer { client.terminate() }
        let expected: (AlertDescription, String) = version == .tls13 ? (.certificateRequired, "SSL alert number 116") : (.handshakeFailure, "SSL alert number 40")
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

    @Test("s_client with an untrusted / expired / serverAuth-only certificate: the Q-SSL server's alert reaches s_client",
          arguments: rejections)
    func sClientRejected(version: ProtocolVersion, file: String, alert: AlertDescription) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            MutualTLSInteropOpenSSL3Tests.flag(version), "-cert", pki.path("\(file).pem"), "-key", pki.path("\(file).key"),
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
        let server = try PeerProcess(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
            "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version),
        ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.ecdsaClient),
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
        let server = try PeerProcess(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
            "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version),
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
        let server = try PeerProcess(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
            "-Verify", "1", "-verify_return_error", "-CAfile", pki.path("client-ca.pem"), "-www", MutualTLSInteropOpenSSL3Tests.flag(version),
        ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let outcome = await mtlsClientFailure(port: port, configuration: mtlsClientConfig(pki.rogueClient))
        #expect(outcome.error?.code.receivedAlert == (version == .tls13 ? .certificateRequired : .handshakeFailure), "\(outcome.description)")
        try server.waitFor("peer did not return a certificate", timeout: 5)
    }

    static func flag(_ v: ProtocolVersion) -> String { opensslVersionFlag(v) }
}

// MARK: - Post-handshake authentication with OpenSSL 3.0

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
        let peer = try PeerProcess("/bin/sh", ["-c", "exec \"$@\" < \"$QSSL_TYPED_INPUT\"", "sh", executable] + arguments,
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
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            "-verify_return_error", "-tls1_3", "-enable_pha", "-cert", pki.path("client.pem"), "-key", pki.path("client.key"),
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
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            "-verify_return_error", "-tls1_3", "-enable_pha",
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
        let client = try PeerProcess(try Peers.executable("openssl"), [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"), "-servername", "localhost",
            "-verify_return_error", "-tls1_3", "-cert", pki.path("client.pem"), "-key", pki.path("client.key"),
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
        return try input.start(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"), "-key", InteropPKI.shared.path("ecdsa.key"),
            "-CAfile", pki.path("client-ca.pem"), "-verify_return_error", "-tls1_3",
        ] + (requestDuringHandshake ? ["-verify", "1"] : []))
    }

    @Test("Q-SSL client offering post_handshake_auth ↔ s_server: typing `c` sends a CertificateRequest the client answers",
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
        #expect(occurrences(verified, in: server.text) == (requestDuringHandshake ? 2 : 1), "s_server did not verify the post-handshake answer:\n\(server.text)")

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

// MARK: - GnuTLS 3.7

@Suite("Interop: mutual TLS with GnuTLS 3.7 (gnutls-serv --require-client-cert / gnutls-cli --x509certfile)", .serialized)
struct MutualTLSInteropGnuTLSTests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("gnutls-cli --x509certfile/--x509keyfile ↔ Q-SSL server requiring a client certificate", arguments: versions)
    func gnutlsClient(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        let client = try PeerProcess(try Peers.executable("gnutls-cli"), [
            "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"),
            "--x509certfile", pki.path("client.pem"), "--x509keyfile", pki.path("client.key"),
            "--priority", gnutlsPriority(version), "localhost",
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
        let client = try PeerProcess(try Peers.executable("gnutls-cli"), [
            "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", gnutlsPriority(version), "localhost",
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
        let server = try PeerProcess(try Peers.executable("gnutls-serv"), [
            "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
            "--x509cafile", pki.path("client-ca.pem"), "--require-client-cert", "--verify-client-cert", "--echo",
            "--priority", gnutlsPriority(version),
        ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.ecdsaClient),
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
        let server = try PeerProcess(try Peers.executable("gnutls-serv"), [
            "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
            "--x509cafile", pki.path("client-ca.pem"), "--require-client-cert", "--verify-client-cert", "--echo",
            "--priority", gnutlsPriority(version),
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

// MARK: - OpenSSL 4.0 and tlslite-ng 0.9 with ML-DSA-65 client certificates (TLS 1.3)

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
        let peer = try PeerProcess(try Peers.requirePython(), [
            Peers.script("mtls_peer.py"), "openssl4-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"), "localhost",
            "SecP384r1MLKEM1024", cert, key,
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
        let peer = try PeerProcess(try Peers.requirePython(), [
            Peers.script("mtls_peer.py"), "openssl4-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
            pki.path("mldsa-client-ca.pem"), "SecP384r1MLKEM1024",
        ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.mldsaClient, versions: [.tls13]),
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
        let peer = try PeerProcess(try Peers.requirePython(), [
            Peers.script("mtls_peer.py"), "tlslite-client", "\(server.port)", "localhost", "x25519mlkem768",
            pki.path("mldsa-client.pem"), pki.path("mldsa-client.key"),
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
        let peer = try PeerProcess(try Peers.requirePython(), [
            Peers.script("mtls_peer.py"), "tlslite-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"),
            "secp384r1mlkem1024", pki.path("mldsa-client-ca.pem"),
        ])
        defer { peer.terminate() }
        try peer.waitFor("ready")
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: mtlsClientConfig(pki.mldsaClient, versions: [.tls13]),
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

// MARK: - Q-SSL ↔ Q-SSL with composite client certificates over a real loopback connection

/// Signs, then flips one byte of the signature (a composite signature: one half broken).
struct MTLSCorruptingKey: SigningKey {
    let inner: any SigningKey
    /// Byte offset to flip; negative counts from the end.
    let offset: Int
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        var s = try inner.sign(message, scheme: scheme)
        s[offset >= 0 ? offset : s.count + offset] ^= 0x01
        return s
    }
}

@Suite("Interop: Q-SSL ↔ Q-SSL composite client certificates over NIO loopback", .serialized)
struct MutualTLSInteropCompositeTests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("composite ML-DSA-65 + ECDSA P-384 client certificate: both halves verified (TLS 1.3, TLS 1.2 hybrid suite)", arguments: versions)
    func composite(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.compositeCA.certificate])
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port,
                                                     configuration: mtlsClientConfig(pki.compositeClient, versions: [version]), serverName: "localhost")
        try await client.send(Array("composite".utf8))
        let echoed = try await client.read(expectedBytes: 9)
        await client.close()
        await record.wait { !$0.summaries.isEmpty }
        try await server.close()
        #expect(echoed == Array("composite".utf8))
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        let summary = try #require(record.summaries.first)
        #expect(summary.version == version)
        #expect(summary.group == .secp384r1MLKEM1024)
        if version == .tls12 { #expect(summary.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384) }
        let identity = try #require(summary.peerIdentity)
        #expect(identity.subject.contains("composite-client"))
        #expect(identity.keyAlgorithm.hasPrefix("composite ML-DSA-65"), "\(identity.keyAlgorithm)")
        #expect(identity.handshakeSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("post-handshake authentication with a composite client certificate: the server asks after the handshake")
    func compositePostHandshake() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .none, clientRoots: [pki.compositeCA.certificate], requestAfterHandshake: true)
        let config = mtlsClientConfig(pki.compositeClient, versions: [.tls13]) { $0.offerPostHandshakeAuthentication = true }
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        #expect(!client.summary.clientCertificateSent)
        let line = String(decoding: try await client.read(idleTimeout: .seconds(5)), as: UTF8.self)
        try await client.send(Array("after".utf8))
        let echoed = try await client.read(expectedBytes: 5)
        await client.close()
        await record.wait { !$0.authenticated.isEmpty }
        try await server.close()
        #expect(line.hasPrefix("authenticated:") && line.contains("composite-client"), "\(line)")
        #expect(echoed == Array("after".utf8))
        #expect(record.summaries.first?.peerIdentity == nil)
        let identity = try #require(record.authenticated.first ?? nil)
        #expect(identity.handshakeSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("a composite CertificateVerify with one broken half is refused with decrypt_error on both sides (ML-DSA half, ECDSA half)",
          arguments: [(ProtocolVersion.tls13, 10), (.tls13, -10), (.tls12, 10), (.tls12, -10)])
    func brokenHalf(version: ProtocolVersion, offset: Int) async throws {
        let pki = MTLSInteropPKI.shared
        var broken = pki.compositeClient
        broken.key = MTLSCorruptingKey(inner: broken.key, offset: offset)
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.compositeCA.certificate])
        let outcome = await mtlsClientFailure(port: server.port, configuration: mtlsClientConfig(broken, versions: [version]), probe: "x")
        await record.wait { !$0.errors.isEmpty }
        try await server.close()
        #expect(outcome.error?.code.receivedAlert == .decryptError, "\(outcome.description)")
        #expect(record.tlsErrors.first?.alert == .decryptError, "\(record.errors)")
        #expect(record.summaries.isEmpty)
    }
}
