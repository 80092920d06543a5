import QSSLWire

// The one negotiation step of a server: each ClientHello, decoded once and under the
// configuration in force (after selection, if any), is negotiated here once, and the handshake
// forks to TLS 1.2 or TLS 1.3.

/// Negotiates the first ClientHello under `config`: the version, then the TLS 1.2 or TLS 1.3
/// parameters, and hands the hello to that version's handshake.
func negotiateClientHello(
    _ hello: ReceivedClientHello, config: ServerConfiguration,
    context: inout HandshakeContext
) throws(TLSError) -> ConnectionPhase {
    var transcript = Transcript()
    transcript.append(hello.message)
    if try negotiateVersion(hello, config: config) == .tls12 {
        return try TLS12ServerStart(
            hello: hello, negotiation: try negotiateTLS12(hello, config: config), transcript: transcript,
            config: config
        ).proceed(context: &context)
    }
    return try TLS13ServerStart(
        hello: hello, negotiation: try negotiate(hello, config: config), transcript: transcript,
        config: config
    ).proceed(context: &context)
}

/// What the server decided from a ClientHello.
struct ServerNegotiation {
    let suite: TLS13CipherSuite
    let group: NamedGroup
    /// The client's share for `group`, or nil if a HelloRetryRequest must ask for one.
    let clientShare: [UInt8]?
    let certificate: CertifiedKey
    let scheme: SignatureScheme
    let alpn: String?
    let serverName: String?
    /// RFC 8446 §4.2.6: the client may be asked for a certificate after the handshake.
    var clientOffersPostHandshakeAuth = false
    /// RFC 8446 §4.2.9: the client listed a PSK key exchange mode we would accept, so a ticket
    /// can be of use to it. Tickets go only to such clients (as Go's and BoringSSL's servers do).
    var clientAcceptsTickets = false
}

/// RFC 8446 §4.2.1 and RFC 5246 Appendix E: the highest version both sides speak.
func negotiateVersion(_ hello: ReceivedClientHello, config: ServerConfiguration) throws(TLSError) -> ProtocolVersion {
    // RFC 8446 Appendix D.5: a ClientHello whose legacy_version is SSL 3.0 or lower MUST be
    // refused with protocol_version, whatever supported_versions offers.
    guard hello.legacyVersion.rawValue > 0x0300 else {
        throw .incompatible(.noCommonVersion, "ClientHello.legacy_version \(hello.legacyVersion)")
    }
    guard let versions = hello.extensions.supportedVersions else {
        // A client without supported_versions speaks TLS 1.2 at most (legacy negotiation).
        guard config.versions.contains(.tls12), hello.legacyVersion.rawValue >= ProtocolVersion.tls12.rawValue else {
            throw .incompatible(.missingSupportedVersions, "client offered only \(hello.legacyVersion)")
        }
        return .tls12
    }
    for v in config.versions where versions.contains(v) { return v }
    throw .incompatible(.noCommonVersion, "client offered \(versions.filter { !$0.isGrease })")
}

/// ALPN and server_name, negotiated the same way in TLS 1.3 and TLS 1.2.
struct NegotiatedNames {
    let alpn: String?
    let serverName: String?
}

func negotiateNames(_ ext: DecodedClientHelloExtensions, config: ServerConfiguration) throws(TLSError) -> NegotiatedNames {
    var alpn: String?
    if let offered = ext.alpn, !config.alpnProtocols.isEmpty {
        guard let match = config.alpnProtocols.first(where: offered.contains) else {
            throw .incompatible(.noCommonApplicationProtocol, "client offered \(offered)")
        }
        alpn = match
    }
    return NegotiatedNames(alpn: alpn, serverName: ext.serverName)
}

/// RFC 8446 §4.1.1: suite, group, certificate and ALPN from a ClientHello.
func negotiate(_ hello: ReceivedClientHello, config: ServerConfiguration) throws(TLSError) -> ServerNegotiation {
    let ext = hello.extensions
    guard hello.legacyCompressionMethods == [0] else { throw .misbehaved(.offeredNullCompressionMissing) }

    guard let suite = config.cipherSuites.first(where: { hello.cipherSuites.contains($0.suite) }) else {
        throw .incompatible(.noCommonCipherSuite)
    }
    guard let schemes = ext.signatureAlgorithms else { throw .misbehaved(.sentMissingSignatureAlgorithms) }
    guard let clientGroups = ext.supportedGroups else { throw .misbehaved(.sentMissingSupportedGroups) }
    guard let shares = ext.keyShares else { throw .misbehaved(.sentMissingKeyShare) }
    var seen = Set<NamedGroup>()
    for share in shares {
        guard seen.insert(share.group).inserted else { throw .misbehaved(.sentDuplicateKeyShare, "\(share.group)") }
        guard clientGroups.contains(share.group) else { throw .misbehaved(.sentKeyShareNotInSupportedGroups, "\(share.group)") }
    }

    // PROTOCOL.md §1: a hybrid group beats a classical one; among equals prefer one the client
    // already sent a share for (no extra round trip), in our configured order.
    let common = config.groups.filter { clientGroups.contains($0) }
    let postQuantum = common.filter(\.isPostQuantum)
    if config.requirePostQuantum && postQuantum.isEmpty {
        throw .incompatible(.postQuantumKeyExchangeRequired, "client offered \(clientGroups.filter { !$0.isGrease })")
    }
    let tier = postQuantum.isEmpty ? common : postQuantum
    guard let preferred = tier.first else { throw .incompatible(.noCommonGroup, "client offered \(clientGroups.filter { !$0.isGrease })") }
    let group = tier.first { g in shares.contains { $0.group == g } } ?? preferred
    let clientShare = shares.first { $0.group == group }?.keyExchange

    // RFC 8446 §4.4.2.2: prefer a chain signed only with algorithms the client listed in
    // signature_algorithms_cert (or signature_algorithms); otherwise send one of our choice.
    let certSchemes = ext.signatureAlgorithmsCert ?? schemes
    var chosen: (CertifiedKey, SignatureScheme)?
    for candidate in config.certificates {
        guard let scheme = candidate.key.chooseScheme(offered: schemes) else { continue }
        if candidate.chainSignatureSchemes?.allSatisfy(certSchemes.contains) ?? true {
            chosen = (candidate, scheme)
            break
        }
        if chosen == nil { chosen = (candidate, scheme) }
    }
    guard let (certificate, scheme) = chosen else {
        throw .incompatible(.noCommonSignatureScheme, "client offered \(schemes)")
    }

    let names = try negotiateNames(ext, config: config)
    let modes = ext.pskKeyExchangeModes ?? []
    let usableMode =
        modes.contains(.pskDHEKE)
        || (modes.contains(.pskKE) && config.acceptPSKWithoutKeyExchange && !config.requirePostQuantum)
    return ServerNegotiation(
        suite: suite, group: group, clientShare: clientShare, certificate: certificate,
        scheme: scheme, alpn: names.alpn, serverName: names.serverName,
        clientOffersPostHandshakeAuth: ext.postHandshakeAuth, clientAcceptsTickets: usableMode)
}
