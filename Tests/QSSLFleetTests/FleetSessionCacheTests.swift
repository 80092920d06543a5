import Foundation
import NIOCore
import NIOPosix
import QSSL
import QSSLFleet
import QSSLRedis
@_exported import QSSLTestSupport
import QSSLWire
import Synchronization
import Testing

// The Redis session-ID cache against a real redis-server and a three-master cluster.

/// A clock the test moves.
final class FakeClock: WallClock, @unchecked Sendable {
    private let now = Mutex<UInt64>(0)
    init(_ start: UInt64) { now.withLock { $0 = start } }
    func nowMilliseconds() -> UInt64 { now.withLock { $0 } }
    func advance(milliseconds: UInt64) { now.withLock { $0 += milliseconds } }
    func set(_ value: UInt64) { now.withLock { $0 = value } }
}

/// Every event a store emitted.
final class EventLog: @unchecked Sendable {
    private let events = Mutex<[FleetEvent]>([])
    func record(_ event: FleetEvent) { events.withLock { $0.append(event) } }
    func count(_ kind: String) -> Int { events.withLock { $0.filter { $0.kind == kind }.count } }
    var all: [FleetEvent] { events.withLock { $0 } }
}

func randomKey() throws -> FleetKey { try FleetKey(bytes: FleetKey.generateBytes()) }

/// A node's store: its own Redis client (as a separate process would have).
func makeStore(
    _ url: String, key: FleetKey, clock: any WallClock = SystemClock(), events: EventLog? = nil,
    timeout: Duration = .milliseconds(50)
) throws -> FleetStore {
    var settings = FleetSettings()
    settings.lookupTimeout = timeout
    settings.redisCommandTimeout = .milliseconds(500)
    settings.redisConnectTimeout = .milliseconds(500)
    settings.redisMaximumBackoff = .milliseconds(200)
    return try FleetStore(url: url, key: key, settings: settings, clock: clock, onEvent: { events?.record($0) })
}

func sampleSession(serverName: String? = "localhost", now: UInt64 = SystemClock().nowMilliseconds()) -> SessionState {
    SessionState(
        version: .tls12, cipherSuite: CipherSuite(rawValue: 0xC02C), group: .x25519, extendedMasterSecret: true,
        serverName: serverName, alpnProtocol: nil, secret: SecretBytes((0..<48).map { _ in UInt8.random(in: 0...255) }),
        createdAt: now, issuedAt: now, lifetimeSeconds: 3600, peerIdentity: nil, trustBinding: [1, 0x53, 0])
}

func randomID() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255) } }

