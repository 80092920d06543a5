import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Synchronization
import Testing

/// Counts the asynchronous answers, and which thread gave them.
final class Calls: Sendable {
    let count = Mutex(0)
    func hit() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// A key whose signatures take a while and must not be made on the event loop (an HSM). Its
/// synchronous path fails: the pause is the only way through.
struct SlowKey: SigningKey {
    let inner: SwiftCryptoSigningKey
    let calls: Calls
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var isSynchronous: Bool { false }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] { throw .crypto("signed on the event loop") }
    func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        try? await Task.sleep(for: .milliseconds(20))
        calls.hit()
        return try inner.sign(message, scheme: scheme)
    }
}

/// A verifier that waits (an OCSP fetch) before it answers; no synchronous path.
struct SlowVerifier: CertificateVerifier {
    let inner: X509CertificateVerifier
    let calls: Calls
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    var supportedCertificateSchemes: [SignatureScheme] { inner.supportedCertificateSchemes }
    var trustPolicyDigest: [UInt8] { inner.trustPolicyDigest }
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) { try inner.checkResumedPeer(identity, role: role) }
    var isSynchronous: Bool { false }
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer { throw .crypto("verified on the event loop") }
    func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        try? await Task.sleep(for: .milliseconds(20))
        calls.hit()
        return try inner.verifyPeer(request)
    }
}

/// Chooses by SNI after a lookup that takes a while; no synchronous path.
struct SlowSNISelector: ServerConfigurationSelector {
    let configuration: ServerConfiguration
    let calls: Calls
    var isSynchronous: Bool { false }
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration { throw .crypto("selected on the event loop") }
    func selectAsynchronously(for hello: ClientHelloSummary) async throws(TLSError) -> ServerConfiguration {
        try? await Task.sleep(for: .milliseconds(20))
        calls.hit()
        guard hello.serverName == "localhost" else { throw .incompatible(.unrecognizedServerName) }
        return configuration
    }
}

final class Echo: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
}

/// A session-ID cache answering through the completion form: at once (before `lookUp`
/// returns), later on the connection's own loop, or later from another thread.
final class CompletionCache: ServerSessionCache {
    enum Mode: String, Sendable, CaseIterable { case atOnce, laterOnTheLoop, fromAnotherThread }
    let inner = InMemorySessionCache()
    let mode: Mode
    let calls = Calls()
    init(mode: Mode) { self.mode = mode }
    var isSynchronous: Bool { false }
    func lookUp(sessionID: [UInt8]) -> SessionState? {
        Issue.record("looked up on the event loop")
        return nil
    }
    func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) {
        calls.hit()
        let found = inner.lookUp(sessionID: sessionID)
        switch mode {
        case .atOnce: completion(found)
        case .laterOnTheLoop:
            guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
                Issue.record("not called on an event loop")
                return completion(nil)
            }
            loop.execute { completion(found) }
        case .fromAnotherThread:
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: 0.01)
                completion(found)
            }
        }
    }
    func save(_ state: SessionState, sessionID: [UInt8]) { inner.save(state, sessionID: sessionID) }
    func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
}

