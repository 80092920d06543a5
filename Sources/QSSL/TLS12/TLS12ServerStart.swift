import QSSLWire

// The TLS 1.2 server from ClientHello to ServerHelloDone: negotiation, session plan, first flight.

/// What a TLS 1.2 server does about sessions on a full handshake, decided with its ServerHello.
struct TLS12SessionPlan {
    /// The new session ID (empty when there is no session cache).
    let sessionID: [UInt8]
    /// Whether a NewSessionTicket follows the client's Finished (RFC 5077 §3.1).
    let issueTicket: Bool
}

/// A TLS 1.2 ClientHello, negotiated, before the server chose between a full and an
/// abbreviated handshake.
struct TLS12ServerStart {
    let hello: ReceivedClientHello
    let negotiation: TLS12ServerNegotiation
    let transcript: Transcript
    let config: ServerConfiguration

    /// A ticket first (stateless, PROTOCOL.md §4's recommended mode), then the session ID
    /// through the cache (which may pause), else a full handshake.
    func proceed(context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        if let ticket = hello.extensions.sessionTicket, !ticket.isEmpty, let sealer = config.ticketKeys,
            let (plaintext, byCurrentKey) = sealer.open(ticket)
        {
            let decoded = try? SessionState(decoding: plaintext)
            if let state = decoded, let (suite, proof) = try resumable(state) {
                return try resume(proof, suite: suite, renewTicket: !byCurrentKey, context: &context)
            }
        }
        if !hello.legacySessionID.isEmpty, let cache = config.sessionCache {
            guard cache.isSynchronous else {
                let request = SessionLookupRequest(sessionID: hello.legacySessionID, cache: cache)
                return .paused(
                    .server(
                        .session(
                            Awaiting(decision: PendingDecision(kind: .lookUpSession(request))) { (cached, context) throws(TLSError) in
                                try proceed(withCached: cached, context: &context)
                            })))
            }
            return try proceed(withCached: cache.lookUp(sessionID: hello.legacySessionID), context: &context)
        }
        return try full(context: &context)
    }

    /// After the session-ID lookup.
    func proceed(withCached state: SessionState?, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        if let state, let (suite, proof) = try resumable(state) {
            return try resume(proof, suite: suite, renewTicket: false, context: &context)
        }
        return try full(context: &context)
    }

    private func full(context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let plan = TLS12SessionPlan(
            sessionID: config.sessionCache != nil ? context.primitives.randomBytes(32) : [],
            issueTicket: hello.extensions.sessionTicket != nil && config.ticketKeys != nil)
        return try sendTLS12ServerFlight(hello: hello, negotiation: negotiation, plan: plan, transcript: transcript, config: config, context: &context)
    }

    /// The suite to resume `state` with, or nil for a full handshake (PROTOCOL.md §4: a session
    /// that does not fit is never an error), except the one case RFC 7627 §5.3 makes fatal.
    func resumable(_ state: SessionState) throws(TLSError) -> (TLS12CipherSuite, ResumptionAccepted)? {
        // The fit to this handshake (a suite configured and offered, hybrid under the PQ policy),
        // then the policy every resumption answers to.
        guard state.secret.count == 48,
            let suite = TLS12CipherSuite.named(state.cipherSuite), config.tls12CipherSuites.contains(suite),
            hello.cipherSuites.contains(state.cipherSuite), !config.requirePostQuantum || suite.isHybrid,
            let proof = ResumptionAccepted(admitting: state, under: .server(config, serverName: negotiation.names.serverName), version: .tls12)
        else { return nil }
        // RFC 7627 §5.3: a session with extended master secret is not resumed by a ClientHello
        // without it (abort); one without it is not resumed into a connection with it (full).
        if state.extendedMasterSecret && !negotiation.extendedMasterSecret {
            throw .incompatible(.extendedMasterSecretRequired, "the session used extended master secret; this ClientHello does not offer it")
        }
        guard state.extendedMasterSecret == negotiation.extendedMasterSecret else { return nil }
        return (suite, proof)
    }

