import QSSLWire

// The TLS 1.2 client after ClientKeyExchange: CertificateVerify (perhaps paused), then its Finished.

/// The client after ClientKeyExchange: master secret derived, CertificateVerify (if any) next.
struct TLS12ClientFinal {
    let handshake: TLS12ClientHandshake
    let share: TLS12ClientKeyShare
    let master: SecretBytes
    var transcript: Transcript
    var signedWith: SignatureScheme?

    func finish(context: inout HandshakeContext) throws(TLSError) -> TLS12ClientFinishing {
        let hs = handshake
        let suite = hs.suite
        var transcript = self.transcript
        let keys = TLS12FinishedKeys(
            suite: suite, prf: hs.prf, masterSecret: master,
            keys: TLS12KeyBlock(prf: hs.prf, masterSecret: master, clientRandom: hs.clientRandom, serverRandom: hs.serverRandom, suite: suite))
        try keys.sendChangeCipherSpecAndFinished(asClient: true, transcript: &transcript, context: &context)
        var summary = HandshakeSummary(
            version: .tls12, cipherSuite: suite.suite, group: share.group, peerSignatureScheme: share.scheme, localSignatureScheme: signedWith,
            helloRetryRequest: false, resumed: false, peerCertificates: share.peerChain, alpnProtocol: hs.alpn, serverName: hs.serverName)
        summary.clientCertificateSent = signedWith != nil
        let now = hs.config.clock.nowMilliseconds()
        let state = SessionState(
            version: .tls12, cipherSuite: suite.suite, group: share.group, extendedMasterSecret: hs.extendedMasterSecret,
            serverName: hs.serverName, alpnProtocol: hs.alpn, secret: master, createdAt: now, issuedAt: now,
            lifetimeSeconds: 86_400, peerIdentity: share.proof.identity, trustBinding: ResumptionPolicy.binding(hs.config))
        let keep = TLS12ClientSessionKeeping(
            config: hs.config, key: hs.sessionKey, state: state, sessionID: hs.sessionID, offeredTicket: nil,
            expectsTicket: hs.expectsTicket)
        return TLS12ClientFinishing(
            keys: keys, transcript: transcript, summary: summary, server: .certificate(share.proof),
            respondsWithFinished: false, session: keep)
    }
}

/// Waiting for the client's CertificateVerify signature (TLS 1.2).
struct TLS12ClientAwaitingSignature {
    let final: TLS12ClientFinal
    let request: SignatureRequest

    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) -> TLS12ClientFinishing {
        var final = self.final
        try context.send(CertificateVerify(scheme: request.scheme, signature: signature), transcript: &final.transcript)
        final.signedWith = request.scheme
        return try final.finish(context: &context)
    }
}
