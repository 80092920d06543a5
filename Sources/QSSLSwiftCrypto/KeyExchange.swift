import Crypto
import Foundation
import QSSL
import QSSLP384
import QSSLWire

/// The key exchange groups of PROTOCOL.md §1 on swift-crypto.
public enum SwiftCryptoGroups {
    public static let x25519: any KeyExchangeGroup = X25519Group()
    public static let secp256r1: any KeyExchangeGroup = NISTGroup<P256Curve>()
    public static let secp384r1: any KeyExchangeGroup = NISTGroup<P384Curve>()
    public static let mlkem768: any KeyExchangeGroup = MLKEMGroup<MLKEM768Params>()
    public static let mlkem1024: any KeyExchangeGroup = MLKEMGroup<MLKEM1024Params>()
    // draft-ietf-tls-ecdhe-mlkem §4.1: X25519MLKEM768 puts ML-KEM first; the NIST-curve
    // hybrids put the EC share first.
    public static let x25519MLKEM768: any KeyExchangeGroup = HybridKeyExchange(
        group: .x25519MLKEM768, first: MLKEMGroup<MLKEM768Params>(), second: X25519Group())
    public static let secp256r1MLKEM768: any KeyExchangeGroup = HybridKeyExchange(
        group: .secp256r1MLKEM768, first: NISTGroup<P256Curve>(), second: MLKEMGroup<MLKEM768Params>())
    public static let secp384r1MLKEM1024: any KeyExchangeGroup = HybridKeyExchange(
        group: .secp384r1MLKEM1024, first: NISTGroup<P384Curve>(), second: MLKEMGroup<MLKEM1024Params>())

    public static let all: [any KeyExchangeGroup] = [
        secp384r1MLKEM1024, x25519MLKEM768, secp256r1MLKEM768, mlkem1024, x25519, secp384r1, secp256r1
    ]
}

/// One half of a hybrid: a group whose shares have fixed lengths.
protocol FixedLengthGroup: KeyExchangeGroup {
    var clientShareLength: Int { get }
    var serverShareLength: Int { get }
}

/// A hybrid group as a composition of two groups (draft-ietf-tls-ecdhe-mlkem §3): shares and
/// secrets are the concatenation of the components' in the group's fixed order.
public struct HybridKeyExchange: KeyExchangeGroup {
    public let group: NamedGroup
    let first: any FixedLengthGroup
    let second: any FixedLengthGroup

    init(group: NamedGroup, first: any FixedLengthGroup, second: any FixedLengthGroup) {
        self.group = group
        self.first = first
        self.second = second
    }

    public func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        let (a, pa) = try first.generateClientShare()
        let (b, pb) = try second.generateClientShare()
        return (a + b, Pending(group: group, first: pa, second: pb, firstLength: first.serverShareLength, secondLength: second.serverShareLength))
    }

    public func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        guard share.count == first.clientShareLength + second.clientShareLength else {
            throw .misbehaved(.sentKeyShareWrongLength, "\(group) share of \(share.count) bytes")
        }
        let (a, sa) = try first.respond(toClientShare: Array(share[..<first.clientShareLength]))
        let (b, sb) = try second.respond(toClientShare: Array(share[first.clientShareLength...]))
        return (a + b, SecretBytes(concatenating: [sa, sb]))
    }

    struct Pending: PendingKeyExchange {
        let group: NamedGroup
        let first: any PendingKeyExchange
        let second: any PendingKeyExchange
        let firstLength: Int
        let secondLength: Int

        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes {
            guard serverShare.count == firstLength + secondLength else {
                // A wrong total length is a wrong ciphertext length when the KEM part is at fault.
                throw .misbehaved(.sentKeyShareWrongLength, "\(group) server share of \(serverShare.count) bytes")
            }
            let a = try first.complete(serverShare: Array(serverShare[..<firstLength]))
            let b = try second.complete(serverShare: Array(serverShare[firstLength...]))
            return SecretBytes(concatenating: [a, b])
        }
    }
}

// MARK: - X25519

