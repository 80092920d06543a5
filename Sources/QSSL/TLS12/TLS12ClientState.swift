import QSSLWire

// The TLS 1.2 client's states: one case per message awaited, each holding what is valid at that step.

/// TLS 1.2 client handshake (RFC 5246 §7.3), one case per message awaited.
enum TLS12ClientState {
    case expectCertificate(TLS12ClientHandshake)
    /// The server announced a staple (status_request in ServerHello): CertificateStatus, or —
    /// a server may still send none (RFC 6066 §8) — ServerKeyExchange. Holds the server's chain,
    /// not yet verified.
    case expectCertificateStatusOrServerKeyExchange(TLS12ClientHandshake, chain: [[UInt8]])
    /// The chain verified: its key checks the ServerKeyExchange signature.
    case expectServerKeyExchange(TLS12ClientHandshake, VerifiedPeer, chain: [[UInt8]])
    case expectCertificateRequestOrServerHelloDone(TLS12ClientHandshake, TLS12ClientKeyShare)
    /// The server asked for a client certificate.
    case expectServerHelloDone(TLS12ClientHandshake, TLS12ClientKeyShare, ClientCertificateRequest)
    case finishing(TLS12ClientFinishingState)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectCertificate(var hs):
            let request = try hs.processCertificate(message)
            let chain = request.chain
            if hs.expectsCertificateStatus { return .client12(.expectCertificateStatusOrServerKeyExchange(hs, chain: chain)) }
            let handshake = hs
            return try verifyPeerOrPause(request, side: .client) { .client12(.expectServerKeyExchange(handshake, $0, chain: chain)) }
        case .expectCertificateStatusOrServerKeyExchange(var hs, let chain):
            var staple: [UInt8]?
            if message.type == .certificateStatus {
                staple = try message.require(CertificateStatus.self).ocspResponse
                hs.transcript.append(message)
            }
            let request = PeerVerificationRequest(
                chain: chain, stapledOCSPResponse: staple, role: .server(name: hs.serverName),
                verifier: hs.config.verifier)
            let handshake = hs
            // Without a CertificateStatus, this message is the ServerKeyExchange: handled once the peer is verified.
            let held = staple == nil ? message : nil
            let verified = { (peer: VerifiedPeer, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase in
                guard let held else { return .client12(.expectServerKeyExchange(handshake, peer, chain: chain)) }
                return try TLS12ClientState.expectServerKeyExchange(handshake, peer, chain: chain).handle(held, context: &context)
            }
            guard request.verifier.isSynchronous else { return .paused(.verification(request, side: .client, then: verified)) }
            return try verified(try verifyPeerInPlace(request), &context)
        case .expectServerKeyExchange(var hs, let peer, let chain):
            let share = try hs.processServerKeyExchange(message, peer: peer, chain: chain, context: &context)
            return .client12(.expectCertificateRequestOrServerHelloDone(hs, share))
        case .expectCertificateRequestOrServerHelloDone(var hs, let share):
            if message.type == .certificateRequest {
                let request = ClientCertificateRequest(try message.require(TLS12CertificateRequest.self))
                hs.transcript.append(message)
                return .client12(.expectServerHelloDone(hs, share, request))
            }
            return try hs.processServerHelloDone(message, share: share, certificateRequest: nil, context: &context)
        case .expectServerHelloDone(let hs, let share, let request):
            return try hs.processServerHelloDone(message, share: share, certificateRequest: request, context: &context)
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
