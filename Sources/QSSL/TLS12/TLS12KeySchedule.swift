import QSSLWire

/// A TLS 1.2 AEAD cipher suite (RFC 5289, RFC 7905) or a Q-SSL hybrid suite (PROTOCOL.md §3).
public struct TLS12CipherSuite: Hashable, Sendable {
    public enum Authentication: Hashable, Sendable { case ecdsa, rsa }

    public let suite: CipherSuite
    public let hash: HashAlgorithm
    public let aead: AEADAlgorithm
    public let authentication: Authentication
    /// Negotiated only with a hybrid ECDHE + ML-KEM group and extended master secret.
    public let isHybrid: Bool

    public static let ecdheMLKEMECDSAWithAES256GCMSHA384 = TLS12CipherSuite(
        suite: .ecdheMLKEMECDSAWithAES256GCMSHA384, hash: .sha384, aead: .aes256GCM, authentication: .ecdsa, isHybrid: true)
    public static let ecdheMLKEMRSAWithAES256GCMSHA384 = TLS12CipherSuite(
        suite: .ecdheMLKEMRSAWithAES256GCMSHA384, hash: .sha384, aead: .aes256GCM, authentication: .rsa, isHybrid: true)
    public static let ecdheECDSAWithAES256GCMSHA384 = TLS12CipherSuite(
        suite: .ecdheECDSAWithAES256GCMSHA384, hash: .sha384, aead: .aes256GCM, authentication: .ecdsa, isHybrid: false)
    public static let ecdheRSAWithAES256GCMSHA384 = TLS12CipherSuite(
        suite: .ecdheRSAWithAES256GCMSHA384, hash: .sha384, aead: .aes256GCM, authentication: .rsa, isHybrid: false)
    public static let ecdheECDSAWithChaCha20Poly1305SHA256 = TLS12CipherSuite(
        suite: .ecdheECDSAWithChaCha20Poly1305SHA256, hash: .sha256, aead: .chaCha20Poly1305, authentication: .ecdsa, isHybrid: false)
    public static let ecdheRSAWithChaCha20Poly1305SHA256 = TLS12CipherSuite(
        suite: .ecdheRSAWithChaCha20Poly1305SHA256, hash: .sha256, aead: .chaCha20Poly1305, authentication: .rsa, isHybrid: false)
    public static let ecdheECDSAWithAES128GCMSHA256 = TLS12CipherSuite(
        suite: .ecdheECDSAWithAES128GCMSHA256, hash: .sha256, aead: .aes128GCM, authentication: .ecdsa, isHybrid: false)
    public static let ecdheRSAWithAES128GCMSHA256 = TLS12CipherSuite(
        suite: .ecdheRSAWithAES128GCMSHA256, hash: .sha256, aead: .aes128GCM, authentication: .rsa, isHybrid: false)

    /// Preference order: hybrids first, then AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM.
    public static let all: [TLS12CipherSuite] = [
        .ecdheMLKEMECDSAWithAES256GCMSHA384, .ecdheMLKEMRSAWithAES256GCMSHA384,
        .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384,
        .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256,
        .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256
    ]

    public static func named(_ suite: CipherSuite) -> TLS12CipherSuite? { all.first { $0.suite == suite } }

    /// RFC 5288 §3: AES-GCM uses a 4-byte implicit salt and an 8-byte explicit nonce;
    /// RFC 7905 §2: ChaCha20-Poly1305 uses a 12-byte IV XORed with the sequence number.
    var fixedIVLength: Int { aead == .chaCha20Poly1305 ? 12 : 4 }

    /// Whether a signature scheme authenticates this suite (RFC 8422 §5.1.2, RFC 5246 §7.4.1.4.1).
    func permits(_ scheme: SignatureScheme) -> Bool {
        switch authentication {
        case .ecdsa:
            return [.ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384, .ecdsaSecp521r1SHA512, .ed25519].contains(scheme)
                || (isHybrid && scheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        case .rsa:
            return [.rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512].contains(scheme)
        }
    }
}

/// RFC 5246 §5: the TLS 1.2 PRF, P_hash with the suite's hash.
struct TLS12PRF {
    let primitives: any CryptoPrimitives
    let hash: HashAlgorithm

    func callAsFunction(secret: SecretBytes, label: String, seed: [UInt8], length: Int) -> SecretBytes {
        primitives.tls12PHash(hash, secret: secret, labelAndSeed: Array(label.utf8) + seed, length: length)
    }

    /// RFC 7627 §4 (extended master secret) or RFC 5246 §8.1.
    func masterSecret(preMasterSecret: SecretBytes, sessionHash: [UInt8]?, clientRandom: [UInt8], serverRandom: [UInt8]) -> SecretBytes {
        if let sessionHash {
            return self(secret: preMasterSecret, label: "extended master secret", seed: sessionHash, length: 48)
        }
        return self(secret: preMasterSecret, label: "master secret", seed: clientRandom + serverRandom, length: 48)
    }

    /// RFC 5246 §7.4.9: 12 bytes of verify_data, which are sent (or compared in constant time).
    func verifyData(masterSecret: SecretBytes, client: Bool, transcriptHash: [UInt8]) -> [UInt8] {
        self(secret: masterSecret, label: client ? "client finished" : "server finished", seed: transcriptHash, length: 12).withUnsafeBytes { Array($0) }
    }
}

/// RFC 5246 §6.3: the AEAD key block.
struct TLS12KeyBlock {
    let clientKey: SecretBytes
    let serverKey: SecretBytes
    let clientIV: [UInt8]
    let serverIV: [UInt8]

    init(prf: TLS12PRF, masterSecret: SecretBytes, clientRandom: [UInt8], serverRandom: [UInt8], suite: TLS12CipherSuite) {
        let k = suite.aead.keyLength
        let i = suite.fixedIVLength
        let block = prf(secret: masterSecret, label: "key expansion", seed: serverRandom + clientRandom, length: 2 * (k + i))
        clientKey = block.extracting(0..<k)
        serverKey = block.extracting(k..<(2 * k))
        // The IVs are not keys: they are combined with public sequence numbers into nonces.
        clientIV = block.withUnsafeBytes { Array($0[(2 * k)..<(2 * k + i)]) }
        serverIV = block.withUnsafeBytes { Array($0[(2 * k + i)..<(2 * k + 2 * i)]) }
    }
}

/// PROTOCOL.md §3: the hybrid pre-master secret is SHA-384(ECDH ‖ ML-KEM); a classical one is
/// the ECDH output (RFC 8422 §5.10).
func tls12PreMasterSecret(_ secret: SecretBytes, hybrid: Bool, primitives: any CryptoPrimitives) -> SecretBytes {
    guard hybrid else { return secret }
    var hash = primitives.makeIncrementalHash(.sha384)
    secret.withUnsafeBytes { hash.update($0) }
    return SecretBytes(hash.finalize())
}