@Suite("NIO adapter: every pause resolved off the event loop, on a real loopback socket")
struct PauseLoopbackTests {
    @Test("SNI selection, HSM-style signing and a waiting verifier, in both versions", arguments: [[ProtocolVersion.tls13], [.tls12]])
    func allPauses(versions: [ProtocolVersion]) async throws {
        let (signs, verifies, selects) = (Calls(), Calls(), Calls())
        let certified = try pki.serverCertifiedKey
        var chosen = ServerConfiguration(
            provider: .swiftCrypto,
            certificates: [CertifiedKey(chain: certified.chain, key: SlowKey(inner: pki.serverKey, calls: signs))])
        chosen.alpnProtocols = ["chosen"]
        // The base configuration has no usable key: only the selected one can complete.
        var serverConfig = ServerConfiguration(
            provider: .swiftCrypto,
            certificates: [CertifiedKey(chain: certified.chain, key: SlowKey(inner: pki.serverKey, calls: Calls()))])
        serverConfig.configurationSelector = SlowSNISelector(configuration: chosen, calls: selects)
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig, handshakeTimeout: .seconds(60)) { [Echo()] }
        defer { Task { try? await server.close() } }

        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: SlowVerifier(inner: pki.verifier, calls: verifies))
        clientConfig.versions = versions
        clientConfig.alpnProtocols = ["chosen"]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "localhost")
        #expect(client.summary.version == versions[0])
        #expect(client.summary.alpnProtocol == "chosen", "the selected configuration was used")
        #expect((signs.value, verifies.value, selects.value) == (1, 1, 1), "each decision was resolved once, asynchronously")
        let identity = try #require(client.summary.peerIdentity)
        #expect(identity.subjectAlternativeNames.contains("DNS:localhost"))
        try await client.send(Array("ping".utf8))
        #expect(try await client.read(expectedBytes: 4) == Array("ping".utf8))
        await client.close()
    }

    @Test(
        "a TLS 1.2 session-ID cache answering through the completion form resumes, whether it answers at once, later on the loop or from another thread",
        arguments: CompletionCache.Mode.allCases)
    func completionFormLookUp(mode: CompletionCache.Mode) async throws {
        let cache = CompletionCache(mode: mode)
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.sessionCache = cache
        serverConfig.ticketKeys = nil
        serverConfig.versions = [.tls12]
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig) { [Echo()] }
        defer { Task { try? await server.close() } }
        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.versions = [.tls12]
        for attempt in 0..<3 {
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "localhost")
            #expect(client.summary.resumed == (attempt > 0), "attempt \(attempt)")
            try await client.send(Array("ping".utf8))
            #expect(try await client.read(expectedBytes: 4) == Array("ping".utf8))
            await client.close()
        }
        #expect(cache.calls.value == 2, "one look-up per offered session ID")
    }

    @Test("a selector's error reaches the client as its alert")
    func selectionFails() async throws {
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.configurationSelector = SlowSNISelector(configuration: serverConfig, calls: Calls())
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig, handshakeTimeout: .seconds(60)) { [Echo()] }
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

/// A key exchange that takes `delay` (a token's round trips): asynchronous, so it pauses the
/// handshake; its synchronous path, if the core ever called it on the loop, sleeps there.
struct SlowKeyExchange: KeyExchangeGroup {
    let inner: any KeyExchangeGroup
    let delay: Duration
    let calls: Calls
    var group: NamedGroup { inner.group }
    var isSynchronous: Bool { false }
    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) { try inner.generateClientShare() }
    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        return try inner.respond(toClientShare: share)
    }
    func respondAsynchronously(toClientShare share: [UInt8]) async throws(TLSError) -> (share: [UInt8], secret: SecretBytes) {
        calls.hit()
        try? await Task.sleep(for: delay)
        return try inner.respond(toClientShare: share)
    }
}

@Suite("NIO adapter: a key exchange in a slow token pauses the handshake instead of blocking its event loop")
struct KeyExchangePauseTests {
    @Test("on a one-thread server, a handshake waiting 600 ms for its key exchange does not hold up a second connection's handshake")
    func slowTokenDoesNotStallTheLoop() async throws {
        let calls = Calls()
        let slow = SlowKeyExchange(inner: SwiftCryptoGroups.secp384r1MLKEM1024, delay: .milliseconds(600), calls: calls)
        let provider = CryptoProvider(
            primitives: CryptoProvider.swiftCrypto.primitives,
            keyExchangeGroups: CryptoProvider.swiftCrypto.keyExchangeGroups.map { $0.group == slow.group ? slow : $0 })
        var serverConfig = ServerConfiguration(provider: provider, certificates: [try pki.serverCertifiedKey])
        serverConfig.groups = [.secp384r1MLKEM1024, .x25519]
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig, group: loop) { [Echo()] }

        func client(_ group: NamedGroup) -> ClientConfiguration {
            var c = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            c.groups = [group]
            c.keyShareGroups = [group]
            c.sessionStore = nil
            return c
        }
        let start = ContinuousClock.now
        let slowClient = Task { () throws -> (Duration, NamedGroup?) in
            let c = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: client(.secp384r1MLKEM1024), serverName: "localhost")
            defer { Task { await c.close() } }
            return (ContinuousClock.now - start, c.summary.group)
        }
        try await Task.sleep(for: .milliseconds(150))  // the slow handshake is waiting for its key exchange
        let fast = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: client(.x25519), serverName: "localhost")
        let fastDone = ContinuousClock.now - start
        await fast.close()
        let (slowDone, slowGroup) = try await slowClient.value
        #expect(slowGroup == .secp384r1MLKEM1024 && fast.summary.group == .x25519)
        #expect(calls.value == 1, "the key exchange was resolved through the pause, once")
        // Ordering, not timing: the fast handshake finished while the slow one was still waiting.
        #expect(fastDone < slowDone, "fast \(fastDone), slow \(slowDone)")
        try await server.close()
        try await loop.shutdownGracefully()
    }
}
