import QSSLWire

/// After ServerHello: the server's EncryptedExtensions, under its handshake keys.
struct ExpectEncryptedExtensions {
    let core: ClientHandshakeCore
    var transcript: Transcript
    /// The offered PSK the server selected: no certificate follows (RFC 8446 §2.2).
    let resumption: ResumptionAccepted?

    func handle(_ message: HandshakeMessage) throws(TLSError) -> ClientState {
        let ee = try message.require(EncryptedExtensions.self)
        let ext = try DecodedServerExtensions(ee.extensions, in: .encryptedExtensions, offered: core.offered)
        var alpn: String?
        if let list = ext.alpn {
            guard list.count == 1, core.config.alpnProtocols.contains(list[0]) else {
                throw .misbehaved(.selectedUnofferedApplicationProtocol, "\(list)")
            }
            alpn = list[0]
        }
        var transcript = self.transcript
        transcript.append(message)
        if let resumption {
            return .expectFinished(
                ExpectServerFinished(
                    core: core, transcript: transcript, alpn: alpn, certificateRequest: nil, peerChain: [],
                    peerScheme: nil, server: .resumption(resumption)))
        }
        return .expectCertificateOrCertificateRequest(ExpectServerCertificate(core: core, transcript: transcript, alpn: alpn, certificateRequest: nil))
    }
}
