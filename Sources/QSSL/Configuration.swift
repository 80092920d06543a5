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

/// Protocol configuration of a client. One value, built once, shared by many connections.
public struct ClientConfiguration: Sendable, ProtocolPolicyHolder {
    /// The fields, in one reference: a configuration is copied into every connection and
    /// through its handshake states, and a copy then costs one retain, not one per field.
    /// Copied on write (`mutableStorage`).
    private final class Storage: @unchecked Sendable {
        /// Whether these fields passed `validate()`: every connection validates its
        /// configuration, and connections share one. Cleared by any change (`mutableStorage`).
        let validated = Atomic(false)
        var provider: CryptoProvider
        var verifier: any CertificateVerifier
        var policy: ProtocolPolicy
        var keyShareGroups: [NamedGroup]
        var middleboxCompatibility: Bool
        var clientCertificates: [CertifiedKey]
        var offerPostHandshakeAuthentication: Bool
        var dangerouslySkipServerNameVerification: Bool
        var sessionStore: (any ClientSessionStore)?
        var offerPSKWithoutKeyExchange: Bool
        var requestOCSPStaple: Bool
        var tls12SessionTickets: Bool
        var clock: any WallClock
        var offerEarlyDataForTesting: Bool

        init(provider: CryptoProvider, verifier: any CertificateVerifier) {
            self.provider = provider
            self.verifier = verifier
            self.policy = ProtocolPolicy()
            self.keyShareGroups = Defaults.clientKeyShares
            self.middleboxCompatibility = true
            self.clientCertificates = []
            self.offerPostHandshakeAuthentication = false
            self.dangerouslySkipServerNameVerification = false
            self.sessionStore = InMemoryClientSessionStore()
            self.offerPSKWithoutKeyExchange = false
            self.requestOCSPStaple = true
            self.tls12SessionTickets = true
            self.clock = SystemClock()
            self.offerEarlyDataForTesting = false
        }

