import QSSLWire
import Synchronization
import Testing

@testable import QSSL

/// A wall clock the test moves by hand.
final class FakeClock: WallClock {
    private let now: Mutex<UInt64>
    init(_ start: UInt64 = SessionSamples.epoch) { now = Mutex(start) }
    func nowMilliseconds() -> UInt64 { now.withLock { $0 } }
    func advance(seconds: UInt64) { now.withLock { $0 += seconds * 1000 } }
    func advance(milliseconds: UInt64) { now.withLock { $0 += milliseconds } }
}

func sessionID(_ n: Int) -> [UInt8] {
    var id = Array(repeating: UInt8(0), count: 32)
    for i in 0..<8 { id[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
    return id
}

@Suite("LRU table")
struct LRUTableTests {
    @Test("agrees with a naive model over a long run of mixed operations")
    func modelCheck() {
        var table = LRUTable<Int, Int>()
        var model: [(key: Int, value: Int)] = []  // most recent first
        var rng = SplitMix(seed: 7)
        for step in 0..<20_000 {
            let key = Int(rng.next() % 64)
            switch rng.next() % 5 {
            case 0, 1:
                let old = table.set(step, for: key)
                let i = model.firstIndex { $0.key == key }
                #expect(old == i.map { model[$0].value })
                if let i { model.remove(at: i) }
                model.insert((key, step), at: 0)
            case 2:
                let value = table.value(for: key)
                let i = model.firstIndex { $0.key == key }
                #expect(value == i.map { model[$0].value })
                if let i { model.insert(model.remove(at: i), at: 0) }
            case 3:
                let value = table.remove(key)
                let i = model.firstIndex { $0.key == key }
                #expect(value == i.map { model[$0].value })
                if let i { model.remove(at: i) }
            default:
                let evicted = table.removeLeastRecentlyUsed()
                #expect(evicted?.key == model.last?.key && evicted?.value == model.last?.value)
                if !model.isEmpty { model.removeLast() }
            }
            #expect(table.count == model.count)
        }
        #expect(table.keysByRecency == model.map(\.key))
    }
}

/// A small deterministic generator, so that a failing run can be repeated.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Server session cache")
struct ServerSessionCacheTests {
    @Test("beyond maxEntries the least recently used entry goes; a lookup counts as a use")
    func evictByEntries() {
        let clock = FakeClock()
        let cache = InMemorySessionCache(maxEntries: 3, clock: clock)
        let state = SessionSamples.state(version: .tls12)
        for n in 0..<3 { cache.save(state, sessionID: sessionID(n)) }
        #expect(cache.lookUp(sessionID: sessionID(0)) == state)  // 1 is now the oldest
        cache.save(state, sessionID: sessionID(3))
        #expect(cache.count == 3)
        #expect(cache.lookUp(sessionID: sessionID(1)) == nil)
        for n in [0, 2, 3] { #expect(cache.lookUp(sessionID: sessionID(n)) != nil) }
    }

    @Test("beyond maxBytes the least recently used entries go, and byteCount follows every change")
    func evictByBytes() {
        let small = SessionSamples.state(version: .tls12, identity: nil)
        let large = SessionSamples.state(version: .tls12)
        let smallCost = InMemorySessionCache.entryCost(of: small, sessionID: sessionID(0))
        let largeCost = InMemorySessionCache.entryCost(of: large, sessionID: sessionID(0))
        #expect(smallCost == (try! small.encoded()).count + 32)
        let cache = InMemorySessionCache(maxEntries: 100, maxBytes: 2 * largeCost + smallCost / 2, clock: FakeClock())
        cache.save(large, sessionID: sessionID(0))
        cache.save(large, sessionID: sessionID(1))
        #expect(cache.byteCount == 2 * largeCost)
        cache.save(small, sessionID: sessionID(2))  // over budget: 0 goes
        #expect(cache.count == 2)
        #expect(cache.byteCount == largeCost + smallCost)
        #expect(cache.lookUp(sessionID: sessionID(0)) == nil)
        cache.save(small, sessionID: sessionID(1))  // replacing an entry recounts it
        #expect(cache.byteCount == 2 * smallCost)
        #expect(cache.averageBytesPerEntry == Double(smallCost))
        cache.remove(sessionID: sessionID(1))
        #expect(cache.byteCount == smallCost && cache.count == 1)
        let tooBig = InMemorySessionCache(maxBytes: largeCost - 1, clock: FakeClock())
        tooBig.save(large, sessionID: sessionID(0))
        #expect(tooBig.count == 0 && tooBig.byteCount == 0)
    }

    @Test("an entry is a miss once timeoutSeconds have passed since it was issued, and is removed")
    func timeout() {
        let clock = FakeClock()
        let cache = InMemorySessionCache(timeoutSeconds: 60, clock: clock)
        cache.save(SessionSamples.state(version: .tls12, lifetime: 86_400), sessionID: sessionID(1))
        clock.advance(seconds: 59)
        #expect(cache.lookUp(sessionID: sessionID(1)) != nil)
        clock.advance(seconds: 1)
        #expect(cache.lookUp(sessionID: sessionID(1)) == nil)
        #expect(cache.count == 0 && cache.byteCount == 0)
    }

    @Test("a session past its own lifetime is a miss even within the cache timeout")
    func sessionLifetime() {
        let clock = FakeClock()
        let cache = InMemorySessionCache(timeoutSeconds: 3600, clock: clock)
        cache.save(SessionSamples.state(version: .tls12, lifetime: 30), sessionID: sessionID(1))
        clock.advance(seconds: 30)
        #expect(cache.lookUp(sessionID: sessionID(1)) == nil)
        #expect(cache.count == 0)
    }

    @Test("removeExpired sweeps what lookups would refuse and keeps the rest")
    func sweep() {
        let clock = FakeClock()
        let cache = InMemorySessionCache(timeoutSeconds: 100, clock: clock)
        cache.save(SessionSamples.state(version: .tls12), sessionID: sessionID(1))
        clock.advance(seconds: 50)
        cache.save(SessionSamples.state(version: .tls12, issuedAt: clock.nowMilliseconds()), sessionID: sessionID(2))
        clock.advance(seconds: 60)
        cache.removeExpired()
        #expect(cache.count == 1)
        #expect(cache.lookUp(sessionID: sessionID(2)) != nil)
    }

    @Test("an empty or over-long session ID is not cached")
    func badIDs() {
        let cache = InMemorySessionCache(clock: FakeClock())
        cache.save(SessionSamples.state(version: .tls12), sessionID: [])
        cache.save(SessionSamples.state(version: .tls12), sessionID: Array(repeating: 1, count: 33))
        #expect(cache.count == 0)
    }

    @Test("many tasks sharing one cache keep it within bounds and its byte count exact")
    func concurrent() async {
        let cache = InMemorySessionCache(maxEntries: 500, clock: FakeClock())
        let state = SessionSamples.state(version: .tls12)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var rng = SplitMix(seed: UInt64(task))
                    for _ in 0..<2_000 {
                        let id = sessionID(Int(rng.next() % 1_000))
                        switch rng.next() % 4 {
                        case 0, 1: cache.save(state, sessionID: id)
                        case 2: _ = cache.lookUp(sessionID: id)
                        default: cache.remove(sessionID: id)
                        }
                    }
                }
            }
        }
        #expect(cache.count <= 500)
        #expect(cache.byteCount == cache.count * InMemorySessionCache.entryCost(of: state, sessionID: sessionID(0)))
    }
}

