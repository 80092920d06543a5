import CQSSLConstantTime
import Crypto
import Foundation
import QSSLTestSupport
import Testing

@testable import QSSLP384

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

func hexString(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

/// A big-endian scalar of any length normalised to 48 bytes (Wycheproof writes 49 with a sign
/// byte, or fewer).
func scalar48(_ s: String) -> [UInt8]? {
    var b = hex(s)
    while b.count > 48, b.first == 0 { b.removeFirst() }
    guard b.count <= 48 else { return nil }
    return [UInt8](repeating: 0, count: 48 - b.count) + b
}

struct P384KnownAnswerTests {
    // RFC 6979 A.2.6 (P-384, SHA-384), cross-checked with python-ecdsa's sign_deterministic.
    static let x = hex("6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5")
    static let publicKey = hex(
        "04ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720"
    )

    @Test(arguments: [
        (
            "sample", "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46",
            "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8"
        ),
        (
            "test", "8203b63d3c853e8d77227fb377bcf7b7b772e97892a80f36ab775d509d7a5feb0542a7f0812998da8f1dd3ca3cf023db",
            "ddd0760448d42d8a43af45af836fce4de8be06b485e9b61b827c2f13173923e06a739f040649a667bf3b828246baa5a5"
        )
    ])
    func rfc6979(message: String, r: String, s: String) throws {
        let key = try NISTP384.PrivateKey(rawRepresentation: Self.x)
        #expect(key.publicKey.x963Representation == Self.publicKey)
        let digest = Array(SHA384.hash(data: Array(message.utf8)))
        let signature = key.signature(forDigest: digest, additionalData: [])
        #expect(hexString(signature.rawRepresentation) == r + s)
        #expect(key.publicKey.isValidSignature(signature, forDigest: digest))
        // hedged signatures differ from the deterministic one and from each other, and verify
        let h1 = key.signature(for: Array(message.utf8))
        let h2 = key.signature(for: Array(message.utf8))
        #expect(h1 != signature && h1 != h2)
        #expect(key.publicKey.isValidSignature(h1, for: Array(message.utf8)))
        // the reference agrees
        let reference = try P384.Signing.PublicKey(x963Representation: Self.publicKey)
        #expect(reference.isValidSignature(try .init(rawRepresentation: signature.rawRepresentation), for: SHA384.hash(data: Array(message.utf8))))
    }

    /// A FIPS 186-4 SigGen vector (P-384, SHA-384; the digest given): key pair and the signature
    /// with the vector's nonce k.
    /// RFC 6979's DRBG beyond the first candidate (the retry path of §3.2 step h.3, taken when r
    /// or s is zero): A.2.6's key, SHA-384 of "sample". The first candidate is the RFC's k; the
    /// next two come from an independent Python HMAC-DRBG (hmac + hashlib).
    @Test func rfc6979Candidates() throws {
        let d = try #require(Self.x.withUnsafeBytes { Scalar.plain(bigEndian: $0) })
        let h = Scalar.reducedOnce(NISTP384.bits2int(Array(SHA384.hash(data: Array("sample".utf8)))))
        var drbg = RFC6979(privateKey: d, digestInteger: h, additionalData: [])
        #expect(hexString(drbg.next().bigEndianBytes) == "94ed910d1a099dad3254e9242ae85abde4ba15168eaf0ca87a555fd56d10fbca2907e3e83ba95368623b8c4686915cf9")
        #expect(hexString(drbg.next().bigEndianBytes) == "9d63ce4c96d070a67f7bee49e870b64838c0ac65bb7440cf46017dca69d35d236219aae5e00a9f01f13e7774be1339fc")
        #expect(hexString(drbg.next().bigEndianBytes) == "f114e112e64a0c14702ffcf66ec140fb427bbcc90b1cace4a4ce90e227d91c6fe17add0ab567782ccc7c4e70db1e522c")
    }

    @Test func cavpSigGen() throws {
        let key = try NISTP384.PrivateKey(
            rawRepresentation: hex("201b432d8df14324182d6261db3e4b3f46a8284482d52e370da41e6cbdf45ec2952f5db7ccbce3bc29449f4fb080ac97"))
        #expect(
            hexString(key.publicKey.x963Representation) == "04"
                + "c2b47944fb5de342d03285880177ca5f7d0f2fcad7678cce4229d6e1932fcac11bfc3c3e97d942a3c56bf34123013dbf"
                + "37257906a8223866eda0743c519616a76a758ae58aee81c5fd35fbf3a855b7754a36d4a0672df95d6c44a81cf7620c2d")
        let digest = hex("31a452d6164d904bb5724c878280231eae705c29ce9d4bc7d58e020e1085f17eebcc1a38f0ed0bf2b344d81fbd896825")
        let k = Scalar(hex("dcedabf85978e090f733c6e16646fa34df9ded6e5ce28c6676a00f58a25283db8885e16ce5bf97f917c81e1f25c9c771").reversed().chunked())
        let signature = try #require(key.signature(digestInteger: Scalar.reducedOnce(NISTP384.bits2int(digest)), nonce: k))
        #expect(
            hexString(signature.rawRepresentation)
                == "50835a9251bad008106177ef004b091a1e4235cd0da84fff54542b0ed755c1d6f251609d14ecf18f9e1ddfe69b946e32"
                + "0475f3d30c6463b646e8d3bf2455830314611cbde404be518b14464fdb195fdcc92eb222e61f426a4a592c00a6a89721")
        #expect(key.publicKey.isValidSignature(signature, forDigest: digest))
    }

    @Test func scalarEdges() throws {
        let n = hex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")
        var nMinus1 = n
        nMinus1[47] -= 1
        var one = [UInt8](repeating: 0, count: 48)
        one[47] = 1
        // d = 1 gives G; d = n − 1 gives −G (same x, y negated)
        let g = try NISTP384.PrivateKey(rawRepresentation: one).publicKey.x963Representation
        let minusG = try NISTP384.PrivateKey(rawRepresentation: nMinus1).publicKey.x963Representation
        #expect(hexString(Array(g[1..<49])) == "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7")
        #expect(g[1..<49] == minusG[1..<49] && g[49...] != minusG[49...])
        #expect(try P384.KeyAgreement.PrivateKey(rawRepresentation: nMinus1).publicKey.x963Representation == Data(minusG))
        // out of range: 0, n, n + 1, 2^384 − 1, wrong lengths
        var nPlus1 = n
        nPlus1[47] += 1
        for bad in [[UInt8](repeating: 0, count: 48), n, nPlus1, [UInt8](repeating: 0xFF, count: 48), [1], [UInt8](repeating: 1, count: 49)] {
            #expect(throws: NISTP384.Error.invalidPrivateKey) { try NISTP384.PrivateKey(rawRepresentation: bad) }
        }
        // ECDH with d = 1 and d = 2: 76 leading zero digits, so the accumulator is the point at
        // infinity through the Jacobian doublings before the first non-zero digit
        let peer = try NISTP384.PublicKey(x963Representation: Self.publicKey)
        #expect(try NISTP384.PrivateKey(rawRepresentation: one).sharedSecret(with: peer) == Array(Self.publicKey[1..<49]))
        var two = one
        two[47] = 2
        let reference = try P384.KeyAgreement.PrivateKey(rawRepresentation: two)
        #expect(
            try NISTP384.PrivateKey(rawRepresentation: two).sharedSecret(with: peer)
                == reference.sharedSecretFromKeyAgreement(with: .init(x963Representation: Self.publicKey)).withUnsafeBytes { Array($0) })
        // n·G through the variable-base path is the point at infinity
        let sum = ScalarMult.variable(Scalar(n.reversed().chunked()), .generator)
        #expect(sum.isInfinityMask != 0)
        #expect(ScalarMult.base(Scalar(n.reversed().chunked())).isInfinityMask != 0)
    }

    @Test func pointDecodingRefusals() throws {
        let good = Self.publicKey
        #expect(throws: NISTP384.Error.invalidPublicKey("the point at infinity")) { try NISTP384.PublicKey(x963Representation: [0]) }
        #expect(throws: NISTP384.Error.invalidPublicKey("compressed points are not accepted")) {
            try NISTP384.PublicKey(x963Representation: [0x02] + good[1..<49])
        }
        var offCurve = good
        offCurve[96] ^= 1
        #expect(throws: NISTP384.Error.invalidPublicKey("not on the curve")) { try NISTP384.PublicKey(x963Representation: offCurve) }
        var hybrid = good
        hybrid[0] = 0x06
        #expect(throws: (any Error).self) { try NISTP384.PublicKey(x963Representation: hybrid) }
        // (0, 0) and a coordinate equal to p
        #expect(throws: (any Error).self) { try NISTP384.PublicKey(x963Representation: [4] + [UInt8](repeating: 0, count: 96)) }
        let p = hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff")
        #expect(throws: NISTP384.Error.invalidPublicKey("coordinate not below p")) { try NISTP384.PublicKey(x963Representation: [4] + p + good[49...]) }
        for length in [0, 1, 96, 98] {
            #expect(throws: (any Error).self) { try NISTP384.PublicKey(x963Representation: [UInt8](repeating: 4, count: length)) }
        }
    }

    @Test func derStrictness() throws {
        let key = try NISTP384.PrivateKey(rawRepresentation: Self.x)
        let digest = Array(SHA384.hash(data: Array("sample".utf8)))
        let signature = key.signature(forDigest: digest, additionalData: [])
        let der = signature.derRepresentation
        #expect(try NISTP384.Signature(derRepresentation: der) == signature)
        // the reference's DER matches ours byte for byte
        #expect(Array(try P384.Signing.ECDSASignature(rawRepresentation: signature.rawRepresentation).derRepresentation) == der)
        let bad: [[UInt8]] = [
            der + [0],  // trailing byte
            [0x30, 0x81, UInt8(der.count - 2)] + der[2...],  // non-minimal long-form length
            Array(der.dropLast()),  // truncated
            [0x31] + der[1...],  // SET instead of SEQUENCE
            [0x30, 0],  // empty
            []
        ]
        for b in bad { #expect(throws: (any Error).self) { try NISTP384.Signature(derRepresentation: b) } }
        // r = 0, r = n and a negative s are refused
        let n = hex("00ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")
        let s = Array(signature.rawRepresentation[48...])
        func seq(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
            let c = [0x02, UInt8(a.count)] + a + [0x02, UInt8(b.count)] + b
            return [0x30, UInt8(c.count)] + c
        }
        #expect(throws: (any Error).self) { try NISTP384.Signature(derRepresentation: seq([0], [0x01] + s)) }
        #expect(throws: (any Error).self) { try NISTP384.Signature(derRepresentation: seq(n, [0x01] + s)) }
        #expect(throws: (any Error).self) { try NISTP384.Signature(derRepresentation: seq([0x01], [0x80] + s)) }
    }
}

