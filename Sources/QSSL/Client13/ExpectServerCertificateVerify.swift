import QSSLWire

/// The server's chain verified: its CertificateVerify, the proof it holds the certified key.
struct ExpectServerCertificateVerify {
    let core: ClientHandshakeCore
    let transcript: Transcript
    let alpn: String?
    let certificateRequest: ClientCertificateRequest?
    let peerChain: [[UInt8]]
    let peer: VerifiedPeer

    func handle(_ message: HandshakeMessage) throws(TLSError) -> ExpectServerFinished {
        let verify = try message.require(CertificateVerify.self)
        guard core.config.verifier.supportedSchemes.contains(verify.scheme) else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)")
        }
        let content = certificateVerifyContent(server: true, transcriptHash: transcript.hash(core.hkdf))
        let verified = try PeerSignatureVerified(signature: verify.signature, scheme: verify.scheme, content: content, peer: peer, reading: .strict)
        var transcript = self.transcript
        transcript.append(message)
        return ExpectServerFinished(
            core: core, transcript: transcript, alpn: alpn, certificateRequest: certificateRequest, peerChain: peerChain,
            peerScheme: verify.scheme, server: .certificate(verified))
    }
}
