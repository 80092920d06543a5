import Crypto
import QSSL
import QSSLSwiftCrypto
import QSSLWire

/// Composite ML-DSA-65 + ECDSA-P384 (PROTOCOL.md §2) with its ECDSA half in a token, and its
/// ML-DSA-65 half in the same token when it has PKCS#11 3.2 CKM_ML_DSA, else in software.
///
/// Both halves sign M′ (draft-ietf-lamps-pq-composite-sigs §4.2): the token's ECDSA key signs
/// SHA-384(M′) with CKM_ECDSA, the ML-DSA half signs M′ with the composite label as its FIPS 204
/// context; the signature is ML-DSA-65 (3309 bytes) ‖ DER ECDSA. The halves run at the same
/// time, the token's on its signing threads.
public struct PKCS11CompositeKey: SigningKey, CustomStringConvertible {
    /// Where the ML-DSA-65 half lives.
    public enum MLDSAHalf: Sendable {
        /// In the token (CKM_ML_DSA).
        case token(PKCS11SigningKey)
        /// In memory: the token has no ML-DSA.
        case software(MLDSA65.PrivateKey)
    }

    public let ecdsa: PKCS11SigningKey
    public let mldsa: MLDSAHalf
    public let publicKey: CompositeMLDSA65ECDSAP384.PublicKey

    /// Pairs a token P-384 key with an ML-DSA-65 half.
    /// - Throws: `.unsupportedKey` unless `ecdsa` is a P-384 key and a token half is ML-DSA-65.
    public init(ecdsa: PKCS11SigningKey, mldsa: MLDSAHalf) throws(PKCS11Error) {
        guard ecdsa.algorithm == .ecdsaP384, case .p384(let ecdsaPublic) = ecdsa.publicKey else {
            throw PKCS11Error(.unsupportedKey, "the ECDSA half of a composite ML-DSA-65 + ECDSA-P384 key must be P-384, not \(ecdsa.algorithm)")
        }
        let mldsaPublic: [UInt8]
        switch mldsa {
        case .token(let key):
            guard key.algorithm == .mldsa65, case .mldsa65(let k) = key.publicKey else {
                throw PKCS11Error(.unsupportedKey, "the ML-DSA half of a composite ML-DSA-65 + ECDSA-P384 key must be ML-DSA-65, not \(key.algorithm)")
            }
            mldsaPublic = Array(k.rawRepresentation)
        case .software(let k):
            mldsaPublic = Array(k.publicKey.rawRepresentation)
        }
        self.ecdsa = ecdsa
        self.mldsa = mldsa
        do { publicKey = try CompositeMLDSA65ECDSAP384.PublicKey(rawRepresentation: mldsaPublic + Array(ecdsaPublic.x963Representation)) } catch {
            throw PKCS11Error(.unsupportedKey, "composite public key: \(error)")
        }
    }

    public var supportedSchemes: [SignatureScheme] { [.qsslMLDSA65ECDSASecp384r1SHA512] }
    public var isSynchronous: Bool { false }

    /// Whether the ML-DSA half is in the token.
    public var isMLDSAInToken: Bool {
        if case .token = mldsa { return true }
        return false
    }

    /// "ECDSA P-384 half in token 'web' (CKM_ECDSA), ML-DSA-65 half in software (the token has no CKM_ML_DSA)".
    public var placement: String {
        let ecdsaPart = "ECDSA P-384 half in token '\(ecdsa.token.info.label)' (CKM_ECDSA)"
        switch mldsa {
        case .token(let key): return ecdsaPart + ", ML-DSA-65 half in token '\(key.token.info.label)' (CKM_ML_DSA)"
        case .software:
            return ecdsaPart + ", ML-DSA-65 half in software (" + (ecdsa.token.supportsMLDSA ? "no ML-DSA key in the token" : "the token has no CKM_ML_DSA")
                + ")"
        }
    }

    public var description: String { "composite ML-DSA-65 + ECDSA-P384 key '\(ecdsa.label)': \(placement)" }

    /// SubjectPublicKeyInfo: ML-DSA-65 public key (1952) ‖ P-384 point (97), composite OID.
    public var subjectPublicKeyInfo: [UInt8] {
        KeyEncoding.subjectPublicKeyInfo(algorithm: OID.mldsa65ECDSAP384SHA512, key: publicKey.rawRepresentation)
    }

