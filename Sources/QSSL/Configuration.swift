import QSSLWire
import Synchronization

/// Defaults and their reasons (PROTOCOL.md §1).
public enum Defaults {
    /// Server preference: hybrids first (strongest first), then classical.
    public static let groups: [NamedGroup] = [
        .secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768, .x25519, .secp384r1, .secp256r1
    ]
    /// Client key shares sent in the first ClientHello: the seed's hybrid, and x25519 for
    /// classical-only servers; anything else is reached by HelloRetryRequest.
    public static let clientKeyShares: [NamedGroup] = [.secp384r1MLKEM1024, .x25519]
    public static let tls13CipherSuites: [TLS13CipherSuite] = [.aes256GCMSHA384, .aes128GCMSHA256, .chaCha20Poly1305SHA256]
    public static let tls12CipherSuites: [TLS12CipherSuite] = TLS12CipherSuite.all
    /// TLS 1.3 and TLS 1.2 (with AEAD suites and extended master secret only).
    public static let versions: [ProtocolVersion] = [.tls13, .tls12]
}

/// A configuration embedding a `ProtocolPolicy`: its fields under their usual names, written
/// once for both sides.
public protocol ProtocolPolicyHolder {
    var policy: ProtocolPolicy { get set }
}

extension ProtocolPolicyHolder {
    /// Key exchange groups in preference order (a client offers them in supported_groups; a
    /// server accepts them, its order first).
    public var groups: [NamedGroup] {
        get { policy.groups }
        set { policy.groups = newValue }
    }
    /// TLS 1.3 suites in preference order.
    public var cipherSuites: [TLS13CipherSuite] {
        get { policy.cipherSuites }
        set { policy.cipherSuites = newValue }
    }
    /// TLS 1.2 suites in preference order, used when `versions` includes TLS 1.2.
    public var tls12CipherSuites: [TLS12CipherSuite] {
        get { policy.tls12CipherSuites }
        set { policy.tls12CipherSuites = newValue }
    }
    /// Versions, most preferred first (a client offers them; a server chooses the highest the
    /// client also offers).
    public var versions: [ProtocolVersion] {
        get { policy.versions }
        set { policy.versions = newValue }
    }
    /// ALPN protocols in preference order (a server's order decides); empty: not negotiated.
    public var alpnProtocols: [String] {
        get { policy.alpnProtocols }
        set { policy.alpnProtocols = newValue }
    }
    /// Refuse any handshake whose key exchange has no ML-KEM part (insufficient_security).
    public var requirePostQuantum: Bool {
        get { policy.requirePostQuantum }
        set { policy.requirePostQuantum = newValue }
    }
}

/// A configuration's fields in one reference, copied on write by the configuration. Also keeps
/// whether they passed validation: every connection validates its configuration, and
/// connections share one; any change clears it.
final class CopyOnWriteFields<Fields: Sendable>: @unchecked Sendable {
    // Unchecked: `fields` is changed only through a configuration that holds the one reference
    // (isKnownUniquelyReferenced), so never while another thread reads it.
    var fields: Fields
    let validated = Atomic(false)

    init(_ fields: Fields) {
        self.fields = fields
    }

    /// `storage` ready for a change: copied first when shared, its validation cleared.
    static func forChange(_ storage: inout CopyOnWriteFields) -> CopyOnWriteFields {
        if !isKnownUniquelyReferenced(&storage) { storage = CopyOnWriteFields(storage.fields) }
        storage.validated.store(false, ordering: .relaxed)
        return storage
    }

    /// Runs `check` unless these fields already passed it; a pass is kept.
    func validateOnce(_ check: () throws(TLSError) -> Void) throws(TLSError) {
        if validated.load(ordering: .acquiring) { return }
        try check()
        validated.store(true, ordering: .releasing)
    }
}

