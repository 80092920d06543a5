// Open code-point types: a peer may send any value, so these are structs with named constants,
// never closed enums (STYLE §7). `description` prints the IANA name or the hex value.

@inline(__always) func hex16(_ v: UInt16) -> String {
    let digits = Array("0123456789abcdef")
    return "0x" + String([digits[Int(v >> 12) & 15], digits[Int(v >> 8) & 15], digits[Int(v >> 4) & 15], digits[Int(v) & 15]])
}

public struct ProtocolVersion: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let tls10 = ProtocolVersion(rawValue: 0x0301)
    public static let tls11 = ProtocolVersion(rawValue: 0x0302)
    public static let tls12 = ProtocolVersion(rawValue: 0x0303)
    public static let tls13 = ProtocolVersion(rawValue: 0x0304)
    public var description: String {
        switch self {
        case .tls10: return "TLSv1.0"
        case .tls11: return "TLSv1.1"
        case .tls12: return "TLSv1.2"
        case .tls13: return "TLSv1.3"
        default: return hex16(rawValue)
        }
    }
    /// A GREASE value (RFC 8701): 0x?A?A with equal bytes.
    public var isGrease: Bool { rawValue & 0x0F0F == 0x0A0A && rawValue >> 8 == rawValue & 0xFF }
}

public struct ContentType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let changeCipherSpec = ContentType(rawValue: 20)
    public static let alert = ContentType(rawValue: 21)
    public static let handshake = ContentType(rawValue: 22)
    public static let applicationData = ContentType(rawValue: 23)
    public var description: String {
        switch self {
        case .changeCipherSpec: return "change_cipher_spec"
        case .alert: return "alert"
        case .handshake: return "handshake"
        case .applicationData: return "application_data"
        default: return "content_type(\(rawValue))"
        }
    }
}

public struct HandshakeType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let helloRequest = HandshakeType(rawValue: 0)
    public static let clientHello = HandshakeType(rawValue: 1)
    public static let serverHello = HandshakeType(rawValue: 2)
    public static let newSessionTicket = HandshakeType(rawValue: 4)
    public static let endOfEarlyData = HandshakeType(rawValue: 5)
    public static let encryptedExtensions = HandshakeType(rawValue: 8)
    public static let certificate = HandshakeType(rawValue: 11)
    public static let serverKeyExchange = HandshakeType(rawValue: 12)
    public static let certificateRequest = HandshakeType(rawValue: 13)
    public static let serverHelloDone = HandshakeType(rawValue: 14)
    public static let certificateVerify = HandshakeType(rawValue: 15)
    public static let clientKeyExchange = HandshakeType(rawValue: 16)
    public static let finished = HandshakeType(rawValue: 20)
    public static let keyUpdate = HandshakeType(rawValue: 24)
    /// RFC 6066 §8: TLS 1.2 CertificateStatus (the stapled OCSP response).
    public static let certificateStatus = HandshakeType(rawValue: 22)
    public static let messageHash = HandshakeType(rawValue: 254)
    public var description: String {
        switch self {
        case .helloRequest: return "HelloRequest"
        case .clientHello: return "ClientHello"
        case .serverHello: return "ServerHello"
        case .newSessionTicket: return "NewSessionTicket"
        case .endOfEarlyData: return "EndOfEarlyData"
        case .encryptedExtensions: return "EncryptedExtensions"
        case .certificate: return "Certificate"
        case .serverKeyExchange: return "ServerKeyExchange"
        case .certificateRequest: return "CertificateRequest"
        case .serverHelloDone: return "ServerHelloDone"
        case .certificateVerify: return "CertificateVerify"
        case .clientKeyExchange: return "ClientKeyExchange"
        case .finished: return "Finished"
        case .keyUpdate: return "KeyUpdate"
        case .certificateStatus: return "CertificateStatus"
        case .messageHash: return "message_hash"
        default: return "handshake_type(\(rawValue))"
        }
    }
}

public struct CipherSuite: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let tlsAES128GCMSHA256 = CipherSuite(rawValue: 0x1301)
    public static let tlsAES256GCMSHA384 = CipherSuite(rawValue: 0x1302)
    public static let tlsChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0x1303)
    public static let emptyRenegotiationInfoSCSV = CipherSuite(rawValue: 0x00FF)
    public static let fallbackSCSV = CipherSuite(rawValue: 0x5600)
    public var description: String {
        switch self {
        case .tlsAES128GCMSHA256: return "TLS_AES_128_GCM_SHA256"
        case .tlsAES256GCMSHA384: return "TLS_AES_256_GCM_SHA384"
        case .tlsChaCha20Poly1305SHA256: return "TLS_CHACHA20_POLY1305_SHA256"
        case .emptyRenegotiationInfoSCSV: return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
        default: return tls12Name ?? hex16(rawValue)
        }
    }
}

