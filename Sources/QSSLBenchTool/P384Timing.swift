import Foundation
import QSSLP384

/// A dudect-style timing test (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant
/// time?", 2017) of QSSLP384's secret-dependent operations: each measurement runs the operation
/// on an input of one of two classes chosen at random — class 0 a fixed, extreme secret (a scalar
/// of low weight, whose digits are mostly zero: a table walk that skipped zero digits would be
/// much faster), class 1 a fresh random secret — and Welch's t-test compares the two timing
/// distributions after dropping the slowest measurements (percentile cropping). |t| above 4.5 is
/// evidence of a timing difference. The variable-time verification, run the same way on a digest
/// of zeros against random digests, is the control that shows the test can see a leak.
enum P384Timing {
    struct Result {
        let name: String
        let t: Double
        let samples: Int
        let constantTimeExpected: Bool
        var leaks: Bool { abs(t) > 4.5 }
    }

    static func welch(_ a: [Double], _ b: [Double]) -> Double {
        func meanVar(_ x: [Double]) -> (Double, Double) {
            let m = x.reduce(0, +) / Double(x.count)
            let v = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(x.count - 1, 1))
            return (m, v)
        }
        let (ma, va) = meanVar(a)
        let (mb, vb) = meanVar(b)
        let denominator = (va / Double(a.count) + vb / Double(b.count)).squareRoot()
        return denominator == 0 ? 0 : (ma - mb) / denominator
    }

    /// Runs `operation(class)` `samples` times with random classes; returns the largest |t| over
    /// a few cropping thresholds (as dudect does).
    static func measure(samples: Int, _ operation: (Int) -> Void) -> Double {
        var rng = SystemRandomNumberGenerator()
        var times: [(Int, Double)] = []
        times.reserveCapacity(samples)
        for _ in 0..<samples {
            let c = Int.random(in: 0...1, using: &rng)
            let start = DispatchTime.now().uptimeNanoseconds
            operation(c)
            times.append((c, Double(DispatchTime.now().uptimeNanoseconds - start)))
        }
        let sorted = times.map(\.1).sorted()
        var worst = 0.0
        for percentile in [1.0, 0.9, 0.75, 0.5] {
            let limit = sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * percentile))]
            let kept = times.filter { $0.1 <= limit }
            let t = welch(kept.filter { $0.0 == 0 }.map(\.1), kept.filter { $0.0 == 1 }.map(\.1))
            if abs(t) > abs(worst) { worst = t }
        }
        return worst
    }

    static func run(samples: Int) throws -> [Result] {
        var rng = SystemRandomNumberGenerator()
        func randomScalar() -> NISTP384.PrivateKey { NISTP384.PrivateKey() }
        // class 0: d = 2^380 + 1 (two non-zero digits out of 77 signed 5-bit windows)
        var lowWeight = [UInt8](repeating: 0, count: 48)
        lowWeight[0] = 0x10
        lowWeight[47] = 0x01
        let fixed = try NISTP384.PrivateKey(rawRepresentation: lowWeight)
        let peer = NISTP384.PrivateKey().publicKey
        NISTP384.warmUp()
        // Inputs are prepared outside the timed region.
        var keys: [NISTP384.PrivateKey] = (0..<samples).map { _ in randomScalar() }
        var next = 0
        func pick(_ c: Int) -> NISTP384.PrivateKey {
            next = (next + 1) % keys.count
            return c == 0 ? fixed : keys[next]
        }
        var results: [Result] = []
        results.append(
            Result(
                name: "ECDH (variable-base scalar multiplication)",
                t: measure(samples: samples) { c in
                    _ = try? pick(c).sharedSecret(with: peer)
                }, samples: samples, constantTimeExpected: true))
        results.append(
            Result(
                name: "public key (fixed-base scalar multiplication)",
                t: measure(samples: samples) { c in
                    _ = pick(c).publicKey
                }, samples: samples, constantTimeExpected: true))
        let digest = (0..<48).map { _ in UInt8.random(in: 0...255, using: &rng) }
        results.append(
            Result(
                name: "ECDSA sign (secret key and nonce)",
                t: measure(samples: samples) { c in
                    _ = pick(c).signature(forDigest: digest)
                }, samples: samples, constantTimeExpected: true))
        // Control: verification is variable time by design (public inputs); a zero digest makes
        // u1 = 0, so the fixed-base half adds nothing.
        let signer = NISTP384.PrivateKey()
        let signature = signer.signature(forDigest: digest)
        let publicKey = signer.publicKey
        keys = []
        let zeros = [UInt8](repeating: 0, count: 48)
        let digests = (0..<64).map { _ in (0..<48).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        results.append(
            Result(
                name: "control: ECDSA verify, zero vs random digest (variable time)",
                t: measure(samples: samples) { c in
                    next = (next + 1) % digests.count
                    _ = publicKey.isValidSignature(signature, forDigest: c == 0 ? zeros : digests[next])
                }, samples: samples, constantTimeExpected: false))
        return results
    }

    static func report(_ results: [Result]) {
        print("P-384 timing test (dudect-style: fixed low-weight secret vs random secrets, Welch's t; |t| > 4.5 = leak)")
        for r in results {
            let verdict =
                r.constantTimeExpected
                ? (r.leaks ? "TIMING DIFFERENCE" : "no difference found")
                : (r.leaks ? "difference found, as expected: the test sees leaks" : "control not detected (too few samples?)")
            print("  " + padded(r.name, 62) + String(format: " t = %8.2f  (%d samples)  %@", r.t, r.samples, verdict as NSString))
        }
    }
}
