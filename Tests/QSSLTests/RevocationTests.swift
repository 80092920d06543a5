import Foundation
import QSSLSwiftCrypto
import QSSLWire
import Testing
import X509

@testable import QSSL
@testable import QSSLX509

private func resource(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources/crl"))
}

@Suite("Revocation: CRLs (RFC 5280 §5)")
struct RevocationTests {
    static func server(chain: [X509Certificate], key: SwiftCryptoSigningKey) throws -> ServerConfiguration {
        ServerConfiguration(provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chain: chain, key: key)])
    }

    /// A fresh leaf for localhost from `ca`, and its key.
    static func leaf(from ca: PKIBuilder.Issuer) throws -> (X509Certificate, SwiftCryptoSigningKey) {
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        return (try PKIBuilder.issue(subject: "CN=localhost", key: key, by: ca, dnsNames: ["localhost"]), key)
    }

    static func handshake(server: ServerConfiguration, verifier: X509CertificateVerifier) throws -> PairOutcome {
        try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: verifier), server: server)
    }

    @Test("OpenSSL's CRL (openssl ca -gencrl): parsed, its signature verified, the revoked serial and reason read")
    func opensslCRL() throws {
        let crls = try CertificateRevocationList.load(path: try resource("ca.crl.pem").path)
        let der = try CertificateRevocationList.load(path: try resource("ca.crl.der").path)
        #expect(crls == der)
        let crl = try #require(crls.first)
        let ca = try #require(try CertificateFiles.certificates(atPath: try resource("ca.pem").path).first)
        let revoked = try #require(try CertificateFiles.certificates(atPath: try resource("revoked.pem").path).first)
        let good = try #require(try CertificateFiles.certificates(atPath: try resource("good.pem").path).first)
        #expect(crl.isSigned(by: ca))
        #expect(crl.isRevoked(serial: revoked.serialNumber))
        #expect(!crl.isRevoked(serial: good.serialNumber))
        #expect(crl.revoked[revoked.serialNumber] == .some(.keyCompromise))
        #expect(crl.number == [1])
        let serialText = try String(contentsOf: try resource("revoked.serial"), encoding: .utf8)
        #expect(serialText.contains("serial=\(hex(revoked.serialNumber))"), "serials print as openssl x509 -serial does")
    }

    @Test("a server certificate on OpenSSL's CRL is certificate_revoked on both sides; one not on it is accepted")
    func opensslRevokedServer() throws {
        let ca = try CertificateFiles.certificates(atPath: try resource("ca.pem").path)
        var verifier = X509CertificateVerifier(roots: ca)
        verifier.crls = try CertificateRevocationList.load(path: try resource("ca.crl.pem").path)
        for (name, revoked) in [("revoked", true), ("good", false)] {
            let chain = try CertificateFiles.certificates(atPath: try resource("\(name).pem").path)
            let key = try CertificateFiles.privateKey(fromPEM: String(contentsOf: try resource("\(name).key"), encoding: .utf8))
            let o = try Self.handshake(server: try Self.server(chain: chain, key: key), verifier: verifier)
            if revoked {
                #expect(o.clientError?.alert == .certificateRevoked, "\(String(describing: o.clientError))")
                #expect(o.serverError?.code == .alertReceived(.certificateRevoked))
            } else {
                #expect(o.clientError == nil && o.serverError == nil)
            }
        }
    }

    @Test(
        "Q-SSL's own CRLs, signed by ECDSA and composite CAs, revoke server and client certificates",
        arguments: [PKIBuilder.Algorithm.ecdsaP384, .mldsa65ECDSAP384])
    func ownCRL(algorithm: PKIBuilder.Algorithm) throws {
        let ca = try PKIBuilder.makeCA(subject: "CN=CRL CA \(algorithm.rawValue)", key: algorithm.generateKey())
        let (cert, key) = try Self.leaf(from: ca)
        let crl = try CRLWriter.issue(
            by: ca, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: .superseded)],
            number: 7, nextUpdate: Date().addingTimeInterval(86400))
        #expect(crl.isSigned(by: ca.certificate))
        #expect(try CertificateRevocationList(der: crl.der) == crl, "re-parses")
        #expect(crl.revoked[cert.serialNumber] == .some(.superseded))
        var verifier = X509CertificateVerifier(roots: [ca.certificate])
        verifier.crls = [crl]
        let o = try Self.handshake(server: try Self.server(chain: [cert], key: key), verifier: verifier)
        #expect(o.clientError?.alert == .certificateRevoked)
        #expect(o.serverError?.code == .alertReceived(.certificateRevoked))

        // The same CRL keeps a revoked client certificate out (mTLS).
        let clientKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let clientCert = try PKIBuilder.issue(subject: "CN=revoked client", key: clientKey, by: ca, client: true)
        let clientCRL = try CRLWriter.issue(
            by: ca, entries: [.init(serial: clientCert.serialNumber, revocationDate: Date(), reason: nil)],
            number: 8, nextUpdate: Date().addingTimeInterval(86400))
        var clientVerifier = X509CertificateVerifier(roots: [ca.certificate])
        clientVerifier.crls = [clientCRL]
        var server = try serverConfig()
        server.clientAuthentication = .required
        server.clientCertificateVerifier = clientVerifier
        let m = try runPair(
            client: clientConfig { $0.clientCertificate = try? CertificateFiles.certifiedKey(chain: [clientCert], key: clientKey) },
            server: server)
        #expect(m.serverError?.alert == .certificateRevoked)
        #expect(m.clientError?.code == .alertReceived(.certificateRevoked))
    }

    @Test("policy: an out-of-date, foreign-signed or missing CRL is ignored under soft-fail and rejects under hard-fail")
    func policy() throws {
        let ca = try PKIBuilder.makeCA(subject: "CN=Policy CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
        let other = try PKIBuilder.makeCA(subject: "CN=Policy CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())  // same name, other key
        let (cert, key) = try Self.leaf(from: ca)
        let server = try Self.server(chain: [cert], key: key)
        let stale = try CRLWriter.issue(
            by: ca, entries: [], number: 1, thisUpdate: Date().addingTimeInterval(-7200),
            nextUpdate: Date().addingTimeInterval(-3600))
        let forged = try CRLWriter.issue(
            by: other, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: nil)],
            number: 1, nextUpdate: Date().addingTimeInterval(3600))
        for crls in [[stale], [forged], []] {
            var verifier = X509CertificateVerifier(roots: [ca.certificate])
            verifier.crls = crls
            #expect(try Self.handshake(server: server, verifier: verifier).clientError == nil, "soft-fail accepts (and a forged CRL revokes nothing)")
            verifier.revocationPolicy = .hardFail
            let o = try Self.handshake(server: server, verifier: verifier)
            #expect(o.clientError?.alert == .badCertificate, "hard-fail: \(String(describing: o.clientError))")
        }
    }

    @Test("a CRL path that is a FIFO with no writer, a directory or an endless device is refused with a reason, without blocking or reading without end")
    func crlFilesThatAreNotFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-crl-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/crl.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: (any Error).self) { try CertificateRevocationList.load(path: fifo) }
        #expect(throws: (any Error).self) { try CertificateRevocationList.load(path: dir) }
        do {
            _ = try CertificateRevocationList.load(path: "/dev/zero", maximumSize: 1 << 20)
            Issue.record("/dev/zero loaded")
        } catch let error as CertificateFiles.FileError {
            #expect(error.description.contains("larger than"), "\(error)")
        }
    }

    @Test("malformed CRLs are refused with a reason, never a crash (every truncation, every flipped byte of the header)")
    func malformed() throws {
        let der = try #require(try CertificateRevocationList.load(path: try resource("ca.crl.der").path).first).der
        for n in 0..<der.count { #expect(throws: CertificateRevocationList.LoadError.self) { try CertificateRevocationList(der: Array(der.prefix(n))) } }
        #expect(throws: CertificateRevocationList.LoadError.self) { try CertificateRevocationList(der: der + [0]) }
        for i in 0..<min(der.count, 64) {
            var bad = der
            bad[i] ^= 0xFF
            _ = try? CertificateRevocationList(der: bad)  // decodes or throws; must not trap
        }
    }
}

