/// A PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a proxy tells
/// the server behind it about the client connection it is relaying.
///
/// Build one and call `encodeV2()` (or `encodeV1()`) to send it; parse one with
/// `ProxyHeaderParser`.
public struct ProxyHeader: Sendable, Hashable {
    /// The v2 command.
    public enum Command: UInt8, Sendable, Hashable {
        /// LOCAL (0x0): the connection was made by the proxy itself (e.g. a health check); the
        /// receiver uses the real connection endpoints and ignores any addresses.
        case local = 0x0
        /// PROXY (0x1): the connection is relayed on behalf of the client described.
        case proxy = 0x1
    }

    /// The relayed connection's addresses (v2 family and transport byte).
    public enum Transport: Sendable, Hashable {
        /// AF_UNSPEC (0x00): unknown or unsupported protocol; no addresses (v1 "UNKNOWN").
        case unspecified
        /// TCP over IPv4 (0x11); v1 "TCP4".
        case tcp4(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16)
        /// UDP over IPv4 (0x12); v2 only.
        case udp4(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16)
        /// TCP over IPv6 (0x21); v1 "TCP6".
        case tcp6(source: IPv6Address, sourcePort: UInt16, destination: IPv6Address, destinationPort: UInt16)
        /// UDP over IPv6 (0x22); v2 only.
        case udp6(source: IPv6Address, sourcePort: UInt16, destination: IPv6Address, destinationPort: UInt16)
        /// AF_UNIX stream (0x31); v2 only. Paths are at most 108 bytes; on the wire each is
        /// zero-padded to 108 bytes, and parsing strips trailing zero bytes (so an abstract
        /// socket's leading zero byte is kept).
        case unix(source: [UInt8], destination: [UInt8])
        /// AF_UNIX datagram (0x32); v2 only, paths as for `unix`.
        case unixDatagram(source: [UInt8], destination: [UInt8])

        /// The v2 family/transport byte.
        public var familyByte: UInt8 {
            switch self {
            case .unspecified: 0x00
            case .tcp4: 0x11
            case .udp4: 0x12
            case .tcp6: 0x21
            case .udp6: 0x22
            case .unix: 0x31
            case .unixDatagram: 0x32
            }
        }

        /// The size of the v2 address block for a family/transport byte, or nil if the byte
        /// is not one of the assigned values.
        static func addressLength(familyByte: UInt8) -> Int? {
            switch familyByte {
            case 0x00: 0
            case 0x11, 0x12: 12
            case 0x21, 0x22: 36
            case 0x31, 0x32: 216
            default: nil
            }
        }

        static func familyName(_ byte: UInt8) -> String {
            switch byte {
            case 0x00: "UNSPEC"
            case 0x11: "TCP/IPv4"
            case 0x12: "UDP/IPv4"
            case 0x21: "TCP/IPv6"
            case 0x22: "UDP/IPv6"
            case 0x31: "UNIX stream"
            case 0x32: "UNIX datagram"
            default: "0x" + hexByte(byte)
            }
        }
    }

    /// Which protocol version a header was (or is to be) written in.
    public enum Version: Sendable, Hashable {
        /// The text format ("PROXY TCP4 …\r\n").
        case v1
        /// The binary format with TLVs.
        case v2
    }

    /// The longest unix socket path a v2 header can carry.
    public static let maximumUnixPathLength = 108
    /// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The longest v1 line, CRLF included.
    public static let maximumV1Length = 107
    /// The longest v2 header: 16 fixed bytes plus a 16-bit length.
    public static let maximumV2Length = 16 + 0xFFFF

    /// LOCAL or PROXY.
    public var command: Command
    /// The relayed connection's addresses (`.unspecified` for LOCAL).
    public var transport: Transport
    /// v2 TLVs in wire order, unknown types included.
    public var tlvs: [ProxyTLV]

    /// A header with the given fields.
    public init(command: Command = .proxy, transport: Transport, tlvs: [ProxyTLV] = []) {
        self.command = command
        self.transport = transport
        self.tlvs = tlvs
    }

    /// A LOCAL header (health checks and the like): no addresses.
    public static func local(tlvs: [ProxyTLV] = []) -> ProxyHeader {
        ProxyHeader(command: .local, transport: .unspecified, tlvs: tlvs)
    }

    // MARK: TLV accessors

    /// The first TLV of `type`, if any.
    public func tlv(ofType type: UInt8) -> ProxyTLV? { tlvs.first { $0.type == type } }

    /// The ALPN TLV's value (e.g. "h2" as bytes).
    public var alpn: [UInt8]? { tlv(ofType: ProxyTLV.alpnType)?.value }
    /// The AUTHORITY TLV (the client's SNI), if present and valid UTF-8.
    public var authority: String? { tlv(ofType: ProxyTLV.authorityType)?.stringValue }
    /// The UNIQUE_ID TLV's value.
    public var uniqueID: [UInt8]? { tlv(ofType: ProxyTLV.uniqueIDType)?.value }
    /// The NETNS TLV, if present and valid UTF-8.
    public var netns: String? { tlv(ofType: ProxyTLV.netnsType)?.stringValue }
    /// The CRC32C TLV's value, if present and 4 bytes.
    public var crc32c: UInt32? {
        guard let v = tlv(ofType: ProxyTLV.crc32cType)?.value, v.count == 4 else { return nil }
        return UInt32(v[0]) << 24 | UInt32(v[1]) << 16 | UInt32(v[2]) << 8 | UInt32(v[3])
    }
    /// The SSL TLV's contents, if present and well formed.
    public var sslInfo: ProxyTLV.SSLInfo? { tlv(ofType: ProxyTLV.sslType)?.sslInfo }
    /// The Q-SSL TLV's contents, if present and well formed.
    public var qsslInfo: ProxyTLV.QSSLInfo? { tlv(ofType: ProxyTLV.qsslType)?.qsslInfo }
}
