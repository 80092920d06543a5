import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Testing

@testable import QSSLX509

@Suite("Hybrid PKI: ML-DSA and composite certificates")
struct PKITests {
    static let composite = try! DemoPKI(algorithm: .mldsa65ECDSAP384)

    static func pair(
        _ pki: DemoPKI, serverName: String? = "localhost", key: (any SigningKey)? = nil, chain: [[UInt8]]? = nil,
        client: (inout ClientConfiguration) -> Void = { _ in }
    ) throws -> PairOutcome {
        var c = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client(&c)
        let certified = try pki.serverCertifiedKey
        let s = ServerConfiguration(provider: .swiftCrypto, certificates: [CertifiedKey(chain: chain ?? certified.chain, key: key ?? certified.key)])
        return try runPair(client: c, server: s, serverName: serverName)
    }

    @Test("the draft's composite self-signed certificate and PKCS#8 key parse and agree")
    func draftCertificateAndPKCS8() throws {
        let (_, t) = try CompositeVectors.load()
        let x5cText = try #require(t["x5c"])
        let pkcs8Text = try #require(t["sk_pkcs8"])
        let x5c = Array(try #require(Data(base64Encoded: x5cText)))
        let pkcs8 = Array(try #require(Data(base64Encoded: pkcs8Text)))
        let cert = try X509Certificate(der: x5c)
        #expect(cert.signatureAlgorithm == X509OID.mldsa65ECDSAP384SHA512)
        #expect(cert.isSigned(by: cert), "the draft's self-signed certificate verifies with both halves")
        let key = try CertificateFiles.privateKey(fromPEM: PEMDocument(type: "PRIVATE KEY", derBytes: pkcs8).pemString)
        #expect(try key.subjectPublicKeyInfo() == cert.publicKey.spki)
    }

    @Test("keys of every algorithm round-trip through PKCS#8 PEM", arguments: PKIBuilder.Algorithm.allCases.filter { $0 != .mldsa44 })
    func pkcs8RoundTrip(algorithm: PKIBuilder.Algorithm) throws {
        let key = try algorithm.generateKey()
        let again = try CertificateFiles.privateKey(fromPEM: try CertificateFiles.pkcs8PEM(key))
        #expect(try again.subjectPublicKeyInfo() == key.subjectPublicKeyInfo())
    }

    @Test("ML-DSA private keys in the 'both' form load from their seed; expanded-only keys get a clear error")
    func mldsaKeyForms() throws {
        guard case .mldsa65(let k) = try PKIBuilder.Algorithm.mldsa65.generateKey() else {
            Issue.record("an ML-DSA-65 generation gave another kind of key")
            return
        }
        let seed = Array(k.seedRepresentation)
        let expanded = [UInt8](repeating: 7, count: 4032)
        var both = DER.Serializer()
        try both.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(ASN1OctetString(contentBytes: seed[...]))
            try s.serialize(ASN1OctetString(contentBytes: expanded[...]))
        }
        let bothPEM = PEMDocument(type: "PRIVATE KEY", derBytes: try CertificateFiles.oneAsymmetricKey(X509OID.mldsa65, both.serializedBytes)).pemString
        guard case .mldsa65(let loaded) = try CertificateFiles.privateKey(fromPEM: bothPEM) else {
            Issue.record("wrong key type")
            return
        }
        #expect(loaded.publicKey.rawRepresentation == k.publicKey.rawRepresentation)
        let expandedPEM = PEMDocument(
            type: "PRIVATE KEY",
            derBytes: try CertificateFiles.oneAsymmetricKey(
                X509OID.mldsa65, try CertificateFiles.octetString(expanded))
        ).pemString
        #expect(throws: CertificateFiles.LoadError.self) { _ = try CertificateFiles.privateKey(fromPEM: expandedPEM) }
    }

    @Test("a composite chain authenticates with the composite scheme in TLS 1.3 and in the TLS 1.2 hybrid suite")
    func compositeHandshakes() throws {
        let o13 = try Self.pair(Self.composite)
        #expect(o13.client.summary?.peerSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        let o12 = try Self.pair(Self.composite) { $0.versions = [.tls12] }
        #expect(o12.clientError == nil, "\(String(describing: o12.clientError))")
        #expect(o12.client.summary?.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384)
        #expect(o12.client.summary?.peerSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
    }

    @Test(
        "a composite CertificateVerify with either half broken → decrypt_error naming the half",
        arguments: [
            (0.25, "ML-DSA-65"), (0.999, "ECDSA-P384")
        ])
    func compositeHalfBroken(position: Double, half: String) throws {
        let key = PositionCorruptingKey(inner: Self.composite.serverKey, position: position)
        let o = try Self.pair(Self.composite, key: key)
        #expect(o.clientError?.alert == .decryptError)
        #expect(o.clientError?.detail?.contains(half) == true, "\(String(describing: o.clientError))")
        #expect(o.serverError?.code == .alertReceived(.decryptError))
    }

    @Test("a composite certificate whose signature has a broken half → bad_certificate", arguments: [0.4, 0.998])
    func compositeCertificateSignature(position: Double) throws {
        var der = Self.composite.serverCertificate.der
        // The certificate signature is the final BIT STRING: ML-DSA (3309 bytes) then DER ECDSA.
        let signatureLength = 3309 + 104
        let index = der.count - signatureLength + Int(Double(signatureLength - 8) * position)
        der[index] ^= 0x01
        let o = try Self.pair(Self.composite, chain: [der])
        #expect(o.clientError?.alert == .badCertificate)
        #expect(o.serverError?.code == .alertReceived(.badCertificate))
    }

    @Test("an expired ML-DSA certificate → certificate_expired")
    func expiredMLDSA() throws {
        let pki = try DemoPKI(algorithm: .mldsa65)
        let key = try PKIBuilder.Algorithm.mldsa65.generateKey()
        let cert = try PKIBuilder.issue(
            subject: "CN=localhost", key: key, by: pki.ca, dnsNames: ["localhost"],
            notBefore: Date().addingTimeInterval(-7200), notAfter: Date().addingTimeInterval(-60))
        var c = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        c.versions = [.tls13]
        let o = try runPair(
            client: c, server: ServerConfiguration(provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chain: [cert], key: key)]))
        #expect(o.clientError?.alert == .certificateExpired)
        #expect(o.serverError?.code == .alertReceived(.certificateExpired))
    }

    @Test("an ML-DSA chain to an untrusted root → unknown_ca")
    func unknownMLDSARoot() throws {
        let trusted = try DemoPKI(algorithm: .mldsa87)
        let other = try DemoPKI(algorithm: .mldsa87)
        var c = ClientConfiguration(provider: .swiftCrypto, verifier: trusted.verifier)
        c.versions = [.tls13]
        let o = try runPair(client: c, server: ServerConfiguration(provider: .swiftCrypto, certificates: [try other.serverCertifiedKey]))
        #expect(o.clientError?.alert == .unknownCA)
        #expect(o.serverError?.code == .alertReceived(.unknownCA))
    }

    @Test("intermediates: a chain through a composite intermediate verifies; pathLen and non-CA issuers are enforced")
    func intermediates() throws {
        let root = try PKIBuilder.makeCA(subject: "CN=Root", key: try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey(), pathLength: 1)
        let interKey = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
        let inter = PKIBuilder.Issuer(certificate: try PKIBuilder.issue(subject: "CN=Intermediate", key: interKey, by: root, isCA: true), key: interKey)
        let leafKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let leaf = try PKIBuilder.issue(subject: "CN=localhost", key: leafKey, by: inter, dnsNames: ["localhost"])
        let verifier = X509CertificateVerifier(roots: [root.certificate])
        #expect(throws: Never.self) { _ = try verifier.verify(chain: [leaf.der, inter.certificate.der], role: .server(name: "localhost")) }

        let deeperKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let deeper = PKIBuilder.Issuer(certificate: try PKIBuilder.issue(subject: "CN=Deeper", key: deeperKey, by: inter, isCA: true), key: deeperKey)
        let leaf2 = try PKIBuilder.issue(subject: "CN=localhost", key: leafKey, by: deeper, dnsNames: ["localhost"])
        #expect(throws: TLSError.rejected(.other("path length exceeded"))) {
            _ = try verifier.verify(chain: [leaf2.der, deeper.certificate.der, inter.certificate.der], role: .server(name: "localhost"))
        }
        let fakeIssuerKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let notCA = PKIBuilder.Issuer(certificate: try PKIBuilder.issue(subject: "CN=Not a CA", key: fakeIssuerKey, by: root), key: fakeIssuerKey)
        let leaf3 = try PKIBuilder.issue(subject: "CN=localhost", key: leafKey, by: notCA, dnsNames: ["localhost"])
        #expect(throws: TLSError.rejected(.other("issuer is not a CA"))) {
            _ = try verifier.verify(chain: [leaf3.der, notCA.certificate.der], role: .server(name: "localhost"))
        }
    }

    @Test("a server with a composite and an ECDSA chain serves each client the chain it can verify")
    func certificateSelection() throws {
        let ecdsa = sharedPKI
        let server = ServerConfiguration(provider: .swiftCrypto, certificates: [try Self.composite.serverCertifiedKey, try ecdsa.serverCertifiedKey])
        // A PQ-aware client gets the composite chain.
        let pq = try runPair(
            client: ClientConfiguration(
                provider: .swiftCrypto, verifier: X509CertificateVerifier(roots: [Self.composite.ca.certificate, ecdsa.ca.certificate])),
            server: server)
        #expect(pq.client.summary?.peerSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        // A classical client (OpenSSL 3.0 offers no PQ schemes) gets the ECDSA chain.
        var classical = X509CertificateVerifier(roots: [ecdsa.ca.certificate])
        classical.supportedSchemes = [.ecdsaSecp384r1SHA384, .rsaPSSRSAESHA256]
        let old = try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: classical), server: server)
        #expect(old.clientError == nil)
        #expect(old.client.summary?.peerSignatureScheme == .ecdsaSecp384r1SHA384)
    }

    @Test("policy: a post-quantum-only verifier accepts composite and ML-DSA chains and refuses ECDSA ones with bad_certificate")
    func signaturePolicy() throws {
        var pqOnly = X509CertificateVerifier(roots: [Self.composite.ca.certificate, sharedPKI.ca.certificate])
        pqOnly.requirePostQuantumChains()
        #expect(throws: Never.self) { _ = try pqOnly.verify(chain: [Self.composite.serverCertificate.der], role: .server(name: "localhost")) }
        #expect(throws: TLSError.rejected(.other("signature algorithm not allowed by policy"))) {
            _ = try pqOnly.verify(chain: [sharedPKI.serverCertificate.der], role: .server(name: "localhost"))
        }
        // A composite-signed leaf with a classical key fails the key policy.
        let ecdsaKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let mixed = try PKIBuilder.issue(subject: "CN=localhost", key: ecdsaKey, by: Self.composite.ca, dnsNames: ["localhost"])
        #expect(throws: TLSError.rejected(.other("key algorithm not allowed by policy"))) {
            _ = try pqOnly.verify(chain: [mixed.der], role: .server(name: "localhost"))
        }
        let o = try runPair(client: ClientConfiguration(provider: .swiftCrypto, verifier: pqOnly), server: serverConfig())
        #expect(o.clientError?.alert == .badCertificate)
        #expect(o.serverError?.code == .alertReceived(.badCertificate))
    }

    @Test("a client certificate (clientAuth only) is refused as a server certificate")
    func clientOnlyEKU() throws {
        let key = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
        let cert = try PKIBuilder.issue(subject: "CN=localhost", key: key, by: Self.composite.ca, dnsNames: ["localhost"], client: true)
        #expect(throws: TLSError.rejected(.invalidPurpose)) {
            _ = try Self.composite.verifier.verify(chain: [cert.der], role: .server(name: "localhost"))
        }
        #expect(throws: Never.self) { _ = try Self.composite.verifier.verify(chain: [cert.der], role: .client) }
    }
}

/// Signs correctly, then flips a byte at a relative position of the signature.
struct PositionCorruptingKey: SigningKey {
    let inner: SwiftCryptoSigningKey
    let position: Double
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        var signature = try inner.sign(message, scheme: scheme)
        signature[min(signature.count - 2, Int(Double(signature.count) * position))] ^= 0x01
        return signature
    }
}