struct X25519Group: FixedLengthGroup {
    let group = NamedGroup.x25519
    let clientShareLength = 32
    let serverShareLength = 32

    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return (Array(key.publicKey.rawRepresentation), Pending(key: key))
    }

    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return (Array(key.publicKey.rawRepresentation), try Self.agree(key, share))
    }

    static func agree(_ key: Curve25519.KeyAgreement.PrivateKey, _ share: [UInt8]) throws(TLSError) -> SecretBytes {
        guard share.count == 32 else { throw .misbehaved(.sentKeyShareWrongLength, "x25519 share of \(share.count) bytes") }
        let secret: SecretBytes
        do {
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: share)
            secret = try key.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { SecretBytes(copying: $0) }
        } catch {
            throw .misbehaved(.sentInvalidKeyShare, "x25519: \(error)")
        }
        // RFC 8446 §7.4.2: an all-zero X25519 output MUST be rejected (swift-crypto does not).
        // OR-ed over every byte: how far the zeros go is not timed.
        guard secret.withUnsafeBytes({ $0.reduce(0, |) }) != 0 else { throw .misbehaved(.sentAllZeroSharedSecret) }
        return secret
    }

    struct Pending: PendingKeyExchange {
        let key: Curve25519.KeyAgreement.PrivateKey
        var group: NamedGroup { .x25519 }
        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes { try X25519Group.agree(key, serverShare) }
    }
}

// MARK: - NIST curves

protocol NISTCurve: Sendable {
    associatedtype PrivateKey: Sendable
    static var group: NamedGroup { get }
    static var scalarLength: Int { get }
    static func makeKey(raw: [UInt8]) throws -> PrivateKey
    static func publicPoint(_ key: PrivateKey) -> [UInt8]
    static func agree(_ key: PrivateKey, x963 point: [UInt8]) throws -> SecretBytes
}

enum P256Curve: NISTCurve {
    static let group = NamedGroup.secp256r1
    static let scalarLength = 32
    static func makeKey(raw: [UInt8]) throws -> P256.KeyAgreement.PrivateKey { try .init(rawRepresentation: raw) }
    static func publicPoint(_ key: P256.KeyAgreement.PrivateKey) -> [UInt8] { Array(key.publicKey.x963Representation) }
    static func agree(_ key: P256.KeyAgreement.PrivateKey, x963 point: [UInt8]) throws -> SecretBytes {
        try key.sharedSecretFromKeyAgreement(with: .init(x963Representation: point)).withUnsafeBytes { SecretBytes(copying: $0) }
    }
}

/// P-384 on Q-SSL's own constant-time implementation (QSSLP384); swift-crypto's is the
/// reference it is tested against.
enum P384Curve: NISTCurve {
    static let group = NamedGroup.secp384r1
    static let scalarLength = 48
    static func makeKey(raw: [UInt8]) throws -> NISTP384.PrivateKey { try .init(rawRepresentation: raw) }
    static func publicPoint(_ key: NISTP384.PrivateKey) -> [UInt8] { key.publicKey.x963Representation }
    static func agree(_ key: NISTP384.PrivateKey, x963 point: [UInt8]) throws -> SecretBytes {
        SecretBytes(try key.sharedSecret(with: .init(x963Representation: point)))
    }
}

/// ECDHE over P-256 or P-384 with uncompressed points only (RFC 8446 §4.2.8.2).
struct NISTGroup<Curve: NISTCurve>: FixedLengthGroup {
    var group: NamedGroup { Curve.group }
    var clientShareLength: Int { 1 + 2 * Curve.scalarLength }
    var serverShareLength: Int { 1 + 2 * Curve.scalarLength }

    /// FACTS.md: keys made from random bytes skip BoringSSL's per-key FIPS self-test (~1.3 ms on P-384).
    static func freshKey() throws(TLSError) -> Curve.PrivateKey {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<8 {
            let raw = (0..<Curve.scalarLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            if let key = try? Curve.makeKey(raw: raw) { return key }  // out-of-range scalars are retried
        }
        throw .crypto("could not generate a \(Curve.group) key")
    }

    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        let key = try Self.freshKey()
        return (Curve.publicPoint(key), Pending(key: key))
    }

    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let key = try Self.freshKey()
        return (Curve.publicPoint(key), try Self.agree(key, share))
    }

    static func agree(_ key: Curve.PrivateKey, _ point: [UInt8]) throws(TLSError) -> SecretBytes {
        guard point.count == 1 + 2 * Curve.scalarLength else {
            if point.count == 1 + Curve.scalarLength, point.first == 2 || point.first == 3 {
                throw .misbehaved(.sentPointNotUncompressed, "\(Curve.group) compressed point")
            }
            throw .misbehaved(.sentKeyShareWrongLength, "\(Curve.group) point of \(point.count) bytes")
        }
        guard point[0] == 0x04 else { throw .misbehaved(.sentPointNotUncompressed, "\(Curve.group) point format \(point[0])") }
        do {
            return try Curve.agree(key, x963: point)
        } catch {
            throw .misbehaved(.sentPointNotOnCurve, "\(Curve.group) point is not on the curve")
        }
    }

    struct Pending: PendingKeyExchange {
        let key: Curve.PrivateKey
        var group: NamedGroup { Curve.group }
        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes { try NISTGroup.agree(key, serverShare) }
    }
}

