// The incremental RESP2/RESP3 decoder: any split of the input, bounded size and nesting.

import NIOCore

/// Why a reply could not be decoded. The connection is closed after any of these, since the
/// stream can no longer be trusted.
public enum RESPDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A type byte that RESP does not define.
    case invalidType(UInt8)
    /// A length, count, integer, double, boolean or null line that is not well formed.
    case invalidLine(type: Character, reason: String)
    /// A bulk payload not followed by CRLF.
    case missingTerminator
    /// The reply is (or declares itself) larger than the configured limit.
    case replyTooLarge(limit: Int)
    /// Aggregates nested deeper than the configured limit.
    case nestingTooDeep(limit: Int)

    public var description: String {
        switch self {
        case .invalidType(let b):
            return "invalid RESP type byte 0x\(String(b, radix: 16)) (\(b >= 0x20 && b < 0x7F ? String(UnicodeScalar(b)) : "?"))"
        case .invalidLine(let type, let reason): return "malformed RESP '\(type)' line: \(reason)"
        case .missingTerminator: return "RESP bulk payload not terminated by CRLF"
        case .replyTooLarge(let limit): return "RESP reply larger than the limit of \(limit) bytes"
        case .nestingTooDeep(let limit): return "RESP aggregates nested deeper than the limit of \(limit)"
        }
    }
}

/// Decodes one RESP value at a time from the front of a `ByteBuffer`.
///
/// `decode(_:)` returns `nil` (consuming nothing) until a whole value is buffered; it then
/// consumes exactly that value. A value larger than `maximumReplySize` bytes, or whose declared
/// lengths or counts could not fit in it, is rejected as soon as that is known, so at most about
/// `maximumReplySize` bytes are ever buffered.
public struct RESPDecoder: Sendable {
    /// The largest reply accepted, in bytes on the wire.
    public let maximumReplySize: Int
    /// The deepest nesting of aggregates accepted (a flat array has depth 1).
    public let maximumNestingDepth: Int

    /// The hard cap on `maximumNestingDepth`, to keep the recursive descent far from the stack limit.
    public static let nestingDepthCap = 256

    public init(maximumReplySize: Int = 1 << 20, maximumNestingDepth: Int = 32) {
        self.maximumReplySize = max(16, maximumReplySize)
        self.maximumNestingDepth = min(max(1, maximumNestingDepth), Self.nestingDepthCap)
    }

    /// Decodes the next complete value, consuming its bytes, or returns `nil` if more are needed.
    public func decode(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        var need = Need.unknown
        return try decode(&buffer, need: &need)
    }

    /// How far an incomplete reply has been scanned, so that a caller feeding bytes as they
    /// arrive resumes there instead of parsing from the start again: each byte is scanned a
    /// bounded number of times however the reply is split (a hostile server dripping a large
    /// array one byte per read costs linear time, not quadratic). The reply is parsed into a
    /// value once, when the scan says it is complete.
    struct Need: Sendable, Equatable {
        /// Bytes from the reader index that hold only complete elements (or headers of open
        /// aggregates).
        var scanned = 0
        /// The elements each open aggregate still owes, outermost first; an attribute is
        /// followed by the value it describes, which its parent counts instead.
        var open: [(remaining: Int, isAttribute: Bool)] = []
        /// How far the search for the current element's line feed has looked (a long line
        /// arriving in pieces is searched once).
        var lineSearched = 0
        /// Bytes examined by the scan so far (tests check that a dripped reply stays linear).
        var work = 0

        static var unknown: Need { Need() }

        static func == (a: Need, b: Need) -> Bool {
            a.scanned == b.scanned && a.lineSearched == b.lineSearched && a.open.map(\.remaining) == b.open.map(\.remaining)
                && a.open.map(\.isAttribute) == b.open.map(\.isAttribute)
        }
    }

