import QSSLWire

/// RFC 5869 HKDF and RFC 8446 §7.1 HKDF-Expand-Label over the provider's HMAC.
struct HKDF {
    let primitives: any CryptoPrimitives
    let hash: HashAlgorithm

    /// RFC 5869 HKDF-Extract; a nil salt is HashLen zeros.
    func extract(salt: SecretBytes?, ikm: SecretBytes) -> SecretBytes {
        primitives.hkdfExtract(hash, salt: salt, inputKeyMaterial: ikm)
    }

    func expand(prk: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        primitives.hkdfExpand(hash, pseudoRandomKey: prk, info: info, length: length)
    }

    func expandLabel(secret: SecretBytes, label: String, context: [UInt8], length: Int) -> SecretBytes {
        // HkdfLabel (RFC 8446 §7.1). Labels are ours and contexts are hashes (or empty): every
        // length fits its one-byte prefix. Built in one array; every TLS 1.3 derivation is a
        // single HMAC block (length ≤ Hash.length) of the provider's HKDF-Expand.
        let prefix = "tls13 ".utf8
        var info: [UInt8] = []
        info.reserveCapacity(5 + prefix.count + label.utf8.count + context.count)
        info.append(UInt8(truncatingIfNeeded: length >> 8))
        info.append(UInt8(truncatingIfNeeded: length))
        info.append(UInt8(truncatingIfNeeded: prefix.count + label.utf8.count))
        info.append(contentsOf: prefix)
        info.append(contentsOf: label.utf8)
        info.append(UInt8(truncatingIfNeeded: context.count))
        info.append(contentsOf: context)
        return expand(prk: secret, info: info, length: length)
    }

    func deriveSecret(_ secret: SecretBytes, label: String, transcriptHash: [UInt8]) -> SecretBytes {
        expandLabel(secret: secret, label: label, context: transcriptHash, length: hash.digestLength)
    }

    var emptyHash: [UInt8] { primitives.hash(hash, []) }
}

/// Key and IV derived from a traffic secret (RFC 8446 §7.3).
struct TrafficKeys {
    let key: SecretBytes
    let iv: [UInt8]

    init(secret: SecretBytes, hkdf: HKDF, aead: AEADAlgorithm) {
        key = hkdf.expandLabel(secret: secret, label: "key", context: [], length: aead.keyLength)
        // The IV is not a key: it is combined with the public sequence number into each nonce.
        iv = hkdf.expandLabel(secret: secret, label: "iv", context: [], length: aead.nonceLength).withUnsafeBytes { Array($0) }
    }
}

/// The TLS 1.3 key schedule as typestates (RFC 8446 §7.1): each stage offers only the
/// derivations allowed at that point.
enum TLS13KeySchedule {
    struct Early {
        let hkdf: HKDF
        let secret: SecretBytes
        init(hkdf: HKDF, psk: SecretBytes? = nil) {
            self.hkdf = hkdf
            secret = hkdf.extract(salt: nil, ikm: psk ?? SecretBytes(zeros: hkdf.hash.digestLength))
        }
        /// RFC 8446 §4.2.11.2: the key PSK binders are computed with (resumption PSKs only).
        func binderKey() -> SecretBytes { hkdf.deriveSecret(secret, label: "res binder", transcriptHash: hkdf.emptyHash) }
        /// `sharedSecret` nil: psk_ke, no (EC)DHE input (HashLen zeros).
        func handshake(sharedSecret: SecretBytes?) -> Handshake {
            let derived = hkdf.deriveSecret(secret, label: "derived", transcriptHash: hkdf.emptyHash)
            return Handshake(hkdf: hkdf, secret: hkdf.extract(salt: derived, ikm: sharedSecret ?? SecretBytes(zeros: hkdf.hash.digestLength)))
        }
    }

