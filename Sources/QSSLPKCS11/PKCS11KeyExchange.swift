import CPKCS11
import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire

/// Server key exchange with its ephemeral ECDH in a token (CKM_EC_KEY_PAIR_GEN of a session key
/// pair, then CKM_ECDH1_DERIVE), as in the seed's diagrams: secp384r1 and secp256r1, and the
/// hybrids SecP384r1MLKEM1024 / SecP256r1MLKEM768 with their ECDH half in the token and their
/// ML-KEM half in software (no PKCS#11 3.2 CKM_ML_KEM token is supported yet).
///
/// Off by default. `isSynchronous` is false: a TLS 1.3 server's handshake pauses with a
/// `keyExchange` decision and the token's key generation and derivation run on its signing
/// threads (`respondAsynchronously`), so a slow token never blocks the connection's event loop.
/// The derived secret leaves the token (extractable session object, destroyed at once): the TLS
/// key schedule runs on the host. A client's own shares, and a TLS 1.2 server's, are made in
/// software.
public struct PKCS11ECDHGroup: KeyExchangeGroup {
    public let group: NamedGroup
    let token: PKCS11Token
    let curve: PKCS11KeyAlgorithm
    /// The software group whose client side and ML-KEM half are used (nil for a plain curve).
    let software: any KeyExchangeGroup
    let mlkem: (any KeyExchangeGroup)?
    let counter: DerivationCounter

    /// The groups whose ECDH this token can do (it needs CKM_EC_KEY_PAIR_GEN and CKM_ECDH1_DERIVE).
    /// - Throws: `.mechanismNotSupported` (CKR_MECHANISM_INVALID) when it cannot.
    public static func groups(in token: PKCS11Token) throws(PKCS11Error) -> [PKCS11ECDHGroup] {
        for mechanism in [CKM.ecKeyPairGen, CKM.ecdh1Derive] where !token.supports(mechanism: UInt(mechanism)) {
            throw PKCS11Error(
                .mechanismNotSupported, "token '\(token.info.label)' lacks \(CKM.name(mechanism)), needed for ECDH in the token",
                returnValue: UInt(CKR.mechanismInvalid))
        }
        let counter = DerivationCounter()
        return [
            PKCS11ECDHGroup(
                group: .secp384r1MLKEM1024, token: token, curve: .ecdsaP384, software: SwiftCryptoGroups.secp384r1MLKEM1024,
                mlkem: SwiftCryptoGroups.mlkem1024, counter: counter),
            PKCS11ECDHGroup(
                group: .secp256r1MLKEM768, token: token, curve: .ecdsaP256, software: SwiftCryptoGroups.secp256r1MLKEM768,
                mlkem: SwiftCryptoGroups.mlkem768, counter: counter),
            PKCS11ECDHGroup(group: .secp384r1, token: token, curve: .ecdsaP384, software: SwiftCryptoGroups.secp384r1, mlkem: nil, counter: counter),
            PKCS11ECDHGroup(group: .secp256r1, token: token, curve: .ecdsaP256, software: SwiftCryptoGroups.secp256r1, mlkem: nil, counter: counter)
        ]
    }

    /// How many ECDH derivations the token made for these groups.
    public var derivations: Int { counter.value }

