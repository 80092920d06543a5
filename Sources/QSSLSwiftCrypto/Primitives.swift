import CQSSLBoringAEAD
import Crypto
import Foundation
import QSSL

/// Hashing, HMAC, AEAD and randomness on swift-crypto (BoringSSL on Linux).
public struct SwiftCryptoPrimitives: CryptoPrimitives {
    public init() {}

    public func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] {
        algorithm == .sha256 ? Array(SHA256.hash(data: data)) : Array(SHA384.hash(data: data))
    }

    // HMAC, HKDF and P_hash go through BoringSSL's own HMAC and HKDF (CQSSLBoringAEAD.h):
    // swift-crypto's HMAC<H> keyed, copied and finalized a copy-on-write digest per block,
    // several allocations and copies each, a large share of a resumed handshake's CPU.

    public func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] {
        let sha384: Int32 = algorithm == .sha384 ? 1 : 0
        return [UInt8](unsafeUninitializedCapacity: algorithm.digestLength) { out, initialized in
            let ok = key.withUnsafeBytes { k in
                data.withUnsafeBufferPointer { d in
                    cqssl_hmac(sha384, k.baseAddress, k.count, d.baseAddress, d.count, out.baseAddress!)
                }
            }
            precondition(ok == 1, "HMAC failed")  // only on allocation failure inside BoringSSL
            initialized = algorithm.digestLength
        }
    }

    /// RFC 5869 §2.2: HMAC(salt, IKM), written straight into the PRK's storage. An absent salt
    /// is HashLen zeros, which HMAC pads to the same block as an empty key.
    public func hkdfExtract(_ algorithm: HashAlgorithm, salt: SecretBytes?, inputKeyMaterial: SecretBytes) -> SecretBytes {
        let sha384: Int32 = algorithm == .sha384 ? 1 : 0
        return SecretBytes(count: algorithm.digestLength) { out in
            let ok = inputKeyMaterial.withUnsafeBytes { ikm in
                (salt ?? SecretBytes(zeros: 0)).withUnsafeBytes { salt in
                    cqssl_hkdf_extract(
                        sha384, salt.baseAddress, salt.count, ikm.baseAddress, ikm.count, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            precondition(ok == 1, "HKDF-Extract failed")
        }
    }

    /// RFC 5869 §2.3, straight into the output's storage.
    public func hkdfExpand(_ algorithm: HashAlgorithm, pseudoRandomKey: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        // RFC 5869 §2.3: L <= 255·HashLen (a one-byte block counter); the core asks for at most 48.
        precondition(length >= 0 && length <= 255 * algorithm.digestLength, "HKDF-Expand of \(length) bytes exceeds 255 blocks")
        let sha384: Int32 = algorithm == .sha384 ? 1 : 0
        return SecretBytes(count: length) { out in
            guard length > 0 else { return }
            let ok = pseudoRandomKey.withUnsafeBytes { prk in
                info.withUnsafeBufferPointer { info in
                    cqssl_hkdf_expand(
                        sha384, prk.baseAddress, prk.count, info.baseAddress, info.count, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        length)
                }
            }
            precondition(ok == 1, "HKDF-Expand failed")
        }
    }

    /// P_hash in one C call (one HMAC context keyed once for all its blocks), straight into the
    /// result's storage.
    public func tls12PHash(_ algorithm: HashAlgorithm, secret: SecretBytes, labelAndSeed: [UInt8], length: Int) -> SecretBytes {
        let sha384: Int32 = algorithm == .sha384 ? 1 : 0
        return SecretBytes(count: length) { out in
            guard length > 0 else { return }
            let ok = secret.withUnsafeBytes { secret in
                labelAndSeed.withUnsafeBufferPointer { seed in
                    cqssl_tls12_p_hash(
                        sha384, secret.baseAddress, secret.count, seed.baseAddress, seed.count,
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), length)
                }
            }
            precondition(ok == 1, "P_hash failed")
        }
    }

    public func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher {
        guard key.count == algorithm.keyLength else { throw .crypto("AEAD key of \(key.count) bytes for \(algorithm)") }
        return try BoringAEADCipher(algorithm, key: key)
    }

    public func makeIncrementalHash(_ algorithm: HashAlgorithm) -> any IncrementalHash {
        algorithm == .sha256 ? SwiftCryptoHash(SHA256()) : SwiftCryptoHash(SHA384())
    }

    /// BoringSSL's RAND_bytes: a per-thread generator seeded from the kernel and reseeded,
    /// safe across fork, so that a ServerHello random is not one getrandom call per byte.
    public func randomBytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            cqssl_random_bytes(buffer.baseAddress!, count)
            initialized = count
        }
    }
}

