import QSSLWire

// The TLS 1.3 server handshake up to its flight: the states and the ClientHello (negotiated in
// ServerNegotiation.swift).

/// Server handshake: one case per message we are waiting for.
enum ServerState {
    case expectClientHello(ExpectClientHello)
    case expectClientHelloAfterRetry(ExpectClientHelloAfterRetry)
    /// After a CertificateRequest (RFC 8446 §4.4.2): the client's Certificate, possibly empty.
    case expectCertificate(ExpectClientCertificate)
    case expectCertificateVerify(ExpectClientCertificateVerify)
    case expectFinished(ExpectClientFinished)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectClientHello(let s): return try s.handle(message, context: &context)
        case .expectClientHelloAfterRetry(let s): return try s.handle(message, context: &context)
        case .expectCertificate(let s): return try s.handle(message)
        case .expectCertificateVerify(let s): return .server(.expectFinished(try s.handle(message)))
        case .expectFinished(let s): return .traffic(try s.handle(message, context: &context))
        }
    }
}

/// The first ClientHello: decoded once, the configuration chosen (if a selector is set), then
/// negotiated once (`negotiateClientHello`).
struct ExpectClientHello {
    let config: ServerConfiguration

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let hello = try ReceivedClientHello(message, context: &context)
        guard let selector = config.configurationSelector else { return try negotiateClientHello(hello, config: config, context: &context) }
        // The application chooses the configuration for this ClientHello (SNI): in place when
        // the selector can answer at once, otherwise through the pause.
        let selecting = SelectingServerConfiguration(base: config, hello: hello, summary: ClientHelloSummary(hello), selector: selector)
        guard selector.isSynchronous else {
            return .paused(
                .server(
                    .configuration(
                        Awaiting(decision: PendingDecision(kind: .selectServerConfiguration(selecting.summary, selector))) {
                            (configuration, context) throws(TLSError) in try selecting.proceed(with: configuration, context: &context)
                        })))
        }
        return try selecting.proceed(with: try selector.select(for: selecting.summary), context: &context)
    }
}

/// A ClientHello waiting for the application to choose the server configuration.
struct SelectingServerConfiguration {
    let base: ServerConfiguration
    let hello: ReceivedClientHello
    let summary: ClientHelloSummary
    let selector: any ServerConfigurationSelector

    /// The chosen configuration applies within the base configuration's policy: the base is a
    /// floor that no name can lower (post-quantum requirement, versions).
    func proceed(with configuration: ServerConfiguration, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        var chosen = configuration
        // Chosen once per connection. Each field is set only when it changes: a change copies
        // the configuration's fields and drops the validation kept with them.
        if chosen.configurationSelector != nil { chosen.configurationSelector = nil }
        let policy = try chosen.policy.within(base.policy, serverName: summary.serverName)
        if policy != chosen.policy { chosen.policy = policy }
        do { try chosen.validate() } catch {
            throw .crypto("the selected server configuration is unusable within the base policy: \(error)")
        }
        // Nothing has been derived yet: the chosen provider's primitives serve the whole handshake.
        context.primitives = chosen.provider.primitives
        return try negotiateClientHello(hello, config: chosen, context: &context)
    }
}

/// A first ClientHello negotiated for TLS 1.3, before the server answers it with a
/// HelloRetryRequest or its flight.
struct TLS13ServerStart {
    let hello: ReceivedClientHello
    let negotiation: ServerNegotiation
    let transcript: Transcript
    let config: ServerConfiguration

    func proceed(context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        var transcript = self.transcript
        let earlyData = hello.extensions.earlyData
        // A ticket is looked at now when the client's share lets us answer at once (or psk_ke
        // needs none); otherwise after the HelloRetryRequest, with the binder over both hellos.
        var psk: AcceptedPSK?
        if negotiation.clientShare != nil || config.acceptPSKWithoutKeyExchange {
            psk = try acceptPSK(
                hello: hello, suite: negotiation.suite, serverName: negotiation.serverName,
                transcriptBefore: Transcript(), config: config, context: context)
        }
        guard negotiation.clientShare != nil || psk?.mode == .pskKE else {
            // RFC 8446 §4.1.4: ask for a share of the group we want, with a cookie to be echoed.
            let hkdf = HKDF(primitives: context.primitives, hash: negotiation.suite.hash)
            transcript.replaceWithMessageHash(hkdf)
            let cookie = context.primitives.randomBytes(32)
            var ext = ExtensionList()
            ext.append(.supportedVersions, bigEndianBytes(ProtocolVersion.tls13.rawValue))
            ext.append(.keyShare, bigEndianBytes(negotiation.group.rawValue))
            ext.append(.cookie, try encoding { () throws(EncodeError) in try ExtensionBody.encodeCookie(cookie) })
            let hrr = ServerHello(
                random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: hello.legacySessionID,
                cipherSuite: negotiation.suite.suite, extensions: ext)
            try context.send(hrr, transcript: &transcript)
            if !hello.legacySessionID.isEmpty { try context.sendChangeCipherSpec() }
            // RFC 8446 §4.2.10: 0-RTT records sent after the first ClientHello are skipped.
            if earlyData { context.records.earlyDataSkipBudget = config.maxSkippedEarlyData }
            return .server(
                .expectClientHelloAfterRetry(
                    ExpectClientHelloAfterRetry(
                        config: config, firstHello: hello.hello, negotiation: negotiation, cookie: cookie, transcript: transcript)))
        }
        return try sendServerFlight(
            hello: hello, negotiation: negotiation, clientShare: negotiation.clientShare, psk: psk, earlyData: earlyData,
            transcript: transcript, retried: false, config: config, context: &context)
    }
}

/// After a HelloRetryRequest: the second ClientHello must be the first with only the
/// permitted changes (RFC 8446 §4.1.2).
struct ExpectClientHelloAfterRetry {
    let config: ServerConfiguration
    let firstHello: ClientHello
    let negotiation: ServerNegotiation
    let cookie: [UInt8]
    var transcript: Transcript

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let hello = try ReceivedClientHello(message, context: &context)
        guard hello.random == firstHello.random, hello.legacySessionID == firstHello.legacySessionID,
            hello.cipherSuites == firstHello.cipherSuites,
            hello.legacyCompressionMethods == firstHello.legacyCompressionMethods,
            hello.hello.extensions[.supportedVersions] == firstHello.extensions[.supportedVersions],
            hello.hello.extensions[.supportedGroups] == firstHello.extensions[.supportedGroups]
        else { throw .misbehaved(.changedClientHelloAfterHelloRetryRequest) }
        guard hello.extensions.cookie == cookie else { throw .misbehaved(.sentWrongCookie) }
        guard let shares = hello.extensions.keyShares else { throw .misbehaved(.sentMissingKeyShare) }
        guard shares.count == 1, shares[0].group == negotiation.group else {
            throw .misbehaved(.sentWrongKeyShareAfterHelloRetryRequest)
        }
        // RFC 8446 §4.1.2: the second ClientHello drops early_data.
        guard !hello.extensions.earlyData else { throw .misbehaved(.sentEarlyDataAfterHelloRetryRequest) }
        context.records.earlyDataSkipBudget = nil
        let psk = try acceptPSK(
            hello: hello, suite: negotiation.suite, serverName: negotiation.serverName,
            transcriptBefore: self.transcript, config: config, context: context)
        var transcript = self.transcript
        transcript.append(message)
        return try sendServerFlight(
            hello: hello, negotiation: negotiation, clientShare: shares[0].keyExchange, psk: psk, earlyData: false,
            transcript: transcript, retried: true, config: config, context: &context)
    }
}
