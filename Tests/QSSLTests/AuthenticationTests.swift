import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// A signing key that signs correctly and then flips a bit: a server whose CertificateVerify is bad.
struct CorruptingKey: SigningKey {
    let inner: SwiftCryptoSigningKey
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        var signature = try inner.sign(message, scheme: scheme)
        signature[signature.count / 2] ^= 0x01
        return signature
    }
}

/// HMAC that corrupts the `n`-th Finished MAC it computes (HMAC over a transcript hash with a
/// 32-byte finished key, told apart from HKDF calls by its input length under SHA-256 with a
/// P-384 exchange, whose 48-byte secret never has that shape).
final class FaultyFinishedPrimitives: CryptoPrimitives, @unchecked Sendable {
    let inner = SwiftCryptoPrimitives()
    let corruptCall: Int
    private var calls = 0
    init(corruptCall: Int) { self.corruptCall = corruptCall }
    func hash(_ a: HashAlgorithm, _ d: [UInt8]) -> [UInt8] { inner.hash(a, d) }
    func makeAEAD(_ a: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try inner.makeAEAD(a, key: key) }
    func randomBytes(_ n: Int) -> [UInt8] { inner.randomBytes(n) }
    func hmac(_ a: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] {
        var out = inner.hmac(a, key: key, data: data)
        if a == .sha256, data.count == 32, key.count == 32, data.contains(where: { $0 != 0 }) {
            calls += 1
            if calls == corruptCall { out[0] ^= 1 }
        }
        return out
    }
}

@Suite("Authentication failures: the seed's alerts on both sides")
struct AuthenticationTests {
    static func p384Client(_ primitives: (any CryptoPrimitives)? = nil) -> ClientConfiguration {
        clientConfig {
            $0.groups = [.secp384r1]
            $0.keyShareGroups = [.secp384r1]
            $0.cipherSuites = [.aes128GCMSHA256]
            if let primitives { $0.provider.primitives = primitives }
        }
    }

    @Test("a bad server CertificateVerify → decrypt_error")
    func badCertificateVerify() throws {
        let key = CorruptingKey(inner: sharedPKI.serverKey)
        let chain = try sharedPKI.serverCertifiedKey.chain
        let o = try runPair(client: clientConfig(), server: ServerConfiguration(provider: .swiftCrypto, certificates: [CertifiedKey(chain: chain, key: key)]))
        #expect(o.clientError?.alert == .decryptError)
        #expect(o.serverError?.code == .alertReceived(.decryptError))
    }

    @Test("a wrong server Finished → decrypt_error (constant-time compare)")
    func badServerFinished() throws {
        // The server's first Finished MAC is its own Finished.
        var server = try serverConfig { $0.cipherSuites = [.aes128GCMSHA256] }
        server.provider.primitives = FaultyFinishedPrimitives(corruptCall: 1)
        let o = try runPair(client: Self.p384Client(), server: server)
        #expect(o.clientError?.alert == .decryptError)
        #expect(o.serverError?.code == .alertReceived(.decryptError))
    }

    @Test("a wrong client Finished → decrypt_error")
    func badClientFinished() throws {
        // The client's first Finished MAC checks the server's; the second is its own.
        let o = try runPair(client: Self.p384Client(FaultyFinishedPrimitives(corruptCall: 2)), server: try serverConfig())
        #expect(o.serverError?.alert == .decryptError)
        #expect(o.clientError?.code == .alertReceived(.decryptError))
        #expect(o.client.summary != nil, "the client finished its side before the server rejected it")
        #expect(o.server.summary == nil)
    }

    @Test("a certificate past notAfter → certificate_expired")
    func expired() throws {
        try expectCertificateAlert(.certificateExpired, notBefore: Date().addingTimeInterval(-7200), notAfter: Date().addingTimeInterval(-3600))
    }

    @Test("a certificate before notBefore → certificate_expired")
    func notYetValid() throws {
        try expectCertificateAlert(.certificateExpired, notBefore: Date().addingTimeInterval(3600), notAfter: Date().addingTimeInterval(7200))
    }

