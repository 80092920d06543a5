import QSSLWire
import Synchronization

// The in-memory stores of PROTOCOL.md §4: a server's TLS 1.2 session-ID cache and a client's
// session store. Both are shared by every connection of a process (connections on several
// event loops at once), so each keeps its table in a `Mutex` and does O(1) work under it; both
// are bounded, because a peer can make a server create entries at will.

/// A server's TLS 1.2 session-ID cache in memory: bounded, least recently used first out.
///
/// Two bounds hold at once: `maxEntries`, and `maxBytes` over the encoded size of every cached
/// state plus its ID (`entryCost(of:sessionID:)`), so that sessions carrying long peer chains
/// (client authentication with ML-DSA certificates, several KB each) cannot grow the cache past
/// its budget. An entry older than `timeoutSeconds` since it was issued, or whose session has
/// outlived its lifetime, is a miss and is removed when looked up.
///
/// The counts are of encoded bytes, not of the heap the process uses: dictionary and list
/// overhead come on top (a few dozen bytes per entry).
public final class InMemorySessionCache: ServerSessionCache {
    /// The most sessions kept.
    public let maxEntries: Int
    /// The most bytes kept, counting each entry's `entryCost(of:sessionID:)`.
    public let maxBytes: Int
    /// How long an entry may be resumed after it was issued (PROTOCOL.md §4: 3600 s).
    public let timeoutSeconds: UInt32
    private let clock: any WallClock
    private let table = Mutex(Table())

    private struct Entry {
        var state: SessionState
        var cost: Int
    }

    private struct Table {
        var entries = LRUTable<[UInt8], Entry>()
        var bytes = 0
    }

    /// - Parameters:
    ///   - maxEntries: the most sessions kept (at least 1).
    ///   - maxBytes: the most encoded bytes kept; a single session larger than this is not cached.
    ///   - timeoutSeconds: how long after `issuedAt` an entry may still be resumed.
    ///   - clock: the wall clock (a fake one in tests).
    public init(
        maxEntries: Int = 20_000, maxBytes: Int = 32 << 20, timeoutSeconds: UInt32 = 3600,
        clock: any WallClock = SystemClock()
    ) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(0, maxBytes)
        self.timeoutSeconds = timeoutSeconds
        self.clock = clock
    }

    /// What an entry is charged against `maxBytes`: the state's encoded size plus the ID.
    public static func entryCost(of state: SessionState, sessionID: [UInt8]) -> Int {
        state.encodedCount + sessionID.count
    }

    /// How many sessions are cached.
    public var count: Int { table.withLock { $0.entries.count } }
    /// The sum of the cached entries' costs.
    public var byteCount: Int { table.withLock { $0.bytes } }
    /// The mean cost of a cached entry (0 when empty), for sizing `maxBytes`.
    public var averageBytesPerEntry: Double {
        table.withLock { $0.entries.isEmpty ? 0 : Double($0.bytes) / Double($0.entries.count) }
    }

    public func lookUp(sessionID: [UInt8]) -> SessionState? {
        let now = clock.nowMilliseconds()
        return table.withLock { t -> SessionState? in
            guard let entry = t.entries.value(for: sessionID) else { return nil }
            guard isFresh(entry.state, at: now) else {
                t.entries.remove(sessionID)
                t.bytes -= entry.cost
                return nil
            }
            return entry.state
        }
    }

    /// Keeps `state` under `sessionID`, then evicts the least recently used entries until both
    /// bounds hold. An empty ID or one over 32 bytes (RFC 5246 §7.4.1.2), or a state whose cost
    /// alone exceeds `maxBytes`, is not cached.
    public func save(_ state: SessionState, sessionID: [UInt8]) {
        guard (1...32).contains(sessionID.count) else { return }
        let cost = Self.entryCost(of: state, sessionID: sessionID)
        guard cost <= maxBytes else { return }
        table.withLock { t in
            if let old = t.entries.set(Entry(state: state, cost: cost), for: sessionID) { t.bytes -= old.cost }
            t.bytes += cost
            while t.entries.count > maxEntries || t.bytes > maxBytes,
                let evicted = t.entries.removeLeastRecentlyUsed()
            {
                t.bytes -= evicted.value.cost
            }
        }
    }

    public func remove(sessionID: [UInt8]) {
        table.withLock { t in
            if let old = t.entries.remove(sessionID) { t.bytes -= old.cost }
        }
    }

    /// Removes every entry that `lookUp` would no longer return. O(n): for a periodic sweep,
    /// never on a connection's path (lookups remove what they find expired anyway).
    public func removeExpired() {
        let now = clock.nowMilliseconds()
        table.withLock { t in
            for id in t.entries.keysByRecency {
                if let entry = t.entries.peek(id), !isFresh(entry.state, at: now) {
                    t.entries.remove(id)
                    t.bytes -= entry.cost
                }
            }
        }
    }

    private func isFresh(_ state: SessionState, at now: UInt64) -> Bool {
        // A clock that went back (now < issuedAt) does not make the entry older.
        let age = now >= state.issuedAt ? now - state.issuedAt : 0
        return age < UInt64(timeoutSeconds) * 1000 && state.isValid(at: now)
    }
}

