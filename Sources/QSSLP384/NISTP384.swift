import CQSSLBoringAEAD
import CQSSLConstantTime
import Crypto
import Foundation

/// Q-SSL's own P-384 (secp384r1): ECDH and ECDSA with constant-time arithmetic on six 64-bit
/// limbs, complete addition formulas and a precomputed base-point table. swift-crypto stays the
/// reference it is tested against (differential tests, Wycheproof vectors, RFC 6979 answers).
///
/// Encodings are the ones TLS uses: private keys as 48-byte big-endian scalars, public keys as
/// 97-byte uncompressed X9.63 points (compressed points and the point at infinity are refused,
/// PROTOCOL.md §1), signatures as DER `ECDSA-Sig-Value` or raw r ‖ s.
public enum NISTP384 {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// A private scalar that is not in [1, n − 1] or not 48 bytes.
        case invalidPrivateKey
        /// Not a 97-byte uncompressed point on the curve.
        case invalidPublicKey(String)
        /// Not a strict DER ECDSA-Sig-Value (or raw r ‖ s) with 1 ≤ r, s < n.
        case invalidSignatureEncoding(String)
        /// The key agreement produced the point at infinity (impossible for valid keys).
        case pointAtInfinity

        public var description: String {
            switch self {
            case .invalidPrivateKey: return "P-384 private key out of range"
            case .invalidPublicKey(let why): return "P-384 public key rejected: \(why)"
            case .invalidSignatureEncoding(let why): return "ECDSA P-384 signature rejected: \(why)"
            case .pointAtInfinity: return "P-384 key agreement gave the point at infinity"
            }
        }
    }

    public static let scalarLength = 48
    public static let pointLength = 97

    /// Computes the base-point table now (about 2 ms) instead of on the first handshake.
    public static func warmUp() { _ = BaseTable.shared }

    public struct PrivateKey: Sendable {
        /// d on the heap, overwritten when the last copy of the key goes away.
        private let storage: SecretScalar
        /// Plain limbs of d, 1 ≤ d < n.
        var d: Scalar { storage.value }

        /// A fresh random key.
        public init() {
            var rng = SystemRandomNumberGenerator()
            while true {
                var candidate = Scalar(rng.next(), rng.next(), rng.next(), rng.next(), rng.next(), rng.next())
                if candidate.isBelowModulusPublic && !candidate.isZeroPublic {
                    storage = SecretScalar(candidate)
                    wipeScalar(&candidate)
                    return
                }
                wipeScalar(&candidate)
            }
        }

        /// A key from its 48-byte big-endian scalar.
        public init(rawRepresentation raw: some Collection<UInt8>) throws(Error) {
            guard raw.count == NISTP384.scalarLength else { throw .invalidPrivateKey }
            var bytes = Array(raw)
            defer { wipe(&bytes) }
            let scalar = bytes.withUnsafeBytes { Scalar.plain(bigEndian: $0) }
            guard var scalar, !scalar.isZeroPublic else { throw .invalidPrivateKey }
            storage = SecretScalar(scalar)
            wipeScalar(&scalar)
        }

        /// The 48-byte big-endian scalar.
        public var rawRepresentation: [UInt8] { d.bigEndianBytes }

        public var publicKey: PublicKey {
            // d·G is never infinity for 1 ≤ d < n.
            PublicKey(point: ScalarMult.base(d).affine()!)
        }

        /// ECDH: the x coordinate of d·Q, 48 bytes (SEC 1 §3.3.1; RFC 8446 §7.4.2).
        public func sharedSecret(with peer: PublicKey) throws(Error) -> [UInt8] {
            guard let shared = ScalarMult.variable(d, peer.point.projective).affine() else { throw .pointAtInfinity }
            return shared.x.plain.bigEndianBytes
        }

        /// ECDSA over SHA-384 of `message`.
        public func signature(for message: [UInt8], hedged: Bool = true) -> Signature {
            signature(forDigest: Array(SHA384.hash(data: message)), hedged: hedged)
        }

        /// ECDSA over a digest. The nonce is RFC 6979's HMAC-DRBG (SHA-384) output; `hedged` adds
        /// 48 fresh random bytes to its seed (RFC 6979 §3.6), so that a fault or a weak RNG alone
        /// does not reveal the key.
        public func signature(forDigest digest: [UInt8], hedged: Bool = true) -> Signature {
            var extra: [UInt8] = []
            defer { wipe(&extra) }
            if hedged {
                // BoringSSL's per-thread DRBG (seeded from the kernel, fork-safe): the system
                // generator cost a getrandom call per 8 bytes, six per signature.
                extra = [UInt8](repeating: 0, count: 48)
                extra.withUnsafeMutableBufferPointer { cqssl_random_bytes($0.baseAddress!, 48) }
            }
            return signature(forDigest: digest, additionalData: extra)
        }

        /// RFC 6979 with optional additional data k' (empty: the deterministic variant).
        func signature(forDigest digest: [UInt8], additionalData: [UInt8]) -> Signature {
            let z = Scalar.reducedOnce(NISTP384.bits2int(digest))
            var nonces = RFC6979(privateKey: d, digestInteger: z, additionalData: additionalData)
            defer { nonces.wipeState() }
            while true {
                var k = nonces.next()
                defer { wipeScalar(&k) }
                // r or s zero (probability about 2^-384): the next candidate, as RFC 6979 §3.2 h.3 says
                if let signature = signature(digestInteger: z, nonce: k) { return signature }
            }
        }

        /// The signature with nonce k (plain limbs, 1 ≤ k < n); nil when r or s is zero.
        /// k·G is computed in constant time; s = k⁻¹(z + r·d) with Fermat inversion.
        func signature(digestInteger z: Scalar, nonce k: Scalar) -> Signature? {
            guard let point = ScalarMult.base(k).affine() else { return nil }
            // r = x mod n; x < p < 2n, so one conditional subtraction suffices
            let xPlain = point.x.plain
            // r and s are the signature: public
            let r = Scalar.reducedOnce(Scalar(xPlain.v0, xPlain.v1, xPlain.v2, xPlain.v3, xPlain.v4, xPlain.v5)).declassified
            if r.isZeroPublic { return nil }
            let kInv = k.montgomery.inverted()
            let s = Scalar.mul(kInv, Scalar.add(z.montgomery, Scalar.mul(r.montgomery, d.montgomery))).plain.declassified
            if s.isZeroPublic { return nil }
            return Signature(r: r, s: s)
        }
    }

    public struct PublicKey: Sendable {
        let point: AffinePoint

        init(point: AffinePoint) { self.point = point }

        /// From a 97-byte uncompressed point (0x04 ‖ X ‖ Y), which must be on the curve.
        public init(x963Representation raw: some Collection<UInt8>) throws(Error) {
            let bytes = Array(raw)
            guard bytes.count == NISTP384.pointLength else {
                throw .invalidPublicKey(
                    bytes.count == 1 && bytes.first == 0
                        ? "the point at infinity"
                        : bytes.count == 49 ? "compressed points are not accepted" : "wrong length \(bytes.count)")
            }
            guard bytes[0] == 0x04 else { throw .invalidPublicKey("not an uncompressed point (first byte \(bytes[0]))") }
            let coordinates = bytes.withUnsafeBytes { raw -> (FieldElement?, FieldElement?) in
                (
                    FieldElement.plain(bigEndian: UnsafeRawBufferPointer(rebasing: raw[1..<49])),
                    FieldElement.plain(bigEndian: UnsafeRawBufferPointer(rebasing: raw[49..<97]))
                )
            }
            guard let x = coordinates.0, let y = coordinates.1 else { throw .invalidPublicKey("coordinate not below p") }
            let point = AffinePoint(x: x.montgomery, y: y.montgomery)
            guard point.isOnCurve else { throw .invalidPublicKey("not on the curve") }
            self.point = point
        }

        /// 0x04 ‖ X ‖ Y.
        public var x963Representation: [UInt8] {
            var out: [UInt8] = [0x04]
            out.reserveCapacity(NISTP384.pointLength)
            out += point.x.plain.bigEndianBytes
            out += point.y.plain.bigEndianBytes
            return out
        }

        public func isValidSignature(_ signature: Signature, for message: [UInt8]) -> Bool {
            isValidSignature(signature, forDigest: Array(SHA384.hash(data: message)))
        }

        /// ECDSA verification (SEC 1 §4.1.4), variable time: every input is public.
        public func isValidSignature(_ signature: Signature, forDigest digest: [UInt8]) -> Bool {
            let z = Scalar.reducedOnce(NISTP384.bits2int(digest))
            let w = signature.s.montgomery.inverted()
            let u1 = Scalar.mul(z.montgomery, w).plain
            let u2 = Scalar.mul(signature.r.montgomery, w).plain
            let sum = ScalarMult.verificationSum(u1, u2, point.projective)
            if sum.isInfinityMask != 0 { return false }
            // x(R) mod n == r  ⇔  X == r·Z or (when r + n < p) X == (r + n)·Z, without inverting Z
            let r = signature.r
            let rField = FieldElement(r.v0, r.v1, r.v2, r.v3, r.v4, r.v5).montgomery
            if FieldElement.mul(rField, sum.z).equalMask(sum.x) != 0 { return true }
            // r + n as a field element, if below p
            let n = Scalar.modulus
            var c: UInt64 = 0
            let a0: UInt64
            let a1: UInt64
            let a2: UInt64
            let a3: UInt64
            let a4: UInt64
            let a5: UInt64
            (c, a0) = limbAdd(r.v0, n.v0, c)
            (c, a1) = limbAdd(r.v1, n.v1, c)
            (c, a2) = limbAdd(r.v2, n.v2, c)
            (c, a3) = limbAdd(r.v3, n.v3, c)
            (c, a4) = limbAdd(r.v4, n.v4, c)
            (c, a5) = limbAdd(r.v5, n.v5, c)
            guard c == 0 else { return false }
            let rPlusN = FieldElement(a0, a1, a2, a3, a4, a5)
            guard rPlusN.isBelowModulusPublic else { return false }
            return FieldElement.mul(rPlusN.montgomery, sum.z).equalMask(sum.x) != 0
        }
    }

    /// An ECDSA signature: 1 ≤ r, s < n.
    public struct Signature: Sendable, Equatable {
        let r: Scalar
        let s: Scalar

        init(r: Scalar, s: Scalar) {
            self.r = r
            self.s = s
        }

        public static func == (a: Signature, b: Signature) -> Bool {
            a.r.equalMask(b.r) != 0 && a.s.equalMask(b.s) != 0
        }

        /// From r ‖ s, 48 bytes each (IEEE P1363).
        public init(rawRepresentation raw: some Collection<UInt8>) throws(Error) {
            let bytes = Array(raw)
            guard bytes.count == 96 else { throw .invalidSignatureEncoding("raw signature of \(bytes.count) bytes, not 96") }
            try self.init(r: Array(bytes[0..<48]), s: Array(bytes[48..<96]))
        }

        init(r rBytes: [UInt8], s sBytes: [UInt8]) throws(Error) {
            func scalar(_ b: [UInt8], _ name: String) throws(Error) -> Scalar {
                guard b.count == 48, let v = b.withUnsafeBytes({ Scalar.plain(bigEndian: $0) }) else {
                    throw .invalidSignatureEncoding("\(name) not below n")
                }
                guard !v.isZeroPublic else { throw .invalidSignatureEncoding("\(name) is zero") }
                return v
            }
            r = try scalar(rBytes, "r")
            s = try scalar(sBytes, "s")
        }

        /// From a strict DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }, minimal
        /// encodings, positive, nothing trailing.
        public init(derRepresentation raw: some Collection<UInt8>) throws(Error) {
            let der = Array(raw)
            var reader = DERReader(bytes: der)
            let body = try reader.element(tag: 0x30)
            guard reader.atEnd else { throw .invalidSignatureEncoding("bytes after the SEQUENCE") }
            var inner = DERReader(bytes: body)
            let r = try inner.positiveInteger()
            let s = try inner.positiveInteger()
            guard inner.atEnd else { throw .invalidSignatureEncoding("more than two INTEGERs") }
            try self.init(r: r, s: s)
        }

        /// r ‖ s, 48 bytes each.
        public var rawRepresentation: [UInt8] { r.bigEndianBytes + s.bigEndianBytes }

        /// DER ECDSA-Sig-Value.
        public var derRepresentation: [UInt8] {
            func integer(_ v: [UInt8]) -> [UInt8] {
                var m = Array(v.drop(while: { $0 == 0 }))
                if m.isEmpty { m = [0] }
                if m[0] & 0x80 != 0 { m.insert(0, at: 0) }
                return [0x02, UInt8(m.count)] + m
            }
            let content = integer(r.bigEndianBytes) + integer(s.bigEndianBytes)
            return [0x30, UInt8(content.count)] + content  // at most 102 bytes: short-form length
        }
    }

    /// bits2int (RFC 6979 §2.3.2) for qlen = 384: the leftmost 384 bits of the digest.
    static func bits2int(_ digest: [UInt8]) -> Scalar {
        var bytes = Array(digest.prefix(48))
        if bytes.count < 48 { bytes = [UInt8](repeating: 0, count: 48 - bytes.count) + bytes }
        let l = bytes.withUnsafeBytes { limbsFromBigEndian($0) }
        return Scalar(l.0, l.1, l.2, l.3, l.4, l.5)
    }
}

