import QSSLWire

// The TLS 1.3 server's first flight (ServerHello through Finished) and what follows it: the client's flight and Finished.

/// ServerHello through server Finished (RFC 8446 §2, first server flight). Pauses before
/// CertificateVerify when the key signs asynchronously. With an accepted PSK there is no
/// Certificate or CertificateVerify (§2.2).
func sendServerFlight(
    hello: ReceivedClientHello, negotiation n: ServerNegotiation, clientShare: [UInt8]?, psk: AcceptedPSK?, earlyData: Bool,
    transcript: Transcript, retried: Bool, config: ServerConfiguration,
    context: inout HandshakeContext
) throws(TLSError) -> ConnectionPhase {
    guard psk?.mode != .pskKE else {
        return try sendServerFlight(
            hello: hello, negotiation: n, exchanged: nil, psk: psk, earlyData: earlyData,
            transcript: transcript, retried: retried, config: config, context: &context)
    }
    guard let clientShare, let kx = config.provider.keyExchange(for: n.group) else { throw .crypto("group \(n.group) vanished") }
    let awaiting = TLS13ServerAwaitingKeyExchange(
        hello: hello, negotiation: n, psk: psk, earlyData: earlyData, transcript: transcript, retried: retried, config: config,
        request: KeyExchangeRequest(group: n.group, clientShare: clientShare, exchange: kx))
    // A group whose key exchange is a round trip elsewhere (a token) pauses here.
    guard kx.isSynchronous else {
        return .paused(
            .server(
                .keyExchange(
                    Awaiting(decision: PendingDecision(kind: .keyExchange(awaiting.request))) { (answer, context) throws(TLSError) in
                        try awaiting.complete(share: answer.share, secret: answer.secret, context: &context)
                    })))
    }
    let (serverShare, secret) = try kx.respond(toClientShare: clientShare)
    return try awaiting.complete(share: serverShare, secret: secret, context: &context)
}

/// A server flight waiting for its key exchange (the group answers asynchronously).
struct TLS13ServerAwaitingKeyExchange {
    let hello: ReceivedClientHello
    let negotiation: ServerNegotiation
    let psk: AcceptedPSK?
    let earlyData: Bool
    let transcript: Transcript
    let retried: Bool
    let config: ServerConfiguration
    let request: KeyExchangeRequest

    func complete(share: [UInt8], secret: SecretBytes, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        // A provider's answer is checked before anything goes out: an empty share or secret is
        // its failure, never sent.
        guard !share.isEmpty, !secret.isEmpty, share.count <= 0xFFFF else {
            throw .crypto("the \(request.group) key exchange answered without a share or secret")
        }
        // Nor one of the wrong size: a truncated secret would key the connection weakly.
        if let expected = request.group.responseLengths, share.count != expected.share || secret.count != expected.secret {
            throw .crypto(
                "the \(request.group) key exchange answered a \(share.count)-byte share and a \(secret.count)-byte secret "
                    + "(expected \(expected.share) and \(expected.secret))")
        }
        return try sendServerFlight(
            hello: hello, negotiation: negotiation, exchanged: (share, secret), psk: psk, earlyData: earlyData,
            transcript: transcript, retried: retried, config: config, context: &context)
    }
}

