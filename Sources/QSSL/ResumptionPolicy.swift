import QSSLWire

// The trust half of every resumption decision, for both sides and both versions, in one place.
//
// A session remembers who its peer proved to be on the full handshake. That proof was checked
// under the trust policy in force then: the server's client-authentication policy and client
// trust anchors, the client's server verifier (roots, PQ-only chains, revocation). A resumption
// skips the certificate, so it must not outlive that policy: a session records the policy's
// binding when it is made and is resumed only where the binding in force is the same, after the
// stored leaf is checked again for expiry and revocation (`CertificateVerifier.checkResumedPeer`).
// Anything else is a full handshake, never an error (PROTOCOL.md §4).

/// Whether a session may be resumed (a server) or offered (a client): the one decision every
/// resumption path makes, TLS 1.3 tickets and TLS 1.2 session IDs and tickets alike. What is
/// left to each path is the fit to its own handshake (suite, secret length, ticket age, extended
/// master secret), which it checks before asking this.
struct ResumptionPolicy {
    enum Side {
        case server(ServerConfiguration)
        case client(ClientConfiguration)
    }
    let side: Side
    /// The name of this handshake (a server: the client's SNI; a client: the name it connects to).
    let serverName: String?
    let now: UInt64

    /// The first byte of every binding, so that its layout can change.
    static let bindingFormat: UInt8 = 1

    /// A server resuming under `config` for a ClientHello naming `serverName`.
    static func server(_ config: ServerConfiguration, serverName: String?) -> ResumptionPolicy {
        ResumptionPolicy(side: .server(config), serverName: serverName, now: config.clock.nowMilliseconds())
    }

    /// A client offering sessions under `config` to `serverName`.
    static func client(_ config: ClientConfiguration, serverName: String?) -> ResumptionPolicy {
        ResumptionPolicy(side: .client(config), serverName: serverName, now: config.clock.nowMilliseconds())
    }

    /// Whether `state` may be resumed (offered) in a `version` handshake: of that version, enabled
    /// here, for the same name, within its lifetime (a server: and within the lifetime configured
    /// now), with an ML-KEM part under the PQ policy (PROTOCOL.md §4: a classical session is never
    /// resumed), and under the same trust policy (last: it may parse the stored certificate).
    func admits(_ state: SessionState, version: ProtocolVersion) -> Bool {
        let versions: [ProtocolVersion]
        let requirePostQuantum: Bool
        switch side {
        case .server(let config): (versions, requirePostQuantum) = (config.versions, config.requirePostQuantum)
        case .client(let config): (versions, requirePostQuantum) = (config.versions, config.requirePostQuantum)
        }
        guard state.version == version, versions.contains(version), state.serverName == serverName, state.isValid(at: now),
            !requirePostQuantum || state.usedPostQuantumKeyExchange
        else { return false }
        switch side {
        case .server(let config): return Self.serverLifetimeAllows(state, config: config, now: now) && Self.serverMayResume(state, config: config)
        case .client(let config): return Self.clientMayOffer(state, config: config, serverName: serverName)
        }
    }

    /// What sessions a server issues under `config` record: the client-authentication policy
    /// and, when clients are asked for certificates, the client verifier's digest.
    static func binding(_ config: ServerConfiguration) -> [UInt8] {
        var binding: [UInt8] = [bindingFormat, 0x53]  // "S"
        switch config.clientAuthentication {
        case .required: binding.append(2)
        case .optional: binding.append(1)
        default: binding.append(0)
        }
        if config.clientAuthentication != .none, let verifier = config.clientCertificateVerifier {
            binding += bounded(verifier.trustPolicyDigest, config.provider.primitives)
        }
        return binding
    }

    /// A verifier's digest as it goes into a binding: a long one (a custom verifier's) is hashed,
    /// so that a binding always fits a session's 255-byte field.
    static func bounded(_ digest: [UInt8], _ primitives: any CryptoPrimitives) -> [UInt8] {
        digest.count <= 64 ? digest : primitives.hash(.sha256, digest)
    }

    /// A server: whether `state` is within the lifetime configured now as well as its own (a
    /// server whose `sessionLifetimeSeconds` was shortened does not honour older, longer ones).
    private static func serverLifetimeAllows(_ state: SessionState, config: ServerConfiguration, now: UInt64) -> Bool {
        let lifetime = UInt64(min(state.lifetimeSeconds, config.sessionLifetimeSeconds)) * 1000
        return now >= state.createdAt && now - state.createdAt < lifetime
    }

    /// What sessions a client keeps under `config` record: its server verifier's digest, and
    /// whether names were checked.
    static func binding(_ config: ClientConfiguration) -> [UInt8] {
        [bindingFormat, 0x43, config.dangerouslySkipServerNameVerification ? 1 : 0]  // "C"
            + bounded(config.verifier.trustPolicyDigest, config.provider.primitives)
    }

    /// A server: whether `state` may be resumed under `config` as far as trust goes. A session
    /// made under another policy, one without a client certificate where one is now required,
    /// or one whose client certificate has since expired or been revoked is not.
    private static func serverMayResume(_ state: SessionState, config: ServerConfiguration) -> Bool {
        guard state.trustBinding == binding(config) else { return false }
        guard let identity = state.peerIdentity else {
            // The identity is never upgraded by a resumption.
            return config.clientAuthentication != .required
        }
        guard config.clientAuthentication != .none, let verifier = config.clientCertificateVerifier else { return false }
        do { try verifier.checkResumedPeer(identity, role: .client) } catch { return false }
        return true
    }

    /// A client: whether `state` may be offered to `serverName` under `config` as far as trust
    /// goes. A session without the server's identity (every full handshake authenticates the
    /// server) is never offered.
    private static func clientMayOffer(_ state: SessionState, config: ClientConfiguration, serverName: String?) -> Bool {
        guard state.trustBinding == binding(config), let identity = state.peerIdentity else { return false }
        do { try config.verifier.checkResumedPeer(identity, role: .server(name: serverName)) } catch { return false }
        return true
    }

    /// Appended to a client's session-store keys, so that configurations with different
    /// verifiers sharing one store (copies of a configuration) never take each other's sessions.
    static func storeTag(_ config: ClientConfiguration) -> String {
        let digest = config.provider.primitives.hash(.sha256, binding(config))
        return "#t" + hexString(digest.prefix(8))
    }
}

/// Lowercase hex, two digits a byte.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
