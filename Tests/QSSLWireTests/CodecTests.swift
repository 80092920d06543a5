import QSSLWire
import Testing

@Suite("QSSLWire codec")
struct CodecTests {
    static func sampleMessages() throws -> [HandshakeMessage] {
        var ext = ExtensionList()
        ext.append(.serverName, try ExtensionBody.encodeServerName("example.com"))
        ext.append(.supportedGroups, try ExtensionBody.encodeU16List([NamedGroup.secp384r1MLKEM1024.rawValue, NamedGroup.x25519.rawValue]))
        ext.append(.keyShare, try ExtensionBody.encodeClientKeyShares([KeyShareEntry(group: .x25519, keyExchange: Array(repeating: 7, count: 32))]))
        ext.append(.alpn, try ExtensionBody.encodeALPN(["h2", "http/1.1"]))
        let hello = ClientHello(
            random: Array(repeating: 1, count: 32), legacySessionID: Array(repeating: 2, count: 32),
            cipherSuites: [.tlsAES128GCMSHA256, .tlsAES256GCMSHA384], extensions: ext)
        var sext = ExtensionList()
        try sext.append(.supportedVersions) { $0.write(ProtocolVersion.tls13.rawValue) }
        let serverHello = ServerHello(random: Array(repeating: 3, count: 32), legacySessionIDEcho: [], cipherSuite: .tlsAES128GCMSHA256, extensions: sext)
        return [
            try HandshakeMessage(hello), try HandshakeMessage(serverHello), try HandshakeMessage(EncryptedExtensions(extensions: ExtensionList())),
            try HandshakeMessage(CertificateMessage(certificates: [[1, 2, 3], [4, 5]])),
            try HandshakeMessage(CertificateVerify(scheme: .ecdsaSecp384r1SHA384, signature: [9, 9, 9])),
            try HandshakeMessage(NewSessionTicket(lifetime: 7200, ageAdd: 5, nonce: [0], ticket: [1, 2, 3])),
            try HandshakeMessage(KeyUpdate(requestUpdate: true)),
            try HandshakeMessage(
                CertificateRequest(
                    requestContext: [], extensions: ExtensionList([Extension(type: .signatureAlgorithms, data: try ExtensionBody.encodeU16List([0x0503]))])))
        ]
    }

    static func roundTrip(_ m: HandshakeMessage) throws -> [UInt8] {
        switch m.type {
        case .clientHello: return try HandshakeMessage(try m.decode(as: ClientHello.self)).body
        case .serverHello: return try HandshakeMessage(try m.decode(as: ServerHello.self)).body
        case .encryptedExtensions: return try HandshakeMessage(try m.decode(as: EncryptedExtensions.self)).body
        case .certificate: return try HandshakeMessage(try m.decode(as: CertificateMessage.self)).body
        case .certificateVerify: return try HandshakeMessage(try m.decode(as: CertificateVerify.self)).body
        case .newSessionTicket: return try HandshakeMessage(try m.decode(as: NewSessionTicket.self)).body
        case .keyUpdate: return try HandshakeMessage(try m.decode(as: KeyUpdate.self)).body
        case .certificateRequest: return try HandshakeMessage(try m.decode(as: CertificateRequest.self)).body
        default: return m.body
        }
    }

    @Test("every message round-trips byte for byte", arguments: try! sampleMessages())
    func roundTrips(message: HandshakeMessage) throws {
        #expect(try Self.roundTrip(message) == message.body)
    }

    @Test("every strict prefix of every message fails to decode", arguments: try! sampleMessages())
    func prefixesFail(message: HandshakeMessage) {
        // ClientHello and ServerHello may legally end before their extensions block (RFC 5246),
        // so the prefix that stops exactly there decodes; every other prefix must fail.
        let extensionsStart: Int? =
            switch message.type {
            case .clientHello, .serverHello:
                message.body.count - (try! ByteReader(message.body).extensionsBlockLength(for: message))
            default: nil
            }
        for n in 0..<message.body.count where n != extensionsStart {
            let prefix = HandshakeMessage(type: message.type, body: Array(message.body.prefix(n)))
            #expect(throws: DecodeError.self, "prefix of \(n) bytes of \(message.type)") { _ = try Self.roundTrip(prefix) }
        }
    }

    @Test("trailing bytes after a message are rejected", arguments: try! sampleMessages().filter { $0.type != .clientHello && $0.type != .serverHello })
    func trailing(message: HandshakeMessage) {
        #expect(throws: DecodeError.self) { _ = try Self.roundTrip(HandshakeMessage(type: message.type, body: message.body + [0])) }
    }

    @Test("duplicate extensions are rejected")
    func duplicates() throws {
        var w = ByteWriter()
        ExtensionList([Extension(type: .alpn, data: []), Extension(type: .alpn, data: [])]).encode(to: &w)
        var r = ByteReader(try w.finish())
        #expect(throws: DecodeError.duplicateExtension(.alpn)) { _ = try ExtensionList(from: &r, context: "test") }
    }

    /// An extension block of empty extensions of these types, decoded.
    static func decodeBlock(_ types: [UInt16]) throws(DecodeError) -> ExtensionList {
        var w = ByteWriter()
        ExtensionList(types.map { Extension(type: ExtensionType(rawValue: $0), data: []) }).encode(to: &w)
        var r = ByteReader((try? w.finish()) ?? [])
        return try ExtensionList(from: &r, context: "test")
    }

