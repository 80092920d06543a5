import CPKCS11

// The PKCS#11 values Q-SSL uses (PKCS#11 2.40 / 3.0 / 3.2), with their spec names for messages.

/// Return values (CKR_*).
enum CKR {
    static let ok: CK_RV = 0x0
    static let cancel: CK_RV = 0x1
    static let hostMemory: CK_RV = 0x2
    static let slotIDInvalid: CK_RV = 0x3
    static let generalError: CK_RV = 0x5
    static let functionFailed: CK_RV = 0x6
    static let argumentsBad: CK_RV = 0x7
    static let attributeTypeInvalid: CK_RV = 0x12
    static let deviceError: CK_RV = 0x30
    static let deviceRemoved: CK_RV = 0x32
    static let keyHandleInvalid: CK_RV = 0x60
    static let mechanismInvalid: CK_RV = 0x70
    static let mechanismParamInvalid: CK_RV = 0x71
    static let objectHandleInvalid: CK_RV = 0x82
    static let pinIncorrect: CK_RV = 0xA0
    static let pinLocked: CK_RV = 0xA4
    static let sessionClosed: CK_RV = 0xB0
    static let sessionHandleInvalid: CK_RV = 0xB3
    static let tokenNotPresent: CK_RV = 0xE0
    static let userAlreadyLoggedIn: CK_RV = 0x100
    static let userNotLoggedIn: CK_RV = 0x101
    static let bufferTooSmall: CK_RV = 0x150
    static let operationActive: CK_RV = 0x90
    static let cryptokiNotInitialized: CK_RV = 0x190
    static let cryptokiAlreadyInitialized: CK_RV = 0x191
    static let functionNotSupported: CK_RV = 0x54

