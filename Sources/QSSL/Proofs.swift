import QSSLWire

// Capability tokens shared by both sides and both versions. Each is made only here, by the
// check it stands for; the traffic state stores them, so no path reaches application data
// without the peer's Finished checked and, where it authenticated, its signature verified.

/// The peer's Finished verify_data matched ours, compared in constant time.
struct FinishedVerified {
    init(expected: [UInt8], received: [UInt8]) throws(TLSError) {
        // A Finished of the wrong length is malformed (decode_error), decided before any
        // comparison of the MAC (RFC 8446 §4.4.4: verify_data is Hash.length bytes).
        guard received.count == expected.count else {
            throw .decode(.lengthOutOfRange(field: "Finished.verify_data", length: received.count))
        }
        guard constantTimeEquals(expected, received) else { throw .misbehaved(.sentWrongFinished) }
    }
}

/// The peer's chain was verified and it signed the handshake with the certified key: TLS 1.3
/// CertificateVerify or the TLS 1.2 ServerKeyExchange.
struct PeerSignatureVerified {
    let identity: PeerIdentity

    init(signature: [UInt8], scheme: SignatureScheme, content: [UInt8], peer: VerifiedPeer) throws(TLSError) {
        try peer.publicKey.verify(signature: signature, scheme: scheme, message: content)
        var identity = peer.identity
        identity.handshakeSignatureScheme = scheme
        // PROTOCOL.md §2: a composite signature verifies only when both halves do.
        identity.verifiedSignatureComponents = scheme == .qsslMLDSA65ECDSASecp384r1SHA512 ? ["ML-DSA-65", "ECDSA-P384"] : ["\(scheme)"]
        self.identity = identity
    }
}

/// How the peer stands when application data may flow.
enum PeerAuthentication {
    /// Certified and proved possession of its key.
    case authenticated(PeerSignatureVerified)
    /// Proved knowledge of a resumed session's PSK; who it is comes from that session's full
    /// handshake (nil when it was not asked to authenticate then).
    case resumed(ResumptionAccepted)
    /// Not asked to authenticate (a client, when the server does not request certificates).
    case notRequested

    var identity: PeerIdentity? {
        switch self {
        case .authenticated(let proof): return proof.identity
        case .resumed(let proof): return proof.identity
        case .notRequested: return nil
        }
    }
}
