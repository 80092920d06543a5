/// A handshake message as framed on the wire (RFC 8446 §4): type, 24-bit length, body.
/// `encoded` keeps the exact bytes received or sent, which is what the transcript hashes.
public struct HandshakeMessage: Hashable, Sendable {
    public var type: HandshakeType
    public var body: [UInt8]

    public init(type: HandshakeType, body: [UInt8]) {
        self.type = type
        self.body = body
    }

    /// Encodes `message`; throws when a vector does not fit its length prefix or the body
    /// exceeds the 24-bit message length.
    public init<M: HandshakeBody>(_ message: M) throws(EncodeError) {
        self.type = M.handshakeType
        var w = ByteWriter(capacity: 512)
        message.encode(to: &w)
        let body = try w.finish()
        guard body.count <= 0xFF_FFFF else { throw EncodeError(field: "\(M.handshakeType) body", length: body.count, maximum: 0xFF_FFFF) }
        self.body = body
    }

    /// The framed bytes: header and body.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 4)
        out.append(type.rawValue)
        out.append(UInt8(truncatingIfNeeded: body.count >> 16))
        out.append(UInt8(truncatingIfNeeded: body.count >> 8))
        out.append(UInt8(truncatingIfNeeded: body.count))
        out.append(contentsOf: body)
        return out
    }

    /// Decodes the body as `M`, failing on trailing bytes.
    public func decode<M: HandshakeBody>(as: M.Type) throws(DecodeError) -> M {
        var r = ByteReader(body)
        let m = try M(from: &r)
        try r.finish("\(M.handshakeType)")
        return m
    }
}

/// The body of one handshake message type.
public protocol HandshakeBody: WireEncodable {
    static var handshakeType: HandshakeType { get }
    init(from reader: inout ByteReader) throws(DecodeError)
}

public struct ClientHello: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.clientHello
    public var legacyVersion: ProtocolVersion = .tls12
    public var random: [UInt8]
    public var legacySessionID: [UInt8]
    public var cipherSuites: [CipherSuite]
    public var legacyCompressionMethods: [UInt8] = [0]
    public var extensions: ExtensionList

    public init(random: [UInt8], legacySessionID: [UInt8], cipherSuites: [CipherSuite], extensions: ExtensionList) {
        self.random = random
        self.legacySessionID = legacySessionID
        self.cipherSuites = cipherSuites
        self.extensions = extensions
    }

    public init(from r: inout ByteReader) throws(DecodeError) {
        legacyVersion = ProtocolVersion(rawValue: try r.readUInt16("ClientHello.legacy_version"))
        random = Array(try r.readBytes(count: 32, "ClientHello.random"))
        legacySessionID = try r.readOpaque(.uint8(allowEmpty: true), "ClientHello.legacy_session_id")
        guard legacySessionID.count <= 32 else { throw .lengthOutOfRange(field: "ClientHello.legacy_session_id", length: legacySessionID.count) }
        var suites = try r.readLengthPrefixed(.uint16(allowEmpty: false), "ClientHello.cipher_suites")
        guard suites.remaining % 2 == 0 else { throw .invalidValue(field: "ClientHello.cipher_suites") }
        cipherSuites = []
        while !suites.isEmpty { cipherSuites.append(CipherSuite(rawValue: try suites.readUInt16("ClientHello.cipher_suites"))) }
        legacyCompressionMethods = try r.readOpaque(.uint8(allowEmpty: false), "ClientHello.legacy_compression_methods")
        // RFC 5246 §7.4.1.2: a TLS 1.2 ClientHello may end without an extensions block.
        extensions = r.isEmpty ? ExtensionList() : try ExtensionList(from: &r, context: "ClientHello")
    }

    public func encode(to w: inout ByteWriter) {
        w.write(legacyVersion.rawValue)
        w.write(bytes: random)
        w.writeOpaque(.uint8(allowEmpty: true), legacySessionID)
        w.writeLengthPrefixed(.uint16(allowEmpty: false)) { for s in cipherSuites { $0.write(s.rawValue) } }
        w.writeOpaque(.uint8(allowEmpty: false), legacyCompressionMethods)
        extensions.encode(to: &w)
    }
}

