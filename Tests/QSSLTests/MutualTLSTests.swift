import Foundation
import QSSLSwiftCrypto
import QSSLWire
import Testing
import X509

@testable import QSSL
@testable import QSSLX509

/// Client certificates for the mTLS tests, issued by the shared demo CA.
enum ClientPKI {
    static func certified(
        _ algorithm: PKIBuilder.Algorithm = .ecdsaP384, subject: String = "CN=client-1, O=Q-SSL tests",
        by issuer: PKIBuilder.Issuer = sharedPKI.ca, extendedKeyUsage: [ExtendedKeyUsage.Usage]? = nil,
        notAfter: Date = Date().addingTimeInterval(86400)
    ) throws -> CertifiedKey {
        let key = try algorithm.generateKey()
        let cert = try PKIBuilder.issue(
            subject: subject, key: key, by: issuer, client: true, extendedKeyUsage: extendedKeyUsage,
            notBefore: notAfter.addingTimeInterval(-2 * 86400), notAfter: notAfter)
        return try CertificateFiles.certifiedKey(chain: [cert], key: key)
    }
    static let ecdsa = try! certified()
    static let composite = try! certified(.mldsa65ECDSAP384, subject: "CN=composite-client, O=Q-SSL tests")
    static let otherCA = try! PKIBuilder.makeCA(subject: "CN=Other CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
}

func mtlsServer(_ policy: ClientAuthenticationPolicy, _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
    try serverConfig {
        $0.clientAuthentication = policy
        $0.clientCertificateVerifier = sharedPKI.verifier
        configure(&$0)
    }
}

private func summary(_ events: [TLSEvent]) -> HandshakeSummary? {
    events.lazy.compactMap(\.handshakeSummary).first
}

/// A key that signs, then corrupts one half of a composite signature (or any signature).
struct HalfCorruptingKey: SigningKey {
    let inner: any SigningKey
    /// Byte offset to flip; negative counts from the end.
    let offset: Int
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        var s = try inner.sign(message, scheme: scheme)
        s[offset >= 0 ? offset : s.count + offset] ^= 0x01
        return s
    }
}

