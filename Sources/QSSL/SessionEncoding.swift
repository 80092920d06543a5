import QSSLWire

// The byte form of resumable sessions (PROTOCOL.md §4): what a server seals into a ticket or
// counts in its cache, and what a client writes to a `--session-out` file. The bytes may come
// back from anywhere (a ticket that opened under a key shared by a fleet, a file a user edited),
// so decoding checks every length and value and throws `DecodeError`; it never traps.
//
// SessionState, version 2 (all integers big-endian, vectors as in RFC 8446 §3.4):
//
//     uint8   format_version = 2
//     uint16  protocol_version
//     uint16  cipher_suite
//     uint16  named_group
//     uint8   extended_master_secret        (0 or 1)
//     Option  server_name                   opaque<1..2^16-1>, UTF-8
//     Option  alpn_protocol                 opaque<1..2^8-1>, UTF-8
//     opaque  secret<1..2^8-1>
//     uint64  created_at, issued_at         (ms since the epoch)
//     uint32  lifetime_seconds, age_add
//     Option  peer_identity:
//         opaque  verified_chain<0..2^24-1>  of opaque certificate<1..2^24-1>
//         opaque  subject<0..2^16-1>
//         opaque  subject_alternative_names<0..2^24-1> of opaque name<0..2^16-1>
//         opaque  key_algorithm<0..2^16-1>
//         opaque  certificate_signature_algorithm<0..2^16-1>
//         Option  handshake_signature_scheme uint16
//         opaque  verified_signature_components<0..2^16-1> of opaque name<0..2^16-1>
//         opaque  path_references<0..2^16-1> of { opaque issuer<1..2^16-1>; opaque serial<1..2^8-1>; uint64 not_after }
//     opaque  trust_binding<0..2^8-1>       (version 2: the trust policy the peer was verified under)
//
// where `Option x` is a uint8 presence flag (0 absent, 1 present, anything else is an error)
// followed by x when present.
//
// TLSSession, version 1:
//
//     opaque  magic[8] = "QSSLSESS"
//     uint8   version = 1
//     opaque  state<1..2^24-1>              (the SessionState above, with its own version)
//     Option  ticket                        opaque<0..2^16-1>
//     opaque  session_id<0..32>
//     uint64  received_at

extension SessionState {
    /// The session's bytes, `formatVersion` first, for a ticket or a cache.
    ///
    /// The result holds the session's secret: seal it (a ticket) or keep it where secrets may
    /// be kept (a 0600 file).
    /// - Throws: `EncodeError` when a field does not fit its length (a peer identity with a
    ///   chain over 16 MiB, an empty secret).
    public func encoded() throws(EncodeError) -> [UInt8] {
        var writer = ByteWriter(capacity: encodedCount)
        try write(to: &writer)
        return try writer.finish()
    }

    /// Decodes an encoded session held as a secret (an opened ticket), reading the secret's own
    /// storage: no copy of it is made that would need wiping.
    public init(decoding secret: SecretBytes) throws(DecodeError) {
        try self.init(decoding: secret.storage.bytes)
    }

