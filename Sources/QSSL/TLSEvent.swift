import QSSLWire

// TLSEvent (what receive reports), PendingDecision's Hashable conformance, and the connection's phases.

/// What the caller learns from `receive`.
public enum TLSEvent: Sendable, Hashable {
    /// The handshake finished; application data may flow.
    case handshakeCompleted(HandshakeSummary)
    /// Decrypted application data from the peer.
    case applicationData([UInt8])
    /// The peer sent close_notify: it will send nothing more.
    case closeNotify
    /// The peer updated its keys (RFC 8446 §4.6.3).
    case peerKeyUpdate
    /// The handshake is paused until the application answers with `resume(with:)` (the core's
    /// one pause: a signature, a peer verification, a server configuration, a session lookup).
    /// Nothing more is read meanwhile; bytes fed in are buffered.
    case decisionNeeded(PendingDecision)
    /// The server issued a session this client may resume later (already saved in the
    /// configuration's session store, if any).
    case sessionIssued(TLSSession)
    /// A server: the client answered `requestClientCertificate()` (RFC 8446 §4.6.2) with this
    /// verified identity, or declined with an empty Certificate (nil) where that is allowed.
    case clientAuthenticated(PeerIdentity?)
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