/// swift-crypto's hashers are values: a copy is a snapshot of the running hash.
struct SwiftCryptoHash<H: HashFunction>: IncrementalHash, @unchecked Sendable {
    private var hasher: H
    init(_ hasher: H) { self.hasher = hasher }
    mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    func finalize() -> [UInt8] { Array(hasher.finalize()) }
}

/// AES-GCM and ChaCha20-Poly1305 on the BoringSSL inside swift-crypto, one key schedule per key,
/// sealing into and opening from the record layer's own buffers (see CQSSLBoringAEAD.h: the
/// public AES.GCM / ChaChaPoly API allocates and copies on every record).
final class BoringAEADCipher: AEADCipher, @unchecked Sendable {
    // Immutable after init; BoringSSL's seal and open take the context as const, so concurrent
    // use is safe.
    private let context: OpaquePointer

    init(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) {
        let id: cqssl_aead_algorithm
        switch algorithm {
        case .aes128GCM: id = CQSSL_AEAD_AES_128_GCM
        case .aes256GCM: id = CQSSL_AEAD_AES_256_GCM
        case .chaCha20Poly1305: id = CQSSL_AEAD_CHACHA20_POLY1305
        default: throw .crypto("no AEAD \(algorithm)")
        }
        // BoringSSL expands the key into its own context (cqssl_aead_free wipes it); the secret's
        // bytes are read in place, not copied.
        guard let context = key.withUnsafeBytes({ cqssl_aead_new(id, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }) else {
            throw .crypto("\(algorithm) key setup failed")
        }
        self.context = context
    }

    deinit { cqssl_aead_free(context) }

    func seal(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(TLSError) {
        guard output.count == plaintext.count + aeadTagLength, let out = output.baseAddress else {
            throw .crypto("AEAD output of \(output.count) bytes for \(plaintext.count) bytes of plaintext")
        }
        let ok = nonce.withUnsafeBytes { n in
            cqssl_aead_seal(
                context, out.assumingMemoryBound(to: UInt8.self), n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), plaintext.count,
                aad.baseAddress?.assumingMemoryBound(to: UInt8.self), aad.count)
        }
        guard ok == 1 else { throw .crypto("AEAD seal failed") }
    }

    func open(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(TLSError) {
        guard ciphertext.count >= aeadTagLength, output.count == ciphertext.count - aeadTagLength else { throw TLSError(.decryptFailed) }
        let ok = nonce.withUnsafeBytes { n in
            cqssl_aead_open(
                context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), n.baseAddress!.assumingMemoryBound(to: UInt8.self),
                ciphertext.baseAddress?.assumingMemoryBound(to: UInt8.self), ciphertext.count,
                aad.baseAddress?.assumingMemoryBound(to: UInt8.self), aad.count)
        }
        guard ok == 1 else { throw TLSError(.decryptFailed) }
    }
}

extension CryptoProvider {
    /// The default provider: swift-crypto primitives and every group of PROTOCOL.md §1.
    public static var swiftCrypto: CryptoProvider {
        CryptoProvider(primitives: SwiftCryptoPrimitives(), keyExchangeGroups: SwiftCryptoGroups.all)
    }
}
