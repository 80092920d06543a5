import Crypto
import QSSL
import QSSLSwiftCrypto
import QSSLWire

/// Which end of an in-process pair a provider belongs to.
public enum Side: Int, Sendable {
    case client = 0
    case server = 1
    public var other: Side { self == .client ? .server : .client }
}

/// A deterministic crypto provider: swift-crypto's hash, HMAC and AEAD, randomness from
/// `FuzzRandom`, and x25519 / secp256r1 keys made from `FuzzRandom` bytes. Its AEAD keys report
/// every record they seal to `Tap` (content type and plaintext) and apply the mutation armed
/// there, so a fuzz script can change a record's plaintext and still deliver it correctly encrypted.
public struct FuzzPrimitives: CryptoPrimitives {
    let real = SwiftCryptoPrimitives()
    let side: Side

    public func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { real.hash(algorithm, data) }
    public func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] { real.hmac(algorithm, key: key, data: data) }
    public func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher {
        TapCipher(inner: try real.makeAEAD(algorithm, key: key), side: side)
    }
    public func randomBytes(_ count: Int) -> [UInt8] { FuzzRandom.bytes(count, side) }
}

extension CryptoProvider {
    public static func fuzz(_ side: Side) -> CryptoProvider {
        CryptoProvider(primitives: FuzzPrimitives(side: side), keyExchangeGroups: [DeterministicX25519(side: side), DeterministicP256(side: side)])
    }
}

/// One record sealed by a side: its real content type and the first bytes of its plaintext.
public struct SealedRecord {
    public var type: UInt8
    public var head: [UInt8]
}

/// What the AEAD keys saw, per side, since the harness last took that side's output; and the
/// one pending plaintext mutation per side.
public enum Tap {
    public struct Mutation {
        /// How many more seals to let through before mutating.
        public var skip: Int
        public var offset: Int
        public var xor: UInt8
        /// TLS 1.3 only: set the inner content type to this instead (a record of application
        /// data becomes a handshake message, an alert, …).
        public var retype: UInt8? = nil
    }
    public static var sealed: [[SealedRecord]] = [[], []]
    public static var armed: [Mutation?] = [nil, nil]
    /// Whether any sealed plaintext was changed in this run (then application data may differ).
    public static var mutatedSeals: [Bool] = [false, false]
    /// For corpus making: every sealed plaintext (content type, content), per side.
    public static var captureAll = false
    public static var captured: [[(type: UInt8, content: [UInt8])]] = [[], []]

    public static func reset() {
        sealed = [[], []]
        armed = [nil, nil]
        mutatedSeals = [false, false]
        captured = [[], []]
    }

    public static func drain(_ side: Side) -> [SealedRecord] {
        defer { sealed[side.rawValue] = [] }
        return sealed[side.rawValue]
    }

    /// Logs what the core sealed (before any mutation: the checks judge what the core wrote),
    /// then applies the armed mutation, if any.
    static func seal(_ side: Side, aad: [UInt8], plaintext: inout [UInt8]) {
        // TLS 1.2 AAD: seq(8) ‖ type ‖ version ‖ length; TLS 1.3: the inner type ends the plaintext.
        if aad.count == 13 {
            sealed[side.rawValue].append(SealedRecord(type: aad[8], head: Array(plaintext.prefix(2))))
            if captureAll { captured[side.rawValue].append((aad[8], plaintext)) }
        } else if let last = plaintext.lastIndex(where: { $0 != 0 }) {
            sealed[side.rawValue].append(SealedRecord(type: plaintext[last], head: Array(plaintext.prefix(min(2, last)))))
            if captureAll { captured[side.rawValue].append((plaintext[last], Array(plaintext[..<last]))) }
        } else {
            sealed[side.rawValue].append(SealedRecord(type: 0, head: []))
        }
        guard var m = armed[side.rawValue] else { return }
        if m.skip > 0 {
            m.skip -= 1
            armed[side.rawValue] = m
        } else {
            armed[side.rawValue] = nil
            if let type = m.retype {
                if aad.count != 13, let last = plaintext.lastIndex(where: { $0 != 0 }) {
                    plaintext[last] = type
                    mutatedSeals[side.rawValue] = true
                }
            } else if !plaintext.isEmpty {
                plaintext[m.offset % plaintext.count] ^= m.xor == 0 ? 1 : m.xor
                mutatedSeals[side.rawValue] = true
            }
        }
    }
}

