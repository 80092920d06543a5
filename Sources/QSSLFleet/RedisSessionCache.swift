// The TLS 1.2 session-ID cache of a fleet, in Redis.

import Crypto
import NIOCore
import NIOPosix
import QSSL
import QSSLRedis
import Synchronization

/// A `ServerSessionCache` in Redis, shared by every node of a fleet, for one service.
///
/// **Asynchronous.** `isSynchronous` is false: the core pauses the handshake on a session ID
/// (`PendingDecision.sessionLookup`) and the NIO adapter asks `lookUpAsynchronously` off the
/// event loop. The look-up waits at most `FleetSettings.lookupTimeout` (50 ms by default); a
/// slow, unreachable or hostile Redis makes it a miss (a full handshake), never an error, and
/// never blocks a thread. One GET per resumption attempt (one round trip); after a full
/// handshake, one `SET key value PX ttl NX` in the background; after a failed resumption, DEL.
///
/// **Keys.** `qssl:<fleet id>:s:<hex(HMAC-SHA-256(session-index key, service id ‖ session ID))[0..32]>`:
/// Redis never sees a session ID, and each service has its own key space.
///
/// **Values.** `"QFS" ‖ 0x01 ‖ nonce (12) ‖ AES-256-GCM(plaintext) ‖ tag (16)` under the service's
/// session key (HKDF from the fleet key and the service id), with associated data
/// `"qssl-fleet-session-v1" ‖ fleet id ‖ service id ‖ Redis key ‖ session ID` (each
/// length-prefixed); plaintext = `uint64 expires_at_ms ‖ SessionState.encoded()`. A value
/// moved to another key, session ID or service, or made under another fleet key, does not open;
/// a replayed value does not outlive its own expiry; a value longer than
/// `maximumValueBytes` is refused unread. The core still checks everything else in the
/// state (SNI name, trust binding, lifetime, suite) before it resumes.
public final class RedisSessionCache: ServerSessionCache {
    public static let valuePrefix: [UInt8] = FleetSessionValues.valuePrefix

    public let store: FleetStore
    public let service: ServiceIdentity
    /// How long an entry may be resumed after it was issued (as `InMemorySessionCache`).
    public let timeoutSeconds: UInt32
    /// Keys and sealed values, with every per-service key schedule worked out once.
    private let values: FleetSessionValues
    private let lookups: Admission
    private let writes: Admission
    private let counters = Counters()
    private let saveRate = PerSecondBudget()
    private let refusalLog = PerSecondBudget()

    /// What happened to look-ups and writes so far (for tests and `qssl` metrics).
    public struct Statistics: Sendable, Hashable {
        public var hits = 0, misses = 0, timeouts = 0, errors = 0, refused = 0, overloaded = 0
        public var saved = 0, saveFailures = 0, removed = 0, dropped = 0
    }

    public init(store: FleetStore, service: ServiceIdentity, timeoutSeconds: UInt32 = 3600) {
        self.store = store
        self.service = service
        self.timeoutSeconds = timeoutSeconds
        values = FleetSessionValues(key: store.key, service: service)
        lookups = Admission(limit: store.settings.maximumPendingLookups)
        writes = Admission(limit: store.settings.maximumPendingWrites)
    }

    public var isSynchronous: Bool { false }

    public var statistics: Statistics { counters.snapshot }

    /// Never called by the core (the cache is asynchronous); a miss.
    public func lookUp(sessionID: [UInt8]) -> SessionState? { nil }

    /// The completion form, awaited.
    public func lookUpAsynchronously(sessionID: [UInt8]) async -> SessionState? {
        await withCheckedContinuation { continuation in
            lookUp(sessionID: sessionID) { continuation.resume(returning: $0) }
        }
    }

