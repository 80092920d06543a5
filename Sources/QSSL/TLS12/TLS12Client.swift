import QSSLWire

// The TLS 1.2 client handshake up to ClientKeyExchange and CertificateVerify.

/// TLS 1.2 client handshake (RFC 5246 §7.3), one case per message awaited.
enum TLS12ClientState {
    case expectCertificate(TLS12ClientHandshake)
    /// The server announced a staple (status_request in ServerHello): CertificateStatus, or —
    /// a server may still send none (RFC 6066 §8) — ServerKeyExchange.
    case expectCertificateStatusOrServerKeyExchange(TLS12ClientHandshake)
    case expectServerKeyExchange(TLS12ClientHandshake, VerifiedPeer)
    case expectCertificateRequestOrServerHelloDone(TLS12ClientHandshake, TLS12ClientKeyShare)
    case expectServerHelloDone(TLS12ClientHandshake, TLS12ClientKeyShare)
    case finishing(TLS12ClientFinishingState)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectCertificate(var hs):
            let request = try hs.processCertificate(message)
            if hs.expectsCertificateStatus { return .client12(.expectCertificateStatusOrServerKeyExchange(hs)) }
            let handshake = hs
            return try verifyPeerOrPause(request, side: .client) { .client12(.expectServerKeyExchange(handshake, $0)) }
        case .expectCertificateStatusOrServerKeyExchange(var hs):
            var staple: [UInt8]?
            if message.type == .certificateStatus {
                staple = try message.require(CertificateStatus.self).ocspResponse
                hs.transcript.append(message)
            }
            let request = PeerVerificationRequest(
                chain: hs.peerChain, stapledOCSPResponse: staple, role: .server(name: hs.serverName),
                verifier: hs.config.verifier)
            let handshake = hs
            // Without a CertificateStatus, this message is the ServerKeyExchange: handled once the peer is verified.
            let held = staple == nil ? message : nil
            let verified = { (peer: VerifiedPeer, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase in
                guard let held else { return .client12(.expectServerKeyExchange(handshake, peer)) }
                return try TLS12ClientState.expectServerKeyExchange(handshake, peer).handle(held, context: &context)
            }
            guard request.verifier.isSynchronous else { return .paused(.verification(request, side: .client, then: verified)) }
            return try verified(try verifyPeerInPlace(request), &context)
        case .expectServerKeyExchange(var hs, let peer):
            let share = try hs.processServerKeyExchange(message, peer: peer, context: &context)
            return .client12(.expectCertificateRequestOrServerHelloDone(hs, share))
        case .expectCertificateRequestOrServerHelloDone(var hs, let share):
            if message.type == .certificateRequest {
                hs.certificateRequest = ClientCertificateRequest(try message.require(TLS12CertificateRequest.self))
                hs.transcript.append(message)
                return .client12(.expectServerHelloDone(hs, share))
            }
            return try hs.processServerHelloDone(message, share: share, context: &context)
        case .expectServerHelloDone(let hs, let share):
            return try hs.processServerHelloDone(message, share: share, context: &context)
        case .finishing(let state):
            switch try state.handle(message, context: &context) {
            case .next(let next): return .client12(.finishing(next))
            case .traffic(let traffic): return .traffic(traffic)
            }
        }
    }

    func handleChangeCipherSpec(context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        guard case .finishing(let state) = self else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
        return .client12(.finishing(try state.handleChangeCipherSpec(context: &context)))
    }
}

