import NIOCore
import QSSL
import QSSLProxyProtocol
import QSSLWire
import QSSLX509
import X509

// What `ProxyConnection` tells a backend in a PROXY header, and the small conversions the proxy
// shares (addresses, time amounts, read pausing).

extension ProxyConnection {

    func proxyHeader(_ summary: HandshakeSummary, withTLVs: Bool = true) throws -> ProxyHeader {
        let source = proxiedSource ?? channel.remoteAddress
        guard withTLVs else {
            // v1 carries addresses only.
            return ProxyHeader(command: .proxy, transport: transport(source: source, destination: channel.localAddress))
        }
        var tlvs: [ProxyTLV] = []
        if let name = summary.serverName { tlvs.append(.authority(name)) }
        if let alpn = summary.alpnProtocol { tlvs.append(.alpn(Array(alpn.utf8))) }
        let identity = summary.peerIdentity
        let certificate: ProxyTLV.ClientCertificate =
            identity == nil
            ? .none
            : summary.resumed ? .presentedEarlierInSession(verified: true) : .presented(verified: true)
        tlvs.append(
            try ProxyTLV.ssl(
                version: summary.version.description, cipher: summary.cipherSuite.description, clientCertificate: certificate,
                commonName: identity.flatMap { $0.verifiedChain.first.flatMap(commonName(ofCertificate:)) },
                // As HAProxy: what the frontend (this proxy) signed with, on a full handshake.
                signatureAlgorithm: summary.localSignatureScheme?.description,
                keyAlgorithm: summary.localSignatureScheme.map(keyAlgorithm(of:)),
                group: summary.group.description, signatureScheme: identity?.certificateSignatureAlgorithm))
        tlvs.append(
            try ProxyTLV.qssl(
                ProxyTLV.QSSLInfo(
                    groupCodePoint: summary.group.rawValue, groupName: summary.group.description,
                    postQuantum: summary.usedPostQuantumKeyExchange, resumed: summary.resumed)))
        return ProxyHeader(command: .proxy, transport: transport(source: source, destination: channel.localAddress), tlvs: tlvs)
    }
}

/// The transport part of a PROXY header for two socket addresses (unspecified when they are
/// not both IPv4 or both IPv6).
func transport(source: SocketAddress?, destination: SocketAddress?) -> ProxyHeader.Transport {
    switch (source, destination) {
    case (.v4(let s)?, .v4(let d)?):
        guard let sa = IPv4Address(bytes: withUnsafeBytes(of: s.address.sin_addr.s_addr) { Array($0) }),
            let da = IPv4Address(bytes: withUnsafeBytes(of: d.address.sin_addr.s_addr) { Array($0) })
        else { return .unspecified }
        return .tcp4(source: sa, sourcePort: UInt16(source?.port ?? 0), destination: da, destinationPort: UInt16(destination?.port ?? 0))
    case (.v6(let s)?, .v6(let d)?):
        guard let sa = IPv6Address(bytes: withUnsafeBytes(of: s.address.sin6_addr) { Array($0) }),
            let da = IPv6Address(bytes: withUnsafeBytes(of: d.address.sin6_addr) { Array($0) })
        else { return .unspecified }
        return .tcp6(source: sa, sourcePort: UInt16(source?.port ?? 0), destination: da, destinationPort: UInt16(destination?.port ?? 0))
    default:
        return .unspecified
    }
}

/// The key behind a signature scheme, as PROXY v2's KEY_ALG names it.
func keyAlgorithm(of scheme: SignatureScheme) -> String {
    switch scheme {
    case .qsslMLDSA65ECDSASecp384r1SHA512: return "ML-DSA-65+ECDSA-P384"
    case .mldsa44: return "ML-DSA-44"
    case .mldsa65: return "ML-DSA-65"
    case .mldsa87: return "ML-DSA-87"
    case .ecdsaSecp384r1SHA384: return "EC384"
    case .ecdsaSecp256r1SHA256: return "EC256"
    case .ecdsaSecp521r1SHA512: return "EC521"
    case .ed25519: return "ED25519"
    default: return scheme.description.hasPrefix("rsa") ? "RSA" : scheme.description
    }
}

/// The commonName of a certificate's subject, read from its parsed attributes (never by
/// splitting the RFC 4514 string, where "O=x\\,CN=admin" would pass for a CN): nil unless the
/// subject has exactly one.
func commonName(ofCertificate der: [UInt8]) -> String? {
    guard let certificate = try? X509Certificate(der: der) else { return nil }
    var names: [String] = []
    for rdn in certificate.subject {
        for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
            names.append(String(describing: attribute.value))
        }
    }
    return names.count == 1 ? names[0] : nil
}

/// "IP:port" (or the Unix path) of an address, for logs.
func describe(_ address: SocketAddress?) -> String {
    guard let address else { return "?" }
    switch address {
    case .v4(let v4):
        // Every connection's access-log field: written out directly (NIO's ipAddress goes
        // through inet_ntop and several String copies, 1.4% of a resumed handshake).
        let ip = UInt32(bigEndian: v4.address.sin_addr.s_addr)
        let port = UInt16(bigEndian: v4.address.sin_port)
        var text = ""
        text.reserveCapacity(21)
        text += String(ip >> 24)
        text += "."
        text += String((ip >> 16) & 0xFF)
        text += "."
        text += String((ip >> 8) & 0xFF)
        text += "."
        text += String(ip & 0xFF)
        text += ":"
        text += String(port)
        return text
    case .v6:
        let ip = address.ipAddress ?? "?"
        return (ip.contains(":") ? "[\(ip)]" : ip) + ":\(address.port ?? 0)"
    case .unixDomainSocket:
        return "unix:" + (address.pathname ?? "")
    }
}

extension Channel {
    /// Stops or resumes reading from the socket (back-pressure). Called on the channel's loop.
    func setAutoRead(_ on: Bool) {
        if eventLoop.inEventLoop {
            try? syncOptions?.setOption(ChannelOptions.autoRead, value: on)
        } else {
            _ = setOption(ChannelOptions.autoRead, value: on)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension ProxyHeader {
    /// The client's address a load balancer reported (nil for LOCAL or unspecified).
    var sourceAddress: SocketAddress? {
        guard command == .proxy else { return nil }
        switch transport {
        case .tcp4(let s, let port, _, _), .udp4(let s, let port, _, _):
            return try? SocketAddress(ipAddress: s.description, port: Int(port))
        case .tcp6(let s, let port, _, _), .udp6(let s, let port, _, _):
            return try? SocketAddress(ipAddress: s.description, port: Int(port))
        default:
            return nil
        }
    }
}
