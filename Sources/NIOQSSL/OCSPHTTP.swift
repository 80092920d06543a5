import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import QSSLX509
import Synchronization

/// Fetches OCSP responses with HTTP POST (RFC 6960 Appendix A.1) on NIO: bounded in time and in
/// size, so that a responder that is down, slow or answers garbage costs at most the timeout and
/// is then a verification error (soft- or hard-fail, as the verifier's policy says).
public struct NIOOCSPFetcher: OCSPFetching {
    public var group: EventLoopGroup
    /// The largest response accepted.
    public var maxResponseBytes = 64 * 1024

    public init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) { self.group = group }

    public func fetch(url: String, request: [UInt8], timeout: Duration) async throws -> [UInt8] {
        guard let parsed = HTTPURL(url) else { throw OCSPError("unsupported responder URL \(url) (http://host[:port]/path)") }
        let collector = ResponseCollector(limit: maxResponseBytes)
        // One deadline for the whole exchange: connecting, sending and the answer together.
        let (whole, overflow) = max(0, timeout.components.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let budget = TimeAmount.nanoseconds(overflow ? .max : max(1, whole + max(0, timeout.components.attoseconds) / 1_000_000_000))
        let expires = NIODeadline.now() + budget
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(budget)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: parsed.host, port: parsed.port).get()
        } catch ChannelError.connectTimeout {
            throw OCSPError("no answer from \(url) within \(timeout) (connecting)")
        }
        let deadline = channel.eventLoop.scheduleTask(deadline: expires) {
            collector.fail(OCSPError("no answer from \(url) within \(timeout)"), channel: channel)
        }
        defer { deadline.cancel() }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: parsed.path)
        head.headers.add(name: "Host", value: parsed.host)
        head.headers.add(name: "Content-Type", value: "application/ocsp-request")
        head.headers.add(name: "Content-Length", value: "\(request.count)")
        head.headers.add(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: request))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let body = try await collector.promise(on: channel.eventLoop).get()
        try? await channel.close()
        return body
    }
}

struct HTTPURL {
    let host: String
    let port: Int
    let path: String
    init?(_ url: String) {
        guard url.lowercased().hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let authority = rest.prefix { $0 != "/" }
        path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        if let colon = authority.lastIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]), !authority.hasSuffix("]") {
            host = String(authority[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            port = p
        } else {
            host = String(authority).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            port = 80
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
    }
}

/// Collects one HTTP response body, up to a limit.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let limit: Int
    private var body: [UInt8] = []
    private var status: HTTPResponseStatus?
    private var result: EventLoopPromise<[UInt8]>?
    private var pending: Result<[UInt8], Error>?

    init(limit: Int) { self.limit = limit }

    /// Called on the channel's loop.
    func promise(on loop: EventLoop) -> EventLoopFuture<[UInt8]> {
        loop.submit { () -> EventLoopFuture<[UInt8]> in
            let p = loop.makePromise(of: [UInt8].self)
            if let pending = self.pending { p.completeWith(pending) } else { self.result = p }
            return p.futureResult
        }.flatMap { $0 }
    }

    private func complete(_ r: Result<[UInt8], Error>) {
        if let result {
            self.result = nil
            result.completeWith(r)
        } else if pending == nil {
            pending = r
        }
    }

    func fail(_ error: Error, channel: Channel) {
        channel.eventLoop.execute {
            self.complete(.failure(error))
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= limit else {
                complete(.failure(OCSPError("response larger than \(limit) bytes")))
                context.close(promise: nil)
                return
            }
            body += buffer.readableBytesView
        case .end:
            if status == .ok { complete(.success(body)) } else { complete(.failure(OCSPError("HTTP \(status.map { "\($0.code)" } ?? "?")"))) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(OCSPError("the responder closed the connection without an answer")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }
}

/// Answers OCSP requests over HTTP (POST, and GET with the base64 request in the path, RFC 6960
/// Appendix A.1) with whatever `answer` returns; a request that cannot be parsed gets
/// malformedRequest. Used by `qssl ocsp-responder`.
public final class OCSPHTTPResponder: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart
    let answer: @Sendable ([UInt8]) -> [UInt8]
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var responded = false
    static let maxRequest = 16 * 1024

    public init(answer: @escaping @Sendable ([UInt8]) -> [UInt8]) { self.answer = answer }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(let buffer):
            guard !responded else { return }
            guard body.count + buffer.readableBytes <= Self.maxRequest else {
                respond(context: context, status: .payloadTooLarge, bytes: [])
                return
            }
            body += buffer.readableBytesView
        case .end:
            guard let head, !responded else { return }
            var request = body
            if head.method == .GET {
                let encoded = String(head.uri.split(separator: "/").last ?? "").removingPercentEncoding ?? ""
                request = Data(base64Encoded: encoded).map(Array.init) ?? []
            }
            respond(context: context, status: .ok, bytes: request.isEmpty ? OCSPResponseWriter.error(1) : answer(request))
            self.head = nil
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, bytes: [UInt8]) {
        responded = true  // one answer per connection (Connection: close)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/ocsp-response")
        headers.add(name: "Content-Length", value: "\(bytes.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    /// Starts a responder on `host:port` (port 0 picks one); returns the channel.
    ///
    /// Each connection has `requestTimeout` from accept to its answer (a client that sends half
    /// a request is closed then, so slow clients cannot hold descriptors), and at most
    /// `maxConnections` are open at once (more are closed at accept).
    public static func start(
        host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        requestTimeout: TimeAmount = .seconds(10), maxConnections: Int = 1024,
        answer: @escaping @Sendable ([UInt8]) -> [UInt8]
    ) async throws -> Channel {
        let open = Mutex(0)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = open.withLock { n -> Bool in
                        guard n < maxConnections else { return false }
                        n += 1
                        return true
                    }
                    guard admitted else {
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in open.withLock { $0 -= 1 } }
                    let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in deadline.cancel() }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OCSPHTTPResponder(answer: answer))
                }
            }
            .bind(host: host, port: port).get()
    }
}
