import QSSLWire

// The TLS 1.3 client after ServerHello: the server's encrypted flight, the client certificate, and the client's final flight.

/// Everything the client holds after ServerHello, carried through the encrypted server flight.
struct ClientHandshakeKeys {
    let config: ClientConfiguration
    let serverName: String?
    let offered: Set<ExtensionType>
    let suite: TLS13CipherSuite
    let hkdf: HKDF
    let schedule: TLS13KeySchedule.Handshake
    let clientSecret: SecretBytes
    let serverSecret: SecretBytes
    var transcript: Transcript
    let group: NamedGroup
    let helloRetryRequest: Bool
    /// The offered PSK the server selected: no certificate follows.
    let resumption: ResumptionAccepted?
    let sessionKey: String
    var alpn: String?
    var certificateRequest: ClientCertificateRequest?
    var peerChain: [[UInt8]] = []
    var peerScheme: SignatureScheme?

    mutating func processEncryptedExtensions(_ message: HandshakeMessage) throws(TLSError) {
        let ee = try message.require(EncryptedExtensions.self)
        try checkServerExtensions(ee.extensions, offered: offered, permitted: [.serverName, .supportedGroups, .alpn, .recordSizeLimit, .earlyData],
                                  message: "EncryptedExtensions")
        if let sni = ee.extensions[.serverName], !sni.isEmpty { throw .decode(.trailingData(in: "server_name acknowledgement")) }
        if let data = ee.extensions[.alpn] {
            let list = try decodeExtension { () throws(DecodeError) in try ExtensionBody.alpn(data) }
            guard list.count == 1, config.alpnProtocols.contains(list[0]) else {
                throw .misbehaved(.selectedUnofferedApplicationProtocol, "\(list)")
            }
            alpn = list[0]
        }
        transcript.append(message)
    }

    mutating func processCertificateRequest(_ message: HandshakeMessage) throws(TLSError) {
        let request = try message.require(CertificateRequest.self)
        // RFC 8446 §4.3.2: the context is zero length unless used for post-handshake authentication.
        guard request.requestContext.isEmpty else { throw .misbehaved(.sentNonEmptyCertificateRequestContext) }
        certificateRequest = try ClientCertificateRequest(request)
        transcript.append(message)
    }

    /// The server's Certificate: verified in place, or through the verify-peer pause.
    mutating func certificateReceived(_ message: HandshakeMessage) throws(TLSError) -> ConnectionPhase {
        let request = try processCertificate(message)
        let keys = self
        return try verifyPeerOrPause(request, side: .client) { .client(.expectCertificateVerify(keys, $0)) }
    }

    mutating func processCertificate(_ message: HandshakeMessage) throws(TLSError) -> PeerVerificationRequest {
        let certificate = try message.require(CertificateMessage.self)
        guard certificate.requestContext.isEmpty else { throw .misbehaved(.sentNonEmptyCertificateRequestContext) }
        // RFC 8446 §4.4.2.4: an empty server Certificate is a decode_error.
        guard !certificate.entries.isEmpty else { throw .misbehaved(.sentEmptyCertificateChain) }
        peerChain = certificate.entries.map(\.data)
        let leaf = certificate.entries[0].extensions
        // RFC 8446 §4.4.2.1: a staple only in answer to our status_request.
        if leaf.contains(.statusRequest) && !offered.contains(.statusRequest) {
            throw .misbehaved(.sentUnsolicitedExtension, "status_request in a CertificateEntry we did not ask for")
        }
        let staple = try leaf[.statusRequest].map { (d) throws(TLSError) in try decodeExtension { () throws(DecodeError) in try ExtensionBody.ocspStatus(d) } }
        let scts = try leaf[.signedCertificateTimestamp].map { (d) throws(TLSError) in
            try decodeExtension { () throws(DecodeError) in try ExtensionBody.signedCertificateTimestamps(d) }
        } ?? []
        transcript.append(message)
        return PeerVerificationRequest(chain: peerChain, stapledOCSPResponse: staple, signedCertificateTimestamps: scts,
                                       role: .server(name: serverName), verifier: config.verifier)
    }

    mutating func processCertificateVerify(_ message: HandshakeMessage, peer: VerifiedPeer) throws(TLSError) -> PeerSignatureVerified {
        let verify = try message.require(CertificateVerify.self)
        guard config.verifier.supportedSchemes.contains(verify.scheme) else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)")
        }
        let content = certificateVerifyContent(server: true, transcriptHash: transcript.hash(hkdf))
        let verified = try PeerSignatureVerified(signature: verify.signature, scheme: verify.scheme, content: content, peer: peer)
        peerScheme = verify.scheme
        transcript.append(message)
        return verified
    }

    /// The server's Finished; then our Certificate and CertificateVerify if asked (pausing for
    /// an asynchronous key), and our Finished.
    mutating func processFinished(_ message: HandshakeMessage, peer: ServerAuthenticated, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let finished = try message.require(Finished.self)
        let expected = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: serverSecret, transcriptHash: transcript.hash(hkdf))
        let finishedVerified = try FinishedVerified(expected: expected, received: finished.verifyData)
        transcript.append(message)

        let master = schedule.master()
        let thServerFinished = transcript.hash(hkdf)
        let clientApp = master.clientTrafficSecret(transcriptHash: thServerFinished)
        let serverApp = master.serverTrafficSecret(transcriptHash: thServerFinished)
        try context.installReadKeys(secret: serverApp, suite: suite, duringHandshake: false)
        var flight = ClientFinalFlight(keys: self, master: master, clientApp: clientApp, serverApp: serverApp, finished: finishedVerified, peer: peer)

        if let request = certificateRequest {
            // RFC 8446 §4.4.2: a certificate the server can accept, or an empty Certificate.
            guard let (certificate, scheme) = chooseClientCertificate(config.clientCertificates, request: request) else {
                try context.send(CertificateMessage(requestContext: request.context, certificates: []), transcript: &flight.keys.transcript)
                return .traffic(try flight.finish(context: &context))
            }
            try context.send(CertificateMessage(requestContext: request.context, certificates: certificate.chain), transcript: &flight.keys.transcript)
            let content = certificateVerifyContent(server: false, transcriptHash: flight.keys.transcript.hash(hkdf))
            let awaiting = ClientAwaitingSignature13(flight: flight, request: SignatureRequest(message: content, scheme: scheme, key: certificate.key))
            guard certificate.key.isSynchronous else {
                return .paused(.signature(awaiting.request, side: .client) { (signature, context) throws(TLSError) in
                    .traffic(try awaiting.complete(signature: signature, context: &context))
                })
            }
            return .traffic(try awaiting.complete(signature: try certificate.key.sign(content, scheme: scheme), context: &context))
        }
        return .traffic(try flight.finish(context: &context))
    }
}