@Suite("Client session store")
struct ClientSessionStoreTests {
    static func session(_ version: ProtocolVersion, ticket: UInt8, clock: FakeClock, lifetime: UInt32 = 7200) -> TLSSession {
        TLSSession(
            state: SessionSamples.state(version: version, createdAt: clock.nowMilliseconds(), lifetime: lifetime),
            ticket: [ticket], sessionID: [], receivedAt: clock.nowMilliseconds())
    }

    @Test("a TLS 1.3 ticket is handed out once, newest first")
    func singleUse() {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(clock: clock)
        store.save(Self.session(.tls13, ticket: 1, clock: clock), for: "a:443")
        store.save(Self.session(.tls13, ticket: 2, clock: clock), for: "a:443")
        #expect(store.takeSession(for: "a:443")?.ticket == [2])
        #expect(store.takeSession(for: "a:443")?.ticket == [1])
        #expect(store.takeSession(for: "a:443") == nil)
        #expect(store.keyCount == 0)
    }

    @Test("a TLS 1.2 session stays to be offered again; saving it again does not duplicate it")
    func reusable() {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(clock: clock)
        let session = Self.session(.tls12, ticket: 7, clock: clock)
        store.save(session, for: "b")
        #expect(store.takeSession(for: "b") == session)
        #expect(store.takeSession(for: "b") == session)
        store.save(session, for: "b")
        #expect(store.sessionCount(for: "b") == 1)
        var byID = session
        byID.ticket = nil
        byID.sessionID = [1, 2, 3]
        store.save(byID, for: "b")
        store.save(byID, for: "b")
        #expect(store.sessionCount(for: "b") == 2)
        store.removeSessions(for: "b")
        #expect(store.takeSession(for: "b") == nil)
    }