extension Array where Element == UInt8 {
    /// Little-endian bytes → six little-endian limbs (test helper).
    func chunked() -> (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) {
        var l = [UInt64](repeating: 0, count: 6)
        for (i, b) in enumerated() { l[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
        return (l[0], l[1], l[2], l[3], l[4], l[5])
    }
}

extension Scalar {
    init(_ l: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)) { self.init(l.0, l.1, l.2, l.3, l.4, l.5) }
}

// MARK: - Wycheproof

struct WycheproofFile: Decodable {
    struct Group: Decodable {
        struct PublicKey: Decodable { let uncompressed: String }
        let publicKey: PublicKey?
        let tests: [Case]
    }
    struct Case: Decodable {
        let tcId: Int
        let comment: String
        let flags: [String]
        let result: String
        // ECDH
        let `public`: String?
        let `private`: String?
        let shared: String?
        // ECDSA
        let msg: String?
        let sig: String?
    }
    let testGroups: [Group]

    static func load(_ name: String) throws -> WycheproofFile {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Resources"))
        return try JSONDecoder().decode(WycheproofFile.self, from: Data(contentsOf: url))
    }
}

struct P384WycheproofTests {
    @Test func ecdhEcpoint() throws {
        let file = try WycheproofFile.load("ecdh_secp384r1_ecpoint_test")
        var counts = (valid: 0, invalid: 0, acceptable: 0)
        for group in file.testGroups {
            for t in group.tests {
                let outcome: [UInt8]? = {
                    guard let d = scalar48(t.private!),
                        let key = try? NISTP384.PrivateKey(rawRepresentation: d),
                        let peer = try? NISTP384.PublicKey(x963Representation: hex(t.public!))
                    else { return nil }
                    return try? key.sharedSecret(with: peer)
                }()
                switch t.result {
                case "valid":
                    counts.valid += 1
                    #expect(outcome.map(hexString) == t.shared!, "tcId \(t.tcId): \(t.comment)")
                case "invalid":
                    counts.invalid += 1
                    #expect(outcome == nil, "tcId \(t.tcId) must be refused: \(t.comment)")
                default:
                    // acceptable: compressed points, which PROTOCOL.md §1 refuses
                    counts.acceptable += 1
                    if let outcome { #expect(hexString(outcome) == t.shared!, "tcId \(t.tcId)") }
                }
            }
        }
        #expect(counts.valid > 100 && counts.invalid > 10)
    }

    @Test(arguments: ["ecdsa_secp384r1_sha384_test", "ecdsa_secp384r1_sha384_p1363_test"])
    func ecdsaVerify(file name: String) throws {
        let file = try WycheproofFile.load(name)
        var checked = 0
        for group in file.testGroups {
            let key = try NISTP384.PublicKey(x963Representation: hex(group.publicKey!.uncompressed))
            for t in group.tests {
                let sigBytes = hex(t.sig!)
                let signature =
                    name.hasSuffix("p1363_test")
                    ? try? NISTP384.Signature(rawRepresentation: sigBytes)
                    : try? NISTP384.Signature(derRepresentation: sigBytes)
                let valid = signature.map { key.isValidSignature($0, for: hex(t.msg!)) } ?? false
                switch t.result {
                case "valid": #expect(valid, "tcId \(t.tcId): \(t.comment)")
                case "invalid": #expect(!valid, "tcId \(t.tcId) must fail: \(t.comment)")
                default: break
                }
                checked += 1
            }
        }
        #expect(checked > 250)
    }
}

// MARK: - Differential against swift-crypto

struct P384DifferentialTests {
    /// QSSL_P384_DIFFERENTIAL=N runs N rounds; CI runs 150 (scripts/p384-differential runs a
    /// million through `qssl-bench p384-differential`, in a release build).
    static var rounds: Int { ProcessInfo.processInfo.environment["QSSL_P384_DIFFERENTIAL"].flatMap(Int.init) ?? 150 }

