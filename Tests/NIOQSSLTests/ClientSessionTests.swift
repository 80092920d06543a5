import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@Suite("NIO client: sessions issued on a connection, offered on the next")
struct ClientSessionTests {
    @Test(
        "waitForSession returns the ticket that follows the handshake; the store or an explicit session resumes",
        arguments: [ProtocolVersion.tls13, .tls12])
    func sessions(version: ProtocolVersion) async throws {
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0,
            configuration: ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        ) { [Echo()] }
        defer { Task { try? await server.close() } }
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        config.versions = [version]
        let store = InMemoryClientSessionStore()
        config.sessionStore = store
        let key = "127.0.0.1:\(server.port)"

        let first = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost",
            sessionKey: key)
        #expect(!first.summary.resumed)
        let session = try #require(await first.waitForSession(timeout: .seconds(5)))
        #expect(session.state.version == version)
        #expect(first.issuedSessions.contains(session))  // a second TLS 1.3 ticket may have followed
        await first.close()
        // Saved under the key given, not under the server name.
        #expect(store.sessionCount(for: config.sessionStoreKey(for: key)) > 0)
        #expect(store.sessionCount(for: config.sessionStoreKey(for: "localhost")) == 0)

        // From the store, by key.
        let second = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost",
            sessionKey: key)
        #expect(second.summary.resumed)
        _ = await second.waitForSession(timeout: .seconds(5))
        await second.close()

        // Given explicitly, with no store at all.
        var storeless = config
        storeless.sessionStore = nil
        let third = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: storeless, serverName: "localhost",
            session: session)
        #expect(third.summary.resumed)
        await third.close()
    }

    @Test("waitForSession gives up after its timeout when no ticket comes, and at once on a closed connection")
    func noTicket() async throws {
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.ticketKeys = nil
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: serverConfig) { [Echo()] }
        defer { Task { try? await server.close() } }
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        config.versions = [.tls13]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        let started = ContinuousClock.now
        #expect(await client.waitForSession(timeout: .milliseconds(200)) == nil)
        #expect(ContinuousClock.now - started >= .milliseconds(150))
        await client.close()
        let afterClose = ContinuousClock.now
        // A closed connection answers at once, not after this timeout (the margin is wide: other
        // tests running in parallel can hold the cooperative pool for seconds).
        #expect(await client.waitForSession(timeout: .seconds(300)) == nil)
        #expect(ContinuousClock.now - afterClose < .seconds(60))
        #expect(client.issuedSessions.isEmpty)
    }
}
