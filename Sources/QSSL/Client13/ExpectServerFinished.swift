import QSSLWire

/// The server authenticated (or resumed): its Finished, then our flight.
struct ExpectServerFinished {
    let core: ClientHandshakeCore
    let transcript: Transcript
    let alpn: String?
    /// The server's CertificateRequest, if it sent one.
    let certificateRequest: ClientCertificateRequest?
    let peerChain: [[UInt8]]
    let peerScheme: SignatureScheme?
    let server: ServerAuthenticated

    /// The server's Finished; then our Certificate and CertificateVerify if asked (pausing for
    /// an asynchronous key), and our Finished.
    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        let finished = try message.require(Finished.self)
        let hkdf = core.hkdf
        let expected = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: core.serverSecret, transcriptHash: transcript.hash(hkdf))
        let finishedVerified = try FinishedVerified(expected: expected, received: finished.verifyData)
        var transcript = self.transcript
        transcript.append(message)

        let master = core.schedule.master()
        let thServerFinished = transcript.hash(hkdf)
        let clientApp = master.clientTrafficSecret(transcriptHash: thServerFinished)
        let serverApp = master.serverTrafficSecret(transcriptHash: thServerFinished)
        try context.installReadKeys(secret: serverApp, suite: core.suite, duringHandshake: false)
        var flight = ClientFinalFlight(
            server: self, transcript: transcript, master: master, clientApp: clientApp, serverApp: serverApp,
            finished: finishedVerified)
        guard let request = certificateRequest else { return .traffic(try flight.finish(context: &context)) }
        // RFC 8446 §4.4.2: a certificate the server can accept, or an empty Certificate.
        guard let (certificate, scheme) = chooseClientCertificate(core.config.clientCertificates, request: request) else {
            try context.send(CertificateMessage(requestContext: request.context, certificates: []), transcript: &flight.transcript)
            return .traffic(try flight.finish(context: &context))
        }
        try context.send(CertificateMessage(requestContext: request.context, certificates: certificate.chain), transcript: &flight.transcript)
        let content = certificateVerifyContent(server: false, transcriptHash: flight.transcript.hash(hkdf))
        let awaiting = ClientAwaitingSignature13(flight: flight, request: SignatureRequest(message: content, scheme: scheme, key: certificate.key))
        guard certificate.key.isSynchronous else {
            return .paused(
                .signature(awaiting.request, side: .client) { (signature, context) throws(TLSError) in
                    .traffic(try awaiting.complete(signature: signature, context: &context))
                })
        }
        return .traffic(try awaiting.complete(signature: try certificate.key.sign(content, scheme: scheme), context: &context))
    }
}

/// The client's last flight in TLS 1.3: after the server's Finished, up to our own.
struct ClientFinalFlight {
    let server: ExpectServerFinished
    var transcript: Transcript
    let master: TLS13KeySchedule.Master
    let clientApp: SecretBytes
    let serverApp: SecretBytes
    let finished: FinishedVerified
    var signedWith: SignatureScheme? = nil

    func finish(context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        let core = server.core
        var transcript = self.transcript
        let hkdf = core.hkdf
        let verifyData = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: core.clientSecret, transcriptHash: transcript.hash(hkdf))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)
        try context.installWriteKeys(secret: clientApp, suite: core.suite)

        let config = core.config
        var resumed: ResumptionAccepted?
        if case .resumption(let proof) = server.server { resumed = proof }
        var summary = HandshakeSummary(
            version: .tls13, cipherSuite: core.suite.suite, group: core.group, peerSignatureScheme: server.peerScheme,
            localSignatureScheme: signedWith, helloRetryRequest: core.helloRetryRequest, resumed: resumed != nil,
            peerCertificates: server.peerChain, alpnProtocol: server.alpn, serverName: core.serverName)
        summary.clientCertificateSent = signedWith != nil
        // The tickets that follow are bound to the transcript through our Finished (RFC 8446 §4.6.1).
        let tickets = config.sessionStore.map { store in
            ClientTicketReceiver(
                session: TLS13TicketSession(
                    suite: core.suite, hkdf: hkdf, group: core.group, serverName: core.serverName, alpn: server.alpn,
                    peerIdentity: server.server.identity, trustBinding: ResumptionPolicy.binding(config)),
                resumptionMasterSecret: master.resumptionMasterSecret(transcriptHash: transcript.hash(hkdf)),
                createdAt: resumed?.state.createdAt ?? config.clock.nowMilliseconds(), store: store, key: core.sessionKey, clock: config.clock)
        }
        let pha =
            config.offerPostHandshakeAuthentication
            ? PostHandshakeAuthentication(base: transcript, hkdf: hkdf, side: .client(certificates: config.clientCertificates)) : nil
        return TrafficState(
            tls13: TLS13TrafficSecrets(suite: core.suite, hkdf: hkdf, client: clientApp, server: serverApp),
            summary: summary, finished: finished, peer: .server(server.server), tickets: tickets, postHandshakeAuth: pha)
    }
}

/// Our Certificate is out; waiting for the CertificateVerify signature.
struct ClientAwaitingSignature13 {
    let flight: ClientFinalFlight
    let request: SignatureRequest

    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        var flight = self.flight
        try context.send(CertificateVerify(scheme: request.scheme, signature: signature), transcript: &flight.transcript)
        flight.signedWith = request.scheme
        return try flight.finish(context: &context)
    }
}
