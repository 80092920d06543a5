import QSSLWire

// The TLS 1.3 server handshake up to its flight: the states, the ClientHello, and negotiation.

/// Server handshake: one case per message we are waiting for.
enum ServerState {
    case expectClientHello(ExpectClientHello)
    case expectClientHelloAfterRetry(ExpectClientHelloAfterRetry)
    /// After a CertificateRequest (RFC 8446 §4.4.2): the client's Certificate, possibly empty.
    case expectCertificate(ServerHandshakeKeys)
    case expectCertificateVerify(ServerHandshakeKeys, VerifiedPeer)
    case expectFinished(ServerHandshakeKeys, ClientAuthenticated)

    /// Where the server waits once its Finished is out.
    static func afterServerFinished(_ keys: ServerHandshakeKeys) throws(TLSError) -> ServerState {
        if keys.requestedClientCertificate { return .expectCertificate(keys) }
        if let resumed = keys.resumption { return .expectFinished(keys, .resumption(resumed)) }
        // Not asked for a certificate: only a policy that does not require one gets here.
        return .expectFinished(keys, .anonymous(try AnonymousClientPermitted(
            policy: keys.config.clientAuthentication, refusal: .crypto("a certificate is required but none was requested"))))
    }

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectClientHello(let s): return try s.handle(message, context: &context)
        case .expectClientHelloAfterRetry(let s): return try s.handle(message, context: &context)
        case .expectCertificate(var keys): return try keys.processClientCertificate(message)
        case .expectCertificateVerify(var keys, let peer):
            let verified = try keys.processClientCertificateVerify(message, peer: peer)
            return .server(.expectFinished(keys, .certificate(verified)))
        case .expectFinished(let keys, let peer): return .traffic(try keys.processFinished(message, peer: peer, context: &context))
        }
    }
}

/// What the server decided from a ClientHello.
struct ServerNegotiation {
    let suite: TLS13CipherSuite
    let group: NamedGroup
    /// The client's share for `group`, or nil if a HelloRetryRequest must ask for one.
    let clientShare: [UInt8]?
    let certificate: CertifiedKey
    let scheme: SignatureScheme
    let alpn: String?
    let serverName: String?
    /// RFC 8446 §4.2.6: the client may be asked for a certificate after the handshake.
    var clientOffersPostHandshakeAuth = false
    /// RFC 8446 §4.2.9: the client listed a PSK key exchange mode we would accept, so a ticket
    /// can be of use to it. Tickets go only to such clients (as Go's and BoringSSL's servers do).
    var clientAcceptsTickets = false
}

struct ExpectClientHello {
    let config: ServerConfiguration

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let hello = try message.require(ClientHello.self)
        guard let selector = config.configurationSelector else { return try proceed(hello, message, context: &context) }
        // The application chooses the configuration for this ClientHello (SNI): in place when
        // the selector can answer at once, otherwise through the pause.
        let selecting = SelectingServerConfiguration(base: config, hello: hello, message: message, summary: try ClientHelloSummary(hello),
                                                     selector: selector)
        guard selector.isSynchronous else {
            return .paused(.server(.configuration(Awaiting(decision: PendingDecision(kind: .selectServerConfiguration(selecting.summary, selector))) {
                (configuration, context) throws(TLSError) in try selecting.proceed(with: configuration, context: &context)
            })))
        }
        return try selecting.proceed(with: try selector.select(for: selecting.summary), context: &context)
    }

    func proceed(_ hello: ClientHello, _ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        var transcript = Transcript()
        transcript.append(message)
        if try negotiateVersion(hello, config: config) == .tls12 {
            return try TLS12ServerStart(hello: hello, negotiation: try negotiateTLS12(hello, config: config), transcript: transcript,
                                        config: config).proceed(context: &context)
        }
        let negotiation = try negotiate(hello, config: config)
        let earlyData = hello.extensions.contains(.earlyData)
        // A ticket is looked at now when the client's share lets us answer at once (or psk_ke
        // needs none); otherwise after the HelloRetryRequest, with the binder over both hellos.
        var psk: AcceptedPSK?
        if negotiation.clientShare != nil || config.acceptPSKWithoutKeyExchange {
            psk = try acceptPSK(hello: hello, message: message, suite: negotiation.suite, serverName: negotiation.serverName,
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
            let hrr = ServerHello(random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: hello.legacySessionID,
                                  cipherSuite: negotiation.suite.suite, extensions: ext)
            try context.send(hrr, transcript: &transcript)
            if !hello.legacySessionID.isEmpty { try context.sendChangeCipherSpec() }
            // RFC 8446 §4.2.10: 0-RTT records sent after the first ClientHello are skipped.
            if earlyData { context.records.earlyDataSkipBudget = config.maxSkippedEarlyData }
            return .server(.expectClientHelloAfterRetry(ExpectClientHelloAfterRetry(
                config: config, firstHello: hello, negotiation: negotiation, cookie: cookie, transcript: transcript)))
        }
        return try sendServerFlight(
            hello: hello, negotiation: negotiation, clientShare: negotiation.clientShare, psk: psk, earlyData: earlyData,
            transcript: transcript, retried: false, config: config, context: &context)
    }
}

