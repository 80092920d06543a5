import Foundation
import QSSLSwiftCrypto
import QSSLWire
import Testing
import X509

@testable import QSSL
@testable import QSSLX509

/// How a TLS 1.2 session comes back: by its RFC 5077 ticket or by its session ID.
enum ResumptionMechanism: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case ticket, sessionID
    var testDescription: String { rawValue }
}

/// Every (version, mechanism) a server resumes by: TLS 1.3 tickets, TLS 1.2 tickets and IDs.
let resumptionPaths: [(ProtocolVersion, ResumptionMechanism)] = [(.tls13, .ticket), (.tls12, .ticket), (.tls12, .sessionID)]

private func summary(_ events: [TLSEvent]) -> HandshakeSummary? {
    events.lazy.compactMap(\.handshakeSummary).first
}

/// Two mTLS servers that share their ticket keys and session cache (a fleet, or one server
/// restarted with the same keys), with client verifiers made by `first` and `second`.
private func serverPair(
    _ mechanism: ResumptionMechanism, first: X509CertificateVerifier,
    second: X509CertificateVerifier
) throws -> (ServerConfiguration, ServerConfiguration) {
    let a = try mtlsServer(.required) {
        $0.clientCertificateVerifier = first
        if mechanism == .sessionID { $0.ticketKeys = nil } else { $0.sessionCache = nil }
    }
    var b = a
    b.clientCertificateVerifier = second
    return (a, b)
}

@Suite("Resumption honours the trust policy in force (server: client authentication)")
struct ServerResumptionTrustTests {
    static func client(_ version: ProtocolVersion, _ certificate: CertifiedKey = ClientPKI.ecdsa) -> ClientConfiguration {
        clientConfig {
            $0.versions = [version]
            $0.clientCertificate = certificate
        }
    }

    @Test(
        "a session whose client certificate chains to a CA the server no longer trusts is a full handshake, which refuses it",
        arguments: resumptionPaths)
    func otherTrustAnchors(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        var otherRoots = X509CertificateVerifier(roots: [ClientPKI.otherCA.certificate])
        otherRoots.now = { Date() }
        let (a, b) = try serverPair(mechanism, first: sharedPKI.verifier, second: otherRoots)
        let client = Self.client(version)
        let first = try runPair(client: client, server: a)
        #expect(summary(first.serverEvents)?.peerIdentity != nil && first.serverError == nil)
        let second = try runPair(client: client, server: b)
        #expect(summary(second.serverEvents)?.resumed != true, "not resumed at the stricter server")
        // The full handshake names the other CA in certificate_authorities, so the client has
        // no certificate to send, and a server that requires one refuses.
        let refusal: AlertDescription = version == .tls13 ? .certificateRequired : .handshakeFailure
        #expect(second.serverError?.alert == refusal, "the full handshake refuses the client: \(String(describing: second.serverError))")
        #expect(second.clientError?.code == .alertReceived(refusal))
    }

    @Test(
        "an unchanged policy still resumes, with a verifier built anew from the same anchors (another process)",
        arguments: resumptionPaths)
    func samePolicyResumes(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        let (a, b) = try serverPair(mechanism, first: sharedPKI.verifier, second: X509CertificateVerifier(roots: [sharedPKI.ca.certificate]))
        let client = Self.client(version)
        _ = try runPair(client: client, server: a)
        let second = try runPair(client: client, server: b)
        #expect(second.serverError == nil && second.clientError == nil)
        #expect(summary(second.serverEvents)?.resumed == true)
        #expect(summary(second.serverEvents)?.peerIdentity?.subject == "O=Q-SSL tests,CN=client-1")
    }

