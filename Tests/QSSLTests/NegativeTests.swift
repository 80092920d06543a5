import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// Rewrites the first handshake message of the first record in a flight (ClientHello or
/// ServerHello), leaving any following records untouched.
func rewriteFirstMessage<M: HandshakeBody>(_ wire: [UInt8], as: M.Type, _ change: (inout M) -> Void) -> [UInt8] {
    let length = Int(wire[3]) << 8 | Int(wire[4])
    let record = Array(wire[5..<(5 + length)])
    // The first message of the record; messages coalesced after it stay as they are.
    let bodyLength = Int(record[1]) << 16 | Int(record[2]) << 8 | Int(record[3])
    var message = try! HandshakeMessage(type: M.handshakeType, body: Array(record[4..<(4 + bodyLength)])).decode(as: M.self)
    change(&message)
    let body = try! HandshakeMessage(message).encoded + record[(4 + bodyLength)...]
    return Array(wire[0..<3]) + [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body + Array(wire[(5 + length)...])
}

/// Changes the key share of `group` in a ClientHello.
func changeClientShare(_ hello: inout ClientHello, group: NamedGroup, _ change: (inout [UInt8]) -> Void) {
    var shares = try! ExtensionBody.clientKeyShares(hello.extensions[.keyShare]!)
    for i in shares.indices where shares[i].group == group { change(&shares[i].keyExchange) }
    replace(&hello.extensions, .keyShare, try! ExtensionBody.encodeClientKeyShares(shares))
}

func replace(_ list: inout ExtensionList, _ type: ExtensionType, _ data: [UInt8]) {
    for i in list.items.indices where list.items[i].type == type { list.items[i].data = data }
}

/// Changes the server's key share in a ServerHello.
func changeServerShare(_ hello: inout ServerHello, _ change: (inout KeyShareEntry) -> Void) {
    var share = try! ExtensionBody.serverKeyShare(hello.extensions[.keyShare]!)
    change(&share)
    replace(&hello.extensions, .keyShare, try! share.encodedBytes())
}

/// Runs a pair where `tamper` rewrites the client's first flight, and checks that the server
/// sent `alert` and the client received it.
func expectServerAlert(
    _ alert: AlertDescription, client: ClientConfiguration = clientConfig(), server: ServerConfiguration? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, tamperHello: @escaping (inout ClientHello) -> Void
) throws {
    var first = true
    let o = try runPair(client: client, server: server ?? serverConfig()) { toServer, bytes in
        guard toServer, first else { return bytes }
        first = false
        return rewriteFirstMessage(bytes, as: ClientHello.self, tamperHello)
    }
    #expect(o.serverError?.alert == alert, "server error: \(String(describing: o.serverError))", sourceLocation: sourceLocation)
    #expect(o.clientError?.code == .alertReceived(alert), "client error: \(String(describing: o.clientError))", sourceLocation: sourceLocation)
}

/// The same for checks the client makes on the server's first flight.
func expectClientAlert(
    _ alert: AlertDescription, client: ClientConfiguration = clientConfig(), server: ServerConfiguration? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, tamperHello: @escaping (inout ServerHello) -> Void
) throws {
    var first = true
    let o = try runPair(client: client, server: server ?? serverConfig()) { toServer, bytes in
        guard !toServer, first else { return bytes }
        first = false
        return rewriteFirstMessage(bytes, as: ServerHello.self, tamperHello)
    }
    #expect(o.clientError?.alert == alert, "client error: \(String(describing: o.clientError))", sourceLocation: sourceLocation)
    #expect(o.serverError?.code == .alertReceived(alert), "server error: \(String(describing: o.serverError))", sourceLocation: sourceLocation)
}

@Suite("PROTOCOL.md §1 key-share validation: exact alerts on both sides")
struct KeyShareValidationTests {
    static let hybrid = clientConfig { $0.keyShareGroups = [.secp384r1MLKEM1024] }
    static func only(_ g: NamedGroup) -> ClientConfiguration {
        clientConfig {
            $0.groups = [g]
            $0.keyShareGroups = [g]
        }
    }

    @Test("server: compressed P-384 point in a secp384r1 share → illegal_parameter")
    func compressedPoint() throws {
        try expectServerAlert(.illegalParameter, client: Self.only(.secp384r1)) { hello in
            changeClientShare(&hello, group: .secp384r1) { share in share = [0x02] + Array(share[1...48]) }
        }
    }

    @Test("server: compressed P-384 point inside the hybrid share → illegal_parameter")
    func compressedPointInHybrid() throws {
        try expectServerAlert(.illegalParameter, client: Self.hybrid) { hello in
            changeClientShare(&hello, group: .secp384r1MLKEM1024) { share in share = [0x03] + Array(share[1...48]) + Array(share[97...]) }
        }
    }

    @Test("server: point with a wrong format byte → illegal_parameter")
    func pointFormat() throws {
        try expectServerAlert(.illegalParameter, client: Self.hybrid) { hello in
            changeClientShare(&hello, group: .secp384r1MLKEM1024) { $0[0] = 0x06 }
        }
    }

    @Test("server: P-384 point off the curve (in the hybrid) → illegal_parameter")
    func offCurve() throws {
        try expectServerAlert(.illegalParameter, client: Self.hybrid) { hello in
            changeClientShare(&hello, group: .secp384r1MLKEM1024) { $0[96] ^= 0x01 }
        }
    }

    @Test("server: P-256 point off the curve → illegal_parameter")
    func offCurveP256() throws {
        try expectServerAlert(.illegalParameter, client: Self.only(.secp256r1)) { hello in
            changeClientShare(&hello, group: .secp256r1) { $0[64] ^= 0x01 }
        }
    }

    @Test("server: truncated hybrid share → illegal_parameter", arguments: [NamedGroup.secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768, .x25519])
    func truncated(group: NamedGroup) throws {
        try expectServerAlert(.illegalParameter, client: Self.only(group)) { hello in
            changeClientShare(&hello, group: group) { $0.removeLast() }
        }
    }

    @Test("server: padded hybrid share → illegal_parameter", arguments: [NamedGroup.secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768, .secp384r1])
    func padded(group: NamedGroup) throws {
        try expectServerAlert(.illegalParameter, client: Self.only(group)) { hello in
            changeClientShare(&hello, group: group) { $0.append(0) }
        }
    }

    @Test("server: ML-KEM-1024 encapsulation key failing the FIPS 203 modulus check → illegal_parameter")
    func badMLKEMKey() throws {
        try expectServerAlert(.illegalParameter, client: Self.hybrid) { hello in
            // The first 12-bit coefficient becomes 0xFFF ≥ q = 3329.
            changeClientShare(&hello, group: .secp384r1MLKEM1024) {
                $0[97] = 0xFF
                $0[98] |= 0x0F
            }
        }
    }

    @Test("server: ML-KEM-768 key failing the modulus check in X25519MLKEM768 (ML-KEM first) → illegal_parameter")
    func badMLKEM768Key() throws {
        try expectServerAlert(.illegalParameter, client: Self.only(.x25519MLKEM768)) { hello in
            changeClientShare(&hello, group: .x25519MLKEM768) {
                $0[0] = 0xFF
                $0[1] |= 0x0F
            }
        }
    }

    @Test("server: a key share for a group missing from supported_groups → illegal_parameter")
    func shareForUnofferedGroup() throws {
        try expectServerAlert(.illegalParameter) { hello in
            replace(&hello.extensions, .supportedGroups, try! ExtensionBody.encodeU16List([NamedGroup.x25519.rawValue]))
        }
    }

    @Test("server: two key shares for one group → illegal_parameter")
    func duplicateShare() throws {
        try expectServerAlert(.illegalParameter, client: Self.only(.x25519)) { hello in
            let shares = try! ExtensionBody.clientKeyShares(hello.extensions[.keyShare]!)
            replace(&hello.extensions, .keyShare, try! ExtensionBody.encodeClientKeyShares(shares + shares))
        }
    }

    @Test("server: all-zero X25519 share (small-order point) → illegal_parameter")
    func zeroX25519() throws {
        try expectServerAlert(.illegalParameter, client: Self.only(.x25519)) { hello in
            changeClientShare(&hello, group: .x25519) { $0 = [UInt8](repeating: 0, count: 32) }
        }
    }

    @Test("client: ML-KEM-1024 ciphertext of the wrong length → illegal_parameter")
    func ciphertextLength() throws {
        try expectClientAlert(.illegalParameter, client: Self.only(.mlkem1024), server: try serverConfig { $0.groups = [.mlkem1024] }) { hello in
            changeServerShare(&hello) { $0.keyExchange.removeLast() }
        }
    }

    @Test("client: truncated hybrid server share → illegal_parameter")
    func serverShareTruncated() throws {
        try expectClientAlert(.illegalParameter, client: Self.hybrid) { hello in
            changeServerShare(&hello) { $0.keyExchange.removeLast() }
        }
    }

    @Test("client: server P-384 point off the curve → illegal_parameter")
    func serverOffCurve() throws {
        try expectClientAlert(.illegalParameter, client: Self.hybrid) { hello in
            changeServerShare(&hello) { $0.keyExchange[50] ^= 0x01 }
        }
    }

    @Test("client: all-zero X25519 server share → illegal_parameter")
    func serverZeroX25519() throws {
        try expectClientAlert(.illegalParameter, client: Self.only(.x25519)) { hello in
            changeServerShare(&hello) { $0.keyExchange = [UInt8](repeating: 0, count: 32) }
        }
    }

    @Test("client: ServerHello selecting a group the client sent no share for → illegal_parameter")
    func serverUnofferedGroup() throws {
        try expectClientAlert(.illegalParameter) { hello in
            changeServerShare(&hello) { $0.group = .secp256r1MLKEM768 }
        }
    }

    @Test("client: ServerHello with an unoffered cipher suite → illegal_parameter")
    func unofferedSuite() throws {
        try expectClientAlert(.illegalParameter, client: clientConfig { $0.cipherSuites = [.aes128GCMSHA256] }) { hello in
            hello.cipherSuite = .tlsAES256GCMSHA384
        }
    }

    @Test("client: ServerHello carrying the TLS 1.2 downgrade sentinel without supported_versions → illegal_parameter")
    func downgradeSentinel() throws {
        try expectClientAlert(.illegalParameter) { hello in
            hello.extensions.items.removeAll { $0.type == .supportedVersions }
            hello.random = Array(hello.random.prefix(24)) + ServerHello.downgradeTLS12
        }
    }

    @Test("client: ServerHello choosing TLS 1.2 when only TLS 1.3 was offered → protocol_version")
    func tls12Chosen() throws {
        try expectClientAlert(.protocolVersion, client: clientConfig { $0.versions = [.tls13] }) { hello in
            hello.extensions.items.removeAll { $0.type == .supportedVersions }
        }
    }

    @Test("client: ServerHello with an unsolicited extension → unsupported_extension")
    func unsolicitedExtension() throws {
        try expectClientAlert(.unsupportedExtension) { hello in
            hello.extensions.append(.alpn, try! ExtensionBody.encodeALPN(["h2"]))
        }
    }

    /// A TLS 1.2 handshake (both sides 1.2 only) whose ServerHello is tampered with; the client's
    /// error, which must also be the alert the server receives.
    static func tls12ClientError(_ tamper: @escaping (inout ServerHello) -> Void) throws -> TLSError? {
        var first = true
        let o = try runPair(client: clientConfig { $0.versions = [.tls12] }, server: try serverConfig { $0.versions = [.tls12] }) { toServer, bytes in
            guard !toServer, first else { return bytes }
            first = false
            return rewriteFirstMessage(bytes, as: ServerHello.self, tamper)
        }
        if let alert = o.clientError?.alert { #expect(o.serverError?.code == .alertReceived(alert)) }
        return o.clientError
    }

    @Test(
        "client: a TLS 1.2 ServerHello acknowledging with data where RFC 6066, 7627 and 5077 say empty → decode_error",
        arguments: [ExtensionType.extendedMasterSecret, .sessionTicket, .serverName, .statusRequest])
    func tls12AcknowledgementWithData(type: ExtensionType) throws {
        let error = try Self.tls12ClientError { hello in
            hello.extensions.items.removeAll { $0.type == type }
            hello.extensions.append(type, [0])
        }
        #expect(error?.alert == .decodeError, "\(String(describing: error))")
        let names: [ExtensionType: String] = [
            .extendedMasterSecret: "extended_master_secret", .sessionTicket: "session_ticket acknowledgement",
            .serverName: "server_name acknowledgement", .statusRequest: "status_request acknowledgement"
        ]
        #expect(error?.code.decodeError == .trailingData(in: names[type] ?? "?"))
    }

    @Test("client: a TLS 1.2 ServerHello carrying an offered TLS 1.3-only extension → illegal_parameter")
    func tls12ServerHelloWithTLS13Extension() throws {
        // A 1.2-only client offers no key_share; signature_algorithms it does offer, and no
        // server hello may carry it.
        let error = try Self.tls12ClientError { hello in
            hello.extensions.append(.signatureAlgorithms, [0, 2, 0x05, 0x03])
        }
        #expect(error?.code.misbehavior == .sentForbiddenExtension, "\(String(describing: error))")
        #expect(error?.alert == .illegalParameter)
    }

    @Test("client: a TLS 1.2 ServerHello with an unsolicited extension → unsupported_extension")
    func tls12UnsolicitedExtension() throws {
        let error = try Self.tls12ClientError { hello in hello.extensions.append(.alpn, try! ExtensionBody.encodeALPN(["h2"])) }
        #expect(error?.code.misbehavior == .sentUnsolicitedExtension, "\(String(describing: error))")
        #expect(error?.alert == .unsupportedExtension)
    }

    @Test("client: a HelloRetryRequest carrying an offered extension only a ServerHello or EncryptedExtensions may carry → illegal_parameter")
    func helloRetryRequestWithForbiddenExtension() throws {
        // The client shares only X25519: the server asks for its hybrid group. server_name was
        // offered (an acknowledgement is allowed in EncryptedExtensions, never in an HRR).
        try expectClientAlert(.illegalParameter, client: clientConfig { $0.keyShareGroups = [.x25519] }) { hrr in
            #expect(hrr.isHelloRetryRequest)
            hrr.extensions.append(.serverName, [])
        }
    }

    @Test("client: ServerHello echoing the wrong session ID → illegal_parameter")
    func wrongSessionID() throws {
        try expectClientAlert(.illegalParameter) { hello in hello.legacySessionIDEcho[0] ^= 1 }
    }
}

@Suite("Negotiation failures and the PQ-required policy")
struct NegotiationFailureTests {
    @Test("PQ-required server against a classical-only client → insufficient_security on both sides")
    func pqRequiredServer() throws {
        let o = try runPair(
            client: clientConfig {
                $0.groups = [.x25519, .secp384r1]
                $0.keyShareGroups = [.x25519]
            },
            server: serverConfig { $0.requirePostQuantum = true })
        #expect(o.serverError?.alert == .insufficientSecurity)
        #expect(o.clientError?.code == .alertReceived(.insufficientSecurity))
    }

    @Test("PQ-required client against a classical-only server → insufficient_security on both sides")
    func pqRequiredClient() throws {
        let o = try runPair(
            client: clientConfig { $0.requirePostQuantum = true },
            server: serverConfig { $0.groups = [.x25519, .secp384r1] })
        #expect(o.clientError?.alert == .insufficientSecurity)
        #expect(o.serverError?.code == .alertReceived(.insufficientSecurity))
    }

    @Test("no common cipher suite → handshake_failure on both sides")
    func noCommonSuite() throws {
        let o = try runPair(
            client: clientConfig { $0.cipherSuites = [.chaCha20Poly1305SHA256] },
            server: serverConfig { $0.cipherSuites = [.aes256GCMSHA384] })
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.clientError?.code == .alertReceived(.handshakeFailure))
    }

    @Test("no common group → handshake_failure on both sides")
    func noCommonGroup() throws {
        let o = try runPair(
            client: clientConfig {
                $0.groups = [.secp256r1]
                $0.keyShareGroups = [.secp256r1]
            },
            server: serverConfig { $0.groups = [.x25519] })
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.clientError?.code == .alertReceived(.handshakeFailure))
    }

    @Test("no common signature scheme → handshake_failure on both sides")
    func noCommonScheme() throws {
        var verifier = sharedPKI.verifier
        verifier.supportedSchemes = [.ed25519]
        let o = try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: verifier), server: serverConfig())
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.clientError?.code == .alertReceived(.handshakeFailure))
    }

    @Test("ALPN without overlap → no_application_protocol on both sides")
    func alpnMismatch() throws {
        let o = try runPair(client: clientConfig { $0.alpnProtocols = ["h2"] }, server: serverConfig { $0.alpnProtocols = ["http/1.1"] })
        #expect(o.serverError?.alert == .noApplicationProtocol)
        #expect(o.clientError?.code == .alertReceived(.noApplicationProtocol))
    }

    @Test("a ClientHello offering only TLS 1.2 to a TLS 1.3-only server → protocol_version on both sides")
    func onlyTLS12() throws {
        try expectServerAlert(.protocolVersion, server: try serverConfig { $0.versions = [.tls13] }) { hello in
            hello.extensions.items.removeAll { $0.type == .supportedVersions }
        }
    }

    @Test("a ClientHello without key_share → missing_extension")
    func missingKeyShare() throws {
        try expectServerAlert(.missingExtension) { hello in hello.extensions.items.removeAll { $0.type == .keyShare } }
    }

    @Test("a ClientHello with non-null compression → illegal_parameter")
    func compression() throws {
        try expectServerAlert(.illegalParameter) { hello in hello.legacyCompressionMethods = [1, 0] }
    }

    @Test("a ClientHello with a duplicated extension → illegal_parameter")
    func duplicateExtension() throws {
        try expectServerAlert(.illegalParameter) { hello in hello.extensions.items.append(hello.extensions.items[0]) }
    }

    @Test("a second ClientHello with a wrong cookie, or without the requested share → illegal_parameter", arguments: [true, false])
    func helloRetryCookie(breakCookie: Bool) throws {
        var flights = 0
        let o = try runPair(client: clientConfig { $0.keyShareGroups = [.x25519] }, server: serverConfig()) { toServer, bytes in
            guard toServer else { return bytes }
            flights += 1
            guard flights == 2 else { return bytes }
            // The second flight is the compatibility CCS record, then ClientHello2.
            return Array(bytes.prefix(6))
                + rewriteFirstMessage(Array(bytes.dropFirst(6)), as: ClientHello.self) { hello in
                    if breakCookie {
                        var cookie = try! ExtensionBody.cookie(hello.extensions[.cookie]!)
                        cookie[0] ^= 1
                        replace(&hello.extensions, .cookie, try! ExtensionBody.encodeCookie(cookie))
                    } else {
                        changeClientShare(&hello, group: .secp384r1MLKEM1024) { _ in }
                        let shares = try! ExtensionBody.clientKeyShares(hello.extensions[.keyShare]!)
                        replace(
                            &hello.extensions, .keyShare,
                            try! ExtensionBody.encodeClientKeyShares(
                                shares.map { KeyShareEntry(group: .x25519, keyExchange: Array($0.keyExchange.prefix(32))) }))
                    }
                }
        }
        #expect(o.serverError?.alert == .illegalParameter)
        #expect(o.serverError?.code == .peerMisbehaved(breakCookie ? .sentWrongCookie : .sentWrongKeyShareAfterHelloRetryRequest))
        #expect(o.clientError?.code == .alertReceived(.illegalParameter))
    }

    @Test("GREASE values and unknown extensions from a client are ignored")
    func grease() throws {
        var client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let hello = rewriteFirstMessage(client.takeOutput(), as: ClientHello.self) { hello in
            hello.cipherSuites.insert(CipherSuite(rawValue: 0x0A0A), at: 0)
            let groups = try! ExtensionBody.supportedGroups(hello.extensions[.supportedGroups]!)
            replace(&hello.extensions, .supportedGroups, try! ExtensionBody.encodeU16List([0x1A1A] + groups.map(\.rawValue)))
            let shares = try! ExtensionBody.clientKeyShares(hello.extensions[.keyShare]!)
            replace(
                &hello.extensions, .keyShare,
                try! ExtensionBody.encodeClientKeyShares([KeyShareEntry(group: NamedGroup(rawValue: 0x1A1A), keyExchange: [0])] + shares))
            let schemes = try! ExtensionBody.signatureAlgorithms(hello.extensions[.signatureAlgorithms]!)
            replace(&hello.extensions, .signatureAlgorithms, try! ExtensionBody.encodeU16List([0x0A0A] + schemes.map(\.rawValue)))
            hello.extensions.items.insert(Extension(type: ExtensionType(rawValue: 0x2A2A), data: []), at: 0)
            hello.extensions.append(ExtensionType(rawValue: 0xFADE), [1, 2, 3])
        }
        var server = try TLSConnection.server(configuration: serverConfig())
        _ = try server.receive(hello)
        let flight = server.takeOutput()
        #expect(server.failure == nil)
        // A ServerHello (handshake record, message type 2) that picked the hybrid, not a GREASE value.
        #expect(Array(flight.prefix(6)) == [22, 3, 3, flight[3], flight[4], 2])
        let serverHello = try HandshakeMessage(type: .serverHello, body: Array(flight[9..<(5 + (Int(flight[3]) << 8 | Int(flight[4])))])).decode(
            as: ServerHello.self)
        #expect(try ExtensionBody.serverKeyShare(serverHello.extensions[.keyShare]!).group == .secp384r1MLKEM1024)
    }
}
