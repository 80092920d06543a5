/// One extension as it appears on the wire. Bodies are parsed by the typed accessors below, in
/// the message that carries them, so unknown extensions (GREASE included) are carried and ignored.
public struct Extension: Hashable, Sendable {
    public var type: ExtensionType
    public var data: [UInt8]
    public init(type: ExtensionType, data: [UInt8]) {
        self.type = type
        self.data = data
    }
}

/// An ordered extension block with duplicate detection (RFC 8446 §4.2: "There MUST NOT be more
/// than one extension of the same type in a given extension block").
public struct ExtensionList: Hashable, Sendable, WireEncodable {
    public var items: [Extension]

    public init(_ items: [Extension] = []) { self.items = items }

    public init(from reader: inout ByteReader, context: String, allowEmpty: Bool = true) throws(DecodeError) {
        var body = try reader.readLengthPrefixed(.uint16(allowEmpty: allowEmpty), "\(context).extensions")
        var seen = SeenExtensionTypes()
        var items: [Extension] = []
        while !body.isEmpty {
            let type = ExtensionType(rawValue: try body.readUInt16("\(context).extension_type"))
            let data = try body.readOpaque(.uint16(allowEmpty: true), "\(context).\(type).extension_data")
            guard seen.insert(type.rawValue) else { throw .duplicateExtension(type) }
            items.append(Extension(type: type, data: data))
        }
        self.items = items
    }

    public func encode(to writer: inout ByteWriter) {
        writer.writeLengthPrefixed(.uint16(allowEmpty: true)) { w in
            for e in items {
                w.write(e.type.rawValue)
                w.writeOpaque(.uint16(allowEmpty: true), e.data)
            }
        }
    }

    public subscript(type: ExtensionType) -> [UInt8]? { items.first { $0.type == type }?.data }
    public func contains(_ type: ExtensionType) -> Bool { items.contains { $0.type == type } }
    public var types: [ExtensionType] { items.map(\.type) }

    public mutating func append(_ type: ExtensionType, _ data: [UInt8]) {
        items.append(Extension(type: type, data: data))
    }
    public mutating func append(_ type: ExtensionType, _ body: (inout ByteWriter) -> Void) throws(EncodeError) {
        var w = ByteWriter()
        body(&w)
        items.append(Extension(type: type, data: try w.finish()))
    }
}

/// The extension types of one block, for duplicate detection without a hash set in the usual
/// case: the types under 64 (every one a ClientHello commonly carries) in a bit set, a few
/// others (GREASE, renegotiation_info, ECH) in a short list, and only a block with many of
/// those (a hostile one: up to 16,383 empty extensions) in a set, so the work stays linear.
struct SeenExtensionTypes {
    private var low: UInt64 = 0
    private var high: [UInt16] = []
    private var many: Set<UInt16>?
    static let listLimit = 16

    /// Adds `type`; false if it was already there.
    mutating func insert(_ type: UInt16) -> Bool {
        if type < 64 {
            let bit = UInt64(1) << type
            defer { low |= bit }
            return low & bit == 0
        }
        if many != nil { return many!.insert(type).inserted }
        if high.contains(type) { return false }
        high.append(type)
        if high.count > Self.listLimit { many = Set(high) }
        return true
    }
}

/// RFC 8446 §4.2.8: one key share.
public struct KeyShareEntry: Hashable, Sendable, WireEncodable {
    public var group: NamedGroup
    public var keyExchange: [UInt8]
    public init(group: NamedGroup, keyExchange: [UInt8]) {
        self.group = group
        self.keyExchange = keyExchange
    }
    public init(from reader: inout ByteReader) throws(DecodeError) {
        group = NamedGroup(rawValue: try reader.readUInt16("KeyShareEntry.group"))
        keyExchange = try reader.readOpaque(.uint16(allowEmpty: false), "KeyShareEntry.key_exchange")
    }
    public func encode(to writer: inout ByteWriter) {
        writer.write(group.rawValue)
        writer.writeOpaque(.uint16(allowEmpty: false), keyExchange)
    }
}

