import QSSLWire

// The core's one pause, inside. Each side has its own waiting state, one case per kind of
// decision it can wait for, and each case holds the request it surfaced and a typed
// continuation: what the state that paused does with that one kind of answer. The continuation
// is written next to the state that pauses (the TLS 1.3 server's flight, the TLS 1.2 client's
// certificate check, …), so this file knows nothing of either side's internals, and there is no
// table of side × version × kind to keep in step with another.

/// A handshake waiting for one answer of type `Answer`: the decision it asked for and what it
/// does with the answer (on the connection's handshake context, when `resume(with:)` comes).
struct Awaiting<Answer> {
    let decision: PendingDecision
    let proceed: (Answer, inout HandshakeContext) throws(TLSError) -> ConnectionPhase

    /// The answer, if it is the one this wait asked for, as the step that applies it. A
    /// failure answers any decision: it ends the handshake with its alert. Any other answer is
    /// the caller's misuse, refused here, before anything moves.
    func accept(_ answer: DecisionAnswer, as value: (DecisionAnswer) -> Answer?) throws(TLSError) -> AcceptedAnswer {
        if case .failure(let error) = answer.kind {
            // Every failure answer sends an alert: one that would send none (a misuse code, a
            // received alert) would leave the peer waiting.
            let failure = error.alert != nil ? error : .crypto("the pending decision failed: \(error)")
            return AcceptedAnswer { (_) throws(TLSError) in throw failure }
        }
        guard let value = value(answer) else { throw .misuse("the answer does not match the pending decision \(decision)") }
        let proceed = self.proceed
        return AcceptedAnswer { (context) throws(TLSError) in try proceed(value, &context) }
    }
}

/// An answer checked against the pause it answers: running it moves the handshake on.
struct AcceptedAnswer {
    let run: (inout HandshakeContext) throws(TLSError) -> ConnectionPhase
}

/// What a client can wait for.
enum ClientPause {
    /// Its CertificateVerify (TLS 1.3, or post-handshake) or TLS 1.2 CertificateVerify.
    case signature(Awaiting<[UInt8]>)
    /// The verification of the server's chain.
    case serverVerification(Awaiting<VerifiedPeer>)
}

/// What a server can wait for.
enum ServerPause {
    /// The configuration for this ClientHello (the application's selector).
    case configuration(Awaiting<ServerConfiguration>)
    /// A TLS 1.2 session ID's cached session (nil: a miss).
    case session(Awaiting<SessionState?>)
    /// Its key share and the shared secret, from a group that does not answer in place.
    case keyExchange(Awaiting<KeyExchangeAnswer>)
    /// Its CertificateVerify (TLS 1.3) or ServerKeyExchange signature (TLS 1.2).
    case signature(Awaiting<[UInt8]>)
    /// The verification of the client's chain, in the handshake or after it.
    case clientVerification(Awaiting<VerifiedPeer>)
}

/// The server's share and the shared secret, answering a key-exchange pause.
struct KeyExchangeAnswer {
    let share: [UInt8]
    let secret: SecretBytes
}

/// Which side of the handshake pauses.
enum HandshakeSide { case client, server }

/// The one pause of the handshake: `TLSConnection` holds it as `.paused` and reads nothing until
/// `resume(with:)` answers.
enum PausedHandshake {
    case client(ClientPause)
    case server(ServerPause)

    var decision: PendingDecision {
        switch self {
        case .client(.signature(let a)), .server(.signature(let a)): return a.decision
        case .client(.serverVerification(let a)), .server(.clientVerification(let a)): return a.decision
        case .server(.configuration(let a)): return a.decision
        case .server(.session(let a)): return a.decision
        case .server(.keyExchange(let a)): return a.decision
        }
    }

    /// `answer` checked against this pause, before any state moves (see `Awaiting.accept`).
    func accept(_ answer: DecisionAnswer) throws(TLSError) -> AcceptedAnswer {
        switch self {
        case .client(.signature(let a)), .server(.signature(let a)): return try a.accept(answer, as: \.signatureAnswer)
        case .client(.serverVerification(let a)), .server(.clientVerification(let a)): return try a.accept(answer, as: \.peerAnswer)
        case .server(.configuration(let a)): return try a.accept(answer, as: \.configurationAnswer)
        case .server(.session(let a)): return try a.accept(answer, as: \.sessionAnswer)
        case .server(.keyExchange(let a)): return try a.accept(answer, as: \.keyExchangeAnswer)
        }
    }

