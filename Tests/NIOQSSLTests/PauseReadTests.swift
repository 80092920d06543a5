import NIOCore
import NIOEmbedded
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// Counts the read requests that reach the transport (placed first in the pipeline).
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = NIOAny
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite("Reads during the core's pause")
struct PauseReadTests {
    @Test("reads go on while the peer sends nothing during a pause, stop once it does, and resume with the handshake")
    func readsStopOnlyWhenBytesArrive() throws {
        let (pair, counter, cache) = try Self.pausedOnLookUp()
        let completion = try #require(cache.held.withLock { $0.first })

        // NIO asks for the next read after the ClientHello: nothing has come since the pause
        // began, so it reaches the socket (its read interest is not toggled off and on).
        pair.server.pipeline.read()
        #expect(counter.reads == 1)

        // The client sends during the pause: the core holds the bytes, and reads now wait.
        try pair.server.writeInbound(pair.server.allocator.buffer(bytes: [0x17, 0x03]))
        pair.server.pipeline.read()
        pair.server.pipeline.read()
        #expect(counter.reads == 1, "reads are held once bytes arrived during the pause")

        // The answer ends the pause: the held read is replayed, once.
        let sessionID = try #require(cache.saved.withLock { $0.first })
        completion(try #require(cache.inner.lookUp(sessionID: sessionID)))
        pair.server.embeddedEventLoop.run()
        #expect(counter.reads == 2, "the held read is replayed when the pause ends")
    }

    /// A server paused on its session look-up (the second handshake offering the first's
    /// session ID), a read counter first in its pipeline, and the look-up's completion.
    static func pausedOnLookUp(feedingExtra extra: [UInt8] = []) throws -> (Pair, ReadCounter, HeldCache) {
        let (cache, client, server) = try HeldCache.sessionIDConfigurations()
        try Pair(client: client, server: server).interact()
        let pair = try Pair(client: client, server: server)
        let counter = ReadCounter()
        try pair.server.pipeline.syncOperations.addHandler(counter, position: .first)
        // The ClientHello, with `extra` behind it in the same read.
        var hello = try #require(try pair.client.readOutbound(as: ByteBuffer.self))
        hello.writeBytes(extra)
        try pair.server.writeInbound(hello)
        try #require(cache.held.withLock { !$0.isEmpty }, "the server paused on its look-up")
        return (pair, counter, cache)
    }

    @Test("bytes that came in the read that started the pause hold the reads at once")
    func bytesBehindThePausingMessageHoldReads() throws {
        let (pair, counter, _) = try Self.pausedOnLookUp(feedingExtra: [0x16, 0x03, 0x03])
        pair.server.pipeline.read()
        #expect(counter.reads == 0, "the peer is sending during the pause: reads wait")
    }

    @Test("a read held for a pause is passed on when the TLS handler is removed: the channel does not stall")
    func removalPassesTheHeldReadOn() throws {
        let (pair, counter, _) = try Self.pausedOnLookUp(feedingExtra: [0x16])
        pair.server.pipeline.read()
        #expect(counter.reads == 0)
        let handler = try pair.server.pipeline.syncOperations.handler(type: NIOQSSLHandler.self)
        try pair.server.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(counter.reads == 1)
    }

    @Test("a pause to verify the client's certificate holds the reads at once: its flight, and its data, follow")
    func peerVerificationHoldsReads() throws {
        let clientKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let clientCertificate = try PKIBuilder.issue(subject: "CN=client-1", key: clientKey, by: pki.ca, client: true)
        var server = try ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        server.clientAuthentication = .required
        server.clientCertificateVerifier = SilentVerifier(inner: pki.verifier)
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client.clientCertificate = try CertificateFiles.certifiedKey(chain: [clientCertificate], key: clientKey)
        let pair = try Pair(client: client, server: server)
        let counter = ReadCounter()
        try pair.server.pipeline.syncOperations.addHandler(counter, position: .first)
        try pair.interact()
        #expect(pair.serverApp.events.isEmpty, "the server waits for its verifier")
        pair.server.pipeline.read()
        #expect(counter.reads == 0)
    }

    @Test("the transport's input closing during a pause is judged when the pause ends, after the bytes held in it")
    func inputClosedWaitsForThePause() throws {
        let (pair, _, cache) = try Self.pausedOnLookUp()
        pair.server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pair.serverApp.errors.isEmpty, "not judged while bytes may wait unprocessed")
        let sessionID = try #require(cache.saved.withLock { $0.first })
        let completion = try #require(cache.held.withLock { $0.first })
        completion(try #require(cache.inner.lookUp(sessionID: sessionID)))
        pair.server.embeddedEventLoop.run()
        #expect(
            pair.serverApp.errors.contains { ($0 as? NIOQSSLError).map { if case .uncleanShutdown = $0 { true } else { false } } ?? false },
            "no close_notify among them: a truncation, reported once the pause ended (\(pair.serverApp.errors))")
    }
}

/// A client-certificate verifier that never answers (within any test): the handshake stays
/// paused on it. Not cancelled by these tests, so no answer reaches their embedded loops.
struct SilentVerifier: CertificateVerifier {
    let inner: X509CertificateVerifier
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    var trustPolicyDigest: [UInt8] { inner.trustPolicyDigest }
    var isSynchronous: Bool { false }
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) { try inner.checkResumedPeer(identity, role: role) }
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { throw .crypto("verified on the event loop") }
    func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        try? await Task.sleep(for: .seconds(3600))
        throw .crypto("no answer")
    }
}
