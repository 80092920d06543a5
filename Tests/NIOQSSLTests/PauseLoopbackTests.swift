import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// A key whose signatures take a while and must not be made on the event loop (an HSM).
struct SlowKey: SigningKey {
    let inner: SwiftCryptoSigningKey
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var isSynchronous: Bool { false }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] { try inner.sign(message, scheme: scheme) }
    func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        try? await Task.sleep(for: .milliseconds(20))
        return try inner.sign(message, scheme: scheme)
    }
}

/// A verifier that waits (an OCSP fetch) before it answers.
struct SlowVerifier: CertificateVerifier {
    let inner: X509CertificateVerifier
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    var isSynchronous: Bool { false }
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { try inner.verifyPeer(request) }
    func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        try? await Task.sleep(for: .milliseconds(20))
        return try inner.verifyPeer(request)
    }
}

/// Chooses by SNI after a lookup that takes a while.
struct SlowSNISelector: ServerConfigurationSelector {
    let configuration: ServerConfiguration
    var isSynchronous: Bool { false }
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration {
        guard hello.serverName == "localhost" else { throw .incompatible(.unrecognizedServerName) }
        return configuration
    }
    func selectAsynchronously(for hello: ClientHelloSummary) async throws(TLSError) -> ServerConfiguration {
        try? await Task.sleep(for: .milliseconds(20))
        return try select(for: hello)
    }
}

final class Echo: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
}

@Suite("NIO adapter: every pause resolved off the event loop, on a real loopback socket")
struct PauseLoopbackTests {
    @Test("SNI selection, HSM-style signing and a waiting verifier, in both versions", arguments: [[ProtocolVersion.tls13], [.tls12]])
    func allPauses(versions: [ProtocolVersion]) async throws {
        let certified = try pki.serverCertifiedKey
        let chosen = ServerConfiguration(provider: .swiftCrypto,
                                         certificates: [CertifiedKey(chain: certified.chain, key: SlowKey(inner: pki.serverKey))])
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [certified])
        serverConfig.configurationSelector = SlowSNISelector(configuration: chosen)
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig) { [Echo()] }
        defer { Task { try? await server.close() } }

        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: SlowVerifier(inner: pki.verifier))
        clientConfig.versions = versions
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "localhost")
        #expect(client.summary.version == versions[0])
        let identity = try #require(client.summary.peerIdentity)
        #expect(identity.subjectAlternativeNames.contains("DNS:localhost"))
        try await client.send(Array("ping".utf8))
        #expect(try await client.read(expectedBytes: 4) == Array("ping".utf8))
        await client.close()
    }

    @Test("a selector's error reaches the client as its alert")
    func selectionFails() async throws {
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.configurationSelector = SlowSNISelector(configuration: serverConfig)
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig) { [Echo()] }
        defer { Task { try? await server.close() } }
        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.dangerouslySkipServerNameVerification = true
        await #expect {
            _ = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "elsewhere.example")
        } throws: { error in
            if let e = error as? NIOQSSLError, case .tls(let t) = e { return t.code == .alertReceived(.unrecognizedName) }
            return false
        }
    }
}