    struct Handshake {
        let hkdf: HKDF
        let secret: SecretBytes
        func clientTrafficSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "c hs traffic", transcriptHash: transcriptHash)
        }
        func serverTrafficSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "s hs traffic", transcriptHash: transcriptHash)
        }
        func master() -> Master {
            let derived = hkdf.deriveSecret(secret, label: "derived", transcriptHash: hkdf.emptyHash)
            return Master(hkdf: hkdf, secret: hkdf.extract(salt: derived, ikm: SecretBytes(zeros: hkdf.hash.digestLength)))
        }
    }

    struct Master {
        let hkdf: HKDF
        let secret: SecretBytes
        func clientTrafficSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "c ap traffic", transcriptHash: transcriptHash)
        }
        func serverTrafficSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "s ap traffic", transcriptHash: transcriptHash)
        }
        func exporterMasterSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "exp master", transcriptHash: transcriptHash)
        }
        func resumptionMasterSecret(transcriptHash: [UInt8]) -> SecretBytes {
            hkdf.deriveSecret(secret, label: "res master", transcriptHash: transcriptHash)
        }
    }

    /// RFC 8446 §4.4.4: finished_key and verify_data.
    static func finishedVerifyData(hkdf: HKDF, baseSecret: SecretBytes, transcriptHash: [UInt8]) -> [UInt8] {
        let finishedKey = hkdf.expandLabel(secret: baseSecret, label: "finished", context: [], length: hkdf.hash.digestLength)
        return hkdf.primitives.hmac(hkdf.hash, key: finishedKey, data: transcriptHash)
    }

    /// RFC 8446 §4.6.1: the PSK a NewSessionTicket stands for.
    static func ticketPSK(hkdf: HKDF, resumptionMasterSecret: SecretBytes, nonce: [UInt8]) -> SecretBytes {
        hkdf.expandLabel(secret: resumptionMasterSecret, label: "resumption", context: nonce, length: hkdf.hash.digestLength)
    }

    /// RFC 8446 §7.2: application_traffic_secret_N+1.
    static func nextTrafficSecret(hkdf: HKDF, _ secret: SecretBytes) -> SecretBytes {
        hkdf.expandLabel(secret: secret, label: "traffic upd", context: [], length: hkdf.hash.digestLength)
    }
}

/// The running handshake transcript. Messages are kept as bytes until the hash is known (it is
/// chosen by ServerHello, and HelloRetryRequest replaces ClientHello1 by message_hash, §4.4.1).
/// Once TLS 1.3 fixes the hash (`fixHash`), each message is hashed once as it is appended and
/// every transcript hash is a snapshot of the running hash; the bytes are no longer kept.
/// TLS 1.2 keeps the bytes (its CertificateVerify signs them) and hashes them when asked.
struct Transcript {
    private(set) var bytes: [UInt8] = []
    private var running: (algorithm: HashAlgorithm, hash: any IncrementalHash)?

    mutating func append(_ message: HandshakeMessage) {
        let length = message.body.count
        let header: (UInt8, UInt8, UInt8, UInt8) = (
            message.type.rawValue, UInt8(truncatingIfNeeded: length >> 16),
            UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)
        )
        withUnsafeBytes(of: header) { add($0) }
        message.body.withUnsafeBytes { add($0) }
    }

    mutating func append(raw: [UInt8]) { raw.withUnsafeBytes { add($0) } }

    private mutating func add(_ more: UnsafeRawBufferPointer) {
        if running == nil {
            bytes.append(contentsOf: more)
        } else {
            running!.hash.update(more)
        }
    }

    func hash(_ hkdf: HKDF) -> [UInt8] {
        if let running {
            // Local invariant: TLS 1.3 hashes its transcript with the suite's hash only.
            precondition(running.algorithm == hkdf.hash, "transcript hashed with \(hkdf.hash) after \(running.algorithm) was fixed")
            return running.hash.finalize()
        }
        return hkdf.primitives.hash(hkdf.hash, bytes)
    }

    /// TLS 1.3, once the cipher suite is known: from now on messages are hashed as they are
    /// appended, with `hkdf`'s hash, and only that hash can be asked for.
    mutating func fixHash(_ hkdf: HKDF) {
        guard running == nil else { return }
        var hash = hkdf.primitives.makeIncrementalHash(hkdf.hash)
        bytes.withUnsafeBytes { hash.update($0) }
        running = (hkdf.hash, hash)
        bytes = []
    }

    /// RFC 8446 §4.4.1: replace ClientHello1 by message_hash ‖ 00 00 Hash.length ‖ Hash(CH1).
    mutating func replaceWithMessageHash(_ hkdf: HKDF) {
        let h = hash(hkdf)
        bytes = [HandshakeType.messageHash.rawValue, 0, 0, UInt8(h.count)] + h
        running = nil
    }
}

/// The TLS 1.3 cipher suites and what they use.
public struct TLS13CipherSuite: Hashable, Sendable {
    public let suite: CipherSuite
    public let hash: HashAlgorithm
    public let aead: AEADAlgorithm

    public static let aes128GCMSHA256 = TLS13CipherSuite(suite: .tlsAES128GCMSHA256, hash: .sha256, aead: .aes128GCM)
    public static let aes256GCMSHA384 = TLS13CipherSuite(suite: .tlsAES256GCMSHA384, hash: .sha384, aead: .aes256GCM)
    public static let chaCha20Poly1305SHA256 = TLS13CipherSuite(suite: .tlsChaCha20Poly1305SHA256, hash: .sha256, aead: .chaCha20Poly1305)
    public static let all: [TLS13CipherSuite] = [.aes256GCMSHA384, .aes128GCMSHA256, .chaCha20Poly1305SHA256]

    public static func named(_ suite: CipherSuite) -> TLS13CipherSuite? { all.first { $0.suite == suite } }
}
