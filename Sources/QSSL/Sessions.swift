import QSSLWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// Resumption (PROTOCOL.md §4): what both sides remember of a completed handshake, and the
// stores that keep it. The core reads these only through protocols, so that a store in another
// process (a Redis-backed fleet) fits without changing it: a session-ID lookup that cannot
// answer at once is the core's pause (`PendingDecision.sessionLookup`).

/// Wall-clock time, the only clock the core reads for lifetimes and ticket ages.
public protocol WallClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMilliseconds() -> UInt64
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
    public init() {}
    public func nowMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec)) &* 1000 &+ UInt64(max(0, ts.tv_nsec)) / 1_000_000
    }
}

/// A resumable session: what a full handshake established that a later handshake may reuse.
/// Versioned; every field is checked again when the session is offered or accepted.
public struct SessionState: Sendable, Hashable {
    /// Encoding version of `encoded()`; a state of another version is not resumed.
    public static let formatVersion: UInt8 = 2

    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    /// The key exchange of the full handshake that created the session (PQ policy: a session
    /// without an ML-KEM part is never resumed under `requirePostQuantum`).
    public var group: NamedGroup
    /// TLS 1.2: whether the master secret is the extended one (RFC 7627). Always true in TLS 1.3.
    public var extendedMasterSecret: Bool
    public var serverName: String?
    public var alpnProtocol: String?
    /// The TLS 1.2 master secret, or the TLS 1.3 resumption PSK.
    public var secret: SecretBytes
    /// When the full handshake completed, in ms since the epoch. A session never outlives
    /// `createdAt + lifetime`, however often it is resumed and re-ticketed.
    public var createdAt: UInt64
    /// When this ticket or cache entry was issued (ms); the TLS 1.3 ticket age counts from here.
    public var issuedAt: UInt64
    public var lifetimeSeconds: UInt32
    /// TLS 1.3 ticket_age_add (RFC 8446 §4.6.1); 0 in TLS 1.2.
    public var ageAdd: UInt32
    /// Who the peer proved to be on the full handshake (the server, on a client; the client,
    /// on a server with client authentication). A resumption neither adds nor drops it.
    public var peerIdentity: PeerIdentity?
    /// The trust policy the session's peer was authenticated under (`ResumptionPolicy`): on a
    /// server its client-authentication policy and client verifier's digest, on a client its
    /// server verifier's digest. A session resumes only where the policy in force is the same.
    public var trustBinding: [UInt8]

    public init(
        version: ProtocolVersion, cipherSuite: CipherSuite, group: NamedGroup, extendedMasterSecret: Bool,
        serverName: String?, alpnProtocol: String?, secret: SecretBytes, createdAt: UInt64, issuedAt: UInt64,
        lifetimeSeconds: UInt32, ageAdd: UInt32 = 0, peerIdentity: PeerIdentity?, trustBinding: [UInt8] = []
    ) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.group = group
        self.extendedMasterSecret = extendedMasterSecret
        self.serverName = serverName
        self.alpnProtocol = alpnProtocol
        self.secret = secret
        self.createdAt = createdAt
        self.issuedAt = issuedAt
        self.lifetimeSeconds = lifetimeSeconds
        self.ageAdd = ageAdd
        self.peerIdentity = peerIdentity
        self.trustBinding = trustBinding
    }

    /// Whether the session may still be resumed at `now` (ms).
    public func isValid(at now: UInt64) -> Bool {
        now >= createdAt && now - createdAt < UInt64(lifetimeSeconds) * 1000
    }

    /// Whether the full handshake had an ML-KEM part (group, or a hybrid TLS 1.2 suite).
    public var usedPostQuantumKeyExchange: Bool { group.isPostQuantum }
}

/// A session as a client keeps it: the state plus what it sends to resume it.
public struct TLSSession: Sendable, Hashable {
    public var state: SessionState
    /// A TLS 1.3 ticket or a TLS 1.2 RFC 5077 ticket, opaque to the client.
    public var ticket: [UInt8]?
    /// The TLS 1.2 session ID the server assigned (empty for ticket-only sessions).
    public var sessionID: [UInt8]
    /// When the client received the ticket (ms), for the TLS 1.3 obfuscated ticket age.
    public var receivedAt: UInt64

    public init(state: SessionState, ticket: [UInt8]?, sessionID: [UInt8], receivedAt: UInt64) {
        self.state = state
        self.ticket = ticket
        self.sessionID = sessionID
        self.receivedAt = receivedAt
    }
}

/// Where a client keeps sessions between connections, keyed by the server it connected to.
public protocol ClientSessionStore: Sendable {
    /// Returns a session for `key` to offer, removing it when it must not be offered twice
    /// (TLS 1.3 tickets are single-use: RFC 8446 §C.4).
    func takeSession(for key: String) -> TLSSession?
    /// Keeps a session received from the server behind `key`.
    func save(_ session: TLSSession, for key: String)
    /// Forgets every session for `key` (a resumption the server refused, say).
    func removeSessions(for key: String)
}

/// The TLS 1.2 session-ID cache of a server (stateful resumption, PROTOCOL.md §4).
public protocol ServerSessionCache: Sendable {
    /// Whether `lookUp` may run on the connection's thread; false pauses the handshake with a
    /// `sessionLookup` decision and `lookUpAsynchronously` runs wherever the caller likes.
    var isSynchronous: Bool { get }
    /// The session for `sessionID` if it is present and unexpired.
    func lookUp(sessionID: [UInt8]) -> SessionState?
    func lookUpAsynchronously(sessionID: [UInt8]) async -> SessionState?
    /// The asynchronous look-up with a completion instead of a task, for adapters that resume
    /// on their own thread without hopping through the concurrency runtime (a Redis reply read
    /// on the connection's own event loop answers there). `completion` runs exactly once, on
    /// any thread, possibly before this returns. The default runs `lookUpAsynchronously` in a
    /// task.
    func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void)
    /// Keeps a session under a fresh ID after a full handshake. Must not block.
    func save(_ state: SessionState, sessionID: [UInt8])
    /// Forgets a session (one that failed to resume).
    func remove(sessionID: [UInt8])
}

extension ServerSessionCache {
    public var isSynchronous: Bool { true }
    public func lookUpAsynchronously(sessionID: [UInt8]) async -> SessionState? { lookUp(sessionID: sessionID) }
    public func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) {
        Task { completion(await lookUpAsynchronously(sessionID: sessionID)) }
    }
}

/// Seals and opens session tickets (RFC 5077, RFC 8446 §4.6.1) with the server's ticket keys:
/// ticket = key_name (16) ‖ nonce (12) ‖ AES-256-GCM(state) ‖ tag (16), key_name as AAD.
///
/// The plaintext is an encoded session, master secret or PSK included: it crosses this
/// boundary as `SecretBytes` both ways, wiped when the last copy is dropped.
public protocol TicketSealer: Sendable {
    /// Seals with the current key.
    func seal(_ plaintext: SecretBytes) throws(TLSError) -> [UInt8]
    /// Opens a ticket, or nil when it is malformed, its key is unknown or retired, or its tag
    /// fails. `byCurrentKey` is false for a ticket sealed by an older key: it is still accepted
    /// and replaced by a fresh one.
    func open(_ ticket: [UInt8]) -> (plaintext: SecretBytes, byCurrentKey: Bool)?
}
