import Crypto
import Foundation
import QSSL

/// Hashing, HMAC, AEAD and randomness on swift-crypto (BoringSSL on Linux).
public struct SwiftCryptoPrimitives: CryptoPrimitives {
    public init() {}

    public func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] {
        algorithm == .sha256 ? Array(SHA256.hash(data: data)) : Array(SHA384.hash(data: data))
    }

    public func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8] {
        let k = SymmetricKey(data: key)
        return algorithm == .sha256
            ? Array(HMAC<SHA256>.authenticationCode(for: data, using: k))
            : Array(HMAC<SHA384>.authenticationCode(for: data, using: k))
    }

    public func makeAEAD(_ algorithm: AEADAlgorithm, key: [UInt8]) throws(TLSError) -> any AEADCipher {
        guard key.count == algorithm.keyLength else { throw .crypto("AEAD key of \(key.count) bytes for \(algorithm)") }
        return algorithm == .chaCha20Poly1305 ? ChaChaPolyCipher(key: SymmetricKey(data: key)) : AESGCMCipher(key: SymmetricKey(data: key))
    }

    public func randomBytes(_ count: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }
}

struct AESGCMCipher: AEADCipher {
    let key: SymmetricKey

    func seal(nonce: [UInt8], aad: [UInt8], plaintext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
            var out = [UInt8](box.ciphertext)
            out.append(contentsOf: box.tag)
            return out
        } catch {
            throw .crypto("AES-GCM seal: \(error)")
        }
    }

    func open(nonce: [UInt8], aad: [UInt8], ciphertext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        guard ciphertext.count >= 16 else { throw TLSError(.decryptFailed) }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16))
            return Array(try AES.GCM.open(box, using: key, authenticating: aad))
        } catch {
            throw TLSError(.decryptFailed)
        }
    }
}

struct ChaChaPolyCipher: AEADCipher {
    let key: SymmetricKey

    func seal(nonce: [UInt8], aad: [UInt8], plaintext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        do {
            let box = try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: aad)
            var out = [UInt8](box.ciphertext)
            out.append(contentsOf: box.tag)
            return out
        } catch {
            throw .crypto("ChaCha20-Poly1305 seal: \(error)")
        }
    }

    func open(nonce: [UInt8], aad: [UInt8], ciphertext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        guard ciphertext.count >= 16 else { throw TLSError(.decryptFailed) }
        do {
            let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16))
            return Array(try ChaChaPoly.open(box, using: key, authenticating: aad))
        } catch {
            throw TLSError(.decryptFailed)
        }
    }
}

extension CryptoProvider {
    /// The default provider: swift-crypto primitives and every group of PROTOCOL.md §1.
    public static var swiftCrypto: CryptoProvider {
        CryptoProvider(primitives: SwiftCryptoPrimitives(), keyExchangeGroups: SwiftCryptoGroups.all)
    }
}
