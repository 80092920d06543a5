import Crypto
import Foundation
import QSSLP384

/// P-384 primitives, µs per operation: Q-SSL's own P-384 next to swift-crypto's (BoringSSL)
/// in the same run. `scripts/bench` prints Go's crypto/ecdh and crypto/ecdsa beside them.
enum P384Bench {
    struct Row {
        let implementation: String
        let operation: String
        let microseconds: Double
    }

    static func measure(_ implementation: String, _ operation: String, iterations: Int, _ body: () throws -> Void) rethrows -> Row {
        try body()  // warm-up (tables, first-use costs)
        let start = ContinuousClock.now
        for _ in 0..<iterations { try body() }
        return Row(
            implementation: implementation, operation: operation,
            microseconds: seconds(since: start) * 1e6 / Double(iterations))
    }

    static func run(iterations n: Int) throws -> [Row] {
        var rows: [Row] = []
        let message = Array("Q-SSL P-384 benchmark message".utf8)
        // Q-SSL
        let ours = NISTP384.PrivateKey()
        let oursPeer = NISTP384.PrivateKey().publicKey
        rows.append(measure("qssl", "keygen", iterations: n) { _ = NISTP384.PrivateKey().publicKey })
        rows.append(try measure("qssl", "ecdh", iterations: n) { _ = try ours.sharedSecret(with: oursPeer) })
        var signature = ours.signature(for: message)
        rows.append(measure("qssl", "sign", iterations: n) { signature = ours.signature(for: message) })
        let oursPublic = ours.publicKey
        rows.append(measure("qssl", "verify", iterations: n) { precondition(oursPublic.isValidSignature(signature, for: message)) })
        // swift-crypto: keys from random bytes (the fast path the provider used, FACTS.md)
        var rng = SystemRandomNumberGenerator()
        func raw() -> [UInt8] { (0..<48).map { _ in UInt8.random(in: .min ... .max, using: &rng) } }
        let reference = try P384.KeyAgreement.PrivateKey(rawRepresentation: ours.rawRepresentation)
        let referencePeer = try P384.KeyAgreement.PublicKey(x963Representation: oursPeer.x963Representation)
        rows.append(
            measure("swift-crypto", "keygen", iterations: n) {
                if let k = try? P384.KeyAgreement.PrivateKey(rawRepresentation: raw()) { _ = k.publicKey.x963Representation }
            })
        rows.append(try measure("swift-crypto", "ecdh", iterations: n) { _ = try reference.sharedSecretFromKeyAgreement(with: referencePeer) })
        let signing = try P384.Signing.PrivateKey(rawRepresentation: ours.rawRepresentation)
        var referenceSignature = try signing.signature(for: message)
        rows.append(try measure("swift-crypto", "sign", iterations: n) { referenceSignature = try signing.signature(for: message) })
        let signingPublic = signing.publicKey
        rows.append(measure("swift-crypto", "verify", iterations: n) { precondition(signingPublic.isValidSignature(referenceSignature, for: message)) })
        return rows
    }

    static func printTable(_ rows: [Row]) {
        print("P-384 primitives, µs per operation (ops/s)")
        for op in ["keygen", "ecdh", "sign", "verify"] {
            let q = rows.first { $0.implementation == "qssl" && $0.operation == op }!
            let s = rows.first { $0.implementation == "swift-crypto" && $0.operation == op }!
            print(
                "  " + padded(op, 7)
                    + String(
                        format: " qssl %8.1f µs (%6.0f/s)   swift-crypto %8.1f µs (%6.0f/s)   swift-crypto/qssl %.2f×",
                        q.microseconds, 1e6 / q.microseconds, s.microseconds, 1e6 / s.microseconds, s.microseconds / q.microseconds))
        }
    }
}