public struct NamedGroup: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let secp256r1 = NamedGroup(rawValue: 0x0017)
    public static let secp384r1 = NamedGroup(rawValue: 0x0018)
    public static let secp521r1 = NamedGroup(rawValue: 0x0019)
    public static let x25519 = NamedGroup(rawValue: 0x001D)
    public static let x448 = NamedGroup(rawValue: 0x001E)
    public static let mlkem512 = NamedGroup(rawValue: 0x0200)
    public static let mlkem768 = NamedGroup(rawValue: 0x0201)
    public static let mlkem1024 = NamedGroup(rawValue: 0x0202)
    public static let secp256r1MLKEM768 = NamedGroup(rawValue: 0x11EB)
    public static let x25519MLKEM768 = NamedGroup(rawValue: 0x11EC)
    public static let secp384r1MLKEM1024 = NamedGroup(rawValue: 0x11ED)

    /// The sizes of a key-share answer in this group: the responder's share (an EC point, an
    /// ML-KEM ciphertext, or both as the hybrid concatenates them) and the shared secret. Nil
    /// for a group Q-SSL does not define. A provider's answer (a token's, say) of any other size
    /// is refused before it is used.
    public var responseLengths: (share: Int, secret: Int)? {
        switch self {
        case .x25519: return (32, 32)
        case .x448: return (56, 56)
        case .secp256r1: return (65, 32)
        case .secp384r1: return (97, 48)
        case .secp521r1: return (133, 66)
        case .mlkem512: return (768, 32)
        case .mlkem768: return (1088, 32)
        case .mlkem1024: return (1568, 32)
        // draft-ietf-tls-ecdhe-mlkem: the EC part first, except in X25519MLKEM768.
        case .secp256r1MLKEM768: return (65 + 1088, 32 + 32)
        case .x25519MLKEM768: return (1088 + 32, 32 + 32)
        case .secp384r1MLKEM1024: return (97 + 1568, 48 + 32)
        default: return nil
        }
    }

    /// The IANA name, as the command line accepts it.
    public var name: String? {
        switch self {
        case .secp256r1: return "secp256r1"
        case .secp384r1: return "secp384r1"
        case .secp521r1: return "secp521r1"
        case .x25519: return "x25519"
        case .x448: return "x448"
        case .mlkem512: return "MLKEM512"
        case .mlkem768: return "MLKEM768"
        case .mlkem1024: return "MLKEM1024"
        case .secp256r1MLKEM768: return "SecP256r1MLKEM768"
        case .x25519MLKEM768: return "X25519MLKEM768"
        case .secp384r1MLKEM1024: return "SecP384r1MLKEM1024"
        default: return nil
        }
    }
    public var description: String { name ?? hex16(rawValue) }

    /// Looks a group up by its IANA name (case-insensitive) or a hex code such as `0x11ed`.
    public init?(name: String) {
        let all: [NamedGroup] = [
            .secp256r1, .secp384r1, .secp521r1, .x25519, .x448, .mlkem512, .mlkem768, .mlkem1024,
            .secp256r1MLKEM768, .x25519MLKEM768, .secp384r1MLKEM1024
        ]
        if let g = all.first(where: { $0.name!.lowercased() == name.lowercased() }) {
            self = g
        } else if name.lowercased().hasPrefix("0x"), let v = UInt16(name.dropFirst(2), radix: 16) {
            self.init(rawValue: v)
        } else {
            return nil
        }
    }

    /// Whether the group's key exchange includes ML-KEM (pure or hybrid).
    public var isPostQuantum: Bool {
        switch self {
        case .mlkem512, .mlkem768, .mlkem1024, .secp256r1MLKEM768, .x25519MLKEM768, .secp384r1MLKEM1024: return true
        default: return false
        }
    }
    public var isGrease: Bool { rawValue & 0x0F0F == 0x0A0A && rawValue >> 8 == rawValue & 0xFF }
}