@Suite("Revocation: OCSP responses and stapling (RFC 6960, RFC 6066 §8)")
struct OCSPTests {
    static let ca = try! PKIBuilder.makeCA(subject: "CN=OCSP CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())

    static func server(staple: [UInt8]?) throws -> (ServerConfiguration, X509Certificate) {
        let (cert, key) = try RevocationTests.leaf(from: ca)
        var certified = try CertificateFiles.certifiedKey(chain: [cert], key: key)
        certified.ocspStaple = OCSPStaple(staple)
        return (ServerConfiguration(provider: .swiftCrypto, certificates: [certified]), cert)
    }

    static func response(
        for cert: X509Certificate, _ status: OCSPCertStatus, signer: PKIBuilder.Issuer = ca,
        nextUpdate: Date = Date().addingTimeInterval(3600)
    ) throws -> [UInt8] {
        try OCSPResponseWriter.response(
            certID: try OCSPCertID(certificate: cert, issuer: ca.certificate), status: status, signer: signer,
            nonce: nil, nextUpdate: nextUpdate)
    }

    static func run(_ server: ServerConfiguration, version: ProtocolVersion, policy: RevocationPolicy = .softFail) throws -> PairOutcome {
        var verifier = X509CertificateVerifier(roots: [ca.certificate])
        verifier.revocationPolicy = policy
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        client.versions = [version]
        return try runPair(client: client, server: server)
    }

    @Test("a good staple is accepted; a revoked one is certificate_revoked on both sides", arguments: [ProtocolVersion.tls13, .tls12])
    func goodAndRevoked(version: ProtocolVersion) throws {
        let (server, cert) = try Self.server(staple: nil)
        server.certificates[0].ocspStaple?.update(try Self.response(for: cert, .good))
        let ok = try Self.run(server, version: version, policy: .hardFail)  // the staple establishes the status
        #expect(ok.clientError == nil && ok.serverError == nil, "\(String(describing: ok.clientError))")

        server.certificates[0].ocspStaple?.update(try Self.response(for: cert, .revoked(at: Date(), reason: .keyCompromise)))
        let revoked = try Self.run(server, version: version)
        #expect(revoked.clientError?.alert == .certificateRevoked)
        #expect(revoked.serverError?.code == .alertReceived(.certificateRevoked))
    }

    @Test(
        "a bad staple is bad_certificate_status_response: garbage, another certificate, expired, signed by a stranger, a delegate without OCSPSigning",
        arguments: [ProtocolVersion.tls13, .tls12])
    func badStaples(version: ProtocolVersion) throws {
        let (server, cert) = try Self.server(staple: nil)
        let (_, other) = try Self.server(staple: nil)
        let stranger = try PKIBuilder.makeCA(subject: "CN=OCSP CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
        let delegateKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let delegate = PKIBuilder.Issuer(
            certificate: try PKIBuilder.issue(subject: "CN=not a responder", key: delegateKey, by: Self.ca),
            key: delegateKey)
        let cases: [(String, [UInt8])] = [
            ("garbage", [0x30, 0x03, 0x0A, 0x01, 0x00]),
            ("another certificate", try Self.response(for: other, .good)),
            ("expired", try Self.response(for: cert, .good, nextUpdate: Date().addingTimeInterval(-3600))),
            ("stranger", try Self.response(for: cert, .good, signer: stranger)),
            ("delegate without EKU", try Self.response(for: cert, .good, signer: delegate))
        ]
        for (name, staple) in cases {
            server.certificates[0].ocspStaple?.update(staple)
            let o = try Self.run(server, version: version)
            #expect(o.clientError?.alert == .badCertificateStatusResponse, "\(name): \(String(describing: o.clientError))")
            #expect(o.serverError?.code == .alertReceived(.badCertificateStatusResponse), "\(name)")
        }
    }

    @Test("a delegated responder with id-kp-OCSPSigning may sign for its CA")
    func delegatedResponder() throws {
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let responder = try PKIBuilder.issue(
            subject: "CN=OCSP responder", key: key, by: Self.ca,
            extendedKeyUsage: [ExtendedKeyUsage.Usage(oid: OCSPOID.ocspSigning)])
        let (server, cert) = try Self.server(staple: nil)
        let der = try OCSPResponseWriter.response(
            certID: try OCSPCertID(certificate: cert, issuer: Self.ca.certificate), status: .good,
            signer: PKIBuilder.Issuer(certificate: responder, key: key), nonce: nil,
            nextUpdate: Date().addingTimeInterval(3600), including: [responder])
        server.certificates[0].ocspStaple?.update(der)
        let o = try Self.run(server, version: .tls13, policy: .hardFail)
        #expect(o.clientError == nil, "\(String(describing: o.clientError))")
    }

    @Test("hard-fail without any revocation information rejects; a client that did not ask gets no staple")
    func hardFailAndUnasked() throws {
        let (server, _) = try Self.server(staple: nil)
        let o = try Self.run(server, version: .tls13, policy: .hardFail)
        #expect(o.clientError?.alert == .badCertificate)

        let (stapling, cert) = try Self.server(staple: nil)
        stapling.certificates[0].ocspStaple?.update(try Self.response(for: cert, .revoked(at: Date(), reason: nil)))
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: X509CertificateVerifier(roots: [Self.ca.certificate]))
        client.requestOCSPStaple = false
        let unasked = try runPair(client: client, server: stapling)
        #expect(unasked.clientError == nil, "no status_request, no staple (so the revoked staple is never seen)")
    }

    @Test("OCSP requests round-trip with a nonce; malformed responses never crash")
    func requestsAndMalformed() throws {
        let (_, cert) = try Self.server(staple: nil)
        let id = try OCSPCertID(certificate: cert, issuer: Self.ca.certificate)
        let request = OCSPRequest(certID: id, nonce: [1, 2, 3, 4])
        let parsed = try OCSPRequest(der: try request.der())
        #expect(parsed.certID == id && parsed.nonce == [1, 2, 3, 4])
        let der = try OCSPResponseWriter.response(certID: id, status: .good, signer: Self.ca, nonce: [1, 2, 3, 4], nextUpdate: Date().addingTimeInterval(60))
        #expect(try OCSPResponse(der: der).status(of: cert, issuer: Self.ca.certificate, at: Date(), nonce: [1, 2, 3, 4]) == .good)
        #expect(throws: OCSPError.self) { try OCSPResponse(der: der).status(of: cert, issuer: Self.ca.certificate, at: Date(), nonce: [9]) }
        for n in 0..<der.count { _ = try? OCSPResponse(der: Array(der.prefix(n))) }
        for i in 0..<der.count {
            var bad = der
            bad[i] ^= 0x5A
            if let r = try? OCSPResponse(der: bad) { _ = try? r.status(of: cert, issuer: Self.ca.certificate, at: Date()) }
        }
    }
}

@Suite("Revocation review fixes")
struct RevocationReviewTests {
    @Test("a good staple does not hide a CRL that revokes the leaf (a revocation from any source wins)")
    func crlBeatsGoodStaple() throws {
        let (server, cert) = try OCSPTests.server(staple: nil)
        server.certificates[0].ocspStaple?.update(try OCSPTests.response(for: cert, .good))
        let crl = try CRLWriter.issue(
            by: OCSPTests.ca, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: .keyCompromise)],
            number: 2, nextUpdate: Date().addingTimeInterval(3600))
        var verifier = X509CertificateVerifier(roots: [OCSPTests.ca.certificate])
        verifier.crls = [crl]
        let o = try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: verifier), server: server)
        #expect(o.clientError?.alert == .certificateRevoked, "\(String(describing: o.clientError))")
    }
}
