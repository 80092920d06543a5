import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `qssl serve`: listeners that terminate TLS and forward plaintext to backends, with limits,
/// a reload that keeps open connections on their configuration, and a drain.
public final class ProxyServer: Sendable {
    struct Listener: Sendable {
        let runtime: ListenerRuntime
        let channels: [Channel]
    }

    private let listeners: [Listener]
    public let group: EventLoopGroup
    private let draining = Mutex(false)

    private init(listeners: [Listener], group: EventLoopGroup) {
        self.listeners = listeners
        self.group = group
    }

    /// The bound addresses, by listener ("name", "127.0.0.1:8443").
    /// (One entry per address, though a TCP address has a listening socket per event loop.)
    public var boundAddresses: [(listener: String, address: String)] {
        var seen = Set<String>()
        return listeners.flatMap { l in
            l.channels.compactMap { c -> (String, String)? in
                let address = describe(c.localAddress)
                return seen.insert(l.runtime.settings.name + " " + address).inserted ? (l.runtime.settings.name, address) : nil
            }
        }
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
                for address in s.addresses {
                    bound += try await bind(address, runtime: runtime, group: group)
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

    /// Binds one address. A TCP address gets one listening socket per event loop (SO_REUSEPORT),
    /// each accepting onto its own loop: with a single acceptor, the connections it hands to the
    /// other loops cross threads through an eventfd wake-up, which measured 30–40% of the server CPU
    /// of a resumed TLS 1.2 handshake on two loops. Another process cannot join the port
    /// unnoticed by mistake: the address is first checked free with a plain bind (no SO_REUSEPORT),
    /// so a second `qssl serve` on the same port fails with "address already in use" as before.
    /// (Linux lets only sockets of the same user share a port this way.) A Unix socket has one listener.
    private static func bind(_ address: ListenAddress, runtime: ListenerRuntime, group: EventLoopGroup) async throws -> [Channel] {
        switch address {
        case .unix(let path):
            return [try await bootstrap(address, runtime: runtime, group: group, childGroup: group)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()]
        case .tcp(let host, let port):
            let loops = Array(group.makeIterator())
            guard loops.count > 1 else {
                return [try await bootstrap(address, runtime: runtime, group: group, childGroup: group).bind(host: host, port: port).get()]
            }
            let target = try SocketAddress.makeAddressResolvingHost(host, port: port)
            if port != 0 { try checkFree(target) }
            var channels: [Channel] = []
            do {
                var local = target
                for loop in loops {
                    let channel = try await bootstrap(address, runtime: runtime, group: loop, childGroup: loop)
                        .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                        .bind(to: local).get()
                    channels.append(channel)
                    // The first bind fixes the port (it may have been 0) for the others.
                    if channels.count == 1, let bound = channel.localAddress { local = bound }
                }
            } catch {
                for c in channels { try? await c.close() }
                throw error
            }
            return channels
        }
    }

    /// Throws the bind error if a plain socket (SO_REUSEADDR, no SO_REUSEPORT) cannot bind to `address`.
    private static func checkFree(_ address: SocketAddress) throws {
        let family = address.protocol.rawValue
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { Glibc.close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "bind(descriptor:ptr:bytes:)") }
    }

    private static func bootstrap(
        _ address: ListenAddress, runtime: ListenerRuntime, group: EventLoopGroup, childGroup: EventLoopGroup
    ) -> ServerBootstrap {
        let limits = runtime.settings.limits
        return ServerBootstrap(group: group, childGroup: childGroup)
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
                    guard runtime.gate.open() else {
                        runtime.refused(channel, limit: "max_connections")
                        return
                    }
                    let configuration = runtime.settings.tls.configuration
                    let tls = try NIOQSSLHandler(server: configuration, allowsHalfClosure: true)
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
