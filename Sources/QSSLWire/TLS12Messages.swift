// TLS 1.2 handshake messages (RFC 5246 §7.4, RFC 8422 §5) and the Q-SSL hybrid layouts
// (PROTOCOL.md §3).

extension CipherSuite {
    public static let ecdheECDSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02B)
    public static let ecdheECDSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC02C)
    public static let ecdheRSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02F)
    public static let ecdheRSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC030)
    public static let ecdheRSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA8)
    public static let ecdheECDSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA9)
    /// Q-SSL private suites (PROTOCOL.md §3): ECDHE + ML-KEM hybrid key exchange in TLS 1.2.
    public static let ecdheMLKEMECDSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xFFB1)
    public static let ecdheMLKEMRSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xFFB2)

    public var tls12Name: String? {
        switch self {
        case .ecdheECDSAWithAES128GCMSHA256: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case .ecdheECDSAWithAES256GCMSHA384: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithAES128GCMSHA256: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case .ecdheRSAWithAES256GCMSHA384: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case .ecdheECDSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        case .ecdheMLKEMECDSAWithAES256GCMSHA384: return "TLS_ECDHE_MLKEM_ECDSA_WITH_AES_256_GCM_SHA384"
        case .ecdheMLKEMRSAWithAES256GCMSHA384: return "TLS_ECDHE_MLKEM_RSA_WITH_AES_256_GCM_SHA384"
        default: return nil
        }
    }
}

/// RFC 5246 §7.4.2: a plain list of DER certificates.
public struct TLS12Certificate: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificate
    public var certificates: [[UInt8]]
    public init(certificates: [[UInt8]]) { self.certificates = certificates }
    public init(from r: inout ByteReader) throws(DecodeError) {
        var list = try r.readLengthPrefixed(.uint24(allowEmpty: true), "Certificate.certificate_list")
        certificates = []
        while !list.isEmpty { certificates.append(try list.readOpaque(.uint24(allowEmpty: false), "ASN.1Cert")) }
    }
    public func encode(to w: inout ByteWriter) {
        w.writeLengthPrefixed(.uint24(allowEmpty: true)) { list in
            for c in certificates { list.writeOpaque(.uint24(allowEmpty: false), c) }
        }
    }
}

/// RFC 8422 §5.4 ServerKeyExchange for named curves, and PROTOCOL.md §3 for hybrid groups
/// (whose public value has a 16-bit length).
public struct ServerKeyExchange: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.serverKeyExchange
    public var group: NamedGroup
    public var publicValue: [UInt8]
    public var scheme: SignatureScheme
    public var signature: [UInt8]

    public init(group: NamedGroup, publicValue: [UInt8], scheme: SignatureScheme, signature: [UInt8]) {
        self.group = group
        self.publicValue = publicValue
        self.scheme = scheme
        self.signature = signature
    }

    public init(from r: inout ByteReader) throws(DecodeError) {
        guard try r.readUInt8("ServerKeyExchange.curve_type") == 3 else { throw .illegalValue(field: "ServerKeyExchange.curve_type") }
        group = NamedGroup(rawValue: try r.readUInt16("ServerKeyExchange.named_curve"))
        publicValue = try r.readOpaque(group.isPostQuantum ? .uint16(allowEmpty: false) : .uint8(allowEmpty: false), "ServerKeyExchange.public")
        scheme = SignatureScheme(rawValue: try r.readUInt16("ServerKeyExchange.algorithm"))
        signature = try r.readOpaque(.uint16(allowEmpty: false), "ServerKeyExchange.signature")
    }

    /// ServerECDHParams: what the signature covers after the two randoms.
    public func params() throws(EncodeError) -> [UInt8] {
        var w = ByteWriter(capacity: publicValue.count + 6)
        w.write(UInt8(3))
        w.write(group.rawValue)
        w.writeOpaque(group.isPostQuantum ? .uint16(allowEmpty: false) : .uint8(allowEmpty: false), publicValue)
        return try w.finish()
    }

    public func encode(to w: inout ByteWriter) {
        w.write(UInt8(3))
        w.write(group.rawValue)
        w.writeOpaque(group.isPostQuantum ? .uint16(allowEmpty: false) : .uint8(allowEmpty: false), publicValue)
        w.write(scheme.rawValue)
        w.writeOpaque(.uint16(allowEmpty: false), signature)
    }
}

/// RFC 8422 §5.7 ClientKeyExchange (ECDHE point, 8-bit length) and PROTOCOL.md §3 (hybrid
/// exchange, 16-bit length). The length width depends on the negotiated group.
public struct ClientKeyExchange: Hashable, Sendable {
    public var exchange: [UInt8]
    public init(exchange: [UInt8]) { self.exchange = exchange }

