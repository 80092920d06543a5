import Foundation
import QSSL
import QSSLSwiftCrypto
import Testing

/// draft-ietf-lamps-pq-composite-sigs-19's own vectors for id-MLDSA65-ECDSA-P384-SHA512
/// (copied into Tests/QSSLTests/Resources).
struct CompositeVectors {
    let message: [UInt8]
    let context: [UInt8]
    let publicKey: [UInt8]
    let privateKey: [UInt8]
    let signature: [UInt8]
    let signatureWithContext: [UInt8]

    /// The draft's top-level JSON and its `id-MLDSA65-ECDSA-P384-SHA512` test case, copied into
    /// Resources/ (see Resources/README.md for where they come from).
    static func load() throws -> (json: [String: Any], test: [String: String]) {
        let url = try #require(Bundle.module.url(forResource: "composite-sigs-draft19-mldsa65-ecdsa-p384", withExtension: "json", subdirectory: "Resources"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let tests = try #require(json["tests"] as? [[String: String]])
        let t = try #require(tests.first { $0["tcId"] == "id-MLDSA65-ECDSA-P384-SHA512" })
        return (json, t)
    }

    init() throws {
        let (json, t) = try Self.load()
        func b64(_ s: String?) throws -> [UInt8] {
            let text = try #require(s)
            return Array(try #require(Data(base64Encoded: text)))
        }
        message = try b64(json["m"] as? String)
        context = try b64(json["ctx"] as? String)
        publicKey = try b64(t["pk"])
        privateKey = try b64(t["sk"])
        signature = try b64(t["s"])
        signatureWithContext = try b64(t["sWithContext"])
    }
}

@Suite("Composite ML-DSA-65 + ECDSA-P384 (draft-19 vectors)")
struct CompositeTests {
    let v: CompositeVectors
    init() throws { v = try CompositeVectors() }

    @Test("the draft's public key parses and both of its signatures verify")
    func verifiesDraftSignatures() throws {
        let pk = try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: v.publicKey)
        #expect(pk.rawRepresentation == v.publicKey)
        #expect(pk.isValidSignature(v.signature, for: v.message))
        #expect(pk.isValidSignature(v.signatureWithContext, for: v.message, context: v.context))
        // The context is bound: each signature fails under the other's context.
        #expect(!pk.isValidSignature(v.signature, for: v.message, context: v.context))
        #expect(!pk.isValidSignature(v.signatureWithContext, for: v.message))
    }

    @Test("the draft's private key derives the draft's public key and signs what it verifies")
    func privateKeySigns() throws {
        let sk = try CompositeMLDSA65ECDSAP384.PrivateKey(rawRepresentation: v.privateKey)
        #expect(sk.publicKey.rawRepresentation == v.publicKey)
        let sig = try sk.signature(for: Array("Q-SSL".utf8))
        let pk = try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: v.publicKey)
        #expect(pk.isValidSignature(sig, for: Array("Q-SSL".utf8)))
        #expect(!pk.isValidSignature(sig, for: Array("Q-SSM".utf8)))
    }

    @Test("a tampered ML-DSA half and a tampered ECDSA half each fail on their own (AND verification)")
    func andVerification() throws {
        let pk = try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: v.publicKey)
        var mldsaTampered = v.signature
        mldsaTampered[100] ^= 0x01
        #expect(pk.failingHalves(mldsaTampered, for: v.message) == ["ML-DSA-65"])
        var ecdsaTampered = v.signature
        ecdsaTampered[ecdsaTampered.count - 3] ^= 0x01
        #expect(pk.failingHalves(ecdsaTampered, for: v.message) == ["ECDSA-P384"])
        #expect(pk.failingHalves(Array(v.signature.prefix(3309)), for: v.message) == ["ECDSA-P384"])
        #expect(!pk.isValidSignature([], for: v.message))
    }

    @Test("malformed composite keys are rejected with bad_certificate")
    func malformedKeys() {
        #expect(throws: TLSError.self) { _ = try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: Array(v.publicKey.dropLast())) }
        #expect((try? CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: [])) == nil)
        #expect((try? CompositeMLDSA65ECDSAP384.PrivateKey(rawRepresentation: Array(v.privateKey.prefix(40)))) == nil)
    }
}
