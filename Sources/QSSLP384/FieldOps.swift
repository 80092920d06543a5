// Conversions, constant-time helpers and inversion for the two Montgomery fields (FieldElement
// mod p, Scalar mod n). The arithmetic itself is in Field+Generated.swift.

import CQSSLConstantTime

/// All-ones when `x == 0`, else zero, without a branch.
@inline(__always) @usableFromInline
func isZeroMask(_ x: UInt64) -> UInt64 {
    // (x | -x) has its top bit set exactly when x != 0.
    let nonZeroBit = (x | (0 &- x)) &>> 63
    return qssl_value_barrier(nonZeroBit &- 1)
}

/// All-ones when `a == b`.
@inline(__always) @usableFromInline
func equalMask(_ a: UInt64, _ b: UInt64) -> UInt64 { isZeroMask(a ^ b) }

// 64-bit limb arithmetic with explicit carries, for the generated field code. Built on the
// standard library's full-width multiply and overflow-reporting add/sub rather than UInt128,
// whose unoptimised (debug) code is two orders of magnitude slower; optimised, both compile to
// the same mul/add/adc/sbb. No branches: a carry flag becomes 0 or 1 by reinterpreting the Bool.

/// 1 when `flag` is set, else 0, without a branch.
@inline(__always) @usableFromInline
func limbBit(_ flag: Bool) -> UInt64 { UInt64(unsafeBitCast(flag, to: UInt8.self)) }

/// a + b + c as (carry out, sum); the carry is 0, 1 or 2.
@inline(__always) @usableFromInline
func limbAdd(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> (UInt64, UInt64) {
    let (s1, o1) = a.addingReportingOverflow(b)
    let (s2, o2) = s1.addingReportingOverflow(c)
    return (limbBit(o1) &+ limbBit(o2), s2)
}

/// The double-limb value p = (high, low) plus x plus y, as (high, low); the caller guarantees
/// the sum fits in 128 bits.
@inline(__always) @usableFromInline
func limbAdd(_ p: (UInt64, UInt64), _ x: UInt64, _ y: UInt64) -> (UInt64, UInt64) {
    let (carry, low) = limbAdd(p.1, x, y)
    return (p.0 &+ carry, low)
}

/// a · b as (high, low).
@inline(__always) @usableFromInline
func limbProduct(_ a: UInt64, _ b: UInt64) -> (UInt64, UInt64) {
    let p = a.multipliedFullWidth(by: b)
    return (p.high, p.low)
}

/// a · b + x + y as (high, low): never above 2^128 − 1.
@inline(__always) @usableFromInline
func limbMulAdd(_ a: UInt64, _ b: UInt64, _ x: UInt64, _ y: UInt64) -> (UInt64, UInt64) {
    limbAdd(limbProduct(a, b), x, y)
}

/// a − b − borrow as (difference, borrow out); `borrow` is 0 or 1.
@inline(__always) @usableFromInline
func limbSub(_ a: UInt64, _ b: UInt64, _ borrow: UInt64) -> (UInt64, UInt64) {
    let (d1, o1) = a.subtractingReportingOverflow(b)
    let (d2, o2) = d1.subtractingReportingOverflow(borrow)
    return (d2, limbBit(o1) | limbBit(o2))
}

// m times a limb of the P-384 prime, each a sum of powers of two: shifts and one subtraction.

/// m · (2^64 − 1) = m·2^64 − m.
@inline(__always) @usableFromInline
func limbTimesAllOnes(_ m: UInt64) -> (UInt64, UInt64) {
    let (low, borrow) = limbSub(0, m, 0)
    return (m &- borrow, low)
}

/// m · (2^64 − 2^32) = m·2^64 − m·2^32.
@inline(__always) @usableFromInline
func limbTimes2p64m2p32(_ m: UInt64) -> (UInt64, UInt64) {
    let (low, borrow) = limbSub(0, m &<< 32, 0)
    return (m &- (m &>> 32) &- borrow, low)
}

/// m · (2^32 − 1) = m·2^32 − m.
@inline(__always) @usableFromInline
func limbTimes2p32m1(_ m: UInt64) -> (UInt64, UInt64) {
    let (low, borrow) = limbSub(m &<< 32, m, 0)
    return ((m &>> 32) &- borrow, low)
}

/// m · (2^64 − 2) = m·2^64 − 2m.
@inline(__always) @usableFromInline
func limbTimes2p64m2(_ m: UInt64) -> (UInt64, UInt64) {
    let (low, borrow) = limbSub(0, m &<< 1, 0)
    return (m &- (m &>> 63) &- borrow, low)
}

/// Six little-endian limbs read from / written to 48 big-endian bytes.
@inline(__always)
func limbsFromBigEndian(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) {
    precondition(bytes.count == 48)
    func limb(_ i: Int) -> UInt64 {
        var v: UInt64 = 0
        let base = 48 - 8 * (i + 1)
        for k in 0..<8 { v = (v << 8) | UInt64(bytes[base + k]) }
        return v
    }
    return (limb(0), limb(1), limb(2), limb(3), limb(4), limb(5))
}

@inline(__always)
func appendBigEndian(_ limbs: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64), to out: inout [UInt8]) {
    for v in [limbs.5, limbs.4, limbs.3, limbs.2, limbs.1, limbs.0] {
        for k in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: v &>> UInt64(8 * k))) }
    }
}

