import QSSLWire

// The core's one pause. Whatever the application must decide in the middle of a handshake —
// sign with a key that lives elsewhere, verify the peer with data that may have to be fetched,
// choose the configuration for a ClientHello — is one `PendingDecision`, surfaced as
// `TLSEvent.decisionNeeded` and answered with `TLSConnection.resume(with:)`. Providers that can
// answer at once (in-memory keys, local verifiers, no selector) are asked in place and the
// handshake never pauses.

/// A decision the application owes before the handshake can go on.
///
/// A struct rather than an enum so that kinds can be added without breaking callers: ask for
/// the kind you handle (`signatureRequest`, `peerVerification`, `clientHello`), or let
/// `resolve()` run the provider that was configured for it.
public struct PendingDecision: Sendable {
    enum Kind: Sendable {
        case sign(SignatureRequest)
        case verifyPeer(PeerVerificationRequest)
        case selectServerConfiguration(ClientHelloSummary, any ServerConfigurationSelector)
        case lookUpSession(SessionLookupRequest)
        case keyExchange(KeyExchangeRequest)
    }
    let kind: Kind

    /// A signature over the handshake (TLS 1.3 CertificateVerify, TLS 1.2 ServerKeyExchange).
    public var signatureRequest: SignatureRequest? {
        if case .sign(let r) = kind { return r }
        return nil
    }
    /// The peer's chain and stapled data to verify.
    public var peerVerification: PeerVerificationRequest? {
        if case .verifyPeer(let r) = kind { return r }
        return nil
    }
    /// The ClientHello a server configuration must be chosen for.
    public var clientHello: ClientHelloSummary? {
        if case .selectServerConfiguration(let h, _) = kind { return h }
        return nil
    }

    /// The selector that chooses that configuration (what `resolve()` asks).
    public var configurationSelector: (any ServerConfigurationSelector)? {
        if case .selectServerConfiguration(_, let selector) = kind { return selector }
        return nil
    }

    /// A TLS 1.2 session ID to look up in a cache that answers asynchronously.
    public var sessionLookup: SessionLookupRequest? {
        if case .lookUpSession(let r) = kind { return r }
        return nil
    }

    /// A server's key exchange with the client's share, in a group that answers asynchronously.
    public var keyExchange: KeyExchangeRequest? {
        if case .keyExchange(let r) = kind { return r }
        return nil
    }

    /// Runs the configured provider for this decision (off the connection's thread, as the
    /// caller likes) and returns the answer for `TLSConnection.resume(with:)`. A provider's
    /// error is returned as the answer too, so that it becomes the connection's alert.
    public func resolve() async -> DecisionAnswer {
        do {
            switch kind {
            case .sign(let r): return .signature(try await r.sign())
            case .verifyPeer(let r): return .peerVerified(try await r.verify())
            case .selectServerConfiguration(let h, let selector): return .serverConfiguration(try await selector.selectAsynchronously(for: h))
            case .lookUpSession(let r): return .session(await r.lookUp())
            case .keyExchange(let r):
                let (share, secret) = try await r.respond()
                return .keyExchange(share: share, secret: secret)
            }
        } catch {
            return .failure(error)
        }
    }
}

extension PendingDecision {
    /// `resolve()` with a completion: `completion` runs exactly once, on any thread, possibly
    /// before this returns. A session look-up goes straight to the cache's completion form
    /// (no task: a store answering on the connection's thread resumes it there); the other
    /// kinds run `resolve()` in a task, returned so that the caller can cancel it.
    @discardableResult
    public func resolve(completion: @escaping @Sendable (DecisionAnswer) -> Void) -> Task<Void, Never>? {
        if case .lookUpSession(let r) = kind {
            r.lookUp { completion(.session($0)) }
            return nil
        }
        return Task { completion(await resolve()) }
    }
}