@Suite("Mutual TLS: client certificates in TLS 1.3 and 1.2")
struct MutualTLSTests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("required: the client proves its certificate; the server sees its identity", arguments: versions)
    func required(version: ProtocolVersion) throws {
        let o = try runPair(
            client: clientConfig {
                $0.versions = [version]
                $0.clientCertificate = ClientPKI.ecdsa
            },
            server: try mtlsServer(.required))
        #expect(o.clientError == nil && o.serverError == nil)
        let server = try #require(summary(o.serverEvents))
        let client = try #require(summary(o.clientEvents))
        #expect(client.clientCertificateSent)
        #expect(server.peerIdentity?.subject.contains("client-1") == true)
        #expect(server.peerSignatureScheme == .ecdsaSecp384r1SHA384)
        #expect(o.server.peerIdentity == server.peerIdentity)
    }

    @Test("composite client certificates: both halves verified, TLS 1.3 and the TLS 1.2 hybrid suites", arguments: versions)
    func composite(version: ProtocolVersion) throws {
        let o = try runPair(
            client: clientConfig {
                $0.versions = [version]
                $0.clientCertificate = ClientPKI.composite
            },
            server: try mtlsServer(.required))
        #expect(o.clientError == nil && o.serverError == nil)
        let identity = try #require(summary(o.serverEvents)?.peerIdentity)
        #expect(identity.handshakeSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        if version == .tls12 { #expect(summary(o.serverEvents)?.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384) }
    }

    @Test(
        "a composite CertificateVerify with one bad half is decrypt_error (ML-DSA half, then ECDSA half)",
        arguments: [(ProtocolVersion.tls13, 10), (.tls13, -10), (.tls12, 10), (.tls12, -10)])
    func compositeHalf(version: ProtocolVersion, offset: Int) throws {
        var bad = ClientPKI.composite
        bad.key = HalfCorruptingKey(inner: bad.key, offset: offset)
        let o = try runPair(
            client: clientConfig {
                $0.versions = [version]
                $0.clientCertificate = bad
            }, server: try mtlsServer(.required))
        #expect(o.serverError?.alert == .decryptError, "\(String(describing: o.serverError))")
        #expect(o.clientError?.code == .alertReceived(.decryptError))
    }

    @Test("required and absent: certificate_required in TLS 1.3, handshake_failure in TLS 1.2", arguments: versions)
    func requiredAbsent(version: ProtocolVersion) throws {
        let o = try runPair(client: clientConfig { $0.versions = [version] }, server: try mtlsServer(.required))
        let alert: AlertDescription = version == .tls13 ? .certificateRequired : .handshakeFailure
        #expect(o.serverError?.alert == alert)
        #expect(o.clientError?.code == .alertReceived(alert))
    }

    @Test("optional and absent: an anonymous client", arguments: versions)
    func optionalAbsent(version: ProtocolVersion) throws {
        let o = try runPair(client: clientConfig { $0.versions = [version] }, server: try mtlsServer(.optional))
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(summary(o.serverEvents)?.peerIdentity == nil)
        #expect(summary(o.clientEvents)?.clientCertificateSent == false)
    }

    @Test(
        "untrusted → unknown_ca, expired → certificate_expired, server-only EKU → unsupported_certificate, key mismatch → decrypt_error",
        arguments: versions)
    func rejections(version: ProtocolVersion) throws {
        // The client must send these even though their issuer is not listed: clear the issuer names.
        var untrusted = try ClientPKI.certified(by: ClientPKI.otherCA)
        untrusted.issuerNames = nil
        let expired = try ClientPKI.certified(notAfter: Date().addingTimeInterval(-3600))
        let serverOnly = try ClientPKI.certified(extendedKeyUsage: [.serverAuth])
        var mismatched = ClientPKI.ecdsa
        mismatched.key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        for (certificate, alert) in [
            (untrusted, AlertDescription.unknownCA), (expired, .certificateExpired),
            (serverOnly, .unsupportedCertificate), (mismatched, .decryptError)
        ] {
            let o = try runPair(
                client: clientConfig {
                    $0.versions = [version]
                    $0.clientCertificate = certificate
                },
                server: try mtlsServer(.optional))
            #expect(o.serverError?.alert == alert, "\(alert): \(String(describing: o.serverError))")
            #expect(o.clientError?.code == .alertReceived(alert), "\(alert)")
        }
    }

    @Test("the client sends no certificate whose issuer the server does not list", arguments: versions)
    func issuerNotListed(version: ProtocolVersion) throws {
        let other = try ClientPKI.certified(by: ClientPKI.otherCA)
        let o = try runPair(
            client: clientConfig {
                $0.versions = [version]
                $0.clientCertificate = other
            }, server: try mtlsServer(.optional))
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(summary(o.clientEvents)?.clientCertificateSent == false)
        #expect(summary(o.serverEvents)?.peerIdentity == nil)
    }

    @Test("an asynchronous client key and an asynchronous client verifier go through the pause", arguments: versions)
    func pauses(version: ProtocolVersion) throws {
        var cert = ClientPKI.ecdsa
        cert.key = AsynchronousKey(inner: cert.key)
        let o = try runPair(
            client: clientConfig {
                $0.versions = [version]
                $0.clientCertificate = cert
            },
            server: try mtlsServer(.required) { $0.clientCertificateVerifier = WaitingVerifier(inner: sharedPKI.verifier) })
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(o.clientEvents.contains { $0.decision?.signatureRequest != nil })
        #expect(o.serverEvents.contains { $0.decision?.peerVerification?.role == .client })
        #expect(summary(o.serverEvents)?.peerIdentity != nil)
    }

    @Test("a resumed session keeps the client identity it was created with", arguments: versions)
    func resumptionKeepsIdentity(version: ProtocolVersion) throws {
        let server = try mtlsServer(.required)
        let client = clientConfig {
            $0.versions = [version]
            $0.clientCertificate = ClientPKI.ecdsa
        }
        let first = try runPair(client: client, server: server)
        let original = try #require(summary(first.serverEvents)?.peerIdentity)
        let second = try runPair(client: client, server: server)
        let resumed = try #require(summary(second.serverEvents))
        #expect(resumed.resumed)
        // The session remembers the identity with the leaf of its verified path (compactIdentity).
        #expect(resumed.peerIdentity == compactIdentity(original))
        #expect(resumed.peerIdentity?.subject == original.subject && resumed.peerIdentity?.verifiedChain.first == original.verifiedChain.first)
    }

    @Test("a session made without a client certificate is not resumed by a server that requires one", arguments: versions)
    func noUpgrade(version: ProtocolVersion) throws {
        let optional = try mtlsServer(.optional)
        var required = try mtlsServer(.required)
        required.ticketKeys = optional.ticketKeys
        required.sessionCache = optional.sessionCache
        let client = clientConfig { $0.versions = [version] }
        let first = try runPair(client: client, server: optional)
        #expect(summary(first.serverEvents)?.peerIdentity == nil)
        let second = try runPair(client: client, server: required)
        #expect(second.serverError?.alert == (version == .tls13 ? .certificateRequired : .handshakeFailure), "full handshake, then refused")
    }
}

