import QSSLWire

// The TLS 1.2 server after its flight: the client's Certificate and ClientKeyExchange.

/// The TLS 1.2 flight up to Certificate, waiting for the ServerKeyExchange signature.
struct TLS12ServerAwaitingSignature {
    let negotiation: TLS12ServerNegotiation
    let plan: TLS12SessionPlan
    let config: ServerConfiguration
    let clientRandom: [UInt8]
    let serverRandom: [UInt8]
    let publicValue: [UInt8]
    let pending: any PendingKeyExchange
    let transcript: Transcript
    let request: SignatureRequest

    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) -> TLS12ServerState {
        let n = negotiation
        var transcript = self.transcript
        try context.send(
            ServerKeyExchange(group: n.group, publicValue: publicValue, scheme: n.scheme, signature: signature),
            transcript: &transcript)
        let requestsCertificate = config.clientAuthentication != .none
        if requestsCertificate, let verifier = config.clientCertificateVerifier {
            // RFC 5246 §7.4.4 / RFC 8422 §5.5: ecdsa_sign and rsa_sign, the schemes we verify.
            let schemes = verifier.supportedSchemes.filter { tls12ClientSignatureAllowed($0, suite: n.suite) }
            try context.send(
                TLS12CertificateRequest(certificateTypes: [64, 1], schemes: schemes, authorities: verifier.acceptableIssuerNames),
                transcript: &transcript)
        }
        try context.send(ServerHelloDone(), transcript: &transcript)
        let handshake = TLS12ServerHandshake(
            negotiation: n, plan: plan, config: config, prf: TLS12PRF(primitives: context.primitives, hash: n.suite.hash), clientRandom: clientRandom,
            serverRandom: serverRandom, pending: pending, transcript: transcript)
        if requestsCertificate { return .expectCertificate(handshake) }
        return .expectClientKeyExchange(
            handshake,
            .none(
                try AnonymousClientPermitted(
                    policy: config.clientAuthentication, refusal: .crypto("a certificate is required but none was requested"))))
    }
}

struct TLS12ServerHandshake {
    let negotiation: TLS12ServerNegotiation
    let plan: TLS12SessionPlan
    let config: ServerConfiguration
    let prf: TLS12PRF
    let clientRandom: [UInt8]
    let serverRandom: [UInt8]
    let pending: any PendingKeyExchange
    var transcript: Transcript

    /// The client's Certificate: empty (refused if required), or verified (in place or through
    /// the verify-peer pause) with the client-certificate policy.
    func processClientCertificate(_ message: HandshakeMessage) throws(TLSError) -> ConnectionPhase {
        let certificate = try message.require(TLS12Certificate.self)
        var hs = self
        hs.transcript.append(message)
        guard !certificate.certificates.isEmpty else {
            // An empty Certificate: refused unless the policy lets a client through without one.
            return .server12(
                .expectClientKeyExchange(
                    hs,
                    .none(
                        try AnonymousClientPermitted(
                            policy: config.clientAuthentication, refusal: .incompatible(.clientCertificateRequiredTLS12, "the client sent no certificate")))))
        }
        guard let verifier = config.clientCertificateVerifier else { throw .misbehaved(.sentUnexpectedMessage) }
        let chain = certificate.certificates
        let request = PeerVerificationRequest(chain: chain, role: .client, verifier: verifier)
        let handshake = hs
        return try verifyPeerOrPause(request, side: .server) { .server12(.expectClientKeyExchange(handshake, .verified($0, chain: chain))) }
    }

    /// RFC 8422 §5.7 / PROTOCOL.md §3: the client's point (and ML-KEM ciphertext), then the keys.
    func processClientKeyExchange(
        _ message: HandshakeMessage, clientChain: [[UInt8]], context: inout HandshakeContext
    ) throws(TLSError) -> TLS12ServerKeyExchanged {
        guard message.type == .clientKeyExchange else {
            throw .misbehaved(.sentUnexpectedMessage, "expected ClientKeyExchange, got \(message.type)")
        }
        let n = negotiation
        let cke: ClientKeyExchange
        do { cke = try ClientKeyExchange.decode(message, hybrid: n.suite.isHybrid) } catch { throw .decode(error) }
        let secret = try pending.complete(serverShare: cke.exchange)
        var transcript = self.transcript
        transcript.append(message)
        let pms = tls12PreMasterSecret(secret, hybrid: n.suite.isHybrid, primitives: context.primitives)
        let sessionHash = n.extendedMasterSecret ? context.primitives.hash(n.suite.hash, transcript.bytes) : nil
        let master = prf.masterSecret(preMasterSecret: pms, sessionHash: sessionHash, clientRandom: clientRandom, serverRandom: serverRandom)
        let keys = TLS12KeyBlock(prf: prf, masterSecret: master, clientRandom: clientRandom, serverRandom: serverRandom, suite: n.suite)
        let summary = HandshakeSummary(
            version: .tls12, cipherSuite: n.suite.suite, group: n.group, peerSignatureScheme: nil, localSignatureScheme: n.scheme,
            helloRetryRequest: false, resumed: false, peerCertificates: clientChain, alpnProtocol: n.names.alpn, serverName: n.names.serverName)
        let now = config.clock.nowMilliseconds()
        let session = SessionState(
            version: .tls12, cipherSuite: n.suite.suite, group: n.group, extendedMasterSecret: n.extendedMasterSecret,
            serverName: n.names.serverName, alpnProtocol: n.names.alpn, secret: master, createdAt: now, issuedAt: now,
            lifetimeSeconds: config.sessionLifetimeSeconds, peerIdentity: nil, trustBinding: ResumptionPolicy.binding(config))
        return TLS12ServerKeyExchanged(
            keys: TLS12FinishedKeys(suite: n.suite, prf: prf, masterSecret: master, keys: keys), transcript: transcript,
            summary: summary, session: TLS12ServerSessionIssue(plan: plan, state: session, config: config),
            clientCertificateVerifier: config.clientCertificateVerifier)
    }
}

/// RFC 8422 §5.1: in TLS 1.2 the curve of an ECDSA certificate must be one the client listed
/// in supported_groups (signature_algorithms names only the hash). OpenSSL and tlslite-ng
/// enforce this. The hybrid suites are Q-SSL's own and exempt.
func certificateCurveAllowed(_ scheme: SignatureScheme, _ clientGroups: [NamedGroup]) -> Bool {
    switch scheme {
    case .ecdsaSecp256r1SHA256: return clientGroups.contains(.secp256r1)
    case .ecdsaSecp384r1SHA384: return clientGroups.contains(.secp384r1)
    case .ecdsaSecp521r1SHA512: return clientGroups.contains(.secp521r1)
    default: return true
    }
}
