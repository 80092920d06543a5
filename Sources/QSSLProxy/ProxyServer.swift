import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
        var seen = Set<String>()
        // One entry per address, though a TCP address has a socket per event loop.
        return listeners.flatMap { l in l.channels.map { (l.runtime.settings.name, describe($0.localAddress)) } }.filter { seen.insert("\($0.0) \($0.1)").inserted }
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
                        bound += try await bind(address, runtime: runtime, group: group)
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
        for l in listeners {
            for channel in l.channels { channel.eventLoop.execute { channel.setAutoRead(!l.runtime.gate.isFull) } }
        }
        return ProxyServer(listeners: listeners, group: group)
    }

    /// Binds `address`: a TCP address once per event loop, each socket accepting for its own loop
    /// (SO_REUSEPORT; the kernel spreads the connections over them). A connection is then served
    /// on the loop that accepted it: no hand-off to another loop's thread, whose wake-up cost
    /// about a fifth of a resumed handshake's server CPU with one connection at a time
    /// (`qssl serve --threads 1` against two loops, paired rounds). Before that, the address is bound
    /// once without SO_REUSEPORT (and without listening): a server already listening on it (a
    /// second `qssl serve` among them) makes this fail, as it would without SO_REUSEPORT, instead
    /// of sharing its port. (A process of the same user that binds with SO_REUSEPORT after us can
    /// still join the port: the kernel allows that, as for nginx's and HAProxy's per-thread
    /// listeners.)
    /// A Unix socket, or a single loop, has one socket whose connections go to the group's loops.
    private static func bind(_ address: ListenAddress, runtime: ListenerRuntime, group: EventLoopGroup) async throws -> [Channel] {
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        switch address {
        case .unix(let path):
            return [try await bootstrap(runtime: runtime, address: address, group: group, childGroup: group, reusePort: false)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()]
        case .tcp(let host, let port) where loops.count == 1 || !spreadsReusePort:
            return [try await bootstrap(runtime: runtime, address: address, group: group, childGroup: group, reusePort: false)
                .bind(host: host, port: port).get()]
        case .tcp(let host, let port):
            // Resolved once: every socket on the one address the check saw.
            var resolved = try SocketAddress.makeAddressResolvingHost(host, port: port)
            if port != 0 { try checkNotListening(resolved) }
            var channels: [Channel] = []
            do {
                for loop in loops {
                    let channel = try await bootstrap(runtime: runtime, address: address, group: loop, childGroup: loop, reusePort: true)
                        .bind(to: resolved).get()
                    channels.append(channel)
                    // An ephemeral port (0) is the first socket's for the others.
                    if port == 0, let bound = channel.localAddress { resolved = bound }
                }
            } catch {
                for channel in channels { try? await channel.close() }
                throw error
            }
            return channels
        }
    }

    /// Whether the kernel spreads a port's connections over the sockets sharing it with
    /// SO_REUSEPORT: Linux does; macOS and the BSDs (without SO_REUSEPORT_LB) give them all to one,
    /// which would put every connection on one loop.
    #if os(Linux)
        static let spreadsReusePort = true
    #else
        static let spreadsReusePort = false
    #endif

    /// Throws EADDRINUSE when a socket is bound to the address already (a listener with or without
    /// SO_REUSEPORT): a bind without SO_REUSEPORT, and without listen, so that nothing is accepted.
    private static func checkNotListening(_ address: SocketAddress) throws {
        #if canImport(Glibc)
            let fd = socket(address.protocolFamily, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(address.protocolFamily, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(fd) }
        var one: CInt = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let result = address.withSockAddr { pointer, size in systemBind(fd, pointer, socklen_t(size)) }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "bind(descriptor:ptr:bytes:)") }
    }

    private static func bootstrap(
        runtime: ListenerRuntime, address: ListenAddress, group: any EventLoopGroup, childGroup: any EventLoopGroup, reusePort: Bool
    ) -> ServerBootstrap {
        let limits = runtime.settings.limits
        return ServerBootstrap(group: group, childGroup: childGroup)
            // Accepting starts once every listener is bound (`start`): none accepted by a socket
            // whose siblings then fail to bind.
            .serverChannelOption(.autoRead, value: false)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: CInt(SO_REUSEPORT))), value: reusePort ? 1 : 0)
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

private func systemBind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    bind(fd, address, length)
}
