import NIOCore
import NIOPosix
import QSSL
import Synchronization

/// A simple client session over TCP: connect, handshake, exchange bytes, close. For tools and
/// tests; applications with their own pipelines add `NIOQSSLHandler` directly.
public final class NIOQSSLClient: @unchecked Sendable {
    public let channel: Channel
    public let handler: NIOQSSLHandler
    private let collector: Collector
    /// What was negotiated.
    public let summary: HandshakeSummary
    /// From TCP connection established to handshake completed.
    public let handshakeDuration: Duration

    /// Connects and completes the handshake, or throws the handshake's error.
    /// - Parameters:
    ///   - session: a session to offer; by default one is taken from the configuration's session
    ///     store under `sessionKey`.
    ///   - sessionKey: the store's key for this server (the server name unless given).
    ///   - maxBufferedBytes: the most application data kept until `read` takes it; a server that
    ///     sends more is cut off there (the connection is closed and `truncated` is set), so a
    ///     hostile server cannot grow the client without bound.
    public static func connect(
        host: String, port: Int, configuration: ClientConfiguration, serverName: String?,
        session: TLSSession? = nil, sessionKey: String? = nil,
        recordTrace: Bool = false, timeout: TimeAmount = .seconds(10), maxBufferedBytes: Int = 16 << 20,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NIOQSSLClient {
        // Created here so the caller can read its trace; handed to the channel's loop once, below.
        nonisolated(unsafe) let handler = try NIOQSSLHandler(
            client: configuration, serverName: serverName, session: session,
            sessionKey: sessionKey, recordTrace: recordTrace)
        let collector = Collector(maxBufferedBytes: maxBufferedBytes)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    collector.handshake = channel.eventLoop.makePromise()
                    collector.closed = channel.eventLoop.makePromise()
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([handler, collector])
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // A refused or timed-out connection never becomes active: its promises are failed
            // here, not left to leak.
            collector.handshake?.fail(error)
            collector.closed?.fail(error)
            throw error
        }
        let started = ContinuousClock.now
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) {
            collector.handshake?.fail(ChannelError.connectTimeout(timeout))
            channel.close(promise: nil)
        }
        let summary: HandshakeSummary
        do {
            summary = try await collector.handshake!.futureResult.get()
        } catch {
            timeoutTask.cancel()
            try? await channel.close()
            throw error
        }
        timeoutTask.cancel()
        return NIOQSSLClient(
            channel: channel, handler: handler, collector: collector, summary: summary,
            duration: ContinuousClock.now - started)
    }

    private init(channel: Channel, handler: NIOQSSLHandler, collector: Collector, summary: HandshakeSummary, duration: Duration) {
        self.channel = channel
        self.handler = handler
        self.collector = collector
        self.summary = summary
        self.handshakeDuration = duration
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// The connection ended with an error (for instance closed without close_notify, which may
    /// be a truncation attack) before or while reading: `received` is what arrived, and may be
    /// incomplete.
    public struct IncompleteRead: Error, CustomStringConvertible {
        public let received: [UInt8]
        public let underlying: Error
        public var description: String { "connection failed after \(received.count) bytes: \(underlying)" }
    }

    /// Reads until the peer closes, `expectedBytes` have arrived, or nothing arrives for `idleTimeout`.
    /// Throws `IncompleteRead` when the connection ended with an error rather than close_notify.
    public func read(expectedBytes: Int? = nil, idleTimeout: TimeAmount = .seconds(2)) async throws -> [UInt8] {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: [UInt8].self)
        loop.execute { self.collector.waitForData(expected: expectedBytes, idle: idleTimeout, promise: promise, loop: loop) }
        return try await promise.futureResult.get()
    }

    /// The sessions the server issued on this connection so far, oldest first (also saved in the
    /// configuration's session store, if any). A TLS 1.2 session arrives with the handshake;
    /// TLS 1.3 tickets arrive after it (NewSessionTicket), so read a little, or
    /// `waitForSession(timeout:)`, before closing.
    public var issuedSessions: [TLSSession] { collector.issued.withLock { $0 } }
    /// The most sessions `issuedSessions` keeps (the newest): a server may send a ticket after
    /// every record.
    public static let maxIssuedSessionsKept = 8
    /// Whether the server sent more than `maxBufferedBytes` before it was read, and the
    /// connection was closed there: what `read` returns is then only the first part.
    public var truncated: Bool { collector.truncated.withLock { $0 } }

    /// The newest session issued on this connection; if there is none yet, waits up to `timeout`
    /// for the first. Nil when none arrived in time or the connection closed first.
    public func waitForSession(timeout: TimeAmount = .seconds(1)) async -> TLSSession? {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: TLSSession?.self)
        loop.execute { self.collector.waitForSession(timeout: timeout, promise: promise, loop: loop) }
        return (try? await promise.futureResult.get()) ?? nil
    }

    /// Sends close_notify and closes the connection.
    public func close() async {
        try? await channel.close()
    }

    /// Error reported by the connection after the handshake, if any.
    public var error: Error? { get async { try? await channel.eventLoop.submit { self.collector.error }.get() } }

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var handshake: EventLoopPromise<HandshakeSummary>?
        var closed: EventLoopPromise<Void>?
        var received: [UInt8] = []
        var error: Error?
        var isClosed = false
        let maxBufferedBytes: Int
        /// Written on the loop, read from anywhere.
        let issued = Mutex<[TLSSession]>([])
        let truncated = Mutex(false)

        init(maxBufferedBytes: Int) { self.maxBufferedBytes = max(0, maxBufferedBytes) }
        private var waiter: (expected: Int?, promise: EventLoopPromise<[UInt8]>, idle: TimeAmount)?
        private var idleTask: Scheduled<Void>?
        private var sessionWaiters: [(id: Int, promise: EventLoopPromise<TLSSession?>, timer: Scheduled<Void>)] = []
        private var nextSessionWaiter = 0

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let e = event as? QSSLUserEvent {
                if let s = e.handshakeSummary {
                    handshake?.succeed(s)
                } else if let session = e.issuedSession {
                    issued.withLock {
                        $0.append(session)
                        if $0.count > NIOQSSLClient.maxIssuedSessionsKept { $0.removeFirst($0.count - NIOQSSLClient.maxIssuedSessionsKept) }
                    }
                    finishSessionWaiters(with: session)
                }
                // Other events (clientAuthenticated is a server's; a client never hears it) pass on.
            }
            context.fireUserInboundEventTriggered(event)
        }

        func waitForSession(timeout: TimeAmount, promise: EventLoopPromise<TLSSession?>, loop: EventLoop) {
            if let newest = issued.withLock({ $0.last }) {
                promise.succeed(newest)
                return
            }
            guard !isClosed else {
                promise.succeed(nil)
                return
            }
            let id = nextSessionWaiter
            nextSessionWaiter += 1
            let timer = loop.scheduleTask(in: timeout) {
                self.sessionWaiters.removeAll { $0.id == id }
                promise.succeed(nil)
            }
            sessionWaiters.append((id, promise, timer))
        }

        private func finishSessionWaiters(with session: TLSSession?) {
            let waiters = sessionWaiters
            sessionWaiters = []
            for w in waiters {
                w.timer.cancel()
                w.promise.succeed(session)
            }
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !truncated.withLock({ $0 }) else { return }
            let bytes = unwrapInboundIn(data).readableBytesView
            let room = maxBufferedBytes - received.count
            if bytes.count > room {
                received.append(contentsOf: bytes.prefix(room))
                truncated.withLock { $0 = true }
                context.close(promise: nil)
            } else {
                received.append(contentsOf: bytes)
            }
            check(loop: context.eventLoop)
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if self.error == nil { self.error = error }
            handshake?.fail(error)
        }
        func channelInactive(context: ChannelHandlerContext) {
            isClosed = true
            handshake?.fail(error ?? ChannelError.eof)
            closed?.succeed(())
            finishSessionWaiters(with: nil)
            check(loop: context.eventLoop)
        }

        func waitForData(expected: Int?, idle: TimeAmount, promise: EventLoopPromise<[UInt8]>, loop: EventLoop) {
            waiter = (expected, promise, idle)
            check(loop: loop)
        }

        private func check(loop: EventLoop) {
            guard let w = waiter else { return }
            if isClosed || (w.expected.map { received.count >= $0 } ?? false) {
                finish()
                return
            }
            idleTask?.cancel()
            idleTask = loop.scheduleTask(in: w.idle) { self.finish() }
        }

        private func finish() {
            guard let w = waiter else { return }
            waiter = nil
            idleTask?.cancel()
            let data = received
            received = []
            // A connection that ended with an error (an unclean shutdown without close_notify,
            // a bad record) did not deliver everything: never hand partial data over as if it
            // were complete.
            if isClosed, let error {
                w.promise.fail(NIOQSSLClient.IncompleteRead(received: data, underlying: error))
            } else {
                w.promise.succeed(data)
            }
        }
    }
}
