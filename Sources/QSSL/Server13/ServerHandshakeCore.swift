import QSSLWire

/// What the TLS 1.3 server settled by its Finished: the same while it waits for the client's
/// flight, shared by those states (one reference, not a bag copied field by field).
final class ServerHandshakeCore {
    let suite: TLS13CipherSuite
    let hkdf: HKDF
    let clientHandshakeSecret: SecretBytes
    let master: TLS13KeySchedule.Master
    let clientApp: SecretBytes
    let serverApp: SecretBytes
    let summary: HandshakeSummary
    let config: ServerConfiguration
    /// The tickets to issue after the client's Finished (with the client's identity then).
    let issuer: TicketIssuer
    let clientOffersPostHandshakeAuth: Bool

    init(
        suite: TLS13CipherSuite, hkdf: HKDF, clientHandshakeSecret: SecretBytes, master: TLS13KeySchedule.Master, clientApp: SecretBytes,
        serverApp: SecretBytes, summary: HandshakeSummary, config: ServerConfiguration, issuer: TicketIssuer, clientOffersPostHandshakeAuth: Bool
    ) {
        self.suite = suite
        self.hkdf = hkdf
        self.clientHandshakeSecret = clientHandshakeSecret
        self.master = master
        self.clientApp = clientApp
        self.serverApp = serverApp
        self.summary = summary
        self.config = config
        self.issuer = issuer
        self.clientOffersPostHandshakeAuth = clientOffersPostHandshakeAuth
    }
}