    /// One GET, bounded by `FleetSettings.lookupTimeout`. When a connection is open (the usual
    /// case) the GET goes out at once, without a task or a future, on one whose replies are read
    /// on the caller's event loop; the answer, or `.late` when the bound passes, comes back
    /// there, from the connection's handler (one timer per connection, not per look-up), so a
    /// resumption costs no thread hop. Otherwise the client connects first, in a task.
    public func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) {
        guard (1...32).contains(sessionID.count) else { return completion(nil) }
        guard lookups.tryEnter() else {
            reportOverloaded()
            return completion(nil)
        }
        let key = redisKey(sessionID)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        let timeout = store.settings.lookupTimeout
        // The admission is held until the GET leaves the pipeline, a late one included: a slow
        // Redis cannot make a node queue more than `maximumPendingLookups` GETs.
        let lookups = self.lookups
        let sent = store.redis.getIfConnected(
            key, preferring: loop, answerWithin: TimeAmount(timeout),
            settled: { lookups.leave() }
        ) { outcome in
            switch outcome {
            case .late:
                self.reportTimeout(timeout)
                completion(nil)
            case .failed(let error): completion(self.process(.failure(error), sessionID: sessionID, key: key))
            case .value(let value): completion(self.process(.success(value), sessionID: sessionID, key: key))
            }
        }
        guard !sent else { return }
        let promise = (loop ?? store.group.next()).makePromise(of: [UInt8]?.self)
        promise.completeWithTask { try await self.store.redis.get(key) }
        let reply = promise.futureResult
        let once = Once(completion)
        let timer = reply.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            once.call(nil) { self.reportTimeout(timeout) }
        }
        reply.whenComplete { result in
            timer.cancel()
            self.lookups.leave()
            once.call(self.process(result, sessionID: sessionID, key: key))
        }
    }

    private func reportOverloaded() {
        counters.add(\.overloaded)
        store.emit(
            FleetEvent(
                kind: "lookup_overloaded", message: "too many session look-ups waiting on Redis; full handshake",
                level: .warning, logWorthy: false))
    }

    private func reportTimeout(_ timeout: Duration) {
        counters.add(\.timeouts)
        store.emit(
            FleetEvent(
                kind: "lookup_timeout", message: "Redis did not answer a session look-up within \(timeout); full handshake",
                level: .warning, logWorthy: false))
    }

    public func save(_ state: SessionState, sessionID: [UInt8]) {
        guard (1...32).contains(sessionID.count) else { return }
        // Anonymous full handshakes each write an entry: bounded per node and second, so that
        // a flood of them cannot fill the Redis the fleet's ticket keys live in.
        guard saveRate.admit(now: store.clock.nowMilliseconds(), limit: store.settings.maximumSessionWritesPerSecond) else {
            counters.add(\.dropped)
            store.emit(
                FleetEvent(
                    kind: "write_rate_limited", message: "more sessions per second than --session-store allows; a session was not shared",
                    level: .warning, logWorthy: false))
            return
        }
        let now = store.clock.nowMilliseconds()
        let lifetimeEnd = state.createdAt &+ UInt64(state.lifetimeSeconds) * 1000
        let expiresAt = min(lifetimeEnd, state.issuedAt &+ UInt64(timeoutSeconds) * 1000)
        guard expiresAt > now, let value = seal(state, sessionID: sessionID, expiresAt: expiresAt) else { return }
        guard value.count <= store.settings.maximumValueBytes else { return }
        guard writes.tryEnter() else {
            counters.add(\.dropped)
            store.emit(FleetEvent(kind: "write_dropped", message: "too many Redis writes waiting; a session was not shared", level: .warning, logWorthy: false))
            return
        }
        let key = redisKey(sessionID)
        let ttl = Int(min(expiresAt - now, UInt64(Int32.max)))
        Task {
            defer { self.writes.leave() }
            do {
                _ = try await self.store.redis.set(key, value, px: ttl, nx: true)
                self.store.redisSucceeded()
                self.counters.add(\.saved)
            } catch {
                self.store.redisFailed(error, during: "SET of a session")
                self.counters.add(\.saveFailures)
            }
        }
    }

    public func remove(sessionID: [UInt8]) {
        guard (1...32).contains(sessionID.count), writes.tryEnter() else { return }
        let key = redisKey(sessionID)
        Task {
            defer { self.writes.leave() }
            do {
                _ = try await self.store.redis.del(key)
                self.counters.add(\.removed)
            } catch {
                self.store.redisFailed(error, during: "DEL of a session")
            }
        }
    }

    // MARK: - Keys and values

    /// The Redis key of `sessionID` for this service.
    public func redisKey(_ sessionID: [UInt8]) -> [UInt8] { values.redisKey(sessionID) }

    /// The sealed value for `state` (nil when it cannot be encoded).
    func seal(_ state: SessionState, sessionID: [UInt8], expiresAt: UInt64) -> [UInt8]? {
        var compact = state
        if var identity = compact.peerIdentity {
            identity.verifiedChain = Array(identity.verifiedChain.prefix(1))
            compact.peerIdentity = identity
        }
        guard var encoded = try? compact.encoded() else { return nil }
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(8 + encoded.count)
        plaintext.appendUInt64(expiresAt)
        plaintext += encoded
        SecretBytes.wipe(&encoded)
        defer { SecretBytes.wipe(&plaintext) }
        return values.seal(plaintext, sessionID: sessionID)
    }

    /// Why a value from Redis was refused.
    enum Refusal: Error { case tooLong, malformed, authentication, expired, undecodable }

    /// Opens a value read at `sessionID`'s key.
    func open(_ value: [UInt8], sessionID: [UInt8], now: UInt64) throws(Refusal) -> SessionState {
        try open(value, sessionID: sessionID, key: redisKey(sessionID), now: now)
    }

    /// Opens a value read at `key`, the Redis key of `sessionID`.
    func open(_ value: [UInt8], sessionID: [UInt8], key: [UInt8], now: UInt64) throws(Refusal) -> SessionState {
        guard value.count <= store.settings.maximumValueBytes else { throw .tooLong }
        guard value.count >= Self.valuePrefix.count + FleetSessionValues.nonceLength + FleetSessionValues.tagLength + 8 else {
            throw .malformed
        }
        let opened = values.open(value, sessionID: sessionID, key: key)
        if opened.malformed { throw .malformed }
        guard var plaintext = opened.plaintext else { throw .authentication }
        defer { SecretBytes.wipe(&plaintext) }
        guard plaintext.count > 8 else { throw .undecodable }
        let expiresAt = plaintext[...].readUInt64(at: 0)
        guard now < expiresAt else { throw .expired }
        var encoded = Array(plaintext[8...])
        defer { SecretBytes.wipe(&encoded) }
        guard let state = try? SessionState(decoding: encoded) else { throw .undecodable }
        // As `InMemorySessionCache`: no older than the timeout since issued, within its lifetime.
        let age = now >= state.issuedAt ? now - state.issuedAt : 0
        guard age < UInt64(timeoutSeconds) * 1000, state.isValid(at: now) else { throw .expired }
        return state
    }

    /// What a GET's outcome means: the state when it opens, else nil (counted and reported).
    private func process(_ result: Result<[UInt8]?, any Error>, sessionID: [UInt8], key: [UInt8]) -> SessionState? {
        let value: [UInt8]?
        switch result {
        case .success(let found):
            value = found
            store.redisSucceeded()
        case .failure(let error):
            store.redisFailed(error, during: "GET of a session")
            counters.add(\.errors)
            store.emit(FleetEvent(kind: "lookup_error", message: "session look-up failed: \(error)", level: .warning, logWorthy: false))
            return nil
        }
        guard let value else {
            counters.add(\.misses)
            return nil
        }
        do {
            let state = try open(value, sessionID: sessionID, key: key, now: store.clock.nowMilliseconds())
            counters.add(\.hits)
            return state
        } catch .expired {
            counters.add(\.misses)
            return nil
        } catch {
            // Not ours: planted, corrupted, moved from another key or service. Never resumed;
            // removed so that it is not read again.
            counters.add(\.refused)
            // Counted every time; logged at most once a minute (a Redis full of garbage must
            // not turn every look-up into a log line).
            store.emit(
                FleetEvent(
                    kind: "value_refused", message: "a session value in Redis did not open (\(error)): refused and deleted",
                    level: .warning, logWorthy: refusalLog.allow(now: store.clock.nowMilliseconds())))
            remove(sessionID: sessionID)
            return nil
        }
    }
}

