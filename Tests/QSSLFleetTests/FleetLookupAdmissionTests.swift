// The look-up admission holds a late GET until it leaves Redis's pipeline: a slow Redis cannot
// make a node queue more look-ups than `maximumPendingLookups`.

import NIOCore
import NIOPosix
import QSSL
import QSSLFleet
import Testing

@Suite("Fleet look-up admission", .serialized)
struct FleetLookupAdmissionTests {
    @Test("look-ups that went late still count against the admission until Redis answers; then look-ups are admitted again")
    func lateLookupsStayAdmitted() async throws {
        try await withRedisServer { server in
            var settings = FleetSettings()
            settings.lookupTimeout = .milliseconds(30)
            settings.maximumPendingLookups = 2
            settings.redisCommandTimeout = .seconds(5)  // the pause below never closes the connection
            let store = try FleetStore(url: server.url, key: try randomKey(), settings: settings)
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"))
            let id = randomID()
            let state = sampleSession()
            cache.save(state, sessionID: id)
            #expect(await eventually { cache.statistics.saved == 1 })
            // A connection read on this loop, so that look-ups from it take the GET-on-an-open-connection path.
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            #expect(await eventually { await lookUp(cache, id, from: loop) != nil })

            _ = try server.cli("CLIENT", "PAUSE", "1500", "ALL")
            #expect(await lookUp(cache, id, from: loop) == nil)
            #expect(await lookUp(cache, id, from: loop) == nil)
            #expect(cache.statistics.timeouts == 2)
            // Both GETs are still waiting in Redis: a third look-up is refused at once.
            #expect(await lookUp(cache, id, from: loop) == nil)
            #expect(cache.statistics.overloaded == 1)
            // Once Redis answers (and the late replies are read), look-ups resume.
            #expect(await eventually(5) { await lookUp(cache, id, from: loop)?.secret == state.secret })
        }
    }

    func lookUp(_ cache: RedisSessionCache, _ id: [UInt8], from loop: any EventLoop) async -> SessionState? {
        await withCheckedContinuation { continuation in
            loop.execute { cache.lookUp(sessionID: id) { continuation.resume(returning: $0) } }
        }
    }
}
