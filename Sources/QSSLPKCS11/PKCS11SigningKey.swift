import CPKCS11
import Crypto
import QSSL
import QSSLSwiftCrypto
import QSSLWire

/// A private key in a token, signing TLS handshakes with the key never leaving it.
///
/// `isSynchronous` is false: the handshake pauses with a `sign` decision, the NIO adapter
/// resolves it off the event loop, and `signAsynchronously` runs C_SignInit/C_Sign on the
/// token's own threads (bounded by `PKCS11Token.Configuration`). The host hashes (CKM_ECDSA and
/// CKM_RSA_PKCS_PSS take the digest), so only 32–64 bytes go to the token; ECDSA's raw r‖s comes
/// back and is DER-encoded here, as TLS wants it.
public struct PKCS11SigningKey: SigningKey, CustomStringConvertible {
    public let token: PKCS11Token
    public let algorithm: PKCS11KeyAlgorithm
    /// CKA_LABEL and CKA_ID of the private key.
    public let label: String
    public let id: [UInt8]
    /// The public half read back from the token, as a SubjectPublicKeyInfo (DER).
    public let subjectPublicKeyInfo: [UInt8]
    /// The public half as a key that verifies (used to check the key pair when loading).
    public let publicKey: SwiftCryptoPublicKey
    let handle: CK_OBJECT_HANDLE

    public var supportedSchemes: [SignatureScheme] { algorithm.schemes }
    /// Signing waits on a device: the handshake pauses rather than block its thread.
    public var isSynchronous: Bool { false }

    /// The URI that finds this key.
    public var uri: PKCS11URI {
        var uri = PKCS11URI(token: token.info.label, object: label, type: .private)
        if !id.isEmpty { uri.id = id }
        return uri
    }

    public var description: String { "\(algorithm) key '\(label)' in token '\(token.info.label)'" }

