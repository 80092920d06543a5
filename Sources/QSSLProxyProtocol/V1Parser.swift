/// The v1 text format: "PROXY TCP4|TCP6 <src> <dst> <srcport> <dstport>\r\n" or
/// "PROXY UNKNOWN[ anything]\r\n", at most 107 bytes, single spaces, US-ASCII.
enum V1Parser {
    private static let prefix = Array("PROXY ".utf8)
    private static let protocols = [Array("TCP4".utf8), Array("TCP6".utf8), Array("UNKNOWN".utf8)]

    /// Parses `b` (at most the first 107 bytes received).
    static func parse(_ b: [UInt8]) throws(ProxyProtocolError) -> ProxyHeaderParser.ParseResult {
        for i in 0..<min(b.count, prefix.count) where b[i] != prefix[i] {
            throw ProxyProtocolError(.invalidSignature, "PROXY v1: line does not start with \"PROXY \" (byte \(i) is 0x\(hexByte(b[i])))")
        }
        // Reject an impossible protocol word as soon as it shows (checked first, so that an
        // error is the same however the bytes were split up).
        if b.count > prefix.count {
            let rest = b[prefix.count...]
            let word = rest.prefix { $0 != UInt8(ascii: " ") && $0 != 0x0D }
            let complete = word.count < rest.count
            guard protocols.contains(where: { complete ? $0.elementsEqual(word) : $0.starts(with: word) }) else {
                let shown = word.prefix { $0 >= 0x20 && $0 < 0x7F }.prefix(16)
                throw ProxyProtocolError(.malformedV1, "PROXY v1: unknown protocol \"\(printable(shown))\" (expected TCP4, TCP6 or UNKNOWN)")
            }
        }
        // Find the CRLF, rejecting control characters and non-ASCII bytes on the way.
        var end: Int?
        for i in 0..<b.count {
            let c = b[i]
            if c == 0x0D {
                guard i + 1 < b.count else { break }
                guard b[i + 1] == 0x0A else {
                    throw ProxyProtocolError(.malformedV1, "PROXY v1: CR at byte \(i) is not followed by LF")
                }
                end = i
                break
            }
            if c == 0x0A {
                throw ProxyProtocolError(.malformedV1, "PROXY v1: LF at byte \(i) without a preceding CR (lines end in CRLF)")
            }
            guard c >= 0x20, c < 0x7F else {
                throw ProxyProtocolError(.malformedV1, "PROXY v1: byte \(i) is 0x\(hexByte(c)), not printable US-ASCII (no CRLF before it)")
            }
        }
        guard let end else {
            if b.count >= ProxyHeader.maximumV1Length {
                throw ProxyProtocolError(.malformedV1, "PROXY v1: no CRLF within the first 107 bytes")
            }
            return .needMoreData
        }
        let line = Array(b[0..<end])
        let header = try parseLine(line)
        return .header(header, version: .v1, consumed: end + 2)
    }

    private static func parseLine(_ line: [UInt8]) throws(ProxyProtocolError) -> ProxyHeader {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false).map { Array($0) }
        let proto = fields.count > 1 ? fields[1] : []
        if proto == Array("UNKNOWN".utf8) {
            return ProxyHeader(command: .proxy, transport: .unspecified)  // the rest is ignored
        }
        guard proto == Array("TCP4".utf8) || proto == Array("TCP6".utf8) else {
            throw ProxyProtocolError(.malformedV1, "PROXY v1: unknown protocol \"\(printable(proto[...]))\" (expected TCP4, TCP6 or UNKNOWN)")
        }
        let name = printable(proto[...])
        guard fields.count == 6, !fields.contains(where: \.isEmpty) else {
            throw ProxyProtocolError(
                .malformedV1,
                "PROXY v1: \(name) line must be \"PROXY \(name) <src> <dst> <srcport> <dstport>\" with single spaces, got \"\(printable(line[...]))\"")
        }
        let sourcePort = try port(fields[4], "source")
        let destinationPort = try port(fields[5], "destination")
        if proto == Array("TCP4".utf8) {
            guard let s = IPv4Address.parse(fields[2]) else { throw badAddress(fields[2], "source", name) }
            guard let d = IPv4Address.parse(fields[3]) else { throw badAddress(fields[3], "destination", name) }
            return ProxyHeader(transport: .tcp4(source: s, sourcePort: sourcePort, destination: d, destinationPort: destinationPort))
        }
        guard let s = IPv6Address.parse(fields[2]) else { throw badAddress(fields[2], "source", name) }
        guard let d = IPv6Address.parse(fields[3]) else { throw badAddress(fields[3], "destination", name) }
        return ProxyHeader(transport: .tcp6(source: s, sourcePort: sourcePort, destination: d, destinationPort: destinationPort))
    }

    /// A decimal port in 0...65535 without leading zeros.
    private static func port(_ text: [UInt8], _ which: String) throws(ProxyProtocolError) -> UInt16 {
        let bad = ProxyProtocolError(.malformedV1, "PROXY v1: bad \(which) port \"\(printable(text[...]))\" (must be 0-65535 in decimal, no leading zeros)")
        guard (1...5).contains(text.count), text.count == 1 || text[0] != UInt8(ascii: "0") else { throw bad }
        var v = 0
        for c in text {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw bad }
            v = v * 10 + Int(c - UInt8(ascii: "0"))
        }
        guard v <= 0xFFFF else { throw bad }
        return UInt16(v)
    }

    private static func badAddress(_ text: [UInt8], _ which: String, _ proto: String) -> ProxyProtocolError {
        let family = proto == "TCP4" ? "IPv4" : "IPv6"
        return ProxyProtocolError(.malformedV1, "PROXY v1: bad \(which) address \"\(printable(text[...]))\" for \(proto) (not a valid \(family) address)")
    }

    /// `bytes` for an error message (the caller has checked they are printable ASCII).
    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
