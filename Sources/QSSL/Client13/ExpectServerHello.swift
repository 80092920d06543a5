import QSSLWire

// The TLS 1.3 client handshake up to ServerHello: the ClientHello, and what ServerHello settles.

/// Waiting for ServerHello (or HelloRetryRequest).
struct ExpectServerHello {
    let config: ClientConfiguration
    let serverName: String?
    var clientHello: ClientHello
    var pending: [any PendingKeyExchange]
    var transcript = Transcript()
    /// Suite and group of a HelloRetryRequest already received.
    var retry: (suite: TLS13CipherSuite, group: NamedGroup?)?
    var sentChangeCipherSpec = false
    /// The TLS 1.3 session offered as a PSK, if any.
    var pskOffer: PSKOffer? = nil
    /// The TLS 1.2 session offered by session ID or ticket, if any.
    var tls12Session: TLSSession? = nil
    /// Where sessions the server issues on this connection are kept.
    var sessionKey: String = ""

    /// Builds and sends the first ClientHello.
    static func start(
        config: ClientConfiguration, serverName: String?, session: TLSSession?, sessionKey: String,
        context: inout HandshakeContext
    ) throws(TLSError) -> ExpectServerHello {
        var pending: [any PendingKeyExchange] = []
        var shares: [KeyShareEntry] = []
        let offersTLS13 = config.versions.contains(.tls13)
        var shareGroups = !offersTLS13 ? [] : config.keyShareGroups.filter { config.groups.contains($0) }
        if config.requirePostQuantum { shareGroups = shareGroups.filter(\.isPostQuantum) }
        if offersTLS13, shareGroups.isEmpty, let first = config.groups.first(where: { !config.requirePostQuantum || $0.isPostQuantum }) {
            shareGroups = [first]
        }
        for group in shareGroups {
            guard let kx = config.provider.keyExchange(for: group) else { throw .misuse("group \(group) not implemented") }
            let (share, p) = try kx.generateClientShare()
            shares.append(KeyShareEntry(group: group, keyExchange: share))
            pending.append(p)
        }
        var ext = ExtensionList()
        if let serverName, !isIPAddress(serverName) {
            ext.append(.serverName, try encoding { () throws(EncodeError) in try ExtensionBody.encodeServerName(serverName) })
        }
        ext.append(.supportedGroups, try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(config.groups.map(\.rawValue)) })
        ext.append(
            .signatureAlgorithms, try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(config.verifier.supportedSchemes.map(\.rawValue)) })
        // RFC 8446 §4.2.3: certificates may be signed with schemes we never accept in
        // CertificateVerify (RSA PKCS#1 v1.5 above all), so list those separately.
        ext.append(
            .signatureAlgorithmsCert,
            try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(config.verifier.supportedCertificateSchemes.map(\.rawValue)) })
        if !config.alpnProtocols.isEmpty { ext.append(.alpn, try encoding { () throws(EncodeError) in try ExtensionBody.encodeALPN(config.alpnProtocols) }) }
        var suites: [CipherSuite] = []
        if offersTLS13 { suites += config.cipherSuites.map(\.suite) }
        // A TLS 1.2 session is offered by its ID (RFC 5246 §7.4.1.2) or its ticket (RFC 5077 §3.4,
        // with an ID of our own that the server echoes when it accepts).
        let tls12Session = session.flatMap { s in
            tls12SessionOfferable(s, config: config, serverName: serverName) ? s : nil
        }
        var legacySessionID: [UInt8] = config.middleboxCompatibility && offersTLS13 ? context.primitives.randomBytes(32) : []
        if let tls12Session {
            legacySessionID = tls12Session.sessionID.isEmpty ? context.primitives.randomBytes(32) : tls12Session.sessionID
        }
        if config.versions.contains(.tls12) {
            suites += config.tls12CipherSuites.map(\.suite)
            ext.append(.ecPointFormats, [1, 0])  // RFC 8422 §5.1.2: uncompressed only
            ext.append(.extendedMasterSecret, [])  // RFC 7627
            ext.append(.renegotiationInfo, [0])  // RFC 5746 §3.4: empty renegotiated_connection
            if config.tls12SessionTickets || tls12Session?.ticket != nil {
                ext.append(.sessionTicket, tls12Session?.ticket ?? [])
            }
        }
        if offersTLS13 {
            ext.append(
                .supportedVersions,
                try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(config.versions.map(\.rawValue), prefix: .uint8(allowEmpty: false)) })
            ext.append(.keyShare, try encoding { () throws(EncodeError) in try ExtensionBody.encodeClientKeyShares(shares) })
        }
        if offersTLS13 && config.offerPostHandshakeAuthentication { ext.append(.postHandshakeAuth, []) }
        if config.requestOCSPStaple { ext.append(.statusRequest, ExtensionBody.ocspStatusRequest) }
        if config.offerEarlyDataForTesting { ext.append(.earlyData, []) }
        // RFC 8446 §4.2.9: servers may send tickets only to clients that list a PSK mode (Go's
        // and BoringSSL's do), so the modes go out whenever a ticket could be kept, not only
        // with a PSK offer (which moves them just before pre_shared_key).
        if offersTLS13 && (config.sessionStore != nil || session != nil) {
            ext.append(.pskKeyExchangeModes, try encoding { () throws(EncodeError) in try ExtensionBody.encodePSKKeyExchangeModes(PSKOffer.modes(config)) })
        }
        var hello = ClientHello(
            random: context.primitives.randomBytes(32),
            legacySessionID: legacySessionID,
            cipherSuites: suites,
            extensions: ext)
        let pskOffer = offersTLS13 ? session.flatMap { PSKOffer(session: $0, config: config, serverName: serverName) } : nil
        if let pskOffer {
            try pskOffer.attach(to: &hello, transcriptBefore: Transcript(), now: config.clock.nowMilliseconds(), primitives: context.primitives)
        }
        var state = ExpectServerHello(
            config: config, serverName: serverName, clientHello: hello, pending: pending,
            pskOffer: pskOffer, tls12Session: tls12Session, sessionKey: sessionKey)
        context.records.useLegacyRecordVersion = true
        try context.send(hello, transcript: &state.transcript)
        try context.flush()
        context.records.useLegacyRecordVersion = false
        return state
    }

    var offeredExtensions: Set<ExtensionType> { Set(clientHello.extensions.types) }

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let hello = try message.require(ServerHello.self)
        if !hello.extensions.contains(.supportedVersions) && !hello.isHelloRetryRequest && retry == nil {
            return .client12(try processTLS12ServerHello(hello, message, context: &context))
        }
        let ext = try checkServerHello(hello)
        let suite = TLS13CipherSuite.named(hello.cipherSuite)!  // checked to be one we offered
        if hello.isHelloRetryRequest {
            return .client(.expectServerHello(try processHelloRetryRequest(hello, ext, message, suite: suite, context: &context)))
        }
        return .client(.expectEncryptedExtensions(try processServerHello(hello, ext, message, suite: suite, context: &context)))
    }

    /// Checks what ServerHello and HelloRetryRequest share (RFC 8446 §4.1.3, §4.1.4), and
    /// decodes the extensions, once.
    private func checkServerHello(_ hello: ServerHello) throws(TLSError) -> DecodedServerExtensions {
        guard hello.extensions.contains(.supportedVersions) else {
            // A server that does not select TLS 1.3 must not be talking to a 1.3-capable
            // client through a downgrade: RFC 8446 §4.1.3.
            if hello.random.suffix(8).elementsEqual(ServerHello.downgradeTLS12) || hello.random.suffix(8).elementsEqual(ServerHello.downgradeTLS11) {
                throw .misbehaved(.sentDowngradeSentinel)
            }
            throw .incompatible(.noCommonVersion, "server selected \(hello.legacyVersion); only TLS 1.3 was offered")
        }
        let ext = try DecodedServerExtensions(
            hello.extensions, in: hello.isHelloRetryRequest ? .helloRetryRequest : .serverHello13, offered: offeredExtensions.union([.cookie]))
        // Present (checked above), so decoded.
        guard ext.selectedVersion == .tls13 else { throw .misbehaved(.selectedUnofferedVersion, "server selected \(ext.selectedVersion.map { "\($0)" } ?? "none")") }
        guard hello.legacyVersion == .tls12 else { throw .misbehaved(.selectedUnofferedVersion, "legacy_version \(hello.legacyVersion)") }
        guard hello.legacySessionIDEcho == clientHello.legacySessionID else { throw .misbehaved(.echoedWrongSessionID) }
        guard clientHello.cipherSuites.contains(hello.cipherSuite), TLS13CipherSuite.named(hello.cipherSuite) != nil else {
            throw .misbehaved(.selectedUnofferedCipherSuite, "\(hello.cipherSuite)")
        }
        guard hello.legacyCompressionMethod == 0 else { throw .misbehaved(.sentNonZeroCompression) }
        if let retry, hello.cipherSuite != retry.suite.suite {
            throw .misbehaved(.changedCipherSuiteAfterHelloRetryRequest)
        }
        return ext
    }

    /// RFC 8446 §4.1.4: answer a HelloRetryRequest with a second ClientHello.
    private func processHelloRetryRequest(
        _ hrr: ServerHello, _ ext: DecodedServerExtensions, _ message: HandshakeMessage, suite: TLS13CipherSuite, context: inout HandshakeContext
    )
        throws(TLSError) -> ExpectServerHello
    {
        guard retry == nil else { throw .misbehaved(.sentSecondHelloRetryRequest) }
        var group: NamedGroup?
        if let selected = ext.retryGroup {
            guard config.groups.contains(selected) else { throw .misbehaved(.selectedUnofferedGroup, "\(selected)") }
            guard !pending.contains(where: { $0.group == selected }) else { throw .misbehaved(.helloRetryRequestForGroupAlreadyShared, "\(selected)") }
            if config.requirePostQuantum && !selected.isPostQuantum {
                throw .incompatible(.postQuantumKeyExchangeRequired, "server asked for \(selected)")
            }
            group = selected
        }
        let cookie = ext.cookie
        guard group != nil || cookie != nil else { throw .misbehaved(.helloRetryRequestChangedNothing) }

        var next = self
        let hkdf = HKDF(primitives: context.primitives, hash: suite.hash)
        next.transcript.replaceWithMessageHash(hkdf)
        next.transcript.append(message)
        // RFC 8446 §4.1.2: the same ClientHello, with key_share replaced, early_data removed
        // and the cookie echoed.
        // The extensions keep their order (strict servers compare the two hellos): key_share is
        // replaced in place with the cookie just before it; early_data and the PSK go (the PSK
        // comes back last, below).
        var keyShare = clientHello.extensions[.keyShare] ?? []
        if let group {
            guard let kx = config.provider.keyExchange(for: group) else { throw .misbehaved(.selectedUnofferedGroup) }
            let (share, p) = try kx.generateClientShare()
            next.pending = [p]
            keyShare = try encoding { () throws(EncodeError) in try ExtensionBody.encodeClientKeyShares([KeyShareEntry(group: group, keyExchange: share)]) }
        }
        let cookieExtension = try cookie.map { (c) throws(TLSError) in
            Extension(type: .cookie, data: try encoding { () throws(EncodeError) in try ExtensionBody.encodeCookie(c) })
        }
        var ext = ExtensionList()
        for item in clientHello.extensions.items {
            switch item.type {
            case .earlyData, .cookie, .preSharedKey: continue
            case .keyShare:
                if let cookieExtension { ext.items.append(cookieExtension) }
                ext.items.append(Extension(type: .keyShare, data: keyShare))
            default: ext.items.append(item)
            }
        }
        next.clientHello.extensions = ext
        next.retry = (suite, group)
        // The cookie is the server's data: one that leaves no room in ClientHello2's 16-bit
        // extensions block is the server's fault, answered with illegal_parameter.
        let secondHello: HandshakeMessage
        do {
            // RFC 8446 §4.1.2: the PSK stays (last, with a fresh age and a binder over both
            // hellos) only if its hash matches the suite the server chose.
            if let offer = pskOffer, offer.hash == suite.hash {
                try offer.attach(
                    to: &next.clientHello, transcriptBefore: next.transcript, now: config.clock.nowMilliseconds(),
                    primitives: context.primitives)
            } else {
                next.pskOffer = nil
            }
            secondHello = try HandshakeMessage(next.clientHello)
        } catch {
            throw .misbehaved(.sentCookieTooLargeToEcho, "a cookie of \(cookie?.count ?? 0) bytes does not fit ClientHello2: \(error)")
        }
        if config.middleboxCompatibility && !sentChangeCipherSpec {
            try context.sendChangeCipherSpec()
            next.sentChangeCipherSpec = true
        }
        context.send(secondHello, transcript: &next.transcript)
        return next
    }

    private func processServerHello(
        _ hello: ServerHello, _ ext: DecodedServerExtensions, _ message: HandshakeMessage, suite: TLS13CipherSuite, context: inout HandshakeContext
    )
        throws(TLSError) -> ExpectEncryptedExtensions
    {
        // RFC 8446 §4.2.11: the server may select the one PSK we offered, with a suite of its hash.
        var resumption: ResumptionAccepted?
        if let index = ext.selectedIdentity {
            guard let offer = pskOffer, index == 0 else { throw .misbehaved(.selectedUnofferedPSK, "identity \(index)") }
            guard offer.hash == suite.hash else { throw .misbehaved(.selectedUnofferedPSK, "\(suite.suite) does not match the session's hash") }
            resumption = ResumptionAccepted(selected: offer)
        }
        let group: NamedGroup
        let sharedSecret: SecretBytes?
        if let share = ext.keyShare {
            guard let kx = pending.first(where: { $0.group == share.group }) else {
                throw .misbehaved(.sentKeyShareForUnofferedGroup, "\(share.group)")
            }
            if let retry, let g = retry.group, g != share.group {
                throw .misbehaved(.sentKeyShareForUnofferedGroup, "\(share.group) differs from HelloRetryRequest's \(g)")
            }
            if config.requirePostQuantum && !share.group.isPostQuantum {
                throw .incompatible(.postQuantumKeyExchangeRequired, "server selected \(share.group)")
            }
            group = share.group
            sharedSecret = try context.measure("key exchange \(share.group)") { () throws(TLSError) in try kx.complete(serverShare: share.keyExchange) }
        } else {
            // psk_ke: only if we offered it (never under the PQ policy); the session keeps its group.
            guard let resumption, pskOffer?.modes.contains(.pskKE) == true else { throw .misbehaved(.sentMissingKeyShare) }
            group = resumption.state.group
            sharedSecret = nil  // no (EC)DHE input: HashLen zeros
        }

        var transcript = self.transcript
        transcript.append(message)
        let hkdf = HKDF(primitives: context.primitives, hash: suite.hash)
        transcript.fixHash(hkdf)
        let psk = resumption.map { _ in pskOffer!.session.state.secret }
        let (handshake, clientSecret, serverSecret) = try context.measure("handshake key schedule") { () throws(TLSError) in
            let early = TLS13KeySchedule.Early(hkdf: hkdf, psk: psk)
            let handshake = early.handshake(sharedSecret: sharedSecret)
            let th = transcript.hash(hkdf)
            return (handshake, handshake.clientTrafficSecret(transcriptHash: th), handshake.serverTrafficSecret(transcriptHash: th))
        }
        try context.installReadKeys(secret: serverSecret, suite: suite, duringHandshake: true)
        var sentCCS = sentChangeCipherSpec
        if config.middleboxCompatibility && !sentCCS {
            try context.sendChangeCipherSpec()
            sentCCS = true
        }
        // From here on the client's alerts are protected with its handshake keys.
        try context.installWriteKeys(secret: clientSecret, suite: suite)
        let core = ClientHandshakeCore(
            config: config, serverName: serverName, offered: offeredExtensions, suite: suite, hkdf: hkdf,
            schedule: handshake, clientSecret: clientSecret, serverSecret: serverSecret, group: group,
            helloRetryRequest: retry != nil, sessionKey: sessionKey)
        return ExpectEncryptedExtensions(core: core, transcript: transcript, resumption: resumption)
    }
}

/// Whether `name` is an IPv4 or IPv6 literal (RFC 6066 §3: such names are not sent as SNI).
func isIPAddress(_ name: String) -> Bool {
    if name.contains(":") { return true }
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
}