/// Protocol configuration of a client. One value, built once, shared by many connections.
public struct ClientConfiguration: Sendable, ProtocolPolicyHolder {
    /// The fields, kept in one copy-on-write reference (`CopyOnWriteFields`): a configuration is
    /// copied into every connection and through its handshake states, and a copy then costs
    /// one retain, not one per field.
    struct Fields: Sendable {
        var provider: CryptoProvider
        var verifier: any CertificateVerifier
        var policy: ProtocolPolicy = ProtocolPolicy()
        var keyShareGroups: [NamedGroup] = Defaults.clientKeyShares
        var middleboxCompatibility: Bool = true
        var clientCertificates: [CertifiedKey] = []
        var offerPostHandshakeAuthentication: Bool = false
        var dangerouslySkipServerNameVerification: Bool = false
        var sessionStore: (any ClientSessionStore)? = InMemoryClientSessionStore()
        var offerPSKWithoutKeyExchange: Bool = false
        var requestOCSPStaple: Bool = true
        var tls12SessionTickets: Bool = true
        var clock: any WallClock = SystemClock()
        var offerEarlyDataForTesting: Bool = false
    }
    private var storage: CopyOnWriteFields<Fields>
    /// The fields for a change: copied first when shared, and their validation cleared.
    private var mutableFields: CopyOnWriteFields<Fields> {
        mutating get { CopyOnWriteFields.forChange(&storage) }
    }

    public var provider: CryptoProvider {
        get { storage.fields.provider }
        _modify { yield &mutableFields.fields.provider }
    }
    /// Verifies the server's chain. Required unless verification is dangerously disabled.
    public var verifier: any CertificateVerifier {
        get { storage.fields.verifier }
        _modify { yield &mutableFields.fields.verifier }
    }
    /// Versions, groups, suites, ALPN and the PQ requirement offered (the same fields as a
    /// server's, forwarded below under their usual names).
    public var policy: ProtocolPolicy {
        get { storage.fields.policy }
        _modify { yield &mutableFields.fields.policy }
    }
    /// Groups for which a share is sent in the first ClientHello (a subset of `groups`).
    public var keyShareGroups: [NamedGroup] {
        get { storage.fields.keyShareGroups }
        _modify { yield &mutableFields.fields.keyShareGroups }
    }
    /// Sends a 32-byte legacy_session_id and change_cipher_spec (RFC 8446 Appendix D.4).
    public var middleboxCompatibility: Bool {
        get { storage.fields.middleboxCompatibility }
        _modify { yield &mutableFields.fields.middleboxCompatibility }
    }
    /// A client certificate, sent if the server asks for one and accepts it (a signature scheme
    /// the server listed, and an issuer among its certificate_authorities when both are known).
    public var clientCertificate: CertifiedKey? {
        get { clientCertificates.first }
        set { clientCertificates = newValue.map { [$0] } ?? [] }
    }
    /// Client certificates to choose from, in preference order.
    public var clientCertificates: [CertifiedKey] {
        get { storage.fields.clientCertificates }
        _modify { yield &mutableFields.fields.clientCertificates }
    }
    /// Offer post-handshake client authentication (RFC 8446 §4.6.2) to TLS 1.3 servers.
    public var offerPostHandshakeAuthentication: Bool {
        get { storage.fields.offerPostHandshakeAuthentication }
        _modify { yield &mutableFields.fields.offerPostHandshakeAuthentication }
    }
    /// Connect without a server name: the chain is still verified, but a certificate for ANY
    /// name is accepted. Only for tests and for peers identified some other way.
    public var dangerouslySkipServerNameVerification: Bool {
        get { storage.fields.dangerouslySkipServerNameVerification }
        _modify { yield &mutableFields.fields.dangerouslySkipServerNameVerification }
    }
    /// Where sessions the server issues are kept and offered from (PROTOCOL.md §4); nil turns
    /// resumption off. Copies of a configuration share the store (it is a class): give a
    /// configuration with another trust policy (verifier) a store of its own. Sessions are kept
    /// apart by the client certificates a configuration presents. The default keeps them in memory, shared by connections that share this
    /// configuration, keyed by server name (or the key passed to `TLSConnection.client`).
    public var sessionStore: (any ClientSessionStore)? {
        get { storage.fields.sessionStore }
        _modify { yield &mutableFields.fields.sessionStore }
    }
    /// Also offer psk_ke (resumption without a fresh key exchange, so without forward secrecy
    /// or a fresh ML-KEM part). Off by default, and never offered under `requirePostQuantum`.
    public var offerPSKWithoutKeyExchange: Bool {
        get { storage.fields.offerPSKWithoutKeyExchange }
        _modify { yield &mutableFields.fields.offerPSKWithoutKeyExchange }
    }
    /// Ask servers to staple an OCSP response (status_request, RFC 6066 §8); the verifier checks
    /// what arrives.
    public var requestOCSPStaple: Bool {
        get { storage.fields.requestOCSPStaple }
        _modify { yield &mutableFields.fields.requestOCSPStaple }
    }
    /// Ask TLS 1.2 servers for RFC 5077 tickets.
    public var tls12SessionTickets: Bool {
        get { storage.fields.tls12SessionTickets }
        _modify { yield &mutableFields.fields.tls12SessionTickets }
    }
    /// The clock for ticket ages and session lifetimes.
    public var clock: any WallClock {
        get { storage.fields.clock }
        _modify { yield &mutableFields.fields.clock }
    }
    /// Test hook: sends an early_data extension (without early data support, to see servers
    /// skip 0-RTT records).
    var offerEarlyDataForTesting: Bool {
        get { storage.fields.offerEarlyDataForTesting }
        _modify { yield &mutableFields.fields.offerEarlyDataForTesting }
    }

