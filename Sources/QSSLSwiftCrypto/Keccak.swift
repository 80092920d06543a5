/// Keccak-f[1600] and the SHAKE XOFs (FIPS 202), which ML-DSA-44 verification needs and
/// swift-crypto does not expose.
struct SHAKE {
    private var state = [UInt64](repeating: 0, count: 25)
    private let rate: Int
    private var buffer: [UInt8] = []
    private var squeezed: [UInt8] = []
    private var squeezeOffset = 0
    private var finalized = false

    static func shake128() -> SHAKE { SHAKE(rate: 168) }
    static func shake256() -> SHAKE { SHAKE(rate: 136) }
    private init(rate: Int) { self.rate = rate }

    mutating func absorb<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        while buffer.count >= rate {
            absorbBlock(buffer.prefix(rate))
            buffer.removeFirst(rate)
        }
    }

    mutating func squeeze(_ count: Int) -> [UInt8] {
        if !finalized {
            var block = buffer
            block.append(0x1F)
            block.append(contentsOf: repeatElement(0, count: rate - block.count))
            block[rate - 1] |= 0x80
            absorbBlock(block[...])
            finalized = true
            squeezed = stateBytes()
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            if squeezeOffset == rate {
                Self.permute(&state)
                squeezed = stateBytes()
                squeezeOffset = 0
            }
            let take = min(count - out.count, rate - squeezeOffset)
            out.append(contentsOf: squeezed[squeezeOffset..<(squeezeOffset + take)])
            squeezeOffset += take
        }
        return out
    }

    static func hash256(_ input: [UInt8], count: Int) -> [UInt8] {
        var s = SHAKE.shake256()
        s.absorb(input)
        return s.squeeze(count)
    }

    private mutating func absorbBlock(_ block: ArraySlice<UInt8>) {
        var i = block.startIndex
        for lane in 0..<(rate / 8) {
            var v: UInt64 = 0
            for b in 0..<8 { v |= UInt64(block[i + b]) << (8 * UInt64(b)) }
            state[lane] ^= v
            i += 8
        }
        Self.permute(&state)
    }

    private func stateBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rate)
        for lane in 0..<(rate / 8) {
            for b in 0..<8 { out.append(UInt8(truncatingIfNeeded: state[lane] >> (8 * UInt64(b)))) }
        }
        return out
    }

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000, 0x0000_0000_0000_808B, 0x0000_0000_8000_0001,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8009, 0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003, 0x8000_0000_0000_8002, 0x8000_0000_0000_0080,
        0x0000_0000_0000_800A, 0x8000_0000_8000_000A, 0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008
    ]
    private static let rotations: [UInt64] = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14]

    private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 { n == 0 ? x : (x << n) | (x >> (64 - n)) }

    static func permute(_ a: inout [UInt64]) {
        var c = [UInt64](repeating: 0, count: 5)
        var b = [UInt64](repeating: 0, count: 25)
        for round in 0..<24 {
            for x in 0..<5 { c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1)
                for y in 0..<5 { a[x + 5 * y] ^= d }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    // π: B[y, 2x + 3y] = ROT(A[x, y], r[x, y])
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], rotations[x + 5 * y])
                }
            }
            for x in 0..<5 {
                for y in 0..<5 { a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]) }
            }
            a[0] ^= roundConstants[round]
        }
    }
}