/// A ClientHello waiting for the application to choose the server configuration.
struct SelectingServerConfiguration {
    let base: ServerConfiguration
    let hello: ClientHello
    let message: HandshakeMessage
    let summary: ClientHelloSummary
    let selector: any ServerConfigurationSelector

    /// The chosen configuration applies within the base configuration's policy: the base is a
    /// floor that no name can lower (post-quantum requirement, versions).
    func proceed(with configuration: ServerConfiguration, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        var chosen = configuration
        chosen.configurationSelector = nil   // chosen once per connection
        chosen.requirePostQuantum = chosen.requirePostQuantum || base.requirePostQuantum
        chosen.versions = chosen.versions.filter(base.versions.contains)
        guard !chosen.versions.isEmpty else {
            throw .incompatible(.noCommonVersion, "the configuration for \(summary.serverName ?? "this name") has no version the policy allows")
        }
        if chosen.requirePostQuantum && !chosen.groups.contains(where: \.isPostQuantum) {
            throw .incompatible(.postQuantumKeyExchangeRequired, "the configuration for \(summary.serverName ?? "this name") has no ML-KEM group")
        }
        do { try chosen.validate() } catch {
            throw .crypto("the selected server configuration is unusable within the base policy: \(error)")
        }
        // Nothing has been derived yet: the chosen provider's primitives serve the whole handshake.
        context.primitives = chosen.provider.primitives
        return try ExpectClientHello(config: chosen).proceed(hello, message, context: &context)
    }
}

