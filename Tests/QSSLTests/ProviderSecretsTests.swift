import QSSLSwiftCrypto
import Synchronization
import Testing

@testable import QSSL

/// A provider that implements only `hmac` (and what is not a derivation): HKDF-Extract,
/// HKDF-Expand and P_hash are the protocol's defaults over it.
struct HMACOnlyPrimitives: CryptoPrimitives {
    let inner = SwiftCryptoPrimitives()
    func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { inner.hash(algorithm, data) }
    func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] { inner.hmac(algorithm, key: key, data: data) }
    func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try inner.makeAEAD(algorithm, key: key) }
    func randomBytes(_ count: Int) -> [UInt8] { inner.randomBytes(count) }
}

/// RFC 5869 Appendix A.1–A.3 (SHA-256).
struct RFC5869Case: Sendable, CustomStringConvertible {
    let name: String
    let ikm: [UInt8], salt: [UInt8]?, info: [UInt8], length: Int
    let prk: [UInt8], okm: [UInt8]
    var description: String { name }

    static let all = [
        RFC5869Case(
            name: "A.1 basic", ikm: [UInt8](repeating: 0x0B, count: 22), salt: hex("000102030405060708090a0b0c"),
            info: hex("f0f1f2f3f4f5f6f7f8f9"), length: 42,
            prk: hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
            okm: hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")),
        RFC5869Case(
            name: "A.2 longer inputs and outputs", ikm: Array(0x00...0x4F), salt: Array(0x60...0xAF), info: Array(0xB0...0xFF), length: 82,
            prk: hex("06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"),
            okm: hex(
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
            )),
        RFC5869Case(
            name: "A.3 no salt, no info", ikm: [UInt8](repeating: 0x0B, count: 22), salt: nil, info: [], length: 42,
            prk: hex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
            okm: hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"))
    ]
}

@Suite("Provider derivations: RFC 5869 known answers, swift-crypto and the defaults over hmac")
struct ProviderDerivationTests {
    static let providers: [(String, any CryptoPrimitives)] = [("swift-crypto", SwiftCryptoPrimitives()), ("defaults over hmac", HMACOnlyPrimitives())]

    @Test("HKDF-Extract and HKDF-Expand give RFC 5869's PRK and OKM", arguments: RFC5869Case.all)
    func rfc5869(_ vector: RFC5869Case) {
        for (name, p) in Self.providers {
            let prk = p.hkdfExtract(.sha256, salt: vector.salt.map(SecretBytes.init), inputKeyMaterial: SecretBytes(vector.ikm))
            #expect(prk == vector.prk, "\(name)")
            let okm = p.hkdfExpand(.sha256, pseudoRandomKey: prk, info: vector.info, length: vector.length)
            #expect(okm == vector.okm, "\(name)")
        }
    }

    @Test("an empty salt is the absent salt (HashLen zeros), as RFC 5869 §2.2 says", arguments: [HashAlgorithm.sha256, .sha384])
    func emptySalt(hash: HashAlgorithm) {
        for (name, p) in Self.providers {
            let ikm = SecretBytes([UInt8](repeating: 0x0B, count: 22))
            let absent = p.hkdfExtract(hash, salt: nil, inputKeyMaterial: ikm)
            #expect(absent == p.hkdfExtract(hash, salt: SecretBytes([]), inputKeyMaterial: ikm), "\(name)")
            #expect(absent == p.hkdfExtract(hash, salt: SecretBytes(zeros: hash.digestLength), inputKeyMaterial: ikm), "\(name)")
            #expect(absent.count == hash.digestLength)
        }
    }

    @Test("swift-crypto's keyed HKDF-Expand and the default over hmac agree for every length up to 300", arguments: [HashAlgorithm.sha256, .sha384])
    func expandAgrees(hash: HashAlgorithm) {
        let prk = SecretBytes((0..<hash.digestLength).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ 3) })
        let info: [UInt8] = Array("an info string".utf8)
        for length in 1...300 {
            let keyed = SwiftCryptoPrimitives().hkdfExpand(hash, pseudoRandomKey: prk, info: info, length: length)
            let plain = HMACOnlyPrimitives().hkdfExpand(hash, pseudoRandomKey: prk, info: info, length: length)
            #expect(keyed.count == length && keyed == plain, "\(length)")
        }
        // A shorter output is a prefix of a longer one (RFC 5869 §2.3).
        let long = SwiftCryptoPrimitives().hkdfExpand(hash, pseudoRandomKey: prk, info: info, length: 200)
        #expect(long.extracting(0..<77) == SwiftCryptoPrimitives().hkdfExpand(hash, pseudoRandomKey: prk, info: info, length: 77))
    }

    @Test("HKDF-Expand-Label over the provider gives RFC 8448's traffic key and IV (HKDF through the new API)")
    func expandLabelKnownAnswer() throws {
        let rfc = try RFC8448Trace()
        let secret = SecretBytes(try rfc("{server} derive secret \"tls13 s hs traffic\"", "expanded"))
        for p in Self.providers.map(\.1) {
            let keys = TrafficKeys(secret: secret, hkdf: HKDF(primitives: p, hash: .sha256), aead: .aes128GCM)
            #expect(keys.key == (try rfc("{server} derive write traffic keys for handshake data", "key expanded")))
            #expect(keys.iv == (try rfc("{server} derive write traffic keys for handshake data", "iv expanded")))
        }
    }

    @Test("hybrid shared secrets are the components' concatenated, in the group's order, on both sides")
    func hybridSecret() throws {
        let group = SwiftCryptoGroups.x25519MLKEM768
        let (share, pending) = try group.generateClientShare()
        let (answer, serverSecret) = try group.respond(toClientShare: share)
        let clientSecret = try pending.complete(serverShare: answer)
        #expect(serverSecret == clientSecret)
        #expect(serverSecret.count == 32 + 32)
        let parts = [SecretBytes([1, 2, 3]), SecretBytes([]), SecretBytes([4, 5])]
        #expect(SecretBytes(concatenating: parts) == [1, 2, 3, 4, 5])
        #expect(SecretBytes(concatenating: parts).extracting(1..<4) == [2, 3, 4])
    }
}
