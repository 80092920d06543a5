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
    @Test("reads go on while the peer sends nothing during a pause, stop once it does, and resume with the handshake")
    func readsStopOnlyWhenBytesArrive() throws {
        let cache = HeldCache()
        var server = try ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        server.sessionCache = cache
        server.ticketKeys = nil
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client.versions = [.tls12]
        client.tls12SessionTickets = false
        client.sessionStore = InMemoryClientSessionStore()
        try Pair(client: client, server: server).interact()  // a session in the cache

        // The second handshake offers the session's ID: the server pauses on the look-up.
        let pair = try Pair(client: client, server: server)
        let counter = ReadCounter()
        try pair.server.pipeline.syncOperations.addHandler(counter, position: .first)
        try pair.interact()
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
}
