/// ML-DSA-44 signature verification (FIPS 204, Algorithms 3 and 8), which swift-crypto lacks.
/// Verification only: Q-SSL never signs with ML-DSA-44, but accepts peers that do
/// (PROTOCOL.md §2: "mldsa44 verify").
public struct MLDSA44PublicKey: Sendable, Hashable {
    static let q: Int64 = 8_380_417
    static let k = 4, l = 4, tau = 39, gamma1: Int64 = 1 << 17, gamma2: Int64 = (8_380_417 - 1) / 88, beta: Int64 = 78, omega = 80
    static let publicKeyLength = 32 + 4 * 320
    static let signatureLength = 32 + 4 * 576 + 80 + 4

    public let rawRepresentation: [UInt8]
    private let rho: [UInt8]
    private let t1: [[Int64]]

    public init(rawRepresentation raw: [UInt8]) throws(MLDSA44Error) {
        guard raw.count == Self.publicKeyLength else { throw .invalidLength }
        rawRepresentation = raw
        rho = Array(raw[0..<32])
        t1 = (0..<Self.k).map { i in Self.unpack(raw[(32 + 320 * i)..<(32 + 320 * (i + 1))], bits: 10) }
    }

    /// FIPS 204 Algorithm 3: pure ML-DSA with a context string of at most 255 bytes.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8], context: [UInt8] = []) -> Bool {
        guard context.count <= 255, signature.count == Self.signatureLength else { return false }
        let prime = [0, UInt8(context.count)] + context + message
        // Algorithm 8.
        let cTilde = Array(signature[0..<32])
        var z: [[Int64]] = []
        for i in 0..<Self.l {
            let packed = Self.unpack(signature[(32 + 576 * i)..<(32 + 576 * (i + 1))], bits: 18)
            z.append(packed.map { Self.gamma1 - $0 })
        }
        guard z.allSatisfy({ $0.allSatisfy { abs($0) < Self.gamma1 - Self.beta } }) else { return false }
        guard let h = Self.hintUnpack(Array(signature[(32 + 576 * Self.l)...])) else { return false }

