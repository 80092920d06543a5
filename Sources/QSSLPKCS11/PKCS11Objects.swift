import CPKCS11
import Crypto
import QSSL
import QSSLP384
import QSSLSwiftCrypto
import SwiftASN1
import _CryptoExtras

/// An object of a token, as `qssl hsm list` shows it.
public struct PKCS11ObjectSummary: Sendable, CustomStringConvertible {
    /// "private", "public", "cert", "secret-key" or "data" (RFC 7512 type names).
    public let type: String
    public let label: String
    public let id: [UInt8]
    /// "ECDSA P-384", "RSA 3072", "ML-DSA-65", "X.509", …
    public let kind: String
    public var description: String {
        "\(type) \(kind) label='\(label)'" + (id.isEmpty ? "" : " id=" + id.map { String(format2: $0) }.joined())
    }
}

extension String {
    init(format2 byte: UInt8) { self = (byte < 16 ? "0" : "") + String(byte, radix: 16) }
}

extension PKCS11Token {
    /// Every object visible in the session (private ones only after login).
    public func objects() throws(PKCS11Error) -> [PKCS11ObjectSummary] {
        try withSession { f, session throws(PKCS11Error) in
            try f.findObjects(session, AttributeTemplate()).map { handle throws(PKCS11Error) in
                let objectClass = try f.ulongAttribute(session, handle, CKA.class) ?? CK_ULONG.max
                let label = String(decoding: try f.attribute(session, handle, CKA.label) ?? [], as: UTF8.self)
                let id = try f.attribute(session, handle, CKA.id) ?? []
                let type: String
                var kind = "object"
                switch objectClass {
                case CKO.privateKey, CKO.publicKey:
                    type = objectClass == CKO.privateKey ? "private" : "public"
                    if let algorithm = try? describeKey(f, session, handle).algorithm {
                        kind = algorithm.name
                    } else {
                        let keyType = try f.ulongAttribute(session, handle, CKA.keyType)
                        kind = "key type " + (keyType.map { "0x" + String($0, radix: 16) } ?? "?")
                    }
                case CKO.certificate:
                    type = "cert"
                    kind = "X.509"
                case CKO.secretKey:
                    type = "secret-key"
                    kind = "secret key"
                case 0: type = "data"
                default: type = "class 0x\(String(objectClass, radix: 16))"
                }
                return PKCS11ObjectSummary(type: type, label: label, id: id, kind: kind)
            }
        }
    }

    /// The private key `uri` names (its `object` and/or `id`; `type` must be absent or `private`).
    /// Its public half is read back from the token's public key object with the same CKA_ID
    /// (or label), and the token must have the mechanism it signs with.
    /// - Throws: `.objectNotFound`, `.ambiguousObject`, `.unsupportedKey`, or
    ///   `.mechanismNotSupported` (CKR_MECHANISM_INVALID) naming the missing mechanism.
    public func signingKey(matching uri: PKCS11URI) throws(PKCS11Error) -> PKCS11SigningKey {
        let keys = try privateKeys(matching: uri)
        guard keys.count == 1 else {
            if keys.isEmpty { throw notFound(uri) }
            throw PKCS11Error(
                .ambiguousObject,
                "\(keys.count) private keys match \(uri) (\(keys.map(\.description).joined(separator: "; "))); add id= or a more precise object=")
        }
        return keys[0]
    }

    /// Every private key matching `uri`, with its public half.
    public func privateKeys(matching uri: PKCS11URI) throws(PKCS11Error) -> [PKCS11SigningKey] {
        if let type = uri.type, type != .private {
            throw PKCS11Error(.invalidURI, "\(uri) names a \(type) object; a signing key needs type=private")
        }
        return try withSession { f, session throws(PKCS11Error) in
            let template = AttributeTemplate().add(CKA.class, ulong: CKO.privateKey)
            if let object = uri.object { template.add(CKA.label, string: object) }
            if let id = uri.id { template.add(CKA.id, bytes: id) }
            return try f.findObjects(session, template).map { handle throws(PKCS11Error) in try loadKey(f, session, handle) }
        }
    }