        init(copying other: Storage) {
            provider = other.provider
            verifier = other.verifier
            policy = other.policy
            keyShareGroups = other.keyShareGroups
            middleboxCompatibility = other.middleboxCompatibility
            clientCertificates = other.clientCertificates
            offerPostHandshakeAuthentication = other.offerPostHandshakeAuthentication
            dangerouslySkipServerNameVerification = other.dangerouslySkipServerNameVerification
            sessionStore = other.sessionStore
            offerPSKWithoutKeyExchange = other.offerPSKWithoutKeyExchange
            requestOCSPStaple = other.requestOCSPStaple
            tls12SessionTickets = other.tls12SessionTickets
            clock = other.clock
            offerEarlyDataForTesting = other.offerEarlyDataForTesting
        }
    }
    private var storage: Storage
    private var mutableStorage: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(copying: storage) }
            storage.validated.store(false, ordering: .relaxed)
            return storage
        }
    }

    public var provider: CryptoProvider {
        get { storage.provider }
        set { mutableStorage.provider = newValue }
        _modify { yield &mutableStorage.provider }
    }
    /// Verifies the server's chain. Required unless verification is dangerously disabled.
    public var verifier: any CertificateVerifier {
        get { storage.verifier }
        set { mutableStorage.verifier = newValue }
        _modify { yield &mutableStorage.verifier }
    }
    /// Versions, groups, suites, ALPN and the PQ requirement offered (the same fields as a
    /// server's, forwarded below under their usual names).
    public var policy: ProtocolPolicy {
        get { storage.policy }
        set { mutableStorage.policy = newValue }
        _modify { yield &mutableStorage.policy }
    }
    /// Groups for which a share is sent in the first ClientHello (a subset of `groups`).
    public var keyShareGroups: [NamedGroup] {
        get { storage.keyShareGroups }
        set { mutableStorage.keyShareGroups = newValue }
        _modify { yield &mutableStorage.keyShareGroups }
    }
    /// Sends a 32-byte legacy_session_id and change_cipher_spec (RFC 8446 Appendix D.4).
    public var middleboxCompatibility: Bool {
        get { storage.middleboxCompatibility }
        set { mutableStorage.middleboxCompatibility = newValue }
        _modify { yield &mutableStorage.middleboxCompatibility }
    }
    /// A client certificate, sent if the server asks for one and accepts it (a signature scheme
    /// the server listed, and an issuer among its certificate_authorities when both are known).
    public var clientCertificate: CertifiedKey? {
        get { clientCertificates.first }
        set { clientCertificates = newValue.map { [$0] } ?? [] }
    }
    /// Client certificates to choose from, in preference order.
    public var clientCertificates: [CertifiedKey] {
        get { storage.clientCertificates }
        set { mutableStorage.clientCertificates = newValue }
        _modify { yield &mutableStorage.clientCertificates }
    }
    /// Offer post-handshake client authentication (RFC 8446 §4.6.2) to TLS 1.3 servers.
    public var offerPostHandshakeAuthentication: Bool {
        get { storage.offerPostHandshakeAuthentication }
        set { mutableStorage.offerPostHandshakeAuthentication = newValue }
        _modify { yield &mutableStorage.offerPostHandshakeAuthentication }
    }
    /// Connect without a server name: the chain is still verified, but a certificate for ANY
    /// name is accepted. Only for tests and for peers identified some other way.
    public var dangerouslySkipServerNameVerification: Bool {
        get { storage.dangerouslySkipServerNameVerification }
        set { mutableStorage.dangerouslySkipServerNameVerification = newValue }
        _modify { yield &mutableStorage.dangerouslySkipServerNameVerification }
    }
    /// Where sessions the server issues are kept and offered from (PROTOCOL.md §4); nil turns
    /// resumption off. Copies of a configuration share the store (it is a class): give a
    /// configuration with another trust policy (verifier) a store of its own. Sessions are kept
    /// apart by the client certificates a configuration presents. The default keeps them in memory, shared by connections that share this
    /// configuration, keyed by server name (or the key passed to `TLSConnection.client`).
    public var sessionStore: (any ClientSessionStore)? {
        get { storage.sessionStore }
        set { mutableStorage.sessionStore = newValue }
        _modify { yield &mutableStorage.sessionStore }
    }
    /// Also offer psk_ke (resumption without a fresh key exchange, so without forward secrecy
    /// or a fresh ML-KEM part). Off by default, and never offered under `requirePostQuantum`.
    public var offerPSKWithoutKeyExchange: Bool {
        get { storage.offerPSKWithoutKeyExchange }
        set { mutableStorage.offerPSKWithoutKeyExchange = newValue }
        _modify { yield &mutableStorage.offerPSKWithoutKeyExchange }
    }
    /// Ask servers to staple an OCSP response (status_request, RFC 6066 §8); the verifier checks
    /// what arrives.
    public var requestOCSPStaple: Bool {
        get { storage.requestOCSPStaple }
        set { mutableStorage.requestOCSPStaple = newValue }
        _modify { yield &mutableStorage.requestOCSPStaple }
    }
    /// Ask TLS 1.2 servers for RFC 5077 tickets.
    public var tls12SessionTickets: Bool {
        get { storage.tls12SessionTickets }
        set { mutableStorage.tls12SessionTickets = newValue }
        _modify { yield &mutableStorage.tls12SessionTickets }
    }
    /// The clock for ticket ages and session lifetimes.
    public var clock: any WallClock {
        get { storage.clock }
        set { mutableStorage.clock = newValue }
        _modify { yield &mutableStorage.clock }
    }
    /// Test hook: sends an early_data extension (without early data support, to see servers
    /// skip 0-RTT records).
    var offerEarlyDataForTesting: Bool {
        get { storage.offerEarlyDataForTesting }
        set { mutableStorage.offerEarlyDataForTesting = newValue }
        _modify { yield &mutableStorage.offerEarlyDataForTesting }
    }

    public init(provider: CryptoProvider, verifier: any CertificateVerifier) {
        storage = Storage(provider: provider, verifier: verifier)
    }

    func validate() throws(TLSError) {
        if storage.validated.load(ordering: .acquiring) { return }
        try policy.validate(provider: provider)
        storage.validated.store(true, ordering: .releasing)
    }
}

