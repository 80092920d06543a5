import QSSLWire

// The TLS 1.3 client after ServerHello: what every later state shares, and the states' enum.

/// What the client settled with ServerHello: the same through the rest of the handshake, shared
/// by every later state (one reference, not a bag carried and copied field by field).
final class ClientHandshakeCore {
    let config: ClientConfiguration
    let serverName: String?
    /// The extensions our ClientHello offered: the server may answer only those.
    let offered: Set<ExtensionType>
    let suite: TLS13CipherSuite
    let hkdf: HKDF
    let schedule: TLS13KeySchedule.Handshake
    let clientSecret: SecretBytes
    let serverSecret: SecretBytes
    let group: NamedGroup
    let helloRetryRequest: Bool
    /// Where sessions the server issues on this connection are kept.
    let sessionKey: String

    init(
        config: ClientConfiguration, serverName: String?, offered: Set<ExtensionType>, suite: TLS13CipherSuite, hkdf: HKDF,
        schedule: TLS13KeySchedule.Handshake, clientSecret: SecretBytes, serverSecret: SecretBytes, group: NamedGroup,
        helloRetryRequest: Bool, sessionKey: String
    ) {
        self.config = config
        self.serverName = serverName
        self.offered = offered
        self.suite = suite
        self.hkdf = hkdf
        self.schedule = schedule
        self.clientSecret = clientSecret
        self.serverSecret = serverSecret
        self.group = group
        self.helloRetryRequest = helloRetryRequest
        self.sessionKey = sessionKey
    }
}

/// Client handshake: one case per message we are waiting for (RFC 8446 §2), each holding what
/// is valid at that step.
enum ClientState {
    case expectServerHello(ExpectServerHello)
    case expectEncryptedExtensions(ExpectEncryptedExtensions)
    /// After EncryptedExtensions on a full handshake: a CertificateRequest may come first.
    case expectCertificateOrCertificateRequest(ExpectServerCertificate)
    /// After a CertificateRequest.
    case expectCertificate(ExpectServerCertificate)
    case expectCertificateVerify(ExpectServerCertificateVerify)
    /// After CertificateVerify, or right after EncryptedExtensions on a resumption.
    case expectFinished(ExpectServerFinished)

    func handle(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> ConnectionPhase {
        switch self {
        case .expectServerHello(let s): return try s.handle(message, context: &context)
        case .expectEncryptedExtensions(let s): return .client(try s.handle(message))
        case .expectCertificateOrCertificateRequest(let s):
            if message.type == .certificateRequest { return .client(.expectCertificate(try s.processCertificateRequest(message))) }
            return try s.handle(message)
        case .expectCertificate(let s): return try s.handle(message)
        case .expectCertificateVerify(let s): return .client(.expectFinished(try s.handle(message)))
        case .expectFinished(let s): return try s.handle(message, context: &context)
        }
    }
}