struct TapCipher: AEADCipher {
    let inner: any AEADCipher
    let side: Side

    func seal(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(TLSError) {
        // the plaintext may lie in `output` (sealing in place): copy it before the tap mutates it
        var p = Array(plaintext)
        Tap.seal(side, aad: Array(aad), plaintext: &p)
        var failure: TLSError?
        p.withUnsafeBytes { p in
            do throws(TLSError) { try inner.seal(nonce: nonce, aad: aad, plaintext: p, into: output) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func open(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(TLSError) {
        try inner.open(nonce: nonce, aad: aad, ciphertext: ciphertext, into: output)
    }
}

// MARK: - Deterministic groups (same checks as QSSLSwiftCrypto's, keys from FuzzRandom)

struct DeterministicX25519: KeyExchangeGroup {
    let group = NamedGroup.x25519
    let side: Side

    func makeKey() -> Curve25519.KeyAgreement.PrivateKey {
        // Any 32 bytes are an X25519 scalar.
        try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: FuzzRandom.bytes(32, side))
    }

    static func agree(_ key: Curve25519.KeyAgreement.PrivateKey, _ share: [UInt8]) throws(TLSError) -> SecretBytes {
        guard share.count == 32 else { throw .misbehaved(.sentKeyShareWrongLength, "x25519 share of \(share.count) bytes") }
        let secret: SecretBytes
        do {
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: share)
            secret = try key.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { SecretBytes(copying: $0) }
        } catch {
            throw .misbehaved(.sentInvalidKeyShare, "x25519")
        }
        guard secret.withUnsafeBytes({ $0.contains(where: { $0 != 0 }) }) else { throw .misbehaved(.sentAllZeroSharedSecret) }
        return secret
    }

    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        let key = makeKey()
        return (Array(key.publicKey.rawRepresentation), Pending(key: key))
    }

    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let key = makeKey()
        return (Array(key.publicKey.rawRepresentation), try Self.agree(key, share))
    }

    struct Pending: PendingKeyExchange {
        let key: Curve25519.KeyAgreement.PrivateKey
        var group: NamedGroup { .x25519 }
        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes { try DeterministicX25519.agree(key, serverShare) }
    }
}

struct DeterministicP256: KeyExchangeGroup {
    let group = NamedGroup.secp256r1
    let side: Side

    func makeKey() -> P256.KeyAgreement.PrivateKey {
        while true {
            if let k = try? P256.KeyAgreement.PrivateKey(rawRepresentation: FuzzRandom.bytes(32, side)) { return k }
        }
    }

    static func agree(_ key: P256.KeyAgreement.PrivateKey, _ point: [UInt8]) throws(TLSError) -> SecretBytes {
        guard point.count == 65 else {
            if point.count == 33, point.first == 2 || point.first == 3 { throw .misbehaved(.sentPointNotUncompressed) }
            throw .misbehaved(.sentKeyShareWrongLength, "secp256r1 point of \(point.count) bytes")
        }
        guard point[0] == 4 else { throw .misbehaved(.sentPointNotUncompressed) }
        do {
            let peer = try P256.KeyAgreement.PublicKey(x963Representation: point)
            return try key.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { SecretBytes(copying: $0) }
        } catch {
            throw .misbehaved(.sentPointNotOnCurve)
        }
    }

    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        let key = makeKey()
        return (Array(key.publicKey.x963Representation), Pending(key: key))
    }

    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let key = makeKey()
        return (Array(key.publicKey.x963Representation), try Self.agree(key, share))
    }

    struct Pending: PendingKeyExchange {
        let key: P256.KeyAgreement.PrivateKey
        var group: NamedGroup { .secp256r1 }
        func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes { try DeterministicP256.agree(key, serverShare) }
    }
}
