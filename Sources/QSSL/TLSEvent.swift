import QSSLWire

// TLSEvent (what receive reports), PendingDecision's Hashable conformance, and the connection's phases.

/// What the caller learns from `receive`.
///
/// A struct rather than an enum so that kinds of event can be added (early data, ECH outcomes)
/// without breaking callers: compare with the constructors (`events == [.applicationData(bytes)]`,
/// `events.contains(.closeNotify)`) or ask for the kind you handle (`applicationData`,
/// `handshakeSummary`, `decision`, …), each nil for any other event.
public struct TLSEvent: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case handshakeCompleted(HandshakeSummary)
        case applicationData([UInt8])
        case closeNotify
        case peerKeyUpdate
        case decisionNeeded(PendingDecision)
        case sessionIssued(TLSSession)
        case clientAuthenticated(PeerIdentity?)
    }
    let kind: Kind

    /// The handshake finished; application data may flow.
    public static func handshakeCompleted(_ summary: HandshakeSummary) -> TLSEvent { TLSEvent(kind: .handshakeCompleted(summary)) }
    /// Decrypted application data from the peer.
    public static func applicationData(_ bytes: [UInt8]) -> TLSEvent { TLSEvent(kind: .applicationData(bytes)) }
    /// The peer sent close_notify: it will send nothing more.
    public static let closeNotify = TLSEvent(kind: .closeNotify)
    /// The peer updated its keys (RFC 8446 §4.6.3).
    public static let peerKeyUpdate = TLSEvent(kind: .peerKeyUpdate)
    /// The handshake is paused until the application answers with `resume(with:)` (the core's
    /// one pause: a signature, a peer verification, a server configuration, a session lookup).
    /// Nothing more is read meanwhile; bytes fed in are buffered.
    public static func decisionNeeded(_ decision: PendingDecision) -> TLSEvent { TLSEvent(kind: .decisionNeeded(decision)) }
    /// The server issued a session this client may resume later (already saved in the
    /// configuration's session store, if any).
    public static func sessionIssued(_ session: TLSSession) -> TLSEvent { TLSEvent(kind: .sessionIssued(session)) }
    /// A server: the client answered `requestClientCertificate()` (RFC 8446 §4.6.2) with this
    /// verified identity, or declined with an empty Certificate (nil) where that is allowed.
    public static func clientAuthenticated(_ identity: PeerIdentity?) -> TLSEvent { TLSEvent(kind: .clientAuthenticated(identity)) }

    /// What was negotiated, if this is `handshakeCompleted`.
    public var handshakeSummary: HandshakeSummary? {
        if case .handshakeCompleted(let s) = kind { return s }
        return nil
    }
    /// The decrypted bytes, if this is `applicationData`.
    public var applicationData: [UInt8]? {
        if case .applicationData(let bytes) = kind { return bytes }
        return nil
    }
    /// Whether this is `closeNotify`.
    public var isCloseNotify: Bool {
        if case .closeNotify = kind { return true }
        return false
    }
    /// Whether this is `peerKeyUpdate`.
    public var isPeerKeyUpdate: Bool {
        if case .peerKeyUpdate = kind { return true }
        return false
    }
    /// The decision the handshake waits for, if this is `decisionNeeded`.
    public var decision: PendingDecision? {
        if case .decisionNeeded(let d) = kind { return d }
        return nil
    }
    /// The session, if this is `sessionIssued`.
    public var issuedSession: TLSSession? {
        if case .sessionIssued(let s) = kind { return s }
        return nil
    }
    /// The client's answer, if this is `clientAuthenticated`: its `identity` is nil when the
    /// client declined.
    public var clientAuthentication: ClientAuthenticationEvent? {
        if case .clientAuthenticated(let identity) = kind { return ClientAuthenticationEvent(identity: identity) }
        return nil
    }
}

/// A client's answer to a post-handshake certificate request (RFC 8446 §4.6.2), as
/// `TLSEvent.clientAuthentication` reports it.
public struct ClientAuthenticationEvent: Sendable, Hashable {
    /// The verified identity, or nil when the client declined with an empty Certificate.
    public let identity: PeerIdentity?

    public init(identity: PeerIdentity?) { self.identity = identity }
}

extension TLSEvent: CustomStringConvertible {
    /// As the event's kind reads, e.g. `closeNotify` or `applicationData([42])`.
    public var description: String { String(describing: kind) }
}

extension PendingDecision: Hashable {
    public static func == (a: PendingDecision, b: PendingDecision) -> Bool {
        switch (a.kind, b.kind) {
        case (.sign(let x), .sign(let y)): return x.message == y.message && x.scheme == y.scheme
        case (.verifyPeer(let x), .verifyPeer(let y)): return x.chain == y.chain && x.role == y.role
        case (.selectServerConfiguration(let x, _), .selectServerConfiguration(let y, _)): return x == y
        case (.lookUpSession(let x), .lookUpSession(let y)): return x.sessionID == y.sessionID
        case (.keyExchange(let x), .keyExchange(let y)): return x.group == y.group && x.clientShare == y.clientShare
        default: return false
        }
    }
    public func hash(into h: inout Hasher) { h.combine(description) }
}

enum ConnectionPhase {
    case client(ClientState)
    case server(ServerState)
    case client12(TLS12ClientState)
    case server12(TLS12ServerState)
    /// The one pause, for either side and version.
    case paused(PausedHandshake)
    case traffic(TrafficState)
    case failed(TLSError)
    /// Only while a state is being handled: the stored state has been moved out.
    case transitioning
}