/// A verifier that answers only through the pause.
struct WaitingVerifier: CertificateVerifier {
    let inner: X509CertificateVerifier
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    var trustPolicyDigest: [UInt8] { inner.trustPolicyDigest }
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) { try inner.checkResumedPeer(identity, role: role) }
    var acceptableIssuerNames: [[UInt8]] { inner.acceptableIssuerNames }
    var isSynchronous: Bool { false }
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { try inner.verifyPeer(request) }
}

@Suite("Post-handshake client authentication (RFC 8446 §4.6.2)")
struct PostHandshakeAuthTests {
    /// An established TLS 1.3 pair whose client offered post_handshake_auth.
    static func established(certificate: CertifiedKey?, policy: ClientAuthenticationPolicy = .none, offer: Bool = true) throws -> PairOutcome {
        let o = try runPair(
            client: clientConfig {
                $0.versions = [.tls13]
                $0.offerPostHandshakeAuthentication = offer
                $0.clientCertificate = certificate
            },
            server: try mtlsServer(policy) {
                $0.tls13TicketCount = 0
                $0.allowPostHandshakeAuthentication = true
            })
        try #require(o.client.isHandshakeComplete && o.server.isHandshakeComplete)
        return o
    }

    /// Moves bytes both ways until quiet, answering pauses; returns the server's events.
    static func exchange(_ o: PairOutcome) throws -> (server: [TLSEvent], client: [TLSEvent]) {
        var server: [TLSEvent] = []
        var client: [TLSEvent] = []
        for _ in 0..<6 {
            let toClient = o.server.takeOutput()
            if !toClient.isEmpty {
                client += try o.client.receive(toClient)
                try resumeWhilePaused(o.client, &client)
            }
            let toServer = o.client.takeOutput()
            if !toServer.isEmpty {
                server += try o.server.receive(toServer)
                try resumeWhilePaused(o.server, &server)
            }
            if toClient.isEmpty && toServer.isEmpty { break }
        }
        return (server, client)
    }

    @Test("the server asks after the handshake; the client proves its certificate; the identity is updated")
    func answered() throws {
        let o = try Self.established(certificate: ClientPKI.ecdsa)
        #expect(o.server.peerIdentity == nil)
        try o.server.requestClientCertificate()
        let (events, _) = try Self.exchange(o)
        let identity = try #require(events.compactMap(\.clientAuthentication?.identity).first)
        #expect(identity.subject.contains("client-1"))
        #expect(o.server.peerIdentity == identity)
        // Each answer clears its request (review): more requests than may be outstanding at once.
        for _ in 0..<(PostHandshakeAuthentication.maxOutstanding + 2) {
            try o.server.requestClientCertificate()
            let (more, _) = try Self.exchange(o)
            #expect(more.contains { $0.clientAuthentication?.identity != nil })
        }
        // Traffic goes on under the same keys.
        try o.client.send([42])
        #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData([42])])
    }

