// Scalar multiplication, on signed 5-bit (Booth) windows: 77 digits in −16 … 16 (see
// Scalar.boothWindow), so a table of 16 multiples serves 32 values and negation is a masked
// negation of y.
// - Fixed base (key generation, signing): a precomputed table of j·32^i·G (i < 77, 1 ≤ j ≤ 16)
//   in affine form, one mixed addition per digit and no doublings. Every table entry of a
//   window is read (masked full scan), so the memory access pattern does not depend on the
//   scalar.
// - Variable base (ECDH): a 17-entry table of the point built on the stack, read by masked
//   full scan; 380 doublings (in Jacobian coordinates, see JacobianPoint) and 76 complete
//   additions for every scalar.
// - Verification: u1·G + u2·Q in variable time (all inputs are public).

/// j·32^i·G for i in 0..<77 and j in 1...16, affine, Montgomery form: 77 × 16 × 12 limbs.
/// Computed once on first use (about 1,600 point operations and one batched inversion).
final class BaseTable: Sendable {
    static let shared = BaseTable()
    static let windows = 77
    static let perWindow = 16
    /// x limbs then y limbs of each entry.
    let limbs: [UInt64]

    private init() {
        let count = BaseTable.windows * BaseTable.perWindow
        var points: [ProjectivePoint] = []
        points.reserveCapacity(count)
        var windowBase = ProjectivePoint.generator
        for _ in 0..<BaseTable.windows {
            var multiple = windowBase
            for j in 1...BaseTable.perWindow {
                points.append(multiple)
                if j < BaseTable.perWindow { multiple = ProjectivePoint.add(multiple, windowBase) }
            }
            // next window: 32 · windowBase
            for _ in 0..<5 { windowBase = ProjectivePoint.double(windowBase) }
        }
        // Batched inversion of every Z (Montgomery's trick): one field inversion for all.
        var prefix: [FieldElement] = []
        prefix.reserveCapacity(count)
        var acc = FieldElement.one
        for p in points {
            prefix.append(acc)
            acc = FieldElement.mul(acc, p.z)
        }
        var inv = acc.inverted()
        var zInverses = [FieldElement](repeating: .zero, count: count)
        for k in (0..<count).reversed() {
            zInverses[k] = FieldElement.mul(inv, prefix[k])
            inv = FieldElement.mul(inv, points[k].z)
        }
        var limbs: [UInt64] = []
        limbs.reserveCapacity(count * 12)
        for k in 0..<count {
            let x = FieldElement.mul(points[k].x, zInverses[k])
            let y = FieldElement.mul(points[k].y, zInverses[k])
            limbs += [x.v0, x.v1, x.v2, x.v3, x.v4, x.v5, y.v0, y.v1, y.v2, y.v3, y.v4, y.v5]
        }
        self.limbs = limbs
    }

    @inline(__always)
    static func entry(_ table: UnsafeBufferPointer<UInt64>, window: Int, index: Int) -> AffinePoint {
        let o = (window * perWindow + index) * 12
        return AffinePoint(
            x: FieldElement(table[o], table[o + 1], table[o + 2], table[o + 3], table[o + 4], table[o + 5]),
            y: FieldElement(table[o + 6], table[o + 7], table[o + 8], table[o + 9], table[o + 10], table[o + 11]))
    }
}

enum ScalarMult {
    /// k·G for a secret k (plain limbs, any value below 2^384), constant time.
    static func base(_ k: Scalar) -> ProjectivePoint {
        BaseTable.shared.limbs.withUnsafeBufferPointer { table in
            var r = ProjectivePoint.infinity
            for i in 0..<BaseTable.windows {
                let (digit, negative) = k.boothWindow(i)
                // masked full scan of the window's 16 entries
                var chosen = AffinePoint(x: .zero, y: .zero)
                for j in 0..<BaseTable.perWindow {
                    let mask = equalMask(digit, UInt64(j + 1))
                    chosen = AffinePoint.select(mask, BaseTable.entry(table, window: i, index: j), chosen)
                }
                chosen.y = FieldElement.select(negative, FieldElement.neg(chosen.y), chosen.y)
                let sum = ProjectivePoint.add(r, chosen)
                // digit 0 adds nothing: keep r (the sum with the dummy entry is discarded)
                r = ProjectivePoint.select(isZeroMask(digit), r, sum)
            }
            return r
        }
    }

    /// k·P for a secret k (plain limbs, below 2^384) and a public point P, constant time in k.
    static func variable(_ k: Scalar, _ p: ProjectivePoint) -> ProjectivePoint {
        withUnsafeTemporaryAllocation(of: ProjectivePoint.self, capacity: 17) { table in
            fillMultiples(table, of: p)
            func lookup(_ window: Int) -> ProjectivePoint {
                let (digit, negative) = k.boothWindow(window)
                var chosen = ProjectivePoint.infinity
                for j in 1...16 {
                    chosen = ProjectivePoint.select(equalMask(digit, UInt64(j)), table[j], chosen)
                }
                chosen.y = FieldElement.select(negative, FieldElement.neg(chosen.y), chosen.y)
                return chosen
            }
            var r = lookup(76)
            for i in (0..<76).reversed() {
                r = JacobianPoint.timesThirtyTwo(r)
                r = ProjectivePoint.add(r, lookup(i))
            }
            return r
        }
    }

    /// table[j] = j·P for j in 0...16 (table[0] the point at infinity).
    @inline(__always)
    private static func fillMultiples(_ table: UnsafeMutableBufferPointer<ProjectivePoint>, of p: ProjectivePoint) {
        table.initialize(repeating: .infinity)
        table[1] = p
        for j in 2...16 {
            table[j] = j % 2 == 0 ? ProjectivePoint.double(table[j / 2]) : ProjectivePoint.add(table[j - 1], p)
        }
    }

    /// u1·G + u2·Q for public u1, u2 (plain limbs) and a public Q. Variable time.
    static func verificationSum(_ u1: Scalar, _ u2: Scalar, _ q: ProjectivePoint) -> ProjectivePoint {
        var r = BaseTable.shared.limbs.withUnsafeBufferPointer { table in
            var r = ProjectivePoint.infinity
            for i in 0..<BaseTable.windows {
                let (digit, negative) = u1.boothWindow(i)
                guard digit != 0 else { continue }
                var entry = BaseTable.entry(table, window: i, index: Int(digit) - 1)
                if negative != 0 { entry.y = FieldElement.neg(entry.y) }
                r = ProjectivePoint.add(r, entry)
            }
            return r
        }
        let uq = withUnsafeTemporaryAllocation(of: ProjectivePoint.self, capacity: 17) { table in
            fillMultiples(table, of: q)
            var acc = ProjectivePoint.infinity
            var started = false
            for i in (0..<77).reversed() {
                let (digit, negative) = u2.boothWindow(i)
                if started { acc = JacobianPoint.timesThirtyTwo(acc) }
                if digit != 0 {
                    let term = negative != 0 ? table[Int(digit)].negated : table[Int(digit)]
                    acc = started ? ProjectivePoint.add(acc, term) : term
                    started = true
                }
            }
            return acc
        }
        r = ProjectivePoint.add(r, uq)
        return r
    }
}
