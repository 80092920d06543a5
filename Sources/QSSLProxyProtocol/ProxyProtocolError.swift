/// Why a PROXY protocol header could not be parsed or encoded.
///
/// `kind` is for code to switch on; `message` says, for a person reading a log, exactly what
/// was wrong (for example "PROXY v2: address length 7 too short for TCP/IPv4 (needs 12)").
public struct ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of problem.
    public enum Kind: Sendable, Hashable {
        /// The bytes do not start with a PROXY v1 or v2 signature (or not the accepted one).
        case invalidSignature
        /// The v2 version nibble is not 2.
        case unsupportedVersion
        /// The v2 command nibble is neither LOCAL (0) nor PROXY (1).
        case unsupportedCommand
        /// The v2 address family / transport byte is not one of the assigned values.
        case unsupportedFamily
        /// The v2 address block is shorter than the family needs.
        case addressLengthMismatch
        /// A TLV (or SSL sub-TLV) is truncated, overlong, or has an invalid value.
        case malformedTLV
        /// The header is longer than the configured (or protocol) maximum.
        case headerTooLong
        /// A v1 line is malformed: missing CRLF, bad protocol, bad address or port.
        case malformedV1
        /// The CRC32C TLV does not match the header.
        case checksumMismatch
        /// The header cannot be encoded (too long a value, TLVs in v1, ...).
        case cannotEncode
    }

    /// The class of problem.
    public var kind: Kind
    /// A human-readable explanation naming the offending field and value.
    public var message: String

    /// Makes an error of `kind` explained by `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