        let tr = SHAKE.hash256(rawRepresentation, count: 64)
        let mu = SHAKE.hash256(tr + prime, count: 64)
        let cHat = Self.ntt(Self.sampleInBall(cTilde))
        let zHat = z.map { Self.ntt($0.map { ($0 % Self.q + Self.q) % Self.q }) }
        var w1Encoded: [UInt8] = []
        for i in 0..<Self.k {
            var acc = [Int64](repeating: 0, count: 256)
            for j in 0..<Self.l {
                let a = Self.rejNTTPoly(rho + [UInt8(j), UInt8(i)])
                for n in 0..<256 { acc[n] = (acc[n] + a[n] * zHat[j][n]) % Self.q }
            }
            let t1Hat = Self.ntt(t1[i].map { ($0 << 13) % Self.q })
            for n in 0..<256 { acc[n] = ((acc[n] - cHat[n] * t1Hat[n] % Self.q) % Self.q + Self.q) % Self.q }
            let w = Self.inverseNTT(acc)
            let w1 = (0..<256).map { Self.useHint(h[i][$0], w[$0]) }
            w1Encoded += Self.pack(w1, bits: 6)
        }
        let cTildePrime = SHAKE.hash256(mu + w1Encoded, count: 32)
        var diff: UInt8 = 0
        for i in 0..<32 { diff |= cTilde[i] ^ cTildePrime[i] }
        return diff == 0
    }

    // MARK: - Encodings (FIPS 204 §7.1, little-endian bit order)

    static func unpack(_ bytes: ArraySlice<UInt8>, bits: Int) -> [Int64] {
        var out = [Int64](repeating: 0, count: 256)
        var acc: UInt64 = 0
        var accBits = 0
        var i = 0
        for byte in bytes {
            acc |= UInt64(byte) << UInt64(accBits)
            accBits += 8
            while accBits >= bits && i < 256 {
                out[i] = Int64(acc & ((1 << UInt64(bits)) - 1))
                acc >>= UInt64(bits)
                accBits -= bits
                i += 1
            }
        }
        return out
    }

    static func pack(_ values: [Int64], bits: Int) -> [UInt8] {
        var out: [UInt8] = []
        var acc: UInt64 = 0
        var accBits = 0
        for v in values {
            acc |= UInt64(v) << UInt64(accBits)
            accBits += bits
            while accBits >= 8 {
                out.append(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                accBits -= 8
            }
        }
        return out
    }

    /// Algorithm 21 HintBitUnpack; nil for a malformed hint.
    static func hintUnpack(_ y: [UInt8]) -> [[Int]]? {
        var h = [[Int]](repeating: [Int](repeating: 0, count: 256), count: k)
        var index = 0
        for i in 0..<k {
            let end = Int(y[omega + i])
            guard end >= index, end <= omega else { return nil }
            let first = index
            while index < end {
                if index > first && y[index - 1] >= y[index] { return nil }
                h[i][Int(y[index])] = 1
                index += 1
            }
        }
        for i in index..<omega where y[i] != 0 { return nil }
        return h
    }

    // MARK: - Sampling

    /// Algorithm 30 RejNTTPoly over SHAKE128(rho ‖ s ‖ r).
    static func rejNTTPoly(_ seed: [UInt8]) -> [Int64] {
        var xof = SHAKE.shake128()
        xof.absorb(seed)
        var out: [Int64] = []
        out.reserveCapacity(256)
        while out.count < 256 {
            let b = xof.squeeze(168)
            var j = 0
            while j + 3 <= b.count && out.count < 256 {
                let z = Int64(b[j]) | Int64(b[j + 1]) << 8 | Int64(b[j + 2] & 0x7F) << 16
                if z < q { out.append(z) }
                j += 3
            }
        }
        return out
    }

    /// Algorithm 29 SampleInBall.
    static func sampleInBall(_ seed: [UInt8]) -> [Int64] {
        var xof = SHAKE.shake256()
        xof.absorb(seed)
        let signBytes = xof.squeeze(8)
        var signs: UInt64 = 0
        for (i, b) in signBytes.enumerated() { signs |= UInt64(b) << (8 * UInt64(i)) }
        var c = [Int64](repeating: 0, count: 256)
        for i in (256 - tau)..<256 {
            var j = Int(xof.squeeze(1)[0])
            while j > i { j = Int(xof.squeeze(1)[0]) }
            c[i] = c[j]
            c[j] = (signs >> UInt64(i + tau - 256)) & 1 == 1 ? q - 1 : 1
        }
        return c
    }

    // MARK: - Rounding (Algorithms 36, 40)

    static func useHint(_ hint: Int, _ r: Int64) -> Int64 {
        let m: Int64 = (q - 1) / (2 * gamma2)
        var r0 = r % (2 * gamma2)
        if r0 > gamma2 { r0 -= 2 * gamma2 }
        var r1: Int64
        if r - r0 == q - 1 {
            r1 = 0
            r0 -= 1
        } else {
            r1 = (r - r0) / (2 * gamma2)
        }
        guard hint == 1 else { return r1 }
        return r0 > 0 ? (r1 + 1) % m : (r1 - 1 + m) % m
    }

    // MARK: - NTT (Algorithms 41, 42)

    static let zetas: [Int64] = {
        var z = [Int64](repeating: 0, count: 256)
        for i in 0..<256 {
            var rev = 0
            for b in 0..<8 where i & (1 << b) != 0 { rev |= 1 << (7 - b) }
            var acc: Int64 = 1
            for _ in 0..<rev { acc = acc * 1753 % q }
            z[i] = acc
        }
        return z
    }()

    static func ntt(_ input: [Int64]) -> [Int64] {
        var w = input
        var m = 0
        var len = 128
        while len >= 1 {
            var start = 0
            while start < 256 {
                m += 1
                let z = zetas[m]
                for j in start..<(start + len) {
                    let t = z * w[j + len] % q
                    w[j + len] = (w[j] - t + q) % q
                    w[j] = (w[j] + t) % q
                }
                start += 2 * len
            }
            len /= 2
        }
        return w
    }

    static func inverseNTT(_ input: [Int64]) -> [Int64] {
        var w = input
        var m = 256
        var len = 1
        while len < 256 {
            var start = 0
            while start < 256 {
                m -= 1
                let z = q - zetas[m]
                for j in start..<(start + len) {
                    let t = w[j]
                    w[j] = (t + w[j + len]) % q
                    w[j + len] = z * ((t - w[j + len] + q) % q) % q
                }
                start += 2 * len
            }
            len *= 2
        }
        return w.map { $0 * 8_347_681 % q }
    }
}

public enum MLDSA44Error: Error, Sendable {
    case invalidLength
}