/// Decoders and encoders of the extension bodies Q-SSL understands. Each decoder consumes the
/// whole body and fails on trailing bytes.
public enum ExtensionBody {
    public static func decodeU16List(_ data: [UInt8], _ field: String, prefix: LengthPrefix = .uint16(allowEmpty: false)) throws(DecodeError) -> [UInt16] {
        var r = ByteReader(data)
        var body = try r.readLengthPrefixed(prefix, field)
        try r.finish(field)
        guard body.remaining % 2 == 0 else { throw .invalidValue(field: field) }
        var out: [UInt16] = []
        out.reserveCapacity(body.remaining / 2)
        while !body.isEmpty { out.append(try body.readUInt16(field)) }
        return out
    }

    public static func encodeU16List(_ values: [UInt16], prefix: LengthPrefix = .uint16(allowEmpty: false)) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(prefix) { for v in values { $0.write(v) } }
        return try w.finish()
    }

    public static func supportedGroups(_ data: [UInt8]) throws(DecodeError) -> [NamedGroup] {
        try decodeU16List(data, "supported_groups").map(NamedGroup.init(rawValue:))
    }
    public static func signatureAlgorithms(_ data: [UInt8], _ field: String = "signature_algorithms") throws(DecodeError) -> [SignatureScheme] {
        try decodeU16List(data, field).map(SignatureScheme.init(rawValue:))
    }
    public static func clientSupportedVersions(_ data: [UInt8]) throws(DecodeError) -> [ProtocolVersion] {
        try decodeU16List(data, "supported_versions", prefix: .uint8(allowEmpty: false)).map(ProtocolVersion.init(rawValue:))
    }
    public static func serverSupportedVersion(_ data: [UInt8]) throws(DecodeError) -> ProtocolVersion {
        var r = ByteReader(data)
        let v = try r.readUInt16("supported_versions.selected_version")
        try r.finish("supported_versions")
        return ProtocolVersion(rawValue: v)
    }

    public static func clientKeyShares(_ data: [UInt8]) throws(DecodeError) -> [KeyShareEntry] {
        var r = ByteReader(data)
        var body = try r.readLengthPrefixed(.uint16(allowEmpty: true), "key_share.client_shares")
        try r.finish("key_share")
        var out: [KeyShareEntry] = []
        while !body.isEmpty { out.append(try KeyShareEntry(from: &body)) }
        return out
    }
    public static func encodeClientKeyShares(_ shares: [KeyShareEntry]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        w.writeLengthPrefixed(.uint16(allowEmpty: true)) { for s in shares { s.encode(to: &$0) } }
        return try w.finish()
    }
    public static func serverKeyShare(_ data: [UInt8]) throws(DecodeError) -> KeyShareEntry {
        var r = ByteReader(data)
        let e = try KeyShareEntry(from: &r)
        try r.finish("key_share")
        return e
    }
    public static func helloRetryKeyShare(_ data: [UInt8]) throws(DecodeError) -> NamedGroup {
        var r = ByteReader(data)
        let g = try r.readUInt16("key_share.selected_group")
        try r.finish("key_share")
        return NamedGroup(rawValue: g)
    }

    /// RFC 6066 §3: returns the host_name, if any.
    public static func serverName(_ data: [UInt8]) throws(DecodeError) -> String? {
        var r = ByteReader(data)
        var list = try r.readLengthPrefixed(.uint16(allowEmpty: false), "server_name.server_name_list")
        try r.finish("server_name")
        var host: String?
        while !list.isEmpty {
            let type = try list.readUInt8("server_name.name_type")
            let name = try list.readOpaque(.uint16(allowEmpty: false), "server_name.host_name")
            if type == 0 {
                // "The ServerNameList MUST NOT contain more than one name of the same name_type."
                guard host == nil else { throw .illegalValue(field: "server_name.host_name") }
                guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .illegalValue(field: "server_name.host_name") }
                host = String(decoding: name, as: UTF8.self)
            }
        }
        return host
    }
    public static func encodeServerName(_ host: String) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) {
            $0.write(UInt8(0))
            $0.writeOpaque(.uint16(allowEmpty: false), Array(host.utf8))
        }
        return try w.finish()
    }

    /// RFC 7301 §3.1.
    public static func alpn(_ data: [UInt8]) throws(DecodeError) -> [String] {
        var r = ByteReader(data)
        var list = try r.readLengthPrefixed(.uint16(allowEmpty: false), "alpn.protocol_name_list")
        try r.finish("alpn")
        var out: [String] = []
        while !list.isEmpty {
            out.append(String(decoding: try list.readOpaque(.uint8(allowEmpty: false), "alpn.protocol_name"), as: UTF8.self))
        }
        return out
    }
    public static func encodeALPN(_ protocols: [String]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { for p in protocols { $0.writeOpaque(.uint8(allowEmpty: false), Array(p.utf8)) } }
        return try w.finish()
    }

    public static func cookie(_ data: [UInt8]) throws(DecodeError) -> [UInt8] {
        var r = ByteReader(data)
        let c = try r.readOpaque(.uint16(allowEmpty: false), "cookie")
        try r.finish("cookie")
        return c
    }
    public static func encodeCookie(_ cookie: [UInt8]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeOpaque(.uint16(allowEmpty: false), cookie)
        return try w.finish()
    }

    /// RFC 8446 §4.4.2.1 / RFC 6066 §8: CertificateStatus in a CertificateEntry (status_type
    /// ocsp, then the DER OCSPResponse).
    public static func ocspStatus(_ data: [UInt8]) throws(DecodeError) -> [UInt8] {
        var r = ByteReader(data)
        guard try r.readUInt8("CertificateStatus.status_type") == 1 else { throw .illegalValue(field: "CertificateStatus.status_type") }
        let response = try r.readOpaque(.uint24(allowEmpty: false), "CertificateStatus.ocsp_response")
        try r.finish("CertificateStatus")
        return response
    }

    /// RFC 6962 §3.3: SignedCertificateTimestampList.
    public static func signedCertificateTimestamps(_ data: [UInt8]) throws(DecodeError) -> [[UInt8]] {
        var r = ByteReader(data)
        var list = try r.readLengthPrefixed(.uint16(allowEmpty: false), "SignedCertificateTimestampList")
        try r.finish("signed_certificate_timestamp")
        var out: [[UInt8]] = []
        while !list.isEmpty { out.append(try list.readOpaque(.uint16(allowEmpty: false), "SerializedSCT")) }
        return out
    }

    public static func pskKeyExchangeModes(_ data: [UInt8]) throws(DecodeError) -> [PSKKeyExchangeMode] {
        var r = ByteReader(data)
        let modes = try r.readOpaque(.uint8(allowEmpty: false), "psk_key_exchange_modes")
        try r.finish("psk_key_exchange_modes")
        return modes.map(PSKKeyExchangeMode.init(rawValue:))
    }
}