    /// Decodes a session encoded by `encoded()`.
    /// - Throws: `DecodeError` for another format version, a truncated or over-long field, a
    ///   flag other than 0 or 1, a string that is not UTF-8, or bytes left over.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes)
        try self.init(reading: &reader)
        try reader.finish("SessionState")
    }

    /// How many bytes `encoded()` returns, computed without copying the secret anywhere: what an
    /// in-memory cache charges for the entry.
    var encodedCount: Int {
        var n = 1 + 2 + 2 + 2 + 1  // version, suite, group, EMS
        n += 1 + (serverName.map { 2 + $0.utf8.count } ?? 0)
        n += 1 + (alpnProtocol.map { 1 + $0.utf8.count } ?? 0)
        n += 1 + secret.count
        n += 8 + 8 + 4 + 4
        n += 1
        if let identity = peerIdentity {
            n += 3 + identity.verifiedChain.reduce(0) { $0 + 3 + $1.count }
            n += 2 + identity.subject.utf8.count
            n += 3 + identity.subjectAlternativeNames.reduce(0) { $0 + 2 + $1.utf8.count }
            n += 2 + identity.keyAlgorithm.utf8.count
            n += 2 + identity.certificateSignatureAlgorithm.utf8.count
            n += 1 + (identity.handshakeSignatureScheme == nil ? 0 : 2)
            n += 2 + identity.verifiedSignatureComponents.reduce(0) { $0 + 2 + $1.utf8.count }
            n += 2 + identity.pathReferences.reduce(0) { $0 + 2 + $1.issuer.count + 1 + $1.serialNumber.count + 8 }
        }
        n += 1 + trustBinding.count
        return n
    }

    func write(to w: inout ByteWriter) throws(EncodeError) {
        // An empty secret would encode but never decode: refuse it here rather than hand out
        // bytes that cannot come back.
        guard !secret.isEmpty else { throw EncodeError(field: "session secret (must not be empty)", length: 0, maximum: 255) }
        w.write(Self.formatVersion)
        w.write(version.rawValue)
        w.write(cipherSuite.rawValue)
        w.write(group.rawValue)
        w.write(extendedMasterSecret ? 1 as UInt8 : 0)
        try w.writeOptional(serverName) { w, name throws(EncodeError) in
            try w.writeNonEmptyString(name, .uint16(allowEmpty: false), field: "server name")
        }
        try w.writeOptional(alpnProtocol) { w, name throws(EncodeError) in
            try w.writeNonEmptyString(name, .uint8(allowEmpty: false), field: "ALPN protocol")
        }
        secret.withUnsafeBytes { w.writeOpaque(.uint8(allowEmpty: false), $0) }
        w.write(createdAt)
        w.write(issuedAt)
        w.write(lifetimeSeconds)
        w.write(ageAdd)
        try w.writeOptional(peerIdentity) { w, identity throws(EncodeError) in try identity.write(to: &w) }
        guard trustBinding.count <= 255 else { throw EncodeError(field: "session trust binding", length: trustBinding.count, maximum: 255) }
        w.writeOpaque(.uint8(allowEmpty: true), trustBinding)
    }

    init(reading r: inout ByteReader) throws(DecodeError) {
        let format = try r.readUInt8("SessionState format version")
        guard format == Self.formatVersion else { throw .invalidValue(field: "SessionState format version \(format) (expected \(Self.formatVersion))") }
        let version = ProtocolVersion(rawValue: try r.readUInt16("session protocol version"))
        let suite = CipherSuite(rawValue: try r.readUInt16("session cipher suite"))
        let group = NamedGroup(rawValue: try r.readUInt16("session group"))
        let ems = try r.readFlag("session extended_master_secret")
        let serverName = try r.readOptional("session server name") { r throws(DecodeError) in
            try r.readString(.uint16(allowEmpty: false), "session server name")
        }
        let alpn = try r.readOptional("session ALPN protocol") { r throws(DecodeError) in
            try r.readString(.uint8(allowEmpty: false), "session ALPN protocol")
        }
        let secret = SecretBytes(try r.readOpaque(.uint8(allowEmpty: false), "session secret"))
        let createdAt = try r.readUInt64("session created_at")
        let issuedAt = try r.readUInt64("session issued_at")
        let lifetime = try r.readUInt32("session lifetime")
        let ageAdd = try r.readUInt32("session ticket_age_add")
        let identity = try r.readOptional("session peer identity") { r throws(DecodeError) in try PeerIdentity(reading: &r) }
        let binding = try r.readOpaque(.uint8(allowEmpty: true), "session trust binding")
        self.init(
            version: version, cipherSuite: suite, group: group, extendedMasterSecret: ems, serverName: serverName,
            alpnProtocol: alpn, secret: secret, createdAt: createdAt, issuedAt: issuedAt, lifetimeSeconds: lifetime,
            ageAdd: ageAdd, peerIdentity: identity, trustBinding: binding)
    }
}

