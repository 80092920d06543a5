import QSSLWire

// TLS 1.3 resumption with tickets (RFC 8446 §2.2, §4.2.11, §4.6.1; PROTOCOL.md §4): the server
// side accepts a ticket PSK after checking its binder, the client side offers one; both run
// psk_dhe_ke (a fresh, by default hybrid, key exchange on top of the PSK) unless psk_ke was
// explicitly allowed on both sides.

/// The proof that a resumption was accepted; traffic reached through one carries it instead of
/// a certificate signature. There is no way to make one from a bare session state: each
/// initialiser takes the evidence its side has (the binder it checks, or the session it
/// offered), and the peer's Finished, keyed by the session's secret, completes the proof.
struct ResumptionAccepted {
    let state: SessionState
    /// Who the peer proved to be on the full handshake that created the session.
    var identity: PeerIdentity? { state.peerIdentity }

    /// A TLS 1.3 server: the client's binder for `state`'s PSK matches ours (RFC 8446
    /// §4.2.11.2), compared in constant time.
    init(binder received: [UInt8], expected: [UInt8], of state: SessionState, identity index: Int) throws(TLSError) {
        guard received.count == expected.count, constantTimeEquals(expected, received) else {
            throw .misbehaved(.sentWrongPSKBinder, "binder of PSK identity \(index)")
        }
        self.state = state
    }

    /// A TLS 1.3 client: the server selected the PSK we offered.
    init(selected offer: PSKOffer) { state = offer.session.state }

    /// A TLS 1.2 client: the server echoed the ID of the session we offered (by ID or ticket).
    init(echoed offer: TLSSession) { state = offer.state }

    /// A TLS 1.2 server: the session the client offered (its ticket, or its ID in our cache)
    /// is one the resumption policy admits here; nil when it is not.
    init?(admitting state: SessionState, under policy: ResumptionPolicy, version: ProtocolVersion) {
        guard policy.admits(state, version: version) else { return nil }
        self.state = state
    }
}

/// The PSK a server accepted from a ClientHello.
struct AcceptedPSK {
    let proof: ResumptionAccepted
    let index: UInt16
    let mode: PSKKeyExchangeMode
    let early: TLS13KeySchedule.Early
}

/// RFC 8446 §4.2.11: at most this many identities are tried (each costs a ticket decryption).
let maxPSKIdentitiesTried = 8

/// The binder over a partial ClientHello: everything up to the binders list (§4.2.11.2), after
/// what the transcript held before it (message_hash and HelloRetryRequest on a retry).
func pskBinder(early: TLS13KeySchedule.Early, transcriptBefore: Transcript, partialHello: ArraySlice<UInt8>) -> [UInt8] {
    var transcript = transcriptBefore
    transcript.append(raw: Array(partialHello))
    return TLS13KeySchedule.finishedVerifyData(hkdf: early.hkdf, baseSecret: early.binderKey(), transcriptHash: transcript.hash(early.hkdf))
}

