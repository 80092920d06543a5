import Crypto
import Foundation
import QSSL
import QSSLP384
import QSSLWire
import _CryptoExtras

/// The key algorithms of the swift-crypto provider and the TLS schemes each signs with. A
/// struct with case-like static members, so that algorithms can be added without breaking
/// callers.
public struct KeyAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// RFC 8446 §4.2.3: ECDSA schemes bind the curve; RSA keys sign with RSA-PSS only.
    public let schemes: [SignatureScheme]
    private init(_ name: String, _ schemes: [SignatureScheme]) {
        self.name = name
        self.schemes = schemes
    }

    public static let p256 = KeyAlgorithm("ECDSA P-256", [.ecdsaSecp256r1SHA256])
    public static let p384 = KeyAlgorithm("ECDSA P-384", [.ecdsaSecp384r1SHA384])
    public static let ed25519 = KeyAlgorithm("Ed25519", [.ed25519])
    public static let rsa = KeyAlgorithm("RSA", [.rsaPSSRSAESHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA512])
    public static let mldsa44 = KeyAlgorithm("ML-DSA-44", [.mldsa44])
    public static let mldsa65 = KeyAlgorithm("ML-DSA-65", [.mldsa65])
    public static let mldsa87 = KeyAlgorithm("ML-DSA-87", [.mldsa87])
    public static let mldsa65ECDSAP384 = KeyAlgorithm("ML-DSA-65 + ECDSA P-384", [.qsslMLDSA65ECDSASecp384r1SHA512])

    public var description: String { name }
}

/// An in-memory private key of any algorithm Q-SSL signs with.
public enum SwiftCryptoSigningKey: SigningKey {
    case p256(P256.Signing.PrivateKey)
    case p384(P384.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey)
    case mldsa65(MLDSA65.PrivateKey)
    case mldsa87(MLDSA87.PrivateKey)
    /// The seed's hybrid: composite ML-DSA-65 + ECDSA-P384 (PROTOCOL.md §2).
    case composite(CompositeMLDSA65ECDSAP384.PrivateKey)

    public var algorithm: KeyAlgorithm {
        switch self {
        case .p256: return .p256
        case .p384: return .p384
        case .ed25519: return .ed25519
        case .rsa: return .rsa
        case .mldsa65: return .mldsa65
        case .mldsa87: return .mldsa87
        case .composite: return .mldsa65ECDSAP384
        }
    }

    public var supportedSchemes: [SignatureScheme] { algorithm.schemes }

    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        guard supportedSchemes.contains(scheme) else { throw .misuse("key cannot sign with \(scheme)") }
        do {
            switch self {
            case .p256(let k): return Array(try k.signature(for: message).derRepresentation)
            case .p384(let k): return try k.qsslP384Key.signature(for: message).derRepresentation
            case .ed25519(let k): return Array(try k.signature(for: message))
            case .rsa(let k):
                switch scheme {
                case .rsaPSSRSAESHA256: return Array(try k.signature(for: SHA256.hash(data: message), padding: .PSS).rawRepresentation)
                case .rsaPSSRSAESHA384: return Array(try k.signature(for: SHA384.hash(data: message), padding: .PSS).rawRepresentation)
                default: return Array(try k.signature(for: SHA512.hash(data: message), padding: .PSS).rawRepresentation)
                }
            case .mldsa65(let k): return Array(try k.signature(for: message))
            case .mldsa87(let k): return Array(try k.signature(for: message))
            case .composite(let k): return try k.signature(for: message)
            }
        } catch {
            throw .crypto("signing with \(scheme) failed: \(error)")
        }
    }
}

/// A peer's public key, checking handshake signatures with swift-crypto.
public enum SwiftCryptoPublicKey: PeerPublicKey {
    case p256(P256.Signing.PublicKey)
    /// Q-SSL's own P-384 (QSSLP384).
    case p384(NISTP384.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)
    case rsa(_RSA.Signing.PublicKey)
    case mldsa65(MLDSA65.PublicKey)
    case mldsa87(MLDSA87.PublicKey)
    /// Verification only: Q-SSL's own FIPS 204 ML-DSA-44 verifier.
    case mldsa44(MLDSA44PublicKey)
    case composite(CompositeMLDSA65ECDSAP384.PublicKey)

