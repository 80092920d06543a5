// The Redis keys and sealed values of the fleet's session-ID cache.

import Crypto
import QSSL
import QSSLSwiftCrypto

/// Keys and values of one service's cached sessions (see `RedisSessionCache` for the format).
/// Everything per service is worked out once: the index MAC's inner and outer hash states with
/// the service id absorbed, the AES-GCM key schedule, the constant part of the associated data.
/// A look-up then costs two SHA-256 finalisations and one AEAD open, with no key schedule.
struct FleetSessionValues: Sendable {
    static let valuePrefix: [UInt8] = Array("QFS".utf8) + [1]
    static let nonceLength = 12, tagLength = 16

    private let keyPrefix: [UInt8]
    /// HMAC-SHA-256 under the session-index key (RFC 2104): H(K ⊕ opad ‖ H(K ⊕ ipad ‖ m)), the
    /// inner state with the service id already absorbed.
    private let indexInner: SHA256
    private let indexOuter: SHA256
    private let sealKey: SymmetricKey
    private let cipher: any AEADCipher
    /// `"qssl-fleet-session-v1" ‖ fleet id ‖ service id` (length-prefixed fields).
    private let associatedDataPrefix: [UInt8]

    init(key: FleetKey, service: ServiceIdentity) {
        keyPrefix = Array("qssl:\(key.fleetID):s:".utf8)
        var indexKey = key.sessionIndexKey.withUnsafeBytes { Array($0) }
        defer { SecretBytes.wipe(&indexKey) }
        // Local invariant: FleetKey derives a 32-byte index key (at most one SHA-256 block).
        precondition(indexKey.count <= 64, "the session-index key is longer than a SHA-256 block")
        var inner = SHA256()
        var outer = SHA256()
        var pad = indexKey + [UInt8](repeating: 0, count: 64 - indexKey.count)
        defer { SecretBytes.wipe(&pad) }
        for i in pad.indices { pad[i] ^= 0x36 }
        pad.withUnsafeBytes { inner.update(bufferPointer: $0) }
        for i in pad.indices { pad[i] ^= 0x36 ^ 0x5c }
        pad.withUnsafeBytes { outer.update(bufferPointer: $0) }
        service.id.withUnsafeBytes { inner.update(bufferPointer: $0) }
        indexInner = inner
        indexOuter = outer
        sealKey = key.sessionSealKey(for: service)
        let sealSecret = sealKey.withUnsafeBytes { SecretBytes(copying: $0) }
        do {
            cipher = try SwiftCryptoPrimitives().makeAEAD(.aes256GCM, key: sealSecret)
        } catch {
            // Local invariant: the seal key is 32 bytes (HKDF output), always an AES-256 key.
            preconditionFailure("AES-256-GCM key setup failed: \(error)")
        }
        var ad = Array("qssl-fleet-session-v1".utf8)
        ad.appendField(Array(key.fleetID.utf8))
        ad.appendField(service.id)
        associatedDataPrefix = ad
    }

    /// `qssl:<fleet id>:s:<hex(HMAC-SHA-256(session-index key, service id ‖ len ‖ session ID))[0..32]>`.
    func redisKey(_ sessionID: [UInt8]) -> [UInt8] {
        var inner = indexInner
        withUnsafeBytes(of: UInt8(truncatingIfNeeded: sessionID.count)) { inner.update(bufferPointer: $0) }
        sessionID.withUnsafeBytes { inner.update(bufferPointer: $0) }
        var outer = indexOuter
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        let digits: StaticString = "0123456789abcdef"
        return outer.finalize().withUnsafeBytes { mac in
            [UInt8](unsafeUninitializedCapacity: keyPrefix.count + 32) { out, count in
                _ = out.initialize(from: keyPrefix)
                var at = keyPrefix.count
                for byte in mac.prefix(16) {
                    out[at] = digits.utf8Start[Int(byte >> 4)]
                    out[at + 1] = digits.utf8Start[Int(byte & 0x0f)]
                    at += 2
                }
                count = at
            }
        }
    }

    private func associatedData(_ key: [UInt8], _ sessionID: [UInt8]) -> [UInt8] {
        var ad = associatedDataPrefix
        ad.reserveCapacity(ad.count + key.count + sessionID.count + 4)
        ad.appendField(key)
        ad.appendField(sessionID)
        return ad
    }

    /// `"QFS" ‖ 0x01 ‖ nonce (12) ‖ AES-256-GCM(expires_at_ms ‖ encoded state) ‖ tag (16)`.
    func seal(_ plaintext: [UInt8], sessionID: [UInt8]) -> [UInt8]? {
        let key = redisKey(sessionID)
        guard let box = try? AES.GCM.seal(plaintext, using: sealKey, authenticating: associatedData(key, sessionID)) else { return nil }
        return Self.valuePrefix + Array(box.nonce) + box.ciphertext + box.tag
    }

    /// The plaintext of a value read at `key`, the Redis key of `sessionID`; nil when it is
    /// malformed or does not authenticate (wrong key, session ID, service or fleet key).
    func open(_ value: [UInt8], sessionID: [UInt8], key: [UInt8]) -> (plaintext: [UInt8]?, malformed: Bool) {
        let headerCount = Self.valuePrefix.count + Self.nonceLength
        guard value.count >= headerCount + Self.tagLength, value.starts(with: Self.valuePrefix) else { return (nil, true) }
        let nonce = Array(value[Self.valuePrefix.count..<headerCount])
        let plaintext = try? cipher.open(nonce: nonce, aad: associatedData(key, sessionID), ciphertext: value[headerCount...])
        return (plaintext, false)
    }
}
