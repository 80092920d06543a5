import NIOCore
import NIOEmbedded
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
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
    @Test("reads wait for the whole pause, whatever arrives during it, and one is replayed when it ends")
    func readsWaitForThePause() throws {
        let (pair, counter, cache) = try Self.pausedOnLookUp()
        let completion = try #require(cache.held.withLock { $0.first })
        // NIO asks for the next read after the ClientHello: held (back-pressure).
        pair.server.pipeline.read()
        #expect(counter.reads == 0)
        // The client sends during the pause: the core holds the bytes, and reads still wait.
        try pair.server.writeInbound(pair.server.allocator.buffer(bytes: [0x17, 0x03]))
        pair.server.pipeline.read()
        #expect(counter.reads == 0, "reads are held while the pause lasts")
        // The answer ends the pause: the held read is replayed, once.
        let sessionID = try #require(cache.saved.withLock { $0.first })
        completion(try #require(cache.inner.lookUp(sessionID: sessionID)))
        pair.server.embeddedEventLoop.run()
        #expect(counter.reads == 1, "the held read is replayed when the pause ends")
    }

    /// A server paused on its session look-up (the second handshake offering the first's
    /// session ID), a read counter first in its pipeline, and the look-up's completion.
    static func pausedOnLookUp() throws -> (Pair, ReadCounter, HeldCache) {
        let (cache, client, server) = try HeldCache.sessionIDConfigurations()
        try Pair(client: client, server: server).interact()
        let pair = try Pair(client: client, server: server)
        let counter = ReadCounter()
        try pair.server.pipeline.syncOperations.addHandler(counter, position: .first)
        try pair.server.writeInbound(try #require(try pair.client.readOutbound(as: ByteBuffer.self)))  // the ClientHello
        try #require(cache.held.withLock { !$0.isEmpty }, "the server paused on its look-up")
        return (pair, counter, cache)
    }

    @Test("a read held for a pause is passed on when the TLS handler is removed: the channel does not stall")
    func removalPassesTheHeldReadOn() throws {
        let (pair, counter, _) = try Self.pausedOnLookUp()
        pair.server.pipeline.read()
        #expect(counter.reads == 0)
        let handler = try pair.server.pipeline.syncOperations.handler(type: NIOQSSLHandler.self)
        try pair.server.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(counter.reads == 1)
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
