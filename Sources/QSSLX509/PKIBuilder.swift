import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509
import _CryptoExtras

/// Makes certificate authorities and leaf certificates: for `qssl cert`, `qssl demo` and tests.
public struct PKIBuilder {
    /// Key algorithms (the `--alg` names of `qssl cert`).
    public enum Algorithm: String, CaseIterable, Sendable {
        case mldsa65ECDSAP384 = "mldsa65-ecdsa-p384"
        case mldsa65
        case mldsa87
        case mldsa44
        case ecdsaP384 = "ecdsa-p384"
        case ecdsaP256 = "ecdsa-p256"
        case rsa3072PSS = "rsa3072-pss"
        case ed25519

        public func generateKey() throws -> SwiftCryptoSigningKey {
            switch self {
            case .mldsa65ECDSAP384: return .composite(try CompositeMLDSA65ECDSAP384.PrivateKey())
            case .mldsa65: return .mldsa65(try MLDSA65.PrivateKey())
            case .mldsa87: return .mldsa87(try MLDSA87.PrivateKey())
            case .mldsa44: throw CertificateFiles.LoadError.unsupportedKey("ML-DSA-44 keys cannot be generated: swift-crypto has no ML-DSA-44")
            case .ecdsaP384: return .p384(P384.Signing.PrivateKey())
            case .ecdsaP256: return .p256(P256.Signing.PrivateKey())
            case .rsa3072PSS: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072))
            case .ed25519: return .ed25519(Curve25519.Signing.PrivateKey())
            }
        }
    }

    /// An issuer: certificate and key.
    public struct Issuer: Sendable {
        public let certificate: X509Certificate
        public let key: SwiftCryptoSigningKey
        public init(certificate: X509Certificate, key: SwiftCryptoSigningKey) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// - Parameter keyUsage: the CA's keyUsage; by default digitalSignature, keyCertSign and cRLSign.
    public static func makeCA(
        subject: String, key: SwiftCryptoSigningKey, notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(3650 * 86400), pathLength: Int? = nil,
        keyUsage: KeyUsage? = nil
    ) throws -> Issuer {
        let cert = try makeCA(
            subject: subject, signer: try CertificateSigner(key), notBefore: notBefore, notAfter: notAfter, pathLength: pathLength,
            keyUsage: keyUsage)
        return Issuer(certificate: cert, key: key)
    }

    /// A self-signed CA certificate for a key that may live outside memory (an HSM).
    public static func makeCA(
        subject: String, signer: CertificateSigner, notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(3650 * 86400), pathLength: Int? = nil,
        keyUsage: KeyUsage? = nil
    ) throws -> X509Certificate {
        let name = try distinguishedName(subject)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
            Critical(keyUsage ?? KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(keyIdentifier: try keyIdentifierBytes(signer.subjectPublicKeyInfo)[...])
        }
        return try CertificateWriter.issue(
            serial: serialNumber(), issuer: name, subject: name, notBefore: notBefore, notAfter: notAfter,
            subjectPublicKeyInfo: signer.subjectPublicKeyInfo, extensions: extensions, signer: signer)
    }

    /// Issues an end-entity (or, with `isCA`, an intermediate) certificate.
    public static func issue(
        subject: String, key: SwiftCryptoSigningKey, by issuer: Issuer, dnsNames: [String] = [], ipAddresses: [String] = [],
        client: Bool = false, isCA: Bool = false, extendedKeyUsage: [ExtendedKeyUsage.Usage]? = nil,
        ocspURL: String? = nil, crlURL: String? = nil,
        notBefore: Date = Date().addingTimeInterval(-3600), notAfter: Date = Date().addingTimeInterval(365 * 86400),
        keyUsage: KeyUsage? = nil
    ) throws -> X509Certificate {
        try issue(
            subject: subject, subjectPublicKeyInfo: try key.subjectPublicKeyInfo(), issuerCertificate: issuer.certificate,
            issuerSigner: try CertificateSigner(issuer.key), dnsNames: dnsNames, ipAddresses: ipAddresses, client: client, isCA: isCA,
            extendedKeyUsage: extendedKeyUsage, ocspURL: ocspURL, crlURL: crlURL, notBefore: notBefore, notAfter: notAfter,
            keyUsage: keyUsage)
    }

    /// Issues a certificate for any public key (one read back from an HSM), signed by any
    /// issuer key (one in an HSM too).
    public static func issue(
        subject: String, subjectPublicKeyInfo: [UInt8], issuerCertificate: X509Certificate, issuerSigner: CertificateSigner,
        dnsNames: [String] = [], ipAddresses: [String] = [], client: Bool = false, isCA: Bool = false,
        extendedKeyUsage: [ExtendedKeyUsage.Usage]? = nil, ocspURL: String? = nil, crlURL: String? = nil,
        notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(365 * 86400), keyUsage: KeyUsage? = nil
    ) throws -> X509Certificate {
        guard issuerSigner.subjectPublicKeyInfo == issuerCertificate.publicKey.spki else { throw CertificateFiles.LoadError.keyDoesNotMatchCertificate }
        var sans: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = IPAddress.parse(ip) else { throw CertificateFiles.LoadError.unsupportedKey("bad IP address \(ip)") }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        let authority = try keyIdentifierBytes(issuerCertificate.publicKey.spki)
        let extensions = try Certificate.Extensions {
            if isCA {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(keyUsage ?? KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(keyUsage ?? KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(extendedKeyUsage ?? (client ? [.clientAuth] : [.serverAuth, .clientAuth]))
            }
            if !sans.isEmpty { SubjectAlternativeNames(sans) }
            // RFC 5280 §4.2.2.1: where to ask about this certificate.
            if let ocspURL { AuthorityInformationAccess([.init(method: .ocspServer, location: .uniformResourceIdentifier(ocspURL))]) }
            if let crlURL { try crlDistributionPoints(crlURL) }
            SubjectKeyIdentifier(keyIdentifier: try keyIdentifierBytes(subjectPublicKeyInfo)[...])
            AuthorityKeyIdentifier(keyIdentifier: authority[...])
        }
        return try CertificateWriter.issue(
            serial: serialNumber(), issuer: issuerCertificate.subject, subject: try distinguishedName(subject),
            notBefore: notBefore, notAfter: notAfter, subjectPublicKeyInfo: subjectPublicKeyInfo,
            extensions: extensions, signer: issuerSigner)
    }

    /// RFC 5280 §4.2.1.13: CRLDistributionPoints with one fullName URI.
    static func crlDistributionPoints(_ url: String) throws -> Certificate.Extension {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { points in
            try points.appendConstructedNode(identifier: .sequence) { point in
                try point.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { name in
                    try name.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { full in
                        full.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)) {
                            $0.append(contentsOf: Array(url.utf8))
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: [2, 5, 29, 31], critical: false, value: s.serializedBytes[...])
    }

    /// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
    static func keyIdentifierBytes(_ spki: [UInt8]) throws -> [UInt8] {
        let bits = try DER.sequence(try DER.parse(spki), identifier: .sequence) { nodes in
            _ = nodes.next()
            return try ASN1BitString(derEncoded: &nodes)
        }
        return Array(Insecure.SHA1.hash(data: bits.bytes))
    }

    /// A positive 16-byte serial number (RFC 5280 §4.1.2.2).
    static func serialNumber() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        bytes[0] = (bytes[0] & 0x7F) | 0x01
        return bytes
    }

    /// "CN=…, O=…, C=…" to a distinguished name.
    public static func distinguishedName(_ text: String) throws -> DistinguishedName {
        var rdns: [RelativeDistinguishedName] = []
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { throw CertificateFiles.LoadError.unsupportedKey("bad subject component \(part)") }
            let oid: ASN1ObjectIdentifier
            switch kv[0].uppercased() {
            case "CN": oid = .RDNAttributeType.commonName
            case "O": oid = .RDNAttributeType.organizationName
            case "OU": oid = .RDNAttributeType.organizationalUnitName
            case "C": oid = .RDNAttributeType.countryName
            case "L": oid = .RDNAttributeType.localityName
            case "ST": oid = .RDNAttributeType.stateOrProvinceName
            default: throw CertificateFiles.LoadError.unsupportedKey("unknown subject attribute \(kv[0])")
            }
            let value =
                kv[0].uppercased() == "C"
                ? try RelativeDistinguishedName.Attribute(type: oid, printableString: kv[1])
                : try RelativeDistinguishedName.Attribute(type: oid, utf8String: kv[1])
            rdns.append(RelativeDistinguishedName(value))
        }
        return DistinguishedName(rdns)
    }
}

/// A complete in-memory PKI for demos and tests: a root CA and a server certificate for
/// localhost, 127.0.0.1 and ::1.
public struct DemoPKI: Sendable {
    public let ca: PKIBuilder.Issuer
    public let serverCertificate: X509Certificate
    public let serverKey: SwiftCryptoSigningKey

    public init(algorithm: PKIBuilder.Algorithm = .ecdsaP384, serverName: String = "localhost") throws {
        ca = try PKIBuilder.makeCA(subject: "CN=Q-SSL Demo Root CA (\(algorithm.rawValue)), O=Q-SSL", key: algorithm.generateKey())
        serverKey = try algorithm.generateKey()
        serverCertificate = try PKIBuilder.issue(
            subject: "CN=\(serverName)", key: serverKey, by: ca,
            dnsNames: [serverName], ipAddresses: ["127.0.0.1", "::1"])
    }

    public var serverCertifiedKey: CertifiedKey {
        get throws { try CertificateFiles.certifiedKey(chain: [serverCertificate], key: serverKey) }
    }
    public var verifier: X509CertificateVerifier { X509CertificateVerifier(roots: [ca.certificate]) }
}