    /// Spec names of the return values, for error messages.
    static let names: [CK_RV: String] = [
        0x0: "CKR_OK", 0x1: "CKR_CANCEL", 0x2: "CKR_HOST_MEMORY", 0x3: "CKR_SLOT_ID_INVALID",
        0x5: "CKR_GENERAL_ERROR", 0x6: "CKR_FUNCTION_FAILED", 0x7: "CKR_ARGUMENTS_BAD", 0x8: "CKR_NO_EVENT",
        0x9: "CKR_NEED_TO_CREATE_THREADS", 0xA: "CKR_CANT_LOCK", 0x10: "CKR_ATTRIBUTE_READ_ONLY",
        0x11: "CKR_ATTRIBUTE_SENSITIVE", 0x12: "CKR_ATTRIBUTE_TYPE_INVALID", 0x13: "CKR_ATTRIBUTE_VALUE_INVALID",
        0x1B: "CKR_ACTION_PROHIBITED", 0x20: "CKR_DATA_INVALID", 0x21: "CKR_DATA_LEN_RANGE",
        0x30: "CKR_DEVICE_ERROR", 0x31: "CKR_DEVICE_MEMORY", 0x32: "CKR_DEVICE_REMOVED",
        0x40: "CKR_ENCRYPTED_DATA_INVALID", 0x41: "CKR_ENCRYPTED_DATA_LEN_RANGE", 0x50: "CKR_FUNCTION_CANCELED",
        0x51: "CKR_FUNCTION_NOT_PARALLEL", 0x54: "CKR_FUNCTION_NOT_SUPPORTED", 0x60: "CKR_KEY_HANDLE_INVALID",
        0x62: "CKR_KEY_SIZE_RANGE", 0x63: "CKR_KEY_TYPE_INCONSISTENT", 0x64: "CKR_KEY_NOT_NEEDED",
        0x65: "CKR_KEY_CHANGED", 0x66: "CKR_KEY_NEEDED", 0x67: "CKR_KEY_INDIGESTIBLE",
        0x68: "CKR_KEY_FUNCTION_NOT_PERMITTED", 0x69: "CKR_KEY_NOT_WRAPPABLE", 0x6A: "CKR_KEY_UNEXTRACTABLE",
        0x70: "CKR_MECHANISM_INVALID", 0x71: "CKR_MECHANISM_PARAM_INVALID", 0x82: "CKR_OBJECT_HANDLE_INVALID",
        0x90: "CKR_OPERATION_ACTIVE", 0x91: "CKR_OPERATION_NOT_INITIALIZED", 0xA0: "CKR_PIN_INCORRECT",
        0xA1: "CKR_PIN_INVALID", 0xA2: "CKR_PIN_LEN_RANGE", 0xA3: "CKR_PIN_EXPIRED", 0xA4: "CKR_PIN_LOCKED",
        0xB0: "CKR_SESSION_CLOSED", 0xB1: "CKR_SESSION_COUNT", 0xB3: "CKR_SESSION_HANDLE_INVALID",
        0xB4: "CKR_SESSION_PARALLEL_NOT_SUPPORTED", 0xB5: "CKR_SESSION_READ_ONLY", 0xB6: "CKR_SESSION_EXISTS",
        0xB7: "CKR_SESSION_READ_ONLY_EXISTS", 0xB8: "CKR_SESSION_READ_WRITE_SO_EXISTS",
        0xC0: "CKR_SIGNATURE_INVALID", 0xC1: "CKR_SIGNATURE_LEN_RANGE", 0xD0: "CKR_TEMPLATE_INCOMPLETE",
        0xD1: "CKR_TEMPLATE_INCONSISTENT", 0xE0: "CKR_TOKEN_NOT_PRESENT", 0xE1: "CKR_TOKEN_NOT_RECOGNIZED",
        0xE2: "CKR_TOKEN_WRITE_PROTECTED", 0x100: "CKR_USER_ALREADY_LOGGED_IN", 0x101: "CKR_USER_NOT_LOGGED_IN",
        0x102: "CKR_USER_PIN_NOT_INITIALIZED", 0x103: "CKR_USER_TYPE_INVALID",
        0x104: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN", 0x105: "CKR_USER_TOO_MANY_TYPES",
        0x110: "CKR_WRAPPED_KEY_INVALID", 0x150: "CKR_BUFFER_TOO_SMALL", 0x160: "CKR_SAVED_STATE_INVALID",
        0x170: "CKR_INFORMATION_SENSITIVE", 0x180: "CKR_STATE_UNSAVEABLE",
        0x190: "CKR_CRYPTOKI_NOT_INITIALIZED", 0x191: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        0x1A0: "CKR_MUTEX_BAD", 0x1A1: "CKR_MUTEX_NOT_LOCKED", 0x1B0: "CKR_NEW_PIN_MODE", 0x1B1: "CKR_NEXT_OTP",
        0x1B5: "CKR_EXCEEDED_MAX_ITERATIONS", 0x1B6: "CKR_FIPS_SELF_TEST_FAILED", 0x1B7: "CKR_LIBRARY_LOAD_FAILED",
        0x1B8: "CKR_PIN_TOO_WEAK", 0x1B9: "CKR_PUBLIC_KEY_INVALID", 0x200: "CKR_FUNCTION_REJECTED",
        0x1B4: "CKR_OPERATION_CANCEL_FAILED"
    ]

    static func name(_ rv: CK_RV) -> String {
        names[rv] ?? (rv >= 0x8000_0000 ? "CKR_VENDOR_DEFINED+0x\(String(rv - 0x8000_0000, radix: 16))" : "CKR_0x\(String(rv, radix: 16))")
    }
}