/// A secret scalar on the heap, overwritten when it is freed. Never mutated otherwise.
final class SecretScalar: @unchecked Sendable {
    private(set) var value: Scalar
    init(_ value: Scalar) { self.value = value }
    deinit { wipeScalar(&value) }
}

/// Overwrites a secret scalar in place (qssl_cleanse: stores the optimiser cannot remove).
@inline(never) func wipeScalar(_ s: inout Scalar) {
    withUnsafeMutableBytes(of: &s) { buffer in qssl_cleanse(buffer.baseAddress, buffer.count) }
}

/// Overwrites a secret array this file allocated before it is freed (a buffer shared with a
/// caller is copied by the mutation and only the copy is zeroed: callers own their arrays).
@inline(never) func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in qssl_cleanse(buffer.baseAddress, buffer.count) }
}

/// Strict DER reading for the two shapes ECDSA signatures need.
struct DERReader {
    let bytes: [UInt8]
    var offset = 0

    var atEnd: Bool { offset == bytes.count }

    mutating func element(tag: UInt8) throws(NISTP384.Error) -> [UInt8] {
        guard offset + 2 <= bytes.count else { throw .invalidSignatureEncoding("truncated") }
        guard bytes[offset] == tag else { throw .invalidSignatureEncoding("unexpected tag \(bytes[offset])") }
        let first = bytes[offset + 1]
        offset += 2
        let length: Int
        if first < 0x80 {
            length = Int(first)
        } else if first == 0x81 {
            // long form is DER only for lengths ≥ 128
            guard offset < bytes.count, bytes[offset] >= 0x80 else { throw .invalidSignatureEncoding("non-minimal length") }
            length = Int(bytes[offset])
            offset += 1
        } else {
            throw .invalidSignatureEncoding("length form \(first) not accepted")
        }
        guard length <= bytes.count - offset else { throw .invalidSignatureEncoding("length beyond the data") }
        defer { offset += length }
        return Array(bytes[offset..<offset + length])
    }