/// The flight once the key exchange is done (`exchanged`: the server's share and the shared
/// secret; nil for psk_ke).
private func sendServerFlight(
    hello: ReceivedClientHello, negotiation n: ServerNegotiation, exchanged: (share: [UInt8], secret: SecretBytes)?,
    psk: AcceptedPSK?, earlyData: Bool, transcript: Transcript, retried: Bool, config: ServerConfiguration,
    context: inout HandshakeContext
) throws(TLSError) -> ConnectionPhase {
    let hkdf = HKDF(primitives: context.primitives, hash: n.suite.hash)
    var transcript = transcript
    var ext = ExtensionList()
    ext.append(.supportedVersions, bigEndianBytes(ProtocolVersion.tls13.rawValue))
    if let exchanged {
        ext.append(.keyShare, try encoding { () throws(EncodeError) in try KeyShareEntry(group: n.group, keyExchange: exchanged.share).encodedBytes() })
    }
    if let psk { ext.append(.preSharedKey, bigEndianBytes(psk.index)) }
    let serverHello = ServerHello(
        random: context.primitives.randomBytes(32), legacySessionIDEcho: hello.legacySessionID,
        cipherSuite: n.suite.suite, extensions: ext)
    try context.send(serverHello, transcript: &transcript)
    transcript.fixHash(hkdf)
    // RFC 8446 Appendix D.4: a compatibility change_cipher_spec right after the first server
    // message, unless one already followed the HelloRetryRequest.
    if !hello.legacySessionID.isEmpty && !retried { try context.sendChangeCipherSpec() }

    // psk_ke (nothing exchanged): no (EC)DHE input. Only the handshake secret is kept.
    let handshake = (psk?.early ?? TLS13KeySchedule.Early(hkdf: hkdf)).handshake(sharedSecret: exchanged?.secret)
    let th = transcript.hash(hkdf)
    let clientSecret = handshake.clientTrafficSecret(transcriptHash: th)
    let serverSecret = handshake.serverTrafficSecret(transcriptHash: th)
    try context.installWriteKeys(secret: serverSecret, suite: n.suite)
    try context.installReadKeys(secret: clientSecret, suite: n.suite, duringHandshake: true)
    // RFC 8446 §4.2.10: early data is never accepted; the client's 0-RTT records (which fail
    // to decrypt under the handshake keys) are skipped up to a bound.
    if earlyData { context.records.earlyDataSkipBudget = config.maxSkippedEarlyData }

    var ee = ExtensionList()
    if n.serverName != nil && psk == nil { ee.append(.serverName, []) }
    if let alpn = n.alpn { ee.append(.alpn, try encoding { () throws(EncodeError) in try ExtensionBody.encodeALPN([alpn]) }) }
    try context.send(EncryptedExtensions(extensions: ee), transcript: &transcript)
    let flight = TLS13ServerFlight(
        negotiation: n, hkdf: hkdf, schedule: handshake, clientSecret: clientSecret, serverSecret: serverSecret,
        retried: retried, config: config, resumption: psk)
    if psk != nil {
        return .server(try flight.finish(transcript: transcript, context: &context))
    }
    if flight.requestsClientCertificate, let verifier = config.clientCertificateVerifier {
        // RFC 8446 §4.3.2: an empty context in the main handshake; the schemes and CAs we accept.
        var ext = ExtensionList()
        ext.append(.signatureAlgorithms, try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(verifier.supportedSchemes.map(\.rawValue)) })
        ext.append(
            .signatureAlgorithmsCert,
            try encoding { () throws(EncodeError) in
                try ExtensionBody.encodeU16List(verifier.supportedCertificateSchemes.map(\.rawValue))
            })
        let authorities = verifier.acceptableIssuerNames
        if !authorities.isEmpty {
            ext.append(.certificateAuthorities, try encoding { () throws(EncodeError) in try ExtensionBody.encodeCertificateAuthorities(authorities) })
        }
        try context.send(CertificateRequest(requestContext: [], extensions: ext), transcript: &transcript)
    }
    var certificate = CertificateMessage(certificates: n.certificate.chain)
    // RFC 8446 §4.4.2.1: the staple rides in the leaf's CertificateEntry, if the client asked.
    if let staple = stapleRequested(hello.extensions, n.certificate) {
        certificate.entries[0].extensions.append(.statusRequest, try encoding { () throws(EncodeError) in try ExtensionBody.encodeOCSPStatus(staple) })
    }
    try context.send(certificate, transcript: &transcript)
    let content = certificateVerifyContent(server: true, transcriptHash: transcript.hash(hkdf))
    let pending = TLS13ServerAwaitingSignature(
        flight: flight, transcript: transcript, request: SignatureRequest(message: content, scheme: n.scheme, key: n.certificate.key))
    guard n.certificate.key.isSynchronous else {
        return .paused(
            .signature(pending.request, side: .server) { (signature, context) throws(TLSError) in
                .server(try pending.complete(signature: signature, context: &context))
            })
    }
    return .server(try pending.complete(signature: try n.certificate.key.sign(content, scheme: n.scheme), context: &context))
}