/// Shared by the two fields: what the generated code provides.
protocol MontgomeryField {
    var v0: UInt64 { get }
    var v1: UInt64 { get }
    var v2: UInt64 { get }
    var v3: UInt64 { get }
    var v4: UInt64 { get }
    var v5: UInt64 { get }
    init(_ v0: UInt64, _ v1: UInt64, _ v2: UInt64, _ v3: UInt64, _ v4: UInt64, _ v5: UInt64)
    static var modulus: Self { get }
    static var r2: Self { get }
    static var one: Self { get }
    static var zero: Self { get }
    static func mul(_ a: Self, _ b: Self) -> Self
    static func square(_ a: Self) -> Self
    static func add(_ a: Self, _ b: Self) -> Self
    static func sub(_ a: Self, _ b: Self) -> Self
}

extension FieldElement: MontgomeryField {}
extension Scalar: MontgomeryField {}

extension MontgomeryField {
    /// Plain limbs of a value below the modulus, or nil (variable time in whether it is in range,
    /// which is public: it is a parsing decision).
    @inline(__always)
    static func plain(bigEndian bytes: UnsafeRawBufferPointer) -> Self? {
        guard bytes.count == 48 else { return nil }
        let l = limbsFromBigEndian(bytes)
        let x = Self(l.0, l.1, l.2, l.3, l.4, l.5)
        return x.isBelowModulusPublic ? x : nil
    }

    /// Whether these plain limbs are below the modulus (constant time).
    @inline(__always)
    var isBelowModulusMask: UInt64 {
        let m = Self.modulus
        var borrow: UInt64 = 0
        (_, borrow) = limbSub(v0, m.v0, borrow)
        (_, borrow) = limbSub(v1, m.v1, borrow)
        (_, borrow) = limbSub(v2, m.v2, borrow)
        (_, borrow) = limbSub(v3, m.v3, borrow)
        (_, borrow) = limbSub(v4, m.v4, borrow)
        (_, borrow) = limbSub(v5, m.v5, borrow)
        return 0 &- borrow
    }

    /// For public decisions only (parsing, rejection sampling): declassified for the
    /// constant-time validation.
    var isBelowModulusPublic: Bool { qssl_ct_public(isBelowModulusMask) != 0 }

    /// Whether the value is zero, for public decisions only (declassified like isBelowModulus).
    var isZeroPublic: Bool { qssl_ct_public(isZeroMask) != 0 }

    /// This value declared public (a result the protocol reveals, such as ECDSA's r and s).
    var declassified: Self {
        Self(qssl_ct_public(v0), qssl_ct_public(v1), qssl_ct_public(v2), qssl_ct_public(v3), qssl_ct_public(v4), qssl_ct_public(v5))
    }

    /// Plain limbs → Montgomery form.
    @inline(__always) var montgomery: Self { Self.mul(self, Self.r2) }
    /// Montgomery form → plain limbs.
    @inline(__always) var plain: Self { Self.mul(self, Self(1, 0, 0, 0, 0, 0)) }

    /// Big-endian bytes of plain limbs.
    var bigEndianBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48)
        appendBigEndian((v0, v1, v2, v3, v4, v5), to: &out)
        return out
    }

    @inline(__always) func squared(times n: Int) -> Self {
        var x = self
        for _ in 0..<n { x = Self.square(x) }
        return x
    }

    /// All-ones when the value is zero (constant time).
    @inline(__always) var isZeroMask: UInt64 { QSSLP384.isZeroMask(v0 | v1 | v2 | v3 | v4 | v5) }

    /// All-ones when equal (constant time).
    @inline(__always) func equalMask(_ other: Self) -> UInt64 {
        QSSLP384.isZeroMask((v0 ^ other.v0) | (v1 ^ other.v1) | (v2 ^ other.v2) | (v3 ^ other.v3) | (v4 ^ other.v4) | (v5 ^ other.v5))
    }

    /// `a` where the mask is all-ones, `b` where it is zero.
    @inline(__always) static func select(_ mask: UInt64, _ a: Self, _ b: Self) -> Self {
        let mask = qssl_value_barrier(mask)
        return Self(
            (a.v0 & mask) | (b.v0 & ~mask), (a.v1 & mask) | (b.v1 & ~mask), (a.v2 & mask) | (b.v2 & ~mask),
            (a.v3 & mask) | (b.v3 & ~mask), (a.v4 & mask) | (b.v4 & ~mask), (a.v5 & mask) | (b.v5 & ~mask))
    }

    @inline(__always) static func neg(_ a: Self) -> Self { sub(zero, a) }

    /// a^e for a public exponent e (plain limbs), in fixed 4-bit windows: the sequence of
    /// operations depends only on e. The window table lives on the stack.
    func power(publicExponent e: Self) -> Self {
        withUnsafeTemporaryAllocation(of: Self.self, capacity: 16) { table in
            table.initialize(repeating: Self.one)
            table[1] = self
            for i in 2..<16 { table[i] = Self.mul(table[i - 1], self) }
            var r = Self.one
            for i in (0..<96).reversed() {
                let digit = Int(e.nibble(i))
                if i != 95 { r = r.squared(times: 4) }
                if digit != 0 { r = Self.mul(r, table[digit]) }
            }
            return r
        }
    }
}