    /// The DER certificate `uri` names: a certificate object with its `object` label and/or `id`
    /// (whatever `type` says, so the key's URI finds its certificate too).
    public func certificate(matching uri: PKCS11URI) throws(PKCS11Error) -> [UInt8] {
        try withSession { f, session throws(PKCS11Error) in
            let template = AttributeTemplate().add(CKA.class, ulong: CKO.certificate)
            if let object = uri.object { template.add(CKA.label, string: object) }
            if let id = uri.id { template.add(CKA.id, bytes: id) }
            let found = try f.findObjects(session, template)
            guard let handle = found.first, let der = try f.attribute(session, handle, CKA.value) else {
                throw PKCS11Error(.objectNotFound, "no certificate matches \(uri) in token '\(info.label)'", returnValue: nil)
            }
            guard found.count == 1 else { throw PKCS11Error(.ambiguousObject, "\(found.count) certificates match \(uri)") }
            return der
        }
    }

    func notFound(_ uri: PKCS11URI) -> PKCS11Error {
        let hint = isLoggedIn ? "" : " (not logged in: private keys are visible only with a PIN)"
        let known = ((try? objects()) ?? []).filter { $0.type == "private" }.map { "'\($0.label)'" }.joined(separator: ", ")
        return PKCS11Error(.objectNotFound, "no private key matches \(uri) in token '\(info.label)'\(hint); private keys: \(known.isEmpty ? "none" : known)")
    }

    /// Reads a private key's algorithm and public half.
    private func loadKey(_ f: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, _ handle: CK_OBJECT_HANDLE) throws(PKCS11Error) -> PKCS11SigningKey {
        let label = String(decoding: try f.attribute(session, handle, CKA.label) ?? [], as: UTF8.self)
        let id = try f.attribute(session, handle, CKA.id) ?? []
        let (algorithm, spki, publicKey) = try describeKey(f, session, handle, label: label, id: id)
        guard supports(mechanism: UInt(algorithm.mechanism)) else {
            throw PKCS11Error(
                .mechanismNotSupported, "token '\(info.label)' lacks \(algorithm.mechanismName), needed to sign with \(algorithm) key '\(label)'",
                returnValue: UInt(CKR.mechanismInvalid))
        }
        return PKCS11SigningKey(token: self, algorithm: algorithm, label: label, id: id, subjectPublicKeyInfo: spki, publicKey: publicKey, handle: handle)
    }

    /// A key object's algorithm; with `label`, also its public half (SPKI and a verifying key).
    func describeKey(_ f: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, _ handle: CK_OBJECT_HANDLE)
        throws(PKCS11Error) -> (algorithm: PKCS11KeyAlgorithm, parameters: [UInt8]?)
    {
        guard let keyType = try f.ulongAttribute(session, handle, CKA.keyType) else {
            throw PKCS11Error(.unsupportedKey, "object without CKA_KEY_TYPE")
        }
        switch keyType {
        case CKK.ec:
            let params = try f.attribute(session, handle, CKA.ecParams) ?? []
            switch KeyEncoding.curve(ecParameters: params) {
            case OID.secp384r1: return (.ecdsaP384, params)
            case OID.secp256r1: return (.ecdsaP256, params)
            default:
                throw PKCS11Error(.unsupportedKey, "EC key on a curve Q-SSL does not sign with (CKA_EC_PARAMS \(params.map { String(format2: $0) }.joined()))")
            }
        case CKK.rsa:
            var bits = Int(try f.ulongAttribute(session, handle, CKA.modulusBits) ?? 0)
            if bits == 0, let modulus = try f.attribute(session, handle, CKA.modulus) { bits = modulus.drop { $0 == 0 }.count * 8 }
            guard bits >= 2048 else { throw PKCS11Error(.unsupportedKey, "RSA key of \(bits) bits (Q-SSL signs with 2048 bits or more)") }
            return (.rsa(bits: bits), nil)
        case CKK.mldsa:
            switch try f.ulongAttribute(session, handle, CKA.parameterSet) {
            case CKP.mldsa44: return (.mldsa44, nil)
            case CKP.mldsa65: return (.mldsa65, nil)
            case CKP.mldsa87: return (.mldsa87, nil)
            case let other: throw PKCS11Error(.unsupportedKey, "ML-DSA key with parameter set \(other.map(String.init) ?? "none")")
            }
        default:
            throw PKCS11Error(.unsupportedKey, "key type 0x\(String(keyType, radix: 16)) (Q-SSL signs with EC, RSA and ML-DSA keys)")
        }
    }

