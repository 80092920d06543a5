// P-384 points: projective (X:Y:Z) with the complete addition formulas of Renes, Costello and
// Batina, "Complete addition formulas for prime order elliptic curves" (EUROCRYPT 2016,
// eprint 2015/1060), algorithms 4, 5 and 6 for a = −3. Complete: the same instructions for
// every input, the point at infinity (0:1:0) and doubling included, so no input takes a special
// path.

@usableFromInline
struct ProjectivePoint: Sendable {
    var x: FieldElement
    var y: FieldElement
    var z: FieldElement

    static let infinity = ProjectivePoint(x: .zero, y: .one, z: .zero)
    static let generator = ProjectivePoint(x: .gx, y: .gy, z: .one)

    @inline(__always) static func select(_ mask: UInt64, _ a: ProjectivePoint, _ b: ProjectivePoint) -> ProjectivePoint {
        ProjectivePoint(x: .select(mask, a.x, b.x), y: .select(mask, a.y, b.y), z: .select(mask, a.z, b.z))
    }

    /// All-ones when this is the point at infinity (Z = 0).
    @inline(__always) var isInfinityMask: UInt64 { z.isZeroMask }

    /// Algorithm 4: P + Q, complete. 12M + 2m_b.
    @inline(__always)
    static func add(_ p: ProjectivePoint, _ q: ProjectivePoint) -> ProjectivePoint {
        typealias F = FieldElement
        var t0 = F.mul(p.x, q.x)
        var t1 = F.mul(p.y, q.y)
        var t2 = F.mul(p.z, q.z)
        var t3 = F.add(p.x, p.y)
        var t4 = F.add(q.x, q.y)
        t3 = F.mul(t3, t4)
        t4 = F.add(t0, t1)
        t3 = F.sub(t3, t4)
        t4 = F.add(p.y, p.z)
        var x3 = F.add(q.y, q.z)
        t4 = F.mul(t4, x3)
        x3 = F.add(t1, t2)
        t4 = F.sub(t4, x3)
        x3 = F.add(p.x, p.z)
        var y3 = F.add(q.x, q.z)
        x3 = F.mul(x3, y3)
        y3 = F.add(t0, t2)
        y3 = F.sub(x3, y3)
        var z3 = F.mul(F.b, t2)
        x3 = F.sub(y3, z3)
        z3 = F.add(x3, x3)
        x3 = F.add(x3, z3)
        z3 = F.sub(t1, x3)
        x3 = F.add(t1, x3)
        y3 = F.mul(F.b, y3)
        t1 = F.add(t2, t2)
        t2 = F.add(t1, t2)
        y3 = F.sub(y3, t2)
        y3 = F.sub(y3, t0)
        t1 = F.add(y3, y3)
        y3 = F.add(t1, y3)
        t1 = F.add(t0, t0)
        t0 = F.add(t1, t0)
        t0 = F.sub(t0, t2)
        t1 = F.mul(t4, y3)
        t2 = F.mul(t0, y3)
        y3 = F.mul(x3, z3)
        y3 = F.add(y3, t2)
        x3 = F.mul(t3, x3)
        x3 = F.sub(x3, t1)
        z3 = F.mul(t4, z3)
        t1 = F.mul(t3, t0)
        z3 = F.add(z3, t1)
        return ProjectivePoint(x: x3, y: y3, z: z3)
    }

    /// Algorithm 5: P + Q for an affine Q (Z = 1), complete for every P; Q cannot be infinity
    /// (callers that may add "nothing" select the old value afterwards). 11M + 2m_b.
    @inline(__always)
    static func add(_ p: ProjectivePoint, _ q: AffinePoint) -> ProjectivePoint {
        typealias F = FieldElement
        var t0 = F.mul(p.x, q.x)
        var t1 = F.mul(p.y, q.y)
        var t3 = F.add(q.x, q.y)
        var t4 = F.add(p.x, p.y)
        t3 = F.mul(t3, t4)
        t4 = F.add(t0, t1)
        t3 = F.sub(t3, t4)
        t4 = F.mul(q.y, p.z)
        t4 = F.add(t4, p.y)
        var y3 = F.mul(q.x, p.z)
        y3 = F.add(y3, p.x)
        var z3 = F.mul(F.b, p.z)
        var x3 = F.sub(y3, z3)
        z3 = F.add(x3, x3)
        x3 = F.add(x3, z3)
        z3 = F.sub(t1, x3)
        x3 = F.add(t1, x3)
        y3 = F.mul(F.b, y3)
        t1 = F.add(p.z, p.z)
        var t2 = F.add(t1, p.z)
        y3 = F.sub(y3, t2)
        y3 = F.sub(y3, t0)
        t1 = F.add(y3, y3)
        y3 = F.add(t1, y3)
        t1 = F.add(t0, t0)
        t0 = F.add(t1, t0)
        t0 = F.sub(t0, t2)
        t1 = F.mul(t4, y3)
        t2 = F.mul(t0, y3)
        y3 = F.mul(x3, z3)
        y3 = F.add(y3, t2)
        x3 = F.mul(t3, x3)
        x3 = F.sub(x3, t1)
        z3 = F.mul(t4, z3)
        t1 = F.mul(t3, t0)
        z3 = F.add(z3, t1)
        return ProjectivePoint(x: x3, y: y3, z: z3)
    }

