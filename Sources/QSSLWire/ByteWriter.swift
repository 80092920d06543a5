/// Appends TLS structures to a byte array. Length prefixes are written by nesting, never by hand.
///
/// A vector too long for its length prefix never traps (peer-supplied data, such as a
/// HelloRetryRequest cookie, can reach an encoder): the writer records the overflow and
/// `finish()` throws it. The bytes are reachable only through `finish()`, so no caller can send
/// a structure whose lengths are wrong.
public struct ByteWriter: Sendable {
    private var storage: [UInt8]
    /// The first length prefix that overflowed, if any.
    public private(set) var overflow: EncodeError?

    public init(capacity: Int = 256) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// Bytes written so far.
    public var count: Int { storage.count }

    /// The encoded bytes, or the first overflow.
    public func finish() throws(EncodeError) -> [UInt8] {
        if let overflow { throw overflow }
        return storage
    }

    public mutating func write(_ value: UInt8) { storage.append(value) }

    public mutating func write(_ value: UInt16) {
        storage.append(UInt8(truncatingIfNeeded: value >> 8))
        storage.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeUInt24(_ value: Int) {
        if value < 0 || value > 0xFF_FFFF { record(EncodeError(field: "uint24", length: value, maximum: 0xFF_FFFF)) }
        storage.append(UInt8(truncatingIfNeeded: value >> 16))
        storage.append(UInt8(truncatingIfNeeded: value >> 8))
        storage.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { storage.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func write(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { storage.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public mutating func write<C: Collection>(bytes other: C) where C.Element == UInt8 {
        storage.append(contentsOf: other)
    }

    /// Writes `body` behind a length prefix of the given width, filled in afterwards. A body
    /// longer than the prefix allows is recorded as an overflow that `finish()` throws.
    public mutating func writeLengthPrefixed<E: Error>(
        _ prefix: LengthPrefix, _ body: (inout ByteWriter) throws(E) -> Void
    ) throws(E) {
        let start = storage.count
        storage.append(contentsOf: repeatElement(0, count: prefix.width))
        try body(&self)
        let length = storage.count - start - prefix.width
        if length > prefix.maximum {
            record(EncodeError(field: "a \(8 * prefix.width)-bit length prefix", length: length, maximum: prefix.maximum))
        }
        for i in 0..<prefix.width {
            storage[start + i] = UInt8(truncatingIfNeeded: length >> (8 * (prefix.width - 1 - i)))
        }
    }

    public mutating func writeOpaque<C: Collection>(_ prefix: LengthPrefix, _ value: C) where C.Element == UInt8 {
        writeLengthPrefixed(prefix) { $0.write(bytes: value) }
    }

    private mutating func record(_ error: EncodeError) {
        if overflow == nil { overflow = error }
    }
}

/// A structure could not be encoded: a vector does not fit its length prefix.
public struct EncodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var length: Int
    public var maximum: Int
    public init(field: String, length: Int, maximum: Int) {
        self.field = field
        self.length = length
        self.maximum = maximum
    }
    public var description: String {
        "\(length) bytes do not fit \(field) (at most \(maximum))"
    }
}

/// A structure that can be written in TLS presentation language.
public protocol WireEncodable {
    func encode(to writer: inout ByteWriter)
}

extension WireEncodable {
    /// The structure's bytes, or the first vector that did not fit its length prefix.
    public func encodedBytes() throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        encode(to: &w)
        return try w.finish()
    }
}
