import Crypto
import QSSLP384

/// Q-SSL's P-384 against swift-crypto's, on random inputs: the differential check behind the
/// unit test (150 rounds) and `qssl-bench p384-differential ROUNDS` (scripts/p384-differential, a
/// million rounds in a release build). Each round: a random key (public keys compared), ECDH
/// with a random peer both ways, ECDSA signatures over a random message verified across the
/// two implementations, and a tampered message refused by both. Public API of QSSLP384 only.
public enum P384Differential {
    /// The disagreements found (empty: every round agreed), at most `limit` of them.
    public static func run(rounds: Int, limit: Int = 20, progress: ((Int) -> Void)? = nil) -> [String] {
        var failures: [String] = []
        var rng = SystemRandomNumberGenerator()
        for round in 0..<rounds {
            if failures.count >= limit { break }
            if round > 0, round % 10_000 == 0 { progress?(round) }
            do {
                failures += try self.round(round, &rng)
            } catch {
                failures.append("round \(round): \(error)")
            }
        }
        return failures
    }

    static func round(_ round: Int, _ rng: inout SystemRandomNumberGenerator) throws -> [String] {
        var failures: [String] = []
        func check(_ condition: Bool, _ what: String) { if !condition { failures.append("round \(round): \(what)") } }
        // keys from the same scalar: the same public point
        let ours = NISTP384.PrivateKey()
        let reference = try P384.KeyAgreement.PrivateKey(rawRepresentation: ours.rawRepresentation)
        check(ours.publicKey.x963Representation == Array(reference.publicKey.x963Representation), "public keys differ")
        // ECDH both ways
        let peerReference = try P384.KeyAgreement.PrivateKey(rawRepresentation: NISTP384.PrivateKey().rawRepresentation)
        let peerOurs = try NISTP384.PublicKey(x963Representation: peerReference.publicKey.x963Representation)
        let secret = try ours.sharedSecret(with: peerOurs)
        let expected = try peerReference.sharedSecretFromKeyAgreement(with: reference.publicKey).withUnsafeBytes { Array($0) }
        check(secret == expected, "ECDH secrets differ")
        // ECDSA both ways over a random message; a changed message fails on both sides
        let message = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let signingReference = try P384.Signing.PrivateKey(rawRepresentation: ours.rawRepresentation)
        let ourSignature = try P384.Signing.ECDSASignature(derRepresentation: ours.signature(for: message).derRepresentation)
        let theirs = try NISTP384.Signature(derRepresentation: try signingReference.signature(for: message).derRepresentation)
        check(signingReference.publicKey.isValidSignature(ourSignature, for: message), "swift-crypto refuses our signature")
        check(ours.publicKey.isValidSignature(theirs, for: message), "we refuse swift-crypto's signature")
        let tampered = message + [UInt8(truncatingIfNeeded: round)]
        check(!ours.publicKey.isValidSignature(theirs, for: tampered), "we accept a signature over another message")
        check(!signingReference.publicKey.isValidSignature(ourSignature, for: tampered), "swift-crypto accepts our signature over another message")
        return failures
    }
}
