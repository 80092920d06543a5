import Crypto
import Foundation
import QSSL
import QSSLP384
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import _CryptoExtras

/// Object identifiers of the key and signature algorithms Q-SSL's X.509 layer handles.
public enum X509OID {
    public static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    public static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    public static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    public static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    public static let ecdsaWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 3]
    public static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
    public static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    public static let sha256WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 11]
    public static let sha384WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 12]
    public static let sha512WithRSAEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 13]
    /// RFC 9881: ML-DSA public keys and signatures share one OID, parameters absent.
    public static let mldsa44: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 17]
    public static let mldsa65: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 18]
    public static let mldsa87: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 19]
    /// draft-ietf-lamps-pq-composite-sigs-19: id-MLDSA65-ECDSA-P384-SHA512.
    public static let mldsa65ECDSAP384SHA512: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 6, 46]

    static func name(_ oid: ASN1ObjectIdentifier) -> String {
        switch oid {
        case ecdsaWithSHA256: return "ecdsa-with-SHA256"
        case ecdsaWithSHA384: return "ecdsa-with-SHA384"
        case ed25519: return "Ed25519"
        case sha256WithRSAEncryption: return "sha256WithRSAEncryption"
        case sha384WithRSAEncryption: return "sha384WithRSAEncryption"
        case sha512WithRSAEncryption: return "sha512WithRSAEncryption"
        case mldsa44: return "ML-DSA-44"
        case mldsa65: return "ML-DSA-65"
        case mldsa87: return "ML-DSA-87"
        case mldsa65ECDSAP384SHA512: return "MLDSA65-ECDSA-P384-SHA512 (composite)"
        default: return "\(oid)"
        }
    }
}

/// A certificate's subject public key, parsed into a key that can verify.
public struct X509PublicKey: Sendable {
    public let key: SwiftCryptoPublicKey
    /// The full SubjectPublicKeyInfo DER.
    public let spki: [UInt8]

    /// Parses a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7, RFC 9881 §4, composite draft §5).
    public init(spki node: ASN1Node) throws(TLSError) {
        spki = Array(node.encodedBytes)
        do {
            let (oid, params, bits) = try DER.sequence(node, identifier: .sequence) { nodes in
                let (oid, params) = try X509PublicKey.algorithmIdentifier(&nodes)
                let bits = try ASN1BitString(derEncoded: &nodes)
                return (oid, params, Array(bits.bytes))
            }
            key = try X509PublicKey.key(oid: oid, params: params, bits: bits)
        } catch let error as TLSError {
            throw error
        } catch {
            throw .rejected(.malformed, "subjectPublicKeyInfo: \(error)")
        }
    }