public struct SignatureScheme: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let rsaPKCS1SHA256 = SignatureScheme(rawValue: 0x0401)
    public static let rsaPKCS1SHA384 = SignatureScheme(rawValue: 0x0501)
    public static let rsaPKCS1SHA512 = SignatureScheme(rawValue: 0x0601)
    public static let ecdsaSecp256r1SHA256 = SignatureScheme(rawValue: 0x0403)
    public static let ecdsaSecp384r1SHA384 = SignatureScheme(rawValue: 0x0503)
    public static let ecdsaSecp521r1SHA512 = SignatureScheme(rawValue: 0x0603)
    public static let rsaPSSRSAESHA256 = SignatureScheme(rawValue: 0x0804)
    public static let rsaPSSRSAESHA384 = SignatureScheme(rawValue: 0x0805)
    public static let rsaPSSRSAESHA512 = SignatureScheme(rawValue: 0x0806)
    public static let ed25519 = SignatureScheme(rawValue: 0x0807)
    public static let rsaPSSPSSSHA256 = SignatureScheme(rawValue: 0x0809)
    public static let mldsa44 = SignatureScheme(rawValue: 0x0904)
    public static let mldsa65 = SignatureScheme(rawValue: 0x0905)
    public static let mldsa87 = SignatureScheme(rawValue: 0x0906)
    /// Q-SSL's private code for composite ML-DSA-65 + ECDSA-P384 (PROTOCOL.md §2). The single
    /// place to change when IANA assigns a value.
    public static let qsslMLDSA65ECDSASecp384r1SHA512 = SignatureScheme(rawValue: 0xFE46)

    public var name: String? {
        switch self {
        case .rsaPKCS1SHA256: return "rsa_pkcs1_sha256"
        case .rsaPKCS1SHA384: return "rsa_pkcs1_sha384"
        case .rsaPKCS1SHA512: return "rsa_pkcs1_sha512"
        case .ecdsaSecp256r1SHA256: return "ecdsa_secp256r1_sha256"
        case .ecdsaSecp384r1SHA384: return "ecdsa_secp384r1_sha384"
        case .ecdsaSecp521r1SHA512: return "ecdsa_secp521r1_sha512"
        case .rsaPSSRSAESHA256: return "rsa_pss_rsae_sha256"
        case .rsaPSSRSAESHA384: return "rsa_pss_rsae_sha384"
        case .rsaPSSRSAESHA512: return "rsa_pss_rsae_sha512"
        case .ed25519: return "ed25519"
        case .rsaPSSPSSSHA256: return "rsa_pss_pss_sha256"
        case .mldsa44: return "mldsa44"
        case .mldsa65: return "mldsa65"
        case .mldsa87: return "mldsa87"
        case .qsslMLDSA65ECDSASecp384r1SHA512: return "qssl_mldsa65_ecdsa_secp384r1_sha512"
        default: return nil
        }
    }
    public var description: String { name ?? hex16(rawValue) }
    public var isPostQuantum: Bool {
        self == .mldsa44 || self == .mldsa65 || self == .mldsa87 || self == .qsslMLDSA65ECDSASecp384r1SHA512
    }
}

public struct ExtensionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let serverName = ExtensionType(rawValue: 0)
    public static let statusRequest = ExtensionType(rawValue: 5)
    public static let supportedGroups = ExtensionType(rawValue: 10)
    public static let ecPointFormats = ExtensionType(rawValue: 11)
    public static let signatureAlgorithms = ExtensionType(rawValue: 13)
    public static let alpn = ExtensionType(rawValue: 16)
    public static let signedCertificateTimestamp = ExtensionType(rawValue: 18)
    public static let padding = ExtensionType(rawValue: 21)
    public static let encryptThenMAC = ExtensionType(rawValue: 22)
    public static let extendedMasterSecret = ExtensionType(rawValue: 23)
    public static let compressCertificate = ExtensionType(rawValue: 27)
    public static let recordSizeLimit = ExtensionType(rawValue: 28)
    public static let sessionTicket = ExtensionType(rawValue: 35)
    public static let preSharedKey = ExtensionType(rawValue: 41)
    public static let earlyData = ExtensionType(rawValue: 42)
    public static let supportedVersions = ExtensionType(rawValue: 43)
    public static let cookie = ExtensionType(rawValue: 44)
    public static let pskKeyExchangeModes = ExtensionType(rawValue: 45)
    public static let certificateAuthorities = ExtensionType(rawValue: 47)
    /// RFC 8446 §4.2.5: only in a CertificateRequest.
    public static let oidFilters = ExtensionType(rawValue: 48)
    public static let postHandshakeAuth = ExtensionType(rawValue: 49)
    public static let signatureAlgorithmsCert = ExtensionType(rawValue: 50)
    public static let keyShare = ExtensionType(rawValue: 51)
    public static let renegotiationInfo = ExtensionType(rawValue: 0xFF01)

    public var description: String {
        switch self {
        case .serverName: return "server_name"
        case .statusRequest: return "status_request"
        case .supportedGroups: return "supported_groups"
        case .ecPointFormats: return "ec_point_formats"
        case .signatureAlgorithms: return "signature_algorithms"
        case .alpn: return "application_layer_protocol_negotiation"
        case .extendedMasterSecret: return "extended_master_secret"
        case .sessionTicket: return "session_ticket"
        case .preSharedKey: return "pre_shared_key"
        case .earlyData: return "early_data"
        case .supportedVersions: return "supported_versions"
        case .cookie: return "cookie"
        case .pskKeyExchangeModes: return "psk_key_exchange_modes"
        case .oidFilters: return "oid_filters"
        case .signatureAlgorithmsCert: return "signature_algorithms_cert"
        case .keyShare: return "key_share"
        case .renegotiationInfo: return "renegotiation_info"
        default: return "extension(\(hex16(rawValue)))"
        }
    }
}

