import CQSSLConstantTime
import QSSLWire
import Synchronization

/// Hash functions the key schedule and transcript use.
public struct HashAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public let digestLength: Int
    let id: UInt8
    public static let sha256 = HashAlgorithm(digestLength: 32, id: 1)
    public static let sha384 = HashAlgorithm(digestLength: 48, id: 2)
    public var description: String { self == .sha256 ? "SHA-256" : "SHA-384" }
}

/// AEAD algorithms of the record layer.
public struct AEADAlgorithm: Hashable, Sendable, CustomStringConvertible {
    public let keyLength: Int
    let id: UInt8
    public static let aes128GCM = AEADAlgorithm(keyLength: 16, id: 1)
    public static let aes256GCM = AEADAlgorithm(keyLength: 32, id: 2)
    public static let chaCha20Poly1305 = AEADAlgorithm(keyLength: 32, id: 3)
    public var nonceLength: Int { 12 }
    public var tagLength: Int { 16 }
    public var description: String {
        switch id {
        case 1: return "AES-128-GCM"
        case 2: return "AES-256-GCM"
        default: return "ChaCha20-Poly1305"
        }
    }
}

/// The length of the tag of every AEAD the record layer uses (RFC 8446 §5.3, RFC 5288, RFC 7905).
public let aeadTagLength = 16

/// A 96-bit AEAD nonce held inline (on the stack), not in an array: the record layer makes one
/// per record.
public struct AEADNonce: Sendable, Equatable {
    public static let length = 12
    fileprivate var storage: (UInt32, UInt32, UInt32) = (0, 0, 0)

    /// The nonce of `bytes`, which must be 12 bytes long.
    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard bytes.count == Self.length else { return nil }
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
    }

    /// The bytes, as an array (tests and array-based conformers).
    public var bytes: [UInt8] { Swift.withUnsafeBytes(of: storage) { Array($0) } }

    /// Calls `body` with the 12 bytes.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = storage
        return try Swift.withUnsafeMutableBytes(of: &copy) { (buffer) throws(E) -> R in try body(UnsafeRawBufferPointer(buffer)) }
    }

    /// RFC 8446 §5.3, RFC 7905 §2: the 64-bit sequence number, big-endian, XORed into the last
    /// 8 bytes.
    func xoring(sequence: UInt64) -> AEADNonce {
        var nonce = self
        Swift.withUnsafeMutableBytes(of: &nonce.storage) { bytes in
            bytes.storeBytes(of: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self) ^ sequence.bigEndian, toByteOffset: 4, as: UInt64.self)
        }
        return nonce
    }

    /// RFC 5288 §3: the 4-byte salt (the first bytes of `self`) ‖ an 8-byte explicit nonce.
    func replacingExplicitPart(with explicit: UInt64) -> AEADNonce {
        var nonce = self
        Swift.withUnsafeMutableBytes(of: &nonce.storage) { $0.storeBytes(of: explicit.bigEndian, toByteOffset: 4, as: UInt64.self) }
        return nonce
    }

    public static func == (a: AEADNonce, b: AEADNonce) -> Bool { a.storage == b.storage }
}

/// An AEAD key ready to seal and open records.
///
/// The record layer calls only these buffer-based methods: it seals straight into its outgoing
/// buffer and opens from its incoming one, so no per-record array is made for the nonce, the
/// additional data or the ciphertext. Array-based conveniences are provided on top of them (not
/// as requirements, so a conformer that misses a signature fails to compile instead of
/// recursing between two defaults).
public protocol AEADCipher: Sendable {
    /// Encrypts `plaintext` and writes ciphertext ‖ tag to `output`, whose count is
    /// `plaintext.count + aeadTagLength`. `plaintext` is either disjoint from `output` or starts
    /// at the same address (sealing in place); `aad` may point into `output` before the part
    /// written.
    func seal(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer) throws(TLSError)
    /// Authenticates `ciphertext` (ciphertext ‖ tag, at least `aeadTagLength` bytes) and writes
    /// the plaintext to `output`, whose count is `ciphertext.count - aeadTagLength`; `output` is
    /// disjoint from `ciphertext` or starts at the same address. Throws `decryptFailed` when
    /// authentication fails; `output` must then hold no plaintext (callers zero it as well).
    func open(
        nonce: AEADNonce, aad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer) throws(TLSError)
}