    @Test(
        "a CRL that now lists the client's certificate ends its sessions: full handshake, certificate_revoked",
        arguments: resumptionPaths)
    func revokedSinceTheSession(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        let certified = try ClientPKI.certified(subject: "CN=revoked-later, O=Q-SSL tests")
        let serial = try X509Certificate(der: certified.chain[0]).serialNumber
        var withCRL = sharedPKI.verifier
        withCRL.crls = [
            try CRLWriter.issue(
                by: sharedPKI.ca, entries: [.init(serial: serial, revocationDate: Date(), reason: .keyCompromise)],
                number: 7, nextUpdate: Date().addingTimeInterval(3600))
        ]
        // The CA published a CRL before the session too, listing nothing: the CRL's contents
        // change, not its presence (so the policy digest is the same; the leaf check acts).
        var before = sharedPKI.verifier
        before.crls = [try CRLWriter.issue(by: sharedPKI.ca, entries: [], number: 6, nextUpdate: Date().addingTimeInterval(3600))]
        #expect(before.trustPolicyDigest == withCRL.trustPolicyDigest)
        let (a, b) = try serverPair(mechanism, first: before, second: withCRL)
        let client = Self.client(version, certified)
        _ = try runPair(client: client, server: a)
        let unrelated = Self.client(version)
        _ = try runPair(client: unrelated, server: a)

        let second = try runPair(client: client, server: b)
        #expect(summary(second.serverEvents)?.resumed != true)
        #expect(second.serverError?.alert == .certificateRevoked, "\(String(describing: second.serverError))")
        // The other client's session is untouched by the new CRL.
        let other = try runPair(client: unrelated, server: b)
        #expect(summary(other.serverEvents)?.resumed == true)
    }

    @Test("a client certificate that expired since the session is a full handshake, certificate_expired", arguments: resumptionPaths)
    func expiredSinceTheSession(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        var later = sharedPKI.verifier
        later.now = { Date().addingTimeInterval(2 * 86400) }  // ClientPKI.ecdsa expires in a day
        let (a, b) = try serverPair(mechanism, first: sharedPKI.verifier, second: later)
        let client = Self.client(version)
        _ = try runPair(client: client, server: a)
        let second = try runPair(client: client, server: b)
        #expect(summary(second.serverEvents)?.resumed != true)
        #expect(second.serverError?.alert == .certificateExpired, "\(String(describing: second.serverError))")
    }

    @Test("a session from a server that asked for no certificate is not resumed where one is optional", arguments: resumptionPaths)
    func fromAnotherClientAuthPolicy(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        var open = try serverConfig { $0.clientAuthentication = .none }
        if mechanism == .sessionID { open.ticketKeys = nil } else { open.sessionCache = nil }
        var optional = open
        optional.clientAuthentication = .optional
        optional.clientCertificateVerifier = sharedPKI.verifier
        let client = clientConfig { $0.versions = [version] }
        _ = try runPair(client: client, server: open)
        let second = try runPair(client: client, server: optional)
        #expect(second.serverError == nil)
        #expect(summary(second.serverEvents)?.resumed == false)
        // …and the same server resumes its own.
        let third = try runPair(client: client, server: optional)
        #expect(summary(third.serverEvents)?.resumed == true)
    }

    @Test("every part of the X.509 policy changes the digest; the clock and the CRLs' contents do not")
    func digestCoversThePolicy() throws {
        let base = sharedPKI.verifier
        var variants: [(String, X509CertificateVerifier)] = []
        var v = base
        v.roots.append(ClientPKI.otherCA.certificate)
        variants.append(("another root", v))
        v = base
        v.requirePostQuantumChains()
        variants.append(("PQ-only chains", v))
        v = base
        v.allowedKeySchemes = [.ecdsaSecp384r1SHA384]
        variants.append(("key schemes", v))
        v = base
        v.supportedSchemes = [.ecdsaSecp384r1SHA384]
        variants.append(("handshake schemes", v))
        v = base
        v.revocationPolicy = .hardFail
        variants.append(("hard-fail", v))
        v = base
        v.crls = [try CRLWriter.issue(by: sharedPKI.ca, entries: [], number: 1, nextUpdate: Date().addingTimeInterval(60))]
        variants.append(("a CA's CRL", v))
        let digests = [base.trustPolicyDigest] + variants.map(\.1.trustPolicyDigest)
        #expect(Set(digests).count == digests.count, "each variant differs: \(variants.map(\.0))")
        #expect(base.trustPolicyDigest.count == 32)
        v = base
        v.now = { Date().addingTimeInterval(1e6) }
        #expect(v.trustPolicyDigest == base.trustPolicyDigest)
        // Root order does not matter; the set does.
        let two = X509CertificateVerifier(roots: [sharedPKI.ca.certificate, ClientPKI.otherCA.certificate])
        let swapped = X509CertificateVerifier(roots: [ClientPKI.otherCA.certificate, sharedPKI.ca.certificate])
        #expect(two.trustPolicyDigest == swapped.trustPolicyDigest)
    }
}

