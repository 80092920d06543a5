import QSSLWire

// The extensions of the server's hello messages as the client works with them, decoded once
// (RFC 8446 §4.2), each message with the set it may carry: the client's states read this value,
// never the raw extension bodies.

/// Which server message an extension block came from: what it may carry, and what its
/// extensions mean (key_share is a full share in a ServerHello, a group in a HelloRetryRequest).
enum ServerExtensionMessage {
    case serverHello13
    case helloRetryRequest
    case serverHello12
    case encryptedExtensions

    /// RFC 8446 §4.2's table (and, for TLS 1.2, the extensions Q-SSL offers a 1.2 server).
    var permitted: Set<ExtensionType> {
        switch self {
        case .serverHello13: [.supportedVersions, .keyShare, .preSharedKey]
        case .helloRetryRequest: [.supportedVersions, .keyShare, .cookie]
        case .serverHello12: [.serverName, .ecPointFormats, .extendedMasterSecret, .renegotiationInfo, .alpn, .sessionTicket, .statusRequest]
        case .encryptedExtensions: [.serverName, .supportedGroups, .alpn, .recordSizeLimit, .earlyData]
        }
    }

    var name: String {
        switch self {
        case .serverHello13, .serverHello12: "ServerHello"
        case .helloRetryRequest: "HelloRetryRequest"
        case .encryptedExtensions: "EncryptedExtensions"
        }
    }
}

/// One server message's extensions, checked and decoded. An absent extension is nil (or false).
///
/// Every extension must have been offered (unsolicited: unsupported_extension) and be one the
/// message may carry (illegal_parameter); duplicates were refused when the message was decoded.
/// Extensions that only acknowledge (server_name, extended_master_secret, session_ticket and
/// status_request in a server's hello, early_data in EncryptedExtensions) must be empty: RFC 6066
/// §3 and §8, RFC 7627 §5.1, RFC 5077 §3.2, RFC 8446 §4.2.10.
struct DecodedServerExtensions {
    /// supported_versions: the version the server selected.
    var selectedVersion: ProtocolVersion?
    /// key_share of a ServerHello: the server's share.
    var keyShare: KeyShareEntry?
    /// key_share of a HelloRetryRequest: the group the server asks for.
    var retryGroup: NamedGroup?
    /// cookie of a HelloRetryRequest, to echo.
    var cookie: [UInt8]?
    /// pre_shared_key of a ServerHello: the index of the PSK the server selected.
    var selectedIdentity: UInt16?
    /// alpn: the protocol list as sent (one entry, checked by the state that knows the offer).
    var alpn: [String]?
    var serverNameAcknowledged = false
    var extendedMasterSecret = false
    var sessionTicket = false
    var statusRequest = false
    /// renegotiation_info's renegotiated_connection, with its length byte, as sent.
    var renegotiationInfo: [UInt8]?

    init(_ list: ExtensionList, in message: ServerExtensionMessage, offered: Set<ExtensionType>) throws(TLSError) {
        let permitted = message.permitted
        for type in list.types {
            guard offered.contains(type) else { throw .misbehaved(.sentUnsolicitedExtension, "\(type) in \(message.name) was not offered") }
            guard permitted.contains(type) else { throw .misbehaved(.sentForbiddenExtension, "\(type) is not allowed in \(message.name)") }
        }
        do {
            for e in list.items { try decode(e, in: message) }
        } catch { throw .decode(error) }
    }

    private mutating func decode(_ e: Extension, in message: ServerExtensionMessage) throws(DecodeError) {
        let d = e.data
        switch e.type {
        case .supportedVersions: selectedVersion = try ExtensionBody.serverSupportedVersion(d)
        case .keyShare:
            if message == .helloRetryRequest {
                retryGroup = try ExtensionBody.helloRetryKeyShare(d)
            } else {
                keyShare = try ExtensionBody.serverKeyShare(d)
            }
        case .cookie: cookie = try ExtensionBody.cookie(d)
        case .preSharedKey: selectedIdentity = try ExtensionBody.selectedPSKIdentity(d)
        case .alpn: alpn = try ExtensionBody.alpn(d)
        case .serverName: serverNameAcknowledged = try Self.empty(d, "server_name acknowledgement")
        case .extendedMasterSecret: extendedMasterSecret = try Self.empty(d, "extended_master_secret")
        case .sessionTicket: sessionTicket = try Self.empty(d, "session_ticket acknowledgement")
        case .statusRequest: statusRequest = try Self.empty(d, "status_request acknowledgement")
        case .renegotiationInfo: renegotiationInfo = d
        case .earlyData: _ = try Self.empty(d, "early_data acknowledgement")  // RFC 8446 §4.2.10, in EncryptedExtensions
        default: break  // permitted, and nothing the client acts on (supported_groups, record_size_limit, ec_point_formats)
        }
    }

    private static func empty(_ data: [UInt8], _ what: String) throws(DecodeError) -> Bool {
        guard data.isEmpty else { throw .trailingData(in: what) }
        return true
    }
}
