import QSSL

/// The server's session-ID cache, counted: `qssl_session_cache_lookups_total{result}`.
public struct CountingSessionCache: ServerSessionCache {
    public let inner: any ServerSessionCache
    public let metrics: ProxyMetrics

    public init(_ inner: any ServerSessionCache, metrics: ProxyMetrics) {
        self.inner = inner
        self.metrics = metrics
        metrics.count("qssl_session_cache_lookups_total", [("result", "hit")], by: 0)
        metrics.count("qssl_session_cache_lookups_total", [("result", "miss")], by: 0)
    }

    public var isSynchronous: Bool { inner.isSynchronous }

    public func lookUp(sessionID: [UInt8]) -> SessionState? {
        let found = inner.lookUp(sessionID: sessionID)
        metrics.count("qssl_session_cache_lookups_total", [("result", found == nil ? "miss" : "hit")])
        return found
    }

    public func lookUpAsynchronously(sessionID: [UInt8]) async -> SessionState? {
        let found = await inner.lookUpAsynchronously(sessionID: sessionID)
        metrics.count("qssl_session_cache_lookups_total", [("result", found == nil ? "miss" : "hit")])
        return found
    }

    public func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) {
        let metrics = metrics
        inner.lookUp(sessionID: sessionID) { found in
            metrics.count("qssl_session_cache_lookups_total", [("result", found == nil ? "miss" : "hit")])
            completion(found)
        }
    }

    public func save(_ state: SessionState, sessionID: [UInt8]) { inner.save(state, sessionID: sessionID) }
    public func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
}

/// The ticket keys, counted: `qssl_tickets_accepted_total{key="current"|"previous"}` for every
/// ticket that opens (the core may still decline it for another reason).
public struct CountingTicketSealer: TicketSealer {
    public let inner: any TicketSealer
    public let metrics: ProxyMetrics

    public init(_ inner: any TicketSealer, metrics: ProxyMetrics) {
        self.inner = inner
        self.metrics = metrics
        metrics.count("qssl_tickets_accepted_total", [("key", "current")], by: 0)
        metrics.count("qssl_tickets_accepted_total", [("key", "previous")], by: 0)
    }

    public func seal(_ plaintext: SecretBytes) throws(TLSError) -> [UInt8] { try inner.seal(plaintext) }

    public func open(_ ticket: [UInt8]) -> (plaintext: SecretBytes, byCurrentKey: Bool)? {
        let opened = inner.open(ticket)
        if let opened { metrics.count("qssl_tickets_accepted_total", [("key", opened.byCurrentKey ? "current" : "previous")]) }
        return opened
    }
}