    private func describeKey(_ f: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, _ handle: CK_OBJECT_HANDLE, label: String, id: [UInt8])
        throws(PKCS11Error) -> (PKCS11KeyAlgorithm, [UInt8], SwiftCryptoPublicKey)
    {
        let (algorithm, _) = try describeKey(f, session, handle)
        let what = "the public key of '\(label)'"
        do {
            if algorithm.isRSA {
                // RSA private key objects carry the modulus and public exponent (PKCS#11 2.40 §2.1.5).
                var modulus = try f.attribute(session, handle, CKA.modulus)
                var exponent = try f.attribute(session, handle, CKA.publicExponent)
                if modulus == nil || exponent == nil, let pub = try publicObject(f, session, label: label, id: id) {
                    modulus = try f.attribute(session, pub, CKA.modulus)
                    exponent = try f.attribute(session, pub, CKA.publicExponent)
                }
                guard let modulus, let exponent else { throw PKCS11Error(.objectNotFound, "\(what): no modulus and public exponent") }
                let pkcs1 = KeyEncoding.rsaPublicKey(modulus: modulus, exponent: exponent)
                let key = try _RSA.Signing.PublicKey(derRepresentation: pkcs1)
                return (algorithm, KeyEncoding.subjectPublicKeyInfo(algorithm: OID.rsaEncryption, rsaNullParameters: true, key: pkcs1), .rsa(key))
            }
            guard let pub = try publicObject(f, session, label: label, id: id) else {
                throw PKCS11Error(.objectNotFound, "\(what): no public key object with the same CKA_ID or label in token '\(info.label)'")
            }
            if algorithm.isECDSA {
                guard let attribute = try f.attribute(session, pub, CKA.ecPoint),
                    let point = KeyEncoding.ecPoint(attribute, coordinateLength: algorithm.coordinateLength)
                else {
                    throw PKCS11Error(.objectNotFound, "\(what): no CKA_EC_POINT")
                }
                let curve = algorithm == .ecdsaP384 ? OID.secp384r1 : OID.secp256r1
                let key: SwiftCryptoPublicKey =
                    algorithm == .ecdsaP384
                    ? .p384(try NISTP384.PublicKey(x963Representation: point)) : .p256(try P256.Signing.PublicKey(x963Representation: point))
                return (algorithm, KeyEncoding.subjectPublicKeyInfo(algorithm: OID.ecPublicKey, curve: curve, key: point), key)
            }
            guard let value = try f.attribute(session, pub, CKA.value) else { throw PKCS11Error(.objectNotFound, "\(what): no CKA_VALUE") }
            switch algorithm {
            case .mldsa65:
                return (
                    algorithm, KeyEncoding.subjectPublicKeyInfo(algorithm: OID.mldsa65, key: value), .mldsa65(try MLDSA65.PublicKey(rawRepresentation: value))
                )
            case .mldsa87:
                return (
                    algorithm, KeyEncoding.subjectPublicKeyInfo(algorithm: OID.mldsa87, key: value), .mldsa87(try MLDSA87.PublicKey(rawRepresentation: value))
                )
            default:
                return (
                    algorithm, KeyEncoding.subjectPublicKeyInfo(algorithm: OID.mldsa44, key: value), .mldsa44(try MLDSA44PublicKey(rawRepresentation: value))
                )
            }
        } catch let error as PKCS11Error {
            throw error
        } catch {
            throw PKCS11Error(.unsupportedKey, "\(what) is malformed: \(error)")
        }
    }

    /// The public key object that goes with a private key: same CKA_ID, else same label.
    private func publicObject(_ f: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, label: String, id: [UInt8]) throws(PKCS11Error) -> CK_OBJECT_HANDLE? {
        if !id.isEmpty {
            let byID = try f.findObjects(session, AttributeTemplate().add(CKA.class, ulong: CKO.publicKey).add(CKA.id, bytes: id))
            if byID.count == 1 { return byID[0] }
        }
        let byLabel = try f.findObjects(session, AttributeTemplate().add(CKA.class, ulong: CKO.publicKey).add(CKA.label, string: label))
        return byLabel.count == 1 ? byLabel[0] : nil
    }
}