    @Test("a chain to an untrusted root → unknown_ca")
    func unknownCA() throws {
        let other = try DemoPKI()
        let o = try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: other.verifier), server: serverConfig())
        #expect(o.clientError?.alert == .unknownCA)
        #expect(o.serverError?.code == .alertReceived(.unknownCA))
    }

    @Test("a certificate whose signature does not verify → bad_certificate")
    func badSignature() throws {
        var der = sharedPKI.serverCertificate.der
        der[der.count - 5] ^= 0x01  // inside the ECDSA signature value
        let o = try runPair(
            client: clientConfig(),
            server: ServerConfiguration(
                provider: .swiftCrypto, certificates: [CertifiedKey(chain: [der], key: sharedPKI.serverKey)]))
        #expect(o.clientError?.alert == .badCertificate)
        #expect(o.serverError?.code == .alertReceived(.badCertificate))
    }

    @Test("a malformed certificate → bad_certificate")
    func malformed() throws {
        let o = try runPair(
            client: clientConfig(),
            server: ServerConfiguration(
                provider: .swiftCrypto, certificates: [CertifiedKey(chain: [[0x30, 0x03, 0x02, 0x01, 0x00]], key: sharedPKI.serverKey)]))
        #expect(o.clientError?.alert == .badCertificate)
        #expect(o.serverError?.code == .alertReceived(.badCertificate))
    }

    @Test("a certificate for another name → bad_certificate with a readable reason")
    func nameMismatch() throws {
        let o = try runPair(client: clientConfig(), server: serverConfig(), serverName: "example.com")
        #expect(o.clientError?.alert == .badCertificate)
        #expect(o.clientError?.description.contains("example.com") == true)
        #expect(o.serverError?.code == .alertReceived(.badCertificate))
    }

    @Test(
        "names: IP addresses and wildcards match as RFC 9525 says",
        arguments: [
            ("127.0.0.1", true), ("::1", true), ("0:0:0:0:0:0:0:1", true), ("127.0.0.2", false), ("localhost", true), ("LOCALHOST", true),
            ("sub.localhost", false)
        ])
    func names(name: String, ok: Bool) throws {
        let o = try runPair(client: clientConfig(), server: serverConfig(), serverName: name)
        #expect((o.clientError == nil) == ok, "\(String(describing: o.clientError))")
    }

    func expectCertificateAlert(_ alert: AlertDescription, notBefore: Date, notAfter: Date) throws {
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let cert = try PKIBuilder.issue(
            subject: "CN=localhost", key: key, by: sharedPKI.ca, dnsNames: ["localhost"],
            notBefore: notBefore, notAfter: notAfter)
        let o = try runPair(
            client: clientConfig(),
            server: ServerConfiguration(
                provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chain: [cert], key: key)]))
        #expect(o.clientError?.alert == alert)
        #expect(o.serverError?.code == .alertReceived(alert))
    }
}

