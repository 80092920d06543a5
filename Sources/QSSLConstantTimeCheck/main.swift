// Constant-time validation of QSSLP384: run under valgrind memcheck (scripts/ct-check). Secret
// inputs (private keys, ECDH scalars) are marked undefined; memcheck then reports any branch or
// memory address that depends on them ("Conditional jump or move depends on uninitialised
// value(s)", "Use of uninitialised value"). Results the protocol reveals (public keys, ECDSA r
// and s, whether a scalar is valid) are declassified by the library or here.
//
//   valgrind --error-exitcode=1 qssl-ct-check [ROUNDS]
//   valgrind --error-exitcode=1 qssl-ct-check --control    (a deliberate leak: must be reported)

import CQSSLConstantTime
import QSSLP384

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

func fail(_ message: String) -> Never {
    print("qssl-ct-check: \(message)")
    exit(2)
}

guard qssl_ct_validation_compiled() != 0 else {
    fail("built without valgrind/memcheck.h, so the secret markings are not compiled in (install valgrind and rebuild)")
}
guard qssl_ct_running_on_valgrind() != 0 else {
    fail("run it under valgrind: valgrind --error-exitcode=1 qssl-ct-check")
}

func secret(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { qssl_ct_secret($0.baseAddress, $0.count) }
    return bytes
}
func declassified(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { qssl_ct_public_bytes($0.baseAddress, $0.count) }
    return bytes
}
/// A random valid scalar (top bit clear: below n, and non-zero in all but a 2^-383 case).
func randomScalarBytes() -> [UInt8] {
    var rng = SystemRandomNumberGenerator()
    var b = (0..<48).map { _ in UInt8.random(in: 0...255, using: &rng) }
    b[0] &= 0x7f
    b[47] |= 1
    return b
}

let arguments = Array(CommandLine.arguments.dropFirst())
/// The control: a table read at a secret index and a branch on a secret bit, which memcheck must
/// report in this function (scripts/ct-check looks for its name in the report).
@inline(never) func secretDependentControl(_ secretByte: UInt8, _ table: [UInt64]) -> UInt64 {
    let value = table[Int(secretByte & 15)]
    if value & 1 == 0 { return value &* 3 }
    return value &+ 7
}

if arguments.first == "--control" {
    let byte = secret([UInt8.random(in: 0...255)])
    print("control: \(secretDependentControl(byte[0], (0..<16).map { UInt64($0) &* 0x9e37_79b9_7f4a_7c15 }) & 1)")
    exit(0)
}
guard let rounds = arguments.isEmpty ? 3 : arguments.first.flatMap(Int.init), rounds >= 1 else {
    fail("usage: qssl-ct-check [ROUNDS ≥ 1] | --control")
}

for round in 0..<rounds {
    // Key parsing, key generation (fixed base), ECDH (variable base), signing (fixed base, RFC 6979
    // nonces, scalar inversion): all with a secret scalar.
    let key = try NISTP384.PrivateKey(rawRepresentation: secret(randomScalarBytes()))
    let publicKey = declassified(key.publicKey.x963Representation)
    let peer = NISTP384.PrivateKey()
    let shared = declassified(try key.sharedSecret(with: peer.publicKey))
    let expected = try peer.sharedSecret(with: NISTP384.PublicKey(x963Representation: publicKey))
    guard shared == expected else { fail("round \(round): ECDH disagrees") }

    let message = Array("round \(round)".utf8)
    for hedged in [true, false] {
        let signature = key.signature(for: message, hedged: hedged)
        guard try NISTP384.PublicKey(x963Representation: publicKey).isValidSignature(signature, for: message) else {
            fail("round \(round): a signature does not verify")
        }
    }
}
let arithmetic = qssl_has_adx() != 0 ? "x86-64 assembly (mulx/adcx/adox)" : "portable Swift"
print(
    "qssl-ct-check: \(rounds) rounds of key parsing, key generation, ECDH and signing, \(arithmetic) field arithmetic; memcheck reports any secret-dependent branch or address above"
)
