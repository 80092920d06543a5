import ArgumentParser
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

/// `qssl-bench tcp-echo ADDR PORT`: a plain TCP echo server on SwiftNIO, set up as
/// `NIOQSSLServer` is (the shared event-loop group, NIO's default child options, TCP_NODELAY
/// among them, one channel per connection), with no TLS: scripts/bench-resumption measures the
/// transport's share of a connection with it, next to Go's plain echo server (`qssl-bench-go
/// backend ADDR echo`).
struct TCPEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp-echo",
        abstract: "A plain TCP echo server on SwiftNIO (no TLS), for the transport's floor in scripts/bench-resumption.")

    @Argument(help: "Address to listen on.")
    var host: String

    @Argument(help: "Port to listen on.")
    var port: Int

    func run() throws {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: host, port: port).wait()
        print("listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        try channel.closeFuture.wait()
    }

    /// Writes back what it reads; closes when the client has closed its side.
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}

/// `qssl-bench tls-echo HOST PORT CHAIN KEY`: a TLS echo server on the NIO adapter alone
/// (`NIOQSSLServer`: its handshake timeout, but none of the proxy layer's limits, access log,
/// metrics, half-closure or write watermarks), with scripts/bench-resumption's groups and
/// versions for `qssl serve`: between the plain TCP floor and `qssl serve`, it shows which layer
/// a connection's server CPU goes to.
struct TLSEchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-echo",
        abstract: "A TLS echo server on NIOQSSLServer alone (no proxy layer), for scripts/bench-resumption's layer rows.")

    @Argument(help: "Address to listen on.")
    var host: String

    @Argument(help: "Port to listen on.")
    var port: Int

    @Argument(help: "Certificate chain (PEM).")
    var chain: String

    @Argument(help: "Private key (PEM).")
    var key: String

    @Option(help: "Event-loop threads (NIO's shared group; default: one per core).")
    var threads: Int?

    /// How the TLS 1.2 session-ID cache answers (scripts/bench-fleet's pause rows).
    enum SessionCacheMode: String, ExpressibleByArgument, CaseIterable {
        /// The in-memory cache, looked up in the handshake (no pause).
        case memory
        /// The same cache, answered through the core's pause (resumed on the event loop's next
        /// turn): the cost of the asynchronous look-up itself, with no store behind it.
        case memoryAsync = "memory-async"
        case none
    }

    @Option(help: "Session-ID cache: memory, memory-async (the same, answered through the pause on the loop's next turn) or none.")
    var sessionCache: SessionCacheMode = .memory

    @Flag(help: "Issue no session tickets.")
    var noTickets = false

    func validate() throws {
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be 1 to 1024") }
    }

    func run() async throws {
        if let threads { NIOSingletons.groupLoopCountSuggestion = threads }
        var configuration = ServerConfiguration(
            provider: .swiftCrypto, certificates: [try CertificateFiles.certifiedKey(chainPath: chain, keyPath: key)])
        configuration.groups = [.x25519, .secp384r1MLKEM1024, .secp384r1]
        configuration.versions = [.tls13, .tls12]
        switch sessionCache {
        case .memory: configuration.sessionCache = InMemorySessionCache()
        case .memoryAsync: configuration.sessionCache = NextTurnSessionCache(InMemorySessionCache())
        case .none: configuration.sessionCache = nil
        }
        if noTickets { configuration.ticketKeys = nil }
        let server = try await NIOQSSLServer.start(host: host, port: port, configuration: configuration) { [TCPEchoCommand.Echo()] }
        print("listening on \(server.localAddress)")
        try await server.channel.closeFuture.get()
    }
}

/// A session cache whose answers come through the core's pause (`isSynchronous` false): the
/// in-memory look-up, answered at once from the adapter's call, which NIOQSSLHandler resumes on
/// the event loop's next turn. What an asynchronous store costs before any I/O of its own.
struct NextTurnSessionCache: ServerSessionCache {
    let inner: InMemorySessionCache

    init(_ inner: InMemorySessionCache) { self.inner = inner }

    var isSynchronous: Bool { false }

    func lookUp(sessionID: [UInt8]) -> SessionState? { inner.lookUp(sessionID: sessionID) }

    /// Not the protocol's default, which answers from a task (a thread hop: another cost).
    func lookUp(sessionID: [UInt8], completion: @escaping @Sendable (SessionState?) -> Void) {
        completion(inner.lookUp(sessionID: sessionID))
    }

    func save(_ state: SessionState, sessionID: [UInt8]) { inner.save(state, sessionID: sessionID) }

    func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
}