extension ClientHelloSummary {
    /// What a configuration selector may look at. Malformed extensions are the client's fault.
    init(_ hello: ClientHello) throws(TLSError) {
        let ext = hello.extensions
        serverName = try ext[.serverName].flatMap { (d) throws(TLSError) in try decodeExtension { () throws(DecodeError) in try ExtensionBody.serverName(d) } }
        alpnProtocols = try ext[.alpn].map { (d) throws(TLSError) in try decodeExtension { () throws(DecodeError) in try ExtensionBody.alpn(d) } } ?? []
        groups = try ext[.supportedGroups].map { (d) throws(TLSError) in try decodeExtension { () throws(DecodeError) in try ExtensionBody.supportedGroups(d) } } ?? []
        signatureSchemes = try ext[.signatureAlgorithms].map { (d) throws(TLSError) in
            try decodeExtension { () throws(DecodeError) in try ExtensionBody.signatureAlgorithms(d) }
        } ?? []
        cipherSuites = hello.cipherSuites
        versions = try ext[.supportedVersions].map { (d) throws(TLSError) in
            try decodeExtension { () throws(DecodeError) in try ExtensionBody.clientSupportedVersions(d) }
        } ?? [hello.legacyVersion]
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
        let hello = try message.require(ClientHello.self)
        guard hello.random == firstHello.random, hello.legacySessionID == firstHello.legacySessionID,
              hello.cipherSuites == firstHello.cipherSuites,
              hello.legacyCompressionMethods == firstHello.legacyCompressionMethods,
              hello.extensions[.supportedVersions] == firstHello.extensions[.supportedVersions],
              hello.extensions[.supportedGroups] == firstHello.extensions[.supportedGroups]
        else { throw .misbehaved(.changedClientHelloAfterHelloRetryRequest) }
        guard let cookieData = hello.extensions[.cookie],
              try decodeExtension({ () throws(DecodeError) in try ExtensionBody.cookie(cookieData) }) == cookie
        else { throw .misbehaved(.sentWrongCookie) }
        guard let shareData = hello.extensions[.keyShare] else { throw .misbehaved(.sentMissingKeyShare) }
        let shares = try decodeExtension { () throws(DecodeError) in try ExtensionBody.clientKeyShares(shareData) }
        guard shares.count == 1, shares[0].group == negotiation.group else {
            throw .misbehaved(.sentWrongKeyShareAfterHelloRetryRequest)
        }
        // RFC 8446 §4.1.2: the second ClientHello drops early_data.
        guard !hello.extensions.contains(.earlyData) else { throw .misbehaved(.sentEarlyDataAfterHelloRetryRequest) }
        context.records.earlyDataSkipBudget = nil
        let psk = try acceptPSK(hello: hello, message: message, suite: negotiation.suite, serverName: negotiation.serverName,
                                transcriptBefore: self.transcript, config: config, context: context)
        var transcript = self.transcript
        transcript.append(message)
        return try sendServerFlight(
            hello: hello, negotiation: negotiation, clientShare: shares[0].keyExchange, psk: psk, earlyData: false,
            transcript: transcript, retried: true, config: config, context: &context)
    }
}

/// RFC 8446 §4.2.1 and RFC 5246 Appendix E: the highest version both sides speak.
func negotiateVersion(_ hello: ClientHello, config: ServerConfiguration) throws(TLSError) -> ProtocolVersion {
    // RFC 8446 Appendix D.5: a ClientHello whose legacy_version is SSL 3.0 or lower MUST be
    // refused with protocol_version, whatever supported_versions offers.
    guard hello.legacyVersion.rawValue > 0x0300 else {
        throw .incompatible(.noCommonVersion, "ClientHello.legacy_version \(hello.legacyVersion)")
    }
    guard let versionsData = hello.extensions[.supportedVersions] else {
        // A client without supported_versions speaks TLS 1.2 at most (legacy negotiation).
        guard config.versions.contains(.tls12), hello.legacyVersion.rawValue >= ProtocolVersion.tls12.rawValue else {
            throw .incompatible(.missingSupportedVersions, "client offered only \(hello.legacyVersion)")
        }
        return .tls12
    }
    let versions = try decodeExtension { () throws(DecodeError) in try ExtensionBody.clientSupportedVersions(versionsData) }
    for v in config.versions where versions.contains(v) { return v }
    throw .incompatible(.noCommonVersion, "client offered \(versions.filter { !$0.isGrease })")
}

/// ALPN and server_name, negotiated the same way in TLS 1.3 and TLS 1.2.
struct NegotiatedNames {
    let alpn: String?
    let serverName: String?
}

func negotiateNames(_ ext: ExtensionList, config: ServerConfiguration) throws(TLSError) -> NegotiatedNames {
    var alpn: String?
    if let data = ext[.alpn], !config.alpnProtocols.isEmpty {
        let offered = try decodeExtension { () throws(DecodeError) in try ExtensionBody.alpn(data) }
        guard let match = config.alpnProtocols.first(where: offered.contains) else {
            throw .incompatible(.noCommonApplicationProtocol, "client offered \(offered)")
        }
        alpn = match
    }
    let serverName = try ext[.serverName].flatMap { (data) throws(TLSError) in
        try decodeExtension { () throws(DecodeError) in try ExtensionBody.serverName(data) }
    }
    return NegotiatedNames(alpn: alpn, serverName: serverName)
}

