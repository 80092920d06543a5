import QSSL

// The public values that pass through a NIOQSSLHandler pipeline: its user events, the
// requests an application sends down, and the errors it surfaces.

/// Q-SSL-specific events fired through the pipeline next to NIO's `TLSUserEvent`s.
///
/// A struct rather than an enum so that events can be added (early data, ECH outcomes) without
/// breaking handlers: ask for the one you handle (`handshakeSummary`, `issuedSession`,
/// `clientAuthentication`), each nil for any other event.
public struct QSSLUserEvent: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case handshakeCompleted(HandshakeSummary)
        case sessionIssued(TLSSession)
        case clientAuthenticated(PeerIdentity?)
    }
    let kind: Kind

    /// The handshake completed; the summary says what was negotiated.
    public static func handshakeCompleted(_ summary: HandshakeSummary) -> QSSLUserEvent {
        QSSLUserEvent(kind: .handshakeCompleted(summary))
    }
    /// The server issued a resumable session (TLS 1.3 NewSessionTicket, TLS 1.2 session).
    public static func sessionIssued(_ session: TLSSession) -> QSSLUserEvent { QSSLUserEvent(kind: .sessionIssued(session)) }
    /// A server: the client answered a post-handshake certificate request (nil: it declined).
    public static func clientAuthenticated(_ identity: PeerIdentity?) -> QSSLUserEvent {
        QSSLUserEvent(kind: .clientAuthenticated(identity))
    }

    /// What was negotiated, if this is `handshakeCompleted`.
    public var handshakeSummary: HandshakeSummary? {
        if case .handshakeCompleted(let s) = kind { return s }
        return nil
    }
    /// The session, if this is `sessionIssued`.
    public var issuedSession: TLSSession? {
        if case .sessionIssued(let s) = kind { return s }
        return nil
    }
    /// The client's answer, if this is `clientAuthenticated` (its `identity` nil: it declined).
    public var clientAuthentication: ClientAuthenticationEvent? {
        if case .clientAuthenticated(let identity) = kind { return ClientAuthenticationEvent(identity: identity) }
        return nil
    }
}

extension QSSLUserEvent: CustomStringConvertible {
    /// As the event's kind reads, e.g. `sessionIssued(…)`.
    public var description: String { String(describing: kind) }
}

/// Requests an application sends down the pipeline with `triggerUserOutboundEvent`.
///
/// A struct rather than an enum so that requests can be added (a key update, say) without
/// breaking callers.
public struct QSSLOutboundRequest: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case requestClientCertificate
    }
    let kind: Kind

    /// A TLS 1.3 server asks the client for a certificate now (RFC 8446 §4.6.2); the answer
    /// arrives as `QSSLUserEvent.clientAuthenticated`. The promise fails when the client did not
    /// offer post-handshake authentication.
    public static let requestClientCertificate = QSSLOutboundRequest(kind: .requestClientCertificate)
}

/// Errors the handler surfaces through `errorCaught`.
///
/// Closed on purpose: a connection fails either in TLS (`TLSError`, whose codes are an
/// extensible struct, so new failures add codes there) or by the transport closing without
/// close_notify. Nothing else can end it.
public enum NIOQSSLError: Error, CustomStringConvertible {
    /// The handshake or the connection failed; the error says why and which alert went out or came in.
    case tls(TLSError)
    /// The transport closed before close_notify (a truncation attack, or a peer that just hung up).
    case uncleanShutdown

    public var description: String {
        switch self {
        case .tls(let e): return e.description
        case .uncleanShutdown: return "connection closed without close_notify"
        }
    }
}
