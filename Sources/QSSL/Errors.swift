import QSSLWire

/// Every way a connection can fail. `code` says who is at fault and why; `AlertDescription(for:)`
/// turns it into the one alert the protocol prescribes, in exactly one place.
public struct TLSError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Code
    /// Human-readable detail. Never contains secret material.
    public var detail: String?

    public init(_ code: Code, _ detail: String? = nil) {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: TLSError, rhs: TLSError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        var s = code.description
        if let detail { s += ": \(detail)" }
        return s
    }

    /// The alert this error sends, or nil for errors that send none (API misuse, received alerts).
    public var alert: AlertDescription? { AlertDescription(for: self) }

    public enum Code: Hashable, Sendable, CustomStringConvertible {
        /// A message could not be decoded.
        case decodeFailure(DecodeError)
        /// The peer broke the protocol.
        case peerMisbehaved(PeerMisbehavior)
        /// The peer lacks something we require.
        case peerIncompatible(PeerIncompatibility)
        /// The peer's certificate chain was rejected.
        case certificateRejected(CertificateRejection)
        /// A message of ours could not be encoded (a vector too long for its length prefix).
        case encodeFailure(EncodeError)
        /// A record failed authentication.
        case decryptFailed
        /// The peer sent a fatal alert.
        case alertReceived(AlertDescription)
        /// The caller used the API out of order; determined by the call sequence, never by peer data.
        case apiMisuse(String)
        /// The crypto provider failed (not the peer's fault).
        case cryptoFailure(String)
        /// The connection was closed by the peer's close_notify and nothing more can be read.
        case closed

        public var description: String {
            switch self {
            case .decodeFailure(let e): return "malformed message: \(e)"
            case .peerMisbehaved(let e): return "peer misbehaved: \(e)"
            case .peerIncompatible(let e): return "peer incompatible: \(e)"
            case .certificateRejected(let e): return "certificate rejected: \(e)"
            case .encodeFailure(let e): return "cannot encode message: \(e)"
            case .decryptFailed: return "record authentication failed"
            case .alertReceived(let a): return "received alert \(a)"
            case .apiMisuse(let s): return "API misuse: \(s)"
            case .cryptoFailure(let s): return "crypto provider failure: \(s)"
            case .closed: return "connection closed"
            }
        }
    }

    public static func decode(_ e: DecodeError) -> TLSError { TLSError(.decodeFailure(e)) }
    public static func misbehaved(_ e: PeerMisbehavior, _ detail: String? = nil) -> TLSError { TLSError(.peerMisbehaved(e), detail) }
    public static func incompatible(_ e: PeerIncompatibility, _ detail: String? = nil) -> TLSError { TLSError(.peerIncompatible(e), detail) }
    public static func rejected(_ e: CertificateRejection, _ detail: String? = nil) -> TLSError { TLSError(.certificateRejected(e), detail) }
    public static func misuse(_ s: String) -> TLSError { TLSError(.apiMisuse(s)) }
    public static func crypto(_ s: String) -> TLSError { TLSError(.cryptoFailure(s)) }
}

/// The peer broke the protocol. Case names are sentences about the peer.
public enum PeerMisbehavior: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    // Records
    case sentOversizedRecord
    case sentRecordWithInvalidContentType
    case sentEmptyHandshakeRecord
    case sentHandshakeMessageSpanningKeyChange
    case sentUnexpectedChangeCipherSpec
    case sentApplicationDataBeforeHandshake
    case sentOversizedHandshakeMessage
    case sentUnexpectedMessage
    case sentInvalidAlert
    case sentTooManyEmptyRecordsOrWarnings
    // Hellos
    case offeredNullCompressionMissing
    case selectedUnofferedCipherSuite
    case selectedUnofferedVersion
    case selectedUnofferedGroup
    case sentKeyShareForUnofferedGroup
    case helloRetryRequestChangedNothing
    case helloRetryRequestForGroupAlreadyShared
    case sentSecondHelloRetryRequest
    case changedCipherSuiteAfterHelloRetryRequest
    case sentWrongKeyShareAfterHelloRetryRequest
    case sentWrongCookie
    case sentCookieTooLargeToEcho
    case changedClientHelloAfterHelloRetryRequest
    case sentDuplicateKeyShare
    case sentKeyShareNotInSupportedGroups
    case echoedWrongSessionID
    case sentDowngradeSentinel
    case sentNonZeroCompression
    case sentUnsolicitedExtension
    case sentForbiddenExtension
    case sentMissingKeyShare
    case sentMissingSupportedGroups
    case sentMissingSignatureAlgorithms
    case selectedUnofferedApplicationProtocol
    // Key exchange (PROTOCOL.md §1)
    case sentInvalidKeyShare
    case sentPointNotUncompressed
    case sentPointNotOnCurve
    case sentKeyShareWrongLength
    case sentInvalidMLKEMKey
    case sentMLKEMCiphertextWrongLength
    case sentAllZeroSharedSecret
    // Authentication
    case sentEmptyCertificateChain
    case usedUnofferedSignatureScheme
    case sentInvalidSignature
    case sentWrongFinished
    case sentNonEmptyCertificateRequestContext
    case sentKeyUpdateWithPendingHandshakeData

    public var description: String { rawValue }
}

/// The peer lacks something we require.
public enum PeerIncompatibility: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case noCommonVersion
    case noCommonCipherSuite
    case noCommonGroup
    case noCommonSignatureScheme
    case noCommonApplicationProtocol
    case postQuantumKeyExchangeRequired
    case missingSupportedVersions
    case extendedMasterSecretRequired
    case secureRenegotiationFailed
    /// The server has no configuration for the name the client asked for (RFC 6066 §3).
    case unrecognizedServerName

    public var description: String { rawValue }
}

