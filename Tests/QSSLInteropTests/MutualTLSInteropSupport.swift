import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Mutual-TLS interop support: the client PKI, a recording server, client configurations.

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
        func issue(
            _ algorithm: PKIBuilder.Algorithm, _ subject: String, by ca: PKIBuilder.Issuer, file: String,
            serverAuthOnly: Bool = false, notAfter: Date = Date().addingTimeInterval(365 * 86400)
        ) throws -> CertifiedKey {
            let key = try algorithm.generateKey()
            let cert = try PKIBuilder.issue(
                subject: subject, key: key, by: ca, client: true, extendedKeyUsage: serverAuthOnly ? [.serverAuth] : nil,
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
        expiredClient = try issue(
            .ecdsaP384, "CN=expired-client, O=Q-SSL interop", by: clientCA, file: "expired",
            notAfter: Date().addingTimeInterval(-3600))
        serverOnlyClient = try issue(
            .ecdsaP384, "CN=server-only-client, O=Q-SSL interop", by: clientCA, file: "server-only",
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
            if let summary = e.handshakeSummary {
                record.add(summary: summary)
                if requestAfterHandshake {
                    let promise = context.eventLoop.makePromise(of: Void.self)
                    let record = self.record
                    promise.futureResult.whenComplete { record.add(requestResult: $0) }
                    context.triggerUserOutboundEvent(QSSLOutboundRequest.requestClientCertificate, promise: promise)
                }
            } else if let answer = e.clientAuthentication {
                // identity nil: the client declined.
                let identity = answer.identity
                record.add(authenticated: identity)
                let line = "authenticated:\(identity?.subject ?? "none")\n"
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: line)), promise: nil)
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
func startMTLSServer(
    policy: ClientAuthenticationPolicy, clientRoots: [X509Certificate], requestAfterHandshake: Bool = false,
    configure: (inout ServerConfiguration) -> Void = { _ in }
) async throws -> (NIOQSSLServer, MTLSServerRecord) {
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
func mtlsClientConfig(
    _ certificate: CertifiedKey?, versions: [ProtocolVersion] = Defaults.versions,
    configure: (inout ClientConfiguration) -> Void = { _ in }
) -> ClientConfiguration {
    qsslClientConfig {
        $0.clientCertificate = certificate
        $0.versions = versions
        configure(&$0)
    }
}

/// Connects, sends `probe` and reads the answer; returns the TLS error the Q-SSL client ended
/// with, if any. In TLS 1.3 the client's handshake completes before the server has judged the
/// client's certificate, so the server's alert arrives after `connect` returns: it is read here.
func mtlsClientFailure(port: Int, configuration: ClientConfiguration, probe: String = "GET / HTTP/1.0\r\n\r\n") async -> (
    error: TLSError?, handshakeCompleted: Bool, description: String
) {
    let client: NIOQSSLClient
    do {
        client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: configuration, serverName: "localhost",
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