    /// Signs on the calling thread, blocking it until the token answers (tools, certificate
    /// issuing). Also accepts rsa_pkcs1_sha256/384/512 for RSA keys, which certificates use.
    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        let operation = try prepare(message, scheme: scheme)
        do { return try operation.finish(try run(operation)) } catch { throw error.tlsError }
    }

    /// Signs on the token's signing threads. Fails at once with internal_error when their queue
    /// is full, and after `signingTimeout` when the token does not answer.
    public func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        let operation = try prepare(message, scheme: scheme)
        let result = await token.executor.run(timeout: token.configuration.signingTimeout) { [self] () throws(PKCS11Error) -> [UInt8] in
            try run(operation)
        }
        switch result {
        case .success(let output):
            do { return try operation.finish(output) } catch { throw error.tlsError }
        case .failure(let error):
            throw error.tlsError
        }
    }

    /// A raw C_SignInit/C_Sign with any mechanism over `data` (no hashing, no encoding), blocking
    /// the calling thread: for tools and tests.
    public func sign(mechanism: UInt, data: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        try run(SignOperation(mechanism: CK_MECHANISM_TYPE(mechanism), input: data, outputLength: 1024))
    }

    /// Signs and verifies a test message with the public half read back: a key whose public
    /// object does not belong to it, or a token that cannot sign, fails here and not mid-handshake.
    public func checkKeyPair() throws(PKCS11Error) {
        let message = Array("Q-SSL PKCS#11 key pair check".utf8)
        let scheme = supportedSchemes[0]
        let signature: [UInt8]
        do { signature = try sign(message, scheme: scheme) } catch {
            throw PKCS11Error(.unsupportedKey, "\(self) cannot sign: \(error)")
        }
        do { try publicKey.verify(signature: signature, scheme: scheme, message: message) } catch {
            throw PKCS11Error(.objectNotFound, "the public key found for \(self) does not verify its signature: the public object belongs to another key")
        }
    }

    // MARK: - Mechanisms

    /// RFC 8446 §4.2.3 schemes to a mechanism, its input and how to encode its output.
    func prepare(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> SignOperation {
        switch (algorithm.mechanism, scheme) {
        case (CKM.ecdsa, .ecdsaSecp256r1SHA256) where algorithm == .ecdsaP256:
            return .ecdsa(digest: Array(SHA256.hash(data: message)), algorithm: algorithm)
        case (CKM.ecdsa, .ecdsaSecp384r1SHA384) where algorithm == .ecdsaP384:
            return .ecdsa(digest: Array(SHA384.hash(data: message)), algorithm: algorithm)
        case (CKM.rsaPKCSPSS, .rsaPSSRSAESHA256):
            return .rsaPSS(digest: Array(SHA256.hash(data: message)), hash: CKM.sha256, mgf: CKG.mgf1SHA256, modulusBits: algorithm.bits)
        case (CKM.rsaPKCSPSS, .rsaPSSRSAESHA384):
            return .rsaPSS(digest: Array(SHA384.hash(data: message)), hash: CKM.sha384, mgf: CKG.mgf1SHA384, modulusBits: algorithm.bits)
        case (CKM.rsaPKCSPSS, .rsaPSSRSAESHA512):
            return .rsaPSS(digest: Array(SHA512.hash(data: message)), hash: CKM.sha512, mgf: CKG.mgf1SHA512, modulusBits: algorithm.bits)
        case (CKM.rsaPKCSPSS, .rsaPKCS1SHA256):
            return .rsaPKCS1(digestInfo: SignOperation.sha256DigestInfo + Array(SHA256.hash(data: message)), modulusBits: algorithm.bits)
        case (CKM.rsaPKCSPSS, .rsaPKCS1SHA384):
            return .rsaPKCS1(digestInfo: SignOperation.sha384DigestInfo + Array(SHA384.hash(data: message)), modulusBits: algorithm.bits)
        case (CKM.rsaPKCSPSS, .rsaPKCS1SHA512):
            return .rsaPKCS1(digestInfo: SignOperation.sha512DigestInfo + Array(SHA512.hash(data: message)), modulusBits: algorithm.bits)
        case (CKM.mldsa, .mldsa44) where algorithm == .mldsa44, (CKM.mldsa, .mldsa65) where algorithm == .mldsa65,
            (CKM.mldsa, .mldsa87) where algorithm == .mldsa87:
            return .mldsa(message: message, context: [])
        default:
            throw .misuse("\(self) cannot sign with \(scheme)")
        }
    }

    /// C_SignInit + C_Sign in a pooled session, blocking the calling thread.
    func run(_ operation: SignOperation) throws(PKCS11Error) -> [UInt8] {
        try token.withSession { f, session throws(PKCS11Error) in
            try operation.withMechanism { mechanism throws(PKCS11Error) in
                try check(f.C_SignInit!(session, mechanism, handle), "C_SignInit", "\(CKM.name(operation.mechanism)) with \(self)")
            }
            var input = operation.input
            var length = CK_ULONG(operation.outputLength)
            var output = [UInt8](repeating: 0, count: operation.outputLength)
            var rv = f.C_Sign!(session, &input, CK_ULONG(input.count), &output, &length)
            if rv == CKR.bufferTooSmall {
                // The operation stays active after CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 §5.2).
                // A length no signature has is the token's error, not an allocation to make
                // (the session then ends: see `PKCS11Token.endsSession`).
                guard length <= CK_ULONG(maximumSignatureLength) else {
                    throw PKCS11Error.call("C_Sign", CKR.operationActive, "the token asked for a \(length)-byte signature buffer")
                }
                output = [UInt8](repeating: 0, count: Int(length))
                rv = f.C_Sign!(session, &input, CK_ULONG(input.count), &output, &length)
            }
            // C_Sign ends the operation unless it answers CKR_BUFFER_TOO_SMALL (PKCS#11 2.40
            // §5.2): a second one leaves it active, reported as such so that the session is
            // closed instead of going back to the pool, where every later C_SignInit would fail.
            if rv == CKR.bufferTooSmall {
                throw PKCS11Error.call("C_Sign", CKR.operationActive, "the token found the signature buffer too small twice")
            }
            try check(rv, "C_Sign", "\(CKM.name(operation.mechanism)) with \(self)")
            // A length past the buffer (CK_UNAVAILABLE_INFORMATION, say) is the token's error:
            // never a trap, never a signature cut short.
            guard length <= CK_ULONG(output.count) else {
                throw PKCS11Error.call("C_Sign", CKR.generalError, "the token reported a \(length)-byte signature in a \(output.count)-byte buffer")
            }
            return Array(output.prefix(Int(length)))
        }
    }
}

/// Longer than any signature a supported key makes (ML-DSA-87: 4627 bytes): a token asking for a
/// larger buffer is answered with an error, not an allocation.
let maximumSignatureLength = 16 * 1024

/// One signature's mechanism, input and output encoding.
struct SignOperation: Sendable {
    let mechanism: CK_MECHANISM_TYPE
    let input: [UInt8]
    let outputLength: Int
    var pss: (hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, saltLength: Int)?
    /// CKM_ML_DSA context (FIPS 204 ctx); nil passes no parameter.
    var context: [UInt8]?
    var ecdsaCurve: PKCS11KeyAlgorithm?