public struct ServerHello: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.serverHello
    /// RFC 8446 §4.1.3: SHA-256("HelloRetryRequest").
    public static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C
    ]
    /// RFC 8446 §4.1.3 downgrade sentinels in the last 8 bytes of ServerHello.random.
    public static let downgradeTLS12: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x01]
    public static let downgradeTLS11: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x00]

    public var legacyVersion: ProtocolVersion = .tls12
    public var random: [UInt8]
    public var legacySessionIDEcho: [UInt8]
    public var cipherSuite: CipherSuite
    public var legacyCompressionMethod: UInt8 = 0
    public var extensions: ExtensionList

    public init(random: [UInt8], legacySessionIDEcho: [UInt8], cipherSuite: CipherSuite, extensions: ExtensionList) {
        self.random = random
        self.legacySessionIDEcho = legacySessionIDEcho
        self.cipherSuite = cipherSuite
        self.extensions = extensions
    }

    public var isHelloRetryRequest: Bool { random == Self.helloRetryRequestRandom }

    public init(from r: inout ByteReader) throws(DecodeError) {
        legacyVersion = ProtocolVersion(rawValue: try r.readUInt16("ServerHello.legacy_version"))
        random = Array(try r.readBytes(count: 32, "ServerHello.random"))
        legacySessionIDEcho = try r.readOpaque(.uint8(allowEmpty: true), "ServerHello.legacy_session_id_echo")
        guard legacySessionIDEcho.count <= 32 else { throw .lengthOutOfRange(field: "ServerHello.legacy_session_id_echo", length: legacySessionIDEcho.count) }
        cipherSuite = CipherSuite(rawValue: try r.readUInt16("ServerHello.cipher_suite"))
        legacyCompressionMethod = try r.readUInt8("ServerHello.legacy_compression_method")
        extensions = r.isEmpty ? ExtensionList() : try ExtensionList(from: &r, context: "ServerHello")
    }

    public func encode(to w: inout ByteWriter) {
        w.write(legacyVersion.rawValue)
        w.write(bytes: random)
        w.writeOpaque(.uint8(allowEmpty: true), legacySessionIDEcho)
        w.write(cipherSuite.rawValue)
        w.write(legacyCompressionMethod)
        extensions.encode(to: &w)
    }
}

public struct EncryptedExtensions: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.encryptedExtensions
    public var extensions: ExtensionList
    public init(extensions: ExtensionList) { self.extensions = extensions }
    public init(from r: inout ByteReader) throws(DecodeError) {
        extensions = try ExtensionList(from: &r, context: "EncryptedExtensions")
    }
    public func encode(to w: inout ByteWriter) { extensions.encode(to: &w) }
}

/// RFC 8446 §4.4.2.
public struct CertificateMessage: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificate
    public struct Entry: Hashable, Sendable {
        public var data: [UInt8]
        public var extensions: ExtensionList
        public init(data: [UInt8], extensions: ExtensionList = ExtensionList()) {
            self.data = data
            self.extensions = extensions
        }
    }
    public var requestContext: [UInt8]
    public var entries: [Entry]

    public init(requestContext: [UInt8] = [], certificates: [[UInt8]]) {
        self.requestContext = requestContext
        self.entries = certificates.map { Entry(data: $0) }
    }

    public init(from r: inout ByteReader) throws(DecodeError) {
        requestContext = try r.readOpaque(.uint8(allowEmpty: true), "Certificate.certificate_request_context")
        var list = try r.readLengthPrefixed(.uint24(allowEmpty: true), "Certificate.certificate_list")
        entries = []
        while !list.isEmpty {
            let data = try list.readOpaque(.uint24(allowEmpty: false), "CertificateEntry.cert_data")
            let ext = try ExtensionList(from: &list, context: "CertificateEntry")
            entries.append(Entry(data: data, extensions: ext))
        }
    }

    public func encode(to w: inout ByteWriter) {
        w.writeOpaque(.uint8(allowEmpty: true), requestContext)
        w.writeLengthPrefixed(.uint24(allowEmpty: true)) { list in
            for e in entries {
                list.writeOpaque(.uint24(allowEmpty: false), e.data)
                e.extensions.encode(to: &list)
            }
        }
    }
}

