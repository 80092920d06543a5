import CPKCS11
import QSSL

/// A PKCS#11 failure: the function and the CKR_ code a module returned, or what Q-SSL could not
/// find or use. Its description never contains a PIN.
///
/// A handshake that meets one fails with internal_error: `tlsError` is the error the core sees.
public struct PKCS11Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// Why the operation failed. A struct with case-like static members, so reasons can be added.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// A PKCS#11 function returned an error; `returnValue` says which.
        public static let returnValue = Reason("PKCS#11 call failed")
        /// The module could not be loaded (no such file, not a shared library).
        public static let moduleNotLoadable = Reason("module not loadable")
        /// The library is not a PKCS#11 module (no C_GetInterface or C_GetFunctionList).
        public static let notAPKCS11Module = Reason("not a PKCS#11 module")
        /// No token matches.
        public static let tokenNotFound = Reason("token not found")
        /// No object matches a URI (or its public half or certificate is missing).
        public static let objectNotFound = Reason("object not found")
        /// A URI matches more than one key.
        public static let ambiguousObject = Reason("object ambiguous")
        /// The token lacks a mechanism the key needs.
        public static let mechanismNotSupported = Reason("mechanism not supported")
        /// A PKCS#11 URI could not be parsed (RFC 7512).
        public static let invalidURI = Reason("invalid PKCS#11 URI")
        /// The PIN could not be read, or was offered where it must not be (a URI on the command line).
        public static let pinUnavailable = Reason("PIN unavailable")
        /// A key type or size Q-SSL cannot sign with.
        public static let unsupportedKey = Reason("unsupported key")
        /// The signing queue is full: the handshake fails fast rather than wait.
        public static let signingQueueFull = Reason("signing queue full")
        /// The token did not answer within the signing timeout.
        public static let signingTimedOut = Reason("signing timed out")
        /// The module was finalized or the token closed; nothing more can be signed.
        public static let finalized = Reason("module finalized")

        public var description: String { name }
    }

    public let reason: Reason
    /// The CK_RV a module returned, when a PKCS#11 function failed.
    public let returnValue: UInt?
    /// The function that failed, e.g. "C_Login".
    public let function: String?
    /// What was being done (never a PIN).
    public let detail: String

    init(_ reason: Reason, _ detail: String, function: String? = nil, returnValue: UInt? = nil) {
        self.reason = reason
        self.detail = detail
        self.function = function
        self.returnValue = returnValue
    }

    /// A failed call: "C_Login returned CKR_PIN_INCORRECT (0xa0)".
    static func call(_ function: String, _ rv: CK_RV, _ detail: String = "") -> PKCS11Error {
        PKCS11Error(.returnValue, detail, function: function, returnValue: UInt(rv))
    }

    /// The spec name of `returnValue` ("CKR_PIN_INCORRECT"), or of the code a reason implies
    /// (CKR_MECHANISM_INVALID for a missing mechanism).
    public var returnValueName: String? { returnValue.map { CKR.name(CK_RV($0)) } }

    public var description: String {
        var s: String
        if let function, let returnValue {
            s = "\(function) returned \(CKR.name(CK_RV(returnValue))) (0x\(String(returnValue, radix: 16)))"
            if !detail.isEmpty { s += ": \(detail)" }
        } else {
            s = "\(reason): \(detail)"
            if let returnValue { s += " (\(CKR.name(CK_RV(returnValue))))" }
        }
        return "PKCS#11: " + s
    }

    /// The error as the TLS core sees it: a provider failure, answered with internal_error.
    public var tlsError: TLSError { .crypto(description) }

    public static func == (a: PKCS11Error, b: PKCS11Error) -> Bool {
        a.reason == b.reason && a.returnValue == b.returnValue && a.function == b.function
    }
    public func hash(into h: inout Hasher) {
        h.combine(reason)
        h.combine(returnValue)
    }
}

/// Throws unless `rv` is CKR_OK.
@inline(__always)
func check(_ rv: CK_RV, _ function: String, _ detail: @autoclosure () -> String = "") throws(PKCS11Error) {
    guard rv == CKR.ok else { throw PKCS11Error.call(function, rv, detail()) }
}
