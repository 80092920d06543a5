/// One PROXY v2 Type-Length-Value field: a type byte, then a 16-bit big-endian length, then
/// the value. Types the codec does not know are carried unchanged.
public struct ProxyTLV: Sendable, Hashable {
    /// The type byte (see the `…Type` constants).
    public var type: UInt8
    /// The value bytes (at most 65535).
    public var value: [UInt8]

    /// A TLV of `type` carrying `value`.
    public init(type: UInt8, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    // MARK: Type codes (proxy-protocol.txt §2.2)

    /// PP2_TYPE_ALPN: the negotiated application protocol (opaque bytes, e.g. "h2").
    public static let alpnType: UInt8 = 0x01
    /// PP2_TYPE_AUTHORITY: the host name the client asked for (SNI), UTF-8.
    public static let authorityType: UInt8 = 0x02
    /// PP2_TYPE_CRC32C: a 32-bit CRC-32C of the whole header, big-endian.
    public static let crc32cType: UInt8 = 0x03
    /// PP2_TYPE_NOOP: padding, ignored.
    public static let noopType: UInt8 = 0x04
    /// PP2_TYPE_UNIQUE_ID: an opaque connection identifier of at most 128 bytes.
    public static let uniqueIDType: UInt8 = 0x05
    /// PP2_TYPE_SSL: the client's TLS parameters (see `SSLInfo`).
    public static let sslType: UInt8 = 0x20
    /// PP2_SUBTYPE_SSL_VERSION, inside an SSL TLV: "TLSv1.3".
    public static let sslVersionSubtype: UInt8 = 0x21
    /// PP2_SUBTYPE_SSL_CN, inside an SSL TLV: the client certificate's subject Common Name.
    public static let sslCommonNameSubtype: UInt8 = 0x22
    /// PP2_SUBTYPE_SSL_CIPHER, inside an SSL TLV: "TLS_AES_256_GCM_SHA384".
    public static let sslCipherSubtype: UInt8 = 0x23
    /// PP2_SUBTYPE_SSL_SIG_ALG, inside an SSL TLV: the client certificate's signature algorithm.
    public static let sslSignatureAlgorithmSubtype: UInt8 = 0x24
    /// PP2_SUBTYPE_SSL_KEY_ALG, inside an SSL TLV: the client certificate's key algorithm.
    public static let sslKeyAlgorithmSubtype: UInt8 = 0x25
    /// PP2_SUBTYPE_SSL_GROUP, inside an SSL TLV: the key-exchange group name.
    public static let sslGroupSubtype: UInt8 = 0x26
    /// PP2_SUBTYPE_SSL_SIG_SCHEME, inside an SSL TLV: the server's signature scheme name.
    public static let sslSignatureSchemeSubtype: UInt8 = 0x27
    /// PP2_SUBTYPE_SSL_CLIENT_CERT, inside an SSL TLV: the client certificate, DER.
    public static let sslClientCertificateSubtype: UInt8 = 0x28
    /// PP2_TYPE_NETNS: the network namespace name, US-ASCII.
    public static let netnsType: UInt8 = 0x30
    /// The Q-SSL application TLV (in the custom range 0xE0–0xEF); see `QSSLInfo`.
    public static let qsslType: UInt8 = 0xE0

    /// The largest UNIQUE_ID value the spec allows.
    public static let maximumUniqueIDLength = 128

    // MARK: Constructors for the standard types

    /// An ALPN TLV carrying the protocol identifier bytes (e.g. `Array("h2".utf8)`).
    public static func alpn(_ protocolID: [UInt8]) -> ProxyTLV { ProxyTLV(type: alpnType, value: protocolID) }

    /// An AUTHORITY TLV carrying the server name (SNI) in UTF-8.
    public static func authority(_ hostName: String) -> ProxyTLV { ProxyTLV(type: authorityType, value: Array(hostName.utf8)) }

    /// A NOOP TLV of `count` zero bytes (padding).
    public static func noop(count: Int = 0) -> ProxyTLV { ProxyTLV(type: noopType, value: Array(repeating: 0, count: max(0, count))) }

    /// A UNIQUE_ID TLV; throws if `id` is longer than 128 bytes.
    public static func uniqueID(_ id: [UInt8]) throws(ProxyProtocolError) -> ProxyTLV {
        guard id.count <= maximumUniqueIDLength else {
            throw ProxyProtocolError(.cannotEncode, "PROXY v2: UNIQUE_ID of \(id.count) bytes is longer than 128")
        }
        return ProxyTLV(type: uniqueIDType, value: id)
    }

    /// A NETNS TLV carrying the namespace name.
    public static func netns(_ name: String) -> ProxyTLV { ProxyTLV(type: netnsType, value: Array(name.utf8)) }

    /// The value as UTF-8 text, or nil if it is not valid UTF-8.
    public var stringValue: String? { decodeUTF8(value) }

    /// A short name for a type code, for messages ("AUTHORITY", "SSL", "0xE3").
    public static func name(of type: UInt8) -> String {
        switch type {
        case alpnType: "ALPN"
        case authorityType: "AUTHORITY"
        case crc32cType: "CRC32C"
        case noopType: "NOOP"
        case uniqueIDType: "UNIQUE_ID"
        case sslType: "SSL"
        case netnsType: "NETNS"
        case qsslType: "Q-SSL"
        default: "0x" + hexByte(type)
        }
    }
}

extension ProxyTLV {
    /// Appends `tlvs` in wire form to `out`; throws if a value is longer than 65535 bytes.
    static func encode(_ tlvs: [ProxyTLV], into out: inout [UInt8], context: String) throws(ProxyProtocolError) {
        for t in tlvs {
            guard t.value.count <= 0xFFFF else {
                throw ProxyProtocolError(.cannotEncode, "\(context): \(name(of: t.type)) TLV value of \(t.value.count) bytes is longer than 65535")
            }
            out.append(t.type)
            out.append(UInt8(t.value.count >> 8))
            out.append(UInt8(t.value.count & 0xFF))
            out += t.value
        }
    }

    /// Splits `bytes` into TLVs that exactly fill it; throws if one is truncated or overlong.
    static func decodeList(_ bytes: ArraySlice<UInt8>, context: String) throws(ProxyProtocolError) -> [ProxyTLV] {
        var result: [ProxyTLV] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let remaining = bytes.endIndex - i
            guard remaining >= 3 else {
                throw ProxyProtocolError(
                    .malformedTLV, "\(context): truncated TLV header (\(remaining) byte\(remaining == 1 ? "" : "s") left, a TLV needs at least 3)")
            }
            let type = bytes[i]
            let length = Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard length <= remaining - 3 else {
                throw ProxyProtocolError(.malformedTLV, "\(context): \(name(of: type)) TLV length \(length) overruns the \(remaining - 3) bytes left")
            }
            result.append(ProxyTLV(type: type, value: Array(bytes[(i + 3)..<(i + 3 + length)])))
            i += 3 + length
        }
        return result
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF".utf8)
    return String(decoding: [digits[Int(b >> 4)], digits[Int(b & 0xF)]], as: UTF8.self)
}

/// Strict UTF-8 decoding (nil on invalid sequences) without Foundation.
func decodeUTF8(_ bytes: [UInt8]) -> String? {
    var it = bytes.makeIterator()
    var decoder = UTF8()
    var s = String.UnicodeScalarView()
    while true {
        switch decoder.decode(&it) {
        case .scalarValue(let u): s.append(u)
        case .emptyInput: return String(s)
        case .error: return nil
        }
    }
}
