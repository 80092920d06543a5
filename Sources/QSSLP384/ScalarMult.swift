// Scalar multiplication.
// - Fixed base (key generation, signing): a precomputed table of j·16^i·G (i < 96, 1 ≤ j ≤ 15)
//   in affine form, one mixed addition per 4-bit digit and no doublings. Every table entry of a
//   window is read (masked full scan), so the memory access pattern does not depend on the
//   scalar.
// - Variable base (ECDH): fixed 4-bit windows over a 16-entry table of the point built on the
//   stack, read by masked full scan; 380 doublings (in Jacobian coordinates, see JacobianPoint)
//   and 95 complete additions for every scalar.
// - Verification: u1·G + u2·Q in variable time (all inputs are public).

/// j·16^i·G for i in 0..<96 and j in 1...15, affine, Montgomery form: 96 × 15 × 12 limbs.
/// Computed once on first use (about 1,500 point operations and one batched inversion).
final class BaseTable: Sendable {
    static let shared = BaseTable()
    static let windows = 96
    static let perWindow = 15
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
            // next window: 16 · windowBase
            for _ in 0..<4 { windowBase = ProjectivePoint.double(windowBase) }
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
                let digit = k.nibble(i)
                // masked full scan of the window's 15 entries
                var chosen = AffinePoint(x: .zero, y: .zero)
                for j in 0..<BaseTable.perWindow {
                    let mask = equalMask(digit, UInt64(j + 1))
                    chosen = AffinePoint.select(mask, BaseTable.entry(table, window: i, index: j), chosen)
                }
                let sum = ProjectivePoint.add(r, chosen)
                // digit 0 adds nothing: keep r (the sum with the dummy entry is discarded)
                r = ProjectivePoint.select(isZeroMask(digit), r, sum)
            }
            return r
        }
    }

    /// k·P for a secret k (plain limbs) and a public point P, constant time in k.
    static func variable(_ k: Scalar, _ p: ProjectivePoint) -> ProjectivePoint {
        withUnsafeTemporaryAllocation(of: ProjectivePoint.self, capacity: 16) { table in
            fillMultiples(table, of: p)
            func lookup(_ digit: UInt64) -> ProjectivePoint {
                var chosen = ProjectivePoint.infinity
                for j in 1..<16 {
                    chosen = ProjectivePoint.select(equalMask(digit, UInt64(j)), table[j], chosen)
                }
                return chosen
            }
            var r = lookup(k.nibble(95))
            for i in (0..<95).reversed() {
                r = JacobianPoint.timesSixteen(r)
                r = ProjectivePoint.add(r, lookup(k.nibble(i)))
            }
            return r
        }
    }

    /// table[j] = j·P for j in 0..<16 (table[0] the point at infinity).
    @inline(__always)
    private static func fillMultiples(_ table: UnsafeMutableBufferPointer<ProjectivePoint>, of p: ProjectivePoint) {
        table.initialize(repeating: .infinity)
        table[1] = p
        for j in 2..<16 {
            table[j] = j % 2 == 0 ? ProjectivePoint.double(table[j / 2]) : ProjectivePoint.add(table[j - 1], p)
        }
    }

    /// u1·G + u2·Q for public u1, u2 (plain limbs) and a public Q. Variable time.
    static func verificationSum(_ u1: Scalar, _ u2: Scalar, _ q: ProjectivePoint) -> ProjectivePoint {
        var r = BaseTable.shared.limbs.withUnsafeBufferPointer { table in
            var r = ProjectivePoint.infinity
            for i in 0..<BaseTable.windows {
                let digit = Int(u1.nibble(i))
                if digit != 0 { r = ProjectivePoint.add(r, BaseTable.entry(table, window: i, index: digit - 1)) }
            }
            return r
        }
        let uq = withUnsafeTemporaryAllocation(of: ProjectivePoint.self, capacity: 16) { table in
            fillMultiples(table, of: q)
            var acc = ProjectivePoint.infinity
            var started = false
            for i in (0..<96).reversed() {
                let digit = Int(u2.nibble(i))
                if started { acc = JacobianPoint.timesSixteen(acc) }
                if digit != 0 {
                    acc = started ? ProjectivePoint.add(acc, table[digit]) : table[digit]
                    started = true
                }
            }
            return acc
        }
        r = ProjectivePoint.add(r, uq)
        return r
    }
}