/// A completion called at most once, by whichever of the answer and the timer comes first.
final class Once<T: Sendable>: Sendable {
    private let completion = Mutex<(@Sendable (T) -> Void)?>(nil)

    init(_ completion: @escaping @Sendable (T) -> Void) { self.completion.withLock { $0 = completion } }

    /// Calls the completion with `value` if nothing did yet (running `first` just before).
    func call(_ value: T, first: () -> Void = {}) {
        guard
            let completion = completion.withLock({ c -> (@Sendable (T) -> Void)? in
                defer { c = nil }
                return c
            })
        else { return }
        first()
        completion(value)
    }
}

/// Admissions counted per one-second window (a session-write budget), or at most one per
/// minute (`allow`, for log lines).
final class PerSecondBudget: Sendable {
    private let state = Mutex<(windowStart: UInt64, used: Int)>((0, 0))

    func admit(now: UInt64, limit: Int) -> Bool {
        state.withLock { s in
            if now >= s.windowStart &+ 1000 || now < s.windowStart { s = (now, 0) }
            guard s.used < limit else { return false }
            s.used += 1
            return true
        }
    }

    func allow(now: UInt64) -> Bool {
        state.withLock { s in
            guard s.used == 0 || now >= s.windowStart &+ 60_000 || now < s.windowStart else { return false }
            s = (now, 1)
            return true
        }
    }
}

/// Statistics counters under one lock.
final class Counters: Sendable {
    private let values = Mutex(RedisSessionCache.Statistics())
    func add(_ field: WritableKeyPath<RedisSessionCache.Statistics, Int>) { values.withLock { $0[keyPath: field] += 1 } }
    var snapshot: RedisSessionCache.Statistics { values.withLock { $0 } }
}