    /// Signs on the calling thread, blocking it while the token signs.
    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        let m = try representative(message, scheme: scheme)
        let mldsaSignature: [UInt8]
        switch mldsa {
        case .token(let key):
            do { mldsaSignature = try key.run(.mldsa(message: m, context: CompositeMLDSA65ECDSAP384.label)) } catch { throw error.tlsError }
        case .software(let key):
            mldsaSignature = try Self.softwareSign(key, m)
        }
        let operation = SignOperation.ecdsa(digest: Array(SHA384.hash(data: m)), algorithm: .ecdsaP384)
        do { return mldsaSignature + (try operation.finish(try ecdsa.run(operation))) } catch { throw error.tlsError }
    }

    /// Signs with the ECDSA half on the token's threads and, meanwhile, the ML-DSA half in the
    /// token too or in software here.
    public func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        let m = try representative(message, scheme: scheme)
        let ecdsaOperation = SignOperation.ecdsa(digest: Array(SHA384.hash(data: m)), algorithm: .ecdsaP384)
        let token = ecdsa.token
        let ecdsaKey = ecdsa
        if case .token(let key) = mldsa, key.token === token {
            // One job for both halves: a token with one signing thread and no queue can still sign.
            let operation = SignOperation.mldsa(message: m, context: CompositeMLDSA65ECDSAP384.label)
            let both = await token.executor.run(timeout: token.configuration.signingTimeout) { () throws(PKCS11Error) -> [UInt8] in
                try key.run(operation) + (try ecdsaOperation.finish(try ecdsaKey.run(ecdsaOperation)))
            }
            do { return try both.get() } catch { throw error.tlsError }
        }
        async let ecdsaResult = token.executor.run(timeout: token.configuration.signingTimeout) { () throws(PKCS11Error) -> [UInt8] in
            try ecdsaOperation.finish(try ecdsaKey.run(ecdsaOperation))
        }
        let mldsaResult: Result<[UInt8], PKCS11Error>
        switch mldsa {
        case .token(let key):
            let operation = SignOperation.mldsa(message: m, context: CompositeMLDSA65ECDSAP384.label)
            mldsaResult = await key.token.executor.run(timeout: key.token.configuration.signingTimeout) { () throws(PKCS11Error) -> [UInt8] in
                try key.run(operation)
            }
        case .software(let key):
            do { mldsaResult = .success(try Self.softwareSign(key, m)) } catch {
                _ = await ecdsaResult
                throw error
            }
        }
        switch (mldsaResult, await ecdsaResult) {
        case (.success(let a), .success(let b)): return a + b
        case (.failure(let e), _), (_, .failure(let e)): throw e.tlsError
        }
    }

    private func representative(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        guard scheme == .qsslMLDSA65ECDSASecp384r1SHA512 else { throw .misuse("\(self) cannot sign with \(scheme)") }
        return try CompositeMLDSA65ECDSAP384.messageRepresentative(message)
    }

    private static func softwareSign(_ key: MLDSA65.PrivateKey, _ m: [UInt8]) throws(TLSError) -> [UInt8] {
        do { return Array(try key.signature(for: m, context: CompositeMLDSA65ECDSAP384.label)) } catch {
            throw .crypto("composite ML-DSA-65 half: \(error)")
        }
    }
}

extension PKCS11Token {
    /// The composite key whose ECDSA P-384 half `uri` names. Its ML-DSA-65 half is the token's
    /// ML-DSA-65 private key with the same label when the token has CKM_ML_DSA and such a key;
    /// otherwise `softwareMLDSA`.
    /// - Throws: `.objectNotFound` when neither half is available.
    public func compositeKey(matching uri: PKCS11URI, softwareMLDSA: MLDSA65.PrivateKey?) throws(PKCS11Error) -> PKCS11CompositeKey {
        let keys = try privateKeys(matching: uri)
        let ecdsaKeys = keys.filter { $0.algorithm == .ecdsaP384 }
        guard ecdsaKeys.count == 1 else {
            if ecdsaKeys.isEmpty {
                throw PKCS11Error(.objectNotFound, "no ECDSA P-384 private key matches \(uri) in token '\(info.label)' (the composite key's ECDSA half)")
            }
            throw PKCS11Error(.ambiguousObject, "\(ecdsaKeys.count) ECDSA P-384 keys match \(uri)")
        }
        if let mldsaKey = keys.first(where: { $0.algorithm == .mldsa65 }) {
            return try PKCS11CompositeKey(ecdsa: ecdsaKeys[0], mldsa: .token(mldsaKey))
        }
        guard let softwareMLDSA else {
            let why = supportsMLDSA ? "the token has no ML-DSA-65 key matching \(uri)" : "token '\(info.label)' has no CKM_ML_DSA"
            throw PKCS11Error(.objectNotFound, "composite key \(uri): \(why); give the ML-DSA-65 half as a software key")
        }
        return try PKCS11CompositeKey(ecdsa: ecdsaKeys[0], mldsa: .software(softwareMLDSA))
    }
}