/// RFC 8446 §4.3.2.
public struct CertificateRequest: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificateRequest
    public var requestContext: [UInt8]
    public var extensions: ExtensionList
    public init(requestContext: [UInt8], extensions: ExtensionList) {
        self.requestContext = requestContext
        self.extensions = extensions
    }
    public init(from r: inout ByteReader) throws(DecodeError) {
        requestContext = try r.readOpaque(.uint8(allowEmpty: true), "CertificateRequest.certificate_request_context")
        extensions = try ExtensionList(from: &r, context: "CertificateRequest", allowEmpty: false)
    }
    public func encode(to w: inout ByteWriter) {
        w.writeOpaque(.uint8(allowEmpty: true), requestContext)
        extensions.encode(to: &w)
    }
}

/// RFC 8446 §4.4.3 (and RFC 5246 §7.4.8 with a SignatureAndHashAlgorithm, same layout).
public struct CertificateVerify: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.certificateVerify
    public var scheme: SignatureScheme
    public var signature: [UInt8]
    public init(scheme: SignatureScheme, signature: [UInt8]) {
        self.scheme = scheme
        self.signature = signature
    }
    public init(from r: inout ByteReader) throws(DecodeError) {
        scheme = SignatureScheme(rawValue: try r.readUInt16("CertificateVerify.algorithm"))
        signature = try r.readOpaque(.uint16(allowEmpty: false), "CertificateVerify.signature")
    }
    public func encode(to w: inout ByteWriter) {
        w.write(scheme.rawValue)
        w.writeOpaque(.uint16(allowEmpty: false), signature)
    }
}

public struct Finished: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.finished
    public var verifyData: [UInt8]
    public init(verifyData: [UInt8]) { self.verifyData = verifyData }
    public init(from r: inout ByteReader) throws(DecodeError) { verifyData = Array(r.readRest()) }
    public func encode(to w: inout ByteWriter) { w.write(bytes: verifyData) }
}

/// RFC 8446 §4.6.1.
public struct NewSessionTicket: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.newSessionTicket
    public var lifetime: UInt32
    public var ageAdd: UInt32
    public var nonce: [UInt8]
    public var ticket: [UInt8]
    public var extensions: ExtensionList
    public init(lifetime: UInt32, ageAdd: UInt32, nonce: [UInt8], ticket: [UInt8], extensions: ExtensionList = ExtensionList()) {
        self.lifetime = lifetime
        self.ageAdd = ageAdd
        self.nonce = nonce
        self.ticket = ticket
        self.extensions = extensions
    }
    public init(from r: inout ByteReader) throws(DecodeError) {
        lifetime = try r.readUInt32("NewSessionTicket.ticket_lifetime")
        ageAdd = try r.readUInt32("NewSessionTicket.ticket_age_add")
        nonce = try r.readOpaque(.uint8(allowEmpty: true), "NewSessionTicket.ticket_nonce")
        ticket = try r.readOpaque(.uint16(allowEmpty: false), "NewSessionTicket.ticket")
        extensions = try ExtensionList(from: &r, context: "NewSessionTicket")
    }
    public func encode(to w: inout ByteWriter) {
        w.write(lifetime)
        w.write(ageAdd)
        w.writeOpaque(.uint8(allowEmpty: true), nonce)
        w.writeOpaque(.uint16(allowEmpty: false), ticket)
        extensions.encode(to: &w)
    }
}

/// RFC 8446 §4.6.3.
public struct KeyUpdate: HandshakeBody, Hashable, Sendable {
    public static let handshakeType = HandshakeType.keyUpdate
    public var requestUpdate: Bool
    public init(requestUpdate: Bool) { self.requestUpdate = requestUpdate }
    public init(from r: inout ByteReader) throws(DecodeError) {
        let v = try r.readUInt8("KeyUpdate.request_update")
        guard v <= 1 else { throw .illegalValue(field: "KeyUpdate.request_update") }
        requestUpdate = v == 1
    }
    public func encode(to w: inout ByteWriter) { w.write(UInt8(requestUpdate ? 1 : 0)) }
}