/// Why a certificate chain was rejected (PROTOCOL.md §5).
public enum CertificateRejection: Hashable, Sendable, CustomStringConvertible {
    case expired
    case notYetValid
    case revoked
    case unknownIssuer
    case badSignature
    case malformed
    case nameMismatch
    case unsupportedAlgorithm
    case invalidPurpose
    /// A name in the chain (or the server name) is outside a CA's permitted subtrees or inside
    /// its excluded subtrees, or the constraints use a name form we do not implement (RFC 5280 §4.2.1.10).
    case nameConstraintViolation
    /// A certificate carries a critical extension the verifier does not process (RFC 5280 §4.2).
    case unhandledCriticalExtension
    case other(String)

    public var description: String {
        switch self {
        case .expired: return "certificate expired"
        case .notYetValid: return "certificate not yet valid"
        case .revoked: return "certificate revoked"
        case .unknownIssuer: return "chain does not end in a trusted root"
        case .badSignature: return "certificate signature invalid"
        case .malformed: return "malformed certificate"
        case .nameMismatch: return "certificate does not match the server name"
        case .unsupportedAlgorithm: return "unsupported certificate algorithm"
        case .invalidPurpose: return "certificate not valid for this purpose"
        case .nameConstraintViolation: return "name constraints violated"
        case .unhandledCriticalExtension: return "unhandled critical certificate extension"
        case .other(let s): return s
        }
    }
}

extension AlertDescription {
    /// The single place where errors become alerts (PROTOCOL.md §5, RFC 8446 §6.2).
    /// Returns nil for errors that send no alert.
    public init?(for error: TLSError) {
        switch error.code {
        case .decodeFailure(let e):
            switch e {
            case .duplicateExtension, .illegalValue: self = .illegalParameter
            default: self = .decodeError
            }
        case .peerMisbehaved(let m): self = Self.alert(for: m)
        case .peerIncompatible(let i):
            switch i {
            case .noCommonVersion, .missingSupportedVersions: self = .protocolVersion
            case .noCommonCipherSuite, .noCommonGroup, .noCommonSignatureScheme, .extendedMasterSecretRequired,
                 .secureRenegotiationFailed:
                self = .handshakeFailure
            case .noCommonApplicationProtocol: self = .noApplicationProtocol
            case .unrecognizedServerName: self = .unrecognizedName
            case .postQuantumKeyExchangeRequired: self = .insufficientSecurity
            }
        case .certificateRejected(let r):
            switch r {
            case .expired, .notYetValid: self = .certificateExpired
            case .revoked: self = .certificateRevoked
            case .unknownIssuer: self = .unknownCA
            case .badSignature, .malformed, .nameMismatch, .nameConstraintViolation, .other: self = .badCertificate
            case .unsupportedAlgorithm, .invalidPurpose, .unhandledCriticalExtension: self = .unsupportedCertificate
            }
        case .decryptFailed: self = .badRecordMAC
        case .cryptoFailure, .encodeFailure: self = .internalError
        case .alertReceived, .apiMisuse, .closed: return nil
        }
    }

    static func alert(for m: PeerMisbehavior) -> AlertDescription {
        switch m {
        case .sentOversizedRecord: return .recordOverflow
        case .sentRecordWithInvalidContentType, .sentEmptyHandshakeRecord, .sentTooManyEmptyRecordsOrWarnings, .sentHandshakeMessageSpanningKeyChange,
             .sentUnexpectedChangeCipherSpec, .sentApplicationDataBeforeHandshake, .sentUnexpectedMessage,
             .sentKeyUpdateWithPendingHandshakeData:
            return .unexpectedMessage
        case .sentOversizedHandshakeMessage, .sentInvalidAlert: return .decodeError
        case .sentMissingKeyShare, .sentMissingSupportedGroups, .sentMissingSignatureAlgorithms: return .missingExtension
        case .sentUnsolicitedExtension: return .unsupportedExtension
        case .sentInvalidSignature, .sentWrongFinished: return .decryptError
        case .sentEmptyCertificateChain: return .decodeError
        case .sentAllZeroSharedSecret: return .illegalParameter
        case .offeredNullCompressionMissing, .selectedUnofferedCipherSuite, .selectedUnofferedVersion,
             .selectedUnofferedGroup, .sentKeyShareForUnofferedGroup, .helloRetryRequestChangedNothing,
             .helloRetryRequestForGroupAlreadyShared, .sentSecondHelloRetryRequest,
             .changedCipherSuiteAfterHelloRetryRequest, .sentWrongKeyShareAfterHelloRetryRequest, .sentWrongCookie, .sentCookieTooLargeToEcho,
             .changedClientHelloAfterHelloRetryRequest, .sentDuplicateKeyShare, .sentKeyShareNotInSupportedGroups,
             .echoedWrongSessionID, .sentDowngradeSentinel, .sentNonZeroCompression, .sentForbiddenExtension,
             .selectedUnofferedApplicationProtocol, .sentInvalidKeyShare, .sentPointNotUncompressed,
             .sentPointNotOnCurve, .sentKeyShareWrongLength, .sentInvalidMLKEMKey, .sentMLKEMCiphertextWrongLength,
             .usedUnofferedSignatureScheme, .sentNonEmptyCertificateRequestContext:
            return .illegalParameter
        }
    }
}