/// A root, an intermediate and a client certificate under it, with CRLs from both CAs.
private struct TwoLevelPKI {
    let root: PKIBuilder.Issuer
    let intermediate: PKIBuilder.Issuer
    let client: CertifiedKey

    init() throws {
        root = try PKIBuilder.makeCA(subject: "CN=Resumption Root", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        intermediate = PKIBuilder.Issuer(certificate: try PKIBuilder.issue(subject: "CN=Resumption Intermediate", key: key, by: root, isCA: true), key: key)
        let leafKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let leaf = try PKIBuilder.issue(subject: "CN=path-client", key: leafKey, by: intermediate, client: true)
        client = try CertificateFiles.certifiedKey(chain: [leaf, intermediate.certificate], key: leafKey)
    }

    /// A verifier for the root with a CRL from each CA; `revoked` serials are listed by the root.
    func verifier(revokedByRoot: [[UInt8]] = [], nextUpdate: Date = Date().addingTimeInterval(3600), hardFail: Bool = false) throws -> X509CertificateVerifier {
        var v = X509CertificateVerifier(roots: [root.certificate])
        let thisUpdate = min(Date(), nextUpdate.addingTimeInterval(-60))
        v.crls = [
            try CRLWriter.issue(
                by: root, entries: revokedByRoot.map { .init(serial: $0, revocationDate: thisUpdate, reason: nil) }, number: 1,
                thisUpdate: thisUpdate, nextUpdate: nextUpdate),
            try CRLWriter.issue(by: intermediate, entries: [], number: 1, thisUpdate: thisUpdate, nextUpdate: nextUpdate)
        ]
        v.revocationPolicy = hardFail ? .hardFail : .softFail
        return v
    }
}

/// A clock `offset` ahead of the system's.
struct ShiftedClock: WallClock {
    let offsetMilliseconds: UInt64
    func nowMilliseconds() -> UInt64 { SystemClock().nowMilliseconds() + offsetMilliseconds }
}

@Suite("Resumption re-checks the whole path and the server's own limits (hostile review of the fix)")
struct ResumptionPathTests {
    @Test("an intermediate revoked since the session ends it: full handshake, certificate_revoked", arguments: resumptionPaths)
    func revokedIntermediate(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        let pki = try TwoLevelPKI()
        let (a, b) = try serverPair(
            mechanism, first: try pki.verifier(),
            second: try pki.verifier(revokedByRoot: [pki.intermediate.certificate.serialNumber]))
        let client = clientConfig {
            $0.versions = [version]
            $0.clientCertificate = pki.client
        }
        let first = try runPair(client: client, server: a)
        #expect(first.serverError == nil && summary(first.serverEvents)?.peerIdentity?.pathReferences.count == 2)
        #expect(summary(try runPair(client: client, server: a).serverEvents)?.resumed == true, "the same policy resumes")
        let second = try runPair(client: client, server: b)
        #expect(summary(second.serverEvents)?.resumed != true)
        #expect(second.serverError?.alert == .certificateRevoked, "\(String(describing: second.serverError))")
    }

    @Test("under hard-fail, a resumption needs current CRLs for the whole path, as a full handshake does", arguments: resumptionPaths)
    func hardFailStaleCRL(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        let pki = try TwoLevelPKI()
        let stale = try pki.verifier(nextUpdate: Date().addingTimeInterval(-3600), hardFail: true)
        let (a, b) = try serverPair(mechanism, first: try pki.verifier(hardFail: true), second: stale)
        let client = clientConfig {
            $0.versions = [version]
            $0.clientCertificate = pki.client
        }
        _ = try runPair(client: client, server: a)
        let second = try runPair(client: client, server: b)
        #expect(summary(second.serverEvents)?.resumed != true)
        #expect(second.serverError?.alert == .badCertificate, "the full handshake fails as hard-fail says: \(String(describing: second.serverError))")
    }

    @Test("a server whose session lifetime was shortened does not resume older, longer sessions", arguments: resumptionPaths)
    func shortenedLifetime(version: ProtocolVersion, mechanism: ResumptionMechanism) throws {
        var long = try serverConfig { $0.sessionLifetimeSeconds = 3600 }
        if mechanism == .sessionID { long.ticketKeys = nil } else { long.sessionCache = nil }
        var short = long
        short.sessionLifetimeSeconds = 1
        short.clock = ShiftedClock(offsetMilliseconds: 2_000)
        short.ticketAgeToleranceMilliseconds = 60_000
        let client = clientConfig { $0.versions = [version] }
        _ = try runPair(client: client, server: long)
        let o = try runPair(client: client, server: short)
        #expect(o.serverError == nil && o.clientError == nil)
        #expect(summary(o.serverEvents)?.resumed == false)
    }

