import NIOCore
import NIOPosix
import NIOQSSL
import Testing

@Suite("OCSP responder: slow and surplus clients cannot hold it")
struct OCSPResponderLimitTests {
    static func connect(_ port: Int) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .connect(host: "127.0.0.1", port: port).get()
    }

    @Test("half a request is closed at the request timeout (not before, not much after)")
    func slowloris() async throws {
        // Its own loop, as the fetch tests' responder: a busy machine must not blur the timing.
        let server = try await OCSPHTTPResponder.start(
            host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup(numberOfThreads: 1),
            requestTimeout: .seconds(2)
        ) { _ in [] }
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        let started = ContinuousClock.now
        let client = try await Self.connect(port)
        // The write may already find the connection closed on a loaded machine: that is an answer too.
        try? await client.writeAndFlush(client.allocator.buffer(string: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"))
        try await client.closeFuture.get()
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(1_900) && waited < .seconds(30), "closed after \(waited), at the 2 s request timeout")
    }

    @Test("beyond maxConnections, a connection is closed at once; a slot frees when one closes")
    func connectionCap() async throws {
        let server = try await OCSPHTTPResponder.start(
            host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup(numberOfThreads: 1),
            requestTimeout: .seconds(60), maxConnections: 2
        ) { _ in [] }
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        let first = try await Self.connect(port)
        let second = try await Self.connect(port)
        try await Task.sleep(for: .milliseconds(200))
        let third = try await Self.connect(port)
        let started = ContinuousClock.now
        try await third.closeFuture.get()
        #expect(ContinuousClock.now - started < .seconds(30), "closed at accept, not at the 60 s timeout")
        #expect(first.isActive && second.isActive)
        try await first.close()
        try await Task.sleep(for: .milliseconds(300))
        let fourth = try await Self.connect(port)
        try await Task.sleep(for: .milliseconds(300))
        #expect(fourth.isActive, "a slot freed")
        try await second.close()
        try await fourth.close()
    }
}
