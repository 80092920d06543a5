import QSSLWire

/// What a client offers and a server accepts, the same for both (PROTOCOL.md §1): versions,
/// key exchange groups, cipher suites, ALPN and the post-quantum requirement. Both
/// configurations embed one (`ClientConfiguration.policy`, `ServerConfiguration.policy`) and
/// expose its fields under their usual names; it is validated in one place.
public struct ProtocolPolicy: Sendable, Hashable {
    /// Versions, most preferred first (a client offers them; a server chooses the highest the
    /// client also offers).
    public var versions: [ProtocolVersion] = Defaults.versions
    /// Key exchange groups in preference order (a client: offered in supported_groups).
    public var groups: [NamedGroup] = Defaults.groups
    public var cipherSuites: [TLS13CipherSuite] = Defaults.tls13CipherSuites
    /// TLS 1.2 suites, in preference order, when `versions` includes TLS 1.2.
    public var tls12CipherSuites: [TLS12CipherSuite] = Defaults.tls12CipherSuites
    /// ALPN protocols, in preference order; empty means ALPN is not used.
    public var alpnProtocols: [String] = []
    /// Refuse any handshake whose key exchange has no ML-KEM part (insufficient_security).
    public var requirePostQuantum = false

    public init() {}

    /// The checks every configuration's policy passes before a connection is made with it.
    func validate(provider: CryptoProvider) throws(TLSError) {
        guard !groups.isEmpty else { throw .misuse("no key exchange groups configured") }
        guard !versions.isEmpty else { throw .misuse("no protocol versions configured") }
        for v in versions where v != .tls13 && v != .tls12 { throw .misuse("\(v) is not supported: Q-SSL speaks TLS 1.3 and TLS 1.2") }
        if versions.contains(.tls13) && cipherSuites.isEmpty { throw .misuse("TLS 1.3 enabled without TLS 1.3 cipher suites") }
        if versions.contains(.tls12) && tls12CipherSuites.isEmpty { throw .misuse("TLS 1.2 enabled without TLS 1.2 cipher suites") }
        for g in groups where provider.keyExchange(for: g) == nil {
            throw .misuse("group \(g) is not implemented by the crypto provider")
        }
        if requirePostQuantum && !groups.contains(where: \.isPostQuantum) {
            throw .misuse("post-quantum key exchange is required but no ML-KEM group is configured")
        }
    }

    /// This policy (a server configuration chosen for one ClientHello) within `floor` (the base
    /// configuration's): the post-quantum requirement is kept and the versions are narrowed to
    /// those the floor allows. A client naming `serverName` is refused when nothing is left.
    func within(_ floor: ProtocolPolicy, serverName: String?) throws(TLSError) -> ProtocolPolicy {
        var narrowed = self
        narrowed.requirePostQuantum = requirePostQuantum || floor.requirePostQuantum
        narrowed.versions = versions.filter(floor.versions.contains)
        guard !narrowed.versions.isEmpty else {
            throw .incompatible(.noCommonVersion, "the configuration for \(serverName ?? "this name") has no version the policy allows")
        }
        if narrowed.requirePostQuantum && !narrowed.groups.contains(where: \.isPostQuantum) {
            throw .incompatible(.postQuantumKeyExchangeRequired, "the configuration for \(serverName ?? "this name") has no ML-KEM group")
        }
        return narrowed
    }
}
