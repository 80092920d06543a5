/// Width and emptiness policy of a TLS vector's length prefix (RFC 8446 §3.4), declared together
/// so that `<1..2^16-1>` and `<0..2^16-1>` are written once, where the field is read.
public enum LengthPrefix: Sendable {
    case uint8(allowEmpty: Bool)
    case uint16(allowEmpty: Bool)
    case uint24(allowEmpty: Bool)

    var width: Int {
        switch self {
        case .uint8: return 1
        case .uint16: return 2
        case .uint24: return 3
        }
    }
    var allowsEmpty: Bool {
        switch self {
        case .uint8(let e), .uint16(let e), .uint24(let e): return e
        }
    }
    var maximum: Int { (1 << (8 * width)) - 1 }
}

/// A read-only cursor over bytes. Every read names the field it reads so that failures say where;
/// the name is an autoclosure, built only when a read fails (not for every field of every message).
public struct ByteReader: Sendable {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    public var isEmpty: Bool { bytes.isEmpty }
    public var remaining: Int { bytes.count }

    public mutating func readUInt8(_ field: @autoclosure () -> String = "uint8") throws(DecodeError) -> UInt8 {
        guard let first = bytes.first else { throw .truncated(field: field()) }
        bytes = bytes.dropFirst()
        return first
    }

    public mutating func readUInt16(_ field: @autoclosure () -> String = "uint16") throws(DecodeError) -> UInt16 {
        let b = try readBytes(count: 2, field())
        return UInt16(b[b.startIndex]) << 8 | UInt16(b[b.startIndex + 1])
    }

    public mutating func readUInt24(_ field: @autoclosure () -> String = "uint24") throws(DecodeError) -> UInt32 {
        let b = try readBytes(count: 3, field())
        return UInt32(b[b.startIndex]) << 16 | UInt32(b[b.startIndex + 1]) << 8 | UInt32(b[b.startIndex + 2])
    }

    public mutating func readUInt32(_ field: @autoclosure () -> String = "uint32") throws(DecodeError) -> UInt32 {
        let b = try readBytes(count: 4, field())
        var v: UInt32 = 0
        for x in b { v = v << 8 | UInt32(x) }
        return v
    }

    public mutating func readUInt64(_ field: @autoclosure () -> String = "uint64") throws(DecodeError) -> UInt64 {
        let b = try readBytes(count: 8, field())
        var v: UInt64 = 0
        for x in b { v = v << 8 | UInt64(x) }
        return v
    }

    public mutating func readBytes(count: Int, _ field: @autoclosure () -> String = "bytes") throws(DecodeError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count >= count else { throw .truncated(field: field()) }
        let out = bytes.prefix(count)
        bytes = bytes.dropFirst(count)
        return out
    }

    public mutating func readRest() -> ArraySlice<UInt8> {
        let out = bytes
        bytes = bytes[bytes.endIndex...]
        return out
    }

    /// Reads a length-prefixed vector and returns a reader over exactly its body.
    public mutating func readLengthPrefixed(_ prefix: LengthPrefix, _ field: @autoclosure () -> String) throws(DecodeError) -> ByteReader {
        let length: Int
        switch prefix {
        case .uint8: length = Int(try readUInt8(field()))
        case .uint16: length = Int(try readUInt16(field()))
        case .uint24: length = Int(try readUInt24(field()))
        }
        if length == 0 && !prefix.allowsEmpty { throw .illegalEmptyList(field()) }
        return ByteReader(try readBytes(count: length, field()))
    }

    /// Reads a length-prefixed opaque vector.
    public mutating func readOpaque(_ prefix: LengthPrefix, _ field: @autoclosure () -> String) throws(DecodeError) -> [UInt8] {
        Array(try readLengthPrefixed(prefix, field()).bytes)
    }

    /// Fails if any bytes are left: every top-level decode ends with this.
    public func finish(_ context: @autoclosure () -> String) throws(DecodeError) {
        if !bytes.isEmpty { throw .trailingData(in: context()) }
    }
}