    public init(provider: CryptoProvider, verifier: any CertificateVerifier) {
        storage = CopyOnWriteFields(Fields(provider: provider, verifier: verifier))
    }

    func validate() throws(TLSError) {
        try storage.validateOnce { () throws(TLSError) in try policy.validate(provider: provider) }
    }
}

/// Protocol configuration of a server.
public struct ServerConfiguration: Sendable, ProtocolPolicyHolder {
    /// The fields, kept in one copy-on-write reference (`CopyOnWriteFields`): a configuration is
    /// copied into every connection and through its handshake states, and a copy then costs
    /// one retain, not one per field.
    struct Fields: Sendable {
        var provider: CryptoProvider
        var certificates: [CertifiedKey]
        var configurationSelector: (any ServerConfigurationSelector)? = nil
        var policy: ProtocolPolicy = ProtocolPolicy()
        var clientAuthentication: ClientAuthenticationPolicy = .none
        var clientCertificateVerifier: (any CertificateVerifier)? = nil
        var allowPostHandshakeAuthentication: Bool = false
        var sessionCache: (any ServerSessionCache)? = InMemorySessionCache()
        var ticketKeys: (any TicketSealer)?
        var sessionLifetimeSeconds: UInt32 = 3600
        var tls13TicketCount: Int = 2
        var acceptPSKWithoutKeyExchange: Bool = false
        var ticketAgeToleranceMilliseconds: UInt64 = 10_000
        var maxSkippedEarlyData: Int = 16 * 1024 + 256
        var clock: any WallClock = SystemClock()
    }
    private var storage: CopyOnWriteFields<Fields>
    /// The fields for a change: copied first when shared, and their validation cleared.
    private var mutableFields: CopyOnWriteFields<Fields> {
        mutating get { CopyOnWriteFields.forChange(&storage) }
    }