/// RFC 8446 §4.1.1: suite, group, certificate and ALPN from a ClientHello.
func negotiate(_ hello: ClientHello, config: ServerConfiguration) throws(TLSError) -> ServerNegotiation {
    let ext = hello.extensions
    guard hello.legacyCompressionMethods == [0] else { throw .misbehaved(.offeredNullCompressionMissing) }

    guard let suite = config.cipherSuites.first(where: { hello.cipherSuites.contains($0.suite) }) else {
        throw .incompatible(.noCommonCipherSuite)
    }
    guard let sigData = ext[.signatureAlgorithms] else { throw .misbehaved(.sentMissingSignatureAlgorithms) }
    let schemes = try decodeExtension { () throws(DecodeError) in try ExtensionBody.signatureAlgorithms(sigData) }
    guard let groupsData = ext[.supportedGroups] else { throw .misbehaved(.sentMissingSupportedGroups) }
    let clientGroups = try decodeExtension { () throws(DecodeError) in try ExtensionBody.supportedGroups(groupsData) }
    guard let sharesData = ext[.keyShare] else { throw .misbehaved(.sentMissingKeyShare) }
    let shares = try decodeExtension { () throws(DecodeError) in try ExtensionBody.clientKeyShares(sharesData) }
    var seen = Set<NamedGroup>()
    for share in shares {
        guard seen.insert(share.group).inserted else { throw .misbehaved(.sentDuplicateKeyShare, "\(share.group)") }
        guard clientGroups.contains(share.group) else { throw .misbehaved(.sentKeyShareNotInSupportedGroups, "\(share.group)") }
    }

    // PROTOCOL.md §1: a hybrid group beats a classical one; among equals prefer one the client
    // already sent a share for (no extra round trip), in our configured order.
    let common = config.groups.filter { clientGroups.contains($0) }
    let postQuantum = common.filter(\.isPostQuantum)
    if config.requirePostQuantum && postQuantum.isEmpty {
        throw .incompatible(.postQuantumKeyExchangeRequired, "client offered \(clientGroups.filter { !$0.isGrease })")
    }
    let tier = postQuantum.isEmpty ? common : postQuantum
    guard let preferred = tier.first else { throw .incompatible(.noCommonGroup, "client offered \(clientGroups.filter { !$0.isGrease })") }
    let group = tier.first { g in shares.contains { $0.group == g } } ?? preferred
    let clientShare = shares.first { $0.group == group }?.keyExchange

    // RFC 8446 §4.4.2.2: prefer a chain signed only with algorithms the client listed in
    // signature_algorithms_cert (or signature_algorithms); otherwise send one of our choice.
    let certSchemes = try ext[.signatureAlgorithmsCert].map { (d) throws(TLSError) in
        try decodeExtension { () throws(DecodeError) in try ExtensionBody.signatureAlgorithms(d, "signature_algorithms_cert") }
    } ?? schemes
    var chosen: (CertifiedKey, SignatureScheme)?
    for candidate in config.certificates {
        guard let scheme = candidate.key.chooseScheme(offered: schemes) else { continue }
        if candidate.chainSignatureSchemes?.allSatisfy(certSchemes.contains) ?? true { chosen = (candidate, scheme); break }
        if chosen == nil { chosen = (candidate, scheme) }
    }
    guard let (certificate, scheme) = chosen else {
        throw .incompatible(.noCommonSignatureScheme, "client offered \(schemes)")
    }

    let names = try negotiateNames(ext, config: config)
    let modes = try ext[.pskKeyExchangeModes].map { (d) throws(TLSError) in
        try decodeExtension { () throws(DecodeError) in try ExtensionBody.pskKeyExchangeModes(d) }
    } ?? []
    let usableMode = modes.contains(.pskDHEKE)
        || (modes.contains(.pskKE) && config.acceptPSKWithoutKeyExchange && !config.requirePostQuantum)
    return ServerNegotiation(suite: suite, group: group, clientShare: clientShare, certificate: certificate,
                             scheme: scheme, alpn: names.alpn, serverName: names.serverName,
                             clientOffersPostHandshakeAuth: ext.contains(.postHandshakeAuth), clientAcceptsTickets: usableMode)
}
