import QSSLWire

// Session-store keys: a server name tagged with the client credentials and trust policy.

extension ClientConfiguration {
    /// The key under which `sessionStore` keeps the sessions of `key` (a server name, or the
    /// `sessionKey` given to `TLSConnection.client`): `key` tagged with the client certificates
    /// and the trust policy (verifier) of this configuration, so that configurations sharing a
    /// store never take each other's sessions.
    public func sessionStoreKey(for key: String) -> String {
        key + clientCredentialTag(self) + ResumptionPolicy.storeTag(self)
    }
}

/// A short tag of the client certificates a configuration may present ("" for none), appended to
/// session-store keys.
func clientCredentialTag(_ configuration: ClientConfiguration) -> String {
    guard !configuration.clientCertificates.isEmpty else { return "" }
    let leaves = configuration.clientCertificates.flatMap { $0.chain.first ?? [] }
    let digest = configuration.provider.primitives.hash(.sha256, leaves)
    return "#" + digest.prefix(8).map { String($0, radix: 16) }.joined()
}