extension AEADCipher {
    /// Returns ciphertext ‖ tag.
    public func seal(nonce: [UInt8], aad: [UInt8], plaintext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        guard let nonce = AEADNonce(nonce) else { throw .crypto("AEAD nonce of \(nonce.count) bytes") }
        return try Self.zeroedArray(count: plaintext.count + aeadTagLength) { (output) throws(TLSError) in
            try aad.withBytes { (aad) throws(TLSError) in
                try plaintext.withBytes { (plaintext) throws(TLSError) in
                    try seal(nonce: nonce, aad: aad, plaintext: plaintext, into: output)
                }
            }
        }
    }

    /// Opens ciphertext ‖ tag; throws `decryptFailed` when authentication fails.
    public func open(nonce: [UInt8], aad: [UInt8], ciphertext: ArraySlice<UInt8>) throws(TLSError) -> [UInt8] {
        guard let nonce = AEADNonce(nonce), ciphertext.count >= aeadTagLength else { throw TLSError(.decryptFailed) }
        return try Self.zeroedArray(count: ciphertext.count - aeadTagLength) { (output) throws(TLSError) in
            try aad.withBytes { (aad) throws(TLSError) in
                try ciphertext.withBytes { (ciphertext) throws(TLSError) in
                    try open(nonce: nonce, aad: aad, ciphertext: ciphertext, into: output)
                }
            }
        }
    }

    /// A zero-filled array of `count` bytes that `fill` writes; on failure it is zeroed again
    /// (no partial plaintext or ciphertext survives) and the error is thrown.
    private static func zeroedArray(count: Int, _ fill: (UnsafeMutableRawBufferPointer) throws(TLSError) -> Void) throws(TLSError) -> [UInt8] {
        var failure: TLSError?
        var bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let output = UnsafeMutableRawBufferPointer(buffer)
            output.initializeMemory(as: UInt8.self, repeating: 0)
            initialized = count
            do throws(TLSError) { try fill(output) } catch { failure = error }
        }
        if let failure {
            bytes.withUnsafeMutableBytes { zeroise($0) }
            throw failure
        }
        return bytes
    }
}

/// A running hash: `update` with more bytes, `finalize` for the digest so far. A value type: a
/// copy is a snapshot (the transcript hashes each message once, however often it asks for the
/// hash of what it has seen).
public protocol IncrementalHash: Sendable {
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The digest of everything added so far; more bytes may be added afterwards.
    func finalize() -> [UInt8]
}