extension PendingDecision: CustomStringConvertible {
    public var description: String {
        switch kind {
        case .sign(let r): return "sign(\(r.scheme))"
        case .verifyPeer(let r): return "verifyPeer(\(r.chain.count) certificates, \(r.role))"
        case .selectServerConfiguration(let h, _): return "selectServerConfiguration(\(h.serverName ?? "no SNI"))"
        case .lookUpSession(let r): return "lookUpSession(\(r.sessionID.count)-byte ID)"
        case .keyExchange(let r): return "keyExchange(\(r.group))"
        }
    }
}

/// The answer to a `PendingDecision`. A struct with static constructors, so kinds can grow.
public struct DecisionAnswer: Sendable {
    enum Kind: Sendable {
        case signature([UInt8])
        case peerVerified(VerifiedPeer)
        case serverConfiguration(ServerConfiguration)
        case session(SessionState?)
        case keyExchange(share: [UInt8], secret: SecretBytes)
        case failure(TLSError)
    }
    let kind: Kind

    public static func signature(_ bytes: [UInt8]) -> DecisionAnswer { DecisionAnswer(kind: .signature(bytes)) }
    public static func peerVerified(_ peer: VerifiedPeer) -> DecisionAnswer { DecisionAnswer(kind: .peerVerified(peer)) }
    public static func serverConfiguration(_ configuration: ServerConfiguration) -> DecisionAnswer {
        DecisionAnswer(kind: .serverConfiguration(configuration))
    }
    /// The cached session for the ID, or nil for a miss (a full handshake follows).
    public static func session(_ state: SessionState?) -> DecisionAnswer { DecisionAnswer(kind: .session(state)) }
    /// The server's share for the client's and the shared secret (`KeyExchangeRequest.respond()`).
    public static func keyExchange(share: [UInt8], secret: SecretBytes) -> DecisionAnswer {
        DecisionAnswer(kind: .keyExchange(share: share, secret: secret))
    }
    /// The decision failed: the connection fails with this error and sends its alert
    /// (certificate_revoked for a revoked peer, internal_error for a signing failure, …).
    public static func failure(_ error: TLSError) -> DecisionAnswer { DecisionAnswer(kind: .failure(error)) }
}

/// A server's answer to the client's key share, owed by a group that must not run on the
/// connection's thread (its ECDH in a token).
public struct KeyExchangeRequest: Sendable {
    public let group: NamedGroup
    /// The client's key_share entry for `group` (checked by the group when it responds).
    public let clientShare: [UInt8]
    public let exchange: any KeyExchangeGroup

    /// Runs the group's asynchronous response: the server's share and the shared secret.
    public func respond() async throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        try await exchange.respondAsynchronously(toClientShare: clientShare)
    }
}

/// What the application owes to resume a paused handshake: a signature over `message`.
public struct SignatureRequest: Sendable {
    /// The full to-be-signed content (RFC 8446 §4.4.3, or the TLS 1.2 randoms and params).
    public let message: [UInt8]
    public let scheme: SignatureScheme
    public let key: any SigningKey

    /// Runs the key's asynchronous signing.
    public func sign() async throws(TLSError) -> [UInt8] { try await key.signAsynchronously(message, scheme: scheme) }
}

/// The peer's certificates to verify, with what it stapled.
public struct PeerVerificationRequest: Sendable {
    /// DER certificates, leaf first, as the peer sent them.
    public let chain: [[UInt8]]
    /// A stapled OCSP response for the leaf (TLS 1.3 CertificateEntry status_request), if any.
    public let stapledOCSPResponse: [UInt8]?
    /// Signed certificate timestamps the peer sent, if any.
    public let signedCertificateTimestamps: [[UInt8]]
    /// Who is verified: the server (with the name the client expects) or the client.
    public let role: PeerRole
    public let verifier: any CertificateVerifier

    public init(
        chain: [[UInt8]], stapledOCSPResponse: [UInt8]? = nil, signedCertificateTimestamps: [[UInt8]] = [],
        role: PeerRole, verifier: any CertificateVerifier
    ) {
        self.chain = chain
        self.stapledOCSPResponse = stapledOCSPResponse
        self.signedCertificateTimestamps = signedCertificateTimestamps
        self.role = role
        self.verifier = verifier
    }

