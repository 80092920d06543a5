import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1

/// The private key that signs certificates: in memory, or wherever a `SigningKey` lives (an
/// HSM), so that a CA whose key never leaves a token can issue.
public struct CertificateSigner: Sendable {
    /// The signer's public key (DER SubjectPublicKeyInfo).
    public let subjectPublicKeyInfo: [UInt8]
    let algorithm: ASN1ObjectIdentifier
    private let signTBS: @Sendable ([UInt8]) throws -> [UInt8]

    /// An in-memory key.
    public init(_ key: SwiftCryptoSigningKey) throws {
        subjectPublicKeyInfo = try key.subjectPublicKeyInfo()
        algorithm = key.certificateSignatureAlgorithm
        signTBS = { tbs in try key.signCertificate(tbs).1 }
    }

    /// A key whose private half is elsewhere, signing through `SigningKey.sign` with the scheme
    /// that gives the certificate signature its public key calls for: P-384 →
    /// ecdsa_secp384r1_sha384 (ecdsa-with-SHA384), P-256 → ecdsa_secp256r1_sha256, RSA →
    /// rsa_pkcs1_sha256 (sha256WithRSAEncryption, which the key must accept even though TLS 1.3
    /// handshakes do not use it), ML-DSA-65/87 and the composite as themselves.
    /// - Throws: for a public key of another kind (Ed25519 is in-memory only, ML-DSA-44 verify-only).
    public init(key: any SigningKey, subjectPublicKeyInfo spki: [UInt8]) throws {
        let publicKey = try X509PublicKey(spki: try DER.parse(spki))
        let scheme: SignatureScheme
        switch publicKey.key {
        case .p384: (scheme, algorithm) = (.ecdsaSecp384r1SHA384, X509OID.ecdsaWithSHA384)
        case .p256: (scheme, algorithm) = (.ecdsaSecp256r1SHA256, X509OID.ecdsaWithSHA256)
        case .rsa: (scheme, algorithm) = (.rsaPKCS1SHA256, X509OID.sha256WithRSAEncryption)
        case .mldsa65: (scheme, algorithm) = (.mldsa65, X509OID.mldsa65)
        case .mldsa87: (scheme, algorithm) = (.mldsa87, X509OID.mldsa87)
        case .composite: (scheme, algorithm) = (.qsslMLDSA65ECDSASecp384r1SHA512, X509OID.mldsa65ECDSAP384SHA512)
        case .ed25519, .mldsa44:
            throw CertificateFiles.LoadError.unsupportedKey("\(publicKey.description) cannot sign certificates from outside memory")
        }
        subjectPublicKeyInfo = spki
        let oid = algorithm
        // Each signature is checked before it is used: a key whose public half was mixed up
        // would otherwise issue certificates nobody can verify.
        signTBS = { tbs in
            let signature = try key.sign(tbs, scheme: scheme)
            guard publicKey.verifies(signature, over: tbs[...], algorithm: oid) else {
                throw CertificateFiles.LoadError.keyDoesNotMatchCertificate
            }
            return signature
        }
    }

    func sign(_ tbs: [UInt8]) throws -> [UInt8] { try signTBS(tbs) }
}