    /// Algorithm 6: 2P, complete. 8M + 3S + 2m_b.
    @inline(__always)
    static func double(_ p: ProjectivePoint) -> ProjectivePoint {
        typealias F = FieldElement
        var t0 = F.square(p.x)
        let t1 = F.square(p.y)
        var t2 = F.square(p.z)
        var t3 = F.mul(p.x, p.y)
        t3 = F.add(t3, t3)
        var z3 = F.mul(p.x, p.z)
        z3 = F.add(z3, z3)
        var y3 = F.mul(F.b, t2)
        y3 = F.sub(y3, z3)
        var x3 = F.add(y3, y3)
        y3 = F.add(x3, y3)
        x3 = F.sub(t1, y3)
        y3 = F.add(t1, y3)
        y3 = F.mul(x3, y3)
        x3 = F.mul(x3, t3)
        t3 = F.add(t2, t2)
        t2 = F.add(t2, t3)
        z3 = F.mul(F.b, z3)
        z3 = F.sub(z3, t2)
        z3 = F.sub(z3, t0)
        t3 = F.add(z3, z3)
        z3 = F.add(z3, t3)
        t3 = F.add(t0, t0)
        t0 = F.add(t3, t0)
        t0 = F.sub(t0, t2)
        t0 = F.mul(t0, z3)
        y3 = F.add(y3, t0)
        t0 = F.mul(p.y, p.z)
        t0 = F.add(t0, t0)
        z3 = F.mul(t0, z3)
        x3 = F.sub(x3, z3)
        z3 = F.mul(t0, t1)
        z3 = F.add(z3, z3)
        z3 = F.add(z3, z3)
        return ProjectivePoint(x: x3, y: y3, z: z3)
    }

    /// The affine coordinates (x, y) in Montgomery form; nil for the point at infinity.
    func affine() -> AffinePoint? {
        let zInv = z.inverted()
        // whether the result is infinity is public (only a peer's invalid input gets there)
        guard !z.isZeroPublic else { return nil }
        return AffinePoint(x: FieldElement.mul(x, zInv), y: FieldElement.mul(y, zInv))
    }

    /// −P.
    @inline(__always) var negated: ProjectivePoint { ProjectivePoint(x: x, y: FieldElement.neg(y), z: z) }
}

@usableFromInline
struct AffinePoint: Sendable {
    var x: FieldElement
    var y: FieldElement

    @inline(__always) static func select(_ mask: UInt64, _ a: AffinePoint, _ b: AffinePoint) -> AffinePoint {
        AffinePoint(x: .select(mask, a.x, b.x), y: .select(mask, a.y, b.y))
    }

    var projective: ProjectivePoint { ProjectivePoint(x: x, y: y, z: .one) }

    /// Whether y² = x³ − 3x + b (coordinates in Montgomery form).
    var isOnCurve: Bool {
        typealias F = FieldElement
        let y2 = F.square(y)
        let x3 = F.mul(F.square(x), x)
        let threeX = F.add(F.add(x, x), x)
        let rhs = F.add(F.sub(x3, threeX), F.b)
        return y2.equalMask(rhs) != 0
    }
}

/// Jacobian coordinates (x = X/Z², y = Y/Z³), used only for runs of doublings: the a = −3
/// doubling "dbl-2001-b" (Bernstein–Lange EFD) costs 3M + 5S against 8M + 3S for the complete
/// projective doubling, and doubling has no exceptional input on P-384 (no point of order 2; the
/// point at infinity, kept as (1 : 1 : 0), doubles to itself). Additions stay complete
/// (projective RCB). The conversions are branch-free, infinity included.
@usableFromInline
struct JacobianPoint: Sendable {
    var x: FieldElement
    var y: FieldElement
    var z: FieldElement

    static let infinity = JacobianPoint(x: .one, y: .one, z: .zero)

    /// (X : Y : Z) projective → (X·Z : Y·Z² : Z); infinity → (1 : 1 : 0).
    @inline(__always) init(_ p: ProjectivePoint) {
        typealias F = FieldElement
        let z2 = F.square(p.z)
        let isInfinity = p.z.isZeroMask
        x = F.select(isInfinity, .one, F.mul(p.x, p.z))
        y = F.select(isInfinity, .one, F.mul(p.y, z2))
        z = p.z
    }

    init(x: FieldElement, y: FieldElement, z: FieldElement) {
        self.x = x
        self.y = y
        self.z = z
    }

    /// (X : Y : Z) Jacobian → (X·Z : Y : Z³) projective; (1 : 1 : 0) → (0 : 1 : 0).
    @inline(__always) var projective: ProjectivePoint {
        typealias F = FieldElement
        let z2 = F.square(z)
        return ProjectivePoint(x: F.mul(x, z), y: y, z: F.mul(z2, z))
    }

    /// dbl-2001-b for a = −3.
    @inline(__always) static func double(_ p: JacobianPoint) -> JacobianPoint {
        typealias F = FieldElement
        let delta = F.square(p.z)
        let gamma = F.square(p.y)
        let beta = F.mul(p.x, gamma)
        let t = F.mul(F.sub(p.x, delta), F.add(p.x, delta))
        let alpha = F.add(F.add(t, t), t)
        let beta2 = F.add(beta, beta)
        let beta4 = F.add(beta2, beta2)
        let beta8 = F.add(beta4, beta4)
        let x3 = F.sub(F.square(alpha), beta8)
        let z3 = F.sub(F.sub(F.square(F.add(p.y, p.z)), gamma), delta)
        let gamma2 = F.square(gamma)
        let g2 = F.add(gamma2, gamma2)
        let g4 = F.add(g2, g2)
        let g8 = F.add(g4, g4)
        let y3 = F.sub(F.mul(alpha, F.sub(beta4, x3)), g8)
        return JacobianPoint(x: x3, y: y3, z: z3)
    }

    /// 2^5 · P in projective coordinates, through five Jacobian doublings.
    @inline(__always) static func timesThirtyTwo(_ p: ProjectivePoint) -> ProjectivePoint {
        var j = JacobianPoint(p)
        j = double(j)
        j = double(j)
        j = double(j)
        j = double(j)
        j = double(j)
        return j.projective
    }
}
