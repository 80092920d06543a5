import Crypto
import _CryptoExtras
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

/// Loading certificates and private keys from PEM.
public enum CertificateFiles {
    public enum LoadError: Error, CustomStringConvertible {
        case noCertificates(String)
        case unsupportedKey(String)
        case keyDoesNotMatchCertificate

        public var description: String {
            switch self {
            case .noCertificates(let s): return "no certificate found in \(s)"
            case .unsupportedKey(let s): return "unsupported private key: \(s)"
            case .keyDoesNotMatchCertificate: return "the private key does not match the certificate"
            }
        }
    }

    /// Every CERTIFICATE block of a PEM text, in order.
    public static func certificates(fromPEM pem: String) throws -> [Certificate] {
        let documents = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
        guard !documents.isEmpty else { throw LoadError.noCertificates("PEM input") }
        return try documents.map { try Certificate(derEncoded: $0.derBytes) }
    }

    public static func certificates(atPath path: String) throws -> [Certificate] {
        do { return try certificates(fromPEM: String(contentsOfFile: path, encoding: .utf8)) } catch LoadError.noCertificates {
            throw LoadError.noCertificates(path)
        }
    }

    /// A private key from PEM: PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
    public static func privateKey(fromPEM pem: String) throws -> SwiftCryptoSigningKey {
        let document = try PEMDocument(pemString: pem)
        switch document.discriminator {
        case "EC PRIVATE KEY", "PRIVATE KEY":
            if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { return .p384(k) }
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return .p256(k) }
            if document.discriminator == "PRIVATE KEY" {
                if let k = ed25519(pkcs8: document.derBytes) { return .ed25519(k) }
                if let k = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) { return .rsa(k) }
            }
            throw LoadError.unsupportedKey("\(document.discriminator) of an unsupported algorithm")
        case "RSA PRIVATE KEY":
            return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        default:
            throw LoadError.unsupportedKey("PEM block \(document.discriminator)")
        }
    }

    /// RFC 8410 §7: an Ed25519 PKCS#8 key has this fixed 16-byte prefix before the 32-byte seed.
    static let ed25519PKCS8Prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

    static func ed25519(pkcs8 der: [UInt8]) -> Curve25519.Signing.PrivateKey? {
        guard der.count == 48, Array(der.prefix(16)) == ed25519PKCS8Prefix else { return nil }
        return try? Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
    }

    /// PKCS#8 PEM of a key.
    public static func pkcs8PEM(_ key: SwiftCryptoSigningKey) throws -> String {
        switch key {
        case .p256(let k): return k.pemRepresentation
        case .p384(let k): return k.pemRepresentation
        case .rsa(let k): return k.pkcs8PEMRepresentation
        case .ed25519(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: ed25519PKCS8Prefix + Array(k.rawRepresentation)).pemString
        case .mldsa65, .mldsa87:
            throw LoadError.unsupportedKey("ML-DSA PKCS#8 export")
        }
    }

    /// The X.509 public key of a signing key, to match it against a certificate.
    public static func certificatePublicKey(of key: SwiftCryptoSigningKey) -> Certificate.PublicKey? {
        switch key {
        case .p256(let k): return Certificate.PublicKey(k.publicKey)
        case .p384(let k): return Certificate.PublicKey(k.publicKey)
        case .rsa(let k): return Certificate.PublicKey(k.publicKey)
        case .ed25519(let k): return Certificate.PublicKey(k.publicKey)
        case .mldsa65, .mldsa87: return nil
        }
    }

    /// A chain and its key from two PEM files, checked to belong together.
    public static func certifiedKey(chainPath: String, keyPath: String) throws -> CertifiedKey {
        let chain = try certificates(atPath: chainPath)
        let key = try privateKey(fromPEM: String(contentsOfFile: keyPath, encoding: .utf8))
        return try certifiedKey(chain: chain, key: key)
    }

    public static func certifiedKey(chain: [Certificate], key: SwiftCryptoSigningKey) throws -> CertifiedKey {
        guard let leaf = chain.first else { throw LoadError.noCertificates("chain") }
        if let pub = certificatePublicKey(of: key), pub != leaf.publicKey { throw LoadError.keyDoesNotMatchCertificate }
        return CertifiedKey(chain: try chain.map { try derBytes($0) }, key: key)
    }

    public static func derBytes(_ cert: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(cert)
        return serializer.serializedBytes
    }

    public static func pem(_ certs: [Certificate]) throws -> String {
        try certs.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
    }
}
