import NIOCore
import NIOPosix
import QSSL

/// A TCP server whose connections run Q-SSL: each accepted channel gets a `NIOQSSLHandler`
/// followed by the application's handlers.
public final class NIOQSSLServer: Sendable {
    public let channel: Channel

    /// The bound address as "host:port".
    public var localAddress: String { channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?" }
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: Channel) { self.channel = channel }

    /// Binds and starts accepting.
    /// - Parameters:
    ///   - handshakeTimeout: a connection whose handshake has not completed by then is closed
    ///     (`NIOQSSLHandshakeTimeoutHandler`); nil for none.
    ///   - idleTimeout: a connection that has read and written nothing for this long is closed
    ///     (SwiftNIO's `IdleStateHandler`); nil (the default) for none. Without one, a client
    ///     that completes a handshake and then stays silent keeps its socket.
    ///   - onHandler: called with each connection's TLS handler, on its event loop.
    ///   - applicationHandlers: the handlers behind TLS for one connection.
    public static func start(
        host: String, port: Int, configuration: ServerConfiguration, recordTrace: Bool = false,
        handshakeTimeout: TimeAmount? = .seconds(10),
        idleTimeout: TimeAmount? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onHandler: (@Sendable (NIOQSSLHandler) -> Void)? = nil,
        applicationHandlers: @escaping @Sendable () -> [ChannelHandler]
    ) async throws -> NIOQSSLServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOQSSLHandler(server: configuration, recordTrace: recordTrace)
                    onHandler?(tls)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    if let handshakeTimeout {
                        try channel.pipeline.syncOperations.addHandler(NIOQSSLHandshakeTimeoutHandler(timeout: handshakeTimeout))
                    }
                    if let idleTimeout {
                        try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(allTimeout: idleTimeout), IdleCloser()])
                    }
                    try channel.pipeline.syncOperations.addHandlers(applicationHandlers())
                }
            }
            .bind(host: host, port: port).get()
        return NIOQSSLServer(channel: channel)
    }

    public func close() async throws {
        try await channel.close()
    }
}

/// Closes a channel on SwiftNIO's `IdleStateEvent` (`NIOQSSLServer`'s idle timeout).
final class IdleCloser: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