/// RFC 8446 §4.2.11: one PSK the client offers, and its binder.
public struct PSKIdentity: Hashable, Sendable {
    public var identity: [UInt8]
    public var obfuscatedTicketAge: UInt32
    public init(identity: [UInt8], obfuscatedTicketAge: UInt32) {
        self.identity = identity
        self.obfuscatedTicketAge = obfuscatedTicketAge
    }
}

/// RFC 8446 §4.2.11: the client's pre_shared_key extension.
public struct OfferedPSKs: Hashable, Sendable {
    public var identities: [PSKIdentity]
    public var binders: [[UInt8]]
    public init(identities: [PSKIdentity], binders: [[UInt8]]) {
        self.identities = identities
        self.binders = binders
    }

    public init(decoding data: [UInt8]) throws(DecodeError) {
        var r = ByteReader(data)
        var ids = try r.readLengthPrefixed(.uint16(allowEmpty: false), "OfferedPsks.identities")
        var identities: [PSKIdentity] = []
        while !ids.isEmpty {
            let identity = try ids.readOpaque(.uint16(allowEmpty: false), "PskIdentity.identity")
            identities.append(PSKIdentity(identity: identity, obfuscatedTicketAge: try ids.readUInt32("PskIdentity.obfuscated_ticket_age")))
        }
        var list = try r.readLengthPrefixed(.uint16(allowEmpty: false), "OfferedPsks.binders")
        var binders: [[UInt8]] = []
        while !list.isEmpty { binders.append(try list.readOpaque(.uint8(allowEmpty: false), "PskBinderEntry")) }
        try r.finish("pre_shared_key")
        // §4.2.11: as many binders as identities; a binder is at least 32 bytes (a hash).
        guard binders.count == identities.count else { throw .illegalValue(field: "OfferedPsks: \(identities.count) identities, \(binders.count) binders") }
        guard binders.allSatisfy({ $0.count >= 32 }) else { throw .illegalValue(field: "PskBinderEntry shorter than 32 bytes") }
        self.identities = identities
        self.binders = binders
    }

