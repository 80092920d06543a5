extension ProxyTLV {
    /// The `client` bit field of a PP2_TYPE_SSL TLV.
    public struct SSLClientFlags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// PP2_CLIENT_SSL (0x01): the client connected over SSL/TLS.
        public static let ssl = SSLClientFlags(rawValue: 0x01)
        /// PP2_CLIENT_CERT_CONN (0x02): the client presented a certificate on this connection.
        public static let certificateOnConnection = SSLClientFlags(rawValue: 0x02)
        /// PP2_CLIENT_CERT_SESS (0x04): the client presented a certificate at least once in the
        /// TLS session this connection belongs to (for example before a resumption).
        public static let certificateInSession = SSLClientFlags(rawValue: 0x04)
    }

    /// Whether and when the client presented a certificate, for `ProxyTLV.ssl(...)`.
    public enum ClientCertificate: Sendable, Hashable {
        /// No client certificate.
        case none
        /// Presented on this connection (sets CERT_CONN and CERT_SESS).
        case presented(verified: Bool)
        /// Presented earlier in a session this connection resumed (sets CERT_SESS only).
        case presentedEarlierInSession(verified: Bool)
    }

    /// The contents of a PP2_TYPE_SSL TLV: `client` flags (1 byte), `verify` (4 bytes,
    /// big-endian, 0 when a client certificate was presented and verified), then sub-TLVs.
    public struct SSLInfo: Sendable, Hashable {
        /// The `client` bit field.
        public var client: SSLClientFlags
        /// The certificate verification result: 0 means a client certificate was presented and
        /// verified; anything else means it was not (or none was presented).
        public var verify: UInt32
        /// PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3".
        public var version: String?
        /// PP2_SUBTYPE_SSL_CN: the client certificate subject's Common Name.
        public var commonName: String?
        /// PP2_SUBTYPE_SSL_CIPHER, e.g. "TLS_AES_256_GCM_SHA384".
        public var cipher: String?
        /// PP2_SUBTYPE_SSL_SIG_ALG: the algorithm that signed the client certificate.
        public var signatureAlgorithm: String?
        /// PP2_SUBTYPE_SSL_KEY_ALG: the client certificate's key algorithm.
        public var keyAlgorithm: String?
        /// PP2_SUBTYPE_SSL_GROUP: the key-exchange group, e.g. "X25519MLKEM768".
        public var group: String?
        /// PP2_SUBTYPE_SSL_SIG_SCHEME: the scheme of the server's CertificateVerify.
        public var signatureScheme: String?
        /// PP2_SUBTYPE_SSL_CLIENT_CERT: the client certificate, DER.
        public var clientCertificate: [UInt8]?
        /// Sub-TLVs of other types, kept in order (encoded after the known ones).
        public var otherSubTLVs: [ProxyTLV]

        /// SSL TLV contents; `client` defaults to "connected over TLS, no certificate" and
        /// `verify` to 1 (not verified).
        public init(
            client: SSLClientFlags = .ssl, verify: UInt32 = 1, version: String? = nil, commonName: String? = nil,
            cipher: String? = nil, signatureAlgorithm: String? = nil, keyAlgorithm: String? = nil,
            group: String? = nil, signatureScheme: String? = nil, clientCertificate: [UInt8]? = nil,
            otherSubTLVs: [ProxyTLV] = []
        ) {
            self.client = client
            self.verify = verify
            self.version = version
            self.commonName = commonName
            self.cipher = cipher
            self.signatureAlgorithm = signatureAlgorithm
            self.keyAlgorithm = keyAlgorithm
            self.group = group
            self.signatureScheme = signatureScheme
            self.clientCertificate = clientCertificate
            self.otherSubTLVs = otherSubTLVs
        }

        /// True if the client presented a certificate (on this connection or earlier in the
        /// session) and it was verified.
        public var clientCertificateVerified: Bool {
            !client.isDisjoint(with: [.certificateOnConnection, .certificateInSession]) && verify == 0
        }

        /// Decodes an SSL TLV value; throws if it is shorter than 5 bytes, its sub-TLVs do not
        /// exactly fill it, a known sub-TLV repeats, or a text sub-TLV is not UTF-8.
        public init(decoding value: [UInt8]) throws(ProxyProtocolError) {
            guard value.count >= 5 else {
                throw ProxyProtocolError(.malformedTLV, "PROXY v2: SSL TLV of \(value.count) bytes is shorter than 5 (client flags + verify)")
            }
            self.init(
                client: SSLClientFlags(rawValue: value[0]),
                verify: UInt32(value[1]) << 24 | UInt32(value[2]) << 16 | UInt32(value[3]) << 8 | UInt32(value[4]))
            var seen: Set<UInt8> = []
            for sub in try ProxyTLV.decodeList(value[5...], context: "PROXY v2: SSL TLV") {
                let known: Set<UInt8> = Set(0x21...0x28)
                if known.contains(sub.type) {
                    guard seen.insert(sub.type).inserted else {
                        throw ProxyProtocolError(.malformedTLV, "PROXY v2: SSL TLV has sub-TLV \(Self.subtypeName(sub.type)) more than once")
                    }
                }
                if sub.type == ProxyTLV.sslClientCertificateSubtype {
                    clientCertificate = sub.value
                    continue
                }
                guard known.contains(sub.type) else {
                    otherSubTLVs.append(sub)
                    continue
                }
                guard let text = decodeUTF8(sub.value) else {
                    throw ProxyProtocolError(.malformedTLV, "PROXY v2: SSL sub-TLV \(Self.subtypeName(sub.type)) is not valid UTF-8")
                }
                switch sub.type {
                case ProxyTLV.sslVersionSubtype: version = text
                case ProxyTLV.sslCommonNameSubtype: commonName = text
                case ProxyTLV.sslCipherSubtype: cipher = text
                case ProxyTLV.sslSignatureAlgorithmSubtype: signatureAlgorithm = text
                case ProxyTLV.sslKeyAlgorithmSubtype: keyAlgorithm = text
                case ProxyTLV.sslGroupSubtype: group = text
                default: signatureScheme = text
                }
            }
        }

        /// The TLV value: flags, verify, then the sub-TLVs present (VERSION, CN, CIPHER,
        /// SIG_ALG, KEY_ALG, GROUP, SIG_SCHEME, CLIENT_CERT, then `otherSubTLVs`).
        public func encode() throws(ProxyProtocolError) -> [UInt8] {
            var out: [UInt8] = [
                client.rawValue, UInt8(verify >> 24), UInt8((verify >> 16) & 0xFF),
                UInt8((verify >> 8) & 0xFF), UInt8(verify & 0xFF)
            ]
            var subs: [ProxyTLV] = []
            let texts: [(UInt8, String?)] = [
                (ProxyTLV.sslVersionSubtype, version), (ProxyTLV.sslCommonNameSubtype, commonName),
                (ProxyTLV.sslCipherSubtype, cipher), (ProxyTLV.sslSignatureAlgorithmSubtype, signatureAlgorithm),
                (ProxyTLV.sslKeyAlgorithmSubtype, keyAlgorithm), (ProxyTLV.sslGroupSubtype, group),
                (ProxyTLV.sslSignatureSchemeSubtype, signatureScheme)
            ]
            for case (let type, let text?) in texts { subs.append(ProxyTLV(type: type, value: Array(text.utf8))) }
            if let clientCertificate { subs.append(ProxyTLV(type: ProxyTLV.sslClientCertificateSubtype, value: clientCertificate)) }
            subs += otherSubTLVs
            try ProxyTLV.encode(subs, into: &out, context: "PROXY v2: SSL TLV")
            return out
        }

        static func subtypeName(_ type: UInt8) -> String {
            switch type {
            case 0x21: "VERSION"
            case 0x22: "CN"
            case 0x23: "CIPHER"
            case 0x24: "SIG_ALG"
            case 0x25: "KEY_ALG"
            case 0x26: "GROUP"
            case 0x27: "SIG_SCHEME"
            case 0x28: "CLIENT_CERT"
            default: "0x" + hexByte(type)
            }
        }
    }

    /// An SSL TLV from `info`; throws if a value is longer than 65535 bytes.
    public static func ssl(_ info: SSLInfo) throws(ProxyProtocolError) -> ProxyTLV {
        ProxyTLV(type: sslType, value: try info.encode())
    }

    /// An SSL TLV for a client connected over TLS: sets PP2_CLIENT_SSL, the certificate flags
    /// and `verify` (0 only for a verified certificate) from `clientCertificate`, and adds the
    /// sub-TLVs whose values are given.
    public static func ssl(
        version: String?, cipher: String?, clientCertificate: ClientCertificate = .none,
        commonName: String? = nil, signatureAlgorithm: String? = nil, keyAlgorithm: String? = nil,
        group: String? = nil, signatureScheme: String? = nil
    ) throws(ProxyProtocolError) -> ProxyTLV {
        var flags: SSLClientFlags = .ssl
        var verified = false
        switch clientCertificate {
        case .none: break
        case .presented(let v):
            flags.formUnion([.certificateOnConnection, .certificateInSession])
            verified = v
        case .presentedEarlierInSession(let v):
            flags.insert(.certificateInSession)
            verified = v
        }
        return try ssl(
            SSLInfo(
                client: flags, verify: verified ? 0 : 1, version: version, commonName: commonName, cipher: cipher,
                signatureAlgorithm: signatureAlgorithm, keyAlgorithm: keyAlgorithm, group: group,
                signatureScheme: signatureScheme))
    }

    /// This TLV's SSL contents, or nil if it is not a well-formed SSL TLV.
    public var sslInfo: SSLInfo? {
        guard type == ProxyTLV.sslType else { return nil }
        return try? SSLInfo(decoding: value)
    }
}