    public var provider: CryptoProvider {
        get { storage.fields.provider }
        _modify { yield &mutableFields.fields.provider }
    }
    /// Certificate chains with their keys; the first whose key can sign with a scheme the client offers is used.
    public var certificates: [CertifiedKey] {
        get { storage.fields.certificates }
        _modify { yield &mutableFields.fields.certificates }
    }
    /// Chooses the configuration for each ClientHello (by SNI, say): synchronously in place, or
    /// through the pause (`TLSEvent.decisionNeeded`). The chosen configuration, provider included,
    /// replaces this one for the connection, within this one's policy (requirePostQuantum and
    /// versions are a floor).
    public var configurationSelector: (any ServerConfigurationSelector)? {
        get { storage.fields.configurationSelector }
        _modify { yield &mutableFields.fields.configurationSelector }
    }
    /// Versions, groups, suites, ALPN and the PQ requirement accepted (the same fields as a
    /// client's, forwarded below under their usual names).
    public var policy: ProtocolPolicy {
        get { storage.fields.policy }
        _modify { yield &mutableFields.fields.policy }
    }
    /// Whether clients are asked for a certificate (CertificateRequest).
    public var clientAuthentication: ClientAuthenticationPolicy {
        get { storage.fields.clientAuthentication }
        _modify { yield &mutableFields.fields.clientAuthentication }
    }
    /// Verifies client certificates (with role `.client`: EKU clientAuth); its trust anchors
    /// make the certificate_authorities list. Required unless `clientAuthentication` is none.
    public var clientCertificateVerifier: (any CertificateVerifier)? {
        get { storage.fields.clientCertificateVerifier }
        _modify { yield &mutableFields.fields.clientCertificateVerifier }
    }
    /// Keep what post-handshake client authentication needs (the handshake transcript) for
    /// clients that offer it, so that `requestClientCertificate()` can be used. Off by default:
    /// it costs the transcript's bytes for each such connection's lifetime.
    public var allowPostHandshakeAuthentication: Bool {
        get { storage.fields.allowPostHandshakeAuthentication }
        _modify { yield &mutableFields.fields.allowPostHandshakeAuthentication }
    }
    /// TLS 1.2 session-ID cache (stateful resumption); nil: no session IDs are issued. The
    /// default is in memory; a cache that answers asynchronously (another process) is asked
    /// through the pause.
    public var sessionCache: (any ServerSessionCache)? {
        get { storage.fields.sessionCache }
        _modify { yield &mutableFields.fields.sessionCache }
    }
    /// Seals TLS 1.2 (RFC 5077) and TLS 1.3 tickets; nil: no tickets are issued or accepted.
    /// The default is a rotating in-memory key set (12 h rotation, 36 h kept); several servers
    /// share tickets by loading one key file.
    public var ticketKeys: (any TicketSealer)? {
        get { storage.fields.ticketKeys }
        _modify { yield &mutableFields.fields.ticketKeys }
    }
    /// Lifetime of sessions and tickets, in seconds (TLS 1.2 lifetime hint, TLS 1.3
    /// ticket_lifetime; at most 604800).
    public var sessionLifetimeSeconds: UInt32 {
        get { storage.fields.sessionLifetimeSeconds }
        _modify { yield &mutableFields.fields.sessionLifetimeSeconds }
    }
    /// TLS 1.3 NewSessionTicket messages sent after a full handshake (0 for none). After a
    /// resumption one is sent, replacing the ticket the client used (as OpenSSL does).
    public var tls13TicketCount: Int {
        get { storage.fields.tls13TicketCount }
        _modify { yield &mutableFields.fields.tls13TicketCount }
    }
    /// Resume with psk_ke (no fresh key exchange: faster, but without forward secrecy or a fresh
    /// ML-KEM part) when the client offers it. Off by default (psk_dhe_ke); never under
    /// `requirePostQuantum`.
    public var acceptPSKWithoutKeyExchange: Bool {
        get { storage.fields.acceptPSKWithoutKeyExchange }
        _modify { yield &mutableFields.fields.acceptPSKWithoutKeyExchange }
    }
    /// How far a client's ticket age may be from ours (RFC 8446 §8.3), in milliseconds.
    public var ticketAgeToleranceMilliseconds: UInt64 {
        get { storage.fields.ticketAgeToleranceMilliseconds }
        _modify { yield &mutableFields.fields.ticketAgeToleranceMilliseconds }
    }
    /// Early data a client sends is never accepted; up to this many bytes of it are skipped
    /// (RFC 8446 §4.2.10) before the connection is failed.
    public var maxSkippedEarlyData: Int {
        get { storage.fields.maxSkippedEarlyData }
        _modify { yield &mutableFields.fields.maxSkippedEarlyData }
    }
    /// The clock for session lifetimes and ticket ages.
    public var clock: any WallClock {
        get { storage.fields.clock }
        _modify { yield &mutableFields.fields.clock }
    }

