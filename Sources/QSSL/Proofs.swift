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

    /// How a signature scheme is read.
    enum SchemeReading {
        /// TLS 1.3 (and Q-SSL's hybrid TLS 1.2 suites): the scheme must suit the key exactly.
        case strict
        /// TLS 1.2 (`PeerPublicKey.verifyTLS12`): an ECDSA code point names the hash only. The
        /// key's own kind must still be one we accept (one of its exact schemes is in
        /// `accepting`), so a list without ecdsa_secp256r1_sha256 still refuses P-256 keys.
        case tls12(accepting: [SignatureScheme])
    }

    init(signature: [UInt8], scheme: SignatureScheme, content: [UInt8], peer: VerifiedPeer, reading: SchemeReading) throws(TLSError) {
        switch reading {
        case .strict:
            try peer.publicKey.verify(signature: signature, scheme: scheme, message: content)
        case .tls12(let accepting):
            guard peer.publicKey.supportedSchemes.contains(where: accepting.contains) else {
                throw .misbehaved(.usedUnofferedSignatureScheme, "the certificate's key suits none of the schemes we accept")
            }
            try peer.publicKey.verifyTLS12(signature: signature, scheme: scheme, message: content)
        }
        var identity = peer.identity
        identity.handshakeSignatureScheme = scheme
        // PROTOCOL.md §2: a composite signature verifies only when both halves do.
        identity.verifiedSignatureComponents = scheme == .qsslMLDSA65ECDSASecp384r1SHA512 ? ["ML-DSA-65", "ECDSA-P384"] : ["\(scheme)"]
        self.identity = identity
    }
}

/// How the server stands with a client when application data may flow. A client reaches
/// traffic only with one of these.
enum ServerAuthenticated {
    /// Its certificate verified and its handshake signature checked with the certified key.
    case certificate(PeerSignatureVerified)
    /// It selected the PSK we offered: its Finished, keyed by that PSK, is what proves it, and
    /// who it is comes from the session's full handshake.
    case resumption(ResumptionAccepted)

    var identity: PeerIdentity? {
        switch self {
        case .certificate(let proof): return proof.identity
        case .resumption(let proof): return proof.identity
        }
    }
}

/// How a client stands with a server when application data may flow.
enum ClientAuthenticated {
    /// Its certificate verified and its CertificateVerify checked.
    case certificate(PeerSignatureVerified)
    /// It proved knowledge of a resumed session's PSK; who it is comes from that session (nil
    /// when it was not asked to authenticate then).
    case resumption(ResumptionAccepted)
    /// Not authenticated, which only a policy that does not require it lets through.
    case anonymous(AnonymousClientPermitted)

    var identity: PeerIdentity? {
        switch self {
        case .certificate(let proof): return proof.identity
        case .resumption(let proof): return proof.identity
        case .anonymous: return nil
        }
    }
}

/// The server's policy lets a client without a certificate through. The only way to make one
/// is the check: under a policy that requires a certificate it throws `refusal`
/// (certificate_required in TLS 1.3, handshake_failure in TLS 1.2).
struct AnonymousClientPermitted {
    init(policy: ClientAuthenticationPolicy, refusal: @autoclosure () -> TLSError) throws(TLSError) {
        guard policy != .required else { throw refusal() }
    }
}

/// A client that answered a post-handshake CertificateRequest (RFC 8446 §4.6.2): its Finished
/// over that exchange checked, with the proof of its certificate's key if it sent one.
struct PostHandshakeClientAuthenticated {
    let finished: FinishedVerified
    let signature: PeerSignatureVerified?
    var identity: PeerIdentity? { signature?.identity }
}

/// Who the peer proved to be, by side: what the traffic state is built from.
enum PeerAuthenticated {
    /// A client's view of the server.
    case server(ServerAuthenticated)
    /// A server's view of the client.
    case client(ClientAuthenticated)

    var identity: PeerIdentity? {
        switch self {
        case .server(let s): return s.identity
        case .client(let c): return c.identity
        }
    }
}
