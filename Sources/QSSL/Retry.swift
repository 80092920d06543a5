// Seed §6.2: after handshake_failure a client may try once more with a wider suite and group
// list. Off unless the application asks for it, and never below the configured floor: the
// verifier, the post-quantum requirement, the name check and the client identity stay.

extension ClientConfiguration {
    /// Whether a failed handshake is worth one retry with a wider configuration: the server
    /// found nothing in common (handshake_failure), or we did not.
    public static func isRetryable(_ error: TLSError) -> Bool {
        if error.code.receivedAlert == .handshakeFailure { return true }
        guard let reason = error.code.incompatibility else { return false }
        return [.noCommonCipherSuite, .noCommonGroup, .noCommonSignatureScheme].contains(reason)
    }

    /// `wider`'s suites, groups, key shares and versions, with everything that decides security
    /// taken from this configuration: the verifier, `requirePostQuantum` (never dropped), the
    /// name check, the client certificates and the session store. Versions are those of `wider`
    /// that Q-SSL speaks (TLS 1.3 and 1.2).
    public func widened(to wider: ClientConfiguration) -> ClientConfiguration {
        var c = wider
        c.verifier = verifier
        c.requirePostQuantum = requirePostQuantum || wider.requirePostQuantum
        c.dangerouslySkipServerNameVerification = dangerouslySkipServerNameVerification
        c.clientCertificates = clientCertificates
        c.sessionStore = sessionStore
        c.offerPSKWithoutKeyExchange = offerPSKWithoutKeyExchange
        if c.requirePostQuantum {
            c.groups = c.groups.filter(\.isPostQuantum)
            c.keyShareGroups = c.keyShareGroups.filter(\.isPostQuantum)
            c.tls12CipherSuites = c.tls12CipherSuites.filter(\.isHybrid)
        }
        return c
    }
}
