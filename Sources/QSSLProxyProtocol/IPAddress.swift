/// An IPv4 address: four bytes in network order.
///
/// Text form is dotted decimal ("192.0.2.1"). Parsing is strict: exactly four decimal
/// components in 0...255, no leading zeros ("01" is rejected, as glibc's `inet_pton` does),
/// no signs, spaces or other characters.
public struct IPv4Address: Sendable, Hashable, CustomStringConvertible {
    /// The four address bytes, most significant first (always exactly four).
    public let bytes: [UInt8]

    /// The address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        bytes = [a, b, c, d]
    }

    /// The address in `bytes`, or nil unless there are exactly four.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses dotted-decimal text; nil if it is not exactly a strict IPv4 address.
    public init?(_ text: some StringProtocol) {
        guard let parsed = IPv4Address.parse(Array(text.utf8)) else { return nil }
        self = parsed
    }

    /// Dotted-decimal text, e.g. "192.0.2.1".
    public var description: String {
        "\(bytes[0]).\(bytes[1]).\(bytes[2]).\(bytes[3])"
    }

    /// Parses ASCII bytes of dotted-decimal text.
    static func parse(_ text: [UInt8]) -> IPv4Address? {
        var parts: [UInt8] = []
        var value = 0
        var digits = 0
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, parts.count < 3 else { return nil }
                parts.append(UInt8(value))
                value = 0
                digits = 0
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                if digits == 1, value == 0 { return nil }  // leading zero
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, parts.count == 3 else { return nil }
        parts.append(UInt8(value))
        return IPv4Address(parts[0], parts[1], parts[2], parts[3])
    }
}

/// An IPv6 address: sixteen bytes in network order.
///
/// Parsing accepts the RFC 4291 text forms: eight groups of one to four hex digits, at most one
/// "::", and an optional trailing dotted-quad IPv4 part ("::ffff:192.0.2.1"). Zone identifiers
/// ("%eth0") and brackets are rejected. `description` is the RFC 5952 canonical form.
public struct IPv6Address: Sendable, Hashable, CustomStringConvertible {
    /// The sixteen address bytes, most significant first.
    public let bytes: [UInt8]

    /// The address in `bytes`, or nil unless there are exactly sixteen.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        self.bytes = Array(bytes)
    }

    /// The address made of eight 16-bit groups, or nil unless there are exactly eight.
    public init?(groups: [UInt16]) {
        guard groups.count == 8 else { return nil }
        var b: [UInt8] = []
        b.reserveCapacity(16)
        for g in groups {
            b.append(UInt8(g >> 8))
            b.append(UInt8(g & 0xFF))
        }
        bytes = b
    }

    /// Parses IPv6 text; nil if it is not a valid IPv6 address.
    public init?(_ text: some StringProtocol) {
        guard let parsed = IPv6Address.parse(Array(text.utf8)) else { return nil }
        self = parsed
    }

    /// The IPv4-mapped address `::ffff:a.b.c.d`.
    public init(ipv4Mapped v4: IPv4Address) {
        bytes = Array(repeating: 0, count: 10) + [0xFF, 0xFF] + v4.bytes
    }

    /// The address's eight 16-bit groups.
    public var groups: [UInt16] {
        (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
    }

    /// The embedded IPv4 address if this is an IPv4-mapped address (`::ffff:0:0/96`).
    public var ipv4Mapped: IPv4Address? {
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return IPv4Address(bytes[12], bytes[13], bytes[14], bytes[15])
    }

    /// RFC 5952 text: lowercase hex, no leading zeros in a group, the longest run of two or more
    /// zero groups (the first such run on a tie) shown as "::", and IPv4-mapped addresses as
    /// "::ffff:a.b.c.d".
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        let g = groups
        var bestStart = -1
        var bestLength = 0
        var i = 0
        while i < 8 {
            guard g[i] == 0 else {
                i += 1
                continue
            }
            var j = i
            while j < 8, g[j] == 0 { j += 1 }
            if j - i > bestLength {
                bestStart = i
                bestLength = j - i
            }
            i = j
        }
        if bestLength < 2 { bestStart = -1 }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(g[$0], radix: 16, uppercase: false) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// Parses ASCII bytes of IPv6 text.
    static func parse(_ text: [UInt8]) -> IPv6Address? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        var head: [UInt16] = []  // groups before "::" (or all, without "::")
        var tail: [UInt16] = []  // groups after "::"
        var sawDoubleColon = false
        var i = 0
        if text[0] == UInt8(ascii: ":") {
            guard text[1] == UInt8(ascii: ":") else { return nil }
            sawDoubleColon = true
            i = 2
            if i == text.count { return IPv6Address(bytes: [UInt8](repeating: 0, count: 16)) }
        }
        while i < text.count {
            // One group: hex digits, or a dotted quad if it is the last thing in the text.
            var j = i
            while j < text.count, text[j] != UInt8(ascii: ":") { j += 1 }
            let token = Array(text[i..<j])
            var parsed: [UInt16] = []
            if j == text.count, token.contains(UInt8(ascii: ".")) {
                guard let v4 = IPv4Address.parse(token) else { return nil }
                parsed = [UInt16(v4.bytes[0]) << 8 | UInt16(v4.bytes[1]), UInt16(v4.bytes[2]) << 8 | UInt16(v4.bytes[3])]
            } else {
                guard (1...4).contains(token.count) else { return nil }
                var v: UInt16 = 0
                for c in token {
                    guard let d = hexValue(c) else { return nil }
                    v = v << 4 | UInt16(d)
                }
                parsed = [v]
            }
            if sawDoubleColon { tail += parsed } else { head += parsed }
            guard head.count + tail.count <= 8 else { return nil }
            i = j
            guard i < text.count else { break }
            // A separator: ":" then another group, or "::" (once), possibly ending the text.
            i += 1
            guard i < text.count else { return nil }  // trailing single ":"
            if text[i] == UInt8(ascii: ":") {
                guard !sawDoubleColon else { return nil }
                sawDoubleColon = true
                i += 1
            }
        }
        let total = head.count + tail.count
        if sawDoubleColon {
            guard total <= 7 else { return nil }
            return IPv6Address(groups: head + [UInt16](repeating: 0, count: 8 - total) + tail)
        }
        guard total == 8 else { return nil }
        return IPv6Address(groups: head)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
