import QSSLWire

/// TLS 1.2 server handshake after its first flight.
enum TLS12ServerState {
    /// After a CertificateRequest: the client's Certificate, possibly empty (RFC 5246 §7.4.6).
    case expectCertificate(TLS12ServerHandshake)
    /// With the client's verified chain, or the policy's leave to go on without one.
    case expectClientKeyExchange(TLS12ServerHandshake, TLS12ClientCertificate)
    /// RFC 5246 §7.4.8: the client's proof of its key, right after ClientKeyExchange.
    case expectCertificateVerify(TLS12ServerKeyExchanged, VerifiedPeer)
    case finishing(TLS12ServerFinishingState)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectCertificate(let hs):
            return try hs.processClientCertificate(message)
        case .expectClientKeyExchange(let hs, let certificate):
            let exchanged = try hs.processClientKeyExchange(message, clientChain: certificate.chain, context: &context)
            switch certificate {
            case .verified(let peer, _): return .server12(.expectCertificateVerify(exchanged, peer))
            case .none(let permitted): return .server12(.finishing(.expectChangeCipherSpec(exchanged.finishing(.anonymous(permitted)))))
            }
        case .expectCertificateVerify(let exchanged, let peer):
            return .server12(.finishing(.expectChangeCipherSpec(try exchanged.processClientCertificateVerify(message, peer: peer))))
        case .finishing(let state):
            switch try state.handle(message, context: &context) {
            case .next(let next): return .server12(.finishing(next))
            case .traffic(let traffic): return .traffic(traffic)
            }
        }
    }

    func handleChangeCipherSpec(context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        guard case .finishing(let state) = self else { throw .misbehaved(.sentUnexpectedChangeCipherSpec) }
        return .server12(.finishing(try state.handleChangeCipherSpec(context: &context)))
    }
}

/// The client's certificate, as far as a TLS 1.2 server knows before ClientKeyExchange.
enum TLS12ClientCertificate {
    /// Its chain verified; its CertificateVerify follows ClientKeyExchange.
    case verified(VerifiedPeer, chain: [[UInt8]])
    /// None (not requested, or an empty Certificate), which the policy allows.
    case none(AnonymousClientPermitted)

    /// The chain the client sent (for the summary), empty without one.
    var chain: [[UInt8]] {
        switch self {
        case .verified(_, let chain): return chain
        case .none: return []
        }
    }
}
