import CPKCS11
import QSSLWire
import SwiftASN1

/// The kinds of token key Q-SSL signs with, and the TLS schemes each produces. A struct with
/// case-like static members, so that kinds can be added.
public struct PKCS11KeyAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// TLS signature schemes, in preference order (RFC 8446 §4.2.3: RSA keys sign with RSA-PSS).
    public let schemes: [SignatureScheme]
    /// The RSA modulus size, or the field size of an EC curve, in bits (0 for ML-DSA).
    public let bits: Int
    /// The mechanism that signs (CKM_ECDSA, CKM_RSA_PKCS_PSS, CKM_ML_DSA).
    let mechanism: CK_MECHANISM_TYPE

    public static let ecdsaP256 = PKCS11KeyAlgorithm(name: "ECDSA P-256", schemes: [.ecdsaSecp256r1SHA256], bits: 256, mechanism: CKM.ecdsa)
    public static let ecdsaP384 = PKCS11KeyAlgorithm(name: "ECDSA P-384", schemes: [.ecdsaSecp384r1SHA384], bits: 384, mechanism: CKM.ecdsa)
    public static func rsa(bits: Int) -> PKCS11KeyAlgorithm {
        PKCS11KeyAlgorithm(name: "RSA \(bits)", schemes: [.rsaPSSRSAESHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA512], bits: bits, mechanism: CKM.rsaPKCSPSS)
    }
    public static let mldsa44 = PKCS11KeyAlgorithm(name: "ML-DSA-44", schemes: [.mldsa44], bits: 0, mechanism: CKM.mldsa)
    public static let mldsa65 = PKCS11KeyAlgorithm(name: "ML-DSA-65", schemes: [.mldsa65], bits: 0, mechanism: CKM.mldsa)
    public static let mldsa87 = PKCS11KeyAlgorithm(name: "ML-DSA-87", schemes: [.mldsa87], bits: 0, mechanism: CKM.mldsa)

    public var isECDSA: Bool { mechanism == CKM.ecdsa }
    public var isRSA: Bool { mechanism == CKM.rsaPKCSPSS }
    public var isMLDSA: Bool { mechanism == CKM.mldsa }
    /// The name of the signing mechanism, e.g. "CKM_ECDSA".
    public var mechanismName: String { CKM.name(mechanism) }
    public var description: String { name }

    /// Bytes of one ECDSA coordinate (r or s).
    var coordinateLength: Int { (bits + 7) / 8 }
}

/// Object identifiers (the same values as QSSLX509's, which this target does not depend on).
enum OID {
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    static let mldsa44: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 17]
    static let mldsa65: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 18]
    static let mldsa87: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 3, 19]
    static let mldsa65ECDSAP384SHA512: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 6, 46]
}

/// DER encodings the token attributes need.
enum KeyEncoding {
    /// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) from an algorithm, its parameters and the key bits.
    static func subjectPublicKeyInfo(
        algorithm: ASN1ObjectIdentifier, curve: ASN1ObjectIdentifier? = nil, rsaNullParameters: Bool = false,
        key: [UInt8]
    ) -> [UInt8] {
        var s = DER.Serializer()
        // Local invariant: these fixed structures always serialize.
        try! s.appendConstructedNode(identifier: .sequence) { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(algorithm)
                if let curve { try s.serialize(curve) }
                if rsaNullParameters { try s.serialize(ASN1Null()) }
            }
            try s.serialize(ASN1BitString(bytes: key[...]))
        }
        return s.serializedBytes
    }

    /// RFC 8017 A.1.1 RSAPublicKey.
    static func rsaPublicKey(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        var s = DER.Serializer()
        try! s.appendConstructedNode(identifier: .sequence) { s in  // local invariant: always serializes
            try s.serialize(ArraySlice(modulus.drop { $0 == 0 }))
            try s.serialize(ArraySlice(exponent.drop { $0 == 0 }))
        }
        return s.serializedBytes
    }

    /// CKA_EC_PARAMS: the DER of the named curve's OID.
    static func ecParameters(_ curve: ASN1ObjectIdentifier) -> [UInt8] {
        var s = DER.Serializer()
        try! s.serialize(curve)  // local invariant: an OID always serializes
        return s.serializedBytes
    }

    static func curve(ecParameters der: [UInt8]) -> ASN1ObjectIdentifier? {
        try? ASN1ObjectIdentifier(derEncoded: der[...])
    }

    /// CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.40 §2.3.3); some tokens
    /// give the bare point.
    static func ecPoint(_ attribute: [UInt8], coordinateLength: Int) -> [UInt8]? {
        if attribute.count == 1 + 2 * coordinateLength, attribute.first == 0x04 { return attribute }
        guard let octets = try? ASN1OctetString(derEncoded: attribute[...]) else { return nil }
        return Array(octets.bytes)
    }
}