/// Server: the first offered ticket that opens, is current, fits the negotiated suite, name and
/// policy, with its binder verified. A ticket that fails any check is skipped (full handshake,
/// RFC 8446 §4.2.11: "the server SHOULD … ignore"); a bad binder on the chosen one is fatal.
func acceptPSK(
    hello: ReceivedClientHello, suite: TLS13CipherSuite, serverName: String?, transcriptBefore: Transcript,
    config: ServerConfiguration, context: HandshakeContext
) throws(TLSError) -> AcceptedPSK? {
    let ext = hello.extensions
    // §4.2.11: that pre_shared_key is the last extension was checked when the hello was decoded.
    guard let offered = ext.preSharedKey else { return nil }
    // §4.2.9: a client offering a PSK MUST send psk_key_exchange_modes.
    guard let modes = ext.pskKeyExchangeModes else { throw .misbehaved(.sentPSKWithoutKeyExchangeModes) }

    // psk_dhe_ke unless the operator chose psk_ke (speed over forward secrecy) and the client
    // offers it; never psk_ke under the PQ policy.
    let mode: PSKKeyExchangeMode
    if modes.contains(.pskKE) && config.acceptPSKWithoutKeyExchange && !config.requirePostQuantum {
        mode = .pskKE
    } else if modes.contains(.pskDHEKE) {
        mode = .pskDHEKE
    } else {
        return nil
    }
    guard let sealer = config.ticketKeys else { return nil }
    let policy = ResumptionPolicy.server(config, serverName: serverName)
    let now = policy.now
    for (index, identity) in offered.identities.prefix(maxPSKIdentitiesTried).enumerated() {
        guard let (plaintext, _) = sealer.open(identity.identity) else { continue }
        let decoded = try? SessionState(decoding: plaintext)
        // The fit to this handshake: a suite of the same hash, a secret of its length.
        guard let state = decoded,
            let sessionSuite = TLS13CipherSuite.named(state.cipherSuite), sessionSuite.hash == suite.hash,
            state.secret.count == suite.hash.digestLength
        else { continue }
        // §4.2.11.1 and §8.3: the client's view of the ticket age against ours.
        let clientAge = UInt64(identity.obfuscatedTicketAge &- state.ageAdd)
        let serverAge = now >= state.issuedAt ? now - state.issuedAt : 0
        let skew = clientAge > serverAge ? clientAge - serverAge : serverAge - clientAge
        guard skew <= config.ticketAgeToleranceMilliseconds, clientAge <= UInt64(state.lifetimeSeconds) * 1000 else { continue }
        guard policy.admits(state, version: .tls13) else { continue }

        let hkdf = HKDF(primitives: context.primitives, hash: suite.hash)
        let early = TLS13KeySchedule.Early(hkdf: hkdf, psk: state.secret)
        let bindersLength = try encoding { () throws(EncodeError) in try offered.encodedBinders() }.count
        let encoded = hello.message.encoded
        let expected = pskBinder(early: early, transcriptBefore: transcriptBefore, partialHello: encoded[..<(encoded.count - bindersLength)])
        let proof = try ResumptionAccepted(binder: offered.binders[index], expected: expected, of: state, identity: index)
        return AcceptedPSK(proof: proof, index: UInt16(index), mode: mode, early: early)
    }
    return nil
}

/// What a TLS 1.3 connection's tickets stand for, the same on both sides (RFC 8446 §4.6.1): the
/// session state of one ticket, from the resumption master secret and its nonce.
struct TLS13TicketSession {
    let suite: TLS13CipherSuite
    let hkdf: HKDF
    let group: NamedGroup
    let serverName: String?
    let alpn: String?
    var peerIdentity: PeerIdentity?
    /// `ResumptionPolicy.binding` of the configuration that authenticated the peer.
    let trustBinding: [UInt8]

    func state(
        resumptionMasterSecret: SecretBytes, nonce: [UInt8], createdAt: UInt64, issuedAt: UInt64, lifetimeSeconds: UInt32,
        ageAdd: UInt32
    ) -> SessionState {
        SessionState(
            version: .tls13, cipherSuite: suite.suite, group: group, extendedMasterSecret: true, serverName: serverName,
            alpnProtocol: alpn, secret: TLS13KeySchedule.ticketPSK(hkdf: hkdf, resumptionMasterSecret: resumptionMasterSecret, nonce: nonce),
            createdAt: createdAt, issuedAt: issuedAt, lifetimeSeconds: lifetimeSeconds, ageAdd: ageAdd, peerIdentity: peerIdentity,
            trustBinding: trustBinding)
    }
}

/// Server, after the client's Finished: NewSessionTicket messages under the application keys.
struct TicketIssuer {
    var session: TLS13TicketSession
    /// The original full handshake's time when this handshake was a resumption.
    let createdAt: UInt64?
    /// Whether the client listed a PSK mode we accept (RFC 8446 §4.2.9): a ticket it could never
    /// use is not sent.
    let clientAcceptsTickets: Bool

