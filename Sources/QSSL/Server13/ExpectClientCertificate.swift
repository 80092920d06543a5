import QSSLWire

/// After a CertificateRequest (RFC 8446 §4.4.2): the client's Certificate, possibly empty.
struct ExpectClientCertificate {
    let core: ServerHandshakeCore
    let transcript: Transcript

    /// Empty (refused unless the policy lets a client through without one), or verified in place
    /// or through the verify-peer pause with the client-certificate policy (EKU clientAuth).
    func handle(_ message: HandshakeMessage) throws(TLSError) -> ConnectionPhase {
        let certificate = try message.require(CertificateMessage.self)
        // RFC 8446 §4.4.2: the context of the CertificateRequest it answers (empty here).
        guard certificate.requestContext.isEmpty else { throw .misbehaved(.sentNonEmptyCertificateRequestContext) }
        var transcript = self.transcript
        transcript.append(message)
        let config = core.config
        guard !certificate.entries.isEmpty else {
            let permitted = try AnonymousClientPermitted(
                policy: config.clientAuthentication, refusal: .incompatible(.clientCertificateRequired, "the client sent no certificate"))
            return .server(.expectFinished(ExpectClientFinished(core: core, transcript: transcript, clientChain: [], client: .anonymous(permitted))))
        }
        guard let verifier = config.clientCertificateVerifier else { throw .misbehaved(.sentUnexpectedMessage) }
        let chain = certificate.entries.map(\.data)
        let request = PeerVerificationRequest(chain: chain, role: .client, verifier: verifier)
        let core = self.core
        return try verifyPeerOrPause(request, side: .server) { (peer) in
            .server(.expectCertificateVerify(ExpectClientCertificateVerify(core: core, transcript: transcript, clientChain: chain, peer: peer)))
        }
    }
}
