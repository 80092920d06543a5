import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `--metrics ADDR`: `GET /metrics` (Prometheus text format) and `GET /healthz` (200 "ok" while
/// the server accepts; 503 "draining" during a drain). Requests are small and answered at once;
/// a client that sends more than a request head, or lingers, is closed.
public final class MetricsServer: Sendable {
    public let channel: Channel

    private init(channel: Channel) { self.channel = channel }

    public var localAddress: String { describe(channel.localAddress) }

    /// Serves `/metrics` and `/healthz` on `host:port`, at most `maximumConnections` at once.
    /// - Parameter connectionTimeout: how long after accept a connection is closed, finished or
    ///   not (more than zero; 10 s by default).
    public static func start(
        host: String, port: Int, metrics: ProxyMetrics, healthy: @escaping @Sendable () -> Bool,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectionTimeout: TimeAmount = MetricsServer.connectionTimeout
    ) async throws -> MetricsServer {
        precondition(connectionTimeout > .zero, "the metrics port's connection timeout must be more than zero")
        let open = OpenCount()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Scrapers are few: beyond `maximumConnections` at once a connection is
                    // closed at accept, so that this port cannot take the descriptors the
                    // proxy's clients need.
                    guard open.enter(below: Self.maximumConnections) else {
                        channel.close(promise: nil)
                        return
                    }
                    // A scrape takes milliseconds: a connection still open `connectionTimeout`
                    // after accept is closed, busy or not (the timer goes with the connection).
                    // Both set up before anything that may throw, so the count always comes back.
                    let deadline = channel.eventLoop.scheduleTask(in: connectionTimeout) { channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in
                        deadline.cancel()
                        open.leave()
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics, healthy: healthy))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsServer(channel: channel)
    }

    public func close() async { try? await channel.close() }

    /// Connections served at once.
    static let maximumConnections = 64
    /// How long after accept a connection is closed, finished or not.
    public static let connectionTimeout = TimeAmount.seconds(10)
}

/// Connections open on the metrics port.
final class OpenCount: Sendable {
    private let count = Mutex(0)
    func enter(below limit: Int) -> Bool {
        count.withLock { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
    }
    func leave() { count.withLock { $0 -= 1 } }
    var value: Int { count.withLock { $0 } }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let metrics: ProxyMetrics
    let healthy: @Sendable () -> Bool
    private var path: String?

    init(metrics: ProxyMetrics, healthy: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.healthy = healthy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.method == .GET ? String(head.uri.split(separator: "?", maxSplits: 1).first ?? "") : nil
        case .body:
            break
        case .end:
            let (status, type, body): (HTTPResponseStatus, String, [UInt8])
            switch path {
            case "/metrics": (status, type, body) = (.ok, "text/plain; version=0.0.4", metrics.render())
            case "/healthz":
                (status, type, body) = healthy() ? (.ok, "text/plain", Array("ok\n".utf8)) : (.serviceUnavailable, "text/plain", Array("draining\n".utf8))
            case nil: (status, type, body) = (.methodNotAllowed, "text/plain", Array("GET only\n".utf8))
            default: (status, type, body) = (.notFound, "text/plain", Array("not found: /metrics and /healthz are served\n".utf8))
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