    public func encoded() throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { w in
            for id in identities {
                w.writeOpaque(.uint16(allowEmpty: false), id.identity)
                w.write(id.obfuscatedTicketAge)
            }
        }
        w.write(bytes: try encodedBinders())
        return try w.finish()
    }

    /// The binders list as it ends the ClientHello: what is cut off to compute the binders over
    /// the partial ClientHello (§4.2.11.2).
    public func encodedBinders() throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { w in
            for b in binders { w.writeOpaque(.uint8(allowEmpty: false), b) }
        }
        return try w.finish()
    }
}

extension ExtensionBody {
    /// The server's pre_shared_key: the selected identity.
    public static func selectedPSKIdentity(_ data: [UInt8]) throws(DecodeError) -> UInt16 {
        var r = ByteReader(data)
        let index = try r.readUInt16("pre_shared_key.selected_identity")
        try r.finish("pre_shared_key")
        return index
    }

    public static func encodePSKKeyExchangeModes(_ modes: [PSKKeyExchangeMode]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeOpaque(.uint8(allowEmpty: false), modes.map(\.rawValue))
        return try w.finish()
    }

    /// RFC 5077 §3.2: the session_ticket extension is the ticket itself (possibly empty).
    /// RFC 8446 §4.2.10: early_data in NewSessionTicket carries max_early_data_size.
    public static func maxEarlyDataSize(_ data: [UInt8]) throws(DecodeError) -> UInt32 {
        var r = ByteReader(data)
        let size = try r.readUInt32("early_data.max_early_data_size")
        try r.finish("early_data")
        return size
    }
}

extension ExtensionBody {
    /// RFC 8446 §4.2.4: certificate_authorities, DER distinguished names.
    public static func certificateAuthorities(_ data: [UInt8]) throws(DecodeError) -> [[UInt8]] {
        var r = ByteReader(data)
        var list = try r.readLengthPrefixed(.uint16(allowEmpty: false), "certificate_authorities")
        try r.finish("certificate_authorities")
        var names: [[UInt8]] = []
        while !list.isEmpty { names.append(try list.readOpaque(.uint16(allowEmpty: false), "DistinguishedName")) }
        return names
    }

    public static func encodeCertificateAuthorities(_ names: [[UInt8]]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { w in
            for n in names { w.writeOpaque(.uint16(allowEmpty: false), n) }
        }
        return try w.finish()
    }
}

extension ExtensionBody {
    /// RFC 6066 §8: a ClientHello's status_request asking for an OCSP staple, with no responder
    /// IDs or request extensions.
    public static let ocspStatusRequest: [UInt8] = [1, 0, 0, 0, 0]

    public static func encodeOCSPStatus(_ response: [UInt8]) throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt8(1))
        w.writeOpaque(.uint24(allowEmpty: false), response)
        return try w.finish()
    }

    /// Whether a ClientHello's status_request asks for OCSP (status_type 1, well formed).
    public static func requestsOCSP(_ data: [UInt8]) throws(DecodeError) -> Bool {
        var r = ByteReader(data)
        let type = try r.readUInt8("CertificateStatusRequest.status_type")
        guard type == 1 else { return false }
        _ = try r.readOpaque(.uint16(allowEmpty: true), "OCSPStatusRequest.responder_id_list")
        _ = try r.readOpaque(.uint16(allowEmpty: true), "OCSPStatusRequest.request_extensions")
        try r.finish("status_request")
        return true
    }
}