/// Hashing, HMAC, HKDF, the TLS 1.2 PRF, AEAD and randomness: the primitives the protocol core
/// is written against.
///
/// Every key that goes in and every key that comes out is a `SecretBytes`: the provider reads a
/// key inside `withUnsafeBytes` for the length of the call and writes a derived secret straight
/// into a new `SecretBytes` (`init(count:initializingWith:)`), so no secret is left in a plain
/// array for someone to wipe. What stays `[UInt8]` is public or about to be: hashes, MACs
/// (Finished verify_data and PSK binders are sent), random bytes.
public protocol CryptoPrimitives: Sendable {
    func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8]
    /// An empty running hash. Defaults to one that keeps the bytes and calls `hash` on
    /// `finalize` (correct, but as slow as re-hashing).
    func makeIncrementalHash(_ algorithm: HashAlgorithm) -> any IncrementalHash
    /// The MAC of `data` under `key`. The core uses it for MACs it sends or compares in
    /// constant time (Finished, binders); derivations go through the HKDF and PRF requirements,
    /// whose defaults call this and take each result over as a secret. `data` may be secret
    /// (those defaults pass HKDF input key material and T(i-1) through it): an implementation
    /// must not keep or copy it beyond the call.
    func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8]
    /// RFC 5869 §2.2 HKDF-Extract: the PRK. A nil `salt` is HashLen zeros.
    func hkdfExtract(_ algorithm: HashAlgorithm, salt: SecretBytes?, inputKeyMaterial: SecretBytes) -> SecretBytes
    /// RFC 5869 §2.3 HKDF-Expand: `length` bytes (at most 255 · HashLen) of output key material.
    func hkdfExpand(_ algorithm: HashAlgorithm, pseudoRandomKey: SecretBytes, info: [UInt8], length: Int) -> SecretBytes
    /// RFC 5246 §5's P_hash: `length` bytes of HMAC(secret, A(i) ‖ labelAndSeed). The default
    /// calls `hmac` for each step; a provider can key the HMAC once for all of them.
    func tls12PHash(_ algorithm: HashAlgorithm, secret: SecretBytes, labelAndSeed: [UInt8], length: Int) -> SecretBytes
    func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher
    func randomBytes(_ count: Int) -> [UInt8]
}

/// A TLS 1.3 key exchange group framed as a KEM: the client offers a share, the server answers
/// with ciphertext (or its own DH share), and both hold the same secret (RFC 8446 §4.2.8,
/// draft-ietf-tls-ecdhe-mlkem). Hybrids are compositions of two groups.
public protocol KeyExchangeGroup: Sendable {
    var group: NamedGroup { get }
    /// Client side: a fresh key pair; `share` goes into key_share.
    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange)
    /// Server side: validates the client's share and answers it. Throws a `peerMisbehaved`
    /// error (illegal_parameter) for a share that fails any check of PROTOCOL.md §1.
    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes)
    /// Whether `respond` may run on the connection's thread. False (a key exchange in an HSM,
    /// whose every call is a round trip to the token) pauses the server's handshake with a
    /// `keyExchange` decision, and `respondAsynchronously` runs off that thread.
    var isSynchronous: Bool { get }
    func respondAsynchronously(toClientShare share: [UInt8]) async throws(TLSError) -> (share: [UInt8], secret: SecretBytes)
}

extension KeyExchangeGroup {
    public var isSynchronous: Bool { true }
    public func respondAsynchronously(toClientShare share: [UInt8]) async throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        try respond(toClientShare: share)
    }
}

/// The client's half of a key exchange awaiting the server's share.
public protocol PendingKeyExchange: Sendable {
    var group: NamedGroup { get }
    func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes
}

extension CryptoPrimitives {
    public func makeIncrementalHash(_ algorithm: HashAlgorithm) -> any IncrementalHash {
        BufferingHash(primitives: self, algorithm: algorithm)
    }
}

/// The default running hash: keeps the bytes and hashes them all on `finalize`.
private struct BufferingHash: IncrementalHash {
    let primitives: any CryptoPrimitives
    let algorithm: HashAlgorithm
    var bytes: [UInt8] = []
    mutating func update(_ more: UnsafeRawBufferPointer) { bytes.append(contentsOf: more) }
    func finalize() -> [UInt8] { primitives.hash(algorithm, bytes) }
}

/// A private key that signs handshake messages: in memory, or in an HSM.
///
/// Keys that answer at once (in memory) sign inside the handshake. Keys that wait on a device
/// or a network (`isSynchronous == false`) never block the core: the connection pauses with
/// `TLSEvent.decisionNeeded`, the caller runs `signAsynchronously` wherever it likes, and
/// resumes the handshake with `TLSConnection.resume(with: .signature(…))`.
public protocol SigningKey: Sendable {
    /// Schemes this key can produce, in preference order.
    var supportedSchemes: [SignatureScheme] { get }
    /// Whether `sign` may be called on the connection's thread. Defaults to true.
    var isSynchronous: Bool { get }
    /// Signs `message` (the full to-be-signed content; the key hashes as the scheme says).
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8]
    /// Signs without blocking the caller's thread. Defaults to `sign`.
    func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8]
}

