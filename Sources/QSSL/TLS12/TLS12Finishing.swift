import QSSLWire

// The end of a TLS 1.2 handshake, both sides: ChangeCipherSpec and Finished, and the session kept or issued.

/// Both sides' end of a TLS 1.2 handshake: the peer's ChangeCipherSpec, then its Finished
/// (and, for a client the server promised a ticket, a NewSessionTicket before them).
enum TLS12FinishingState {
    case expectChangeCipherSpec(TLS12Finishing)
    case expectFinished(TLS12Finishing)

    enum Step {
        case next(TLS12FinishingState)
        case traffic(TrafficState)
    }

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> Step {
        switch self {
        case .expectChangeCipherSpec(var finishing):
            // RFC 5077 §3.3: the ticket the server announced in its ServerHello, before its CCS.
            guard message.type == .newSessionTicket, finishing.isClient, let session = finishing.clientSession,
                  session.expectsTicket, session.receivedTicket == nil else {
                throw .misbehaved(message.type == .newSessionTicket ? .sentUnexpectedNewSessionTicket : .sentUnexpectedMessage,
                                  "\(message.type) before ChangeCipherSpec")
            }
            let ticket = try message.require(TLS12NewSessionTicket.self)
            finishing.clientSession?.receivedTicket = ticket
            finishing.transcript.append(message)
            return .next(.expectChangeCipherSpec(finishing))
        case .expectFinished(let finishing):
            return .traffic(try finishing.processPeerFinished(message, context: &context))
        }
    }

    /// RFC 5246 §7.1: the peer's ChangeCipherSpec switches our reading keys.
    func handleChangeCipherSpec(context: inout HandshakeContext) throws(TLSError) -> TLS12FinishingState {
        guard case .expectChangeCipherSpec(let finishing) = self else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
        // A ticket promised in the ServerHello must come before the server's CCS (RFC 5077 §3.3).
        if let session = finishing.clientSession, session.expectsTicket, session.receivedTicket == nil {
            throw .misbehaved(.sentUnexpectedChangeCipherSpec, "ChangeCipherSpec before the promised NewSessionTicket")
        }
        try finishing.installPeerKeys(context: &context)
        return .expectFinished(finishing)
    }
}

/// A TLS 1.2 client's session once the server's Finished verified: kept in the store under
/// its ID and/or ticket.
struct TLS12ClientSessionKeeping {
    let config: ClientConfiguration
    let key: String
    var state: SessionState
    let sessionID: [UInt8]
    let offeredTicket: [UInt8]?
    let expectsTicket: Bool
    var receivedTicket: TLS12NewSessionTicket? = nil

    func keep() -> TLSSession? {
        guard let store = config.sessionStore else { return nil }
        var state = self.state
        // An empty NewSessionTicket means the server will not renew the one we hold.
        var ticket = offeredTicket
        if let received = receivedTicket, !received.ticket.isEmpty, received.ticket.count <= maxStoredTicketLength {
            ticket = received.ticket
            // RFC 5077 §3.3: the hint is advisory; 0 means unspecified. The session's own
            // lifetime is kept below a day either way.
            if received.lifetimeHint > 0 { state.lifetimeSeconds = min(state.lifetimeSeconds, received.lifetimeHint) }
        }
        guard !sessionID.isEmpty || !(ticket ?? []).isEmpty else { return nil }
        let session = TLSSession(state: state, ticket: ticket, sessionID: sessionID, receivedAt: config.clock.nowMilliseconds())
        store.save(session, for: key)
        return session
    }
}

/// A TLS 1.2 server's session after a full handshake: cached under its new ID and/or sealed
/// into a ticket sent before the server's ChangeCipherSpec.
struct TLS12ServerSessionIssue {
    let plan: TLS12SessionPlan
    var state: SessionState
    let config: ServerConfiguration

    func issue(transcript: inout Transcript, context: inout HandshakeContext) throws(TLSError) {
        if plan.issueTicket, let sealer = config.ticketKeys {
            // RFC 5077 §3.3: an empty ticket when none can be made; the handshake goes on.
            let ticket = sealTicket(state, sealer) ?? []
            try context.send(TLS12NewSessionTicket(lifetimeHint: ticket.isEmpty ? 0 : config.sessionLifetimeSeconds, ticket: ticket),
                             transcript: &transcript)
        }
        if !plan.sessionID.isEmpty, let cache = config.sessionCache {
            var compact = state
            compact.peerIdentity = state.peerIdentity.map(compactIdentity)
            cache.save(compact, sessionID: plan.sessionID)
        }
    }
}

/// Both sides after their key exchange: waiting for the peer's ChangeCipherSpec and Finished.
struct TLS12Finishing {
    let isClient: Bool
    let suite: TLS12CipherSuite
    let prf: TLS12PRF
    let masterSecret: SecretBytes
    let keys: TLS12KeyBlock
    var transcript: Transcript
    var summary: HandshakeSummary
    var peer: PeerAuthentication
    /// Whether our ChangeCipherSpec and Finished follow the peer's: the server's on a full
    /// handshake, the client's on an abbreviated one (RFC 5246 §7.3).
    let respondsWithFinished: Bool
    var clientSession: TLS12ClientSessionKeeping? = nil
    var serverSession: TLS12ServerSessionIssue? = nil

    /// A server: the client's CertificateVerify over the messages through ClientKeyExchange.
    mutating func processClientCertificateVerify(_ message: HandshakeMessage, peer client: VerifiedPeer) throws(TLSError) {
        let verify = try message.require(CertificateVerify.self)
        guard let verifier = serverSession?.config.clientCertificateVerifier ?? nil,
              verifier.supportedSchemes.contains(verify.scheme), tls12ClientSignatureAllowed(verify.scheme, suite: suite) else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)")
        }
        let proof = try PeerSignatureVerified(signature: verify.signature, scheme: verify.scheme, content: transcript.bytes, peer: client)
        transcript.append(message)
        peer = .authenticated(proof)
        summary.peerSignatureScheme = verify.scheme
        // The session remembers who the client proved to be.
        serverSession?.state.peerIdentity = proof.identity
    }

    func installPeerKeys(context: inout HandshakeContext) throws(TLSError) {
        if isClient {
            try context.installTLS12ReadKeys(key: keys.serverKey, iv: keys.serverIV, suite: suite)
        } else {
            try context.installTLS12ReadKeys(key: keys.clientKey, iv: keys.clientIV, suite: suite)
        }
    }

    /// Checks the peer's Finished (constant time). The server then sends its own flight end.
    func processPeerFinished(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        let finished = try message.require(Finished.self)
        let expected = prf.verifyData(masterSecret: masterSecret, client: !isClient, transcriptHash: context.primitives.hash(suite.hash, transcript.bytes))
        let verified = try FinishedVerified(expected: expected, received: finished.verifyData)
        if respondsWithFinished {
            var transcript = self.transcript
            transcript.append(message)
            try serverSession?.issue(transcript: &transcript, context: &context)
            try context.sendChangeCipherSpec()
            try context.installTLS12WriteKeys(key: isClient ? keys.clientKey : keys.serverKey, iv: isClient ? keys.clientIV : keys.serverIV, suite: suite)
            let verifyData = prf.verifyData(masterSecret: masterSecret, client: isClient, transcriptHash: context.primitives.hash(suite.hash, transcript.bytes))
            try context.send(Finished(verifyData: verifyData), transcript: &transcript)
        }
        var traffic = TrafficState(isClient: isClient, tls13: nil, summary: summary, finished: verified, peer: peer)
        traffic.issuedSession = clientSession?.keep()
        return traffic
    }
}