/// A client's sessions in memory, a few per server key, the least recently used keys dropped
/// first.
///
/// `takeSession(for:)` hands out the newest session that is still valid. A TLS 1.3 one is
/// removed as it is handed out: RFC 8446 §C.4 — "Clients SHOULD NOT reuse a ticket for
/// multiple connections" — so a client that wants several resumptions keeps several tickets
/// (`maxSessionsPerKey`). A TLS 1.2 session stays: its session ID or RFC 5077 ticket may be
/// offered again until the server refuses it (then `removeSessions(for:)`).
public final class InMemoryClientSessionStore: ClientSessionStore {
    /// The most sessions kept per key; saving one more drops the oldest.
    public let maxSessionsPerKey: Int
    /// The most keys kept; a new key beyond this drops the least recently used one.
    public let maxKeys: Int
    private let clock: any WallClock
    /// Per key, sessions oldest first.
    private let table = Mutex(LRUTable<String, [TLSSession]>())

    public init(maxSessionsPerKey: Int = 4, maxKeys: Int = 1000, clock: any WallClock = SystemClock()) {
        self.maxSessionsPerKey = max(1, maxSessionsPerKey)
        self.maxKeys = max(1, maxKeys)
        self.clock = clock
    }

    /// How many keys have sessions.
    public var keyCount: Int { table.withLock { $0.count } }

    /// How many sessions are kept for `key` (expired ones included until they are next seen).
    public func sessionCount(for key: String) -> Int { table.withLock { $0.peek(key)?.count ?? 0 } }

    public func takeSession(for key: String) -> TLSSession? {
        let now = clock.nowMilliseconds()
        return table.withLock { t -> TLSSession? in
            guard var sessions = t.value(for: key) else { return nil }
            sessions.removeAll { !$0.state.isValid(at: now) }
            guard let newest = sessions.last else {
                t.remove(key)
                return nil
            }
            if newest.state.version == .tls13 { sessions.removeLast() }
            if sessions.isEmpty { t.remove(key) } else { t.set(sessions, for: key) }
            return newest
        }
    }

    /// Keeps `session` as the newest for `key`. A TLS 1.2 session the store already holds (same
    /// session ID and ticket, as after an abbreviated handshake) replaces the old copy rather
    /// than taking a second place.
    public func save(_ session: TLSSession, for key: String) {
        let now = clock.nowMilliseconds()
        guard session.state.isValid(at: now) else { return }
        table.withLock { t in
            var sessions = t.peek(key) ?? []
            sessions.removeAll { !$0.state.isValid(at: now) || Self.isSameResumption($0, session) }
            sessions.append(session)
            if sessions.count > maxSessionsPerKey { sessions.removeFirst(sessions.count - maxSessionsPerKey) }
            t.set(sessions, for: key)
            while t.count > maxKeys, t.removeLeastRecentlyUsed() != nil {}
        }
    }

    public func removeSessions(for key: String) {
        table.withLock { _ = $0.remove(key) }
    }

    /// Two sessions the server would resume as one: the same non-empty session ID or ticket.
    private static func isSameResumption(_ a: TLSSession, _ b: TLSSession) -> Bool {
        guard a.state.version == .tls12, b.state.version == .tls12 else { return false }
        let ticketA = a.ticket.flatMap { $0.isEmpty ? nil : $0 }
        let ticketB = b.ticket.flatMap { $0.isEmpty ? nil : $0 }
        if let ticketA { return ticketA == ticketB }
        return ticketB == nil && !a.sessionID.isEmpty && a.sessionID == b.sessionID
    }
}