extension SigningKey {
    public var isSynchronous: Bool { true }
    public func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        try sign(message, scheme: scheme)
    }

    /// The first of our schemes that the peer offered.
    public func chooseScheme(offered: [SignatureScheme]) -> SignatureScheme? {
        supportedSchemes.first { offered.contains($0) }
    }
}

/// A certificate chain and the key for its leaf.
public struct CertifiedKey: Sendable {
    /// DER certificates, leaf first.
    public var chain: [[UInt8]]
    public var key: any SigningKey
    /// The schemes the chain's certificates are signed with, when known; a server prefers a
    /// chain the client's signature_algorithms_cert covers (RFC 8446 §4.4.2.2).
    public var chainSignatureSchemes: [SignatureScheme]?
    /// DER issuer names of the chain's certificates, when known: a client picks a certificate
    /// whose chain reaches one of the CAs a server lists in certificate_authorities.
    public var issuerNames: [[UInt8]]?
    /// The leaf's OCSP response to staple for clients that ask (status_request), kept fresh by
    /// whoever fetches it; nil staples nothing.
    public var ocspStaple: OCSPStaple?
    public init(chain: [[UInt8]], key: any SigningKey, chainSignatureSchemes: [SignatureScheme]? = nil, issuerNames: [[UInt8]]? = nil) {
        self.chain = chain
        self.key = key
        self.chainSignatureSchemes = chainSignatureSchemes
        self.issuerNames = issuerNames
    }
}

/// A stapled OCSP response that its owner may replace at any time (a background refresh before
/// it expires); connections read the current one.
public final class OCSPStaple: Sendable {
    private let current: Mutex<[UInt8]?>
    public init(_ response: [UInt8]? = nil) { current = Mutex(response) }
    public var response: [UInt8]? { current.withLock { $0 } }
    public func update(_ response: [UInt8]?) { current.withLock { $0 = response } }
}

/// Who is being verified.
///
/// An enum on purpose, and closed: TLS has exactly two roles, so a switch over them is meant to
/// be exhaustive (what a server name means exists only on the server side).
public enum PeerRole: Sendable, Hashable {
    case server(name: String?)
    case client
}

/// The public key of a verified peer, able to check its handshake signatures.
public protocol PeerPublicKey: Sendable {
    /// Throws `.misbehaved(.sentInvalidSignature)` (decrypt_error) when the signature is invalid.
    func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError)
    /// The same for a TLS 1.2 signature (ServerKeyExchange, CertificateVerify), where a code point
    /// names a hash and a signature algorithm only: `ecdsa_secp256r1_sha256` (0x0403) is ECDSA
    /// with SHA-256 on whatever curve the certificate's key is on (RFC 5246 §7.4.1.4.1, RFC 8422
    /// §5.10; RFC 8446 §4.2.3 binds the curve only in TLS 1.3). BoringSSL servers sign that way
    /// with P-384 keys. Defaults to `verify`.
    func verifyTLS12(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError)
    /// Schemes this key can be verified with.
    var supportedSchemes: [SignatureScheme] { get }
    /// The subjectPublicKeyInfo DER of the certificate this key was taken from. When a
    /// verifier's answer carries it, the handshake checks it against the certificate the peer
    /// sent: an answer whose key is not that certificate's is refused. Defaults to nil (not
    /// stated, not checked); Q-SSL's X.509 verifier always states it.
    var subjectPublicKeyInfo: [UInt8]? { get }
}

extension PeerPublicKey {
    public var subjectPublicKeyInfo: [UInt8]? { nil }

    public func verifyTLS12(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        try verify(signature: signature, scheme: scheme, message: message)
    }
}