    @Test func againstSwiftCrypto() {
        let failures = P384Differential.run(rounds: Self.rounds)
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }
}

/// The x86-64 assembly product (mulx/adcx/adox) against the portable Swift one, on both fields.
/// Two independent implementations of a·b·2^-384 mod m: any carry or reduction slip in either
/// shows up as a disagreement.
struct MontgomeryAssemblyTests {
    static func edges<F: MontgomeryField>(_: F.Type) -> [F] {
        let m = F.modulus
        func minus(_ k: UInt64) -> F { F(m.v0 &- k, m.v1, m.v2, m.v3, m.v4, m.v5) }  // m.v0 ≥ k here
        return [
            F(0, 0, 0, 0, 0, 0), F(1, 0, 0, 0, 0, 0), F(2, 0, 0, 0, 0, 0), minus(1), minus(2), minus(3),
            F(0, 0, 0, 0, 0, 1 << 63), F(.max, .max, .max, 0, 0, 0), F(0, 0, 0, .max, .max, .max - 1),
            F(.max, .max, .max, .max, .max, .max - 1), F.one, F.r2
        ]
    }

    static func random<F: MontgomeryField>(_: F.Type, _ rng: inout some RandomNumberGenerator) -> F {
        // the top limb below 2^64 − 1 keeps the value below either modulus
        F(rng.next(), rng.next(), rng.next(), rng.next(), rng.next(), UInt64.random(in: 0 ..< .max, using: &rng))
    }

