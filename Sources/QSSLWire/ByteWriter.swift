/// Appends TLS structures to a byte array. Length prefixes are written by nesting, never by hand.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeUInt24(_ value: Int) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func write(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public mutating func write<C: Collection>(bytes other: C) where C.Element == UInt8 {
        bytes.append(contentsOf: other)
    }

    /// Writes `body` behind a length prefix of the given width, filled in afterwards.
    public mutating func writeLengthPrefixed<E: Error>(
        _ prefix: LengthPrefix, _ body: (inout ByteWriter) throws(E) -> Void
    ) throws(E) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: prefix.width))
        try body(&self)
        let length = bytes.count - start - prefix.width
        // Local invariant: callers write bounded structures (every TLS field we emit is far
        // below its prefix's maximum), so an overflow here is a programming error.
        precondition(length <= prefix.maximum, "vector too long for its length prefix")
        for i in 0..<prefix.width {
            bytes[start + i] = UInt8(truncatingIfNeeded: length >> (8 * (prefix.width - 1 - i)))
        }
    }

    public mutating func writeOpaque<C: Collection>(_ prefix: LengthPrefix, _ value: C) where C.Element == UInt8 {
        writeLengthPrefixed(prefix) { $0.write(bytes: value) }
    }
}

/// A structure that can be written in TLS presentation language.
public protocol WireEncodable {
    func encode(to writer: inout ByteWriter)
}

extension WireEncodable {
    public var encodedBytes: [UInt8] {
        var w = ByteWriter()
        encode(to: &w)
        return w.bytes
    }
}