    @Test("a server waiting for a ClientHello refuses any other message at its header: nothing of it is buffered")
    func unexpectedTypeAtHeader() throws {
        for type in [UInt8(11), 15, 16, 20, 4, 99] {
            let s = try TLSConnection.server(configuration: serverConfig())
            #expect(throws: TLSError.misbehaved(.sentUnexpectedMessage), "type \(type)") {
                try s.receive([22, 3, 1, 0, 4, type, 0x00, 0xFF, 0xFF])
            }
            #expect(s.failure?.alert == .unexpectedMessage)
        }
    }
}

@Suite("Resumption honours the trust policy in force (client: server verification)")
struct ClientResumptionTrustTests {
    @Test(
        "a session is not offered under a verifier with other roots or a PQ-only policy: the full handshake fails as it should",
        arguments: [ProtocolVersion.tls13, .tls12])
    func stricterClient(version: ProtocolVersion) throws {
        let server = try serverConfig()
        let store = InMemoryClientSessionStore()
        let loose = clientConfig {
            $0.versions = [version]
            $0.sessionStore = store
        }
        let first = try runPair(client: loose, server: server)
        let session = try #require(first.clientEvents.compactMap(\.issuedSession).last)

        var otherRoots = loose
        otherRoots.verifier = X509CertificateVerifier(roots: [ClientPKI.otherCA.certificate])
        var pqOnly = loose
        var pqVerifier = sharedPKI.verifier
        pqVerifier.requirePostQuantumChains()
        pqOnly.verifier = pqVerifier
        for (name, strict, alert) in [("other roots", otherRoots, AlertDescription.unknownCA), ("PQ-only", pqOnly, .badCertificate)] {
            // Offered explicitly (a --session-in file) …
            let explicit = try runPairOffering(session, client: strict, server: server)
            #expect(summary(explicit.clientEvents)?.resumed != true, "\(name)")
            #expect(explicit.clientError?.alert == alert, "\(name): \(String(describing: explicit.clientError))")
            // … or from the store the looser configuration filled (copies share it).
            let shared = try runPair(client: strict, server: server)
            #expect(summary(shared.serverEvents)?.resumed != true, "\(name)")
            #expect(shared.clientError?.alert == alert, "\(name): \(String(describing: shared.clientError))")
        }
        // The looser configuration still has its sessions and resumes.
        let again = try runPair(client: loose, server: server)
        #expect(summary(again.serverEvents)?.resumed == true)
    }

    @Test("a client session whose server certificate has since expired is not offered", arguments: [ProtocolVersion.tls13, .tls12])
    func expiredServer(version: ProtocolVersion) throws {
        let server = try serverConfig()
        let client = clientConfig { $0.versions = [version] }
        let first = try runPair(client: client, server: server)
        let session = try #require(first.clientEvents.compactMap(\.issuedSession).last)
        var later = client
        var verifier = sharedPKI.verifier
        verifier.now = { Date().addingTimeInterval(400 * 86400) }  // the demo server certificate lives a year
        later.verifier = verifier
        #expect(later.verifier.trustPolicyDigest == client.verifier.trustPolicyDigest)
        let o = try runPairOffering(session, client: later, server: server)
        #expect(summary(o.clientEvents)?.resumed != true)
        #expect(o.clientError?.alert == .certificateExpired, "\(String(describing: o.clientError))")
    }

    @Test("a session without the server's identity (a forged file) is never offered")
    func noIdentity() throws {
        let server = try serverConfig()
        let client = clientConfig { $0.versions = [.tls13] }
        let first = try runPair(client: client, server: server)
        var session = try #require(first.clientEvents.compactMap(\.issuedSession).last)
        session.state.peerIdentity = nil
        let o = try runPairOffering(session, client: client, server: server)
        #expect(o.clientError == nil)
        #expect(summary(o.clientEvents)?.resumed == false)
    }
}

