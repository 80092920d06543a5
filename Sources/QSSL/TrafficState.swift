import QSSLWire

// TrafficState: the connection after the handshake (post-handshake messages, TLS 1.3 key updates).

/// TLS 1.3 application traffic secrets, which KeyUpdate advances (RFC 8446 §7.2).
struct TLS13TrafficSecrets {
    let suite: TLS13CipherSuite
    let hkdf: HKDF
    var client: SecretBytes
    var server: SecretBytes
}

/// After the handshake: post-handshake messages and, in TLS 1.3, key updates.
struct TrafficState {
    var tls13: TLS13TrafficSecrets?
    let summary: HandshakeSummary
    /// The proofs that make traffic possible: the peer's Finished, and its authentication, of
    /// the side it is on (a client holds how the server authenticated, a server the client).
    let finished: FinishedVerified
    let peer: PeerAuthenticated
    /// The last post-handshake authentication the client completed (TLS 1.3, server side).
    var postHandshakeClient: PostHandshakeClientAuthenticated?
    /// A TLS 1.3 client's receiver of NewSessionTicket messages.
    let tickets: ClientTicketReceiver?
    /// A TLS 1.2 client's session, kept when the handshake completed (reported once).
    var issuedSession: TLSSession?
    /// TLS 1.3 post-handshake client authentication, when the client offered it.
    var postHandshakeAuth: PostHandshakeAuthentication?

    init(
        tls13: TLS13TrafficSecrets?, summary: HandshakeSummary, finished: FinishedVerified, peer: PeerAuthenticated,
        tickets: ClientTicketReceiver? = nil, postHandshakeAuth: PostHandshakeAuthentication? = nil
    ) {
        self.tickets = tickets
        self.postHandshakeAuth = postHandshakeAuth
        self.tls13 = tls13
        var summary = summary
        summary.peerIdentity = peer.identity
        self.summary = summary
        self.finished = finished
        self.peer = peer
    }

    /// Whether this end is the client: a client's traffic holds the server's authentication.
    var isClient: Bool {
        if case .server = peer { return true }
        return false
    }

    /// Returns what the application should hear of the message, or the pause it started.
    mutating func handlePostHandshake(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> PostHandshakeOutcome {
        guard var secrets = tls13 else {
            // RFC 5746 §4 / RFC 5246 §7.4.1.1: renegotiation is refused with a warning; the
            // connection goes on.
            guard message.type == (isClient ? .helloRequest : .clientHello) else {
                throw .misbehaved(.sentUnexpectedMessage, "\(message.type) after the handshake")
            }
            // A few refusals between this end's own application data; beyond them a
            // HelloRequest is ignored (RFC 5246 §7.4.1.1 allows it) and a ClientHello ends the
            // connection: each refusal is a sealed alert the peer could otherwise have us queue
            // for every byte of data it slips between its requests.
            guard !context.closeNotifySent else { return .none }  // RFC 8446 §6.1: nothing after close_notify
            guard context.repliesSinceDataSent.renegotiationsRefused < TLSConnection.maxRefusedRenegotiations else {
                if isClient { return .none }
                throw .misbehaved(.sentUnexpectedMessage, "renegotiation asked for again after \(TLSConnection.maxRefusedRenegotiations) refusals")
            }
            context.repliesSinceDataSent.renegotiationsRefused += 1
            try context.records.writeAlert(.warning, .noRenegotiation)
            return .none
        }
        switch message.type {
        case .keyUpdate:
            let update = try message.require(KeyUpdate.self)
            // RFC 8446 §4.6.3 and §5.1: no handshake data may straddle the key change.
            guard context.joiner.isEmpty else { throw .misbehaved(.sentKeyUpdateWithPendingHandshakeData) }
            if isClient {
                secrets.server = TLS13KeySchedule.nextTrafficSecret(hkdf: secrets.hkdf, secrets.server)
                try context.installReadKeys(secret: secrets.server, suite: secrets.suite, duringHandshake: false)
            } else {
                secrets.client = TLS13KeySchedule.nextTrafficSecret(hkdf: secrets.hkdf, secrets.client)
                try context.installReadKeys(secret: secrets.client, suite: secrets.suite, duringHandshake: false)
            }
            tls13 = secrets
            // RFC 8446 §6.1: after close_notify this end sends nothing more, an answer included.
            if update.requestUpdate && !context.repliesSinceDataSent.keyUpdateAnswered && !context.closeNotifySent {
                try sendKeyUpdate(request: false, context: &context)
                context.repliesSinceDataSent.keyUpdateAnswered = true
            }
            return .event(.peerKeyUpdate)
        case .newSessionTicket where isClient:
            let ticket = try message.require(NewSessionTicket.self)
            return tickets?.receive(ticket).map { .event(.sessionIssued($0)) } ?? .none
        case .certificateRequest where isClient, .certificate where !isClient, .certificateVerify where !isClient, .finished where !isClient:
            return try handlePostHandshakeAuthentication(message, context: &context)
        default:
            throw .misbehaved(.sentUnexpectedMessage, "\(message.type) after the handshake")
        }
    }

    mutating func sendKeyUpdate(request: Bool, context: inout HandshakeContext) throws(TLSError) {
        guard var secrets = tls13 else { throw .misuse("KeyUpdate exists only in TLS 1.3") }
        var scratch = Transcript()
        try context.send(KeyUpdate(requestUpdate: request), transcript: &scratch)
        try context.flush()
        if isClient {
            secrets.client = TLS13KeySchedule.nextTrafficSecret(hkdf: secrets.hkdf, secrets.client)
            try context.installWriteKeys(secret: secrets.client, suite: secrets.suite)
        } else {
            secrets.server = TLS13KeySchedule.nextTrafficSecret(hkdf: secrets.hkdf, secrets.server)
            try context.installWriteKeys(secret: secrets.server, suite: secrets.suite)
        }
        tls13 = secrets
    }
}