    public func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        try software.generateClientShare()
    }

    /// draft-ietf-tls-ecdhe-mlkem §3: for the NIST-curve hybrids the EC share comes first.
    public func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let (point, kemShare) = try split(share)
        let ec: (share: [UInt8], secret: SecretBytes)
        do { ec = try derive(peerPoint: point) } catch { throw error.tlsError }
        return try combine(ec, kemShare: kemShare)
    }

    public var isSynchronous: Bool { false }

    /// `respond` with the token's part on its signing threads (bounded by its queue and the
    /// signing timeout, as signatures are); the ML-KEM half in software.
    public func respondAsynchronously(toClientShare share: [UInt8]) async throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        let (point, kemShare) = try split(share)
        let result = await token.executor.run(timeout: token.configuration.signingTimeout) {
            [self, point] () throws(PKCS11Error) -> (share: [UInt8], secret: SecretBytes) in
            try derive(peerPoint: point)
        }
        switch result {
        case .success(let ec): return try combine(ec, kemShare: kemShare)
        case .failure(let error): throw error.tlsError
        }
    }

    /// The client's share split into its EC point (checked, before any token work) and, for a
    /// hybrid, its ML-KEM share.
    private func split(_ share: [UInt8]) throws(TLSError) -> (point: [UInt8], kemShare: [UInt8]?) {
        let pointLength = 1 + 2 * curve.coordinateLength
        var point = share
        var kemShare: [UInt8]?
        if mlkem != nil {
            guard share.count > pointLength else { throw .misbehaved(.sentKeyShareWrongLength, "\(group) share of \(share.count) bytes") }
            point = Array(share[..<pointLength])
            kemShare = Array(share[pointLength...])
        }
        try checkPoint(point)
        return (point, kemShare)
    }

    /// The token's ECDH result, with the ML-KEM half added for a hybrid (in software).
    private func combine(_ ec: (share: [UInt8], secret: SecretBytes), kemShare: [UInt8]?) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        guard let mlkem, let kemShare else { return ec }
        let (ciphertext, kemSecret) = try mlkem.respond(toClientShare: kemShare)
        return (ec.share + ciphertext, SecretBytes(concatenating: [ec.secret, kemSecret]))
    }

    /// The peer's point is checked here (RFC 8446 §4.2.8.2, PROTOCOL.md §1) before the token sees it.
    private func checkPoint(_ point: [UInt8]) throws(TLSError) {
        let pointLength = 1 + 2 * curve.coordinateLength
        guard point.count == pointLength else {
            if point.count == 1 + curve.coordinateLength, point.first == 2 || point.first == 3 {
                throw .misbehaved(.sentPointNotUncompressed, "\(group) compressed point")
            }
            throw .misbehaved(.sentKeyShareWrongLength, "\(group) point of \(point.count) bytes")
        }
        guard point[0] == 0x04 else { throw .misbehaved(.sentPointNotUncompressed, "\(group) point format \(point[0])") }
        let onCurve =
            curve == .ecdsaP384
            ? (try? P384.KeyAgreement.PublicKey(x963Representation: point)) != nil
            : (try? P256.KeyAgreement.PublicKey(x963Representation: point)) != nil
        guard onCurve else { throw .misbehaved(.sentPointNotOnCurve, "\(group) point is not on the curve") }
    }

    /// An ephemeral key pair in the token, ECDH with the peer's point, the x coordinate read back,
    /// and every session object destroyed.
    func derive(peerPoint: [UInt8]) throws(PKCS11Error) -> (share: [UInt8], secret: SecretBytes) {
        let params = KeyEncoding.ecParameters(curve == .ecdsaP384 ? OID.secp384r1 : OID.secp256r1)
        let publicTemplate = AttributeTemplate().add(CKA.token, bool: false).add(CKA.ecParams, bytes: params)
        let privateTemplate = AttributeTemplate().add(CKA.token, bool: false).add(CKA.derive, bool: true).add(CKA.sensitive, bool: true)
        let secretTemplate = AttributeTemplate()
            .add(CKA.class, ulong: CKO.secretKey).add(CKA.keyType, ulong: CKK.genericSecret).add(CKA.token, bool: false)
            .add(CKA.sensitive, bool: false).add(CKA.extractable, bool: true).add(CKA.valueLen, ulong: CK_ULONG(curve.coordinateLength))
        let result = try token.withSession { f, session throws(PKCS11Error) -> ([UInt8], SecretBytes) in
            var generate = CK_MECHANISM(mechanism: CKM.ecKeyPairGen, pParameter: nil, ulParameterLen: 0)
            var publicAttributes = publicTemplate.attributes
            var privateAttributes = privateTemplate.attributes
            var publicHandle: CK_OBJECT_HANDLE = 0
            var privateHandle: CK_OBJECT_HANDLE = 0
            try check(
                f.C_GenerateKeyPair!(
                    session, &generate, &publicAttributes, publicTemplate.count, &privateAttributes, privateTemplate.count,
                    &publicHandle, &privateHandle), "C_GenerateKeyPair", "ephemeral \(group) key")
            defer {
                _ = f.C_DestroyObject!(session, publicHandle)
                _ = f.C_DestroyObject!(session, privateHandle)
            }
            guard let attribute = try f.attribute(session, publicHandle, CKA.ecPoint),
                let share = KeyEncoding.ecPoint(attribute, coordinateLength: curve.coordinateLength)
            else {
                throw PKCS11Error(.objectNotFound, "the ephemeral \(group) key has no CKA_EC_POINT")
            }
            // An uncompressed point of the curve's size, whatever the token's encoding: anything
            // else is not sent (nor split from the secret at a wrong place).
            guard share.count == 1 + 2 * curve.coordinateLength, share.first == 0x04 else {
                throw PKCS11Error(.objectNotFound, "the ephemeral \(group) key's CKA_EC_POINT is not an uncompressed point of its curve")
            }
            var peer = peerPoint
            return try peer.withUnsafeMutableBufferPointer { buffer throws(PKCS11Error) -> ([UInt8], SecretBytes) in
                var ecdh = CK_ECDH1_DERIVE_PARAMS(
                    kdf: ckdNull, ulSharedDataLen: 0, pSharedData: nil,
                    ulPublicDataLen: CK_ULONG(buffer.count), pPublicData: buffer.baseAddress)
                return try withUnsafeMutablePointer(to: &ecdh) { p throws(PKCS11Error) -> ([UInt8], SecretBytes) in
                    var derive = CK_MECHANISM(
                        mechanism: CKM.ecdh1Derive, pParameter: UnsafeMutableRawPointer(p),
                        ulParameterLen: CK_ULONG(MemoryLayout<CK_ECDH1_DERIVE_PARAMS>.size))
                    var attributes = secretTemplate.attributes
                    var secretHandle: CK_OBJECT_HANDLE = 0
                    try check(
                        f.C_DeriveKey!(session, &derive, privateHandle, &attributes, secretTemplate.count, &secretHandle),
                        "C_DeriveKey", "CKM_ECDH1_DERIVE, \(group)")
                    defer { _ = f.C_DestroyObject!(session, secretHandle) }
                    guard let secret = try f.secretAttribute(session, secretHandle, CKA.value, length: curve.coordinateLength) else {
                        throw PKCS11Error(.objectNotFound, "the derived \(group) secret could not be read")
                    }
                    return (share, secret)
                }
            }
        }
        counter.increment()
        return result
    }
}

extension CryptoProvider {
    /// swift-crypto with the server's ephemeral ECDH (the NIST curves and their ML-KEM hybrids)
    /// made in `token`. Off unless asked for; see `PKCS11ECDHGroup` for what it costs.
    public static func swiftCryptoWithTokenECDH(_ token: PKCS11Token) throws(PKCS11Error) -> CryptoProvider {
        let hsmGroups = try PKCS11ECDHGroup.groups(in: token)
        let software = CryptoProvider.swiftCrypto
        let groups = software.keyExchangeGroups.map { group in hsmGroups.first { $0.group == group.group } ?? group }
        return CryptoProvider(primitives: software.primitives, keyExchangeGroups: groups)
    }
}

final class DerivationCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
