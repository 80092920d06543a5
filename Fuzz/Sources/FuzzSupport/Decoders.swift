import QSSLWire

/// The handshake message decoders of QSSLWire, by selector (FuzzHandshakeMessages' first byte).
public enum MessageDecoders {
    public static let names = [
        "ClientHello", "ServerHello", "EncryptedExtensions", "Certificate", "CertificateRequest", "CertificateVerify",
        "Finished", "NewSessionTicket", "KeyUpdate", "TLS12Certificate", "ServerKeyExchange", "ClientKeyExchange",
        "ClientKeyExchange(hybrid)", "TLS12CertificateRequest", "ServerHelloDone", "stream", "TLS12NewSessionTicket"
    ]

    /// Selectors whose decoder reads a message of this handshake type (TLS 1.3 and 1.2 readings).
    public static func selectors(for type: HandshakeType) -> [Int] {
        switch type {
        case .clientHello: return [0]
        case .serverHello: return [1]
        case .encryptedExtensions: return [2]
        case .certificate: return [3, 9]
        case .certificateRequest: return [4, 13]
        case .certificateVerify: return [5]
        case .finished: return [6]
        case .newSessionTicket: return [7, 16]
        case .keyUpdate: return [8]
        case .serverKeyExchange: return [10]
        case .clientKeyExchange: return [11, 12]
        case .serverHelloDone: return [14]
        default: return []
        }
    }

    public static func run(_ selector: Int, _ body: [UInt8]) {
        switch selector % names.count {
        case 0: roundTrip(ClientHello.self, body)
        case 1: roundTrip(ServerHello.self, body)
        case 2: roundTrip(EncryptedExtensions.self, body)
        case 3: roundTrip(CertificateMessage.self, body)
        case 4: roundTrip(CertificateRequest.self, body)
        case 5: roundTrip(CertificateVerify.self, body)
        case 6: roundTrip(Finished.self, body)
        case 7: roundTrip(NewSessionTicket.self, body)
        case 8: roundTrip(KeyUpdate.self, body)
        case 9: roundTrip(TLS12Certificate.self, body)
        case 10: roundTrip(ServerKeyExchange.self, body)
        case 11, 12: clientKeyExchange(body, hybrid: selector % names.count == 12)
        case 13: roundTrip(TLS12CertificateRequest.self, body)
        case 14: roundTrip(ServerHelloDone.self, body)
        case 16: roundTrip(TLS12NewSessionTicket.self, body)
        default:
            // 15: a stream of framed messages, each decoded by every decoder of its type.
            var r = ByteReader(body)
            while let type = try? r.readUInt8(), let length = try? r.readUInt24(), let b = try? r.readBytes(count: Int(length)) {
                for s in selectors(for: HandshakeType(rawValue: type)) { run(s, Array(b)) }
            }
        }
    }

    /// decode(encode(x)) == x, and encode(decode(b)) == b (a hello without extensions gains an
    /// empty block). Encoders are called with `try?` so that they may become throwing.
    static func roundTrip<M: HandshakeBody & Equatable>(_ type: M.Type, _ body: [UInt8]) {
        let message = HandshakeMessage(type: M.handshakeType, body: body)
        guard let decoded = try? message.decode(as: M.self) else { return }
        if let extensions = (decoded as? ClientHello)?.extensions ?? (decoded as? ServerHello)?.extensions
            ?? (decoded as? NewSessionTicket)?.extensions
        {
            ExtensionDecoders.decodeAll(extensions)
        }
        guard let again = try? HandshakeMessage(decoded) else { return }
        require(again.type == M.handshakeType, "\(M.self) re-encoded as \(again.type)")
        let redecoded: M
        do { redecoded = try again.decode(as: M.self) } catch {
            violated("re-encoded \(M.self) does not decode: \(error)")
        }
        require(redecoded == decoded, "decode(encode(x)) != x for \(M.self)")
        let isHello = M.self == ClientHello.self || M.self == ServerHello.self
        require(again.body == body || (isHello && again.body == body + [0, 0]), "encode(decode(b)) != b for \(M.self)")
    }

    static func clientKeyExchange(_ body: [UInt8], hybrid: Bool) {
        let message = HandshakeMessage(type: .clientKeyExchange, body: body)
        guard let decoded = try? ClientKeyExchange.decode(message, hybrid: hybrid) else { return }
        guard let again = try? decoded.message(hybrid: hybrid) else { return }
        require(again.body == body, "ClientKeyExchange re-encodes differently")
        require((try? ClientKeyExchange.decode(again, hybrid: hybrid)) == decoded, "decode(encode(x)) != x for ClientKeyExchange")
    }
}

