import Foundation
import QSSL
import QSSLSwiftCrypto
import Testing
import X509

@testable import QSSLX509

/// Path building with backtracking (ChainVerifier+PathBuilding.swift): the first candidate
/// issuer a peer sends must not decide the outcome when another one leads to a trust anchor.
@Suite("X.509 path building: backtracking over candidate issuers, bounded")
struct ChainPathTests {
    static func key() throws -> SwiftCryptoSigningKey { try PKIBuilder.Algorithm.ecdsaP256.generateKey() }

    static func root(_ subject: String) throws -> PKIBuilder.Issuer { try PKIBuilder.makeCA(subject: subject, key: key()) }

    static func leaf(by issuer: PKIBuilder.Issuer) throws -> X509Certificate {
        try PKIBuilder.issue(subject: "CN=localhost", key: key(), by: issuer, dnsNames: ["localhost"])
    }

    /// The verified chain (leaf first, anchor last).
    static func verify(_ chain: [X509Certificate], roots: [X509Certificate]) throws(TLSError) -> [[UInt8]] {
        try X509CertificateVerifier(roots: roots).verify(chain: chain.map(\.der), role: .server(name: "localhost")).identity.verifiedChain
    }

    /// Why the chain was refused; nil when it verified.
    static func error(_ chain: [X509Certificate], roots: [X509Certificate]) -> TLSError? {
        do { _ = try verify(chain, roots: roots) } catch { return error }
        return nil
    }

    @Test("a cross-signed intermediate sent first (by an untrusted old root) does not hide the copy signed by the trusted new root")
    func crossSigned() throws {
        let oldRoot = try Self.root("CN=Old Root")
        let newRoot = try Self.root("CN=New Root")
        let key = try Self.key()
        let crossSigned = try PKIBuilder.issue(subject: "CN=Issuing CA", key: key, by: oldRoot, isCA: true)
        let direct = try PKIBuilder.issue(subject: "CN=Issuing CA", key: key, by: newRoot, isCA: true)
        let leaf = try Self.leaf(by: PKIBuilder.Issuer(certificate: direct, key: key))
        let roots = [newRoot.certificate]

        let expected = [leaf.der, direct.der, newRoot.certificate.der]
        #expect(try Self.verify([leaf, crossSigned, direct], roots: roots) == expected)
        // With the old root sent too, the branch through it is a dead end, and is left.
        #expect(try Self.verify([leaf, crossSigned, oldRoot.certificate, direct], roots: roots) == expected)
        // Only the cross-signed copy: no path, as before.
        #expect(Self.error([leaf, crossSigned], roots: roots)?.code == .certificateRejected(.unknownIssuer))
    }

    @Test("of two same-named issuers, the first with another key (its signature fails), the second is used")
    func wrongKeyFirst() throws {
        let root = try Self.root("CN=Root")
        let rightKey = try Self.key()
        let wrongKey = try Self.key()
        let right = try PKIBuilder.issue(subject: "CN=Issuing CA", key: rightKey, by: root, isCA: true)
        let wrong = try PKIBuilder.issue(subject: "CN=Issuing CA", key: wrongKey, by: root, isCA: true)
        // A leaf without an authority key identifier: the name alone picks the candidates.
        let leaf = try CertificateWriter.issue(
            serial: [0x01], issuer: right.subject, subject: try PKIBuilder.distinguishedName("CN=localhost"),
            notBefore: Date().addingTimeInterval(-3600), notAfter: Date().addingTimeInterval(86400), subjectKey: try Self.key(),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames([.dnsName("localhost")])
            },
            issuerKey: rightKey)
        let roots = [root.certificate]