@Suite("TLS 1.3 tickets go to clients that can use them (RFC 8446 §4.2.9)")
struct TicketModesTests {
    /// The extension types of the first ClientHello a configuration sends.
    static func helloExtensions(_ client: ClientConfiguration) throws -> [ExtensionType] {
        let connection = try TLSConnection.client(configuration: client, serverName: "localhost")
        let bytes = connection.takeOutput()
        var joiner = HandshakeJoiner()
        joiner.append(Array(bytes.dropFirst(5)))
        let message = try #require(try joiner.next(receivedByClient: false))
        return try message.require(ClientHello.self).extensions.types
    }

    @Test("a client that can keep tickets lists psk_dhe_ke even when it offers no PSK; one without a store does not")
    func modesWithoutPSK() throws {
        #expect(try Self.helloExtensions(clientConfig()).contains(.pskKeyExchangeModes))
        #expect(try !Self.helloExtensions(clientConfig()).contains(.preSharedKey))
        #expect(try !Self.helloExtensions(clientConfig { $0.sessionStore = nil }).contains(.pskKeyExchangeModes))
        #expect(try !Self.helloExtensions(clientConfig { $0.versions = [.tls12] }).contains(.pskKeyExchangeModes))
    }

    @Test("the server sends NewSessionTicket only to a client that listed a mode it accepts (as Go and BoringSSL do)")
    func ticketsOnlyWithModes() throws {
        let server = try serverConfig()
        func serverFlights(_ client: ClientConfiguration) throws -> Int {
            var flights = 0
            _ = try runPair(client: client, server: server) { toServer, bytes in
                if !toServer { flights += 1 }
                return bytes
            }
            return flights
        }
        #expect(try serverFlights(clientConfig { $0.versions = [.tls13] }) == 2, "the handshake flight, then the tickets")
        #expect(
            try serverFlights(
                clientConfig {
                    $0.versions = [.tls13]
                    $0.sessionStore = nil
                }) == 1, "no modes, no tickets")
    }
}

@Suite("Pre-authentication memory: each handshake message is bounded by what the step accepts")
struct HandshakeBoundsTests {
    static func record(_ body: [UInt8]) -> [UInt8] { [22, 3, 1, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body }

    @Test("a ClientHello header announcing more than 16 KiB is refused at once with decode_error; one just under waits")
    func clientHelloBound() throws {
        let over = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError.misbehaved(.sentOversizedHandshakeMessage)) { try over.receive(Self.record([1, 0x00, 0x40, 0x01])) }
        #expect(over.failure?.alert == .decodeError)
        #expect(over.takeOutput().suffix(2) == [2, 50], "a plaintext decode_error alert")

        let under = try TLSConnection.server(configuration: serverConfig())
        #expect(try under.receive(Self.record([1, 0x00, 0x40, 0x00] + [UInt8](repeating: 0, count: 1000))).isEmpty)
        #expect(under.failure == nil, "a 16,384-byte ClientHello is allowed; the server waits for the rest")
    }

    @Test("the size bounds of the later messages, by type")
    func laterMessages() throws {
        #expect(maxHandshakeMessageLength(.certificate, receivedByClient: false) == 65_536)
        #expect(maxHandshakeMessageLength(.clientKeyExchange, receivedByClient: false) == 4_096)
        #expect(maxHandshakeMessageLength(.certificateVerify, receivedByClient: false) == 8_192)
        #expect(maxHandshakeMessageLength(.finished, receivedByClient: false) == 64)
        var joiner = HandshakeJoiner()
        joiner.append([11, 0x01, 0x00, 0x01])
        #expect(throws: TLSError.misbehaved(.sentOversizedHandshakeMessage)) { try joiner.next(receivedByClient: false, expected: [.certificate]) }
    }

    @Test("the largest real ClientHello fits: a share for every hybrid group plus a ticket with a composite client certificate")
    func largestRealHello() throws {
        let server = try mtlsServer(.required)
        let client = clientConfig {
            $0.clientCertificate = ClientPKI.composite
            $0.groups = [.secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768, .mlkem1024, .x25519]
            $0.keyShareGroups = $0.groups
        }
        var helloSize = 0
        _ = try runPair(client: client, server: server)
        let o = try runPair(client: client, server: server) { toServer, bytes in
            if toServer && helloSize == 0 { helloSize = bytes.count }
            return bytes
        }
        #expect(summary(o.serverEvents)?.resumed == true, "\(String(describing: o.serverError))")
        // Five shares (5,730 bytes) and a ticket holding a composite leaf signed by an ECDSA CA
        // (about 2.5 KB). Our tickets never exceed `maxIssuedTicketLength` (8 KiB), so the worst
        // case is 5,730 + 8,192 + the rest (about 600 bytes): under 16 KiB by construction.
        #expect(helloSize > 8_000 && helloSize < 16 * 1024, "ClientHello record(s): \(helloSize) bytes")
        #expect(5_730 + maxIssuedTicketLength + 1_024 < 16 * 1024)
    }

