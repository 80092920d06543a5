import QSSLWire

/// The client's chain verified: its CertificateVerify, the proof it holds the certified key.
struct ExpectClientCertificateVerify {
    let core: ServerHandshakeCore
    let transcript: Transcript
    let clientChain: [[UInt8]]
    let peer: VerifiedPeer

    /// RFC 8446 §4.4.3: the client's signature over the transcript through its Certificate.
    func handle(_ message: HandshakeMessage) throws(TLSError) -> ExpectClientFinished {
        let verify = try message.require(CertificateVerify.self)
        guard core.config.clientCertificateVerifier?.supportedSchemes.contains(verify.scheme) == true else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)")
        }
        let content = certificateVerifyContent(server: false, transcriptHash: transcript.hash(core.hkdf))
        let verified = try PeerSignatureVerified(signature: verify.signature, scheme: verify.scheme, content: content, peer: peer, reading: .strict)
        var transcript = self.transcript
        transcript.append(message)
        return ExpectClientFinished(core: core, transcript: transcript, clientChain: clientChain, client: .certificate(verified))
    }
}
