extension ProxyTLV {
    /// What Q-SSL tells its backend about the key exchange, in the application TLV
    /// `ProxyTLV.qsslType` (0xE0).
    ///
    /// Layout of the TLV value (all integers big-endian):
    ///
    ///     offset  size  field
    ///     0       1     format version, 1
    ///     1       2     negotiated key-exchange group code point (TLS NamedGroup)
    ///     3       1     flags: bit 0 (0x01) post-quantum key exchange,
    ///                          bit 1 (0x02) session resumed; other bits reserved (sent as 0)
    ///     4       1     N, the length of the group name
    ///     5       N     the group's IANA name in UTF-8, e.g. "X25519MLKEM768"
    ///
    /// A decoder rejects another format version, a name running past the value, or a name that
    /// is not UTF-8; it ignores reserved flag bits and bytes after the name, which later
    /// versions of this format may use for new fields.
    public struct QSSLInfo: Sendable, Hashable {
        /// The format version this code writes.
        public static let formatVersion: UInt8 = 1

        /// The negotiated key-exchange group (TLS NamedGroup code point), e.g. 0x11EC.
        public var groupCodePoint: UInt16
        /// The group's IANA name, e.g. "X25519MLKEM768" (at most 255 bytes of UTF-8).
        public var groupName: String
        /// Whether the key exchange was post-quantum (pure or hybrid).
        public var postQuantum: Bool
        /// Whether the TLS session was resumed.
        public var resumed: Bool

        /// Describes a negotiated key exchange.
        public init(groupCodePoint: UInt16, groupName: String, postQuantum: Bool, resumed: Bool) {
            self.groupCodePoint = groupCodePoint
            self.groupName = groupName
            self.postQuantum = postQuantum
            self.resumed = resumed
        }

        /// The TLV value; throws if the name is longer than 255 bytes.
        public func encode() throws(ProxyProtocolError) -> [UInt8] {
            let name = Array(groupName.utf8)
            guard name.count <= 255 else {
                throw ProxyProtocolError(.cannotEncode, "Q-SSL TLV: group name of \(name.count) bytes is longer than 255")
            }
            let flags: UInt8 = (postQuantum ? 0x01 : 0) | (resumed ? 0x02 : 0)
            return [Self.formatVersion, UInt8(groupCodePoint >> 8), UInt8(groupCodePoint & 0xFF), flags, UInt8(name.count)] + name
        }

        /// Decodes a Q-SSL TLV value (see the layout above).
        public init(decoding value: [UInt8]) throws(ProxyProtocolError) {
            guard value.count >= 5 else {
                throw ProxyProtocolError(.malformedTLV, "Q-SSL TLV: \(value.count) bytes is shorter than the 5-byte fixed part")
            }
            guard value[0] == Self.formatVersion else {
                throw ProxyProtocolError(.malformedTLV, "Q-SSL TLV: unsupported format version \(value[0]) (expected 1)")
            }
            let length = Int(value[4])
            guard value.count - 5 >= length else {
                throw ProxyProtocolError(.malformedTLV, "Q-SSL TLV: group name length \(length) overruns the \(value.count - 5) bytes left")
            }
            guard let name = decodeUTF8(Array(value[5..<(5 + length)])) else {
                throw ProxyProtocolError(.malformedTLV, "Q-SSL TLV: group name is not valid UTF-8")
            }
            self.init(
                groupCodePoint: UInt16(value[1]) << 8 | UInt16(value[2]), groupName: name,
                postQuantum: value[3] & 0x01 != 0, resumed: value[3] & 0x02 != 0)
        }
    }

    /// A Q-SSL application TLV (type 0xE0) describing the key exchange.
    public static func qssl(_ info: QSSLInfo) throws(ProxyProtocolError) -> ProxyTLV {
        ProxyTLV(type: qsslType, value: try info.encode())
    }

    /// This TLV's Q-SSL contents, or nil if it is not a well-formed Q-SSL TLV.
    public var qsslInfo: QSSLInfo? {
        guard type == ProxyTLV.qsslType else { return nil }
        return try? QSSLInfo(decoding: value)
    }
}
