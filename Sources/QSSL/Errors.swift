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

    /// Who is at fault and why. A struct (with static constructors that read like cases) so
    /// that kinds can be added without breaking callers; inspect it with the accessors.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case decodeFailure(DecodeError)
            case peerMisbehaved(PeerMisbehavior)
            case peerIncompatible(PeerIncompatibility)
            case certificateRejected(CertificateRejection)
            case encodeFailure(EncodeError)
            case decryptFailed
            case alertReceived(AlertDescription)
            case apiMisuse(String)
            case cryptoFailure(String)
            case closed
        }
        let kind: Kind

        /// A message could not be decoded.
        public static func decodeFailure(_ e: DecodeError) -> Code { Code(kind: .decodeFailure(e)) }
        /// The peer broke the protocol.
        public static func peerMisbehaved(_ e: PeerMisbehavior) -> Code { Code(kind: .peerMisbehaved(e)) }
        /// The peer lacks something we require.
        public static func peerIncompatible(_ e: PeerIncompatibility) -> Code { Code(kind: .peerIncompatible(e)) }
        /// The peer's certificate chain was rejected.
        public static func certificateRejected(_ e: CertificateRejection) -> Code { Code(kind: .certificateRejected(e)) }
        /// A message of ours could not be encoded (a vector too long for its length prefix).
        public static func encodeFailure(_ e: EncodeError) -> Code { Code(kind: .encodeFailure(e)) }
        /// A record failed authentication.
        public static let decryptFailed = Code(kind: .decryptFailed)
        /// The peer sent a fatal alert.
        public static func alertReceived(_ a: AlertDescription) -> Code { Code(kind: .alertReceived(a)) }
        /// The caller used the API out of order; determined by the call sequence, never by peer data.
        public static func apiMisuse(_ s: String) -> Code { Code(kind: .apiMisuse(s)) }
        /// The crypto provider failed (not the peer's fault).
        public static func cryptoFailure(_ s: String) -> Code { Code(kind: .cryptoFailure(s)) }
        /// The connection was closed and nothing more can be read or resumed.
        public static let closed = Code(kind: .closed)

        /// The alert the peer sent, if that is what ended the connection.
        public var receivedAlert: AlertDescription? {
            if case .alertReceived(let a) = kind { return a }
            return nil
        }
        public var decodeError: DecodeError? {
            if case .decodeFailure(let e) = kind { return e }
            return nil
        }
        public var misbehavior: PeerMisbehavior? {
            if case .peerMisbehaved(let e) = kind { return e }
            return nil
        }
        public var incompatibility: PeerIncompatibility? {
            if case .peerIncompatible(let e) = kind { return e }
            return nil
        }
        public var certificateRejection: CertificateRejection? {
            if case .certificateRejected(let e) = kind { return e }
            return nil
        }
        /// True when the crypto provider failed (internal_error).
        public var isProviderFailure: Bool {
            if case .cryptoFailure = kind { return true }
            return false
        }
        /// True for caller bugs (no alert is sent).
        public var isAPIMisuse: Bool {
            if case .apiMisuse = kind { return true }
            return false
        }

        public var description: String {
            switch kind {
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

/// The peer broke the protocol. Names are sentences about the peer.
///
/// A struct, not an enum, so that new reasons are not a breaking change: compare with `==`
/// against the static members; `allCases` lists them all.
public struct PeerMisbehavior: Hashable, Sendable, CustomStringConvertible {
    enum Reason: String, CaseIterable, Sendable {
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
        case sentTooMuchWhileWaiting
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
        // Resumption (PROTOCOL.md §4)
        case sentPreSharedKeyNotLast
        case sentPSKWithoutKeyExchangeModes
        case sentWrongPSKBinder
        case selectedUnofferedPSK
        case sentEarlyDataAfterHelloRetryRequest
        case sentTooMuchEarlyData
        case resumedUnofferedSession
        case changedSessionParametersOnResumption
        case sentUnexpectedNewSessionTicket
    }
    let reason: Reason
    private init(_ reason: Reason) { self.reason = reason }

    public static let sentOversizedRecord = PeerMisbehavior(.sentOversizedRecord)
    public static let sentRecordWithInvalidContentType = PeerMisbehavior(.sentRecordWithInvalidContentType)
    public static let sentEmptyHandshakeRecord = PeerMisbehavior(.sentEmptyHandshakeRecord)
    public static let sentHandshakeMessageSpanningKeyChange = PeerMisbehavior(.sentHandshakeMessageSpanningKeyChange)
    public static let sentUnexpectedChangeCipherSpec = PeerMisbehavior(.sentUnexpectedChangeCipherSpec)
    public static let sentApplicationDataBeforeHandshake = PeerMisbehavior(.sentApplicationDataBeforeHandshake)
    public static let sentOversizedHandshakeMessage = PeerMisbehavior(.sentOversizedHandshakeMessage)
    public static let sentUnexpectedMessage = PeerMisbehavior(.sentUnexpectedMessage)
    public static let sentInvalidAlert = PeerMisbehavior(.sentInvalidAlert)
    public static let sentTooManyEmptyRecordsOrWarnings = PeerMisbehavior(.sentTooManyEmptyRecordsOrWarnings)
    public static let sentTooMuchWhileWaiting = PeerMisbehavior(.sentTooMuchWhileWaiting)
    public static let offeredNullCompressionMissing = PeerMisbehavior(.offeredNullCompressionMissing)
    public static let selectedUnofferedCipherSuite = PeerMisbehavior(.selectedUnofferedCipherSuite)
    public static let selectedUnofferedVersion = PeerMisbehavior(.selectedUnofferedVersion)
    public static let selectedUnofferedGroup = PeerMisbehavior(.selectedUnofferedGroup)
    public static let sentKeyShareForUnofferedGroup = PeerMisbehavior(.sentKeyShareForUnofferedGroup)
    public static let helloRetryRequestChangedNothing = PeerMisbehavior(.helloRetryRequestChangedNothing)
    public static let helloRetryRequestForGroupAlreadyShared = PeerMisbehavior(.helloRetryRequestForGroupAlreadyShared)
    public static let sentSecondHelloRetryRequest = PeerMisbehavior(.sentSecondHelloRetryRequest)
    public static let changedCipherSuiteAfterHelloRetryRequest = PeerMisbehavior(.changedCipherSuiteAfterHelloRetryRequest)
    public static let sentWrongKeyShareAfterHelloRetryRequest = PeerMisbehavior(.sentWrongKeyShareAfterHelloRetryRequest)
    public static let sentWrongCookie = PeerMisbehavior(.sentWrongCookie)
    public static let sentCookieTooLargeToEcho = PeerMisbehavior(.sentCookieTooLargeToEcho)
    public static let changedClientHelloAfterHelloRetryRequest = PeerMisbehavior(.changedClientHelloAfterHelloRetryRequest)
    public static let sentDuplicateKeyShare = PeerMisbehavior(.sentDuplicateKeyShare)
    public static let sentKeyShareNotInSupportedGroups = PeerMisbehavior(.sentKeyShareNotInSupportedGroups)
    public static let echoedWrongSessionID = PeerMisbehavior(.echoedWrongSessionID)
    public static let sentDowngradeSentinel = PeerMisbehavior(.sentDowngradeSentinel)
    public static let sentNonZeroCompression = PeerMisbehavior(.sentNonZeroCompression)
    public static let sentUnsolicitedExtension = PeerMisbehavior(.sentUnsolicitedExtension)
    public static let sentForbiddenExtension = PeerMisbehavior(.sentForbiddenExtension)
    public static let sentMissingKeyShare = PeerMisbehavior(.sentMissingKeyShare)
    public static let sentMissingSupportedGroups = PeerMisbehavior(.sentMissingSupportedGroups)
    public static let sentMissingSignatureAlgorithms = PeerMisbehavior(.sentMissingSignatureAlgorithms)
    public static let selectedUnofferedApplicationProtocol = PeerMisbehavior(.selectedUnofferedApplicationProtocol)
    public static let sentInvalidKeyShare = PeerMisbehavior(.sentInvalidKeyShare)
    public static let sentPointNotUncompressed = PeerMisbehavior(.sentPointNotUncompressed)
    public static let sentPointNotOnCurve = PeerMisbehavior(.sentPointNotOnCurve)
    public static let sentKeyShareWrongLength = PeerMisbehavior(.sentKeyShareWrongLength)
    public static let sentInvalidMLKEMKey = PeerMisbehavior(.sentInvalidMLKEMKey)
    public static let sentMLKEMCiphertextWrongLength = PeerMisbehavior(.sentMLKEMCiphertextWrongLength)
    public static let sentAllZeroSharedSecret = PeerMisbehavior(.sentAllZeroSharedSecret)
    public static let sentEmptyCertificateChain = PeerMisbehavior(.sentEmptyCertificateChain)
    public static let usedUnofferedSignatureScheme = PeerMisbehavior(.usedUnofferedSignatureScheme)
    public static let sentInvalidSignature = PeerMisbehavior(.sentInvalidSignature)
    public static let sentWrongFinished = PeerMisbehavior(.sentWrongFinished)
    public static let sentNonEmptyCertificateRequestContext = PeerMisbehavior(.sentNonEmptyCertificateRequestContext)
    public static let sentKeyUpdateWithPendingHandshakeData = PeerMisbehavior(.sentKeyUpdateWithPendingHandshakeData)
    public static let sentPreSharedKeyNotLast = PeerMisbehavior(.sentPreSharedKeyNotLast)
    public static let sentPSKWithoutKeyExchangeModes = PeerMisbehavior(.sentPSKWithoutKeyExchangeModes)
    public static let sentWrongPSKBinder = PeerMisbehavior(.sentWrongPSKBinder)
    public static let selectedUnofferedPSK = PeerMisbehavior(.selectedUnofferedPSK)
    public static let sentEarlyDataAfterHelloRetryRequest = PeerMisbehavior(.sentEarlyDataAfterHelloRetryRequest)
    public static let sentTooMuchEarlyData = PeerMisbehavior(.sentTooMuchEarlyData)
    public static let resumedUnofferedSession = PeerMisbehavior(.resumedUnofferedSession)
    public static let changedSessionParametersOnResumption = PeerMisbehavior(.changedSessionParametersOnResumption)
    public static let sentUnexpectedNewSessionTicket = PeerMisbehavior(.sentUnexpectedNewSessionTicket)

    public static var allCases: [PeerMisbehavior] { Reason.allCases.map(PeerMisbehavior.init) }
    public var description: String { reason.rawValue }
}

/// The peer lacks something we require. A struct so that reasons can be added.
public struct PeerIncompatibility: Hashable, Sendable, CustomStringConvertible {
    enum Reason: String, CaseIterable, Sendable {
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
        /// TLS 1.3: the server requires a client certificate and none was sent (certificate_required).
        case clientCertificateRequired
        /// TLS 1.2: the same, answered with handshake_failure (RFC 5246 §7.4.6).
        case clientCertificateRequiredTLS12
    }
    let reason: Reason
    private init(_ reason: Reason) { self.reason = reason }

    public static let noCommonVersion = PeerIncompatibility(.noCommonVersion)
    public static let noCommonCipherSuite = PeerIncompatibility(.noCommonCipherSuite)
    public static let noCommonGroup = PeerIncompatibility(.noCommonGroup)
    public static let noCommonSignatureScheme = PeerIncompatibility(.noCommonSignatureScheme)
    public static let noCommonApplicationProtocol = PeerIncompatibility(.noCommonApplicationProtocol)
    public static let postQuantumKeyExchangeRequired = PeerIncompatibility(.postQuantumKeyExchangeRequired)
    public static let missingSupportedVersions = PeerIncompatibility(.missingSupportedVersions)
    public static let extendedMasterSecretRequired = PeerIncompatibility(.extendedMasterSecretRequired)
    public static let secureRenegotiationFailed = PeerIncompatibility(.secureRenegotiationFailed)
    public static let unrecognizedServerName = PeerIncompatibility(.unrecognizedServerName)
    public static let clientCertificateRequired = PeerIncompatibility(.clientCertificateRequired)
    public static let clientCertificateRequiredTLS12 = PeerIncompatibility(.clientCertificateRequiredTLS12)

    public static var allCases: [PeerIncompatibility] { Reason.allCases.map(PeerIncompatibility.init) }
    public var description: String { reason.rawValue }
}

/// Why a certificate chain was rejected (PROTOCOL.md §5). A struct so that reasons can be added.
public struct CertificateRejection: Hashable, Sendable, CustomStringConvertible {
    enum Reason: Hashable, Sendable {
        case expired
        case notYetValid
        case revoked
        case unknownIssuer
        case badSignature
        case malformed
        case nameMismatch
        case unsupportedAlgorithm
        case invalidPurpose
        case nameConstraintViolation
        case unhandledCriticalExtension
        case badOCSPResponse
        case other(String)
    }
    let reason: Reason
    private init(_ reason: Reason) { self.reason = reason }

    public static let expired = CertificateRejection(.expired)
    public static let notYetValid = CertificateRejection(.notYetValid)
    public static let revoked = CertificateRejection(.revoked)
    public static let unknownIssuer = CertificateRejection(.unknownIssuer)
    public static let badSignature = CertificateRejection(.badSignature)
    public static let malformed = CertificateRejection(.malformed)
    public static let nameMismatch = CertificateRejection(.nameMismatch)
    public static let unsupportedAlgorithm = CertificateRejection(.unsupportedAlgorithm)
    public static let invalidPurpose = CertificateRejection(.invalidPurpose)
    /// A name in the chain (or the server name) is outside a CA's permitted subtrees or inside its
    /// excluded subtrees, or the constraints use a name form we do not implement (RFC 5280 §4.2.1.10).
    public static let nameConstraintViolation = CertificateRejection(.nameConstraintViolation)
    /// A certificate carries a critical extension the verifier does not process (RFC 5280 §4.2).
    public static let unhandledCriticalExtension = CertificateRejection(.unhandledCriticalExtension)
    /// A stapled or fetched OCSP response that is malformed, unsigned, stale or about another
    /// certificate (bad_certificate_status_response, RFC 6066 §8).
    public static let badOCSPResponse = CertificateRejection(.badOCSPResponse)
    /// A policy reason of the verifier's own (bad_certificate).
    public static func other(_ reason: String) -> CertificateRejection { CertificateRejection(.other(reason)) }

    public var description: String {
        switch reason {
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
        case .badOCSPResponse: return "bad OCSP response"
        case .other(let s): return s
        }
    }
}

extension AlertDescription {
    /// The single place where errors become alerts (PROTOCOL.md §5, RFC 8446 §6.2).
    /// Returns nil for errors that send no alert.
    public init?(for error: TLSError) {
        switch error.code.kind {
        case .decodeFailure(let e):
            self = e.isIllegalValue ? .illegalParameter : .decodeError
        case .peerMisbehaved(let m): self = Self.alert(for: m)
        case .peerIncompatible(let i):
            switch i.reason {
            case .noCommonVersion, .missingSupportedVersions: self = .protocolVersion
            case .noCommonCipherSuite, .noCommonGroup, .noCommonSignatureScheme, .extendedMasterSecretRequired,
                .secureRenegotiationFailed, .clientCertificateRequiredTLS12:
                self = .handshakeFailure
            case .clientCertificateRequired: self = .certificateRequired
            case .noCommonApplicationProtocol: self = .noApplicationProtocol
            case .unrecognizedServerName: self = .unrecognizedName
            case .postQuantumKeyExchangeRequired: self = .insufficientSecurity
            }
        case .certificateRejected(let r):
            switch r.reason {
            case .expired, .notYetValid: self = .certificateExpired
            case .revoked: self = .certificateRevoked
            case .unknownIssuer: self = .unknownCA
            case .badSignature, .malformed, .nameMismatch, .nameConstraintViolation, .other: self = .badCertificate
            case .unsupportedAlgorithm, .invalidPurpose, .unhandledCriticalExtension: self = .unsupportedCertificate
            case .badOCSPResponse: self = .badCertificateStatusResponse
            }
        case .decryptFailed: self = .badRecordMAC
        case .cryptoFailure, .encodeFailure: self = .internalError
        case .alertReceived, .apiMisuse, .closed: return nil
        }
    }

    static func alert(for m: PeerMisbehavior) -> AlertDescription {
        switch m.reason {
        case .sentOversizedRecord: return .recordOverflow
        case .sentRecordWithInvalidContentType, .sentEmptyHandshakeRecord, .sentTooManyEmptyRecordsOrWarnings, .sentTooMuchWhileWaiting,
            .sentHandshakeMessageSpanningKeyChange,
            .sentUnexpectedChangeCipherSpec, .sentApplicationDataBeforeHandshake, .sentUnexpectedMessage,
            .sentKeyUpdateWithPendingHandshakeData, .sentTooMuchEarlyData, .sentUnexpectedNewSessionTicket:
            return .unexpectedMessage
        case .sentOversizedHandshakeMessage, .sentInvalidAlert: return .decodeError
        case .sentMissingKeyShare, .sentMissingSupportedGroups, .sentMissingSignatureAlgorithms, .sentPSKWithoutKeyExchangeModes:
            return .missingExtension
        case .sentUnsolicitedExtension: return .unsupportedExtension
        case .sentInvalidSignature, .sentWrongFinished, .sentWrongPSKBinder: return .decryptError
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
            .usedUnofferedSignatureScheme, .sentNonEmptyCertificateRequestContext, .sentPreSharedKeyNotLast,
            .selectedUnofferedPSK, .sentEarlyDataAfterHelloRetryRequest, .resumedUnofferedSession,
            .changedSessionParametersOnResumption:
            return .illegalParameter
        }
    }
}