    init(mechanism: CK_MECHANISM_TYPE, input: [UInt8], outputLength: Int) {
        self.mechanism = mechanism
        self.input = input
        self.outputLength = outputLength
    }

    static func ecdsa(digest: [UInt8], algorithm: PKCS11KeyAlgorithm) -> SignOperation {
        var op = SignOperation(mechanism: CKM.ecdsa, input: digest, outputLength: 2 * algorithm.coordinateLength)
        op.ecdsaCurve = algorithm
        return op
    }

    /// RFC 8446 §4.2.3: RSASSA-PSS with MGF1 of the same hash and a salt as long as the digest.
    static func rsaPSS(digest: [UInt8], hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, modulusBits: Int) -> SignOperation {
        var op = SignOperation(mechanism: CKM.rsaPKCSPSS, input: digest, outputLength: (modulusBits + 7) / 8)
        op.pss = (hash, mgf, digest.count)
        return op
    }

    static func rsaPKCS1(digestInfo: [UInt8], modulusBits: Int) -> SignOperation {
        SignOperation(mechanism: CKM.rsaPKCS, input: digestInfo, outputLength: (modulusBits + 7) / 8)
    }

    static func mldsa(message: [UInt8], context: [UInt8]) -> SignOperation {
        var op = SignOperation(mechanism: CKM.mldsa, input: message, outputLength: 4627)
        if !context.isEmpty { op.context = context }
        return op
    }

    /// RFC 8017 §9.2 note 1: DER of DigestInfo up to the digest.
    static let sha256DigestInfo: [UInt8] = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20]
    static let sha384DigestInfo: [UInt8] = [0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30]
    static let sha512DigestInfo: [UInt8] = [0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40]

    /// Calls `body` with a CK_MECHANISM whose parameter stays valid during the call.
    func withMechanism<T>(_ body: (UnsafeMutablePointer<CK_MECHANISM>) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        var mechanism = CK_MECHANISM(mechanism: self.mechanism, pParameter: nil, ulParameterLen: 0)
        if let pss {
            var params = CK_RSA_PKCS_PSS_PARAMS(hashAlg: pss.hash, mgf: pss.mgf, sLen: CK_ULONG(pss.saltLength))
            return try withUnsafeMutablePointer(to: &params) { p throws(PKCS11Error) in
                mechanism.pParameter = UnsafeMutableRawPointer(p)
                mechanism.ulParameterLen = CK_ULONG(MemoryLayout<CK_RSA_PKCS_PSS_PARAMS>.size)
                return try body(&mechanism)
            }
        }
        if var context {
            return try context.withUnsafeMutableBufferPointer { buffer throws(PKCS11Error) in
                // PKCS#11 3.2: hedged signing (CKH_HEDGE_PREFERRED = 0) with the FIPS 204 context.
                var params = CK_SIGN_ADDITIONAL_CONTEXT(hedgeVariant: 0, pContext: buffer.baseAddress, ulContextLen: CK_ULONG(buffer.count))
                return try withUnsafeMutablePointer(to: &params) { p throws(PKCS11Error) in
                    mechanism.pParameter = UnsafeMutableRawPointer(p)
                    mechanism.ulParameterLen = CK_ULONG(MemoryLayout<CK_SIGN_ADDITIONAL_CONTEXT>.size)
                    return try body(&mechanism)
                }
            }
        }
        return try body(&mechanism)
    }

    /// The token's output as TLS wants it: ECDSA r‖s becomes a DER ECDSA-Sig-Value (RFC 8446
    /// §4.2.3, RFC 3279 §2.2.3); other outputs are used as they are.
    func finish(_ output: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        guard let curve = ecdsaCurve else { return output }
        return try SignOperation.derECDSASignature(rawRS: output, curve: curve)
    }

    static func derECDSASignature(rawRS: [UInt8], curve: PKCS11KeyAlgorithm) throws(PKCS11Error) -> [UInt8] {
        guard rawRS.count == 2 * curve.coordinateLength else {
            throw PKCS11Error(.unsupportedKey, "CKM_ECDSA returned \(rawRS.count) bytes, expected r‖s of \(2 * curve.coordinateLength) for \(curve)")
        }
        do {
            if curve == .ecdsaP384 { return Array(try P384.Signing.ECDSASignature(rawRepresentation: rawRS).derRepresentation) }
            return Array(try P256.Signing.ECDSASignature(rawRepresentation: rawRS).derRepresentation)
        } catch {
            throw PKCS11Error(.unsupportedKey, "CKM_ECDSA output is not r‖s: \(error)")
        }
    }
}
