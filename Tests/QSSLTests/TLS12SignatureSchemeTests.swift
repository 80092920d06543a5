import Crypto
@testable import QSSL
import QSSLSwiftCrypto
import QSSLX509
import QSSLWire
import Testing

/// TLS 1.2 reads an ECDSA code point as a hash and ECDSA on any curve (RFC 5246 §7.4.1.4.1,
/// RFC 8422 §5.10); TLS 1.3 binds the curve too (RFC 8446 §4.2.3). BoringSSL servers with a
/// P-384 key sign their ServerKeyExchange as ecdsa_secp256r1_sha256 (found by the swift-nio-ssl
/// interop suite).
@Suite("TLS 1.2's reading of ECDSA signature schemes")
struct TLS12SignatureSchemeTests {
    static let message = Array("ServerKeyExchange: client_random ‖ server_random ‖ params".utf8)

    /// The key as the handshake gets it from a certificate (Q-SSL's own P-384 inside).
    static func p384Key(_ k: P384.Signing.PrivateKey) throws -> CertificatePublicKey {
        try CertificatePublicKey(subjectPublicKeyInfo: Array(k.publicKey.derRepresentation))
    }

    @Test("a P-384 key's SHA-256 signature verifies as TLS 1.2's ecdsa_secp256r1_sha256, not as TLS 1.3's")
    func p384WithSHA256() throws {
        let signer = P384.Signing.PrivateKey()
        let key = try Self.p384Key(signer)
        let signature = Array(try signer.signature(for: SHA256.hash(data: Self.message)).derRepresentation)
        try key.verifyTLS12(signature: signature, scheme: .ecdsaSecp256r1SHA256, message: Self.message)
        // TLS 1.3: the scheme does not suit a P-384 key.
        do {
            try key.verify(signature: signature, scheme: .ecdsaSecp256r1SHA256, message: Self.message)
        } catch {
            #expect(error.code.misbehavior == .usedUnofferedSignatureScheme)
        }
    }

    @Test("the hash is the scheme's: a SHA-384 signature presented as SHA-256, or another message, does not verify")
    func hashMustMatch() throws {
        let signer = P384.Signing.PrivateKey()
        let key = try Self.p384Key(signer)
        let sha384 = Array(try signer.signature(for: SHA384.hash(data: Self.message)).derRepresentation)
        let sha256 = Array(try signer.signature(for: SHA256.hash(data: Self.message)).derRepresentation)
        for (signature, scheme, message) in [
            (sha384, SignatureScheme.ecdsaSecp256r1SHA256, Self.message),
            (sha256, .ecdsaSecp384r1SHA384, Self.message),
            (sha256, .ecdsaSecp256r1SHA256, Self.message + [0]),
            (Array(sha256.dropLast()), .ecdsaSecp256r1SHA256, Self.message)
        ] {
            do {
                try key.verifyTLS12(signature: signature, scheme: scheme, message: message)
                Issue.record("\(scheme) verified what it should not")
            } catch {
                #expect(error.code.misbehavior == .sentInvalidSignature, "\(error)")
            }
        }
        // The matching pair goes the TLS 1.3 way.
        try key.verifyTLS12(signature: sha384, scheme: .ecdsaSecp384r1SHA384, message: Self.message)
    }

