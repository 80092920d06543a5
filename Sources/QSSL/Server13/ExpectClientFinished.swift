import QSSLWire

/// The client's standing settled (its certificate, the session it resumed, or a policy that lets
/// it through without either): its Finished, then traffic.
struct ExpectClientFinished {
    let core: ServerHandshakeCore
    let transcript: Transcript
    let clientChain: [[UInt8]]
    let client: ClientAuthenticated

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TrafficState {
        let finished = try message.require(Finished.self)
        let hkdf = core.hkdf
        let expected = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: core.clientHandshakeSecret, transcriptHash: transcript.hash(hkdf))
        let verified = try FinishedVerified(expected: expected, received: finished.verifyData)
        try context.installReadKeys(secret: core.clientApp, suite: core.suite, duringHandshake: false)
        // RFC 8446 §4.6.1: tickets follow the client's Finished, whose transcript they are bound to.
        var transcript = self.transcript
        transcript.append(message)
        // Tickets carry the client identity: a resumption never adds or drops it.
        let config = core.config
        var issuer = core.issuer
        issuer.session.peerIdentity = client.identity
        try issuer.issue(
            resumptionMasterSecret: core.master.resumptionMasterSecret(transcriptHash: transcript.hash(hkdf)), config: config,
            context: &context)
        var summary = core.summary
        if summary.peerCertificates.isEmpty { summary.peerCertificates = clientChain }
        if case .certificate(let proof) = client { summary.peerSignatureScheme = proof.identity.handshakeSignatureScheme }
        var pha: PostHandshakeAuthentication?
        if core.clientOffersPostHandshakeAuth, config.allowPostHandshakeAuthentication, let verifier = config.clientCertificateVerifier {
            pha = PostHandshakeAuthentication(
                base: transcript, hkdf: hkdf,
                side: .server(.init(policy: config.clientAuthentication, verifier: verifier)))
        }
        return TrafficState(
            tls13: TLS13TrafficSecrets(suite: core.suite, hkdf: hkdf, client: core.clientApp, server: core.serverApp),
            summary: summary, finished: verified, peer: .client(client), postHandshakeAuth: pha)
    }
}
