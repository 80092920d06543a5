import Crypto
import _CryptoExtras
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

/// Makes certificate authorities and leaf certificates: for `qssl demo`, tests and `qssl cert`.
public struct PKIBuilder {
    /// Key algorithms the builder can issue for.
    public enum Algorithm: String, CaseIterable, Sendable {
        case ecdsaP384 = "ecdsa-p384"
        case ecdsaP256 = "ecdsa-p256"
        case rsa3072PSS = "rsa3072-pss"
        case ed25519

        public func generateKey() throws -> SwiftCryptoSigningKey {
            switch self {
            case .ecdsaP384: return .p384(P384.Signing.PrivateKey())
            case .ecdsaP256: return .p256(P256.Signing.PrivateKey())
            case .rsa3072PSS: return .rsa(try _RSA.Signing.PrivateKey(keySize: .bits3072))
            case .ed25519: return .ed25519(Curve25519.Signing.PrivateKey())
            }
        }
    }

    /// An issuer: certificate and key.
    public struct Issuer: Sendable {
        public let certificate: Certificate
        public let key: SwiftCryptoSigningKey
    }

    public static func makeCA(subject: String, key: SwiftCryptoSigningKey, notBefore: Date = Date().addingTimeInterval(-3600),
                              notAfter: Date = Date().addingTimeInterval(3650 * 86400), pathLength: Int? = nil) throws -> Issuer {
        let name = try distinguishedName(subject)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: try publicKey(key))
        }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey(key), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: name, subject: name, signatureAlgorithm: signatureAlgorithm(key), extensions: extensions,
            issuerPrivateKey: privateKey(key))
        return Issuer(certificate: cert, key: key)
    }

    /// Issues an end-entity (or, with `isCA`, an intermediate) certificate.
    public static func issue(subject: String, key: SwiftCryptoSigningKey, by issuer: Issuer, dnsNames: [String] = [], ipAddresses: [String] = [],
                             client: Bool = false, isCA: Bool = false,
                             notBefore: Date = Date().addingTimeInterval(-3600), notAfter: Date = Date().addingTimeInterval(365 * 86400)) throws -> Certificate {
        var sans: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            guard let bytes = IPAddress.parse(ip) else { throw CertificateFiles.LoadError.unsupportedKey("bad IP \(ip)") }
            sans.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        let extensions = try Certificate.Extensions {
            if isCA {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(client ? [.clientAuth] : [.serverAuth, .clientAuth])
            }
            if !sans.isEmpty { SubjectAlternativeNames(sans) }
            SubjectKeyIdentifier(hash: try publicKey(key))
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: issuer.certificate.publicKey).keyIdentifier)
        }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey(key), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer.certificate.subject, subject: try distinguishedName(subject), signatureAlgorithm: signatureAlgorithm(issuer.key),
            extensions: extensions, issuerPrivateKey: privateKey(issuer.key))
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
            let value = kv[0].uppercased() == "C"
                ? try RelativeDistinguishedName.Attribute(type: oid, printableString: kv[1])
                : try RelativeDistinguishedName.Attribute(type: oid, utf8String: kv[1])
            rdns.append(RelativeDistinguishedName(value))
        }
        return DistinguishedName(rdns)
    }

    static func publicKey(_ key: SwiftCryptoSigningKey) throws -> Certificate.PublicKey {
        guard let pub = CertificateFiles.certificatePublicKey(of: key) else { throw CertificateFiles.LoadError.unsupportedKey("\(key)") }
        return pub
    }

    static func privateKey(_ key: SwiftCryptoSigningKey) throws -> Certificate.PrivateKey {
        switch key {
        case .p256(let k): return Certificate.PrivateKey(k)
        case .p384(let k): return Certificate.PrivateKey(k)
        case .rsa(let k): return Certificate.PrivateKey(k)
        case .ed25519(let k): return Certificate.PrivateKey(k)
        case .mldsa65, .mldsa87: throw CertificateFiles.LoadError.unsupportedKey("ML-DSA issuing")
        }
    }

    static func signatureAlgorithm(_ key: SwiftCryptoSigningKey) throws -> Certificate.SignatureAlgorithm {
        switch key {
        case .p256: return .ecdsaWithSHA256
        case .p384: return .ecdsaWithSHA384
        case .rsa: return .sha256WithRSAEncryption
        case .ed25519: return .ed25519
        case .mldsa65, .mldsa87: throw CertificateFiles.LoadError.unsupportedKey("ML-DSA issuing")
        }
    }
}

/// A complete in-memory PKI for demos and tests: a root CA and a server certificate for
/// localhost, 127.0.0.1 and ::1.
public struct DemoPKI: Sendable {
    public let ca: PKIBuilder.Issuer
    public let serverCertificate: Certificate
    public let serverKey: SwiftCryptoSigningKey

    public init(algorithm: PKIBuilder.Algorithm = .ecdsaP384, serverName: String = "localhost") throws {
        ca = try PKIBuilder.makeCA(subject: "CN=Q-SSL Demo Root CA (\(algorithm.rawValue)), O=Q-SSL", key: algorithm.generateKey())
        serverKey = try algorithm.generateKey()
        serverCertificate = try PKIBuilder.issue(subject: "CN=\(serverName)", key: serverKey, by: ca,
                                                 dnsNames: [serverName], ipAddresses: ["127.0.0.1", "::1"])
    }

    public var serverCertifiedKey: CertifiedKey {
        get throws { try CertificateFiles.certifiedKey(chain: [serverCertificate], key: serverKey) }
    }
    public var verifier: X509CertificateVerifier { X509CertificateVerifier(roots: [ca.certificate]) }
}