extension PeerIdentity {
    func write(to w: inout ByteWriter) throws(EncodeError) {
        try w.writeList(verifiedChain, .uint24(allowEmpty: true)) { w, der throws(EncodeError) in
            guard !der.isEmpty else { throw EncodeError(field: "certificate in a verified chain (must not be empty)", length: 0, maximum: 0xFF_FFFF) }
            w.writeOpaque(.uint24(allowEmpty: false), der)
        }
        w.writeOpaque(.uint16(allowEmpty: true), Array(subject.utf8))
        w.writeList(subjectAlternativeNames, .uint24(allowEmpty: true)) { $0.writeOpaque(.uint16(allowEmpty: true), Array($1.utf8)) }
        w.writeOpaque(.uint16(allowEmpty: true), Array(keyAlgorithm.utf8))
        w.writeOpaque(.uint16(allowEmpty: true), Array(certificateSignatureAlgorithm.utf8))
        w.writeOptional(handshakeSignatureScheme) { $0.write($1.rawValue) }
        w.writeList(verifiedSignatureComponents, .uint16(allowEmpty: true)) { $0.writeOpaque(.uint16(allowEmpty: true), Array($1.utf8)) }
        try w.writeList(pathReferences, .uint16(allowEmpty: true)) { w, reference throws(EncodeError) in
            guard !reference.issuer.isEmpty, !reference.serialNumber.isEmpty, reference.serialNumber.count <= 255 else {
                throw EncodeError(field: "certificate reference (issuer and serial must not be empty)", length: reference.serialNumber.count, maximum: 255)
            }
            w.writeOpaque(.uint16(allowEmpty: false), reference.issuer)
            w.writeOpaque(.uint8(allowEmpty: false), reference.serialNumber)
            w.write(UInt64(bitPattern: reference.notAfter))
        }
    }

    init(reading r: inout ByteReader) throws(DecodeError) {
        let chain = try r.readList(.uint24(allowEmpty: true), "peer verified chain") { r throws(DecodeError) in
            try r.readOpaque(.uint24(allowEmpty: false), "peer certificate")
        }
        let subject = try r.readString(.uint16(allowEmpty: true), "peer subject")
        let names = try r.readList(.uint24(allowEmpty: true), "peer subject alternative names") { r throws(DecodeError) in
            try r.readString(.uint16(allowEmpty: true), "peer subject alternative name")
        }
        let keyAlgorithm = try r.readString(.uint16(allowEmpty: true), "peer key algorithm")
        let certificateAlgorithm = try r.readString(.uint16(allowEmpty: true), "peer certificate signature algorithm")
        let scheme = try r.readOptional("peer handshake signature scheme") { r throws(DecodeError) in
            SignatureScheme(rawValue: try r.readUInt16("peer handshake signature scheme"))
        }
        let components = try r.readList(.uint16(allowEmpty: true), "peer verified signature components") { r throws(DecodeError) in
            try r.readString(.uint16(allowEmpty: true), "peer verified signature component")
        }
        let references = try r.readList(.uint16(allowEmpty: true), "peer path references") { r throws(DecodeError) in
            CertificateReference(
                issuer: try r.readOpaque(.uint16(allowEmpty: false), "reference issuer"),
                serialNumber: try r.readOpaque(.uint8(allowEmpty: false), "reference serial"),
                notAfter: Int64(bitPattern: try r.readUInt64("reference notAfter")))
        }
        self.init(
            verifiedChain: chain, subject: subject, subjectAlternativeNames: names, keyAlgorithm: keyAlgorithm,
            certificateSignatureAlgorithm: certificateAlgorithm)
        handshakeSignatureScheme = scheme
        verifiedSignatureComponents = components
        pathReferences = references
    }
}

extension TLSSession {
    /// The first bytes of an encoded `TLSSession`: a saved session file says what it is.
    public static let magic: [UInt8] = Array("QSSLSESS".utf8)
    /// Encoding version of `TLSSession.encoded()` (the state inside carries its own).
    public static let formatVersion: UInt8 = 1

    /// The session with its ticket or ID, for a client that keeps sessions on disk.
    ///
    /// The bytes hold the session's secret: write them readable by the owner only.
    /// - Throws: `EncodeError` when a field does not fit (a ticket over 65535 bytes, a session
    ///   ID over 32 bytes) or the state cannot be encoded.
    public func encoded() throws(EncodeError) -> [UInt8] {
        guard sessionID.count <= 32 else { throw EncodeError(field: "TLS 1.2 session ID", length: sessionID.count, maximum: 32) }
        var w = ByteWriter(capacity: state.encodedCount + (ticket?.count ?? 0) + 64)
        w.write(bytes: Self.magic)
        w.write(Self.formatVersion)
        try w.writeLengthPrefixed(.uint24(allowEmpty: false)) { w throws(EncodeError) in try state.write(to: &w) }
        w.writeOptional(ticket) { $0.writeOpaque(.uint16(allowEmpty: true), $1) }
        w.writeOpaque(.uint8(allowEmpty: true), sessionID)
        w.write(receivedAt)
        return try w.finish()
    }