    @Test("a composite client key in an asynchronous signer: the client pauses mid-traffic, data queued meanwhile follows")
    func asynchronousComposite() throws {
        var cert = ClientPKI.composite
        cert.key = AsynchronousKey(inner: cert.key)
        let o = try Self.established(certificate: cert)
        try o.server.requestClientCertificate()
        let clientEvents = try o.client.receive(o.server.takeOutput())
        #expect(clientEvents.contains { $0.decision?.signatureRequest != nil })
        try o.client.send([7])  // queued while paused
        var resumed = try o.client.resume(with: answerInPlace(try #require(o.client.pendingDecision)))
        resumed += []
        let serverEvents = try o.server.receive(o.client.takeOutput())
        let identity = serverEvents.compactMap(\.clientAuthentication?.identity).first
        #expect(identity?.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        #expect(serverEvents.contains(.applicationData([7])))
    }

    @Test("no certificate: the client answers with an empty Certificate and the server hears clientAuthenticated(nil)")
    func declined() throws {
        let optional = try Self.established(certificate: nil, policy: .optional)
        try optional.server.requestClientCertificate()
        let (events, _) = try Self.exchange(optional)
        #expect(events.contains(.clientAuthenticated(nil)))
        #expect(optional.server.failure == nil && optional.server.peerIdentity == nil)
    }

    @Test("a client that did not offer post_handshake_auth cannot be asked, and refuses a request")
    func notOffered() throws {
        let o = try Self.established(certificate: ClientPKI.ecdsa, offer: false)
        #expect(throws: TLSError.self) { try o.server.requestClientCertificate() }
        #expect(o.server.failure == nil, "misuse does not fail the connection")
        var ext = ExtensionList()
        ext.append(.signatureAlgorithms, try ExtensionBody.encodeU16List([SignatureScheme.ecdsaSecp384r1SHA384.rawValue]))
        try o.server.sendRawHandshakeForTesting(HandshakeMessage(CertificateRequest(requestContext: [1], extensions: ext)))
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.client.receive(o.server.takeOutput()) }
    }

    @Test("a bad post-handshake CertificateVerify is decrypt_error; a Certificate for no request is unexpected_message")
    func hostileAnswers() throws {
        var bad = ClientPKI.ecdsa
        bad.key = HalfCorruptingKey(inner: bad.key, offset: -3)
        let o = try Self.established(certificate: bad)
        try o.server.requestClientCertificate()
        _ = try o.client.receive(o.server.takeOutput())
        #expect(throws: TLSError(.peerMisbehaved(.sentInvalidSignature))) { try o.server.receive(o.client.takeOutput()) }

        let o2 = try Self.established(certificate: ClientPKI.ecdsa)
        try o2.client.sendRawHandshakeForTesting(HandshakeMessage(CertificateMessage(requestContext: [9], certificates: [])))
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o2.server.receive(o2.client.takeOutput()) }
    }
}

@Suite("Review fixes: sessions and client identities")
struct SessionIdentityReviewTests {
    @Test("a copy of a configuration with other client certificates does not resume the first one's session", arguments: [ProtocolVersion.tls13, .tls12])
    func copiesDoNotShareIdentity(version: ProtocolVersion) throws {
        let server = try mtlsServer(.optional)
        let a = clientConfig {
            $0.versions = [version]
            $0.clientCertificate = ClientPKI.ecdsa
        }
        var b = a
        b.clientCertificate = nil
        let first = try runPair(client: a, server: server)
        #expect(first.server.peerIdentity != nil)
        let second = try runPair(client: b, server: server)
        #expect(second.server.summary?.resumed == false)
        #expect(second.server.peerIdentity == nil)
        let third = try runPair(client: a, server: server)
        #expect(third.server.summary?.resumed == true && third.server.peerIdentity != nil)
    }

