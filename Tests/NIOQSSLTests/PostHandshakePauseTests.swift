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
    /// Whether it writes "+auth" when a client certificate it asked for is verified.
    let answersAuthentication: Bool
    init(answersAuthentication: Bool = true) { self.answersAuthentication = answersAuthentication }
    private let lock = NIOLock()
    private var stored: ChannelHandlerContext?
    var context: ChannelHandlerContext? { lock.withLock { stored } }
    func handlerAdded(context: ChannelHandlerContext) { lock.withLock { stored = context } }
    func handlerRemoved(context: ChannelHandlerContext) { lock.withLock { stored = nil } }
    private let completed = Mutex(false)
    /// Set when a client certificate asked for after the handshake was verified.
    let authenticated = Flag()
    /// Whether the server's side of the handshake has completed (the client's may come first).
    var handshakeCompleted: Bool { completed.withLock { $0 } }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? QSSLUserEvent {
            if event.handshakeSummary != nil { completed.withLock { $0 = true } }
            if event.clientAuthentication?.identity != nil { authenticated.set() }
            // Answers a certificate it asked for at once: behind anything written before.
            if answersAuthentication, event.clientAuthentication?.identity != nil {
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Array("+auth".utf8))), promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Set once, from any thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A server paused in post-handshake client authentication, and its client (the context is
/// used only on its event loop).
struct PausedPair: @unchecked Sendable {
    let verifier: GatedVerifier
    let application: ServerApplication
    let server: Channel
    let client: NIOQSSLClient
    let context: ChannelHandlerContext

    /// Connects, asks the client for its certificate after the handshake, and returns once the
    /// server waits for the verifier. `allowsHalfClosure`: the server's TLS handler's.
    static func make(allowsHalfClosure: Bool = false, answersAuthentication: Bool = true) async throws -> PausedPair {
        let pki = try DemoPKI()
        let clientKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let clientCertificate = try PKIBuilder.issue(subject: "CN=client-1", key: clientKey, by: pki.ca, client: true)
        let verifier = GatedVerifier(inner: X509CertificateVerifier(roots: [pki.ca.certificate]))
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.versions = [.tls13]
        serverConfig.tls13TicketCount = 0
        serverConfig.allowPostHandshakeAuthentication = true
        serverConfig.clientCertificateVerifier = verifier
        let application = ServerApplication(answersAuthentication: answersAuthentication)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.allowRemoteHalfClosure, value: allowsHalfClosure)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOQSSLHandler(server: serverConfig, allowsHalfClosure: allowsHalfClosure))
                    try channel.pipeline.syncOperations.addHandler(application)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()

        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.versions = [.tls13]
        clientConfig.offerPostHandshakeAuthentication = true
        clientConfig.clientCertificate = try CertificateFiles.certifiedKey(chain: [clientCertificate], key: clientKey)
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.localAddress?.port ?? 0, configuration: clientConfig, serverName: "localhost")

        let deadline = ContinuousClock.now + .seconds(20)
        while !application.handshakeCompleted && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try #require(application.handshakeCompleted, "the server's side of the handshake completed")
        let context = try #require(application.context)
        try await context.eventLoop.submit { context.triggerUserOutboundEvent(QSSLOutboundRequest.requestClientCertificate, promise: nil) }.get()
        while !verifier.entered && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try #require(verifier.entered, "the server paused to verify the client's certificate")
        return PausedPair(verifier: verifier, application: application, server: server, client: client, context: context)
    }

    /// Writes `text` from the server's application, on its loop; the returned flag says whether
    /// the write has been reported done.
    func write(_ text: String) async throws -> Flag {
        let written = Flag()
        let context = self.context
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenSuccess { written.set() }
        try await context.eventLoop.submit {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Array(text.utf8))), promise: promise)
        }.get()
        return written
    }

    func close() async {
        verifier.release()
        await client.close()
        try? await server.close()
    }
}

@Suite("NIO adapter: writes during a post-handshake pause")
struct PostHandshakePauseTests {
    @Test(
        "a write made while the server verifies a post-handshake client certificate is held, not reported written, and goes out when the pause ends, before what the application writes on the answer",
        .timeLimit(.minutes(1)))
    func writesWaitForThePause() async throws {
        let pair = try await PausedPair.make()
        defer { Task { await pair.close() } }
        let written = try await pair.write("held")
        try await Task.sleep(for: .milliseconds(150))
        #expect(!written.isSet, "reported written while the handshake was paused")
        pair.verifier.release()
        for _ in 0..<2000 where !written.isSet { try await Task.sleep(for: .milliseconds(5)) }
        #expect(written.isSet)
        #expect(try await pair.client.read(expectedBytes: 9) == Array("held+auth".utf8), "sent once the pause ended, in order")
    }

    @Test(
        "a half-closure asked for during the pause waits for the held writes, then sends close_notify, instead of cancelling the authentication",
        .timeLimit(.minutes(1)))
    func halfClosureWaitsForHeldWrites() async throws {
        let pair = try await PausedPair.make(allowsHalfClosure: true, answersAuthentication: false)
        defer { Task { await pair.close() } }
        _ = try await pair.write("held")
        let context = pair.context
        let closed = try await context.eventLoop.submit { () -> EventLoopFuture<Void> in
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.close(mode: .output, promise: promise)
            return promise.futureResult
        }.get()
        try await Task.sleep(for: .milliseconds(100))
        pair.verifier.release()
        try await closed.get()
        // The close can complete inside the resumption, before it reports the authentication:
        // wait for the server's loop to finish that task.
        try await context.eventLoop.submit {}.get()
        // Read to the end: the held write, then close_notify (a clean end, no alert).
        #expect(try await pair.client.read() == Array("held".utf8), "the held write went out before close_notify")
        #expect(await pair.client.error == nil, "a clean close_notify, not user_canceled or an error")
        #expect(pair.application.authenticated.isSet, "the authentication went on")
    }

    @Test(
        "a peer that closes its connection during the pause fails the held writes (their promises do not hang) and the server's channel closes",
        .timeLimit(.minutes(1)))
    func peerClosingDuringThePauseFailsHeldWrites() async throws {
        let pair = try await PausedPair.make(answersAuthentication: false)
        defer { Task { await pair.close() } }
        let context = pair.context
        let failed = Flag()
        let succeeded = Flag()
        let serverChannel = try await context.eventLoop.submit { () -> Channel in
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { result in
                if case .success = result { succeeded.set() } else { failed.set() }
            }
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: Array("held".utf8))), promise: promise)
            return context.channel
        }.get()
        // The client goes away (close_notify and FIN) while the verifier still holds its answer.
        try await pair.client.channel.close()
        for _ in 0..<2000 where !failed.isSet && !succeeded.isSet { try await Task.sleep(for: .milliseconds(5)) }
        #expect(failed.isSet, "the held write's promise failed")
        #expect(!succeeded.isSet, "a write that never went out was not reported written")
        try await serverChannel.closeFuture.get()
        // The verifier's answer (its task was cancelled, so it comes at once) resumes nothing.
        pair.verifier.release()
        try await Task.sleep(for: .milliseconds(50))
        #expect(!pair.application.authenticated.isSet, "no authentication reported for a connection that went away")
    }
}
