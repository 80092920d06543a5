import Crypto
import FuzzSupport
import QSSLP384

// Differential fuzzing of Q-SSL's P-384 against swift-crypto's (BoringSSL): both must accept
// and refuse the same keys, points and signatures, and agree on every result. Byte 0 picks
// the mode; any disagreement traps.
//   0: private scalar (48) ‖ peer point (rest): key acceptance, public key, ECDH secret
//   1: point (97) ‖ DER signature (rest, up to the last 48 bytes) ‖ digest (48): verification
//   2: private scalar (48) ‖ message (rest): signing (hedged nonce seeded from the input) checked
//      by swift-crypto, and public key equality
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    switch mode % 3 {
    case 0: ecdh(body)
    case 1: verify(body)
    default: sign(body)
    }
    return 0
}

func disagree(_ what: String) -> Never { fatalError("QSSLP384 and swift-crypto disagree: \(what)") }

func ecdh(_ body: [UInt8]) {
    guard body.count >= 48 else { return }
    let scalar = Array(body.prefix(48))
    let point = Array(body.dropFirst(48))
    let ours = try? NISTP384.PrivateKey(rawRepresentation: scalar)
    let reference = try? P384.KeyAgreement.PrivateKey(rawRepresentation: scalar)
    guard (ours == nil) == (reference == nil) else { disagree("private scalar acceptance") }
    guard let ours, let reference else { return }
    guard ours.publicKey.x963Representation == Array(reference.publicKey.x963Representation) else { disagree("public key") }
    let ourPeer = try? NISTP384.PublicKey(x963Representation: point)
    // swift-crypto also takes compressed points; Q-SSL refuses them (PROTOCOL.md §1)
    let referencePeer = point.count == 97 ? try? P384.KeyAgreement.PublicKey(x963Representation: point) : nil
    guard (ourPeer == nil) == (referencePeer == nil) else { disagree("point acceptance") }
    guard let ourPeer, let referencePeer else { return }
    let secret = try? ours.sharedSecret(with: ourPeer)
    let expected = try? reference.sharedSecretFromKeyAgreement(with: referencePeer).withUnsafeBytes { Array($0) }
    guard secret == expected else { disagree("shared secret") }
}

func verify(_ body: [UInt8]) {
    guard body.count >= 97 + 48 else { return }
    let point = Array(body.prefix(97))
    let digest = Array(body.suffix(48))
    let der = Array(body.dropFirst(97).dropLast(48))
    guard let ourKey = try? NISTP384.PublicKey(x963Representation: point),
        let referenceKey = try? P384.Signing.PublicKey(x963Representation: point)
    else { return }
    let ourSignature = try? NISTP384.Signature(derRepresentation: der)
    let referenceSignature = try? P384.Signing.ECDSASignature(derRepresentation: der)
    let ours = ourSignature.map { ourKey.isValidSignature($0, forDigest: digest) } ?? false
    let theirs = referenceSignature.map { referenceKey.isValidSignature($0, for: RawDigest(bytes: digest)) } ?? false
    guard ours == theirs else { disagree("verification of \(der)") }
    if let ourSignature, ourSignature.derRepresentation != der, ours { disagree("accepted a non-canonical DER signature") }
}

func sign(_ body: [UInt8]) {
    guard body.count >= 48 else { return }
    let scalar = Array(body.prefix(48))
    let message = Array(body.dropFirst(48))
    guard let ours = try? NISTP384.PrivateKey(rawRepresentation: scalar),
        let reference = try? P384.Signing.PrivateKey(rawRepresentation: scalar)
    else { return }
    let signature = ours.signature(for: message)
    guard let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature.derRepresentation),
        reference.publicKey.isValidSignature(parsed, for: message)
    else { disagree("our signature does not verify") }
    guard let theirs = try? reference.signature(for: message),
        let back = try? NISTP384.Signature(derRepresentation: theirs.derRepresentation),
        ours.publicKey.isValidSignature(back, for: message)
    else { disagree("their signature does not verify") }
}

/// A 48-byte digest given as is, for swift-crypto's digest-taking verifier.
struct RawDigest: Digest {
    static let byteCount = 48
    let bytes: [UInt8]
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try bytes.withUnsafeBytes(body) }
    func makeIterator() -> Array<UInt8>.Iterator { bytes.makeIterator() }
    var description: String { "RawDigest" }
    func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
}