public struct AlertLevel: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let warning = AlertLevel(rawValue: 1)
    public static let fatal = AlertLevel(rawValue: 2)
}

public struct AlertDescription: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let closeNotify = AlertDescription(rawValue: 0)
    public static let unexpectedMessage = AlertDescription(rawValue: 10)
    public static let badRecordMAC = AlertDescription(rawValue: 20)
    public static let recordOverflow = AlertDescription(rawValue: 22)
    public static let handshakeFailure = AlertDescription(rawValue: 40)
    public static let badCertificate = AlertDescription(rawValue: 42)
    public static let unsupportedCertificate = AlertDescription(rawValue: 43)
    public static let certificateRevoked = AlertDescription(rawValue: 44)
    public static let certificateExpired = AlertDescription(rawValue: 45)
    public static let certificateUnknown = AlertDescription(rawValue: 46)
    public static let illegalParameter = AlertDescription(rawValue: 47)
    public static let unknownCA = AlertDescription(rawValue: 48)
    public static let accessDenied = AlertDescription(rawValue: 49)
    public static let decodeError = AlertDescription(rawValue: 50)
    public static let decryptError = AlertDescription(rawValue: 51)
    public static let protocolVersion = AlertDescription(rawValue: 70)
    public static let insufficientSecurity = AlertDescription(rawValue: 71)
    public static let internalError = AlertDescription(rawValue: 80)
    public static let inappropriateFallback = AlertDescription(rawValue: 86)
    public static let userCanceled = AlertDescription(rawValue: 90)
    public static let noRenegotiation = AlertDescription(rawValue: 100)
    public static let missingExtension = AlertDescription(rawValue: 109)
    public static let unsupportedExtension = AlertDescription(rawValue: 110)
    public static let unrecognizedName = AlertDescription(rawValue: 112)
    public static let badCertificateStatusResponse = AlertDescription(rawValue: 113)
    public static let unknownPSKIdentity = AlertDescription(rawValue: 115)
    public static let certificateRequired = AlertDescription(rawValue: 116)
    public static let noApplicationProtocol = AlertDescription(rawValue: 120)

    public var name: String? {
        switch self {
        case .closeNotify: return "close_notify"
        case .unexpectedMessage: return "unexpected_message"
        case .badRecordMAC: return "bad_record_mac"
        case .recordOverflow: return "record_overflow"
        case .handshakeFailure: return "handshake_failure"
        case .badCertificate: return "bad_certificate"
        case .unsupportedCertificate: return "unsupported_certificate"
        case .certificateRevoked: return "certificate_revoked"
        case .certificateExpired: return "certificate_expired"
        case .certificateUnknown: return "certificate_unknown"
        case .illegalParameter: return "illegal_parameter"
        case .unknownCA: return "unknown_ca"
        case .accessDenied: return "access_denied"
        case .decodeError: return "decode_error"
        case .decryptError: return "decrypt_error"
        case .protocolVersion: return "protocol_version"
        case .insufficientSecurity: return "insufficient_security"
        case .internalError: return "internal_error"
        case .inappropriateFallback: return "inappropriate_fallback"
        case .userCanceled: return "user_canceled"
        case .noRenegotiation: return "no_renegotiation"
        case .missingExtension: return "missing_extension"
        case .unsupportedExtension: return "unsupported_extension"
        case .unrecognizedName: return "unrecognized_name"
        case .badCertificateStatusResponse: return "bad_certificate_status_response"
        case .unknownPSKIdentity: return "unknown_psk_identity"
        case .certificateRequired: return "certificate_required"
        case .noApplicationProtocol: return "no_application_protocol"
        default: return nil
        }
    }
    public var description: String { name.map { "\($0)(\(rawValue))" } ?? "alert(\(rawValue))" }
}

public struct PSKKeyExchangeMode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let pskKE = PSKKeyExchangeMode(rawValue: 0)
    public static let pskDHEKE = PSKKeyExchangeMode(rawValue: 1)
}
