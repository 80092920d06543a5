// RESP values (RESP2 and RESP3) and their serialisation.

import NIOCore

/// One key/value pair of a RESP3 map.
public struct RESPMapEntry: Sendable, Hashable {
    public var key: RESPValue
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

/// A value of the Redis serialisation protocol, RESP2 or RESP3.
///
/// Attributes (`|`) are skipped by the decoder and never appear; push messages (`>`) are
/// decoded as `.push` and routed out of band by the connection.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`: a simple string.
    case simpleString(String)
    /// `-ERR …` (simple error) or `!<len>` (blob error): an error reply from the server.
    case error(String)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$<len>`: a bulk string; `nil` is the RESP2 null bulk string (`$-1`).
    case bulkString([UInt8]?)
    /// `*<n>`: an array; `nil` is the RESP2 null array (`*-1`).
    case array([RESPValue]?)
    /// `_`: the RESP3 null.
    case null
    /// `#t` / `#f`.
    case boolean(Bool)
    /// `,3.14` (also `inf`, `-inf`, `nan`).
    case double(Double)
    /// `(12345678901234567890`: a big number, kept as its decimal text.
    case bigNumber(String)
    /// `%<n>`: a map, in the order the server sent it.
    case map([RESPMapEntry])
    /// `~<n>`: a set, in the order the server sent it.
    case set([RESPValue])
    /// `><n>`: an out-of-band push message.
    case push([RESPValue])
    /// `=<len>`: a verbatim string with its three-letter format (`txt`, `mkd`).
    case verbatimString(format: String, text: [UInt8])

    /// Whether this is a null of any protocol version (`_`, `$-1`, `*-1`).
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): return true
        default: return false
        }
    }

    /// The bytes of a string-like value (bulk, simple, verbatim), else `nil`.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let b): return b
        case .simpleString(let s): return Array(s.utf8)
        case .verbatimString(_, let t): return t
        default: return nil
        }
    }

    /// The text of a string-like value (decoded as UTF-8, invalid sequences replaced).
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bigNumber(let s): return s
        default: return bytes.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// The integer of an integer reply, or of a string reply holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        default: return string.flatMap { Int64($0) }
        }
    }

    /// The elements of an array, set or push (and a map flattened to key, value, key, …).
    public var elements: [RESPValue]? {
        switch self {
        case .array(let a): return a
        case .set(let s), .push(let s): return s
        case .map(let m): return m.flatMap { [$0.key, $0.value] }
        default: return nil
        }
    }

    /// The entries of a map, or of an array of alternating keys and values (RESP2 form).
    public var mapEntries: [RESPMapEntry]? {
        switch self {
        case .map(let m): return m
        case .array(let a?) where a.count % 2 == 0:
            return stride(from: 0, to: a.count, by: 2).map { RESPMapEntry(key: a[$0], value: a[$0 + 1]) }
        default: return nil
        }
    }

    /// The message of an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let s): return "+\(s)"
        case .error(let e): return "-\(e)"
        case .integer(let i): return ":\(i)"
        case .bulkString(nil), .array(nil), .null: return "(nil)"
        case .bulkString(let b?): return String(reflecting: String(decoding: b.prefix(256), as: UTF8.self))
        case .array(let a?): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .boolean(let b): return b ? "#t" : "#f"
        case .double(let d): return ",\(d)"
        case .bigNumber(let n): return "(\(n)"
        case .map(let m): return "{" + m.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .set(let s): return "~[" + s.map(\.description).joined(separator: ", ") + "]"
        case .push(let p): return ">[" + p.map(\.description).joined(separator: ", ") + "]"
        case .verbatimString(let f, let t): return "=\(f):\(String(decoding: t.prefix(256), as: UTF8.self))"
        }
    }
}

extension RESPValue {
    /// Writes this value in RESP3 form (RESP2 form for the types RESP2 has). Used by servers and
    /// tests; a client sends commands with `RESPEncoder`.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .simpleString(let s): Self.line(UInt8(ascii: "+"), s, &buffer)
        case .error(let e): Self.line(UInt8(ascii: "-"), e, &buffer)
        case .integer(let i): Self.line(UInt8(ascii: ":"), String(i), &buffer)
        case .bulkString(nil): buffer.writeStaticString("$-1\r\n")
        case .bulkString(let b?): Self.blob(UInt8(ascii: "$"), b, &buffer)
        case .array(nil): buffer.writeStaticString("*-1\r\n")
        case .array(let a?): Self.aggregate(UInt8(ascii: "*"), a, &buffer)
        case .null: buffer.writeStaticString("_\r\n")
        case .boolean(let b): buffer.writeStaticString(b ? "#t\r\n" : "#f\r\n")
        case .double(let d):
            let text = d.isNaN ? "nan" : d.isInfinite ? (d < 0 ? "-inf" : "inf") : String(d)
            Self.line(UInt8(ascii: ","), text, &buffer)
        case .bigNumber(let n): Self.line(UInt8(ascii: "("), n, &buffer)
        case .map(let m):
            Self.line(UInt8(ascii: "%"), String(m.count), &buffer)
            for entry in m {
                entry.key.write(to: &buffer)
                entry.value.write(to: &buffer)
            }
        case .set(let s): Self.aggregate(UInt8(ascii: "~"), s, &buffer)
        case .push(let p): Self.aggregate(UInt8(ascii: ">"), p, &buffer)
        case .verbatimString(let f, let t):
            var payload = Array(f.utf8.prefix(3))
            while payload.count < 3 { payload.append(UInt8(ascii: " ")) }
            payload.append(UInt8(ascii: ":"))
            Self.blob(UInt8(ascii: "="), payload + t, &buffer)
        }
    }

    private static func line(_ type: UInt8, _ text: String, _ buffer: inout ByteBuffer) {
        buffer.writeInteger(type)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
    }

    private static func blob(_ type: UInt8, _ bytes: [UInt8], _ buffer: inout ByteBuffer) {
        line(type, String(bytes.count), &buffer)
        buffer.writeBytes(bytes)
        buffer.writeStaticString("\r\n")
    }

    private static func aggregate(_ type: UInt8, _ elements: [RESPValue], _ buffer: inout ByteBuffer) {
        line(type, String(elements.count), &buffer)
        for element in elements { element.write(to: &buffer) }
    }
}
