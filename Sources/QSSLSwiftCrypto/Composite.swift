import Crypto
import Foundation
import QSSL
import QSSLP384
import QSSLWire

/// Composite ML-DSA-65 + ECDSA-P384 (draft-ietf-lamps-pq-composite-sigs-19,
/// id-MLDSA65-ECDSA-P384-SHA512, OID 1.3.6.1.5.5.7.6.46): the seed's "hybrid signature".
/// A signature is valid only if both halves verify (PROTOCOL.md §2).
public enum CompositeMLDSA65ECDSAP384 {
    /// draft §7: the domain separator of this composite.
    public static let label = Array("COMPSIG-MLDSA65-ECDSA-P384-SHA512".utf8)
    static let prefix = Array("CompositeAlgorithmSignatures2025".utf8)
    static let mldsaPublicKeyLength = 1952
    static let mldsaSignatureLength = 3309
    static let ecdsaPointLength = 97

    /// draft §4.2: M′ = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M).
    static func representative(_ message: [UInt8], context: [UInt8]) throws(TLSError) -> [UInt8] {
        guard context.count <= 255 else { throw .misuse("composite signature context longer than 255 bytes") }
        return prefix + label + [UInt8(context.count)] + context + Array(SHA512.hash(data: message))
    }

    /// M′ of draft §4.2, for signers that make the two halves elsewhere (the ECDSA half in an
    /// HSM): the ML-DSA-65 half signs M′ with context `label`, the ECDSA half SHA-384(M′).
    public static func messageRepresentative(_ message: [UInt8], context: [UInt8] = []) throws(TLSError) -> [UInt8] {
        try representative(message, context: context)
    }

    public struct PublicKey: Sendable {
        public let mldsa: MLDSA65.PublicKey
        public let ecdsa: NISTP384.PublicKey

        /// ML-DSA-65 public key (1952) ‖ uncompressed P-384 point (97).
        public init(rawRepresentation raw: [UInt8]) throws(TLSError) {
            guard raw.count == mldsaPublicKeyLength + ecdsaPointLength else {
                throw .rejected(.malformed, "composite public key of \(raw.count) bytes")
            }
            do {
                mldsa = try MLDSA65.PublicKey(rawRepresentation: raw.prefix(mldsaPublicKeyLength))
                ecdsa = try NISTP384.PublicKey(x963Representation: raw.suffix(ecdsaPointLength))
            } catch {
                throw .rejected(.malformed, "composite public key: \(error)")
            }
        }

        public var rawRepresentation: [UInt8] { Array(mldsa.rawRepresentation) + ecdsa.x963Representation }

        /// AND verification: the ML-DSA half over M′ with context = Label, the ECDSA half over M′
        /// with SHA-384. Returns which halves failed (empty when valid).
        public func failingHalves(_ signature: [UInt8], for message: [UInt8], context: [UInt8] = []) -> [String] {
            guard signature.count >= mldsaSignatureLength,
                let m = try? CompositeMLDSA65ECDSAP384.representative(message, context: context)
            else { return ["ML-DSA-65", "ECDSA-P384"] }
            var failed: [String] = []
            if !mldsa.isValidSignature(signature.prefix(mldsaSignatureLength), for: m, context: label) { failed.append("ML-DSA-65") }
            let ecdsaValid =
                (try? NISTP384.Signature(derRepresentation: signature.dropFirst(mldsaSignatureLength)))
                .map { ecdsa.isValidSignature($0, for: m) } ?? false
            if !ecdsaValid { failed.append("ECDSA-P384") }
            return failed
        }

        public func isValidSignature(_ signature: [UInt8], for message: [UInt8], context: [UInt8] = []) -> Bool {
            failingHalves(signature, for: message, context: context).isEmpty
        }
    }

    public struct PrivateKey: Sendable {
        public let mldsa: MLDSA65.PrivateKey
        public let ecdsa: P384.Signing.PrivateKey
        let seed: [UInt8]
        /// The 32-byte ML-DSA-65 seed.
        public var seedBytes: [UInt8] { seed }

        /// ML-DSA-65 seed (32) ‖ RFC 5915 ECPrivateKey (DER, no public key field).
        public init(rawRepresentation raw: [UInt8]) throws(TLSError) {
            guard raw.count > 32 else { throw .rejected(.malformed, "composite private key of \(raw.count) bytes") }
            do {
                seed = Array(raw.prefix(32))
                mldsa = try MLDSA65.PrivateKey(seedRepresentation: seed, publicKey: nil)
                ecdsa = try P384.Signing.PrivateKey(derRepresentation: raw.dropFirst(32))
            } catch {
                throw .rejected(.malformed, "composite private key: \(error)")
            }
        }

        /// A fresh key pair.
        public init() throws {
            var rng = SystemRandomNumberGenerator()
            seed = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            mldsa = try MLDSA65.PrivateKey(seedRepresentation: seed, publicKey: nil)
            ecdsa = P384.Signing.PrivateKey()
        }

        public var publicKey: PublicKey {
            // Both halves are valid keys, so the raw form always parses.
            try! PublicKey(rawRepresentation: Array(mldsa.publicKey.rawRepresentation) + Array(ecdsa.publicKey.x963Representation))
        }

        /// ML-DSA-65 signature (3309) ‖ DER ECDSA-P384 signature.
        public func signature(for message: [UInt8], context: [UInt8] = []) throws(TLSError) -> [UInt8] {
            let m = try CompositeMLDSA65ECDSAP384.representative(message, context: context)
            do {
                let ecdsaSignature = try ecdsa.qsslP384Key.signature(for: m).derRepresentation
                return Array(try mldsa.signature(for: m, context: label)) + ecdsaSignature
            } catch {
                throw .crypto("composite signing: \(error)")
            }
        }
    }
}