    /// `decode(_:)` resuming the scan recorded in `need`, and updating it.
    func decode(_ buffer: inout ByteBuffer, need: inout Need) throws(RESPDecodingError) -> RESPValue? {
        let view = buffer.readableBytesView
        guard scan(view, &need) else {
            if view.count > maximumReplySize { throw .replyTooLarge(limit: maximumReplySize) }
            return nil
        }
        let work = need.work
        need = Need()
        need.work = work
        var cursor = Cursor(
            view: view, position: view.startIndex,
            limit: view.startIndex + min(view.count, maximumReplySize), max: maximumReplySize)
        guard let value = try parseValue(&cursor, depth: 0) else {
            if view.count > maximumReplySize { throw .replyTooLarge(limit: maximumReplySize) }
            // The scan found a whole reply and the parse did not: fail closed rather than wait
            // (and re-scan) for bytes that are not owed.
            throw .invalidLine(type: "?", reason: "a reply the structural scan and the parser read differently")
        }
        buffer.moveReaderIndex(forwardBy: cursor.position - view.startIndex)
        return value
    }

    /// Scans the structure of the buffered reply from where `need` left off: true when a whole
    /// reply is buffered, or when something is malformed (the parse then throws the precise
    /// error); false when more bytes are needed.
    private func scan(_ view: ByteBufferView, _ need: inout Need) -> Bool {
        let limit = view.startIndex + min(view.count, maximumReplySize)
        while true {
            let start = view.startIndex + need.scanned
            guard start < limit else { return false }
            let type = view[start]
            // Every element starts with a line: the type byte, text, CRLF.
            let searchFrom = max(start + 1, view.startIndex + need.lineSearched)
            guard searchFrom <= limit else { return false }
            // The line ends at the first CR or LF: a CR followed by anything but LF, or a bare LF,
            // is malformed (the parse says which).
            guard let lineEnd = view[searchFrom..<limit].firstIndex(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) else {
                need.work += limit - searchFrom
                need.lineSearched = limit - view.startIndex
                return false
            }
            need.work += lineEnd + 1 - searchFrom
            guard view[lineEnd] == UInt8(ascii: "\r") else { return true }
            guard lineEnd + 1 < limit else {
                need.lineSearched = lineEnd - view.startIndex
                return false
            }
            guard view[lineEnd + 1] == UInt8(ascii: "\n") else { return true }
            let lineFeed = lineEnd + 1
            let text = view[(start + 1)..<(lineFeed - 1)]
            var end = lineFeed + 1
            var opened: (remaining: Int, isAttribute: Bool)?
            switch type {
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "#"),
                UInt8(ascii: ","), UInt8(ascii: "("):
                break
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                guard let length = Self.scanCount(text) else { return true }
                if length >= 0 {
                    guard length <= maximumReplySize else { return true }
                    end += length + 2
                    guard end <= limit else { return false }
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
                guard let count = Self.scanCount(text), count <= maximumReplySize / 3 else { return true }
                guard need.open.count + 1 <= maximumNestingDepth else { return true }
                let isMap = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
                if count > 0 { opened = (isMap ? count * 2 : count, type == UInt8(ascii: "|")) } else if type == UInt8(ascii: "|") { opened = (1, false) }  // an empty attribute: the value it describes follows
            default:
                return true
            }
            need.scanned = end - view.startIndex
            need.lineSearched = 0
            if let opened {
                need.open.append(opened)
                continue
            }
            // One element complete: it completes the aggregates it closes, outward. An attribute
            // that closes is not an element of its parent: the value it describes is, one level
            // deeper (as the parse counts it, so chains of attributes are bounded like nesting).
            while let top = need.open.popLast() {
                if top.remaining > 1 {
                    need.open.append((top.remaining - 1, top.isAttribute))
                    break
                }
                if top.isAttribute {
                    guard need.open.count + 1 <= maximumNestingDepth else { return true }
                    need.open.append((1, false))
                    break
                }
            }
            if need.open.isEmpty { return true }
        }
    }

    /// A length or count line's value (-1 allowed), or nil when it is not one.
    private static func scanCount(_ text: ByteBufferView.SubSequence) -> Int? {
        lengthValue(text, allowNull: true).map { Int($0) }
    }

    /// A read position inside the buffered bytes; `limit` is the end of what a reply may use.
    struct Cursor {
        let view: ByteBufferView
        var position: Int
        let limit: Int
        let max: Int
        var truncated: Bool { limit < view.endIndex }
    }

