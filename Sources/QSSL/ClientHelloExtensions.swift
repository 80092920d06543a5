import QSSLWire

// A ClientHello's extensions, decoded once (RFC 8446 §4.2), before any decision is made on them:
// the configuration selector, version negotiation, TLS 1.3 and TLS 1.2 negotiation and PSK
// acceptance all read this value, never the raw extension bodies.

/// Every extension of one ClientHello that Q-SSL understands, decoded. An absent extension is
/// nil (or false); unknown extensions (GREASE included) are ignored, as RFC 8446 §4.1.2 requires.
struct DecodedClientHelloExtensions {
    /// RFC 6066 §3: the host_name, if the client sent one.
    var serverName: String?
    /// RFC 7301 §3.1.
    var alpn: [String]?
    var supportedGroups: [NamedGroup]?
    var signatureAlgorithms: [SignatureScheme]?
    var signatureAlgorithmsCert: [SignatureScheme]?
    var supportedVersions: [ProtocolVersion]?
    var keyShares: [KeyShareEntry]?
    var pskKeyExchangeModes: [PSKKeyExchangeMode]?
    var preSharedKey: OfferedPSKs?
    var cookie: [UInt8]?
    /// RFC 6066 §8: status_request asking for an OCSP response.
    var requestsOCSP = false
    /// RFC 5077 §3.2: the ticket (possibly empty) when the extension was sent.
    var sessionTicket: [UInt8]?
    var extendedMasterSecret = false
    /// RFC 5746 §3.2: the renegotiated_connection field's bytes as sent.
    var renegotiationInfo: [UInt8]?
    var postHandshakeAuth = false
    var earlyData = false
    var ecPointFormats = false

    /// RFC 8446 §4.2: the extensions Q-SSL recognizes that are not specified for a ClientHello.
    /// "If an implementation receives an extension which it recognizes and which is not
    /// specified for the message in which it appears, it MUST abort the handshake with an
    /// illegal_parameter alert."
    static let forbiddenInClientHello: Set<ExtensionType> = [.oidFilters]

    /// Decodes `list`, refusing what RFC 8446 §4.2 forbids in a ClientHello. Duplicates were
    /// refused when the message was decoded (`ExtensionList`, illegal_parameter).
    init(_ list: ExtensionList) throws(TLSError) {
        for type in list.types where Self.forbiddenInClientHello.contains(type) {
            throw .misbehaved(.sentForbiddenExtension, "\(type) is not allowed in ClientHello")
        }
        // §4.2.11: pre_shared_key MUST be the last extension of the ClientHello.
        if list.contains(.preSharedKey), list.items.last?.type != .preSharedKey { throw .misbehaved(.sentPreSharedKeyNotLast) }
        do {
            for e in list.items { try decode(e) }
        } catch { throw .decode(error) }
    }

    private mutating func decode(_ e: Extension) throws(DecodeError) {
        let d = e.data
        switch e.type {
        case .serverName: serverName = try ExtensionBody.serverName(d)
        case .alpn: alpn = try ExtensionBody.alpn(d)
        case .supportedGroups: supportedGroups = try ExtensionBody.supportedGroups(d)
        case .signatureAlgorithms: signatureAlgorithms = try ExtensionBody.signatureAlgorithms(d)
        case .signatureAlgorithmsCert: signatureAlgorithmsCert = try ExtensionBody.signatureAlgorithms(d, "signature_algorithms_cert")
        case .supportedVersions: supportedVersions = try ExtensionBody.clientSupportedVersions(d)
        case .keyShare: keyShares = try ExtensionBody.clientKeyShares(d)
        case .pskKeyExchangeModes: pskKeyExchangeModes = try ExtensionBody.pskKeyExchangeModes(d)
        case .preSharedKey: preSharedKey = try OfferedPSKs(decoding: d)
        case .cookie: cookie = try ExtensionBody.cookie(d)
        case .statusRequest: requestsOCSP = try ExtensionBody.requestsOCSP(d)
        case .sessionTicket: sessionTicket = d
        case .extendedMasterSecret: extendedMasterSecret = true
        case .renegotiationInfo: renegotiationInfo = d
        case .postHandshakeAuth: postHandshakeAuth = true
        case .earlyData: earlyData = true
        case .ecPointFormats: ecPointFormats = true
        default: break
        }
    }
}

/// A ClientHello as the server works with it: the message (for the transcript and PSK
/// binders), its fields, and its extensions decoded once. A class: it rides through the
/// negotiation steps and states, and a copy is one reference, not twenty.
final class ReceivedClientHello: Sendable {
    let hello: ClientHello
    let message: HandshakeMessage
    let extensions: DecodedClientHelloExtensions

    /// Decodes `message`'s extensions. The one place a server decodes a ClientHello's extensions;
    /// `context` counts it (DEBUG builds) so tests can check that each hello is decoded once.
    init(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) {
        let hello = try message.require(ClientHello.self)
        self.hello = hello
        self.message = message
        extensions = try DecodedClientHelloExtensions(hello.extensions)
        #if DEBUG
            context.clientHelloExtensionDecodes += 1
        #endif
    }

    var random: [UInt8] { hello.random }
    var legacyVersion: ProtocolVersion { hello.legacyVersion }
    var legacySessionID: [UInt8] { hello.legacySessionID }
    var cipherSuites: [CipherSuite] { hello.cipherSuites }
    var legacyCompressionMethods: [UInt8] { hello.legacyCompressionMethods }
}

extension ClientHelloSummary {
    /// What a configuration selector may look at, from the decoded hello.
    init(_ hello: ReceivedClientHello) {
        let ext = hello.extensions
        serverName = ext.serverName
        alpnProtocols = ext.alpn ?? []
        groups = ext.supportedGroups ?? []
        signatureSchemes = ext.signatureAlgorithms ?? []
        cipherSuites = hello.cipherSuites
        versions = ext.supportedVersions ?? [hello.legacyVersion]
    }
}