extension FieldElement {
    /// a^(p-2) = a^-1 (0 for 0), by an addition chain over p − 2's runs of ones:
    /// 255 ones, 0, 32 ones, 64 zeros, 30 ones, 0, 1.
    func inverted() -> FieldElement {
        let x1 = self
        let x2 = FieldElement.mul(x1.squared(times: 1), x1)
        let x3 = FieldElement.mul(x2.squared(times: 1), x1)
        let x6 = FieldElement.mul(x3.squared(times: 3), x3)
        let x12 = FieldElement.mul(x6.squared(times: 6), x6)
        let x15 = FieldElement.mul(x12.squared(times: 3), x3)
        let x30 = FieldElement.mul(x15.squared(times: 15), x15)
        let x32 = FieldElement.mul(x30.squared(times: 2), x2)
        let x60 = FieldElement.mul(x30.squared(times: 30), x30)
        let x120 = FieldElement.mul(x60.squared(times: 60), x60)
        let x240 = FieldElement.mul(x120.squared(times: 120), x120)
        let x255 = FieldElement.mul(x240.squared(times: 15), x15)
        var t = x255.squared(times: 1)
        t = FieldElement.mul(t.squared(times: 32), x32)
        t = t.squared(times: 64)
        t = FieldElement.mul(t.squared(times: 30), x30)
        t = FieldElement.mul(t.squared(times: 2), x1)
        return t
    }
}

extension MontgomeryField {
    /// Window `i` (0 ..< 77) of the signed 5-bit (Booth) recoding: bits 5i−1 … 5i+4 (bit −1 is
    /// zero) give a magnitude in 0 … 16 and a sign mask (all-ones for negative), so that the
    /// scalar is Σ ±magnitude_i · 32^i. The top window is never negative (bit 384 is zero).
    /// Constant time in the scalar; `i` is public. (BoringSSL's ec_GFp_nistp_recode_scalar_bits.)
    @inline(__always) func boothWindow(_ i: Int) -> (magnitude: UInt64, negative: UInt64) {
        let start = 5 * i - 1
        let w: UInt64
        if start < 0 {
            w = (v0 &<< 1) & 63
        } else {
            let index = start >> 6
            let shift = start & 63
            let low = limb(index) &>> UInt64(shift)
            let high = shift > 58 && index < 5 ? limb(index + 1) &<< UInt64(64 - shift) : 0
            w = (low | high) & 63
        }
        let negative = qssl_value_barrier(~((w &>> 5) &- 1))
        var d = 63 &- w
        d = (d & negative) | (w & ~negative)
        return ((d &>> 1) &+ (d & 1), negative)
    }

    @inline(__always) func limb(_ index: Int) -> UInt64 {
        switch index {
        case 0: return v0
        case 1: return v1
        case 2: return v2
        case 3: return v3
        case 4: return v4
        default: return v5
        }
    }

    /// The 4-bit digit at position i (0 = least significant) of plain limbs.
    @inline(__always) func nibble(_ i: Int) -> UInt64 {
        (limb(i >> 4) &>> UInt64(4 * (i & 15))) & 0xF
    }
}

extension Scalar {
    /// n − 2, plain limbs: the exponent of Fermat inversion mod n.
    static let nMinus2 = Scalar(
        Scalar.modulus.v0 &- 2, Scalar.modulus.v1, Scalar.modulus.v2,
        Scalar.modulus.v3, Scalar.modulus.v4, Scalar.modulus.v5)
    /// a^(n-2) = a^-1 mod n (Montgomery form in and out); constant time in a.
    func inverted() -> Scalar { power(publicExponent: Scalar.nMinus2) }

    /// Plain limbs of any 384-bit value reduced once mod n (the value is below 2^384 < 2n).
    @inline(__always) static func reducedOnce(_ x: Scalar) -> Scalar { reduceOnce(x, carry: 0) }

}
