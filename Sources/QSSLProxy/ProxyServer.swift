import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import Synchronization

/// `qssl serve`: listeners that terminate TLS and forward plaintext to backends, with limits,
/// a reload that keeps open connections on their configuration, and a drain.
public final class ProxyServer: Sendable {
    struct Listener: Sendable {
        let runtime: ListenerRuntime
        let channels: [Channel]
    }

    let listeners: [Listener]
    public let group: EventLoopGroup
    private let draining = Mutex(false)

    private init(listeners: [Listener], group: EventLoopGroup) {
        self.listeners = listeners
        self.group = group
    }

    /// The bound addresses, by listener ("name", "127.0.0.1:8443").
    public var boundAddresses: [(listener: String, address: String)] {
        listeners.flatMap { l in l.channels.map { (l.runtime.settings.name, describe($0.localAddress)) } }
    }

    /// Open client connections, all listeners.
    public var openConnections: Int { listeners.reduce(0) { $0 + $1.runtime.connections.count } }

    /// Binds every listener's addresses and starts accepting.
    public static func start(
        listeners settings: [ListenerSettings], metrics: ProxyMetrics?, logger: Logger,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ProxyServer {
        var listeners: [Listener] = []
        do {
            for s in settings {
                let serverChannels = Mutex<[Channel]>([])
                let gateBox = Mutex<ConnectionGate?>(nil)
                let gate = ConnectionGate(limits: s.limits) {
                    // At the maximum: stop accepting (new connections wait in the kernel's queue).
                    // Decided on each server channel's own loop from the count then, so that
                    // crossings reported from several loops cannot leave accepting off.
                    for channel in serverChannels.withLock({ $0 }) {
                        channel.eventLoop.execute {
                            guard let gate = gateBox.withLock({ $0 }) else { return }
                            channel.setAutoRead(!gate.isFull)
                        }
                    }
                }
                gateBox.withLock { $0 = gate }
                let runtime = ListenerRuntime(
                    settings: s, gate: gate, metrics: metrics,
                    logger: logger, connections: ConnectionRegistry())
                var bound: [Channel] = []
                do {
                    for address in s.addresses {
                        bound.append(try await bind(address, runtime: runtime, group: group))
                    }
                } catch {
                    // This listener's addresses bound before the failure: closed too, not left
                    // accepting into a runtime nothing drains.
                    for c in bound { try? await c.close() }
                    throw error
                }
                serverChannels.withLock { $0 = bound }
                listeners.append(Listener(runtime: runtime, channels: bound))
            }
        } catch {
            for l in listeners { for c in l.channels { try? await c.close() } }
            throw error
        }
        return ProxyServer(listeners: listeners, group: group)
    }

    private static func bind(_ address: ListenAddress, runtime: ListenerRuntime, group: EventLoopGroup) async throws -> Channel {
        let limits = runtime.settings.limits
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The accepted channel's options, set synchronously here: as bootstrap child
                    // options each took a chain of futures per connection (3–4% of a resumed
                    // handshake's server CPU). TCP_NODELAY on TCP only (a Unix socket has none); at IPPROTO_TCP: as
                    // `.socketOption(.tcp_nodelay)` it was SOL_SOCKET's option 1, SO_DEBUG.
                    if let options = channel.syncOptions {
                        try options.setOption(.allowRemoteHalfClosure, value: true)
                        try options.setOption(.writeBufferWaterMark, value: .init(low: limits.writeBufferHighWater / 2, high: limits.writeBufferHighWater))
                        if case .tcp = address { try options.setOption(.tcpOption(.tcp_nodelay), value: 1) }
                    }
                    if runtime.settings.acceptProxyProtocol, !runtime.settings.trustedProxySources.isEmpty,
                        !runtime.settings.trustedProxySources.contains(where: { $0.contains(addressBytes(channel.remoteAddress)) })
                    {
                        runtime.refused(channel, limit: "proxy_source", counted: false)
                        return
                    }
                    // Made before the gate counts the connection: if it throws, the channel
                    // closes with no slot taken that nothing would give back.
                    let tls = try NIOQSSLHandler(server: runtime.settings.tls.configuration, allowsHalfClosure: true)
                    guard runtime.gate.open() else {
                        runtime.refused(channel, limit: "max_connections")
                        return
                    }
                    // Given back when the channel closes, however it closes: one that NIO closes
                    // before it is active (registration failed) never reaches channelInactive.
                    channel.closeFuture.whenComplete { _ in runtime.gate.close() }
                    let connection = ProxyConnection(runtime: runtime, channel: channel)
                    var handlers: [ChannelHandler] = []
                    if runtime.settings.acceptProxyProtocol {
                        handlers.append(InboundProxyHeaderHandler(connection: connection, accepting: runtime.settings.acceptedProxyVersions))
                    }
                    handlers.append(tls)
                    handlers.append(FrontHandler(connection: connection))
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                }
            }
        switch address {
        case .tcp(let host, let port): return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path): return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }

    /// Reloaded configurations take effect for new connections from here on.
    public func replaceTLSConfiguration(listener name: String, with configuration: ServerConfiguration) {
        for l in listeners where l.runtime.settings.name == name { l.runtime.settings.tls.configuration = configuration }
    }

    /// Stops accepting, lets open connections finish for up to `timeout`, then closes the rest
    /// with close_notify. Returns how many were closed at the deadline.
    @discardableResult
    public func drain(timeout: Duration) async -> Int {
        guard
            draining.withLock({ d -> Bool in
                defer { d = true }
                return !d
            })
        else { return 0 }
        for l in listeners { for c in l.channels { try? await c.close() } }
        let deadline = ContinuousClock.now + timeout
        while openConnections > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        var closed = 0
        for l in listeners {
            for (channel, connection) in l.runtime.connections.all {
                closed += 1
                if let connection {
                    channel.eventLoop.execute { connection.drained() }
                } else {
                    channel.close(promise: nil)
                }
            }
        }
        // Give the close_notify alerts a moment to go out.
        let end = ContinuousClock.now + .seconds(2)
        while openConnections > 0 && ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(20)) }
        return closed
    }

    /// The listeners' server channels: closed when the server stops.
    /// (See `addressBytes` for the address form prefixes are matched against.)
    public var closeFutures: [EventLoopFuture<Void>] { listeners.flatMap { $0.channels.map(\.closeFuture) } }
}

/// The raw address of a socket address (4 or 16 bytes; empty for Unix sockets).
func addressBytes(_ address: SocketAddress?) -> [UInt8] {
    switch address {
    case .v4(let a)?: return withUnsafeBytes(of: a.address.sin_addr.s_addr) { Array($0) }
    case .v6(let a)?: return withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
    default: return []
    }
}
