import NIOCore
import Synchronization

/// Counts a listener's connections and handshakes and enforces `ProxyLimits`' counting limits:
/// open connections, concurrent handshakes (with a queue of waiters when the policy is `.wait`)
/// and handshakes per second per client address. Shared by the listener's event loops; each
/// operation is O(1) under one lock (the rate table is swept when it grows).
public final class ConnectionGate: Sendable {
    public enum HandshakeAdmission: Sendable, Equatable {
        case granted
        /// Queued: `resume` is called (on any thread) when a slot is granted to this waiter.
        case queued(id: UInt64)
        case refused
    }

    private struct State {
        var open = 0
        var handshaking = 0
        var waiters: [(id: UInt64, resume: @Sendable () -> Void)] = []
        var waiterHead = 0
        var nextWaiter: UInt64 = 1
        var rate: [String: (second: UInt64, count: Int)] = [:]
        var ratePrunedAt: UInt64 = .max
    }

    /// The most client addresses whose handshake rate is counted at once.
    static let maximumTrackedSources = 50_000
    /// How many addresses' rates are being counted (for tests).
    var trackedSources: Int { state.withLock { $0.rate.count } }

    private let state = Mutex(State())
    public let limits: ProxyLimits
    /// Called when the count of open connections reaches the maximum or leaves it, so that
    /// listeners re-evaluate whether they accept (`isFull`, read on their own loop: level, not
    /// edge, so that calls arriving out of order from several loops still end right).
    private let boundaryCrossed: @Sendable () -> Void

    public init(limits: ProxyLimits, boundaryCrossed: @escaping @Sendable () -> Void = {}) {
        self.limits = limits
        self.boundaryCrossed = boundaryCrossed
    }

    /// Whether the maximum of open connections is reached now.
    public var isFull: Bool { state.withLock { $0.open >= limits.maxConnections } }

    public var openConnections: Int { state.withLock { $0.open } }
    public var handshakesInProgress: Int { state.withLock { $0.handshaking } }

    /// A new connection: false when the maximum is already reached (close it).
    public func open() -> Bool {
        let (admitted, nowFull) = state.withLock { s -> (Bool, Bool) in
            guard s.open < limits.maxConnections else { return (false, false) }
            s.open += 1
            return (true, s.open == limits.maxConnections)
        }
        if nowFull { boundaryCrossed() }
        return admitted
    }

    /// A connection admitted by `open()` ended.
    public func close() {
        let wasFull = state.withLock { s -> Bool in
            let full = s.open >= limits.maxConnections
            s.open = max(0, s.open - 1)
            return full
        }
        if wasFull { boundaryCrossed() }
    }

    /// Whether `source` may start another handshake this second.
    public func allowHandshake(from source: String, nowSeconds: UInt64) -> Bool {
        guard let perSecond = limits.handshakeRatePerSource else { return true }
        return state.withLock { s -> Bool in
            if s.rate.count >= Self.maximumTrackedSources && s.rate[source] == nil {
                // Pruned at most once a second: a flood from more distinct addresses than the
                // table holds, all within one second, would otherwise make every handshake scan
                // it. What is still current stays; a source it has no room for is not limited
                // (the handshake and connection limits still apply) and not remembered.
                if s.ratePrunedAt != nowSeconds {
                    s.ratePrunedAt = nowSeconds
                    s.rate = s.rate.filter { $0.value.second == nowSeconds }
                }
                if s.rate.count >= Self.maximumTrackedSources { return true }
            }
            var entry = s.rate[source] ?? (nowSeconds, 0)
            if entry.second != nowSeconds { entry = (nowSeconds, 0) }
            entry.count += 1
            s.rate[source] = entry
            return entry.count <= perSecond
        }
    }

    /// Asks for a handshake slot.
    public func admitHandshake(resume: @escaping @Sendable () -> Void) -> HandshakeAdmission {
        state.withLock { s -> HandshakeAdmission in
            if s.handshaking < limits.maxHandshakes {
                s.handshaking += 1
                return .granted
            }
            guard limits.handshakeOverflow == .wait, s.waiters.count - s.waiterHead < limits.maxConnections else { return .refused }
            let id = s.nextWaiter
            s.nextWaiter += 1
            s.waiters.append((id, resume))
            return .queued(id: id)
        }
    }

    /// A waiter that gave up (its connection closed or timed out) before it was granted a slot.
    /// Returns false when it had been granted meanwhile (the caller then holds a slot).
    public func cancelWaiter(_ id: UInt64) -> Bool {
        state.withLock { s -> Bool in
            guard let i = s.waiters[s.waiterHead...].firstIndex(where: { $0.id == id }) else { return false }
            s.waiters.remove(at: i)
            return true
        }
    }

    /// A handshake ended (completed or failed): its slot goes to the oldest waiter, if any.
    public func releaseHandshake() {
        let next = state.withLock { s -> (@Sendable () -> Void)? in
            if s.waiterHead < s.waiters.count {
                let w = s.waiters[s.waiterHead]
                // The granted entry stays in the array until it is compacted: without its closure,
                // which holds the waiting connection (and its channel) alive.
                s.waiters[s.waiterHead].resume = {}
                s.waiterHead += 1
                if s.waiterHead > 1024 && s.waiterHead * 2 > s.waiters.count {
                    s.waiters.removeFirst(s.waiterHead)
                    s.waiterHead = 0
                }
                return w.resume  // the slot passes on: `handshaking` stays
            }
            s.handshaking = max(0, s.handshaking - 1)
            return nil
        }
        next?()
    }
}
