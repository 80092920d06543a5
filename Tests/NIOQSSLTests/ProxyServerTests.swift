import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import Synchronization
import Testing

@testable import QSSLProxy

/// `ProxyServer` in process: what it leaves behind, and how it binds.
@Suite("qssl serve's engine: connections freed, bind failures", .serialized)
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
        // And the max-connections count has every slot back (given back as each channel closed).
        #expect(server.listeners.allSatisfy { $0.runtime.gate.openConnections == 0 })
        await server.drain(timeout: .zero)
        try await group.shutdownGracefully()
    }

    @Test("a second server on a bound port is refused, and a listener that fails to bind closes the addresses it had bound")
    func bindFailures() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await ProxyServer.start(listeners: [try settings()], metrics: nil, logger: logger, group: group)
        let address = try #require(server.boundAddresses.first?.address)
        let port = try #require(Int(address.split(separator: ":").last ?? ""))
        do {
            let second = try await ProxyServer.start(listeners: [try settings(port: port)], metrics: nil, logger: logger, group: group)
            Issue.record("a second server bound \(second.boundAddresses)")
            await second.drain(timeout: .zero)
        } catch let error as IOError {
            #expect(error.errnoCode == EADDRINUSE, "\(error)")
        }
        // Two addresses, the second taken: the first (a free port) must not stay bound.
        let free = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let freePort = try #require(free.localAddress?.port)
        try await free.close()
        var two = try settings()
        two.addresses = [.tcp(host: "127.0.0.1", port: freePort), .tcp(host: "127.0.0.1", port: port)]
        await #expect(throws: IOError.self) { _ = try await ProxyServer.start(listeners: [two], metrics: nil, logger: logger, group: group) }
        let again = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: freePort).get()
        try await again.close()
        await server.drain(timeout: .zero)
        try await group.shutdownGracefully()
    }

    @Test(
        "a TCP address has a socket per event loop on one port, listed once; the kernel spreads connections over them",
        .enabled(if: ProxyServer.spreadsReusePort))
    func socketPerLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await ProxyServer.start(listeners: [try settings()], metrics: nil, logger: logger, group: group)
        let channels = try #require(server.listeners.first?.channels)
        #expect(channels.count == 2)
        #expect(channels[0].eventLoop !== channels[1].eventLoop)
        #expect(Set(channels.compactMap { $0.localAddress?.port }).count == 1)
        #expect(server.boundAddresses.count == 1)
        let port = try #require(channels[0].localAddress?.port)
        // Connections held open until both loops serve some (the kernel hashes each connection to
        // a socket: all of 200 on one loop is a chance of 2^-199).
        let config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        var clients: [NIOQSSLClient] = []
        func servedByBoth() -> Bool {
            let served = server.listeners.first?.runtime.connections.all.map { $0.0.eventLoop } ?? []
            return served.contains { $0 === channels[0].eventLoop } && served.contains { $0 === channels[1].eventLoop }
        }
        while clients.count < 200 && !servedByBoth() {
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
            try await client.send(Array("ping \(clients.count % 10)".utf8))
            _ = try await client.read(expectedBytes: 6)
            clients.append(client)
        }
        #expect(servedByBoth(), "\(clients.count) connections, all served by one loop")
        #expect(server.listeners.first?.runtime.connections.all.count == clients.count)
        for client in clients { await client.close() }
        await server.drain(timeout: .zero)
        try await group.shutdownGracefully()
    }

    @Test("a handshake waiter granted its slot is not kept by the gate")
    func grantedWaiterIsReleased() {
        final class Waiter: Sendable {}
        var limits = ProxyLimits()
        limits.maxHandshakes = 1
        let gate = ConnectionGate(limits: limits)
        #expect(gate.admitHandshake(resume: {}) == .granted)
        weak var weakWaiter: Waiter?
        let granted = Mutex(false)
        do {
            let waiter = Waiter()
            weakWaiter = waiter
            guard case .queued = gate.admitHandshake(resume: { _ = waiter; granted.withLock { $0 = true } }) else {
                Issue.record("the second handshake was not queued")
                return
            }
        }
        #expect(weakWaiter != nil, "queued: the gate holds it")
        gate.releaseHandshake()
        #expect(granted.withLock { $0 })
        #expect(weakWaiter == nil, "granted: the gate still holds the waiter's connection")
    }
}

