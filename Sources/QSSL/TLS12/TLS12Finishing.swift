import QSSLWire

// The end of a TLS 1.2 handshake: the peer's ChangeCipherSpec and Finished, one state per side
// (the client may first receive the NewSessionTicket the server promised), and the session kept
// or issued.

/// What either side ends the handshake with once the master secret is known.
struct TLS12FinishedKeys {
    let suite: TLS12CipherSuite
    let prf: TLS12PRF
    let masterSecret: SecretBytes
    let keys: TLS12KeyBlock

    /// The peer's Finished over `transcript`, compared in constant time.
    func checkFinished(
        _ message: HandshakeMessage, fromClient: Bool, transcript: Transcript,
        context: inout HandshakeContext
    ) throws(TLSError) -> FinishedVerified {
        let finished = try message.require(Finished.self)
        let expected = prf.verifyData(masterSecret: masterSecret, client: fromClient, transcriptHash: context.primitives.hash(suite.hash, transcript.bytes))
        return try FinishedVerified(expected: expected, received: finished.verifyData)
    }

    /// Our ChangeCipherSpec, the switch to our writing keys, and our Finished.
    func sendChangeCipherSpecAndFinished(asClient: Bool, transcript: inout Transcript, context: inout HandshakeContext) throws(TLSError) {
        try context.sendChangeCipherSpec()
        try context.installTLS12WriteKeys(key: asClient ? keys.clientKey : keys.serverKey, iv: asClient ? keys.clientIV : keys.serverIV, suite: suite)
        let verifyData = prf.verifyData(masterSecret: masterSecret, client: asClient, transcriptHash: context.primitives.hash(suite.hash, transcript.bytes))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)
    }
}

/// What handling a message of the handshake's end leads to.
enum TLS12FinishingStep<State> {
    case next(State)
    case traffic(TrafficState)
}

/// A TLS 1.2 client waiting for the server's end of the handshake.
struct TLS12ClientFinishing {
    let keys: TLS12FinishedKeys
    var transcript: Transcript
    let summary: HandshakeSummary
    /// How the server authenticated: its ServerKeyExchange signature, or the session it resumed.
    let server: ServerAuthenticated
    /// On an abbreviated handshake our ChangeCipherSpec and Finished follow the server's (RFC 5246 §7.3).
    let respondsWithFinished: Bool
    var session: TLS12ClientSessionKeeping
}

enum TLS12ClientFinishingState {
    /// The server's ChangeCipherSpec, or first the NewSessionTicket its ServerHello promised.
    case expectChangeCipherSpec(TLS12ClientFinishing)
    case expectFinished(TLS12ClientFinishing)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TLS12FinishingStep<TLS12ClientFinishingState> {
        switch self {
        case .expectChangeCipherSpec(var finishing):
            // RFC 5077 §3.3: the ticket the server announced in its ServerHello, before its CCS.
            guard message.type == .newSessionTicket, finishing.session.expectsTicket, finishing.session.receivedTicket == nil else {
                throw .misbehaved(
                    message.type == .newSessionTicket ? .sentUnexpectedNewSessionTicket : .sentUnexpectedMessage,
                    "\(message.type) before ChangeCipherSpec")
            }
            finishing.session.receivedTicket = try message.require(TLS12NewSessionTicket.self)
            finishing.transcript.append(message)
            return .next(.expectChangeCipherSpec(finishing))
        case .expectFinished(let finishing):
            let verified = try finishing.keys.checkFinished(message, fromClient: false, transcript: finishing.transcript, context: &context)
            if finishing.respondsWithFinished {
                var transcript = finishing.transcript
                transcript.append(message)
                try finishing.keys.sendChangeCipherSpecAndFinished(asClient: true, transcript: &transcript, context: &context)
            }
            var traffic = TrafficState(tls13: nil, summary: finishing.summary, finished: verified, peer: .server(finishing.server))
            traffic.issuedSession = finishing.session.keep()
            return .traffic(traffic)
        }
    }

    /// RFC 5246 §7.1: the server's ChangeCipherSpec switches our reading keys.
    func handleChangeCipherSpec(context: inout HandshakeContext) throws(TLSError) -> TLS12ClientFinishingState {
        guard case .expectChangeCipherSpec(let finishing) = self else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
        // A ticket promised in the ServerHello must come before the server's CCS (RFC 5077 §3.3).
        if finishing.session.expectsTicket, finishing.session.receivedTicket == nil {
            throw .misbehaved(.sentUnexpectedChangeCipherSpec, "ChangeCipherSpec before the promised NewSessionTicket")
        }
        let k = finishing.keys
        try context.installTLS12ReadKeys(key: k.keys.serverKey, iv: k.keys.serverIV, suite: k.suite)
        return .expectFinished(finishing)
    }
}