    private func parseValue(_ c: inout Cursor, depth: Int) throws(RESPDecodingError) -> RESPValue? {
        guard c.position < c.limit else {
            return try incomplete(c)
        }
        let type = c.view[c.position]
        c.position += 1
        switch type {
        case UInt8(ascii: "+"):
            return try line(&c, type).map { .simpleString(String(decoding: $0, as: UTF8.self)) }
        case UInt8(ascii: "-"):
            return try line(&c, type).map { .error(String(decoding: $0, as: UTF8.self)) }
        case UInt8(ascii: ":"):
            guard let text = try line(&c, type) else { return nil }
            guard let value = Self.parseInteger(text) else { throw .invalidLine(type: ":", reason: "not a 64-bit integer") }
            return .integer(value)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let length = try length(&c, type, allowNull: type == UInt8(ascii: "$")) else { return nil }
            guard length >= 0 else { return .bulkString(nil) }
            guard let payload = try blob(&c, length) else { return nil }
            if type == UInt8(ascii: "$") { return .bulkString(payload) }
            if type == UInt8(ascii: "!") { return .error(String(decoding: payload, as: UTF8.self)) }
            guard payload.count >= 4, payload[3] == UInt8(ascii: ":") else {
                throw .invalidLine(type: "=", reason: "verbatim string without a 'fmt:' prefix")
            }
            return .verbatimString(format: String(decoding: payload[0..<3], as: UTF8.self), text: Array(payload[4...]))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try length(&c, type, allowNull: type == UInt8(ascii: "*")) else { return nil }
            guard count >= 0 else { return .array(nil) }
            guard let elements = try aggregate(&c, count: count, depth: depth) else { return nil }
            switch type {
            case UInt8(ascii: "*"): return .array(elements)
            case UInt8(ascii: "~"): return .set(elements)
            default: return .push(elements)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try length(&c, type, allowNull: false) else { return nil }
            guard count <= c.max / 2 else { throw .replyTooLarge(limit: c.max) }
            guard let flat = try aggregate(&c, count: count * 2, depth: depth) else { return nil }
            if type == UInt8(ascii: "%") {
                return .map(stride(from: 0, to: flat.count, by: 2).map { RESPMapEntry(key: flat[$0], value: flat[$0 + 1]) })
            }
            // An attribute describes the value after it: skip it and return that value (one level
            // deeper, so that a chain of attributes is bounded like nesting).
            guard depth + 1 < maximumNestingDepth else { throw .nestingTooDeep(limit: maximumNestingDepth) }
            return try parseValue(&c, depth: depth + 1)
        case UInt8(ascii: "_"):
            guard let text = try line(&c, type) else { return nil }
            guard text.isEmpty else { throw .invalidLine(type: "_", reason: "null with a payload") }
            return .null
        case UInt8(ascii: "#"):
            guard let text = try line(&c, type) else { return nil }
            guard text.count == 1, text[0] == UInt8(ascii: "t") || text[0] == UInt8(ascii: "f") else {
                throw .invalidLine(type: "#", reason: "boolean is neither t nor f")
            }
            return .boolean(text[0] == UInt8(ascii: "t"))
        case UInt8(ascii: ","):
            guard let text = try line(&c, type) else { return nil }
            guard text.count <= 64, text.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                let value = Double(String(decoding: text, as: UTF8.self))
            else {
                throw .invalidLine(type: ",", reason: "not a double")
            }
            return .double(value)
        case UInt8(ascii: "("):
            guard let text = try line(&c, type) else { return nil }
            let digits = text.first == UInt8(ascii: "-") || text.first == UInt8(ascii: "+") ? text.dropFirst() : text[...]
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .invalidLine(type: "(", reason: "big number is not a decimal integer")
            }
            return .bigNumber(String(decoding: text, as: UTF8.self))
        default:
            throw .invalidType(type)
        }
    }

    private func aggregate(_ c: inout Cursor, count: Int, depth: Int) throws(RESPDecodingError) -> [RESPValue]? {
        guard depth + 1 <= maximumNestingDepth else { throw .nestingTooDeep(limit: maximumNestingDepth) }
        // Every element takes at least three bytes ("_\r\n"), so a larger count cannot fit.
        guard count <= c.max / 3 else { throw .replyTooLarge(limit: c.max) }
        var elements: [RESPValue] = []
        elements.reserveCapacity(min(count, 1024))
        for _ in 0..<count {
            guard let element = try parseValue(&c, depth: depth + 1) else { return nil }
            elements.append(element)
        }
        return elements
    }