/// Verifies a peer's certificate chain and yields its leaf key and identity.
///
/// A verifier that can answer at once (local trust anchors, CRLs in memory) is asked in place.
/// One that must wait on the network (OCSP) sets `isSynchronous` to false: the handshake pauses
/// with `TLSEvent.decisionNeeded`, `verifyPeerAsynchronously` runs wherever the caller likes,
/// and `TLSConnection.resume(with: .peerVerified(…))` goes on.
public protocol CertificateVerifier: Sendable {
    /// Signature schemes to offer in signature_algorithms.
    var supportedSchemes: [SignatureScheme] { get }
    /// Signature schemes accepted on certificates, offered in signature_algorithms_cert.
    var supportedCertificateSchemes: [SignatureScheme] { get }
    /// Whether `verifyPeer` may run on the connection's thread. Defaults to true.
    var isSynchronous: Bool { get }
    /// DER subject names of the trust anchors, sent in certificate_authorities when this
    /// verifier checks client certificates. Defaults to none (the list is then omitted).
    var acceptableIssuerNames: [[UInt8]] { get }
    /// Verifies the request's chain (DER, leaf first) for its role. Throws a
    /// `certificateRejected` error, which becomes the alert.
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer
    /// Verifies without blocking the caller's thread. Defaults to `verifyPeer`.
    func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer
    /// A digest of everything that decides which peers this verifier accepts: its trust
    /// anchors, its policies (allowed algorithms, PQ-only chains), its revocation settings; not
    /// the clock. A resumable session records the digest of the verifier that authenticated its
    /// peer and is resumed only under a verifier with the same digest (a full handshake
    /// otherwise), so that a stricter trust policy is never bypassed by resuming a session made
    /// under a looser one. Two verifiers that may accept different peers must have different
    /// digests; use a cryptographic hash of the policy's canonical bytes.
    var trustPolicyDigest: [UInt8] { get }
    /// Checks, when a session is resumed, that the peer it authenticated is still acceptable now:
    /// the stored leaf (`identity.verifiedChain.first`) not expired, not revoked by what is at
    /// hand. Throws a `certificateRejected` error to refuse the resumption (the handshake then
    /// goes on as a full one). There is no default: a verifier that wraps another forwards it
    /// (and folds its own acceptance rules into `trustPolicyDigest`).
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError)
}

extension CertificateVerifier {
    public var isSynchronous: Bool { true }
    public var acceptableIssuerNames: [[UInt8]] { [] }
    public func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        try verifyPeer(request)
    }
    /// Verifies a chain with nothing stapled (tools and tests).
    public func verify(chain: [[UInt8]], role: PeerRole) throws(TLSError) -> VerifiedPeer {
        try verifyPeer(PeerVerificationRequest(chain: chain, role: role, verifier: self))
    }
}

/// What a TLS stack needs from its crypto implementation.
public struct CryptoProvider: Sendable {
    public var primitives: any CryptoPrimitives
    /// Every key exchange group this provider implements.
    public var keyExchangeGroups: [any KeyExchangeGroup]

    public init(primitives: any CryptoPrimitives, keyExchangeGroups: [any KeyExchangeGroup]) {
        self.primitives = primitives
        self.keyExchangeGroups = keyExchangeGroups
    }

    public func keyExchange(for group: NamedGroup) -> (any KeyExchangeGroup)? {
        keyExchangeGroups.first { $0.group == group }
    }
}

/// Constant-time comparison of two byte strings (lengths are public).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    // The accumulator passes an optimisation barrier each step (as the P-384 code's masks do),
    // so the compiler cannot turn the loop into one that stops at the first difference.
    var diff: UInt64 = 0
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            for i in 0..<a.count { diff = qssl_value_barrier(diff | UInt64(a[i] ^ b[i])) }
        }
    }
    return qssl_value_barrier(diff) == 0
}