    static func algorithmIdentifier(_ nodes: inout ASN1NodeCollection.Iterator) throws -> (ASN1ObjectIdentifier, ASN1Node?) {
        guard let node = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "missing AlgorithmIdentifier") }
        return try algorithmIdentifier(node)
    }

    static func algorithmIdentifier(_ node: ASN1Node) throws -> (ASN1ObjectIdentifier, ASN1Node?) {
        try DER.sequence(node, identifier: .sequence) { inner in
            let oid = try ASN1ObjectIdentifier(derEncoded: &inner)
            return (oid, inner.next())
        }
    }

    static func key(oid: ASN1ObjectIdentifier, params: ASN1Node?, bits: [UInt8]) throws -> SwiftCryptoPublicKey {
        switch oid {
        case X509OID.ecPublicKey:
            guard let params else { throw TLSError.rejected(.malformed, "EC key without a named curve") }
            let curve = try ASN1ObjectIdentifier(derEncoded: params)
            if curve == X509OID.secp384r1 { return .p384(try NISTP384.PublicKey(x963Representation: bits)) }
            if curve == X509OID.secp256r1 { return .p256(try P256.Signing.PublicKey(x963Representation: bits)) }
            throw TLSError.rejected(.unsupportedAlgorithm, "EC curve \(curve)")
        case X509OID.ed25519:
            return .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: bits))
        case X509OID.rsaEncryption:
            let key = try _RSA.Signing.PublicKey(derRepresentation: bits)
            return .rsa(key)
        case X509OID.mldsa65:
            guard params == nil else { throw TLSError.rejected(.malformed, "ML-DSA parameters must be absent (RFC 9881)") }
            return .mldsa65(try MLDSA65.PublicKey(rawRepresentation: bits))
        case X509OID.mldsa87:
            guard params == nil else { throw TLSError.rejected(.malformed, "ML-DSA parameters must be absent (RFC 9881)") }
            return .mldsa87(try MLDSA87.PublicKey(rawRepresentation: bits))
        case X509OID.mldsa65ECDSAP384SHA512:
            return .composite(try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: bits))
        case X509OID.mldsa44:
            guard params == nil else { throw TLSError.rejected(.malformed, "ML-DSA parameters must be absent (RFC 9881)") }
            return .mldsa44(try MLDSA44PublicKey(rawRepresentation: bits))
        default:
            throw TLSError.rejected(.unsupportedAlgorithm, "public key algorithm \(oid)")
        }
    }

    /// Checks a certificate signature made by this key (RFC 5280 §4.1.1.3).
    func verifies(_ signature: [UInt8], over tbs: ArraySlice<UInt8>, algorithm oid: ASN1ObjectIdentifier) -> Bool {
        switch (key, oid) {
        case (.p384(let k), X509OID.ecdsaWithSHA384):
            return (try? NISTP384.Signature(derRepresentation: signature)).map { k.isValidSignature($0, forDigest: Array(SHA384.hash(data: tbs))) } ?? false
        case (.p384(let k), X509OID.ecdsaWithSHA256):
            return (try? NISTP384.Signature(derRepresentation: signature)).map { k.isValidSignature($0, forDigest: Array(SHA256.hash(data: tbs))) } ?? false
        case (.p256(let k), X509OID.ecdsaWithSHA256):
            return (try? P256.Signing.ECDSASignature(derRepresentation: signature)).map { k.isValidSignature($0, for: SHA256.hash(data: tbs)) } ?? false
        case (.p256(let k), X509OID.ecdsaWithSHA384):
            return (try? P256.Signing.ECDSASignature(derRepresentation: signature)).map { k.isValidSignature($0, for: SHA384.hash(data: tbs)) } ?? false
        case (.ed25519(let k), X509OID.ed25519):
            return k.isValidSignature(signature, for: tbs)
        case (.rsa(let k), X509OID.sha256WithRSAEncryption):
            return k.isValidSignature(.init(rawRepresentation: signature), for: SHA256.hash(data: tbs), padding: .insecurePKCS1v1_5)
        case (.rsa(let k), X509OID.sha384WithRSAEncryption):
            return k.isValidSignature(.init(rawRepresentation: signature), for: SHA384.hash(data: tbs), padding: .insecurePKCS1v1_5)
        case (.rsa(let k), X509OID.sha512WithRSAEncryption):
            return k.isValidSignature(.init(rawRepresentation: signature), for: SHA512.hash(data: tbs), padding: .insecurePKCS1v1_5)
        case (.mldsa65(let k), X509OID.mldsa65):
            return k.isValidSignature(signature, for: tbs)
        case (.mldsa87(let k), X509OID.mldsa87):
            return k.isValidSignature(signature, for: tbs)
        case (.mldsa44(let k), X509OID.mldsa44):
            return k.isValidSignature(signature, for: Array(tbs))
        case (.composite(let k), X509OID.mldsa65ECDSAP384SHA512):
            return k.isValidSignature(signature, for: Array(tbs))
        default:
            return false
        }
    }

    /// A readable description: "ECDSA P-384", "ML-DSA-65 (1952-byte key)", …
    public var description: String {
        switch key {
        case .p256: return "ECDSA P-256"
        case .p384: return "ECDSA P-384"
        case .ed25519: return "Ed25519"
        case .rsa(let k): return "RSA \(k.keySizeInBits)"
        case .mldsa65: return "ML-DSA-65 (1952-byte public key)"
        case .mldsa87: return "ML-DSA-87 (2592-byte public key)"
        case .mldsa44: return "ML-DSA-44 (1312-byte public key, verification only)"
        case .composite: return "composite ML-DSA-65 (1952 bytes) + ECDSA P-384 (97 bytes)"
        }
    }
}