/// Attribute types (CKA_*).
enum CKA {
    static let `class`: CK_ATTRIBUTE_TYPE = 0x0
    static let token: CK_ATTRIBUTE_TYPE = 0x1
    static let `private`: CK_ATTRIBUTE_TYPE = 0x2
    static let label: CK_ATTRIBUTE_TYPE = 0x3
    static let value: CK_ATTRIBUTE_TYPE = 0x11
    static let certificateType: CK_ATTRIBUTE_TYPE = 0x80
    static let keyType: CK_ATTRIBUTE_TYPE = 0x100
    static let subject: CK_ATTRIBUTE_TYPE = 0x101
    static let id: CK_ATTRIBUTE_TYPE = 0x102
    static let sensitive: CK_ATTRIBUTE_TYPE = 0x103
    static let derive: CK_ATTRIBUTE_TYPE = 0x10C
    static let sign: CK_ATTRIBUTE_TYPE = 0x108
    static let verify: CK_ATTRIBUTE_TYPE = 0x10A
    static let modulus: CK_ATTRIBUTE_TYPE = 0x120
    static let modulusBits: CK_ATTRIBUTE_TYPE = 0x121
    static let publicExponent: CK_ATTRIBUTE_TYPE = 0x122
    static let valueLen: CK_ATTRIBUTE_TYPE = 0x161
    static let extractable: CK_ATTRIBUTE_TYPE = 0x162
    static let ecParams: CK_ATTRIBUTE_TYPE = 0x180
    static let ecPoint: CK_ATTRIBUTE_TYPE = 0x181
    /// PKCS#11 3.2.
    static let parameterSet: CK_ATTRIBUTE_TYPE = 0x61D
}

/// Object classes (CKO_*).
enum CKO {
    static let certificate: CK_OBJECT_CLASS = 0x1
    static let publicKey: CK_OBJECT_CLASS = 0x2
    static let privateKey: CK_OBJECT_CLASS = 0x3
    static let secretKey: CK_OBJECT_CLASS = 0x4
}

/// Key types (CKK_*).
enum CKK {
    static let rsa: CK_KEY_TYPE = 0x0
    static let ec: CK_KEY_TYPE = 0x3
    static let genericSecret: CK_KEY_TYPE = 0x10
    /// PKCS#11 3.2.
    static let mlkem: CK_KEY_TYPE = 0x49
    static let mldsa: CK_KEY_TYPE = 0x4A
}

/// PKCS#11 3.2 ML-DSA parameter sets (CKP_*).
enum CKP {
    static let mldsa44: CK_ULONG = 0x1
    static let mldsa65: CK_ULONG = 0x2
    static let mldsa87: CK_ULONG = 0x3
}

/// Mechanisms (CKM_*).
enum CKM {
    static let rsaPKCSKeyPairGen: CK_MECHANISM_TYPE = 0x0
    static let rsaPKCS: CK_MECHANISM_TYPE = 0x1
    static let rsaPKCSPSS: CK_MECHANISM_TYPE = 0x0D
    static let mlkemKeyPairGen: CK_MECHANISM_TYPE = 0x0F
    static let mlkem: CK_MECHANISM_TYPE = 0x17
    static let mldsaKeyPairGen: CK_MECHANISM_TYPE = 0x1C
    static let mldsa: CK_MECHANISM_TYPE = 0x1D
    static let sha256: CK_MECHANISM_TYPE = 0x250
    static let sha384: CK_MECHANISM_TYPE = 0x260
    static let sha512: CK_MECHANISM_TYPE = 0x270
    static let ecKeyPairGen: CK_MECHANISM_TYPE = 0x1040
    static let ecdsa: CK_MECHANISM_TYPE = 0x1041
    static let ecdh1Derive: CK_MECHANISM_TYPE = 0x1050