    // The pauses, built where the state that waits lives.

    static func signature(
        _ request: SignatureRequest, side: HandshakeSide,
        then proceed: @escaping ([UInt8], inout HandshakeContext) throws(TLSError) -> ConnectionPhase
    ) -> PausedHandshake {
        let awaiting = Awaiting(decision: PendingDecision(kind: .sign(request)), proceed: proceed)
        return side == .client ? .client(.signature(awaiting)) : .server(.signature(awaiting))
    }

    /// A peer verification: the answer must be about the certificate the peer sent.
    static func verification(
        _ request: PeerVerificationRequest, side: HandshakeSide,
        then proceed: @escaping (VerifiedPeer, inout HandshakeContext) throws(TLSError) -> ConnectionPhase
    ) -> PausedHandshake {
        let awaiting = Awaiting<VerifiedPeer>(decision: PendingDecision(kind: .verifyPeer(request))) { (peer, context) throws(TLSError) in
            try checkAnswers(request, peer)
            return try proceed(peer, &context)
        }
        return side == .client ? .client(.serverVerification(awaiting)) : .server(.clientVerification(awaiting))
    }
}

extension DecisionAnswer {
    var signatureAnswer: [UInt8]? {
        if case .signature(let bytes) = kind { return bytes }
        return nil
    }
    var peerAnswer: VerifiedPeer? {
        if case .peerVerified(let peer) = kind { return peer }
        return nil
    }
    var configurationAnswer: ServerConfiguration? {
        if case .serverConfiguration(let configuration) = kind { return configuration }
        return nil
    }
    /// A session answer: `.some(nil)` is a miss, nil another kind of answer.
    var sessionAnswer: SessionState?? {
        if case .session(let state) = kind { return .some(state) }
        return nil
    }
    var keyExchangeAnswer: KeyExchangeAnswer? {
        if case .keyExchange(let share, let secret) = kind { return KeyExchangeAnswer(share: share, secret: secret) }
        return nil
    }
}

/// Verifies the peer in place when the verifier can answer at once; otherwise pauses. `side`
/// is the side that verifies.
func verifyPeerOrPause(
    _ request: PeerVerificationRequest, side: HandshakeSide,
    then next: @escaping (VerifiedPeer) throws(TLSError) -> ConnectionPhase
) throws(TLSError) -> ConnectionPhase {
    guard request.verifier.isSynchronous else {
        return .paused(.verification(request, side: side) { (peer, _) throws(TLSError) in try next(peer) })
    }
    return try next(try verifyPeerInPlace(request))
}

/// The peer verified by a verifier that answers at once, the answer checked against the
/// certificate the peer sent (`checkAnswers`), as every in-place verification must be.
func verifyPeerInPlace(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer {
    let peer = try request.verifier.verifyPeer(request)
    try checkAnswers(request, peer)
    return peer
}

/// A verification answer must be about the certificate the peer sent: a cached or mixed-up
/// answer for another certificate would let the handshake signature be checked against a key
/// the peer never presented. The leaf must be the one sent, and the key, when it states where it
/// came from, that leaf's.
func checkAnswers(_ request: PeerVerificationRequest, _ peer: VerifiedPeer) throws(TLSError) {
    guard let leaf = peer.identity.verifiedChain.first, let sent = request.chain.first, leaf == sent else {
        throw .rejected(.other("the verification answer is for another certificate than the peer's"))
    }
    if let stated = peer.publicKey.subjectPublicKeyInfo {
        let spki: ArraySlice<UInt8>
        do { spki = try CertificateFields.subjectPublicKeyInfo(sent) } catch { throw .rejected(.malformed, "the peer's certificate: \(error)") }
        guard stated.elementsEqual(spki) else {
            throw .rejected(.other("the verification answer's key is not the key of the peer's certificate"))
        }
    }
}
