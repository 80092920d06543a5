import QSSLWire

// The TLS 1.2 client from Certificate to ServerHelloDone: the server authenticated, the key share answered.

/// The client's key exchange answer, computed from ServerKeyExchange and sent after ServerHelloDone,
/// with what authenticated the server.
struct TLS12ClientKeyShare {
    let group: NamedGroup
    let exchange: [UInt8]
    let secret: SecretBytes
    /// The ServerKeyExchange signature verified with the certified key, its scheme, and the
    /// chain that certified the key.
    let proof: PeerSignatureVerified
    let scheme: SignatureScheme
    let peerChain: [[UInt8]]
}

struct TLS12ClientHandshake {
    let config: ClientConfiguration
    let serverName: String?
    let suite: TLS12CipherSuite
    let prf: TLS12PRF
    let clientRandom: [UInt8]
    let serverRandom: [UInt8]
    var transcript: Transcript
    let extendedMasterSecret: Bool
    let alpn: String?
    /// The session ID the server assigned, and whether it announced a ticket.
    let sessionID: [UInt8]
    let expectsTicket: Bool
    let sessionKey: String
    /// RFC 6066 §8: the ServerHello's status_request announces a CertificateStatus.
    let expectsCertificateStatus: Bool

    mutating func processCertificate(_ message: HandshakeMessage) throws(TLSError) -> PeerVerificationRequest {
        let certificate = try message.require(TLS12Certificate.self)
        guard !certificate.certificates.isEmpty else { throw .misbehaved(.sentEmptyCertificateChain) }
        transcript.append(message)
        return PeerVerificationRequest(chain: certificate.certificates, role: .server(name: serverName), verifier: config.verifier)
    }

    /// RFC 8422 §5.4 / PROTOCOL.md §3: check the group and the signature, then answer the share.
    mutating func processServerKeyExchange(
        _ message: HandshakeMessage, peer: VerifiedPeer, chain: [[UInt8]], context: inout HandshakeContext
    ) throws(TLSError) -> TLS12ClientKeyShare
    {
        let ske = try message.require(ServerKeyExchange.self)
        guard config.groups.contains(ske.group), ske.group.isPostQuantum == suite.isHybrid,
            let kx = config.provider.keyExchange(for: ske.group)
        else {
            throw .misbehaved(.selectedUnofferedGroup, "\(ske.group) with \(suite.suite.tls12Name ?? "")")
        }
        guard config.verifier.supportedSchemes.contains(ske.scheme), suite.permits(ske.scheme) else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(ske.scheme)")
        }
        let content = clientRandom + serverRandom + (try encoding { () throws(EncodeError) in try ske.params() })
        let proof = try context.measure("signature check \(ske.scheme)") { () throws(TLSError) in
            try PeerSignatureVerified(
                signature: ske.signature, scheme: ske.scheme, content: content, peer: peer,
                reading: suite.isHybrid ? .strict : .tls12(accepting: config.verifier.supportedSchemes))
        }
        // The server owns the key pair here; the client answers as a TLS 1.3 server would.
        let (exchange, secret) = try context.measure("key exchange \(ske.group)") { () throws(TLSError) in try kx.respond(toClientShare: ske.publicValue) }
        transcript.append(message)
        return TLS12ClientKeyShare(group: ske.group, exchange: exchange, secret: secret, proof: proof, scheme: ske.scheme, peerChain: chain)
    }

    /// [Certificate], ClientKeyExchange, [CertificateVerify — pausing for an asynchronous key],
    /// ChangeCipherSpec, Finished (RFC 5246 §7.3).
    func processServerHelloDone(
        _ message: HandshakeMessage, share: TLS12ClientKeyShare, certificateRequest: ClientCertificateRequest?, context: inout HandshakeContext
    ) throws(TLSError) -> ConnectionPhase {
        _ = try message.require(ServerHelloDone.self)
        var transcript = self.transcript
        transcript.append(message)
        var chosen: (CertifiedKey, SignatureScheme)?
        if let request = certificateRequest {
            // RFC 5246 §7.4.6: a certificate the server accepts, or an empty Certificate.
            chosen = chooseClientCertificate(config.clientCertificates, request: request, permits: { tls12ClientSignatureAllowed($0, suite: suite) })
            try context.send(TLS12Certificate(certificates: chosen?.0.chain ?? []), transcript: &transcript)
        }
        context.send(
            try encoding { () throws(EncodeError) in try ClientKeyExchange(exchange: share.exchange).message(hybrid: suite.isHybrid) }, transcript: &transcript)
        let pms = tls12PreMasterSecret(share.secret, hybrid: suite.isHybrid, primitives: context.primitives)
        // RFC 7627 §4: the session hash covers the messages through ClientKeyExchange.
        let sessionHash = extendedMasterSecret ? context.primitives.hash(suite.hash, transcript.bytes) : nil
        let master = try context.measure("master secret (PRF)") { () throws(TLSError) in
            prf.masterSecret(preMasterSecret: pms, sessionHash: sessionHash, clientRandom: clientRandom, serverRandom: serverRandom)
        }
        let final = TLS12ClientFinal(handshake: self, share: share, master: master, transcript: transcript)
        guard let (certificate, scheme) = chosen else {
            return .client12(.finishing(.expectChangeCipherSpec(try final.finish(context: &context))))
        }
        // RFC 5246 §7.4.8: the signature covers every handshake message so far.
        let awaiting = TLS12ClientAwaitingSignature(final: final, request: SignatureRequest(message: transcript.bytes, scheme: scheme, key: certificate.key))
        guard certificate.key.isSynchronous else {
            return .paused(
                .signature(awaiting.request, side: .client) { (signature, context) throws(TLSError) in
                    .client12(.finishing(.expectChangeCipherSpec(try awaiting.complete(signature: signature, context: &context))))
                })
        }
        return .client12(
            .finishing(
                .expectChangeCipherSpec(
                    try awaiting.complete(
                        signature: try certificate.key.sign(transcript.bytes, scheme: scheme),
                        context: &context))))
    }
}

/// TLS 1.2 client-certificate signatures: the suite's authentication family does not bind the
/// client's key, but the composite scheme is defined only with the hybrid suites and pure
/// ML-DSA not at all in TLS 1.2 (PROTOCOL.md §3).
func tls12ClientSignatureAllowed(_ scheme: SignatureScheme, suite: TLS12CipherSuite) -> Bool {
    if scheme == .qsslMLDSA65ECDSASecp384r1SHA512 { return suite.isHybrid }
    return ![SignatureScheme.mldsa44, .mldsa65, .mldsa87].contains(scheme)
}
