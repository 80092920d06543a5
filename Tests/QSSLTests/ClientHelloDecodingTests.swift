import QSSLSwiftCrypto
import QSSLWire
import Synchronization
import Testing

@testable import QSSL

/// A selector that always answers with one configuration, and counts how often it is asked.
private final class FixedSelector: ServerConfigurationSelector, @unchecked Sendable {
    let configuration: ServerConfiguration
    let synchronous: Bool
    let asked = Atomic<Int>(0)
    init(_ configuration: ServerConfiguration, synchronous: Bool) {
        self.configuration = configuration
        self.synchronous = synchronous
    }
    var isSynchronous: Bool { synchronous }
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration {
        asked.add(1, ordering: .relaxed)
        return configuration
    }
}

/// What a handshake negotiated, as both sides report it, and what the ServerHello carried.
private struct Negotiated: Equatable {
    let client: HandshakeSummary?
    let server: HandshakeSummary?
    let serverHelloSuite: CipherSuite?
    let serverHelloExtensions: [ExtensionType]
}

/// Runs a pair and records the server's first ServerHello as it went to the client.
private func negotiate(client: ClientConfiguration, server: ServerConfiguration) throws -> (Negotiated, PairOutcome) {
    var serverHello: ServerHello?
    let o = try runPair(client: client, server: server) { toServer, bytes in
        if !toServer, serverHello == nil {
            _ = rewriteFirstMessage(bytes, as: ServerHello.self) { serverHello = $0 }
        }
        return bytes
    }
    let n = Negotiated(
        client: o.clientSummary, server: o.serverSummary, serverHelloSuite: serverHello?.cipherSuite,
        serverHelloExtensions: serverHello?.extensions.types ?? [])
    return (n, o)
}

@Suite("A ClientHello is decoded once and negotiated once (RFC 8446 §4.2)")
struct ClientHelloDecodingTests {
    static let versions: [[ProtocolVersion]] = [[.tls13], [.tls12]]

    @Test("a duplicated extension anywhere in the ClientHello → illegal_parameter, both versions", arguments: versions)
    func duplicate(versions: [ProtocolVersion]) throws {
        let client = clientConfig { $0.versions = versions }
        // The last extension repeated right after itself, and an unknown type sent twice.
        try expectServerAlert(.illegalParameter, client: client) { hello in
            hello.extensions.items.insert(hello.extensions.items[hello.extensions.items.count - 1], at: hello.extensions.items.count - 1)
        }
        try expectServerAlert(.illegalParameter, client: client) { hello in
            hello.extensions.items.insert(
                contentsOf: [
                    Extension(type: ExtensionType(rawValue: 0x7A7A), data: []),
                    Extension(type: ExtensionType(rawValue: 0x7A7A), data: [1])
                ], at: 0)
        }
    }

    @Test("a duplicated extension is refused before a configuration selector is asked")
    func duplicateBeforeSelection() throws {
        let selector = FixedSelector(try serverConfig(), synchronous: true)
        let server = try serverConfig { $0.configurationSelector = selector }
        try expectServerAlert(.illegalParameter, server: server) { hello in
            hello.extensions.items.append(hello.extensions.items.first { $0.type == .supportedGroups }!)
        }
        #expect(selector.asked.load(ordering: .relaxed) == 0)
    }

    @Test("oid_filters, specified only for CertificateRequest, in a ClientHello → illegal_parameter, both versions", arguments: versions)
    func forbiddenInClientHello(versions: [ProtocolVersion]) throws {
        try expectServerAlert(.illegalParameter, client: clientConfig { $0.versions = versions }) { hello in
            hello.extensions.items.insert(Extension(type: .oidFilters, data: [0, 0]), at: 0)
        }
    }

    @Test("an extension the server does not know (46, next to oid_filters) is ignored: the server answers the hello", arguments: versions)
    func unknownIgnored(versions: [ProtocolVersion]) throws {
        for (type, refused) in [(ExtensionType(rawValue: 46), false), (.oidFilters, true)] {
            let client = try TLSConnection.client(configuration: clientConfig { $0.versions = versions }, serverName: "localhost")
            let server = try TLSConnection.server(configuration: try serverConfig())
            let hello = rewriteFirstMessage(client.takeOutput(), as: ClientHello.self) { hello in
                hello.extensions.items.insert(Extension(type: type, data: [0, 0]), at: 0)
            }
            if refused {
                #expect(throws: TLSError.self) { try server.receive(hello) }
                #expect(server.failure?.alert == .illegalParameter)
            } else {
                _ = try server.receive(hello)
                let flight = server.takeOutput()
                #expect(flight.count > 9 && flight[0] == 0x16 && flight[5] == HandshakeType.serverHello.rawValue)
            }
        }
    }

