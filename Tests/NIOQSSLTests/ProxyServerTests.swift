import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import Testing

@testable import QSSLProxy

/// `ProxyServer` in process: what it leaves behind, and how it binds.
@Suite("qssl serve's engine: connections freed, one port per address", .serialized)
struct ProxyServerTests {
    private func settings(port: Int = 0) throws -> ListenerSettings {
        ListenerSettings(
            name: "main", addresses: [.tcp(host: "127.0.0.1", port: port)],
            tls: TLSConfigurationBox(ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])),
            backend: .echo)
    }

    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("every ended connection is freed, with its channel")
    func endedConnectionsAreFreed() async throws {
        let before = ProxyConnection.unfreed.load(ordering: .relaxed)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await ProxyServer.start(listeners: [try settings()], metrics: nil, logger: logger, group: group)
        let address = try #require(server.boundAddresses.first?.address)
        let port = try #require(Int(address.split(separator: ":").last ?? ""))
        let config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        for round in 0..<6 {
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
            try await client.send(Array("ping \(round)".utf8))
            #expect(try await client.read(expectedBytes: 6) == Array("ping \(round)".utf8))
            await client.close()
        }
        // The server sees each close a moment after the client: wait for the last to be freed.
        let deadline = ContinuousClock.now + .seconds(10)
        while ProxyConnection.unfreed.load(ordering: .relaxed) > before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(ProxyConnection.unfreed.load(ordering: .relaxed) == before, "connections the proxy ended and never freed")
        #expect(server.openConnections == 0)
        await server.drain(timeout: .zero)
        try await group.shutdownGracefully()
    }

    @Test("a TCP address is one listening socket per event loop on one port, and a second server there is refused")
    func onePortPerAddress() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await ProxyServer.start(listeners: [try settings()], metrics: nil, logger: logger, group: group)
        #expect(server.boundAddresses.count == 1, "\(server.boundAddresses)")
        #expect(server.closeFutures.count == 2, "a listening socket per loop")
        let address = try #require(server.boundAddresses.first?.address)
        let port = try #require(Int(address.split(separator: ":").last ?? ""))
        // Both listening sockets accept, whichever the kernel picks: a few connections all echo.
        let config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        for _ in 0..<4 {
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
            try await client.send(Array("hi".utf8))
            #expect(try await client.read(expectedBytes: 2) == Array("hi".utf8))
            await client.close()
        }
        // The port is shared only among this server's own sockets (SO_REUSEPORT): another start
        // on it fails as a bind does, and starts nothing.
        do {
            let second = try await ProxyServer.start(listeners: [try settings(port: port)], metrics: nil, logger: logger, group: group)
            Issue.record("a second server bound \(second.boundAddresses)")
            await second.drain(timeout: .zero)
        } catch let error as IOError {
            #expect(error.errnoCode == EADDRINUSE, "\(error)")
        }
        await server.drain(timeout: .zero)
        try await group.shutdownGracefully()
    }
}