    @Test("a composite client chain with an intermediate still resumes (tickets carry the leaf, not the path)")
    func compositeChainResumes() throws {
        let interKey = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
        let inter = PKIBuilder.Issuer(
            certificate: try PKIBuilder.issue(subject: "CN=Composite Intermediate", key: interKey, by: sharedPKI.ca, isCA: true),
            key: interKey)
        let leafKey = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
        let leaf = try PKIBuilder.issue(subject: "CN=composite leaf", key: leafKey, by: inter, client: true)
        let certified = try CertificateFiles.certifiedKey(chain: [leaf, inter.certificate], key: leafKey)
        let server = try mtlsServer(.required)
        let client = clientConfig { $0.clientCertificate = certified }
        let first = try runPair(client: client, server: server)
        #expect(first.clientError == nil && first.serverError == nil)
        #expect(first.clientEvents.contains { $0.issuedSession != nil })
        let second = try runPair(client: client, server: server)
        #expect(second.server.summary?.resumed == true)
        #expect(second.server.peerIdentity?.subject.contains("composite leaf") == true)
    }

    @Test(
        "a server whose ticket keys cannot seal still completes handshakes (no ticket), both versions",
        arguments: [ProtocolVersion.tls13, .tls12])
    func unsealableTickets(version: ProtocolVersion) throws {
        let server = try serverConfig {
            $0.ticketKeys = TicketKeySet(keys: [], primitives: $0.provider.primitives, rotatesAutomatically: false)
            $0.sessionCache = nil
        }
        let o = try runPair(client: clientConfig { $0.versions = [version] }, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(!o.clientEvents.contains { $0.issuedSession != nil })
    }
}

@Suite("Post-handshake CertificateRequests a client answers are bounded by its own data")
struct PostHandshakeAuthFloodTests {
    @Test("a server asking again and again, with data between its requests, is answered a bounded number of times, then cut off")
    func requestFlood() throws {
        let o = try PostHandshakeAuthTests.established(certificate: ClientPKI.ecdsa)
        for i in 0..<TLSConnection.maxPostHandshakeAuthAnswers {
            try o.server.requestClientCertificate()
            try o.server.send([UInt8(i)])
            let events = try o.client.receive(o.server.takeOutput())
            #expect(events.contains(.applicationData([UInt8(i)])))
            let answer = o.client.takeOutput()
            #expect(!answer.isEmpty, "answer \(i)")
            _ = try o.server.receive(answer)  // (the server's own API allows few unanswered requests)
        }
        try o.server.requestClientCertificate()
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.client.receive(o.server.takeOutput()) }
    }

    @Test("the client's own data between requests lets it answer every one")
    func requestsWithClientData() throws {
        let o = try PostHandshakeAuthTests.established(certificate: ClientPKI.ecdsa)
        for i in 0..<(2 * TLSConnection.maxPostHandshakeAuthAnswers) {
            try o.server.requestClientCertificate()
            _ = try o.client.receive(o.server.takeOutput())
            try o.client.send([UInt8(i)])
            let events = try o.server.receive(o.client.takeOutput())
            #expect(events.contains { $0.clientAuthentication?.identity != nil } && events.contains(.applicationData([UInt8(i)])), "request \(i)")
        }
    }

    @Test("after the client's close_notify a CertificateRequest gets no answer")
    func nothingAfterClose() throws {
        let o = try PostHandshakeAuthTests.established(certificate: ClientPKI.ecdsa)
        o.client.close()
        _ = try o.server.receive(o.client.takeOutput())
        try o.server.requestClientCertificate()
        _ = try o.client.receive(o.server.takeOutput())
        #expect(o.client.takeOutput().isEmpty)
    }
}