    /// Decodes a session written by `encoded()`.
    /// - Throws: `DecodeError` for a wrong magic or version, a malformed state, a session ID
    ///   over 32 bytes, truncation or bytes left over.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var r = ByteReader(bytes)
        guard try r.readBytes(count: Self.magic.count, "TLSSession magic").elementsEqual(Self.magic) else {
            throw .invalidValue(field: "TLSSession magic (not a Q-SSL session)")
        }
        let version = try r.readUInt8("TLSSession format version")
        guard version == Self.formatVersion else { throw .invalidValue(field: "TLSSession format version \(version) (expected \(Self.formatVersion))") }
        var stateReader = try r.readLengthPrefixed(.uint24(allowEmpty: false), "TLSSession state")
        let state = try SessionState(reading: &stateReader)
        try stateReader.finish("TLSSession state")
        let ticket = try r.readOptional("TLSSession ticket") { r throws(DecodeError) in try r.readOpaque(.uint16(allowEmpty: true), "TLSSession ticket") }
        let sessionID = try r.readOpaque(.uint8(allowEmpty: true), "TLSSession session ID")
        // RFC 5246 §7.4.1.2: SessionID <0..32>.
        guard sessionID.count <= 32 else { throw .lengthOutOfRange(field: "TLSSession session ID", length: sessionID.count) }
        let receivedAt = try r.readUInt64("TLSSession received_at")
        try r.finish("TLSSession")
        self.init(state: state, ticket: ticket, sessionID: sessionID, receivedAt: receivedAt)
    }
}

// MARK: - Codec helpers for optionals, lists and strings

extension ByteWriter {
    /// A presence flag, then the value when present.
    fileprivate mutating func writeOptional<T, E: Error>(_ value: T?, _ body: (inout ByteWriter, T) throws(E) -> Void) throws(E) {
        guard let value else { return write(0 as UInt8) }
        write(1 as UInt8)
        try body(&self, value)
    }

    /// A vector of elements behind one length prefix.
    fileprivate mutating func writeList<T, E: Error>(
        _ elements: [T], _ prefix: LengthPrefix,
        _ body: (inout ByteWriter, T) throws(E) -> Void
    ) throws(E) {
        try writeLengthPrefixed(prefix) { w throws(E) in
            for element in elements { try body(&w, element) }
        }
    }

    /// A string that must not be empty (it would decode as an illegal empty vector).
    fileprivate mutating func writeNonEmptyString(_ value: String, _ prefix: LengthPrefix, field: String) throws(EncodeError) {
        guard !value.isEmpty else { throw EncodeError(field: "\(field) (must not be empty)", length: 0, maximum: 0) }
        writeOpaque(prefix, Array(value.utf8))
    }
}

extension ByteReader {
    /// 0 or 1; any other byte is an error rather than `true`, so one encoding means one value.
    fileprivate mutating func readFlag(_ field: String) throws(DecodeError) -> Bool {
        switch try readUInt8(field) {
        case 0: return false
        case 1: return true
        default: throw .invalidValue(field: field)
        }
    }

    fileprivate mutating func readOptional<T>(_ field: String, _ body: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> T? {
        try readFlag(field) ? try body(&self) : nil
    }

    fileprivate mutating func readList<T>(
        _ prefix: LengthPrefix, _ field: String,
        _ body: (inout ByteReader) throws(DecodeError) -> T
    ) throws(DecodeError) -> [T] {
        var list = try readLengthPrefixed(prefix, field)
        var out: [T] = []
        while !list.isEmpty { out.append(try body(&list)) }
        return out
    }

    /// A length-prefixed string that must be valid UTF-8.
    fileprivate mutating func readString(_ prefix: LengthPrefix, _ field: String) throws(DecodeError) -> String {
        let bytes = try readLengthPrefixed(prefix, field).bytes
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidValue(field: "\(field) (not UTF-8)") }
        return text
    }
}