        #expect(try Self.verify([leaf, wrong, right], roots: roots) == [leaf.der, right.der, root.certificate.der])
        // Only the wrong one: a bad signature (bad_certificate), as before.
        let error = Self.error([leaf, wrong], roots: roots)
        #expect(error?.code == .certificateRejected(.badSignature), "\(String(describing: error))")
        #expect(error?.alert == .badCertificate)
        #expect(error?.detail?.contains("does not verify") == true, "\(String(describing: error))")
    }

    @Test("an expired issuer sent first does not hide a current one with the same name and key; alone it is still certificate_expired")
    func expiredFirst() throws {
        let root = try Self.root("CN=Root")
        let key = try Self.key()
        let expired = try PKIBuilder.issue(
            subject: "CN=Issuing CA", key: key, by: root, isCA: true,
            notBefore: Date().addingTimeInterval(-3 * 86400), notAfter: Date().addingTimeInterval(-86400))
        let current = try PKIBuilder.issue(subject: "CN=Issuing CA", key: key, by: root, isCA: true)
        let leaf = try Self.leaf(by: PKIBuilder.Issuer(certificate: current, key: key))
        let roots = [root.certificate]

        #expect(try Self.verify([leaf, expired, current], roots: roots) == [leaf.der, current.der, root.certificate.der])
        // The expired copy on the only path: expired, not unknown_ca.
        let error = Self.error([leaf, expired], roots: roots)
        #expect(error?.code == .certificateRejected(.expired), "\(String(describing: error))")
        #expect(error?.alert == .certificateExpired)
    }

    @Test("100 certificates with one name and key, all signing each other → a clear error once the work bound is spent")
    func sameNameFlood() throws {
        let key = try Self.key()
        let loop = try PKIBuilder.makeCA(subject: "CN=Loop", key: key)
        let copies = try (0..<100).map { _ in try PKIBuilder.issue(subject: "CN=Loop", key: key, by: loop, isCA: true) }
        let leaf = try Self.leaf(by: loop)
        let error = Self.error([leaf] + copies, roots: [try Self.root("CN=Elsewhere").certificate])
        #expect(error?.code == .certificateRejected(.other("path building limit exceeded")), "\(String(describing: error))")
        #expect(error?.alert == .badCertificate)
    }

    @Test("cross-signature cycles end: a ring of three CAs is unknown_ca, a full mesh of six exhausts the work bound")
    func cycles() throws {
        let keys = try (0..<6).map { _ in try Self.key() }
        let cas = try keys.indices.map { i in try PKIBuilder.makeCA(subject: "CN=CA \(i)", key: keys[i]) }
        /// CA `subject`'s key and name, certified by CA `issuer`.
        func cross(_ subject: Int, by issuer: Int) throws -> X509Certificate {
            try PKIBuilder.issue(subject: "CN=CA \(subject)", key: keys[subject], by: cas[issuer], isCA: true)
        }
        let leaf = try Self.leaf(by: cas[0])
        let roots = [try Self.root("CN=Elsewhere").certificate]

        let ring = [try cross(0, by: 1), try cross(1, by: 2), try cross(2, by: 0)]
        #expect(Self.error([leaf] + ring, roots: roots)?.code == .certificateRejected(.unknownIssuer))

        let mesh = try keys.indices.flatMap { s in try keys.indices.filter { $0 != s }.map { i in try cross(s, by: i) } }
        let error = Self.error([leaf] + mesh, roots: roots)
        #expect(error?.code == .certificateRejected(.other("path building limit exceeded")), "\(String(describing: error))")
    }

    @Test("paths hold at most 10 certificates below the anchor, as before")
    func maximumLength() throws {
        let root = try Self.root("CN=Root")
        var issuers = [root]
        for i in 0..<10 {
            let key = try Self.key()
            issuers.append(
                PKIBuilder.Issuer(certificate: try PKIBuilder.issue(subject: "CN=Intermediate \(i)", key: key, by: issuers[i], isCA: true), key: key))
        }
        let intermediates = Array(issuers.dropFirst().map(\.certificate).reversed())
        // Leaf + 9 intermediates: 10 certificates below the root.
        let nine = try Self.leaf(by: issuers[9])
        #expect(throws: Never.self) { _ = try Self.verify([nine] + intermediates.suffix(9), roots: [root.certificate]) }
        let ten = try Self.leaf(by: issuers[10])
        #expect(Self.error([ten] + intermediates, roots: [root.certificate])?.code == .certificateRejected(.unknownIssuer))
    }
}