/// What the server's first flight established, up to its Finished.
struct TLS13ServerFlight {
    let negotiation: ServerNegotiation
    let hkdf: HKDF
    let schedule: TLS13KeySchedule.Handshake
    let clientSecret: SecretBytes
    let serverSecret: SecretBytes
    let retried: Bool
    let config: ServerConfiguration
    let resumption: AcceptedPSK?

    /// RFC 8446 §4.3.2: servers authenticating with a PSK do not request a certificate in the
    /// main handshake (a resumed session keeps the client identity it was created with).
    var requestsClientCertificate: Bool { resumption == nil && config.clientAuthentication != .none }

    /// Finished, then application keys for writing; the state that waits for the client's flight.
    func finish(transcript: Transcript, context: inout HandshakeContext) throws(TLSError) -> ServerState {
        let n = negotiation
        var transcript = transcript
        let verifyData = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: serverSecret, transcriptHash: transcript.hash(hkdf))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)

        let master = schedule.master()
        let th = transcript.hash(hkdf)
        let clientApp = master.clientTrafficSecret(transcriptHash: th)
        let serverApp = master.serverTrafficSecret(transcriptHash: th)
        try context.installWriteKeys(secret: serverApp, suite: n.suite)
        let resumed = resumption?.proof.state
        // psk_ke runs no key exchange: the session keeps the group of the handshake that created it.
        let group = resumption?.mode == .pskKE ? (resumed?.group ?? n.group) : n.group
        let summary = HandshakeSummary(
            version: .tls13, cipherSuite: n.suite.suite, group: group, peerSignatureScheme: nil,
            localSignatureScheme: resumption == nil ? n.scheme : nil, helloRetryRequest: retried, resumed: resumption != nil,
            peerCertificates: [], alpnProtocol: n.alpn, serverName: n.serverName)
        let issuer = TicketIssuer(
            session: TLS13TicketSession(
                suite: n.suite, hkdf: hkdf, group: group, serverName: n.serverName, alpn: n.alpn,
                peerIdentity: resumed?.peerIdentity,
                trustBinding: ResumptionPolicy.binding(config)),
            createdAt: resumed?.createdAt, clientAcceptsTickets: n.clientAcceptsTickets)
        let core = ServerHandshakeCore(
            suite: n.suite, hkdf: hkdf, clientHandshakeSecret: clientSecret, master: master, clientApp: clientApp,
            serverApp: serverApp, summary: summary, config: config, issuer: issuer,
            clientOffersPostHandshakeAuth: n.clientOffersPostHandshakeAuth)
        if requestsClientCertificate { return .expectCertificate(ExpectClientCertificate(core: core, transcript: transcript)) }
        if let resumption {
            return .expectFinished(ExpectClientFinished(core: core, transcript: transcript, clientChain: [], client: .resumption(resumption.proof)))
        }
        // Not asked for a certificate: only a policy that does not require one gets here.
        let permitted = try AnonymousClientPermitted(
            policy: config.clientAuthentication,
            refusal: .crypto("a certificate is required but none was requested"))
        return .expectFinished(ExpectClientFinished(core: core, transcript: transcript, clientChain: [], client: .anonymous(permitted)))
    }
}

/// The server flight up to Certificate, waiting for the CertificateVerify signature.
struct TLS13ServerAwaitingSignature {
    let flight: TLS13ServerFlight
    let transcript: Transcript
    let request: SignatureRequest

    /// CertificateVerify, Finished, then application keys for writing.
    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) -> ServerState {
        var transcript = self.transcript
        try context.send(CertificateVerify(scheme: flight.negotiation.scheme, signature: signature), transcript: &transcript)
        return try flight.finish(transcript: transcript, context: &context)
    }
}

/// The OCSP response to staple for this ClientHello: the client asked for OCSP (status_request)
/// and the certificate has a current response.
func stapleRequested(_ ext: DecodedClientHelloExtensions, _ certificate: CertifiedKey) -> [UInt8]? {
    guard ext.requestsOCSP, let staple = certificate.ocspStaple?.response, !staple.isEmpty else { return nil }
    return staple
}
