import QSSLWire

/// After EncryptedExtensions (full handshake): the server's Certificate, possibly after a
/// CertificateRequest.
struct ExpectServerCertificate {
    let core: ClientHandshakeCore
    let transcript: Transcript
    let alpn: String?
    let certificateRequest: ClientCertificateRequest?

    func processCertificateRequest(_ message: HandshakeMessage) throws(TLSError) -> ExpectServerCertificate {
        let request = try message.require(CertificateRequest.self)
        // RFC 8446 §4.3.2: the context is zero length unless used for post-handshake authentication.
        guard request.requestContext.isEmpty else { throw .misbehaved(.sentNonEmptyCertificateRequestContext) }
        var transcript = self.transcript
        transcript.append(message)
        return ExpectServerCertificate(core: core, transcript: transcript, alpn: alpn, certificateRequest: try ClientCertificateRequest(request))
    }

    /// The server's Certificate: verified in place, or through the verify-peer pause.
    func handle(_ message: HandshakeMessage) throws(TLSError) -> ConnectionPhase {
        let certificate = try message.require(CertificateMessage.self)
        guard certificate.requestContext.isEmpty else { throw .misbehaved(.sentNonEmptyCertificateRequestContext) }
        // RFC 8446 §4.4.2.4: an empty server Certificate is a decode_error.
        guard !certificate.entries.isEmpty else { throw .misbehaved(.sentEmptyCertificateChain) }
        let chain = certificate.entries.map(\.data)
        let leaf = certificate.entries[0].extensions
        // RFC 8446 §4.4.2.1: a staple only in answer to our status_request.
        if leaf.contains(.statusRequest) && !core.offered.contains(.statusRequest) {
            throw .misbehaved(.sentUnsolicitedExtension, "status_request in a CertificateEntry we did not ask for")
        }
        let staple = try leaf[.statusRequest].map { (d) throws(TLSError) in try decodeExtension { () throws(DecodeError) in try ExtensionBody.ocspStatus(d) } }
        let scts =
            try leaf[.signedCertificateTimestamp].map { (d) throws(TLSError) in
                try decodeExtension { () throws(DecodeError) in try ExtensionBody.signedCertificateTimestamps(d) }
            } ?? []
        var transcript = self.transcript
        transcript.append(message)
        let request = PeerVerificationRequest(
            chain: chain, stapledOCSPResponse: staple, signedCertificateTimestamps: scts,
            role: .server(name: core.serverName), verifier: core.config.verifier)
        let (core, alpn, certificateRequest) = (self.core, self.alpn, self.certificateRequest)
        return try verifyPeerOrPause(request, side: .client) { (peer) in
            .client(
                .expectCertificateVerify(
                    ExpectServerCertificateVerify(
                        core: core, transcript: transcript, alpn: alpn,
                        certificateRequest: certificateRequest, peerChain: chain, peer: peer)))
        }
    }
}
