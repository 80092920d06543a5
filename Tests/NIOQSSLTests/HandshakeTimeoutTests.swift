import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import Testing

@Suite("NIOQSSLServer: the handshake timeout")
struct HandshakeTimeoutTests {
    @Test("a client that connects and sends nothing is disconnected after the handshake timeout; one that completes is not", .timeLimit(.minutes(1)))
    func silentClientIsClosed() async throws {
        let configuration = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: configuration, handshakeTimeout: .milliseconds(300)
        ) { [Echo()] }
        defer { Task { try? await server.close() } }

        // A TCP client that never sends its ClientHello (timed from before the connect: the
        // server's timer starts at its accept, which may be seen here late under load).
        let started = ContinuousClock.now
        let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.port).get()
        let closedByServer = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await silent.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: .seconds(10)); return false }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(closedByServer, "the server closed the silent connection")
        #expect(ContinuousClock.now - started >= .milliseconds(250), "not before the timeout")

        // A handshake that completes in time keeps its connection past the timeout.
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier),
            serverName: "localhost")
        try await Task.sleep(for: .milliseconds(500))
        try await client.send(Array("still here".utf8))
        #expect(try await client.read(expectedBytes: 10) == Array("still here".utf8))
        await client.close()
    }
}
