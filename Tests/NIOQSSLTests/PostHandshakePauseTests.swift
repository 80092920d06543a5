import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Synchronization
import Testing

/// A client-certificate verifier that holds its answer until the test lets it go (an OCSP
/// fetch that takes as long as it takes); no synchronous path.
final class GatedVerifier: CertificateVerifier, Sendable {
    let inner: X509CertificateVerifier
    private let state = Mutex((entered: false, released: false))
    init(inner: X509CertificateVerifier) { self.inner = inner }
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    var trustPolicyDigest: [UInt8] { inner.trustPolicyDigest }
    var isSynchronous: Bool { false }
    var entered: Bool { state.withLock { $0.entered } }
    func release() { state.withLock { $0.released = true } }
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) { try inner.checkResumedPeer(identity, role: role) }
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { throw .crypto("verified on the event loop") }
    func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        state.withLock { $0.entered = true }
        for _ in 0..<2000 where !state.withLock({ $0.released }) { try? await Task.sleep(for: .milliseconds(5)) }
        return try inner.verifyPeer(request)
    }
}

/// The server's application: keeps its context so that the test can write from it.
final class ServerApplication: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let lock = NIOLock()
    private var stored: ChannelHandlerContext?
    var context: ChannelHandlerContext? { lock.withLock { stored } }
    func handlerAdded(context: ChannelHandlerContext) { lock.withLock { stored = context } }
    func handlerRemoved(context: ChannelHandlerContext) { lock.withLock { stored = nil } }
    private let completed = Mutex(false)
    /// Whether the server's side of the handshake has completed (the client's may come first).
    var handshakeCompleted: Bool { completed.withLock { $0 } }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? QSSLUserEvent {
            if event.handshakeSummary != nil { completed.withLock { $0 = true } }
            // Answers a certificate it asked for at once: behind anything written before.
            if event.clientAuthentication?.identity != nil {
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Array("+auth".utf8))), promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@Suite("NIO adapter: writes during a post-handshake pause")
struct PostHandshakePauseTests {
    @Test(
        "a write made while the server verifies a post-handshake client certificate is held, not reported written, and goes out when the pause ends, before what the application writes on the answer",
        .timeLimit(.minutes(1)))
    func writesWaitForThePause() async throws {
        let pki = try DemoPKI()
        let clientKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let clientCertificate = try PKIBuilder.issue(subject: "CN=client-1", key: clientKey, by: pki.ca, client: true)
        let verifier = GatedVerifier(inner: X509CertificateVerifier(roots: [pki.ca.certificate]))
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.versions = [.tls13]
        serverConfig.tls13TicketCount = 0
        serverConfig.allowPostHandshakeAuthentication = true
        serverConfig.clientCertificateVerifier = verifier
        let application = ServerApplication()
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig) { [application] }
        defer { Task { try? await server.close() } }

        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.versions = [.tls13]
        clientConfig.offerPostHandshakeAuthentication = true
        clientConfig.clientCertificate = try CertificateFiles.certifiedKey(chain: [clientCertificate], key: clientKey)
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "localhost")
        defer {
            verifier.release()
            Task { await client.close() }
        }

        let deadline = ContinuousClock.now + .seconds(20)
        while !application.handshakeCompleted && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let context = try #require(application.context)
        let loop = context.eventLoop
        try await loop.submit { context.triggerUserOutboundEvent(QSSLOutboundRequest.requestClientCertificate, promise: nil) }.get()
        while !verifier.entered && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try #require(verifier.entered, "the server paused to verify the client's certificate")

        let written = Mutex(false)
        let promise = loop.makePromise(of: Void.self)
        promise.futureResult.whenSuccess { written.withLock { $0 = true } }
        try await loop.submit {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Array("held".utf8))), promise: promise)
        }.get()
        try await Task.sleep(for: .milliseconds(150))
        #expect(!written.withLock { $0 }, "reported written while the handshake was paused")

        verifier.release()
        try await promise.futureResult.get()
        #expect(try await client.read(expectedBytes: 9) == Array("held+auth".utf8), "sent once the pause ended, in order")
    }
}
