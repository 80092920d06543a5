import Crypto
import _CryptoExtras
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1

/// Loading and writing certificates and private keys as PEM.
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
    public static func certificates(fromPEM pem: String) throws -> [X509Certificate] {
        let documents = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
        guard !documents.isEmpty else { throw LoadError.noCertificates("PEM input") }
        return try documents.map { try X509Certificate(der: $0.derBytes) }
    }

    public static func certificates(atPath path: String) throws -> [X509Certificate] {
        do { return try certificates(fromPEM: String(contentsOfFile: path, encoding: .utf8)) } catch LoadError.noCertificates {
            throw LoadError.noCertificates(path)
        }
    }

    /// A private key from PEM: PKCS#8 ("PRIVATE KEY": EC, RSA, Ed25519, ML-DSA-65/87 in seed or
    /// both form, composite ML-DSA-65 + ECDSA-P384), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
    public static func privateKey(fromPEM pem: String) throws -> SwiftCryptoSigningKey {
        let document = try PEMDocument(pemString: pem)
        switch document.discriminator {
        case "PRIVATE KEY":
            return try privateKey(pkcs8: document.derBytes, pem: pem)
        case "EC PRIVATE KEY":
            if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { return .p384(k) }
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return .p256(k) }
            throw LoadError.unsupportedKey("EC key on an unsupported curve")
        case "RSA PRIVATE KEY":
            return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        default:
            throw LoadError.unsupportedKey("PEM block \(document.discriminator)")
        }
    }

    /// RFC 5958 OneAsymmetricKey.
    static func privateKey(pkcs8 der: [UInt8], pem: String) throws -> SwiftCryptoSigningKey {
        let (oid, key) = try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes -> (ASN1ObjectIdentifier, [UInt8]) in
            _ = try Int(derEncoded: &nodes)
            let (oid, _) = try X509PublicKey.algorithmIdentifier(&nodes)
            let key = try ASN1OctetString(derEncoded: &nodes)
            while nodes.next() != nil {}   // attributes, public key
            return (oid, Array(key.bytes))
        }
        switch oid {
        case X509OID.ecPublicKey:
            if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { return .p384(k) }
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return .p256(k) }
            throw LoadError.unsupportedKey("EC key on an unsupported curve")
        case X509OID.rsaEncryption:
            return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        case X509OID.ed25519:
            // RFC 8410 §7: CurvePrivateKey ::= OCTET STRING (32 bytes).
            let inner = try ASN1OctetString(derEncoded: try DER.parse(key))
            return .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: inner.bytes))
        case X509OID.mldsa65:
            return .mldsa65(try MLDSA65.PrivateKey(seedRepresentation: try mldsaSeed(key), publicKey: nil))
        case X509OID.mldsa87:
            return .mldsa87(try MLDSA87.PrivateKey(seedRepresentation: try mldsaSeed(key), publicKey: nil))
        case X509OID.mldsa65ECDSAP384SHA512:
            return .composite(try CompositeMLDSA65ECDSAP384.PrivateKey(rawRepresentation: key))
        case X509OID.mldsa44:
            throw LoadError.unsupportedKey("ML-DSA-44 (swift-crypto has no ML-DSA-44 signer)")
        default:
            throw LoadError.unsupportedKey("PKCS#8 algorithm \(oid)")
        }
    }

    /// RFC 9881 §6: ML-DSA-PrivateKey ::= CHOICE { seed [0] IMPLICIT OCTET STRING (32),
    /// expandedKey OCTET STRING, both SEQUENCE { seed, expandedKey } }.
    static func mldsaSeed(_ key: [UInt8]) throws -> [UInt8] {
        let node = try DER.parse(key)
        if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            let seed = try ASN1OctetString(derEncoded: node, withIdentifier: node.identifier)
            guard seed.bytes.count == 32 else { throw LoadError.unsupportedKey("ML-DSA seed of \(seed.bytes.count) bytes") }
            return Array(seed.bytes)
        }
        if node.identifier == .sequence {
            return try DER.sequence(node, identifier: .sequence) { nodes in
                let seed = try ASN1OctetString(derEncoded: &nodes)
                _ = try ASN1OctetString(derEncoded: &nodes)
                guard seed.bytes.count == 32 else { throw LoadError.unsupportedKey("ML-DSA seed of \(seed.bytes.count) bytes") }
                return Array(seed.bytes)
            }
        }
        throw LoadError.unsupportedKey("expanded-only ML-DSA private key: swift-crypto imports ML-DSA keys from their seed; export the seed or both forms")
    }

    /// PKCS#8 PEM of a key; ML-DSA keys are written in the seed form (RFC 9881).
    public static func pkcs8PEM(_ key: SwiftCryptoSigningKey) throws -> String {
        switch key {
        case .p256(let k): return k.pemRepresentation
        case .p384(let k): return k.pemRepresentation
        case .rsa(let k): return k.pkcs8PEMRepresentation
        case .ed25519(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.ed25519, octetString(Array(k.rawRepresentation)))).pemString
        case .mldsa65(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa65, [0x80, 0x20] + Array(k.seedRepresentation))).pemString
        case .mldsa87(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa87, [0x80, 0x20] + Array(k.seedRepresentation))).pemString
        case .composite(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa65ECDSAP384SHA512, k.rawRepresentation)).pemString
        }
    }

    static func octetString(_ bytes: [UInt8]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(ASN1OctetString(contentBytes: bytes[...]))
        return s.serializedBytes
    }

    static func oneAsymmetricKey(_ oid: ASN1ObjectIdentifier, _ privateKey: [UInt8]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(0)
            try s.appendConstructedNode(identifier: .sequence) { try $0.serialize(oid) }
            try s.serialize(ASN1OctetString(contentBytes: privateKey[...]))
        }
        return s.serializedBytes
    }

    /// A chain and its key from two PEM files, checked to belong together.
    public static func certifiedKey(chainPath: String, keyPath: String) throws -> CertifiedKey {
        let chain = try certificates(atPath: chainPath)
        let key = try privateKey(fromPEM: String(contentsOfFile: keyPath, encoding: .utf8))
        return try certifiedKey(chain: chain, key: key)
    }

    public static func certifiedKey(chain: [X509Certificate], key: SwiftCryptoSigningKey) throws -> CertifiedKey {
        guard let leaf = chain.first else { throw LoadError.noCertificates("chain") }
        guard try key.subjectPublicKeyInfo() == leaf.publicKey.spki else { throw LoadError.keyDoesNotMatchCertificate }
        return CertifiedKey(chain: chain.map(\.der), key: key, chainSignatureSchemes: chain.compactMap(\.signatureScheme),
                            issuerNames: chain.compactMap(\.issuerDER))
    }

    /// A chain and a key that lives elsewhere (an HSM), checked to belong together by the public
    /// key the key's holder read back.
    public static func certifiedKey(chain: [X509Certificate], key: any SigningKey, subjectPublicKeyInfo: [UInt8]) throws -> CertifiedKey {
        guard let leaf = chain.first else { throw LoadError.noCertificates("chain") }
        guard subjectPublicKeyInfo == leaf.publicKey.spki else { throw LoadError.keyDoesNotMatchCertificate }
        return CertifiedKey(chain: chain.map(\.der), key: key, chainSignatureSchemes: chain.compactMap(\.signatureScheme),
                            issuerNames: chain.compactMap(\.issuerDER))
    }

    public static func pem(_ certs: [X509Certificate]) -> String {
        certs.map { PEMDocument(type: "CERTIFICATE", derBytes: $0.der).pemString }.joined(separator: "\n") + "\n"
    }
}

extension CompositeMLDSA65ECDSAP384.PrivateKey {
    /// Seed ‖ RFC 5915 ECPrivateKey without the public key (draft-19 §5).
    public var rawRepresentation: [UInt8] {
        var s = DER.Serializer()
        try! s.appendConstructedNode(identifier: .sequence) { s in     // local invariant: fixed, valid structure
            try s.serialize(1)
            try s.serialize(ASN1OctetString(contentBytes: Array(ecdsa.rawRepresentation)[...]))
            try s.serialize(X509OID.secp384r1, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
        }
        return seedBytes + s.serializedBytes
    }
}