// MARK: - ML-KEM

protocol MLKEMParams: Sendable {
    associatedtype PrivateKey: Sendable
    static var group: NamedGroup { get }
    static var encapsulationKeyLength: Int { get }
    static var ciphertextLength: Int { get }
    static func generate() throws -> (PrivateKey, [UInt8])
    static func encapsulate(_ ek: [UInt8]) throws -> (ct: [UInt8], ss: SecretBytes)
    static func decapsulate(_ key: PrivateKey, _ ct: [UInt8]) throws -> SecretBytes
}

enum MLKEM768Params: MLKEMParams {
    static let group = NamedGroup.mlkem768
    static let encapsulationKeyLength = 1184
    static let ciphertextLength = 1088
    static func generate() throws -> (MLKEM768.PrivateKey, [UInt8]) {
        let k = try MLKEM768.PrivateKey()
        return (k, Array(k.publicKey.rawRepresentation))
    }
    static func encapsulate(_ ek: [UInt8]) throws -> (ct: [UInt8], ss: SecretBytes) {
        let r = try MLKEM768.PublicKey(rawRepresentation: ek).encapsulate()
        return (Array(r.encapsulated), r.sharedSecret.withUnsafeBytes { SecretBytes(copying: $0) })
    }
    static func decapsulate(_ key: MLKEM768.PrivateKey, _ ct: [UInt8]) throws -> SecretBytes {
        try key.decapsulate(ct).withUnsafeBytes { SecretBytes(copying: $0) }
    }
}

enum MLKEM1024Params: MLKEMParams {
    static let group = NamedGroup.mlkem1024
    static let encapsulationKeyLength = 1568
    static let ciphertextLength = 1568
    static func generate() throws -> (MLKEM1024.PrivateKey, [UInt8]) {
        let k = try MLKEM1024.PrivateKey()
        return (k, Array(k.publicKey.rawRepresentation))
    }
    static func encapsulate(_ ek: [UInt8]) throws -> (ct: [UInt8], ss: SecretBytes) {
        let r = try MLKEM1024.PublicKey(rawRepresentation: ek).encapsulate()
        return (Array(r.encapsulated), r.sharedSecret.withUnsafeBytes { SecretBytes(copying: $0) })
    }
    static func decapsulate(_ key: MLKEM1024.PrivateKey, _ ct: [UInt8]) throws -> SecretBytes {
        try key.decapsulate(ct).withUnsafeBytes { SecretBytes(copying: $0) }
    }
}

/// ML-KEM (FIPS 203) as a TLS group: the client's share is the encapsulation key, the
/// server's the ciphertext.
struct MLKEMGroup<P: MLKEMParams>: FixedLengthGroup {
    var group: NamedGroup { P.group }
    var clientShareLength: Int { P.encapsulationKeyLength }
    var serverShareLength: Int { P.ciphertextLength }

    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        do {
            let (key, ek) = try P.generate()
            return (ek, Pending(key: key))
        } catch {
            throw .crypto("ML-KEM key generation: \(error)")
        }
    }

    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        guard share.count == P.encapsulationKeyLength else {
            throw .misbehaved(.sentKeyShareWrongLength, "\(P.group) encapsulation key of \(share.count) bytes")
        }
        // BoringSSL's parse runs the FIPS 203 §7.2 modulus check on the encapsulation key.
        do {
            let (ct, ss) = try P.encapsulate(share)
            return (ct, ss)
        } catch {
            throw .misbehaved(.sentInvalidMLKEMKey, "\(P.group) encapsulation key fails the FIPS 203 check")
        }
    }

    struct Pending: PendingKeyExchange {
        let key: P.PrivateKey
        var group: NamedGroup { P.group }
        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes {
            guard serverShare.count == P.ciphertextLength else {
                throw .misbehaved(.sentMLKEMCiphertextWrongLength, "\(P.group) ciphertext of \(serverShare.count) bytes")
            }
            do {
                return try P.decapsulate(key, serverShare)
            } catch {
                throw .crypto("\(P.group) decapsulation failed: \(error)")
            }
        }
    }
}
