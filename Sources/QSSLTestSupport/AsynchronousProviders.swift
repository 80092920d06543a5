import QSSL
import QSSLWire

// Providers that answer only through the core's pause, as a token, a remote verifier, a
// selector with a database behind it or a shared session store would: each wraps an in-memory
// one and reports `isSynchronous == false`, so the handshake surfaces a decision and the test
// answers it (`resumeWhilePaused`, or by hand).

/// A signing key that insists on the pause (as an HSM would).
public struct AsynchronousKey: SigningKey {
    public let inner: any SigningKey
    public init(inner: any SigningKey) { self.inner = inner }
    public var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    public var isSynchronous: Bool { false }
    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] { try inner.sign(message, scheme: scheme) }
}

/// A verifier that must not run on the connection's thread (it would fetch OCSP, say).
public struct AsynchronousVerifier: CertificateVerifier {
    public let inner: any CertificateVerifier
    public init(inner: any CertificateVerifier) { self.inner = inner }
    public var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    public var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    public var trustPolicyDigest: [UInt8] { inner.trustPolicyDigest }
    public func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) { try inner.checkResumedPeer(identity, role: role) }
    public var isSynchronous: Bool { false }
    public func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { try inner.verifyPeer(request) }
}

/// A configuration selector that answers only through the pause, with one configuration.
public struct AsynchronousSelector: ServerConfigurationSelector {
    public let configuration: ServerConfiguration
    public init(configuration: ServerConfiguration) { self.configuration = configuration }
    public var isSynchronous: Bool { false }
    public func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration { configuration }
}

/// A session-ID cache kept elsewhere (a shared store): look-ups pause.
public struct AsynchronousSessionCache: ServerSessionCache {
    public let inner: InMemorySessionCache
    public init(inner: InMemorySessionCache = InMemorySessionCache()) { self.inner = inner }
    public var isSynchronous: Bool { false }
    public func lookUp(sessionID: [UInt8]) -> SessionState? { inner.lookUp(sessionID: sessionID) }
    public func save(_ state: SessionState, sessionID: [UInt8]) { inner.save(state, sessionID: sessionID) }
    public func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
}

/// A key-exchange group whose server side answers only through the pause (its ECDH in a
/// token), optionally failing.
public struct AsynchronousGroup: KeyExchangeGroup {
    public let inner: any KeyExchangeGroup
    public var failure: TLSError?
    public init(inner: any KeyExchangeGroup, failure: TLSError? = nil) {
        self.inner = inner
        self.failure = failure
    }
    public var group: NamedGroup { inner.group }
    public var isSynchronous: Bool { false }
    public func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) { try inner.generateClientShare() }
    public func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        if let failure { throw failure }
        return try inner.respond(toClientShare: share)
    }
}

extension CryptoProvider {
    /// This provider with `group` answering in place of its own group of the same code point.
    public func replacing(_ group: any KeyExchangeGroup) -> CryptoProvider {
        CryptoProvider(primitives: primitives, keyExchangeGroups: keyExchangeGroups.map { $0.group == group.group ? group : $0 })
    }
}