    func issue(resumptionMasterSecret: SecretBytes, config: ServerConfiguration, context: inout HandshakeContext) throws(TLSError) {
        guard clientAcceptsTickets, let sealer = config.ticketKeys, config.tls13TicketCount > 0 else { return }
        let now = config.clock.nowMilliseconds()
        var scratch = Transcript()  // post-handshake messages are not part of the transcript
        // After a resumption, one ticket replaces the one the client used (as OpenSSL does);
        // `tls13TicketCount` after a full handshake, for a client's parallel connections.
        let count = createdAt == nil ? config.tls13TicketCount : 1
        for i in 0..<count {
            let nonce = [UInt8(truncatingIfNeeded: i)]
            let ageAdd = context.primitives.randomBytes(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let state = session.state(
                resumptionMasterSecret: resumptionMasterSecret, nonce: nonce, createdAt: createdAt ?? now, issuedAt: now,
                lifetimeSeconds: config.sessionLifetimeSeconds, ageAdd: ageAdd)
            // A ticket is an optimisation: one that cannot be made (no key, a state too large)
            // is not sent, and the connection goes on.
            guard let ticket = sealTicket(state, sealer) else { return }
            // A session never outlives the full handshake that created it.
            let elapsed = now - min(now, state.createdAt)
            let total = UInt64(config.sessionLifetimeSeconds) * 1000
            let remaining = elapsed < total ? total - elapsed : 0
            let lifetime = UInt32(min(UInt64(config.sessionLifetimeSeconds), remaining / 1000))
            guard lifetime > 0 else { return }
            try context.send(NewSessionTicket(lifetime: lifetime, ageAdd: ageAdd, nonce: nonce, ticket: ticket), transcript: &scratch)
        }
        try context.flush()
    }
}

/// Client: the PSK offer for a TLS 1.3 session, if the session may be offered under `config`.
struct PSKOffer {
    let session: TLSSession
    let suite: TLS13CipherSuite
    let modes: [PSKKeyExchangeMode]

    /// The modes a client under `config` lists: psk_dhe_ke, and psk_ke only when allowed.
    static func modes(_ config: ClientConfiguration) -> [PSKKeyExchangeMode] {
        config.offerPSKWithoutKeyExchange && !config.requirePostQuantum ? [.pskDHEKE, .pskKE] : [.pskDHEKE]
    }

    init?(session: TLSSession, config: ClientConfiguration, serverName: String?) {
        let state = session.state
        guard let ticket = session.ticket, !ticket.isEmpty,
            let sessionSuite = TLS13CipherSuite.named(state.cipherSuite),
            let suite = config.cipherSuites.first(where: { $0.hash == sessionSuite.hash }),
            ResumptionPolicy.client(config, serverName: serverName).admits(state, version: .tls13)
        else { return nil }
        self.session = session
        self.suite = suite
        modes = Self.modes(config)
    }

    var hash: HashAlgorithm { suite.hash }

    func obfuscatedAge(now: UInt64) -> UInt32 {
        let age = now >= session.receivedAt ? now - session.receivedAt : 0
        return UInt32(truncatingIfNeeded: age) &+ session.state.ageAdd
    }