    public var algorithm: KeyAlgorithm {
        switch self {
        case .p256: return .p256
        case .p384: return .p384
        case .ed25519: return .ed25519
        case .rsa: return .rsa
        case .mldsa65: return .mldsa65
        case .mldsa87: return .mldsa87
        case .mldsa44: return .mldsa44
        case .composite: return .mldsa65ECDSAP384
        }
    }

    public var supportedSchemes: [SignatureScheme] { algorithm.schemes }

    public func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        // RFC 8446 §4.4.3: the scheme must suit the certificate's key.
        guard supportedSchemes.contains(scheme) else {
            throw .misbehaved(.usedUnofferedSignatureScheme, "\(scheme) does not match the certificate key")
        }
        let valid: Bool
        switch self {
        case .p256(let k):
            valid = (try? P256.Signing.ECDSASignature(derRepresentation: signature)).map { k.isValidSignature($0, for: message) } ?? false
        case .p384(let k):
            valid = (try? NISTP384.Signature(derRepresentation: signature)).map { k.isValidSignature($0, for: message) } ?? false
        case .ed25519(let k):
            valid = k.isValidSignature(signature, for: message)
        case .rsa(let k):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch scheme {
            case .rsaPSSRSAESHA256: valid = k.isValidSignature(sig, for: SHA256.hash(data: message), padding: .PSS)
            case .rsaPSSRSAESHA384: valid = k.isValidSignature(sig, for: SHA384.hash(data: message), padding: .PSS)
            default: valid = k.isValidSignature(sig, for: SHA512.hash(data: message), padding: .PSS)
            }
        case .mldsa65(let k):
            valid = k.isValidSignature(signature, for: message)
        case .mldsa87(let k):
            valid = k.isValidSignature(signature, for: message)
        case .mldsa44(let k):
            valid = k.isValidSignature(signature, for: message)
        case .composite(let k):
            // PROTOCOL.md §2: AND verification; say which half failed.
            let failed = k.failingHalves(signature, for: message)
            guard failed.isEmpty else {
                throw .misbehaved(.sentInvalidSignature, "composite signature: \(failed.joined(separator: " and ")) half does not verify")
            }
            valid = true
        }
        guard valid else { throw .misbehaved(.sentInvalidSignature, "\(scheme) signature does not verify") }
    }

    /// TLS 1.2: an ECDSA code point names the hash, not the curve (see `PeerPublicKey`). A P-256
    /// or P-384 key is checked with the named hash; everything else as in `verify`.
    public func verifyTLS12(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        /// The hash the ECDSA code point names, of `message` (asked for by the cross cases only).
        func digest() -> any Digest {
            switch scheme {
            case .ecdsaSecp256r1SHA256: return SHA256.hash(data: message)
            case .ecdsaSecp384r1SHA384: return SHA384.hash(data: message)
            default: return SHA512.hash(data: message)
            }
        }
        let valid: Bool
        switch (self, scheme) {
        case (.p256(let k), .ecdsaSecp384r1SHA384), (.p256(let k), .ecdsaSecp521r1SHA512):
            valid = (try? P256.Signing.ECDSASignature(derRepresentation: signature)).map { k.isValidSignature($0, for: digest()) } ?? false
        case (.p384(let k), .ecdsaSecp256r1SHA256), (.p384(let k), .ecdsaSecp521r1SHA512):
            // Q-SSL's own P-384 checks SHA-384 only: swift-crypto's takes any digest.
            let key: P384.Signing.PublicKey
            do { key = try P384.Signing.PublicKey(x963Representation: k.x963Representation) } catch {
                throw .crypto("P-384 public key for a TLS 1.2 signature: \(error)")
            }
            valid = (try? P384.Signing.ECDSASignature(derRepresentation: signature)).map { key.isValidSignature($0, for: digest()) } ?? false
        default:
            // The curve's own hash, or not an ECDSA key (refused there as in TLS 1.3).
            return try verify(signature: signature, scheme: scheme, message: message)
        }
        guard valid else { throw .misbehaved(.sentInvalidSignature, "\(scheme) signature does not verify") }
    }
}

extension P384.Signing.PrivateKey {
    /// The same scalar as a key of Q-SSL's own P-384, which signs in constant time with a
    /// precomputed base-point table; the copied scalar bytes are wiped.
    public var qsslP384Key: NISTP384.PrivateKey {
        get throws(TLSError) {
            var raw = Array(rawRepresentation)
            defer { SecretBytes.wipe(&raw) }
            do { return try NISTP384.PrivateKey(rawRepresentation: raw) } catch { throw .crypto("P-384 key: \(error)") }
        }
    }
}