    public func verify() async throws(TLSError) -> VerifiedPeer { try await verifier.verifyPeerAsynchronously(self) }
}

/// A verified peer: the key that must sign the handshake, and who it is.
public struct VerifiedPeer: Sendable {
    public var publicKey: any PeerPublicKey
    public var identity: PeerIdentity
    public init(publicKey: any PeerPublicKey, identity: PeerIdentity) {
        self.publicKey = publicKey
        self.identity = identity
    }
}

/// Who the peer proved to be: available from the connection and in `HandshakeSummary` once the
/// handshake completed, for both roles.
public struct PeerIdentity: Sendable, Hashable {
    /// The verified path, DER, leaf first, ending at (and including) the trust anchor.
    public var verifiedChain: [[UInt8]]
    /// The leaf's subject, as an RFC 4514 string.
    public var subject: String
    /// The leaf's DNS names and IP addresses.
    public var subjectAlternativeNames: [String]
    /// The leaf's key, e.g. "ECDSA P-384" or "ML-DSA-65 + ECDSA P-384 (composite)".
    public var keyAlgorithm: String
    /// The signature algorithm of the leaf certificate.
    public var certificateSignatureAlgorithm: String
    /// The scheme the peer signed the handshake with (set by the core).
    public var handshakeSignatureScheme: SignatureScheme?
    /// The signature components that verified: both halves for a composite signature (which
    /// verifies only when both do), else the one scheme (set by the core).
    public var verifiedSignatureComponents: [String] = []
    /// The certificates of the verified path below its trust anchor, leaf first, by issuer,
    /// serial number and expiry: what a resumption checks again against the revocation lists in
    /// force (a session keeps only the leaf's DER), so that a revoked or expired intermediate
    /// ends the sessions it authenticated.
    public var pathReferences: [CertificateReference] = []

    public init(
        verifiedChain: [[UInt8]], subject: String, subjectAlternativeNames: [String], keyAlgorithm: String,
        certificateSignatureAlgorithm: String
    ) {
        self.verifiedChain = verifiedChain
        self.subject = subject
        self.subjectAlternativeNames = subjectAlternativeNames
        self.keyAlgorithm = keyAlgorithm
        self.certificateSignatureAlgorithm = certificateSignatureAlgorithm
    }
}

/// A certificate named by its issuer and serial number (as a CRL names it), with its expiry.
public struct CertificateReference: Sendable, Hashable {
    /// The issuer's DER-encoded Name.
    public var issuer: [UInt8]
    public var serialNumber: [UInt8]
    /// notAfter, in seconds since the Unix epoch.
    public var notAfter: Int64

    public init(issuer: [UInt8], serialNumber: [UInt8], notAfter: Int64) {
        self.issuer = issuer
        self.serialNumber = serialNumber
        self.notAfter = notAfter
    }
}

/// What a server sees of a ClientHello when it chooses its configuration (SNI, a proxy serving
/// many names).
public struct ClientHelloSummary: Sendable, Hashable {
    public let serverName: String?
    public let alpnProtocols: [String]
    public let groups: [NamedGroup]
    public let signatureSchemes: [SignatureScheme]
    public let cipherSuites: [CipherSuite]
    public let versions: [ProtocolVersion]
}

/// Chooses the server configuration (certificates, ALPN, groups, …) for a ClientHello.
public protocol ServerConfigurationSelector: Sendable {
    /// Whether `select` may run on the connection's thread; false pauses the handshake with
    /// `.decisionNeeded` and `selectAsynchronously` runs wherever the caller likes.
    var isSynchronous: Bool { get }
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration
    func selectAsynchronously(for hello: ClientHelloSummary) async throws(TLSError) -> ServerConfiguration
}

extension ServerConfigurationSelector {
    public var isSynchronous: Bool { true }
    public func selectAsynchronously(for hello: ClientHelloSummary) async throws(TLSError) -> ServerConfiguration {
        try select(for: hello)
    }
}