    /// A non-negative, minimally encoded INTEGER of at most 48 significant bytes, left-padded to 48.
    mutating func positiveInteger() throws(NISTP384.Error) -> [UInt8] {
        let v = try element(tag: 0x02)
        guard !v.isEmpty else { throw .invalidSignatureEncoding("empty INTEGER") }
        guard v[0] & 0x80 == 0 else { throw .invalidSignatureEncoding("negative INTEGER") }
        if v.count > 1 && v[0] == 0 && v[1] & 0x80 == 0 { throw .invalidSignatureEncoding("non-minimal INTEGER") }
        let magnitude = v[0] == 0 ? Array(v.dropFirst()) : v
        guard magnitude.count <= 48 else { throw .invalidSignatureEncoding("INTEGER longer than 48 bytes") }
        return [UInt8](repeating: 0, count: 48 - magnitude.count) + magnitude
    }
}

/// RFC 6979 §3.2 HMAC-DRBG with SHA-384 (hlen = qlen = 384), with §3.6's additional data.
/// HMAC is BoringSSL's one-shot HMAC (CQSSLBoringAEAD), seven calls per signature: swift-crypto's
/// HMAC<SHA384> allocated and copied its key and digests for each. K and V are updated in place
/// and wiped; so are the concatenated inputs (which hold a copy of d). Not wiped: BoringSSL's
/// own stack copies inside HMAC, and the nonce's Montgomery form and inverse left on the stack
/// by the scalar arithmetic.
struct RFC6979 {
    private var key: [UInt8]
    private var v: [UInt8]