@Suite("qssl serve's handshake rate per client address")
struct HandshakeRateTests {
    @Test("a flood from more addresses than the table holds neither grows it nor limits the addresses beyond")
    func distinctSourceFlood() {
        var limits = ProxyLimits()
        limits.handshakeRatePerSource = 1
        let gate = ConnectionGate(limits: limits)
        let cap = ConnectionGate.maximumTrackedSources
        for i in 0..<cap { #expect(gate.allowHandshake(from: "10.\(i >> 16).\((i >> 8) & 255).\(i & 255)", nowSeconds: 7)) }
        #expect(gate.trackedSources == cap)
        // A tracked address is still limited; a new one in the same second is let through untracked.
        #expect(!gate.allowHandshake(from: "10.0.0.0", nowSeconds: 7))
        #expect(gate.allowHandshake(from: "192.0.2.1", nowSeconds: 7))
        #expect(gate.allowHandshake(from: "192.0.2.1", nowSeconds: 7), "untracked: not limited")
        #expect(gate.trackedSources == cap)
        // The next second, the stale entries go at the first new address, which is counted again.
        #expect(gate.allowHandshake(from: "192.0.2.1", nowSeconds: 8))
        #expect(gate.trackedSources == 1)
        #expect(!gate.allowHandshake(from: "192.0.2.1", nowSeconds: 8))
    }
}

@Suite("qssl serve's metrics port")
struct MetricsServerLimitTests {
    /// Collects what the server sends.
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var text = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
    }

    @Test("connections beyond the maximum are closed at accept; once some end, scrapes are served again")
    func connectionCap() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The connection deadline is far beyond the test's waits: on a loaded machine, 64
        // connects can take longer than the default 10 s, and a connection closed by its timer
        // would free the slot the 65th is meant to be refused.
        let server = try await MetricsServer.start(
            host: "127.0.0.1", port: 0, metrics: ProxyMetrics(), healthy: { true }, group: group, connectionTimeout: .seconds(600))
        let port = try #require(server.channel.localAddress?.port)
        func connect() async throws -> (Channel, Collect) {
            let collect = Collect()
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collect) } }
                .connect(host: "127.0.0.1", port: port).get()
            return (channel, collect)
        }
        /// A /healthz request on `channel`, and what came back by the time the server closed it.
        func scrape(_ channel: Channel, _ collect: Collect) async -> String {
            // A connection refused at accept may be closed before the request is written.
            try? await channel.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
            try? await channel.closeFuture.get()
            return (try? await channel.eventLoop.submit { collect.text }.get()) ?? ""
        }
        var idle: [(Channel, Collect)] = []
        for _ in 0..<MetricsServer.maximumConnections { idle.append(try await connect()) }
        let (refused, _) = try await connect()
        // Closed by the server at accept: nothing else closes it before the 600 s deadline.
        struct NotRefused: Error {}
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await refused.closeFuture.get() }
            tasks.addTask {
                try await Task.sleep(for: .seconds(60))
                // A busy test process may run this first though the close came in time.
                if refused.isActive {
                    // closeFuture.get() does not heed cancellation: close it, or the group waits.
                    refused.close(promise: nil)
                    throw NotRefused()
                }
            }
            try await tasks.next()
            tasks.cancelAll()
        }
        // The 64th, accepted, is served: the cap is 64, not less.
        let (last, lastCollect) = idle.removeLast()
        let lastAnswer = await scrape(last, lastCollect)
        #expect(lastAnswer.contains("200 OK"), "the 64th connection was not served: \(lastAnswer)")
        let stillOpen = idle.filter { $0.0.isActive }.count
        #expect(stillOpen == idle.count, "the other accepted connections are still open")
        for (channel, _) in idle { try await channel.close() }
        // The server sees the closes a moment later.
        var answer = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while !answer.contains("200 OK") && ContinuousClock.now < deadline {
            let (channel, collect) = try await connect()
            answer = await scrape(channel, collect)
            if !answer.contains("200 OK") { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answer.contains("200 OK") && answer.contains("ok"), "\(answer)")
        await server.close()
        try await group.shutdownGracefully()
    }
}
