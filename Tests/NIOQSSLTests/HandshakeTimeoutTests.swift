import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@Suite("NIOQSSLServer: the handshake and idle timeouts")
struct HandshakeTimeoutTests {
    /// A client whose handshake is cheap (x25519 only), so that a loaded machine finishes it
    /// well within the timeouts used here.
    static var cheapClient: ClientConfiguration {
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client.groups = [.x25519]
        client.keyShareGroups = [.x25519]
        return client
    }

    /// Waits until `channel` closes; whether it did within `limit`.
    static func closes(_ channel: Channel, within limit: Duration) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await channel.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: limit); return false }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test(
        "a client that connects and sends nothing is disconnected after the handshake timeout; one that completes is not",
        .timeLimit(.minutes(1)))
    func silentClientIsClosed() async throws {
        let configuration = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: configuration, handshakeTimeout: .seconds(2)
        ) { [Echo()] }
        defer { Task { try? await server.close() } }

        // A TCP client that never sends its ClientHello (timed from before the connect: the
        // server's timer starts at its accept, which may be seen here late under load).
        let started = ContinuousClock.now
        let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.port).get()
        #expect(try await Self.closes(silent, within: .seconds(20)), "the server closed the silent connection")
        #expect(ContinuousClock.now - started >= .milliseconds(1900), "not before the timeout")

        // A handshake that completes keeps its connection past the timeout.
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: Self.cheapClient, serverName: "localhost")
        defer { Task { await client.close() } }
        try await Task.sleep(for: .milliseconds(2500))
        try await client.send(Array("still here".utf8))
        #expect(try await client.read(expectedBytes: 10) == Array("still here".utf8))
    }

    @Test(
        "a client that trickles its ClientHello a byte at a time is disconnected at the handshake timeout: bytes do not extend it",
        .timeLimit(.minutes(1)))
    func tricklingClientIsClosed() async throws {
        let configuration = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: configuration, handshakeTimeout: .seconds(2)
        ) { [Echo()] }
        defer { Task { try? await server.close() } }

        // A real ClientHello's first bytes (a record header and the start of the message): each
        // is a valid prefix, so the server waits for more rather than failing the handshake.
        var client = Self.cheapClient
        client.sessionStore = nil
        let connection = try TLSConnection.client(configuration: client, serverName: "localhost")
        let hello = connection.takeOutput()
        try #require(hello.count > 60)
        let started = ContinuousClock.now
        let trickler = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.port).get()
        // One byte every 100 ms: 50 bytes would take 5 s, well past the 2 s timeout.
        let sending = Task {
            for byte in hello.prefix(50) {
                guard trickler.isActive else { return }
                try? await trickler.writeAndFlush(trickler.allocator.buffer(bytes: [byte])).get()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { sending.cancel() }
        #expect(try await Self.closes(trickler, within: .seconds(20)), "the server closed the trickling connection")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(1900), "not before the timeout")
        #expect(elapsed < .milliseconds(6500), "at the timeout, not a timeout restarted by the last byte (about 7 s) (\(elapsed))")
    }

    @Test("with an idle timeout, a connection that completed its handshake and then stays silent is closed; none by default", .timeLimit(.minutes(1)))
    func idleConnectionIsClosed() async throws {
        let configuration = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: configuration, idleTimeout: .milliseconds(500)
        ) { [Echo()] }
        defer { Task { try? await server.close() } }
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: Self.cheapClient, serverName: "localhost")
        #expect(try await Self.closes(client.channel, within: .seconds(20)), "the idle connection was closed")
    }
}