    @Test("expired sessions are dropped, not handed out")
    func expiry() {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(clock: clock)
        store.save(Self.session(.tls13, ticket: 1, clock: clock, lifetime: 10), for: "c")
        store.save(Self.session(.tls12, ticket: 2, clock: clock, lifetime: 100), for: "c")
        store.save(Self.session(.tls13, ticket: 3, clock: clock, lifetime: 10), for: "c")
        clock.advance(seconds: 10)
        #expect(store.takeSession(for: "c")?.ticket == [2])
        #expect(store.sessionCount(for: "c") == 1)
        clock.advance(seconds: 90)
        #expect(store.takeSession(for: "c") == nil)
        #expect(store.keyCount == 0)
        store.save(Self.session(.tls13, ticket: 4, clock: FakeClock(0), lifetime: 10), for: "c")
        #expect(store.keyCount == 0, "an already expired session is not kept")
    }

    @Test("at most maxSessionsPerKey are kept, the oldest dropped")
    func perKeyBound() {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(maxSessionsPerKey: 4, clock: clock)
        for t in 1...6 { store.save(Self.session(.tls13, ticket: UInt8(t), clock: clock), for: "d") }
        #expect(store.sessionCount(for: "d") == 4)
        let taken = (0..<5).compactMap { _ in store.takeSession(for: "d")?.ticket?.first }
        #expect(taken == [6, 5, 4, 3])
    }

    @Test("beyond maxKeys the least recently used key goes; taking a session counts as a use")
    func keyBound() {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(maxKeys: 2, clock: clock)
        store.save(Self.session(.tls12, ticket: 1, clock: clock), for: "a")
        store.save(Self.session(.tls12, ticket: 2, clock: clock), for: "b")
        _ = store.takeSession(for: "a")
        store.save(Self.session(.tls12, ticket: 3, clock: clock), for: "c")
        #expect(store.keyCount == 2)
        #expect(store.takeSession(for: "b") == nil)
        #expect(store.takeSession(for: "a") != nil && store.takeSession(for: "c") != nil)
    }

    @Test("concurrent takers never receive one TLS 1.3 ticket twice")
    func concurrentSingleUse() async {
        let clock = FakeClock()
        let store = InMemoryClientSessionStore(maxSessionsPerKey: 1_000, clock: clock)
        for t in 0..<800 {
            store.save(
                TLSSession(
                    state: SessionSamples.state(createdAt: clock.nowMilliseconds()), ticket: sessionID(t), sessionID: [],
                    receivedAt: 0), for: "k")
        }
        let taken = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<150).compactMap { _ in store.takeSession(for: "k")?.ticket } }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(taken.count == 800)
        #expect(Set(taken).count == 800)
    }
}