/// The extension body decoders of QSSLWire, by selector (FuzzExtensions' first byte).
public enum ExtensionDecoders {
    public static let names = [
        "supported_groups", "signature_algorithms", "supported_versions(client)", "supported_versions(server)",
        "key_share(client)", "key_share(server)", "key_share(HelloRetryRequest)", "server_name", "alpn", "cookie",
        "psk_key_exchange_modes", "ExtensionList", "KeyShareEntry", "u16 list(uint16, may be empty)",
        "ExtensionList(non-empty)", "by type", "pre_shared_key(client)", "pre_shared_key(server)", "early_data(NewSessionTicket)"
    ]

    /// The selectors that read an extension of this type.
    public static func selectors(for type: ExtensionType) -> [Int] {
        switch type {
        case .supportedGroups: return [0]
        case .signatureAlgorithms, .signatureAlgorithmsCert: return [1]
        case .supportedVersions: return [2, 3]
        case .keyShare: return [4, 5, 6]
        case .serverName: return [7]
        case .alpn: return [8]
        case .cookie: return [9]
        case .pskKeyExchangeModes: return [10]
        case .preSharedKey: return [16, 17]
        case .earlyData: return [18]
        default: return []
        }
    }

    static func decodeAll(_ list: ExtensionList) {
        for e in list.items {
            for s in selectors(for: e.type) { run(s, e.data) }
            certificateEntryExtension(e.type, e.data)
        }
    }

    /// The CertificateEntry extensions a client reads for peer verification (no encoders):
    /// status_request (a stapled OCSP response) and signed_certificate_timestamp.
    static func certificateEntryExtension(_ type: ExtensionType, _ data: [UInt8]) {
        if type == .statusRequest, let staple = try? ExtensionBody.ocspStatus(data) {
            require(!staple.isEmpty && staple.count + 4 == data.count && Array(data.suffix(staple.count)) == staple, "ocsp staple: not the body's tail")
        }
        if type == .signedCertificateTimestamp, let scts = try? ExtensionBody.signedCertificateTimestamps(data) {
            require(!scts.contains(where: \.isEmpty) && scts.reduce(2) { $0 + 2 + $1.count } == data.count, "SCT list: lengths do not add up")
        }
    }

    static func canonical(_ data: [UInt8], _ encoded: [UInt8]?, _ name: String) {
        guard let encoded else { return }
        require(encoded == data, "\(name): encode(decode(b)) != b")
    }