/// What a server's CertificateRequest asks of the client (TLS 1.3 or TLS 1.2).
struct ClientCertificateRequest {
    let context: [UInt8]
    let schemes: [SignatureScheme]
    let authorities: [[UInt8]]

    init(_ request: CertificateRequest) throws(TLSError) {
        // RFC 8446 §4.3.2: signature_algorithms MUST be present.
        guard let sigData = request.extensions[.signatureAlgorithms] else { throw .misbehaved(.sentMissingSignatureAlgorithms) }
        context = request.requestContext
        schemes = try decodeExtension { () throws(DecodeError) in try ExtensionBody.signatureAlgorithms(sigData) }
        authorities = try request.extensions[.certificateAuthorities].map { (d) throws(TLSError) in
            try decodeExtension { () throws(DecodeError) in try ExtensionBody.certificateAuthorities(d) }
        } ?? []
    }

    init(_ request: TLS12CertificateRequest) {
        context = []
        schemes = request.schemes
        authorities = request.authorities
    }
}

/// The first certificate whose key signs with a scheme the server listed and whose chain
/// reaches a listed CA (when the server listed CAs and the chain's issuers are known).
func chooseClientCertificate(_ candidates: [CertifiedKey], request: ClientCertificateRequest,
                             permits: (SignatureScheme) -> Bool = { _ in true }) -> (CertifiedKey, SignatureScheme)? {
    for candidate in candidates {
        guard let scheme = candidate.key.supportedSchemes.first(where: { request.schemes.contains($0) && permits($0) }) else { continue }
        if !request.authorities.isEmpty, let issuers = candidate.issuerNames, !issuers.contains(where: request.authorities.contains) { continue }
        return (candidate, scheme)
    }
    return nil
}

/// The client's last flight in TLS 1.3: after the server's Finished, up to our own.
struct ClientFinalFlight {
    var keys: ClientHandshakeKeys
    let master: TLS13KeySchedule.Master
    let clientApp: SecretBytes
    let serverApp: SecretBytes
    let finished: FinishedVerified
    let peer: ServerAuthenticated
    var signedWith: SignatureScheme?

    func finish(context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        var transcript = keys.transcript
        let hkdf = keys.hkdf
        let verifyData = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: keys.clientSecret, transcriptHash: transcript.hash(hkdf))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)
        try context.installWriteKeys(secret: clientApp, suite: keys.suite)

        let config = keys.config
        var summary = HandshakeSummary(
            version: .tls13, cipherSuite: keys.suite.suite, group: keys.group, peerSignatureScheme: keys.peerScheme,
            localSignatureScheme: signedWith, helloRetryRequest: keys.helloRetryRequest, resumed: keys.resumption != nil,
            peerCertificates: keys.peerChain, alpnProtocol: keys.alpn, serverName: keys.serverName)
        summary.clientCertificateSent = signedWith != nil
        // The tickets that follow are bound to the transcript through our Finished (RFC 8446 §4.6.1).
        let tickets = config.sessionStore.map { store in
            ClientTicketReceiver(
                session: TLS13TicketSession(suite: keys.suite, hkdf: hkdf, group: keys.group, serverName: keys.serverName, alpn: keys.alpn,
                                            peerIdentity: peer.identity, trustBinding: ResumptionPolicy.binding(config)),
                resumptionMasterSecret: master.resumptionMasterSecret(transcriptHash: transcript.hash(hkdf)),
                createdAt: keys.resumption?.state.createdAt ?? config.clock.nowMilliseconds(), store: store, key: keys.sessionKey, clock: config.clock)
        }
        let pha = config.offerPostHandshakeAuthentication
            ? PostHandshakeAuthentication(base: transcript, hkdf: hkdf, side: .client(certificates: config.clientCertificates)) : nil
        return TrafficState(tls13: TLS13TrafficSecrets(suite: keys.suite, hkdf: hkdf, client: clientApp, server: serverApp),
                            summary: summary, finished: finished, peer: .server(peer), tickets: tickets, postHandshakeAuth: pha)
    }
}

/// Our Certificate is out; waiting for the CertificateVerify signature.
struct ClientAwaitingSignature13 {
    let flight: ClientFinalFlight
    let request: SignatureRequest

    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        var flight = self.flight
        try context.send(CertificateVerify(scheme: request.scheme, signature: signature), transcript: &flight.keys.transcript)
        flight.signedWith = request.scheme
        return try flight.finish(context: &context)
    }
}