    /// The bytes up to the next CRLF (consumed with it), or `nil` if no CRLF is buffered yet.
    private func line(_ c: inout Cursor, _ type: UInt8) throws(RESPDecodingError) -> [UInt8]? {
        var index = c.position
        while index < c.limit {
            if c.view[index] == UInt8(ascii: "\r") {
                guard index + 1 < c.limit else { break }
                guard c.view[index + 1] == UInt8(ascii: "\n") else {
                    throw .invalidLine(type: Character(UnicodeScalar(type)), reason: "CR not followed by LF")
                }
                let bytes = Array(c.view[c.position..<index])
                c.position = index + 2
                return bytes
            }
            guard c.view[index] != UInt8(ascii: "\n") else {
                throw .invalidLine(type: Character(UnicodeScalar(type)), reason: "bare LF")
            }
            index += 1
        }
        return try incomplete(c)
    }

    /// A length or count line: a non-negative decimal, or -1 where `allowNull`.
    private func length(_ c: inout Cursor, _ type: UInt8, allowNull: Bool) throws(RESPDecodingError) -> Int? {
        guard let text = try line(&c, type) else { return nil }
        let name = Character(UnicodeScalar(type))
        guard let value = Self.lengthValue(text, allowNull: allowNull) else {
            throw .invalidLine(type: name, reason: "length is not a non-negative integer")
        }
        if value == -1 { return -1 }
        guard value <= Int64(c.max) else { throw .replyTooLarge(limit: c.max) }
        return Int(value)
    }

    /// `length` payload bytes followed by CRLF.
    private func blob(_ c: inout Cursor, _ length: Int) throws(RESPDecodingError) -> [UInt8]? {
        guard length <= c.max, c.position + length + 2 <= c.limit else {
            if c.position + length + 2 > c.view.startIndex + c.max { throw .replyTooLarge(limit: c.max) }
            return try incomplete(c)
        }
        let end = c.position + length
        guard c.view[end] == UInt8(ascii: "\r"), c.view[end + 1] == UInt8(ascii: "\n") else { throw .missingTerminator }
        let payload = Array(c.view[c.position..<end])
        c.position = end + 2
        return payload
    }

    /// More bytes are needed; if the reply has already reached the size limit, it never fits.
    private func incomplete<T>(_ c: Cursor) throws(RESPDecodingError) -> T? {
        if c.truncated { throw .replyTooLarge(limit: c.max) }
        return nil
    }

    /// A length or count line's value: up to 19 decimal digits (leading zeros allowed), or -1
    /// where `allowNull`; nil otherwise. The parser and the structural scan both read headers
    /// with it, so they cannot disagree.
    static func lengthValue<Text: Collection<UInt8>>(_ text: Text, allowNull: Bool) -> Int64? {
        if allowNull, text.elementsEqual([UInt8(ascii: "-"), UInt8(ascii: "1")]) { return -1 }
        guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return parseInteger(text)
    }

    /// A decimal Int64 with an optional sign; `nil` on anything else or on overflow.
    static func parseInteger<Text: Collection<UInt8>>(_ text: Text) -> Int64? {
        var digits = text[...]
        var negative = false
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= 0x30, digit <= 0x39 else { return nil }
            let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
            let d = Int64(digit - 0x30)
            let (next, o2) = negative ? shifted.subtractingReportingOverflow(d) : shifted.addingReportingOverflow(d)
            guard !o1, !o2 else { return nil }
            value = next
        }
        return value
    }
}

/// A `ByteToMessageDecoder` producing `RESPValue`s, for a NIO pipeline.
public struct RESPMessageDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPValue
    public let decoder: RESPDecoder
    private var need = RESPDecoder.Need.unknown

    public init(decoder: RESPDecoder = RESPDecoder()) {
        self.decoder = decoder
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try decoder.decode(&buffer, need: &need) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Encodes commands as RESP arrays of bulk strings.
public enum RESPEncoder {
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(command.arguments.count))
        buffer.writeStaticString("\r\n")
        for argument in command.arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            buffer.writeString(String(argument.count))
            buffer.writeStaticString("\r\n")
            buffer.writeBytes(argument)
            buffer.writeStaticString("\r\n")
        }
    }
}
