import CPKCS11

extension PKCS11Token {
    /// Generates a key pair in the token: the private key sensitive and not extractable, both
    /// halves token objects with `label` and one CKA_ID (random when nil), so that RFC 7512 URIs
    /// and the public-key lookup find them.
    /// - Throws: `.mechanismNotSupported` (CKR_MECHANISM_INVALID) when the token lacks the key
    ///   generation mechanism (CKM_ML_DSA_KEY_PAIR_GEN on tokens without PKCS#11 3.2 ML-DSA),
    ///   `.ambiguousObject` when a private key with this label exists, or C_GenerateKeyPair's CKR_.
    public func generateKeyPair(_ algorithm: PKCS11KeyAlgorithm, label: String, id: [UInt8]? = nil) throws(PKCS11Error) -> PKCS11SigningKey {
        guard isLoggedIn else { throw PKCS11Error(.pinUnavailable, "generating a key in token '\(info.label)' needs a login (a PIN)") }
        // One label may hold one key of each kind: the two halves of a composite key share it.
        let existing = try privateKeys(matching: PKCS11URI(object: label))
        guard !existing.contains(where: { $0.algorithm.mechanism == algorithm.mechanism }) else {
            throw PKCS11Error(.ambiguousObject, "token '\(info.label)' already has a \(algorithm.mechanismName) key labelled '\(label)'")
        }
        let id = id ?? (0..<8).map { _ in UInt8.random(in: .min ... .max) }
        let mechanism: CK_MECHANISM_TYPE
        let publicTemplate = AttributeTemplate()
            .add(CKA.token, bool: true).add(CKA.verify, bool: true).add(CKA.label, string: label).add(CKA.id, bytes: id)
        let privateTemplate = AttributeTemplate()
            .add(CKA.token, bool: true).add(CKA.private, bool: true).add(CKA.sensitive, bool: true)
            .add(CKA.extractable, bool: false).add(CKA.sign, bool: true).add(CKA.label, string: label).add(CKA.id, bytes: id)
        switch algorithm {
        case .ecdsaP256, .ecdsaP384:
            mechanism = CKM.ecKeyPairGen
            publicTemplate.add(CKA.ecParams, bytes: KeyEncoding.ecParameters(algorithm == .ecdsaP384 ? OID.secp384r1 : OID.secp256r1))
        case .mldsa44, .mldsa65, .mldsa87:
            mechanism = CKM.mldsaKeyPairGen
            let set = algorithm == .mldsa44 ? CKP.mldsa44 : algorithm == .mldsa65 ? CKP.mldsa65 : CKP.mldsa87
            publicTemplate.add(CKA.parameterSet, ulong: set)
            privateTemplate.add(CKA.parameterSet, ulong: set)
        default:
            guard algorithm.isRSA, algorithm.bits >= 2048 else { throw PKCS11Error(.unsupportedKey, "cannot generate \(algorithm) keys") }
            mechanism = CKM.rsaPKCSKeyPairGen
            publicTemplate.add(CKA.modulusBits, ulong: CK_ULONG(algorithm.bits)).add(CKA.publicExponent, bytes: [0x01, 0x00, 0x01])
        }
        guard supports(mechanism: UInt(mechanism)) else {
            throw PKCS11Error(
                .mechanismNotSupported, "token '\(info.label)' lacks \(CKM.name(mechanism)), needed to generate \(algorithm) keys",
                returnValue: UInt(CKR.mechanismInvalid))
        }
        try withReadWriteSession { f, session throws(PKCS11Error) in
            var ckMechanism = CK_MECHANISM(mechanism: mechanism, pParameter: nil, ulParameterLen: 0)
            var publicAttributes = publicTemplate.attributes
            var privateAttributes = privateTemplate.attributes
            var publicHandle: CK_OBJECT_HANDLE = 0
            var privateHandle: CK_OBJECT_HANDLE = 0
            try check(
                f.C_GenerateKeyPair!(
                    session, &ckMechanism, &publicAttributes, publicTemplate.count, &privateAttributes,
                    privateTemplate.count, &publicHandle, &privateHandle),
                "C_GenerateKeyPair", "\(algorithm) key '\(label)' in token '\(info.label)'")
        }
        return try signingKey(matching: PKCS11URI(object: label, type: .private, id: id))
    }

    /// Stores a DER certificate as a token object (CKO_CERTIFICATE, CKC_X_509) with a label and
    /// CKA_ID — the key's, so that one URI finds both.
    public func storeCertificate(_ der: [UInt8], label: String, id: [UInt8], subject: [UInt8]? = nil) throws(PKCS11Error) {
        guard isLoggedIn else { throw PKCS11Error(.pinUnavailable, "storing a certificate in token '\(info.label)' needs a login (a PIN)") }
        let template = AttributeTemplate()
            .add(CKA.class, ulong: CKO.certificate).add(CKA.certificateType, ulong: ckcX509).add(CKA.token, bool: true)
            .add(CKA.private, bool: false).add(CKA.label, string: label).add(CKA.id, bytes: id).add(CKA.value, bytes: der)
        if let subject { template.add(CKA.subject, bytes: subject) }
        try withReadWriteSession { f, session throws(PKCS11Error) in
            var attributes = template.attributes
            var handle: CK_OBJECT_HANDLE = 0
            try check(f.C_CreateObject!(session, &attributes, template.count, &handle), "C_CreateObject", "certificate '\(label)'")
        }
    }

    /// Destroys every object (keys and certificates) with this label. Returns how many.
    @discardableResult
    public func destroyObjects(labelled label: String) throws(PKCS11Error) -> Int {
        guard isLoggedIn else { throw PKCS11Error(.pinUnavailable, "destroying objects in token '\(info.label)' needs a login (a PIN)") }
        return try withReadWriteSession { f, session throws(PKCS11Error) in
            let handles = try f.findObjects(session, AttributeTemplate().add(CKA.label, string: label))
            for handle in handles { try check(f.C_DestroyObject!(session, handle), "C_DestroyObject", "'\(label)'") }
            return handles.count
        }
    }
}