extension SwiftCryptoSigningKey {
    /// SubjectPublicKeyInfo DER for this key's public half.
    public func subjectPublicKeyInfo() throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                switch self {
                case .p256:
                    try s.serialize(X509OID.ecPublicKey)
                    try s.serialize(X509OID.secp256r1)
                case .p384:
                    try s.serialize(X509OID.ecPublicKey)
                    try s.serialize(X509OID.secp384r1)
                case .ed25519: try s.serialize(X509OID.ed25519)
                case .rsa:
                    try s.serialize(X509OID.rsaEncryption)
                    try s.serialize(ASN1Null())
                case .mldsa65: try s.serialize(X509OID.mldsa65)
                case .mldsa87: try s.serialize(X509OID.mldsa87)
                case .composite: try s.serialize(X509OID.mldsa65ECDSAP384SHA512)
                }
            }
            try s.serialize(ASN1BitString(bytes: publicKeyBytes[...]))
        }
        return s.serializedBytes
    }

    /// The BIT STRING content of the SubjectPublicKeyInfo.
    var publicKeyBytes: [UInt8] {
        switch self {
        case .p256(let k): return Array(k.publicKey.x963Representation)
        case .p384(let k): return Array(k.publicKey.x963Representation)
        case .ed25519(let k): return Array(k.publicKey.rawRepresentation)
        case .rsa(let k): return Array(k.publicKey.pkcs1DERRepresentation)
        case .mldsa65(let k): return Array(k.publicKey.rawRepresentation)
        case .mldsa87(let k): return Array(k.publicKey.rawRepresentation)
        case .composite(let k): return k.publicKey.rawRepresentation
        }
    }

    /// The algorithm this key signs certificates with, and the signature.
    func signCertificate(_ tbs: [UInt8]) throws -> (ASN1ObjectIdentifier, [UInt8]) {
        switch self {
        case .p256(let k): return (X509OID.ecdsaWithSHA256, Array(try k.signature(for: tbs).derRepresentation))
        case .p384(let k): return (X509OID.ecdsaWithSHA384, try k.qsslP384Key.signature(for: tbs).derRepresentation)
        case .ed25519(let k): return (X509OID.ed25519, Array(try k.signature(for: tbs)))
        case .rsa(let k):
            return (X509OID.sha256WithRSAEncryption, Array(try k.signature(for: SHA256.hash(data: tbs), padding: .insecurePKCS1v1_5).rawRepresentation))
        case .mldsa65(let k): return (X509OID.mldsa65, Array(try k.signature(for: tbs)))
        case .mldsa87(let k): return (X509OID.mldsa87, Array(try k.signature(for: tbs)))
        case .composite(let k): return (X509OID.mldsa65ECDSAP384SHA512, try k.signature(for: tbs))
        }
    }

    /// The signature algorithm OID of `signCertificate`.
    var certificateSignatureAlgorithm: ASN1ObjectIdentifier {
        switch self {
        case .p256: return X509OID.ecdsaWithSHA256
        case .p384: return X509OID.ecdsaWithSHA384
        case .ed25519: return X509OID.ed25519
        case .rsa: return X509OID.sha256WithRSAEncryption
        case .mldsa65: return X509OID.mldsa65
        case .mldsa87: return X509OID.mldsa87
        case .composite: return X509OID.mldsa65ECDSAP384SHA512
        }
    }
}

/// A certificate's key, verifying handshake signatures, with the subjectPublicKeyInfo DER it was
/// read from.
public struct CertificatePublicKey: PeerPublicKey {
    public let key: SwiftCryptoPublicKey
    public let subjectPublicKeyInfo: [UInt8]?

    /// The key of a parsed certificate: its bytes and the key are the same field, parsed once.
    init(_ publicKey: X509PublicKey) {
        key = publicKey.key
        subjectPublicKeyInfo = publicKey.spki
    }

    /// Parses a subjectPublicKeyInfo (DER): the key cannot differ from the bytes it states.
    public init(subjectPublicKeyInfo der: [UInt8]) throws(TLSError) {
        let node: ASN1Node
        do { node = try DER.parse(der) } catch { throw .rejected(.malformed, "subjectPublicKeyInfo: \(error)") }
        self.init(try X509PublicKey(spki: node))
    }

    public var supportedSchemes: [SignatureScheme] { key.supportedSchemes }

    public func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        try key.verify(signature: signature, scheme: scheme, message: message)
    }

    public func verifyTLS12(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        try key.verifyTLS12(signature: signature, scheme: scheme, message: message)
    }
}