    public static func run(_ selector: Int, _ data: [UInt8]) {
        switch selector % names.count {
        case 0:
            if let v = try? ExtensionBody.supportedGroups(data) { canonical(data, try? ExtensionBody.encodeU16List(v.map(\.rawValue)), "supported_groups") }
        case 1:
            if let v = try? ExtensionBody.signatureAlgorithms(data) {
                canonical(data, try? ExtensionBody.encodeU16List(v.map(\.rawValue)), "signature_algorithms")
            }
        case 2:
            if let v = try? ExtensionBody.clientSupportedVersions(data) {
                canonical(data, try? ExtensionBody.encodeU16List(v.map(\.rawValue), prefix: .uint8(allowEmpty: false)), "supported_versions")
            }
        case 3:
            if let v = try? ExtensionBody.serverSupportedVersion(data) {
                canonical(data, [UInt8(v.rawValue >> 8), UInt8(v.rawValue & 0xFF)], "selected_version")
            }
        case 4:
            if let v = try? ExtensionBody.clientKeyShares(data) { canonical(data, try? ExtensionBody.encodeClientKeyShares(v), "client key_share") }
        case 5:
            if let v = try? ExtensionBody.serverKeyShare(data) { canonical(data, encode(v), "server key_share") }
        case 6:
            if let v = try? ExtensionBody.helloRetryKeyShare(data) { canonical(data, [UInt8(v.rawValue >> 8), UInt8(v.rawValue & 0xFF)], "selected_group") }
        case 7:
            if let host = try? ExtensionBody.serverName(data), let encoded = try? ExtensionBody.encodeServerName(host) {
                require((try? ExtensionBody.serverName(encoded)) == host, "server_name: decode(encode(x)) != x")
            }
        case 8:
            // Names are decoded leniently (invalid UTF-8 becomes U+FFFD, up to 3 bytes for 1), so
            // only names that still fit their 8-bit length are encoded again.
            if let v = try? ExtensionBody.alpn(data), v.allSatisfy({ $0.utf8.count <= 255 }), v.reduce(0, { $0 + $1.utf8.count + 1 }) <= 65535,
                let encoded = try? ExtensionBody.encodeALPN(v)
            {
                require((try? ExtensionBody.alpn(encoded)) == v, "alpn: decode(encode(x)) != x")
            }
        case 9:
            if let v = try? ExtensionBody.cookie(data) { canonical(data, try? ExtensionBody.encodeCookie(v), "cookie") }
        case 10:
            if let v = try? ExtensionBody.pskKeyExchangeModes(data) {
                canonical(data, [UInt8(v.count)] + v.map(\.rawValue), "psk_key_exchange_modes")
                canonical(data, try? ExtensionBody.encodePSKKeyExchangeModes(v), "psk_key_exchange_modes (encoder)")
            }
        case 11, 14:
            var r = ByteReader(data)
            if let list = try? ExtensionList(from: &r, context: "fuzz", allowEmpty: selector % names.count == 11), (try? r.finish("fuzz")) != nil {
                canonical(data, encode(list), "ExtensionList")
                decodeAll(list)
            }
        case 12:
            var r = ByteReader(data)
            while let e = try? KeyShareEntry(from: &r) {
                if let bytes = encode(e) { require(KeyShareEntryCheck.decode(bytes) == e, "KeyShareEntry: decode(encode(x)) != x") }
            }
        case 13:
            if let v = try? ExtensionBody.decodeU16List(data, "fuzz", prefix: .uint16(allowEmpty: true)) {
                canonical(data, try? ExtensionBody.encodeU16List(v, prefix: .uint16(allowEmpty: true)), "u16 list")
            }
        case 16:
            if let v = try? OfferedPSKs(decoding: data) { offeredPSKs(v, data) }
        case 17:
            if let v = try? ExtensionBody.selectedPSKIdentity(data) { canonical(data, [UInt8(v >> 8), UInt8(v & 0xFF)], "selected_identity") }
        case 18:
            if let v = try? ExtensionBody.maxEarlyDataSize(data) {
                canonical(data, (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }, "max_early_data_size")
            }
        default:
            // 15: a type, then the body, read by every decoder of that type.
            var r = ByteReader(data)
            guard let type = try? r.readUInt16() else { return }
            let body = Array(r.readRest())
            for s in selectors(for: ExtensionType(rawValue: type)) { run(s, body) }
            certificateEntryExtension(ExtensionType(rawValue: type), body)
        }
    }

    /// RFC 8446 §4.2.11: as many binders as identities, each of a hash's length at least; the
    /// encoding is canonical, and the binders list is exactly the body's tail (a server cuts it
    /// off the ClientHello to check the binders, a client to compute them).
    static func offeredPSKs(_ v: OfferedPSKs, _ data: [UInt8]) {
        require(!v.identities.isEmpty && v.identities.count == v.binders.count, "pre_shared_key: \(v.identities.count) identities, \(v.binders.count) binders")
        require(
            v.identities.allSatisfy { !$0.identity.isEmpty } && v.binders.allSatisfy { $0.count >= 32 }, "pre_shared_key: an empty identity or a short binder")
        guard let encoded = try? v.encoded() else { violated("pre_shared_key: a decoded value does not encode") }
        canonical(data, encoded, "pre_shared_key")
        require((try? OfferedPSKs(decoding: encoded)) == v, "pre_shared_key: decode(encode(x)) != x")
        guard let binders = try? v.encodedBinders() else { violated("pre_shared_key: the binders do not encode") }
        require(binders.count < data.count && Array(data.suffix(binders.count)) == binders, "pre_shared_key: the binders are not the body's tail")
    }

    /// Encodings through public API that exists whether encoders throw or not.
    static func encode(_ list: ExtensionList) -> [UInt8]? {
        (try? HandshakeMessage(EncryptedExtensions(extensions: list)))?.body
    }

    static func encode(_ entry: KeyShareEntry) -> [UInt8]? {
        (try? ExtensionBody.encodeClientKeyShares([entry])).map { Array($0.dropFirst(2)) }
    }
}

enum KeyShareEntryCheck {
    static func decode(_ bytes: [UInt8]) -> KeyShareEntry? {
        var r = ByteReader(bytes)
        guard let e = try? KeyShareEntry(from: &r), r.isEmpty else { return nil }
        return e
    }
}