    /// RFC 5246 §7.3 abbreviated handshake: ServerHello, [NewSessionTicket], ChangeCipherSpec,
    /// Finished; then the client's.
    private func resume(_ proof: ResumptionAccepted, suite: TLS12CipherSuite, renewTicket: Bool, context: inout HandshakeContext) throws(TLSError)
        -> ConnectionPhase
    {
        let state = proof.state
        let n = negotiation
        let random = serverRandom(config: config, context: &context)
        var ext = ExtensionList()
        if n.secureRenegotiation { ext.append(.renegotiationInfo, [0]) }
        if state.extendedMasterSecret { ext.append(.extendedMasterSecret, []) }
        if let alpn = n.names.alpn { ext.append(.alpn, try encoding { () throws(EncodeError) in try ExtensionBody.encodeALPN([alpn]) }) }
        if renewTicket { ext.append(.sessionTicket, []) }
        var transcript = self.transcript
        try context.send(
            ServerHello(random: random, legacySessionIDEcho: hello.legacySessionID, cipherSuite: suite.suite, extensions: ext),
            transcript: &transcript)
        // A ticket opened with an older key is replaced by one under the current key.
        if renewTicket, let sealer = config.ticketKeys {
            var renewed = state
            renewed.issuedAt = config.clock.nowMilliseconds()
            // RFC 5077 §3.3: an empty ticket when none can be made; the handshake goes on.
            let ticket = sealTicket(renewed, sealer) ?? []
            try context.send(
                TLS12NewSessionTicket(lifetimeHint: ticket.isEmpty ? 0 : config.sessionLifetimeSeconds, ticket: ticket),
                transcript: &transcript)
        }
        let prf = TLS12PRF(primitives: context.primitives, hash: suite.hash)
        let keys = TLS12KeyBlock(prf: prf, masterSecret: state.secret, clientRandom: hello.random, serverRandom: random, suite: suite)
        try context.sendChangeCipherSpec()
        try context.installTLS12WriteKeys(key: keys.serverKey, iv: keys.serverIV, suite: suite)
        let verifyData = prf.verifyData(masterSecret: state.secret, client: false, transcriptHash: context.primitives.hash(suite.hash, transcript.bytes))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)
        let summary = HandshakeSummary(
            version: .tls12, cipherSuite: suite.suite, group: state.group, peerSignatureScheme: nil, localSignatureScheme: nil,
            helloRetryRequest: false, resumed: true, peerCertificates: [], alpnProtocol: n.names.alpn, serverName: n.names.serverName)
        return .server12(
            .finishing(
                .expectChangeCipherSpec(
                    TLS12ServerFinishing(
                        keys: TLS12FinishedKeys(suite: suite, prf: prf, masterSecret: state.secret, keys: keys), transcript: transcript, summary: summary,
                        client: .resumption(proof), respondsWithFinished: false, session: nil))))
    }
}

/// A session ID waiting for an asynchronous cache.
public struct SessionLookupRequest: Sendable {
    public let sessionID: [UInt8]
    public let cache: any ServerSessionCache

    public func lookUp() async -> SessionState? { await cache.lookUpAsynchronously(sessionID: sessionID) }
    public func lookUp(completion: @escaping @Sendable (SessionState?) -> Void) { cache.lookUp(sessionID: sessionID, completion: completion) }
}

/// RFC 8446 §4.1.3: a server able to do TLS 1.3 marks a TLS 1.2 ServerHello.
func serverRandom(config: ServerConfiguration, context: inout HandshakeContext) -> [UInt8] {
    let random = context.primitives.randomBytes(32)
    return config.versions.contains(.tls13) ? Array(random.prefix(24)) + ServerHello.downgradeTLS12 : random
}

/// What the server chose for a TLS 1.2 handshake.
struct TLS12ServerNegotiation {
    let suite: TLS12CipherSuite
    let group: NamedGroup
    let certificate: CertifiedKey
    let scheme: SignatureScheme
    let names: NegotiatedNames
    let extendedMasterSecret: Bool
    let secureRenegotiation: Bool
    let pointFormats: Bool
}