    @Test("while paused before authentication, a server holds at most 128 KiB")
    func serverPauseBound() throws {
        var config = try serverConfig()
        config.configurationSelector = AsynchronousSelector(configuration: try serverConfig())
        let server = try TLSConnection.server(configuration: config)
        let hello = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost").takeOutput()
        let events = try server.receive(hello)
        #expect(events.contains { $0.decision != nil })
        let junk: [UInt8] = [0x17, 3, 3, 0x40, 0] + [UInt8](repeating: 0, count: 0x4000)
        var sent = 0
        var refused = false
        while sent < 1 << 20 {
            do { _ = try server.receive(junk) } catch {
                refused = true
                break
            }
            sent += junk.count
        }
        #expect(refused && sent <= 128 * 1024, "refused after \(sent) bytes")
    }
}

@Suite("RFC 5280 §4.2.1.3: key usage of CRL issuers and OCSP responders")
struct RevocationKeyUsageTests {
    @Test("a CRL signed by a CA whose keyUsage lacks cRLSign is not used: its revocation is ignored, and hard-fail finds no CRL")
    func crlSignRequired() throws {
        let caKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let ca = try PKIBuilder.makeCA(subject: "CN=No CRL CA", key: caKey, keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true))
        let (cert, key) = try RevocationTests.leaf(from: ca)
        let crl = try CRLWriter.issue(
            by: ca, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: nil)], number: 1,
            nextUpdate: Date().addingTimeInterval(3600))
        #expect(crl.isSigned(by: ca.certificate), "the signature itself is fine")
        var verifier = X509CertificateVerifier(roots: [ca.certificate])
        verifier.crls = [crl]
        let server = try RevocationTests.server(chain: [cert], key: key)
        let soft = try RevocationTests.handshake(server: server, verifier: verifier)
        #expect(soft.clientError == nil, "the CRL does not count: \(String(describing: soft.clientError))")
        verifier.revocationPolicy = .hardFail
        let hard = try RevocationTests.handshake(server: server, verifier: verifier)
        #expect(hard.clientError?.alert == .badCertificate, "no usable CRL under hard-fail: \(String(describing: hard.clientError))")
        #expect("\(String(describing: hard.clientError))".contains("no CRL signed by"))

        // The same with cRLSign: revoked.
        let good = try PKIBuilder.makeCA(subject: "CN=CRL CA", key: caKey)
        let (cert2, key2) = try RevocationTests.leaf(from: good)
        var v2 = X509CertificateVerifier(roots: [good.certificate])
        v2.crls = [
            try CRLWriter.issue(
                by: good, entries: [.init(serial: cert2.serialNumber, revocationDate: Date(), reason: nil)], number: 1,
                nextUpdate: Date().addingTimeInterval(3600))
        ]
        let revoked = try RevocationTests.handshake(server: try RevocationTests.server(chain: [cert2], key: key2), verifier: v2)
        #expect(revoked.clientError?.alert == .certificateRevoked)
    }

    @Test("a delegated OCSP responder whose keyUsage lacks digitalSignature is not trusted")
    func responderDigitalSignature() throws {
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let responder = try PKIBuilder.issue(
            subject: "CN=OCSP responder (keyCertSign only)", key: key, by: OCSPTests.ca,
            extendedKeyUsage: [ExtendedKeyUsage.Usage(oid: OCSPOID.ocspSigning)],
            keyUsage: KeyUsage(nonRepudiation: true))
        let (server, cert) = try OCSPTests.server(staple: nil)
        let der = try OCSPResponseWriter.response(
            certID: try OCSPCertID(certificate: cert, issuer: OCSPTests.ca.certificate), status: .good,
            signer: PKIBuilder.Issuer(certificate: responder, key: key), nonce: nil,
            nextUpdate: Date().addingTimeInterval(3600), including: [responder])
        server.certificates[0].ocspStaple?.update(der)
        let o = try OCSPTests.run(server, version: .tls13, policy: .hardFail)
        #expect(o.clientError?.alert == .badCertificateStatusResponse, "\(String(describing: o.clientError))")
    }
}