    public init(provider: CryptoProvider, certificates: [CertifiedKey]) {
        storage = CopyOnWriteFields(Fields(provider: provider, certificates: certificates, ticketKeys: TicketKeySet(primitives: provider.primitives)))
    }

    func validate() throws(TLSError) {
        try storage.validateOnce(validateFields)
    }

    private func validateFields() throws(TLSError) {
        guard !certificates.isEmpty else { throw .misuse("no server certificate configured") }
        try policy.validate(provider: provider)
        guard sessionLifetimeSeconds > 0, sessionLifetimeSeconds <= 604_800 else {
            throw .misuse("session lifetime must be 1 to 604800 seconds (RFC 8446 §4.6.1)")
        }
        guard (0...16).contains(tls13TicketCount) else { throw .misuse("tls13TicketCount must be 0 to 16") }
        if clientAuthentication != .none && clientCertificateVerifier == nil {
            throw .misuse("client authentication is \(clientAuthentication) but no clientCertificateVerifier is configured")
        }
    }
}

/// Whether a server asks clients for a certificate (seed chapter 5).
public struct ClientAuthenticationPolicy: Hashable, Sendable, CustomStringConvertible {
    enum Kind: String { case none, optional, required }
    let kind: Kind
    /// No CertificateRequest.
    public static let none = ClientAuthenticationPolicy(kind: .none)
    /// A certificate is asked for; a client without one is served anonymously, one with an
    /// invalid one is refused.
    public static let optional = ClientAuthenticationPolicy(kind: .optional)
    /// A client without a valid certificate is refused (certificate_required in TLS 1.3,
    /// handshake_failure in TLS 1.2).
    public static let required = ClientAuthenticationPolicy(kind: .required)
    public var description: String { kind.rawValue }
}

/// What was negotiated, reported when the handshake completes.
public struct HandshakeSummary: Sendable, Hashable {
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var group: NamedGroup
    /// The scheme the server (on a client) or the client (on a server, with mTLS) signed with.
    public var peerSignatureScheme: SignatureScheme?
    /// The scheme we signed with, if we did.
    public var localSignatureScheme: SignatureScheme?
    public var helloRetryRequest: Bool
    public var resumed: Bool
    /// The peer's DER certificates, leaf first.
    public var peerCertificates: [[UInt8]]
    public var alpnProtocol: String?
    public var serverName: String?
    /// Who the peer proved to be; nil when it was not asked to authenticate.
    public var peerIdentity: PeerIdentity?
    /// A client: whether it sent a certificate (and signed with it) because the server asked.
    public var clientCertificateSent = false

    public var usedPostQuantumKeyExchange: Bool { group.isPostQuantum }
}

/// One handshake message as it crossed the wire, for traces (`qssl demo`).
public struct HandshakeTraceEntry: Sendable, Hashable {
    public enum Direction: Sendable, Hashable { case sent, received }
    public var direction: Direction
    public var message: String
    public var length: Int
    /// Nanoseconds since the connection was created (a monotonic clock).
    public var elapsedNanoseconds: Int64
    /// When it happened, comparable across connections in one process.
    public var instant: ContinuousClock.Instant
    /// Not a message but work this side did (`qssl trace`): "key exchange …", "handshake key
    /// schedule", "processing Certificate" (all the work a received message caused, steps
    /// included); `direction` is `.received`, `message` names the step, `elapsedNanoseconds`
    /// is when it started.
    public var isComputation = false
    /// A computation's wall-clock time, and its thread CPU time when the connection's
    /// `traceCPUClock` is set.
    public var durationNanoseconds: Int64 = 0
    public var cpuNanoseconds: Int64? = nil
}