/// RFC 5246 §7.4.1.2, RFC 8422 §5.1, PROTOCOL.md §3: suite, group and certificate for TLS 1.2.
func negotiateTLS12(_ hello: ReceivedClientHello, config: ServerConfiguration) throws(TLSError) -> TLS12ServerNegotiation {
    let ext = hello.extensions
    guard hello.legacyCompressionMethods.contains(0) else { throw .misbehaved(.offeredNullCompressionMissing) }
    if let reneg = ext.renegotiationInfo, reneg != [0] {
        throw .incompatible(.secureRenegotiationFailed, "non-empty renegotiation_info on an initial handshake")
    }
    let secureRenegotiation = ext.renegotiationInfo != nil || hello.cipherSuites.contains(.emptyRenegotiationInfoSCSV)
    let ems = ext.extendedMasterSecret
    // RFC 8422 §4: without supported_groups the server may choose; we take the classical ones.
    let clientGroups = ext.supportedGroups ?? [.x25519, .secp256r1, .secp384r1]
    let schemes = ext.signatureAlgorithms ?? []
    let names = try negotiateNames(ext, config: config)

    var refusedForPostQuantum = false
    var refusedForEMS = false
    for suite in config.tls12CipherSuites where hello.cipherSuites.contains(suite.suite) {
        if config.requirePostQuantum && !suite.isHybrid {
            refusedForPostQuantum = true
            continue
        }
        if suite.isHybrid && !ems {
            refusedForEMS = true
            continue
        }
        // PROTOCOL.md §1, §3: hybrid groups only with the hybrid suites, classical ones only with standard suites.
        guard
            let group = config.groups.first(where: {
                clientGroups.contains($0) && $0.isPostQuantum == suite.isHybrid && $0 != .mlkem1024 && config.provider.keyExchange(for: $0) != nil
            })
        else { continue }
        for candidate in config.certificates {
            if let scheme = candidate.key.supportedSchemes.first(where: {
                schemes.contains($0) && suite.permits($0) && (suite.isHybrid || certificateCurveAllowed($0, clientGroups))
            }) {
                return TLS12ServerNegotiation(
                    suite: suite, group: group, certificate: candidate, scheme: scheme, names: names,
                    extendedMasterSecret: ems, secureRenegotiation: secureRenegotiation,
                    pointFormats: ext.ecPointFormats)
            }
        }
    }
    if refusedForPostQuantum { throw .incompatible(.postQuantumKeyExchangeRequired, "no hybrid TLS 1.2 suite in common") }
    if refusedForEMS { throw .incompatible(.extendedMasterSecretRequired, "hybrid suites need extended master secret") }
    throw .incompatible(.noCommonCipherSuite, "no TLS 1.2 suite, group and certificate in common")
}

/// ServerHello, Certificate, ServerKeyExchange, ServerHelloDone (RFC 5246 §7.3).
func sendTLS12ServerFlight(
    hello: ReceivedClientHello, negotiation n: TLS12ServerNegotiation, plan: TLS12SessionPlan, transcript: Transcript,
    config: ServerConfiguration, context: inout HandshakeContext
) throws(TLSError) -> ConnectionPhase {
    let random = serverRandom(config: config, context: &context)
    var ext = ExtensionList()
    if n.secureRenegotiation { ext.append(.renegotiationInfo, [0]) }
    if n.extendedMasterSecret { ext.append(.extendedMasterSecret, []) }
    if n.pointFormats { ext.append(.ecPointFormats, [1, 0]) }
    if n.names.serverName != nil { ext.append(.serverName, []) }
    if let alpn = n.names.alpn { ext.append(.alpn, try encoding { () throws(EncodeError) in try ExtensionBody.encodeALPN([alpn]) }) }
    if plan.issueTicket { ext.append(.sessionTicket, []) }
    let staple = stapleRequested(hello.extensions, n.certificate)
    if staple != nil { ext.append(.statusRequest, []) }  // RFC 6066 §8: a CertificateStatus follows
    var transcript = transcript
    try context.send(
        ServerHello(random: random, legacySessionIDEcho: plan.sessionID, cipherSuite: n.suite.suite, extensions: ext),
        transcript: &transcript)
    try context.send(TLS12Certificate(certificates: n.certificate.chain), transcript: &transcript)
    if let staple { try context.send(CertificateStatus(ocspResponse: staple), transcript: &transcript) }
    guard let kx = config.provider.keyExchange(for: n.group) else { throw .crypto("group \(n.group) vanished") }
    // PROTOCOL.md §3: the server owns the (hybrid) key pair and publishes the client-share layout.
    let (publicValue, pending) = try kx.generateClientShare()
    let params = try encoding { () throws(EncodeError) in
        try ServerKeyExchange(group: n.group, publicValue: publicValue, scheme: n.scheme, signature: []).params()
    }
    let paused = TLS12ServerAwaitingSignature(
        negotiation: n, plan: plan, config: config, clientRandom: hello.random, serverRandom: random, publicValue: publicValue,
        pending: pending, transcript: transcript,
        request: SignatureRequest(message: hello.random + random + params, scheme: n.scheme, key: n.certificate.key))
    guard n.certificate.key.isSynchronous else {
        return .paused(
            .signature(paused.request, side: .server) { (signature, context) throws(TLSError) in
                .server12(try paused.complete(signature: signature, context: &context))
            })
    }
    return .server12(try paused.complete(signature: try n.certificate.key.sign(paused.request.message, scheme: n.scheme), context: &context))
}