    static let names: [CK_MECHANISM_TYPE: String] = [
        0x0: "CKM_RSA_PKCS_KEY_PAIR_GEN", 0x1: "CKM_RSA_PKCS", 0x3: "CKM_RSA_X_509", 0x6: "CKM_SHA1_RSA_PKCS",
        0x9: "CKM_RSA_PKCS_OAEP", 0xD: "CKM_RSA_PKCS_PSS", 0xE: "CKM_SHA1_RSA_PKCS_PSS",
        0xF: "CKM_ML_KEM_KEY_PAIR_GEN", 0x17: "CKM_ML_KEM", 0x1C: "CKM_ML_DSA_KEY_PAIR_GEN", 0x1D: "CKM_ML_DSA",
        0x1F: "CKM_HASH_ML_DSA", 0x40: "CKM_SHA256_RSA_PKCS", 0x41: "CKM_SHA384_RSA_PKCS", 0x42: "CKM_SHA512_RSA_PKCS",
        0x43: "CKM_SHA256_RSA_PKCS_PSS", 0x44: "CKM_SHA384_RSA_PKCS_PSS", 0x45: "CKM_SHA512_RSA_PKCS_PSS",
        0x220: "CKM_SHA_1", 0x250: "CKM_SHA256", 0x251: "CKM_SHA256_HMAC", 0x260: "CKM_SHA384", 0x261: "CKM_SHA384_HMAC",
        0x270: "CKM_SHA512", 0x271: "CKM_SHA512_HMAC", 0x350: "CKM_GENERIC_SECRET_KEY_GEN",
        0x1040: "CKM_EC_KEY_PAIR_GEN", 0x1041: "CKM_ECDSA", 0x1042: "CKM_ECDSA_SHA1", 0x1043: "CKM_ECDSA_SHA224",
        0x1044: "CKM_ECDSA_SHA256", 0x1045: "CKM_ECDSA_SHA384", 0x1046: "CKM_ECDSA_SHA512",
        0x1050: "CKM_ECDH1_DERIVE", 0x1051: "CKM_ECDH1_COFACTOR_DERIVE", 0x1055: "CKM_EC_EDWARDS_KEY_PAIR_GEN",
        0x1057: "CKM_EDDSA", 0x1080: "CKM_AES_KEY_GEN", 0x1081: "CKM_AES_ECB", 0x1082: "CKM_AES_CBC",
        0x1087: "CKM_AES_GCM", 0x2109: "CKM_AES_KEY_WRAP"
    ]

    static func name(_ m: CK_MECHANISM_TYPE) -> String {
        names[m] ?? (m >= 0x8000_0000 ? "CKM_VENDOR_DEFINED+0x\(String(m - 0x8000_0000, radix: 16))" : "CKM_0x\(String(m, radix: 16))")
    }
}

/// RSA-PSS mask generation functions (CKG_*).
enum CKG {
    static let mgf1SHA256: CK_ULONG = 0x2
    static let mgf1SHA384: CK_ULONG = 0x3
    static let mgf1SHA512: CK_ULONG = 0x4
}

/// Flags (CKF_*).
enum CKF {
    static let osLockingOK: CK_FLAGS = 0x2
    static let rwSession: CK_FLAGS = 0x2
    static let serialSession: CK_FLAGS = 0x4
    // CK_TOKEN_INFO
    static let loginRequired: CK_FLAGS = 0x4
    static let userPINInitialized: CK_FLAGS = 0x8
    static let protectedAuthenticationPath: CK_FLAGS = 0x100
    static let tokenInitialized: CK_FLAGS = 0x400
    static let userPINLocked: CK_FLAGS = 0x40000
    // CK_SLOT_INFO
    static let tokenPresent: CK_FLAGS = 0x1
    static let removableDevice: CK_FLAGS = 0x2
    static let hardwareSlot: CK_FLAGS = 0x4
    // CK_MECHANISM_INFO
    static let hw: CK_FLAGS = 0x1
    static let sign: CK_FLAGS = 0x800
    static let verify: CK_FLAGS = 0x2000
    static let generateKeyPair: CK_FLAGS = 0x10000
    static let derive: CK_FLAGS = 0x80000
}

enum CKU {
    static let so: CK_USER_TYPE = 0
    static let user: CK_USER_TYPE = 1
}

/// X.509 certificate type (CKC_X_509).
let ckcX509: CK_ULONG = 0
/// CKD_NULL: ECDH without a KDF.
let ckdNull: CK_ULONG = 1