/// Protocol configuration of a server.
public struct ServerConfiguration: Sendable, ProtocolPolicyHolder {
    /// The fields, in one reference: a configuration is copied into every connection and
    /// through its handshake states, and a copy then costs one retain, not one per field.
    /// Copied on write (`mutableStorage`).
    private final class Storage: @unchecked Sendable {
        /// Whether these fields passed `validate()`: every connection validates its
        /// configuration, and connections share one. Cleared by any change (`mutableStorage`).
        let validated = Atomic(false)
        var provider: CryptoProvider
        var certificates: [CertifiedKey]
        var configurationSelector: (any ServerConfigurationSelector)?
        var policy: ProtocolPolicy
        var clientAuthentication: ClientAuthenticationPolicy
        var clientCertificateVerifier: (any CertificateVerifier)?
        var allowPostHandshakeAuthentication: Bool
        var sessionCache: (any ServerSessionCache)?
        var ticketKeys: (any TicketSealer)?
        var sessionLifetimeSeconds: UInt32
        var tls13TicketCount: Int
        var acceptPSKWithoutKeyExchange: Bool
        var ticketAgeToleranceMilliseconds: UInt64
        var maxSkippedEarlyData: Int
        var clock: any WallClock

        init(provider: CryptoProvider, certificates: [CertifiedKey]) {
            self.provider = provider
            self.certificates = certificates
            self.configurationSelector = nil
            self.policy = ProtocolPolicy()
            self.clientAuthentication = .none
            self.clientCertificateVerifier = nil
            self.allowPostHandshakeAuthentication = false
            self.sessionCache = InMemorySessionCache()
            self.ticketKeys = TicketKeySet(primitives: provider.primitives)
            self.sessionLifetimeSeconds = 3600
            self.tls13TicketCount = 2
            self.acceptPSKWithoutKeyExchange = false
            self.ticketAgeToleranceMilliseconds = 10_000
            self.maxSkippedEarlyData = 16 * 1024 + 256
            self.clock = SystemClock()
        }