    init(privateKey d: Scalar, digestInteger h: Scalar, additionalData: [UInt8]) {
        v = [UInt8](repeating: 0x01, count: 48)
        key = [UInt8](repeating: 0x00, count: 48)
        var x = d.bigEndianBytes
        defer { wipe(&x) }
        let hBytes = h.bigEndianBytes
        rekey(v, [0x00], x, hBytes, additionalData)
        step()
        rekey(v, [0x01], x, hBytes, additionalData)
        step()
    }

    /// HMAC_K(parts…) into `out` (48 bytes).
    private func mac(_ parts: [[UInt8]], into out: inout [UInt8]) {
        var input: [UInt8] = []
        input.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { input += part }
        defer { wipe(&input) }
        let ok = key.withUnsafeBufferPointer { k in
            input.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in cqssl_hmac(1, k.baseAddress, k.count, d.baseAddress, d.count, o.baseAddress!) }
            }
        }
        precondition(ok == 1, "HMAC-SHA-384 failed")  // only on allocation failure inside BoringSSL
    }

    /// K = HMAC_K(parts…).
    private mutating func rekey(_ parts: [UInt8]...) {
        var k = [UInt8](repeating: 0, count: 48)
        mac(parts, into: &k)
        wipe(&key)
        key = k
    }

    /// V = HMAC_K(V).
    private mutating func step() {
        var next = [UInt8](repeating: 0, count: 48)
        mac([v], into: &next)
        wipe(&v)
        v = next
    }

    /// The next candidate k in [1, n − 1] (plain limbs).
    mutating func next() -> Scalar {
        while true {
            step()
            // bits2int of the 48-byte V, read in place (no copy of the nonce left behind)
            let l = v.withUnsafeBytes { limbsFromBigEndian($0) }
            let k = Scalar(l.0, l.1, l.2, l.3, l.4, l.5)
            // prepare the next candidate (a retry when r or s is zero, §3.2 step h.3)
            rekey(v, [0x00])
            step()
            if k.isBelowModulusPublic && !k.isZeroPublic { return k }
        }
    }

    /// Overwrites V and K.
    mutating func wipeState() {
        wipe(&v)
        wipe(&key)
    }
}