    static func same<F: MontgomeryField>(_ a: F, _ b: F) -> Bool {
        a.v0 == b.v0 && a.v1 == b.v1 && a.v2 == b.v2 && a.v3 == b.v3 && a.v4 == b.v4 && a.v5 == b.v5
    }

    @Test func layoutIsSixLimbsInOrder() {
        #expect(MemoryLayout<FieldElement>.size == 48 && MemoryLayout<Scalar>.size == 48)
        #expect(MemoryLayout<FieldElement>.offset(of: \FieldElement.v0) == 0)
        #expect(MemoryLayout<FieldElement>.offset(of: \FieldElement.v5) == 40)
        #expect(MemoryLayout<Scalar>.offset(of: \Scalar.v5) == 40)
    }

    #if arch(x86_64) && !os(Windows)
        @Test(.enabled(if: qssl_has_adx() != 0, "no ADX on this CPU, or QSSL_P384_PORTABLE=1: the assembly is not used"))
        func assemblyAgreesWithSwift() {
            var rng = SystemRandomNumberGenerator()
            func check<F: MontgomeryField>(_ type: F.Type, mulADX: (F, F) -> F, mulSwift: (F, F) -> F, squareSwift: (F) -> F) {
                var pairs: [(F, F)] = []
                for a in Self.edges(type) { for b in Self.edges(type) { pairs.append((a, b)) } }
                for _ in 0..<20_000 { pairs.append((Self.random(type, &rng), Self.random(type, &rng))) }
                var bad = 0
                for (a, b) in pairs {
                    if !Self.same(mulADX(a, b), mulSwift(a, b)) { bad += 1 }
                    if !Self.same(mulADX(a, a), squareSwift(a)) { bad += 1 }
                }
                #expect(bad == 0, "\(type): \(bad) disagreements in \(pairs.count) pairs")
            }
            check(FieldElement.self, mulADX: FieldElement.mulADX, mulSwift: FieldElement.mulPortable, squareSwift: FieldElement.squarePortable)
            check(Scalar.self, mulADX: Scalar.mulADX, mulSwift: Scalar.mulPortable, squareSwift: Scalar.squarePortable)
            // and a known answer: one (2^384 mod p, Montgomery form of 1) times r2 is r2·2^384·2^-384
            #expect(Self.same(FieldElement.mulADX(.one, .r2), FieldElement.r2))
            #expect(Self.same(Scalar.mulADX(.r2, Scalar(1, 0, 0, 0, 0, 0)), Scalar.one))
        }
    #endif
}
