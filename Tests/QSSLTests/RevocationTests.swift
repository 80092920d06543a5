import Foundation
@testable import QSSL
import QSSLSwiftCrypto
import QSSLWire
@testable import QSSLX509
import Testing

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

    @Test("Q-SSL's own CRLs, signed by ECDSA and composite CAs, revoke server and client certificates",
          arguments: [PKIBuilder.Algorithm.ecdsaP384, .mldsa65ECDSAP384])
    func ownCRL(algorithm: PKIBuilder.Algorithm) throws {
        let ca = try PKIBuilder.makeCA(subject: "CN=CRL CA \(algorithm.rawValue)", key: algorithm.generateKey())
        let (cert, key) = try Self.leaf(from: ca)
        let crl = try CRLWriter.issue(by: ca, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: .superseded)],
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
        let clientCRL = try CRLWriter.issue(by: ca, entries: [.init(serial: clientCert.serialNumber, revocationDate: Date(), reason: nil)],
                                            number: 8, nextUpdate: Date().addingTimeInterval(86400))
        var clientVerifier = X509CertificateVerifier(roots: [ca.certificate])
        clientVerifier.crls = [clientCRL]
        var server = try serverConfig()
        server.clientAuthentication = .required
        server.clientCertificateVerifier = clientVerifier
        let m = try runPair(client: clientConfig { $0.clientCertificate = try? CertificateFiles.certifiedKey(chain: [clientCert], key: clientKey) },
                            server: server)
        #expect(m.serverError?.alert == .certificateRevoked)
        #expect(m.clientError?.code == .alertReceived(.certificateRevoked))
    }

    @Test("policy: an out-of-date, foreign-signed or missing CRL is ignored under soft-fail and rejects under hard-fail")
    func policy() throws {
        let ca = try PKIBuilder.makeCA(subject: "CN=Policy CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
        let other = try PKIBuilder.makeCA(subject: "CN=Policy CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())   // same name, other key
        let (cert, key) = try Self.leaf(from: ca)
        let server = try Self.server(chain: [cert], key: key)
        let stale = try CRLWriter.issue(by: ca, entries: [], number: 1, thisUpdate: Date().addingTimeInterval(-7200),
                                        nextUpdate: Date().addingTimeInterval(-3600))
        let forged = try CRLWriter.issue(by: other, entries: [.init(serial: cert.serialNumber, revocationDate: Date(), reason: nil)],
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

    @Test("malformed CRLs are refused with a reason, never a crash (every truncation, every flipped byte of the header)")
    func malformed() throws {
        let der = try #require(try CertificateRevocationList.load(path: try resource("ca.crl.der").path).first).der
        for n in 0..<der.count { #expect(throws: CertificateRevocationList.LoadError.self) { try CertificateRevocationList(der: Array(der.prefix(n))) } }
        #expect(throws: CertificateRevocationList.LoadError.self) { try CertificateRevocationList(der: der + [0]) }
        for i in 0..<min(der.count, 64) {
            var bad = der
            bad[i] ^= 0xFF
            _ = try? CertificateRevocationList(der: bad)   // decodes or throws; must not trap
        }
    }
}