/// A TLS 1.2 server after the client's key exchange, before it knows how the client stands:
/// its CertificateVerify may still come.
struct TLS12ServerKeyExchanged {
    let keys: TLS12FinishedKeys
    var transcript: Transcript
    var summary: HandshakeSummary
    var session: TLS12ServerSessionIssue
    let clientCertificateVerifier: (any CertificateVerifier)?

    /// The client's standing settled: what its ChangeCipherSpec and Finished end.
    func finishing(_ client: ClientAuthenticated) -> TLS12ServerFinishing {
        var session = self.session
        // The session remembers who the client proved to be.
        session.state.peerIdentity = client.identity
        return TLS12ServerFinishing(keys: keys, transcript: transcript, summary: summary, client: client, respondsWithFinished: true, session: session)
    }

    /// RFC 5246 §7.4.8: the client's CertificateVerify over the messages through ClientKeyExchange.
    func processClientCertificateVerify(_ message: HandshakeMessage, peer client: VerifiedPeer) throws(TLSError) -> TLS12ServerFinishing {
        let verify = try message.require(CertificateVerify.self)
        guard let verifier = clientCertificateVerifier, verifier.supportedSchemes.contains(verify.scheme),
            tls12ClientSignatureAllowed(verify.scheme, suite: keys.suite)
        else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)")
        }
        let proof = try PeerSignatureVerified(
            signature: verify.signature, scheme: verify.scheme, content: transcript.bytes, peer: client,
            reading: keys.suite.isHybrid ? .strict : .tls12(accepting: verifier.supportedSchemes))
        var next = self
        next.transcript.append(message)
        next.summary.peerSignatureScheme = verify.scheme
        return next.finishing(.certificate(proof))
    }
}

/// A TLS 1.2 server waiting for the client's end of the handshake.
struct TLS12ServerFinishing {
    let keys: TLS12FinishedKeys
    var transcript: Transcript
    let summary: HandshakeSummary
    /// How the client stands: its certificate, the session it resumed, or a policy that lets it
    /// through without either.
    let client: ClientAuthenticated
    /// On a full handshake our session, ChangeCipherSpec and Finished follow the client's.
    let respondsWithFinished: Bool
    let session: TLS12ServerSessionIssue?
}

enum TLS12ServerFinishingState {
    case expectChangeCipherSpec(TLS12ServerFinishing)
    case expectFinished(TLS12ServerFinishing)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TLS12FinishingStep<TLS12ServerFinishingState> {
        guard case .expectFinished(let finishing) = self else {
            throw .misbehaved(
                message.type == .newSessionTicket ? .sentUnexpectedNewSessionTicket : .sentUnexpectedMessage,
                "\(message.type) before ChangeCipherSpec")
        }
        let verified = try finishing.keys.checkFinished(message, fromClient: true, transcript: finishing.transcript, context: &context)
        if finishing.respondsWithFinished {
            var transcript = finishing.transcript
            transcript.append(message)
            try finishing.session?.issue(transcript: &transcript, context: &context)
            try finishing.keys.sendChangeCipherSpecAndFinished(asClient: false, transcript: &transcript, context: &context)
        }
        return .traffic(TrafficState(tls13: nil, summary: finishing.summary, finished: verified, peer: .client(finishing.client)))
    }

    /// RFC 5246 §7.1: the client's ChangeCipherSpec switches our reading keys.
    func handleChangeCipherSpec(context: inout HandshakeContext) throws(TLSError) -> TLS12ServerFinishingState {
        guard case .expectChangeCipherSpec(let finishing) = self else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
        let k = finishing.keys
        try context.installTLS12ReadKeys(key: k.keys.clientKey, iv: k.keys.clientIV, suite: k.suite)
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
            try context.send(
                TLS12NewSessionTicket(lifetimeHint: ticket.isEmpty ? 0 : config.sessionLifetimeSeconds, ticket: ticket),
                transcript: &transcript)
        }
        if !plan.sessionID.isEmpty, let cache = config.sessionCache {
            var compact = state
            compact.peerIdentity = state.peerIdentity.map(compactIdentity)
            cache.save(compact, sessionID: plan.sessionID)
        }
    }
}