extension ExpectServerHello {
    /// RFC 5246 §7.4.1.3 and RFC 8446 §4.1.3: a ServerHello without supported_versions.
    func processTLS12ServerHello(_ hello: ServerHello, _ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TLS12ClientState {
        if config.versions.contains(.tls13) {
            // A 1.3-capable client must refuse a downgrade the server marked.
            let tail = Array(hello.random.suffix(8))
            if tail == ServerHello.downgradeTLS12 || tail == ServerHello.downgradeTLS11 { throw .misbehaved(.sentDowngradeSentinel) }
        }
        guard config.versions.contains(.tls12), hello.legacyVersion == .tls12 else {
            throw .incompatible(.noCommonVersion, "server selected \(hello.legacyVersion)")
        }
        // In TLS 1.2 the session ID is the server's choice (RFC 5246 §7.4.1.3); it matters only on resumption.
        guard clientHello.cipherSuites.contains(hello.cipherSuite), let suite = TLS12CipherSuite.named(hello.cipherSuite) else {
            throw .misbehaved(.selectedUnofferedCipherSuite, "\(hello.cipherSuite)")
        }
        guard hello.legacyCompressionMethod == 0 else { throw .misbehaved(.sentNonZeroCompression) }
        try checkServerExtensions(
            hello.extensions, offered: offeredExtensions,
            permitted: [
                .serverName, .ecPointFormats, .extendedMasterSecret, .renegotiationInfo, .alpn, .sessionTicket,
                .statusRequest
            ],
            message: "ServerHello")
        // RFC 5746 §3.4: on an initial handshake the server's renegotiated_connection is empty.
        if let reneg = hello.extensions[.renegotiationInfo], reneg != [0] {
            throw .incompatible(.secureRenegotiationFailed, "non-empty renegotiation_info on an initial handshake")
        }
        let ems = hello.extensions.contains(.extendedMasterSecret)
        // PROTOCOL.md §3: the hybrid suites require extended master secret.
        if suite.isHybrid && !ems { throw .incompatible(.extendedMasterSecretRequired, "hybrid suite without extended master secret") }
        if config.requirePostQuantum && !suite.isHybrid {
            throw .incompatible(.postQuantumKeyExchangeRequired, "server selected \(suite.suite.tls12Name ?? "\(suite.suite)")")
        }
        var alpn: String?
        if let data = hello.extensions[.alpn] {
            let list = try decodeExtension { () throws(DecodeError) in try ExtensionBody.alpn(data) }
            guard list.count == 1, config.alpnProtocols.contains(list[0]) else { throw .misbehaved(.selectedUnofferedApplicationProtocol) }
            alpn = list[0]
        }
        var transcript = self.transcript
        transcript.append(message)
        let expectsTicket = hello.extensions.contains(.sessionTicket)
        let prf = TLS12PRF(primitives: context.primitives, hash: suite.hash)
        // RFC 5246 §7.4.1.3, RFC 5077 §3.4: the server echoing our session ID resumes the session
        // we offered; it cannot resume one we did not (our ID may be a random one for middleboxes).
        if !hello.legacySessionIDEcho.isEmpty && hello.legacySessionIDEcho == clientHello.legacySessionID {
            guard let session = tls12Session else { throw .misbehaved(.resumedUnofferedSession, "the ServerHello echoes a session ID we did not offer") }
            let state = session.state
            guard hello.cipherSuite == state.cipherSuite else {
                throw .misbehaved(.changedSessionParametersOnResumption, "resumed with \(suite.suite.tls12Name ?? "another suite")")
            }
            // RFC 7627 §5.3: the client aborts when EMS differs from the session's.
            guard ems == state.extendedMasterSecret else {
                throw .incompatible(.extendedMasterSecretRequired, "extended master secret differs from the resumed session's")
            }
            let keys = TLS12KeyBlock(prf: prf, masterSecret: state.secret, clientRandom: clientHello.random, serverRandom: hello.random, suite: suite)
            let summary = HandshakeSummary(
                version: .tls12, cipherSuite: suite.suite, group: state.group, peerSignatureScheme: nil, localSignatureScheme: nil,
                helloRetryRequest: false, resumed: true, peerCertificates: [], alpnProtocol: alpn, serverName: serverName)
            let keep = TLS12ClientSessionKeeping(
                config: config, key: sessionKey, state: state, sessionID: session.sessionID,
                offeredTicket: session.ticket, expectsTicket: expectsTicket)
            return .finishing(
                .expectChangeCipherSpec(
                    TLS12ClientFinishing(
                        keys: TLS12FinishedKeys(suite: suite, prf: prf, masterSecret: state.secret, keys: keys), transcript: transcript, summary: summary,
                        server: .resumption(ResumptionAccepted(echoed: session)), respondsWithFinished: true, session: keep)))
        }
        return .expectCertificate(
            TLS12ClientHandshake(
                config: config, serverName: serverName, suite: suite, prf: prf,
                clientRandom: clientHello.random, serverRandom: hello.random, transcript: transcript, extendedMasterSecret: ems, alpn: alpn,
                sessionID: hello.legacySessionIDEcho, expectsTicket: expectsTicket, sessionKey: sessionKey,
                expectsCertificateStatus: hello.extensions.contains(.statusRequest)))
    }
}

/// The client's key exchange answer, computed from ServerKeyExchange and sent after ServerHelloDone.
struct TLS12ClientKeyShare {
    let group: NamedGroup
    let exchange: [UInt8]
    let secret: SecretBytes
    /// The ServerKeyExchange signature verified with the certified key.
    let proof: PeerSignatureVerified
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
    var peerChain: [[UInt8]] = []
    var peerScheme: SignatureScheme?
    var certificateRequest: ClientCertificateRequest?

    mutating func processCertificate(_ message: HandshakeMessage) throws(TLSError) -> PeerVerificationRequest {
        let certificate = try message.require(TLS12Certificate.self)
        guard !certificate.certificates.isEmpty else { throw .misbehaved(.sentEmptyCertificateChain) }
        peerChain = certificate.certificates
        transcript.append(message)
        return PeerVerificationRequest(chain: peerChain, role: .server(name: serverName), verifier: config.verifier)
    }

    /// RFC 8422 §5.4 / PROTOCOL.md §3: check the group and the signature, then answer the share.
    mutating func processServerKeyExchange(_ message: HandshakeMessage, peer: VerifiedPeer, context: inout HandshakeContext) throws(TLSError)
        -> TLS12ClientKeyShare
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
            try PeerSignatureVerified(signature: ske.signature, scheme: ske.scheme, content: content, peer: peer)
        }
        peerScheme = ske.scheme
        // The server owns the key pair here; the client answers as a TLS 1.3 server would.
        let (exchange, secret) = try context.measure("key exchange \(ske.group)") { () throws(TLSError) in try kx.respond(toClientShare: ske.publicValue) }
        transcript.append(message)
        return TLS12ClientKeyShare(group: ske.group, exchange: exchange, secret: secret, proof: proof)
    }

    /// [Certificate], ClientKeyExchange, [CertificateVerify — pausing for an asynchronous key],
    /// ChangeCipherSpec, Finished (RFC 5246 §7.3).
    func processServerHelloDone(_ message: HandshakeMessage, share: TLS12ClientKeyShare, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
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
            version: .tls12, cipherSuite: suite.suite, group: share.group, peerSignatureScheme: hs.peerScheme, localSignatureScheme: signedWith,
            helloRetryRequest: false, resumed: false, peerCertificates: hs.peerChain, alpnProtocol: hs.alpn, serverName: hs.serverName)
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
