/// Reads a PROXY protocol header (v1, v2 or either) from the start of a connection, strictly.
///
/// Give `parse(_:)` everything received so far; it answers `.needMoreData` until a whole header
/// is there, then the header and how many bytes it used, so the caller can pass the rest (the
/// TLS ClientHello) on. Anything that cannot be the start of an accepted header is rejected as
/// soon as the bytes show it: a TLS record (first byte 0x16) fails on its first byte.
/// `feed(_:)` does the buffering for callers that get the bytes piecemeal.
///
/// v2 details: unknown TLV types are kept; CRC32C (one, 4 bytes, matching), SSL (client flags,
/// verify and sub-TLVs that fill it exactly) and UNIQUE_ID (at most 128 bytes) are checked. A
/// LOCAL header's family and addresses are ignored, as the spec says: its transport is
/// `.unspecified`, and TLVs are read after the address block when the family is an assigned one
/// that fits in the length (otherwise the whole block is skipped).
public struct ProxyHeaderParser: Sendable {
    /// Which protocol versions to accept.
    public enum AcceptedVersions: Sendable, Hashable {
        /// Only the v1 text format.
        case v1
        /// Only the v2 binary format.
        case v2
        /// Either; the first byte tells them apart ('P' for v1, '\r' for v2).
        case either
    }

    /// The outcome of `parse(_:)`.
    public enum ParseResult: Sendable, Hashable {
        /// The bytes so far are a valid beginning; wait for more.
        case needMoreData
        /// A complete header, its version, and the number of bytes it took from the buffer.
        case header(ProxyHeader, version: ProxyHeader.Version, consumed: Int)
    }

    /// The outcome of `feed(_:)`.
    public enum FeedResult: Sendable, Hashable {
        /// The bytes so far are a valid beginning; feed more.
        case needMoreData
        /// A complete header, its version, and the bytes received after it.
        case header(ProxyHeader, version: ProxyHeader.Version, remaining: [UInt8])
    }

    /// Which versions are accepted.
    public var acceptedVersions: AcceptedVersions
    /// The longest v2 header accepted (16 fixed bytes included), between 16 and 65551.
    /// v1 lines are always limited to 107 bytes.
    public var maximumHeaderLength: Int
    /// Whether a CRC32C TLV is checked (on by default; a mismatch rejects the header).
    public var verifiesChecksum: Bool

    private var buffer: [UInt8] = []

    /// A parser for `acceptedVersions`, rejecting v2 headers longer than `maximumHeaderLength`
    /// (clamped to 16...65551; default 4096).
    public init(
        accepting acceptedVersions: AcceptedVersions = .either, maximumHeaderLength: Int = 4096,
        verifiesChecksum: Bool = true
    ) {
        self.acceptedVersions = acceptedVersions
        self.maximumHeaderLength = min(max(maximumHeaderLength, 16), ProxyHeader.maximumV2Length)
        self.verifiesChecksum = verifiesChecksum
    }

    /// Parses the header at the start of `bytes` (everything received so far).
    public func parse(_ bytes: some Collection<UInt8>) throws(ProxyProtocolError) -> ParseResult {
        guard let first = bytes.first else { return .needMoreData }
        let v2Bound = min(max(maximumHeaderLength, 16), ProxyHeader.maximumV2Length)
        switch (acceptedVersions, first) {
        case (.v1, UInt8(ascii: "P")), (.either, UInt8(ascii: "P")):
            return try V1Parser.parse(Array(bytes.prefix(ProxyHeader.maximumV1Length)))
        case (.v2, 0x0D), (.either, 0x0D):
            let fixed = Array(bytes.prefix(16))
            if let r = try V2Parser.checkFixedPart(fixed, bound: v2Bound) { return r }
            let total = 16 + (Int(fixed[14]) << 8 | Int(fixed[15]))
            return try V2Parser.parse(Array(bytes.prefix(total)), total: total, verifyChecksum: verifiesChecksum)
        default:
            throw ProxyHeaderParser.badFirstByte(first, accepting: acceptedVersions)
        }
    }

    /// Adds received bytes to an internal buffer and parses it. Use one parser per connection:
    /// after it returns a header (or throws) its buffer is emptied.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(ProxyProtocolError) -> FeedResult {
        buffer.append(contentsOf: bytes)
        let result: ParseResult
        do {
            result = try parse(buffer)
        } catch {
            buffer = []
            throw error
        }
        switch result {
        case .needMoreData:
            return .needMoreData
        case .header(let header, let version, let consumed):
            let rest = Array(buffer[consumed...])
            buffer = []
            return .header(header, version: version, remaining: rest)
        }
    }

    static func badFirstByte(_ b: UInt8, accepting: AcceptedVersions) -> ProxyProtocolError {
        let expected =
            switch accepting {
            case .v1: "\"PROXY \" (v1)"
            case .v2: "the v2 signature \\r\\n\\r\\n\\0\\r\\nQUIT\\n"
            case .either: "\"PROXY \" (v1) or the v2 signature"
            }
        var what = ""
        switch b {
        case 0x16: what = " (a TLS handshake record: the client did not send a PROXY header)"
        case UInt8(ascii: "P"): what = " (the start of a PROXY v1 header, which is not accepted)"
        case 0x0D: what = " (the start of a PROXY v2 header, which is not accepted)"
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): what = " (plain text, perhaps an HTTP request)"
        default: break
        }
        return ProxyProtocolError(.invalidSignature, "not a PROXY protocol header: first byte 0x\(hexByte(b))\(what), expected \(expected)")
    }
}