    @Test("a malformed extension body → decode_error, whichever extension it is", arguments: [ExtensionType.serverName, .alpn, .keyShare, .cookie])
    func malformed(type: ExtensionType) throws {
        try expectServerAlert(.decodeError, client: clientConfig { $0.alpnProtocols = ["h2"] }) { hello in
            hello.extensions.items.removeAll { $0.type == type }
            hello.extensions.items.insert(Extension(type: type, data: [0, 9, 1]), at: 0)
        }
    }

    @Test("pre_shared_key not last → illegal_parameter, checked when the hello is decoded (TLS 1.2 negotiation too)", arguments: versions)
    func preSharedKeyNotLast(versions: [ProtocolVersion]) throws {
        try expectServerAlert(.illegalParameter, client: clientConfig { $0.versions = versions }) { hello in
            let psk = OfferedPSKs(identities: [PSKIdentity(identity: [1, 2, 3], obfuscatedTicketAge: 0)], binders: [[UInt8](repeating: 0, count: 32)])
            hello.extensions.items.insert(Extension(type: .preSharedKey, data: try! psk.encoded()), at: 0)
            hello.extensions.items.append(Extension(type: .pskKeyExchangeModes, data: [1, 1]))
        }
    }

    @Test(
        "each ClientHello's extensions are decoded exactly once, on every path",
        arguments: [
            "tls13", "tls12", "helloRetryRequest", "selectorInPlace", "selectorPaused", "selectorTLS12", "resumed13", "resumed12"
        ])
    func decodedOnce(path: String) throws {
        var client = clientConfig()
        var server = try serverConfig()
        var expected = 1
        switch path {
        case "tls12", "resumed12": client.versions = [.tls12]
        case "helloRetryRequest":
            client.keyShareGroups = [.x25519]
            expected = 2
        case "selectorInPlace": server.configurationSelector = FixedSelector(try serverConfig(), synchronous: true)
        case "selectorPaused": server.configurationSelector = FixedSelector(try serverConfig(), synchronous: false)
        case "selectorTLS12":
            client.versions = [.tls12]
            server.configurationSelector = FixedSelector(try serverConfig(), synchronous: false)
        default: break
        }
        if path.hasPrefix("resumed") {
            let full = try runPair(client: client, server: server)
            #expect(full.server.context.clientHelloExtensionDecodes == 1)
        }
        let o = try runPair(client: client, server: server)
        #expect(o.serverError == nil && o.clientError == nil, "\(String(describing: o.serverError))")
        #expect(o.server.summary?.resumed == path.hasPrefix("resumed"))
        #expect(o.server.summary?.helloRetryRequest == (path == "helloRetryRequest"))
        #expect(o.server.context.clientHelloExtensionDecodes == expected)
    }

    @Test(
        "a selector choosing a configuration negotiates exactly what that configuration negotiates alone",
        arguments: [
            "tls13", "tls12", "helloRetryRequest", "alpn", "classical", "mutual"
        ])
    func selectorSameNegotiation(path: String) throws {
        // No resumption: each run is a full handshake on its own.
        var client = clientConfig { $0.sessionStore = nil }
        var chosen = try serverConfig()
        switch path {
        case "tls12": client.versions = [.tls12]
        case "helloRetryRequest": client.keyShareGroups = [.x25519]
        case "alpn":
            client.alpnProtocols = ["http/1.1", "h2"]
            chosen.alpnProtocols = ["h2", "http/1.1"]
        case "classical": chosen.groups = [.secp256r1, .x25519]
        case "mutual":
            chosen.clientAuthentication = .required
            chosen.clientCertificateVerifier = sharedPKI.verifier
            client.clientCertificate = ClientPKI.ecdsa
        default: break
        }
        // The base configuration differs from the chosen one wherever it may: only the chosen
        // one's choices may show.
        for synchronous in [true, false] {
            let base = try serverConfig {
                $0.alpnProtocols = ["never-chosen"]
                $0.groups = [.x25519MLKEM768]
                $0.configurationSelector = FixedSelector(chosen, synchronous: synchronous)
            }
            let (alone, a) = try negotiate(client: client, server: chosen)
            let (selected, s) = try negotiate(client: client, server: base)
            #expect(a.serverError == nil && s.serverError == nil, "\(String(describing: a.serverError)) \(String(describing: s.serverError))")
            #expect(alone.server != nil)
            #expect(selected == alone, "synchronous: \(synchronous)")
        }
    }
}