    @Test(
        "a duplicate is found among low types, among a few high ones (GREASE, renegotiation_info) and among many high ones, wherever it comes",
        arguments: [
            [0, 10, 13, 63, 10],  // low types (a bit set)
            [0x0a0a, 0xff01, 16, 0xff01],  // a few high ones (a list)
            Array(0x1000..<0x1020) + [0x1003],  // many high ones (a set, past the list's limit)
            Array(0x1000..<0x1010) + [0x1000],  // at the list's limit exactly
        ] as [[UInt16]])
    func duplicatesInEveryRegime(types: [UInt16]) throws {
        #expect(throws: DecodeError.duplicateExtension(ExtensionType(rawValue: types.last!))) { _ = try Self.decodeBlock(types) }
        let distinct = try Self.decodeBlock(Array(types.dropLast()))
        #expect(distinct.items.map(\.type.rawValue) == Array(types.dropLast()))
    }

    @Test("a hostile block of 16,383 distinct empty extensions (the most 65,535 bytes hold) decodes, and one more duplicate in it is found")
    func largestBlock() throws {
        let types = (0..<16383).map { UInt16($0) &* 3 &+ 64 }  // distinct, all past the bit set
        #expect(try Self.decodeBlock(types).items.count == 16383)
        #expect(throws: DecodeError.duplicateExtension(ExtensionType(rawValue: types[100]))) {
            _ = try Self.decodeBlock(Array(types.prefix(16382)) + [types[100]])
        }
    }

    @Test("length-prefix policy: empty vectors where the RFC forbids them")
    func emptyVectors() {
        #expect(throws: DecodeError.illegalEmptyList("supported_groups")) { _ = try ExtensionBody.supportedGroups([0, 0]) }
        #expect(throws: DecodeError.self) { _ = try ExtensionBody.supportedGroups([0, 3, 0, 1, 2]) }  // odd length
        #expect(throws: DecodeError.self) { _ = try ExtensionBody.alpn([0, 1, 0]) }  // empty protocol name
    }

    @Test("server_name: one host name, printable ASCII")
    func serverName() throws {
        #expect(try ExtensionBody.serverName(try ExtensionBody.encodeServerName("a.example")) == "a.example")
        #expect(throws: DecodeError.self) { _ = try ExtensionBody.serverName(try ExtensionBody.encodeServerName("a\u{0}b")) }
    }

    @Test("code points print their IANA names")
    func names() {
        #expect(NamedGroup.secp384r1MLKEM1024.description == "SecP384r1MLKEM1024")
        #expect(NamedGroup(name: "x25519mlkem768") == .x25519MLKEM768)
        #expect(NamedGroup(rawValue: 0x1234).description == "0x1234")
        #expect(AlertDescription.insufficientSecurity.description == "insufficient_security(71)")
        #expect(SignatureScheme.qsslMLDSA65ECDSASecp384r1SHA512.rawValue == 0xFE46)
    }
}

extension ByteReader {
    /// Length of the extensions block (with its 2-byte prefix) at the end of a hello.
    func extensionsBlockLength(for message: HandshakeMessage) throws -> Int {
        var r = self
        _ = try r.readBytes(count: 34)
        _ = try r.readOpaque(.uint8(allowEmpty: true), "session_id")
        if message.type == .clientHello {
            _ = try r.readOpaque(.uint16(allowEmpty: false), "suites")
            _ = try r.readOpaque(.uint8(allowEmpty: false), "compression")
        } else {
            _ = try r.readBytes(count: 3)
        }
        return r.remaining
    }
}

@Suite("CertificateEntry extensions a client hands to its verifier")
struct CertificateEntryExtensionTests {
    @Test("a stapled OCSP response: status_type ocsp and a 24-bit length, exactly; anything else is refused")
    func ocspStaple() throws {
        #expect(try ExtensionBody.ocspStatus([1, 0, 0, 3, 0xAA, 0xBB, 0xCC]) == [0xAA, 0xBB, 0xCC])
        #expect(throws: DecodeError.illegalValue(field: "CertificateStatus.status_type")) { try ExtensionBody.ocspStatus([2, 0, 0, 1, 0]) }
        #expect(throws: DecodeError.self) { try ExtensionBody.ocspStatus([1, 0, 0, 4, 0xAA]) }  // truncated
        #expect(throws: DecodeError.self) { try ExtensionBody.ocspStatus([1, 0, 0, 1, 0xAA, 0xBB]) }  // trailing
        #expect(throws: DecodeError.self) { try ExtensionBody.ocspStatus([1, 0, 0, 0]) }  // empty response
        #expect(throws: DecodeError.self) { try ExtensionBody.ocspStatus([]) }
    }

    @Test("an SCT list: 16-bit list of non-empty 16-bit SCTs, exactly")
    func scts() throws {
        #expect(try ExtensionBody.signedCertificateTimestamps([0, 7, 0, 2, 1, 2, 0, 1, 3]) == [[1, 2], [3]])
        #expect(throws: DecodeError.self) { try ExtensionBody.signedCertificateTimestamps([0, 0]) }  // empty list
        #expect(throws: DecodeError.self) { try ExtensionBody.signedCertificateTimestamps([0, 2, 0, 0]) }  // empty SCT
        #expect(throws: DecodeError.self) { try ExtensionBody.signedCertificateTimestamps([0, 5, 0, 9, 1, 2, 3]) }  // SCT overruns
        #expect(throws: DecodeError.self) { try ExtensionBody.signedCertificateTimestamps([0, 3, 0, 1, 1, 9]) }  // trailing
    }
}
