import QSSLWire

/// The one pause of the handshake, client or server, TLS 1.3 or TLS 1.2: the state to go on
/// from and the decision it waits for. `TLSConnection` holds it as `.paused` and reads nothing
/// until `resume(with:)` answers.
enum PausedHandshake {
    case serverSignature13(TLS13ServerAwaitingSignature)
    case serverSignature12(TLS12ServerAwaitingSignature)
    case clientVerifyPeer13(ClientHandshakeKeys, PeerVerificationRequest)
    /// With the ServerKeyExchange that arrived in place of a CertificateStatus, if any.
    case clientVerifyPeer12(TLS12ClientHandshake, PeerVerificationRequest, HandshakeMessage?)
    case serverSelectConfiguration(SelectingServerConfiguration)
    case serverLookUpSession(TLS12ServerStart, SessionLookupRequest)
    case serverVerifyPeer13(ServerHandshakeKeys, PeerVerificationRequest)
    case clientSignature13(ClientAwaitingSignature13)
    case clientSignature12(TLS12ClientAwaitingSignature)
    case clientPostHandshakeSignature(TrafficState, ClientPostHandshakeSigning)
    case serverPostHandshakeVerify(TrafficState, [UInt8], Transcript, PeerVerificationRequest)
    case serverVerifyPeer12(TLS12ServerHandshake, PeerVerificationRequest)
    case serverKeyExchange13(TLS13ServerAwaitingKeyExchange)

    var decision: PendingDecision {
        switch self {
        case .serverSignature13(let p): return PendingDecision(kind: .sign(p.request))
        case .serverSignature12(let p): return PendingDecision(kind: .sign(p.request))
        case .clientSignature13(let p): return PendingDecision(kind: .sign(p.request))
        case .clientSignature12(let p): return PendingDecision(kind: .sign(p.request))
        case .clientPostHandshakeSignature(_, let p): return PendingDecision(kind: .sign(p.request))
        case .serverPostHandshakeVerify(_, _, _, let r): return PendingDecision(kind: .verifyPeer(r))
        case .clientVerifyPeer13(_, let r), .clientVerifyPeer12(_, let r, _), .serverVerifyPeer13(_, let r), .serverVerifyPeer12(_, let r):
            return PendingDecision(kind: .verifyPeer(r))
        case .serverSelectConfiguration(let s): return PendingDecision(kind: .selectServerConfiguration(s.summary, s.selector))
        case .serverLookUpSession(_, let r): return PendingDecision(kind: .lookUpSession(r))
        case .serverKeyExchange13(let p): return PendingDecision(kind: .keyExchange(p.request))
        }
    }

    /// Whether `answer` answers this decision (a failure answers any).
    func accepts(_ answer: DecisionAnswer) -> Bool {
        switch (self, answer.kind) {
        case (_, .failure), (.serverSignature13, .signature), (.serverSignature12, .signature), (.clientSignature13, .signature), (.clientSignature12, .signature),
             (.clientPostHandshakeSignature, .signature), (.serverPostHandshakeVerify, .peerVerified),
             (.serverVerifyPeer12, .peerVerified),
             (.clientVerifyPeer13, .peerVerified), (.clientVerifyPeer12, .peerVerified), (.serverVerifyPeer13, .peerVerified),
             (.serverSelectConfiguration, .serverConfiguration), (.serverLookUpSession, .session), (.serverKeyExchange13, .keyExchange):
            return true
        default:
            return false
        }
    }

    func resume(with answer: DecisionAnswer, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch (self, answer.kind) {
        case (_, .failure(let error)):
            // Every failure answer sends an alert: one that would send none (a misuse code, a
            // received alert) would leave the peer waiting.
            guard error.alert != nil else { throw .crypto("the pending decision failed: \(error)") }
            throw error
        case (.serverSignature13(let p), .signature(let signature)):
            return .server(ServerState.afterServerFinished(try p.complete(signature: signature, context: &context)))
        case (.clientSignature13(let p), .signature(let signature)):
            return .traffic(try p.complete(signature: signature, context: &context))
        case (.clientPostHandshakeSignature(let traffic, let p), .signature(let signature)):
            try p.complete(signature: signature, context: &context)
            return .traffic(traffic)
        case (.serverPostHandshakeVerify(var traffic, let requestContext, let transcript, let request), .peerVerified(let peer)):
            try checkAnswers(request, peer)
            traffic.acceptVerifiedClient(peer, requestContext: requestContext, transcript: transcript)
            return .traffic(traffic)
        case (.clientSignature12(let p), .signature(let signature)):
            return .client12(.finishing(.expectChangeCipherSpec(try p.complete(signature: signature, context: &context))))
        case (.serverVerifyPeer12(let hs, let request), .peerVerified(let peer)):
            try checkAnswers(request, peer)
            return .server12(.expectClientKeyExchange(hs, peer))
        case (.serverSignature12(let p), .signature(let signature)):
            return .server12(try p.complete(signature: signature, context: &context))
        case (.clientVerifyPeer13(let keys, let request), .peerVerified(let peer)):
            try checkAnswers(request, peer)
            return .client(.expectCertificateVerify(keys, peer))
        case (.clientVerifyPeer12(let handshake, let request, let held), .peerVerified(let peer)):
            try checkAnswers(request, peer)
            guard let held else { return .client12(.expectServerKeyExchange(handshake, peer)) }
            return try TLS12ClientState.expectServerKeyExchange(handshake, peer).handle(held, context: &context)
        case (.serverVerifyPeer13(let keys, let request), .peerVerified(let peer)):
            try checkAnswers(request, peer)
            return .server(.expectCertificateVerify(keys, peer))
        case (.serverSelectConfiguration(let s), .serverConfiguration(let configuration)):
            return try s.proceed(with: configuration, context: &context)
        case (.serverLookUpSession(let start, _), .session(let state)):
            return try start.proceed(withCached: state, context: &context)
        case (.serverKeyExchange13(let p), .keyExchange(let share, let secret)):
            return try p.complete(share: share, secret: secret, context: &context)
        default:
            // Local invariant: `TLSConnection.resume` checks `accepts` first.
            preconditionFailure("answer does not match the pending decision")
        }
    }
}

/// Verifies the peer in place when the verifier can answer at once; otherwise pauses.
func verifyPeerOrPause(_ request: PeerVerificationRequest, pause: (PeerVerificationRequest) -> PausedHandshake,
                       then next: (VerifiedPeer) -> ConnectionPhase) throws(TLSError) -> ConnectionPhase {
    guard request.verifier.isSynchronous else { return .paused(pause(request)) }
    let peer = try request.verifier.verifyPeer(request)
    try checkAnswers(request, peer)
    return next(peer)
}

/// A verification answer must be about the certificate the peer sent: a cached or mixed-up
/// answer for another certificate would let the handshake signature be checked against a key
/// the peer never presented.
func checkAnswers(_ request: PeerVerificationRequest, _ peer: VerifiedPeer) throws(TLSError) {
    guard let leaf = peer.identity.verifiedChain.first, let sent = request.chain.first, leaf == sent else {
        throw .rejected(.other("the verification answer is for another certificate than the peer's"))
    }
}