    public static func decode(_ message: HandshakeMessage, hybrid: Bool) throws(DecodeError) -> ClientKeyExchange {
        var r = ByteReader(message.body)
        let e = try r.readOpaque(hybrid ? .uint16(allowEmpty: false) : .uint8(allowEmpty: false), "ClientKeyExchange.exchange")
        try r.finish("ClientKeyExchange")
        return ClientKeyExchange(exchange: e)
    }

    public func message(hybrid: Bool) throws(EncodeError) -> HandshakeMessage {
        var w = ByteWriter(capacity: exchange.count + 2)
        w.writeOpaque(hybrid ? .uint16(allowEmpty: false) : .uint8(allowEmpty: false), exchange)
        return HandshakeMessage(type: .clientKeyExchange, body: try w.finish())
    }
}

/// RFC 5246 §7.4.4.
public struct TLS12CertificateRequest: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificateRequest
    public var certificateTypes: [UInt8]
    public var schemes: [SignatureScheme]
    public var authorities: [[UInt8]]
    public init(certificateTypes: [UInt8], schemes: [SignatureScheme], authorities: [[UInt8]]) {
        self.certificateTypes = certificateTypes
        self.schemes = schemes
        self.authorities = authorities
    }
    public init(from r: inout ByteReader) throws(DecodeError) {
        certificateTypes = try r.readOpaque(.uint8(allowEmpty: false), "CertificateRequest.certificate_types")
        var s = try r.readLengthPrefixed(.uint16(allowEmpty: false), "CertificateRequest.supported_signature_algorithms")
        schemes = []
        while !s.isEmpty { schemes.append(SignatureScheme(rawValue: try s.readUInt16("CertificateRequest.supported_signature_algorithms"))) }
        var a = try r.readLengthPrefixed(.uint16(allowEmpty: true), "CertificateRequest.certificate_authorities")
        authorities = []
        while !a.isEmpty { authorities.append(try a.readOpaque(.uint16(allowEmpty: false), "DistinguishedName")) }
    }
    public func encode(to w: inout ByteWriter) {
        w.writeOpaque(.uint8(allowEmpty: false), certificateTypes)
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { for s in schemes { $0.write(s.rawValue) } }
        w.writeLengthPrefixed(.uint16(allowEmpty: true)) { for a in authorities { $0.writeOpaque(.uint16(allowEmpty: false), a) } }
    }
}

/// RFC 5246 §7.4.5: empty.
public struct ServerHelloDone: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.serverHelloDone
    public init() {}
    public init(from r: inout ByteReader) throws(DecodeError) {}
    public func encode(to w: inout ByteWriter) {}
}

/// RFC 5077 §3.3: the TLS 1.2 NewSessionTicket (same handshake type as TLS 1.3's, another body).
public struct TLS12NewSessionTicket: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.newSessionTicket
    public var lifetimeHint: UInt32
    /// Empty when the server will not renew the ticket it was offered.
    public var ticket: [UInt8]
    public init(lifetimeHint: UInt32, ticket: [UInt8]) {
        self.lifetimeHint = lifetimeHint
        self.ticket = ticket
    }
    public init(from r: inout ByteReader) throws(DecodeError) {
        lifetimeHint = try r.readUInt32("NewSessionTicket.ticket_lifetime_hint")
        ticket = try r.readOpaque(.uint16(allowEmpty: true), "NewSessionTicket.ticket")
    }
    public func encode(to w: inout ByteWriter) {
        w.write(lifetimeHint)
        w.writeOpaque(.uint16(allowEmpty: true), ticket)
    }
}

/// RFC 6066 §8: CertificateStatus { status_type ocsp(1); opaque OCSPResponse<1..2^24-1> }.
public struct CertificateStatus: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificateStatus
    public var ocspResponse: [UInt8]
    public init(ocspResponse: [UInt8]) { self.ocspResponse = ocspResponse }
    public init(from r: inout ByteReader) throws(DecodeError) {
        guard try r.readUInt8("CertificateStatus.status_type") == 1 else { throw .illegalValue(field: "CertificateStatus.status_type") }
        ocspResponse = try r.readOpaque(.uint24(allowEmpty: false), "CertificateStatus.ocsp_response")
    }
    public func encode(to w: inout ByteWriter) {
        w.write(UInt8(1))
        w.writeOpaque(.uint24(allowEmpty: false), ocspResponse)
    }
}