    @Test("malformed signatures on the cross-curve path: empty, cut, trailing bytes, long-form lengths, 4 KiB of garbage, zero r and s: decrypt_error, no crash")
    func malformedSignatures() throws {
        let signer = P384.Signing.PrivateKey()
        let key = try Self.p384Key(signer)
        let good = Array(try signer.signature(for: SHA256.hash(data: Self.message)).derRepresentation)
        var longForm = good
        longForm.replaceSubrange(1..<2, with: [0x81, good[1]])  // SEQUENCE length in long form (not DER)
        let cases: [[UInt8]] = [
            [], [0x30], Array(good.prefix(good.count / 2)), good + [0x00], longForm,
            [UInt8](repeating: 0xFF, count: 4096), [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        ]
        for signature in cases {
            do {
                try key.verifyTLS12(signature: signature, scheme: .ecdsaSecp256r1SHA256, message: Self.message)
                Issue.record("a malformed signature of \(signature.count) bytes verified")
            } catch {
                #expect(error.code.misbehavior == .sentInvalidSignature, "\(signature.count) bytes: \(error)")
            }
        }
        try key.verifyTLS12(signature: good, scheme: .ecdsaSecp256r1SHA256, message: Self.message)
    }

    @Test("a P-256 key's SHA-384 and SHA-512 signatures verify under TLS 1.2's schemes")
    func p256WithLongerHashes() throws {
        let signer = P256.Signing.PrivateKey()
        let key = SwiftCryptoPublicKey.p256(signer.publicKey)
        let sha384 = Array(try signer.signature(for: SHA384.hash(data: Self.message)).derRepresentation)
        let sha512 = Array(try signer.signature(for: SHA512.hash(data: Self.message)).derRepresentation)
        try key.verifyTLS12(signature: sha384, scheme: .ecdsaSecp384r1SHA384, message: Self.message)
        try key.verifyTLS12(signature: sha512, scheme: .ecdsaSecp521r1SHA512, message: Self.message)
        #expect(throws: TLSError.self) { try key.verifyTLS12(signature: sha384, scheme: .ecdsaSecp521r1SHA512, message: Self.message) }
    }

    @Test("other keys are not loosened: an ECDSA scheme on an RSA, Ed25519, ML-DSA or composite key is refused in TLS 1.2 too")
    func otherKeysUnchanged() throws {
        for algorithm in [PKIBuilder.Algorithm.rsa3072PSS, .ed25519, .mldsa65, .mldsa65ECDSAP384] {
            let pki = try DemoPKI(algorithm: algorithm)
            let key = try X509CertificateVerifier.publicKey(of: pki.serverCertificate)
            for scheme in [SignatureScheme.ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384] {
                do {
                    try key.verifyTLS12(signature: [0x30, 0x00], scheme: scheme, message: Self.message)
                    Issue.record("\(scheme) verified on a \(algorithm) key")
                } catch {
                    #expect(error.code.misbehavior == .usedUnofferedSignatureScheme, "\(algorithm): \(error)")
                }
            }
        }
    }

    static func peer(_ key: any PeerPublicKey) -> VerifiedPeer {
        VerifiedPeer(
            publicKey: key,
            identity: PeerIdentity(
                verifiedChain: [], subject: "CN=peer", subjectAlternativeNames: [], keyAlgorithm: "ECDSA", certificateSignatureAlgorithm: "ECDSA"))
    }

    @Test("the handshake's proof: strict for TLS 1.3 and the hybrid suites; TLS 1.2's reading only for a key kind we accept")
    func proofReadings() throws {
        let p384 = P384.Signing.PrivateKey()
        let peer = Self.peer(try Self.p384Key(p384))
        let sha256 = Array(try p384.signature(for: SHA256.hash(data: Self.message)).derRepresentation)
        // TLS 1.3 CertificateVerify (client, server, post-handshake) and the hybrid TLS 1.2 suites.
        do {
            _ = try PeerSignatureVerified(signature: sha256, scheme: .ecdsaSecp256r1SHA256, content: Self.message, peer: peer, reading: .strict)
            Issue.record("the strict reading accepted SHA-256 on a P-384 key")
        } catch {
            #expect(error.code.misbehavior == .usedUnofferedSignatureScheme)
        }
        // TLS 1.2, accepting P-384 keys (their own scheme is in the list).
        let proof = try PeerSignatureVerified(
            signature: sha256, scheme: .ecdsaSecp256r1SHA256, content: Self.message, peer: peer,
            reading: .tls12(accepting: [.ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384]))
        #expect(proof.identity.handshakeSignatureScheme == .ecdsaSecp256r1SHA256)
        // TLS 1.2 with a list that accepts P-256 keys only: a P-384 key is refused, whatever it signs.
        do {
            _ = try PeerSignatureVerified(
                signature: sha256, scheme: .ecdsaSecp256r1SHA256, content: Self.message, peer: peer, reading: .tls12(accepting: [.ecdsaSecp256r1SHA256]))
            Issue.record("a P-384 key passed a list without P-384")
        } catch {
            #expect(error.code.misbehavior == .usedUnofferedSignatureScheme)
        }
        // And a P-256 key against a P-384-only list, though it signs with SHA-384.
        let p256 = P256.Signing.PrivateKey()
        let sha384 = Array(try p256.signature(for: SHA384.hash(data: Self.message)).derRepresentation)
        do {
            _ = try PeerSignatureVerified(
                signature: sha384, scheme: .ecdsaSecp384r1SHA384, content: Self.message, peer: Self.peer(SwiftCryptoPublicKey.p256(p256.publicKey)),
                reading: .tls12(accepting: [.ecdsaSecp384r1SHA384]))
            Issue.record("a P-256 key passed a P-384-only list")
        } catch {
            #expect(error.code.misbehavior == .usedUnofferedSignatureScheme)
        }
    }
}