@Suite("Record layer: protection failures and malformed input")
struct RecordLayerTests {
    @Test("a tampered application data record → bad_record_mac on both sides")
    func tamperedRecord() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        try o.client.send([1, 2, 3])
        var wire = o.client.takeOutput()
        wire[wire.count - 1] ^= 0x80
        #expect(throws: TLSError(.decryptFailed)) { _ = try o.server.receive(wire) }
        let alert = o.server.takeOutput()
        #expect(throws: TLSError(.alertReceived(.badRecordMAC))) { _ = try o.client.receive(alert) }
    }

    @Test("a record longer than 2^14 + 256 → record_overflow")
    func oversizedRecord() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        let wire: [UInt8] = [23, 3, 3, 0x41, 0x01] + [UInt8](repeating: 0, count: 0x4101)
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) { _ = try o.server.receive(wire) }
        #expect(throws: TLSError(.alertReceived(.recordOverflow))) { _ = try o.client.receive(o.server.takeOutput()) }
    }

    @Test("a plaintext record longer than 2^14 before keys → record_overflow")
    func oversizedPlaintext() throws {
        var server = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) {
            _ = try server.receive([22, 3, 1, 0x40, 0x01] + [UInt8](repeating: 0, count: 0x4001))
        }
        #expect(server.takeOutput() == [21, 3, 3, 0, 2, 2, 22])
    }

    @Test("application data before the handshake → unexpected_message")
    func earlyApplicationData() throws {
        var server = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError(.peerMisbehaved(.sentApplicationDataBeforeHandshake))) { _ = try server.receive([23, 3, 3, 0, 1, 0]) }
        #expect(server.takeOutput() == [21, 3, 3, 0, 2, 2, 10])
    }

    @Test("a change_cipher_spec before any ClientHello → unexpected_message")
    func earlyCCS() throws {
        var server = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedChangeCipherSpec))) { _ = try server.receive([20, 3, 3, 0, 1, 1]) }
    }

    @Test("a ClientHello split byte by byte across records is reassembled")
    func fragmentedClientHello() throws {
        var client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let record = client.takeOutput()
        let body = Array(record.dropFirst(5))
        var server = try TLSConnection.server(configuration: serverConfig())
        for chunk in stride(from: 0, to: body.count, by: 7) {
            let piece = Array(body[chunk..<min(chunk + 7, body.count)])
            _ = try server.receive([22, 3, 1, 0, UInt8(piece.count)] + piece)
        }
        let flight = server.takeOutput()
        let events = try client.receive(flight)
        #expect(events.contains { $0.handshakeSummary != nil })
    }

    @Test("an unknown record content type → unexpected_message")
    func unknownContentType() throws {
        var server = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError(.peerMisbehaved(.sentRecordWithInvalidContentType))) { _ = try server.receive([99, 3, 3, 0, 1, 0]) }
        #expect(server.takeOutput() == [21, 3, 3, 0, 2, 2, 10])
    }

    @Test("a failed connection stays failed and answers every call with the same error")
    func stickyFailure() throws {
        let server = try TLSConnection.server(configuration: serverConfig())
        _ = try? server.receive([99, 3, 3, 0, 1, 0])
        #expect(throws: TLSError(.peerMisbehaved(.sentRecordWithInvalidContentType))) { _ = try server.receive([22]) }
        #expect(throws: TLSError(.peerMisbehaved(.sentRecordWithInvalidContentType))) { try server.send([1]) }
    }

    @Test("random and truncated input never crashes or hangs: every input ends in a failure with an alert, or a clean wait")
    func garbage() throws {
        var rng = SplitMix64(seed: 0x5153_534C)  // fixed: a failure reproduces
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let hello = client.takeOutput()
        let server = try TLSConnection.server(configuration: serverConfig())
        _ = try server.receive(hello)
        let flight = server.takeOutput()
        /// Either the input was consumed with nothing decided (waiting for more), or the
        /// connection failed for good, queued its alert and stays failed.
        func check(_ connection: TLSConnection, _ input: [UInt8], _ what: String) {
            do {
                _ = try connection.receive(input)
                #expect(connection.failure == nil, "\(what)")
            } catch {
                #expect(connection.failure == error, "\(what): the failure is sticky")
                if let alert = error.alert {
                    let out = connection.takeOutput()
                    #expect(!out.isEmpty, "\(what): \(alert) was not queued")
                    if !connection.isHandshakeComplete, out.count >= 7, out[out.count - 7] == 0x15, out[out.count - 3] == 0x02 {
                        #expect(out.last == alert.rawValue, "\(what): the plaintext alert is the error's")
                    }
                } else {
                    #expect(
                        error.code.receivedAlert != nil,
                        "\(what): only a received alert ends a connection without sending one: \(error)")
                }
                #expect(throws: error) { try connection.receive([0x17]) }
            }
        }
        for i in 0..<300 {
            // Every prefix of a real ClientHello is incomplete: the server waits.
            let s = try TLSConnection.server(configuration: serverConfig())
            let prefix = Array(hello.prefix(i * hello.count / 300))
            #expect(try s.receive(prefix).isEmpty, "prefix \(prefix.count)")
            #expect(s.failure == nil && s.takeOutput().isEmpty, "prefix \(prefix.count)")
            // A real server flight with three random bytes changed.
            let c = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
            _ = c.takeOutput()
            var mutated = flight
            for _ in 0..<3 { mutated[Int(rng.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            check(c, mutated, "mutated flight \(i)")
            // Junk inside a handshake record.
            let junk = (0..<Int(rng.next() % 600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let s2 = try TLSConnection.server(configuration: serverConfig())
            check(s2, [22, 3, 1, UInt8(junk.count >> 8), UInt8(junk.count & 0xFF)] + junk, "junk \(i)")
            // It waits only while the junk's own handshake header promises more bytes than it has
            // (and no more than a server accepts of that message type: the documented bounds of
            // `maxHandshakeMessageLength`, written out here); otherwise it has failed.
            let declared = junk.count >= 4 ? Int(junk[1]) << 16 | Int(junk[2]) << 8 | Int(junk[3]) : 0
            let bound: Int =
                switch junk.first {
                case 1: 16_384  // ClientHello
                case 11: 65_536  // Certificate
                case 15: 8_192  // CertificateVerify
                case 16: 4_096  // ClientKeyExchange
                case 20: 64  // Finished
                case 5, 24: 16  // EndOfEarlyData, KeyUpdate
                default: 16_384
                }
            let incomplete = junk.count < 4 || (declared + 4 > junk.count && declared <= bound)
            #expect((s2.failure == nil) == incomplete, "junk \(i): \(junk.count) bytes declaring \(declared)")
        }
    }
}

@Suite("Error → alert mapping (PROTOCOL.md §5)")
struct AlertMappingTests {
    @Test(
        "the seed's alert table",
        arguments: [
            (TLSError.rejected(.expired), AlertDescription.certificateExpired),
            (.rejected(.notYetValid), .certificateExpired),
            (.rejected(.revoked), .certificateRevoked),
            (.rejected(.unknownIssuer), .unknownCA),
            (.rejected(.badSignature), .badCertificate),
            (.rejected(.malformed), .badCertificate),
            (.incompatible(.noCommonCipherSuite), .handshakeFailure),
            (.incompatible(.noCommonGroup), .handshakeFailure),
            (.incompatible(.noCommonSignatureScheme), .handshakeFailure),
            (.misbehaved(.sentWrongFinished), .decryptError),
            (.misbehaved(.sentInvalidSignature), .decryptError),
            (.incompatible(.postQuantumKeyExchangeRequired), .insufficientSecurity),
            (.decode(.truncated(field: "x")), .decodeError),
            (.misbehaved(.sentInvalidKeyShare), .illegalParameter),
            (TLSError(.decryptFailed), .badRecordMAC),
            (.crypto("x"), .internalError)
        ])
    func table(error: TLSError, alert: AlertDescription) {
        #expect(error.alert == alert)
    }

    /// Every misbehaviour with the alert RFC 8446 §6.2 / PROTOCOL.md §5 prescribes. A new case
    /// without a row here fails `everyCaseHasARow`.
    static let misbehaviourAlerts: [PeerMisbehavior: AlertDescription] = {
        var t: [PeerMisbehavior: AlertDescription] = [:]
        for c: PeerMisbehavior in [
            .sentRecordWithInvalidContentType, .sentEmptyHandshakeRecord, .sentHandshakeMessageSpanningKeyChange,
            .sentUnexpectedChangeCipherSpec, .sentApplicationDataBeforeHandshake, .sentUnexpectedMessage,
            .sentTooManyEmptyRecordsOrWarnings, .sentTooMuchWhileWaiting, .sentKeyUpdateWithPendingHandshakeData,
            .sentTooMuchEarlyData, .sentUnexpectedNewSessionTicket
        ] { t[c] = .unexpectedMessage }
        // Resumption (RFC 8446 §4.2.9–§4.2.11, RFC 5246 §7.4.1.3)
        t[.sentPSKWithoutKeyExchangeModes] = .missingExtension
        t[.sentWrongPSKBinder] = .decryptError
        for c: PeerMisbehavior in [
            .sentPreSharedKeyNotLast, .selectedUnofferedPSK, .sentEarlyDataAfterHelloRetryRequest,
            .resumedUnofferedSession, .changedSessionParametersOnResumption
        ] { t[c] = .illegalParameter }
        t[.sentOversizedRecord] = .recordOverflow
        for c: PeerMisbehavior in [.sentOversizedHandshakeMessage, .sentInvalidAlert, .sentEmptyCertificateChain] { t[c] = .decodeError }
        for c: PeerMisbehavior in [.sentMissingKeyShare, .sentMissingSupportedGroups, .sentMissingSignatureAlgorithms] { t[c] = .missingExtension }
        t[.sentUnsolicitedExtension] = .unsupportedExtension
        for c: PeerMisbehavior in [.sentInvalidSignature, .sentWrongFinished] { t[c] = .decryptError }
        for c: PeerMisbehavior in [
            .offeredNullCompressionMissing, .selectedUnofferedCipherSuite, .selectedUnofferedVersion, .selectedUnofferedGroup,
            .sentKeyShareForUnofferedGroup, .helloRetryRequestChangedNothing, .helloRetryRequestForGroupAlreadyShared,
            .sentSecondHelloRetryRequest, .changedCipherSuiteAfterHelloRetryRequest, .sentWrongKeyShareAfterHelloRetryRequest,
            .sentWrongCookie, .sentCookieTooLargeToEcho, .changedClientHelloAfterHelloRetryRequest, .sentDuplicateKeyShare,
            .sentKeyShareNotInSupportedGroups, .echoedWrongSessionID, .sentDowngradeSentinel, .sentNonZeroCompression,
            .sentForbiddenExtension, .selectedUnofferedApplicationProtocol, .sentInvalidKeyShare, .sentPointNotUncompressed,
            .sentPointNotOnCurve, .sentKeyShareWrongLength, .sentInvalidMLKEMKey, .sentMLKEMCiphertextWrongLength,
            .sentAllZeroSharedSecret, .usedUnofferedSignatureScheme, .sentNonEmptyCertificateRequestContext
        ] { t[c] = .illegalParameter }
        return t
    }()

    @Test("every misbehaviour case has its alert", arguments: PeerMisbehavior.allCases)
    func everyMisbehaviour(_ m: PeerMisbehavior) {
        #expect(TLSError.misbehaved(m).alert == Self.misbehaviourAlerts[m], "\(m)")
    }

    @Test("the table covers every misbehaviour case")
    func everyCaseHasARow() {
        #expect(Set(Self.misbehaviourAlerts.keys) == Set(PeerMisbehavior.allCases))
    }

    @Test("every incompatibility case has its alert", arguments: PeerIncompatibility.allCases)
    func everyIncompatibility(_ i: PeerIncompatibility) throws {
        let table: [PeerIncompatibility: AlertDescription] = [
            .noCommonVersion: .protocolVersion, .missingSupportedVersions: .protocolVersion,
            .noCommonApplicationProtocol: .noApplicationProtocol, .unrecognizedServerName: .unrecognizedName,
            .postQuantumKeyExchangeRequired: .insufficientSecurity,
            .noCommonCipherSuite: .handshakeFailure, .noCommonGroup: .handshakeFailure, .noCommonSignatureScheme: .handshakeFailure,
            .extendedMasterSecretRequired: .handshakeFailure, .secureRenegotiationFailed: .handshakeFailure,
            // PROTOCOL.md §5: a required client certificate that is absent.
            .clientCertificateRequired: .certificateRequired, .clientCertificateRequiredTLS12: .handshakeFailure
        ]
        let expected = try #require(table[i], "no row for \(i)")
        #expect(TLSError.incompatible(i).alert == expected)
    }

    @Test("API misuse and received alerts send nothing")
    func silent() {
        #expect(TLSError.misuse("x").alert == nil)
        #expect(TLSError(.alertReceived(.handshakeFailure)).alert == nil)
    }
}