        init(copying other: Storage) {
            provider = other.provider
            certificates = other.certificates
            configurationSelector = other.configurationSelector
            policy = other.policy
            clientAuthentication = other.clientAuthentication
            clientCertificateVerifier = other.clientCertificateVerifier
            allowPostHandshakeAuthentication = other.allowPostHandshakeAuthentication
            sessionCache = other.sessionCache
            ticketKeys = other.ticketKeys
            sessionLifetimeSeconds = other.sessionLifetimeSeconds
            tls13TicketCount = other.tls13TicketCount
            acceptPSKWithoutKeyExchange = other.acceptPSKWithoutKeyExchange
            ticketAgeToleranceMilliseconds = other.ticketAgeToleranceMilliseconds
            maxSkippedEarlyData = other.maxSkippedEarlyData
            clock = other.clock
        }
    }
    private var storage: Storage
    private var mutableStorage: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(copying: storage) }
            storage.validated.store(false, ordering: .relaxed)
            return storage
        }
    }

    public var provider: CryptoProvider {
        get { storage.provider }
        set { mutableStorage.provider = newValue }
        _modify { yield &mutableStorage.provider }
    }
    /// Certificate chains with their keys; the first whose key can sign with a scheme the client offers is used.
    public var certificates: [CertifiedKey] {
        get { storage.certificates }
        set { mutableStorage.certificates = newValue }
        _modify { yield &mutableStorage.certificates }
    }
    /// Chooses the configuration for each ClientHello (by SNI, say): synchronously in place, or
    /// through the pause (`TLSEvent.decisionNeeded`). The chosen configuration, provider included,
    /// replaces this one for the connection, within this one's policy (requirePostQuantum and
    /// versions are a floor).
    public var configurationSelector: (any ServerConfigurationSelector)? {
        get { storage.configurationSelector }
        set { mutableStorage.configurationSelector = newValue }
        _modify { yield &mutableStorage.configurationSelector }
    }
    /// Versions, groups, suites, ALPN and the PQ requirement accepted (the same fields as a
    /// client's, forwarded below under their usual names).
    public var policy: ProtocolPolicy {
        get { storage.policy }
        set { mutableStorage.policy = newValue }
        _modify { yield &mutableStorage.policy }
    }
    /// Whether clients are asked for a certificate (CertificateRequest).
    public var clientAuthentication: ClientAuthenticationPolicy {
        get { storage.clientAuthentication }
        set { mutableStorage.clientAuthentication = newValue }
        _modify { yield &mutableStorage.clientAuthentication }
    }
    /// Verifies client certificates (with role `.client`: EKU clientAuth); its trust anchors
    /// make the certificate_authorities list. Required unless `clientAuthentication` is none.
    public var clientCertificateVerifier: (any CertificateVerifier)? {
        get { storage.clientCertificateVerifier }
        set { mutableStorage.clientCertificateVerifier = newValue }
        _modify { yield &mutableStorage.clientCertificateVerifier }
    }
    /// Keep what post-handshake client authentication needs (the handshake transcript) for
    /// clients that offer it, so that `requestClientCertificate()` can be used. Off by default:
    /// it costs the transcript's bytes for each such connection's lifetime.
    public var allowPostHandshakeAuthentication: Bool {
        get { storage.allowPostHandshakeAuthentication }
        set { mutableStorage.allowPostHandshakeAuthentication = newValue }
        _modify { yield &mutableStorage.allowPostHandshakeAuthentication }
    }
    /// TLS 1.2 session-ID cache (stateful resumption); nil: no session IDs are issued. The
    /// default is in memory; a cache that answers asynchronously (another process) is asked
    /// through the pause.
    public var sessionCache: (any ServerSessionCache)? {
        get { storage.sessionCache }
        set { mutableStorage.sessionCache = newValue }
        _modify { yield &mutableStorage.sessionCache }
    }
    /// Seals TLS 1.2 (RFC 5077) and TLS 1.3 tickets; nil: no tickets are issued or accepted.
    /// The default is a rotating in-memory key set (12 h rotation, 36 h kept); several servers
    /// share tickets by loading one key file.
    public var ticketKeys: (any TicketSealer)? {
        get { storage.ticketKeys }
        set { mutableStorage.ticketKeys = newValue }
        _modify { yield &mutableStorage.ticketKeys }
    }
    /// Lifetime of sessions and tickets, in seconds (TLS 1.2 lifetime hint, TLS 1.3
    /// ticket_lifetime; at most 604800).
    public var sessionLifetimeSeconds: UInt32 {
        get { storage.sessionLifetimeSeconds }
        set { mutableStorage.sessionLifetimeSeconds = newValue }
        _modify { yield &mutableStorage.sessionLifetimeSeconds }
    }
    /// TLS 1.3 NewSessionTicket messages sent after a full handshake (0 for none). After a
    /// resumption one is sent, replacing the ticket the client used (as OpenSSL does).
    public var tls13TicketCount: Int {
        get { storage.tls13TicketCount }
        set { mutableStorage.tls13TicketCount = newValue }
        _modify { yield &mutableStorage.tls13TicketCount }
    }
    /// Resume with psk_ke (no fresh key exchange: faster, but without forward secrecy or a fresh
    /// ML-KEM part) when the client offers it. Off by default (psk_dhe_ke); never under
    /// `requirePostQuantum`.
    public var acceptPSKWithoutKeyExchange: Bool {
        get { storage.acceptPSKWithoutKeyExchange }
        set { mutableStorage.acceptPSKWithoutKeyExchange = newValue }
        _modify { yield &mutableStorage.acceptPSKWithoutKeyExchange }
    }
    /// How far a client's ticket age may be from ours (RFC 8446 §8.3), in milliseconds.
    public var ticketAgeToleranceMilliseconds: UInt64 {
        get { storage.ticketAgeToleranceMilliseconds }
        set { mutableStorage.ticketAgeToleranceMilliseconds = newValue }
        _modify { yield &mutableStorage.ticketAgeToleranceMilliseconds }
    }
    /// Early data a client sends is never accepted; up to this many bytes of it are skipped
    /// (RFC 8446 §4.2.10) before the connection is failed.
    public var maxSkippedEarlyData: Int {
        get { storage.maxSkippedEarlyData }
        set { mutableStorage.maxSkippedEarlyData = newValue }
        _modify { yield &mutableStorage.maxSkippedEarlyData }
    }
    /// The clock for session lifetimes and ticket ages.
    public var clock: any WallClock {
        get { storage.clock }
        set { mutableStorage.clock = newValue }
        _modify { yield &mutableStorage.clock }
    }

    public init(provider: CryptoProvider, certificates: [CertifiedKey]) {
        storage = Storage(provider: provider, certificates: certificates)
    }

    func validate() throws(TLSError) {
        if storage.validated.load(ordering: .acquiring) { return }
        try validateFields()
        storage.validated.store(true, ordering: .releasing)
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