/// Waits until `condition` holds (a background SET landing, say), at most `seconds`.
func eventually(_ seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

@Suite("Fleet session-ID cache in Redis", .serialized)
struct FleetSessionCacheTests {
    @Test("a session saved by one node resumes at another (one GET), and only within the same service and fleet")
    func acrossNodesAndServices() async throws {
        try await withRedisServer { server in
            let key = try randomKey()
            let a = try makeStore(server.url, key: key)
            let b = try makeStore(server.url, key: key)
            let other = try makeStore(server.url, key: try randomKey())
            defer {
                Task {
                    await a.shutdown()
                    await b.shutdown()
                    await other.shutdown()
                }
            }
            let shop = try ServiceIdentity(name: "shop")
            let api = try ServiceIdentity(name: "api")
            let onA = RedisSessionCache(store: a, service: shop)
            let onB = RedisSessionCache(store: b, service: shop)
            #expect(!onB.isSynchronous)
            let state = sampleSession()
            let id = randomID()
            onA.save(state, sessionID: id)
            #expect(await eventually { onA.statistics.saved == 1 })

            let found = try #require(await onB.lookUpAsynchronously(sessionID: id))
            #expect(found.secret == state.secret && found.serverName == "localhost" && found.trustBinding == state.trustBinding)
            #expect(onB.statistics.hits == 1)
            // The master secret is never in Redis in the clear, nor the session ID.
            let stored = try #require(try await b.redis.get(onB.redisKey(id)))
            #expect(!contains(stored, state.secret.withUnsafeBytes { Array($0) }) && !contains(onB.redisKey(id), Array(hex(id).utf8)))
            // SET NX: a second save under the same ID does not replace the first.
            onA.save(sampleSession(), sessionID: id)
            #expect(await eventually { onA.statistics.saved == 2 })
            #expect(await onB.lookUpAsynchronously(sessionID: id)?.secret == state.secret)

            // Another service (its own key space) and another fleet key: misses.
            #expect(await RedisSessionCache(store: b, service: api).lookUpAsynchronously(sessionID: id) == nil)
            #expect(await RedisSessionCache(store: other, service: shop).lookUpAsynchronously(sessionID: id) == nil)

            // remove (a failed resumption) deletes it for every node.
            onB.remove(sessionID: id)
            #expect(await eventually { await onA.lookUpAsynchronously(sessionID: id) == nil })
        }
    }

    @Test(
        "hostile values — service A's value planted at service B's key, another session's value, garbage, truncated, huge — are refused and deleted; the node goes on"
    )
    func hostileValues() async throws {
        try await withRedisServer { server in
            let key = try randomKey()
            let events = EventLog()
            let store = try makeStore(server.url, key: key, events: events)
            defer { Task { await store.shutdown() } }
            let a = RedisSessionCache(store: store, service: try ServiceIdentity(name: "service-a"))
            let b = RedisSessionCache(store: store, service: try ServiceIdentity(name: "service-b"))
            let id = randomID()
            let otherID = randomID()
            a.save(sampleSession(), sessionID: id)
            a.save(sampleSession(), sessionID: otherID)
            #expect(await eventually { a.statistics.saved == 2 })
            let valueA = try #require(try await store.redis.get(a.redisKey(id)))

            // A's genuine value, copied to B's key for the same ID: it decrypts under the fleet
            // key's derivations for A only, and B's associated data names B.
            try await store.redis.set(b.redisKey(id), valueA)
            #expect(await b.lookUpAsynchronously(sessionID: id) == nil)
            #expect(b.statistics.refused == 1)
            #expect(try await eventually { try await store.redis.get(b.redisKey(id)) == nil }, "the planted value is deleted")

            // A's value of one session ID, moved to another ID's key of the same service.
            try await store.redis.set(a.redisKey(otherID), valueA)
            #expect(await a.lookUpAsynchronously(sessionID: otherID) == nil)

            // Garbage, a truncated value, a right prefix with a wrong tag, a value over the size
            // limit (refused unread) and one over the client's reply limit (the connection is
            // dropped and reopened).
            var flipped = valueA
            flipped[flipped.count - 1] ^= 1
            let plants: [[UInt8]] = [
                Array("garbage".utf8), Array(valueA.prefix(20)), flipped, [UInt8](repeating: 0x41, count: 100_000),
                [UInt8](repeating: 0x42, count: 3 << 20), []
            ]
            for plant in plants {
                let victim = randomID()
                try await store.redis.set(a.redisKey(victim), plant)
                #expect(await a.lookUpAsynchronously(sessionID: victim) == nil)
            }
            #expect(events.count("value_refused") >= 5)
            // A wrong type at the key (a list): an error reply, a miss.
            let listID = randomID()
            _ = try await store.redis.send(RedisCommand([Array("RPUSH".utf8), a.redisKey(listID), Array("x".utf8)]))
            #expect(await a.lookUpAsynchronously(sessionID: listID) == nil)
            // Malformed IDs are never looked up.
            #expect(await a.lookUpAsynchronously(sessionID: []) == nil)
            #expect(await a.lookUpAsynchronously(sessionID: [UInt8](repeating: 1, count: 33)) == nil)

            // The node still resumes genuine sessions.
            let fresh = randomID()
            let state = sampleSession()
            a.save(state, sessionID: fresh)
            #expect(await eventually { await a.lookUpAsynchronously(sessionID: fresh)?.secret == state.secret })
        }
    }

    @Test("an expired value (its own expiry in the sealed plaintext) is not resumed even when Redis keeps or replays it")
    func expiryInsideTheValue() async throws {
        try await withRedisServer { server in
            let now = SystemClock().nowMilliseconds()
            let clock = FakeClock(now)
            let store = try makeStore(server.url, key: try randomKey(), clock: clock)
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"), timeoutSeconds: 60)
            let id = randomID()
            cache.save(sampleSession(now: now), sessionID: id)
            #expect(await eventually { cache.statistics.saved == 1 })
            let value = try #require(try await store.redis.get(cache.redisKey(id)))
            #expect(await cache.lookUpAsynchronously(sessionID: id) != nil)
            clock.advance(milliseconds: 61_000)
            // Replayed with no expiry in Redis: still refused, by the value's own expiry.
            try await store.redis.set(cache.redisKey(id), value)
            #expect(await cache.lookUpAsynchronously(sessionID: id) == nil)
        }
    }

    @Test("a slow Redis (CLIENT PAUSE) costs a handshake at most the bound, then a miss; look-ups resume afterwards")
    func boundedWait() async throws {
        try await withRedisServer { server in
            let events = EventLog()
            let store = try makeStore(server.url, key: try randomKey(), events: events, timeout: .milliseconds(50))
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"))
            let id = randomID()
            let state = sampleSession()
            cache.save(state, sessionID: id)
            #expect(await eventually { cache.statistics.saved == 1 })
            #expect(await cache.lookUpAsynchronously(sessionID: id) != nil)

            try server.cli("CLIENT", "PAUSE", "1500", "ALL")
            // 40 handshakes wait at once; each gives up at the bound.
            let (results, seconds) = await measure {
                await withTaskGroup(of: (SessionState?, Double).self) { group in
                    for _ in 0..<40 {
                        group.addTask { await measure { await cache.lookUpAsynchronously(sessionID: id) } }
                    }
                    var all: [(SessionState?, Double)] = []
                    for await r in group { all.append(r) }
                    return all
                }
            }
            #expect(results.allSatisfy { $0.0 == nil })
            let slowest = results.map(\.1).max() ?? 0
            #expect(slowest < 0.4, "each look-up waits about 50 ms, the slowest took \(slowest) s")
            #expect(seconds < 0.6)
            // Each is a timeout (or, for a look-up that needed a new connection while the
            // server is paused, a connection error): never a hit, never a long wait.
            let stats = cache.statistics
            #expect(stats.timeouts + stats.errors == 40 && stats.timeouts >= 30, "\(stats)")
            #expect(events.count("lookup_timeout") == stats.timeouts)
            // After the pause, the same node resumes again.
            #expect(await eventually(5) { await cache.lookUpAsynchronously(sessionID: id)?.secret == state.secret })
        }
    }

    /// The completion form, called from `loop` as the NIO adapter calls it: the state found and
    /// whether the completion ran on that loop.
    func lookUp(_ cache: RedisSessionCache, _ id: [UInt8], from loop: any EventLoop) async -> (state: SessionState?, onLoop: Bool) {
        await withCheckedContinuation { continuation in
            loop.execute { cache.lookUp(sessionID: id) { continuation.resume(returning: ($0, loop.inEventLoop)) } }
        }
    }

    @Test(
        "the completion form (what a handshake's pause uses) answers on the caller's event loop once a connection is read there, and is bounded by the same wait"
    )
    func completionOnTheCallersLoop() async throws {
        try await withRedisServer { server in
            let store = try makeStore(server.url, key: try randomKey(), timeout: .milliseconds(50))
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"))
            let id = randomID()
            let state = sampleSession()
            cache.save(state, sessionID: id)
            #expect(await eventually { cache.statistics.saved == 1 })
            // Each event loop of the group gets its own connection (opened in the background on
            // first use); from then on the answer comes on the loop that asked.
            for loop in [MultiThreadedEventLoopGroup.singleton.next(), MultiThreadedEventLoopGroup.singleton.next()] {
                #expect(
                    await eventually {
                        let answer = await lookUp(cache, id, from: loop)
                        return answer.state?.secret == state.secret && answer.onLoop
                    })
            }
            // An unknown ID is a miss; a slow Redis is a miss at the bound, not a long wait.
            #expect(await lookUp(cache, randomID(), from: MultiThreadedEventLoopGroup.singleton.next()).state == nil)
            try server.cli("CLIENT", "PAUSE", "1000", "ALL")
            let (answer, seconds) = await measure { await lookUp(cache, id, from: MultiThreadedEventLoopGroup.singleton.next()) }
            #expect(answer.state == nil && seconds < 0.4, "waited \(seconds) s")
            #expect(cache.statistics.timeouts >= 1)
            #expect(await eventually(5) { await lookUp(cache, id, from: MultiThreadedEventLoopGroup.singleton.next()).state?.secret == state.secret })
        }
    }

    @Test("session writes are budgeted per node and second: a flood of full handshakes cannot fill Redis; the next second writes again")
    func writeBudget() async throws {
        try await withRedisServer { server in
            let clock = FakeClock(SystemClock().nowMilliseconds())
            var settings = FleetSettings()
            settings.maximumSessionWritesPerSecond = 5
            let store = try FleetStore(url: server.url, key: try randomKey(), settings: settings, clock: clock)
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"))
            for _ in 0..<20 { cache.save(sampleSession(now: clock.nowMilliseconds()), sessionID: randomID()) }
            #expect(await eventually { cache.statistics.saved == 5 })
            #expect(cache.statistics.dropped == 15)
            #expect(try server.cli("DBSIZE").contains("5"))
            clock.advance(milliseconds: 1000)
            cache.save(sampleSession(now: clock.nowMilliseconds()), sessionID: randomID())
            #expect(await eventually { cache.statistics.saved == 6 })
        }
    }

    @Test("Redis killed: look-ups are misses at once and saves are dropped without harm; restarted: the node recovers by itself")
    func redisDownAndBack() async throws {
        try await withRedisServer { server in
            let events = EventLog()
            let store = try makeStore(server.url, key: try randomKey(), events: events)
            defer { Task { await store.shutdown() } }
            let cache = RedisSessionCache(store: store, service: try ServiceIdentity(name: "shop"))
            let id = randomID()
            cache.save(sampleSession(), sessionID: id)
            #expect(await eventually { cache.statistics.saved == 1 })
            server.stop()
            for _ in 0..<20 {
                let (found, seconds) = await measure { await cache.lookUpAsynchronously(sessionID: id) }
                #expect(found == nil && seconds < 0.3)
                cache.save(sampleSession(), sessionID: randomID())
            }
            #expect(store.isRedisDown)
            #expect(events.count("redis_down") == 1, "one event per transition, not per look-up")
            try await server.start()
            let fresh = randomID()
            let state = sampleSession()
            #expect(
                await eventually(10) {
                    cache.save(state, sessionID: fresh)
                    return await cache.lookUpAsynchronously(sessionID: fresh)?.secret == state.secret
                })
            #expect(events.count("redis_recovered") == 1)
            #expect(!store.isRedisDown)
        }
    }

    @Test("in a three-master cluster: sessions spread over every master resume from another node's client, and a MOVED after a slot migration is followed")
    func cluster() async throws {
        try await withRedisCluster { cluster in
            let key = try randomKey()
            let a = try makeStore(cluster.url, key: key)
            let b = try makeStore(cluster.url, key: key)
            defer {
                Task {
                    await a.shutdown()
                    await b.shutdown()
                }
            }
            let service = try ServiceIdentity(name: "shop")
            let onA = RedisSessionCache(store: a, service: service)
            let onB = RedisSessionCache(store: b, service: service)
            var sessions: [([UInt8], SessionState)] = []
            for _ in 0..<60 {
                let id = randomID()
                let state = sampleSession()
                onA.save(state, sessionID: id)
                sessions.append((id, state))
            }
            #expect(await eventually { onA.statistics.saved == 60 })
            for node in cluster.nodes {
                let count = Int(try node.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                #expect(count > 5, "every master holds some sessions")
            }
            for (id, state) in sessions {
                #expect(await onB.lookUpAsynchronously(sessionID: id)?.secret == state.secret)
            }
            // Move the slot of one session to another master; B's client still has the old map.
            let (id, state) = sessions[0]
            let redisKey = String(decoding: onB.redisKey(id), as: UTF8.self)
            let slot = RedisClusterSlot.slot(for: redisKey)
            let owner = try #require(try await b.redis.node(forKey: onB.redisKey(id)))
            let source = try #require(cluster.node(port: owner.port))
            let target = try #require(cluster.nodes.first { $0 !== source })
            try cluster.migrate(slot: slot, keys: [redisKey], from: source, to: target, finish: true)
            let moved = b.redis.statistics.movedRedirections
            #expect(await onB.lookUpAsynchronously(sessionID: id)?.secret == state.secret)
            #expect(b.redis.statistics.movedRedirections > moved, "the MOVED answer was followed")
        }
    }
}

extension RedisTestCluster {
    func migrate(slot: Int, keys: [String], from source: RedisServer, to target: RedisServer, finish: Bool) throws {
        let sourceID = try id(of: source)
        let targetID = try id(of: target)
        #expect(try target.cli("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID).contains("OK"))
        #expect(try source.cli("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID).contains("OK"))
        if !keys.isEmpty {
            let output = try RedisFixture.run(
                "redis-cli", ["-h", "127.0.0.1", "-p", "\(source.port)", "MIGRATE", "127.0.0.1", "\(target.port)", "", "0", "5000", "KEYS"] + keys)
            #expect(output.contains("OK"), "MIGRATE: \(output)")
        }
        if finish {
            for node in [target, source] + nodes.filter({ $0 !== source && $0 !== target }) {
                #expect(try node.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID).contains("OK"))
            }
        }
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
    return false
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