    /// Appends psk_key_exchange_modes and pre_shared_key (last) to `hello`, with the binder
    /// computed over the partial ClientHello after `transcriptBefore`.
    func attach(to hello: inout ClientHello, transcriptBefore: Transcript, now: UInt64, primitives: any CryptoPrimitives) throws(TLSError) {
        var items = hello.extensions.items.filter { $0.type != .preSharedKey && $0.type != .pskKeyExchangeModes }
        items.append(Extension(type: .pskKeyExchangeModes, data: try encoding { () throws(EncodeError) in try ExtensionBody.encodePSKKeyExchangeModes(modes) }))
        let hkdf = HKDF(primitives: primitives, hash: hash)
        var offered = OfferedPSKs(
            identities: [PSKIdentity(identity: session.ticket ?? [], obfuscatedTicketAge: obfuscatedAge(now: now))],
            binders: [[UInt8](repeating: 0, count: hash.digestLength)])
        hello.extensions = ExtensionList(items + [Extension(type: .preSharedKey, data: try encoding { () throws(EncodeError) in try offered.encoded() })])
        let early = TLS13KeySchedule.Early(hkdf: hkdf, psk: session.state.secret)
        let encoded = try encoding { () throws(EncodeError) in try HandshakeMessage(hello) }.encoded
        let bindersLength = try encoding { () throws(EncodeError) in try offered.encodedBinders() }.count
        offered.binders = [pskBinder(early: early, transcriptBefore: transcriptBefore, partialHello: encoded[..<(encoded.count - bindersLength)])]
        hello.extensions = ExtensionList(items + [Extension(type: .preSharedKey, data: try encoding { () throws(EncodeError) in try offered.encoded() })])
    }
}

/// Tickets longer than this are not kept by a client (ours are 44 bytes plus the sealed state):
/// offered back, a longer one could push the ClientHello past the 16 KiB servers accept (Q-SSL's
/// and BoringSSL's bound) once PQ key shares are added.
let maxStoredTicketLength = 10 * 1024

/// Client, after the handshake: turns each NewSessionTicket into a stored session.
struct ClientTicketReceiver {
    let session: TLS13TicketSession
    let resumptionMasterSecret: SecretBytes
    let createdAt: UInt64
    let store: any ClientSessionStore
    let key: String
    let clock: any WallClock

    /// The session the ticket stands for, saved in the store; nil for a ticket that must not be
    /// used (lifetime 0, RFC 8446 §4.6.1).
    func receive(_ ticket: NewSessionTicket) -> TLSSession? {
        // A server may send tickets up to 64 KiB; the store keeps only reasonable ones so that a
        // hostile server cannot make every stored session cost that much.
        guard ticket.lifetime > 0, ticket.ticket.count <= maxStoredTicketLength else { return nil }
        let now = clock.nowMilliseconds()
        let state = session.state(
            resumptionMasterSecret: resumptionMasterSecret, nonce: ticket.nonce, createdAt: createdAt, issuedAt: now,
            lifetimeSeconds: min(ticket.lifetime, 604_800), ageAdd: ticket.ageAdd)
        let received = TLSSession(state: state, ticket: ticket.ticket, sessionID: [], receivedAt: now)
        store.save(received, for: key)
        return received
    }
}

/// Whether a TLS 1.2 session may be offered under `config` to `serverName`.
func tls12SessionOfferable(_ session: TLSSession, config: ClientConfiguration, serverName: String?) -> Bool {
    let state = session.state
    return (!session.sessionID.isEmpty || !(session.ticket ?? []).isEmpty)
        && config.tls12CipherSuites.contains(where: { $0.suite == state.cipherSuite })
        && ResumptionPolicy.client(config, serverName: serverName).admits(state, version: .tls12)
}

/// Tickets above this size are not issued: the session state carries a compact identity, so only
/// a pathological certificate gets near it.
let maxIssuedTicketLength = 8 * 1024

/// Seals a session into a ticket, or nil when it cannot or should not be (no key, too large).
/// The plaintext, which holds the session's secret, is wiped.
func sealTicket(_ state: SessionState, _ sealer: any TicketSealer) -> [UInt8]? {
    var compact = state
    compact.peerIdentity = state.peerIdentity.map(compactIdentity)
    // The encoded array goes straight into the secret (no other reference to it remains, so
    // the wipe on release reaches the buffer that held the secret, not a copy of it).
    guard let plaintext = try? SecretBytes(compact.encoded()) else { return nil }
    guard plaintext.count + 64 <= maxIssuedTicketLength, let ticket = try? sealer.seal(plaintext) else { return nil }
    return ticket
}

/// What a session remembers of the peer: who it is, with the leaf of its verified chain only (the
/// intermediates and anchor were checked on the full handshake and would make every ticket big).
func compactIdentity(_ identity: PeerIdentity) -> PeerIdentity {
    var compact = identity
    compact.verifiedChain = Array(identity.verifiedChain.prefix(1))
    if compact.subjectAlternativeNames.count > 64 { compact.subjectAlternativeNames = Array(compact.subjectAlternativeNames.prefix(64)) }
    return compact
}
