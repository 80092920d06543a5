import NIOCore
import NIOEmbedded
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Synchronization
import Testing

/// A session-ID cache that keeps each look-up's completion for the test to call when it likes
/// (a Redis reply that comes late, after the connection went away).
final class HeldCache: ServerSessionCache {
    let inner = InMemorySessionCache()
    let held = Mutex<[@Sendable (SessionState?) -> Void]>([])
    let saved = Mutex<[[UInt8]]>([])
    var isSynchronous: Bool { false }
    func lookUp(sessionID: [UInt8]) -> SessionState? { inner.lookUp(sessionID: sessionID) }
    func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) { held.withLock { $0.append(completion) } }
    func save(_ state: SessionState, sessionID: [UInt8]) {
        saved.withLock { $0.append(sessionID) }
        inner.save(state, sessionID: sessionID)
    }
    func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }

    /// A TLS 1.2 client that resumes by session ID, and a server with a new cache of this kind
    /// (no tickets): its second handshake pauses on the look-up.
    static func sessionIDConfigurations() throws -> (HeldCache, ClientConfiguration, ServerConfiguration) {
        let cache = HeldCache()
        var server = try ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        server.sessionCache = cache
        server.ticketKeys = nil
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client.versions = [.tls12]
        client.tls12SessionTickets = false
        client.sessionStore = InMemoryClientSessionStore()
        return (cache, client, server)
    }
}

@Suite("An answer to a pause the connection abandoned is dropped")
struct AbandonedPauseTests {
    enum Abandon: String, CaseIterable, Sendable { case closed, handlerRemoved }

    @Test(
        "a session look-up answered after the server channel closed (or its handler was removed) writes nothing and raises nothing",
        arguments: Abandon.allCases)
    func lateAnswer(abandon: Abandon) throws {
        let (cache, client, server) = try HeldCache.sessionIDConfigurations()

        // A full handshake leaves a session in the cache (no look-up: the client offered no ID).
        let first = try Pair(client: client, server: server)
        try first.interact()
        #expect(first.clientApp.events.contains { $0.hasPrefix("handshakeCompleted") })
        #expect(cache.held.withLock { $0.isEmpty })

        // The second offers its ID: the server pauses on the look-up.
        let second = try Pair(client: client, server: server)
        try second.interact()
        let completion = try #require(cache.held.withLock { $0.first })
        #expect(!second.serverApp.events.contains { $0.hasPrefix("handshakeCompleted") })

        switch abandon {
        case .closed: try second.server.close().wait()
        case .handlerRemoved:
            try second.server.pipeline.syncOperations.removeHandler(second.server.pipeline.syncOperations.handler(type: NIOQSSLHandler.self)).wait()
        }
        _ = try? second.server.readOutbound(as: ByteBuffer.self)  // whatever the abandonment itself wrote
        while (try? second.server.readOutbound(as: ByteBuffer.self)) != nil {}
        let errorsBefore = second.serverApp.errors.count

        // The late answer: the session, as the store would give it.
        let sessionID = try #require(cache.saved.withLock { $0.first })
        let state = try #require(cache.inner.lookUp(sessionID: sessionID))
        completion(state)
        second.server.embeddedEventLoop.run()
        #expect(try second.server.readOutbound(as: ByteBuffer.self) == nil, "nothing written for an abandoned pause")
        #expect(second.serverApp.errors.count == errorsBefore)
        #expect(!second.serverApp.events.contains { $0.hasPrefix("handshakeCompleted") })
    }
}
