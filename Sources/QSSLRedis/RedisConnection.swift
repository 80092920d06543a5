// One connection to one Redis server: handshake (HELLO 3 / AUTH / SELECT) and pipelining.

import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A connection to one Redis server. Commands may be sent concurrently from any task: they are
/// pipelined and their replies matched in order. Each command has a timeout; when one expires the
/// connection is closed (its later replies would be out of step) and must be replaced.
public final class RedisConnection: Sendable {
    public let endpoint: RedisEndpoint
    /// The protocol version negotiated: RESP3 after a successful HELLO 3, else RESP2.
    public let protocolVersion: RESPVersion
    let channel: any Channel
    let commandTimeout: TimeAmount
    /// Commands in flight, and whether a command failed in a way that leaves the stream
    /// unusable (timeout, protocol error, closed) before the channel has finished closing: both
    /// kept by the channel's handler.
    private let health: RedisConnectionHealth
    /// Whether a flush is queued on the channel's loop for commands written this turn (touched
    /// on that loop only).
    private let flushQueued = Atomic<Bool>(false)

    private init(
        endpoint: RedisEndpoint, channel: any Channel, protocolVersion: RESPVersion, commandTimeout: TimeAmount,
        health: RedisConnectionHealth
    ) {
        self.endpoint = endpoint
        self.channel = channel
        self.protocolVersion = protocolVersion
        self.commandTimeout = commandTimeout
        self.health = health
    }

    /// Whether the channel is still open.
    public var isActive: Bool { channel.isActive && !health.broken.load(ordering: .relaxed) }

    /// The number of commands sent and not yet answered.
    public var inFlight: Int { health.inFlight.load(ordering: .relaxed) }

    /// Connects, sets up TLS if configured, and runs the handshake: HELLO 3 (with AUTH and
    /// SETNAME) or, if the server refuses HELLO, RESP2 with AUTH; then SELECT if `database` ≠ 0.
    /// Every step is bounded: TCP by `connectTimeout`, each handshake command by `commandTimeout`.
    public static func connect(
        to endpoint: RedisEndpoint,
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "qssl.redis")
    ) async throws(RedisError) -> RedisConnection {
        let decoder = RESPDecoder(
            maximumReplySize: configuration.maximumReplySize,
            maximumNestingDepth: configuration.maximumNestingDepth)
        let tls = configuration.useTLS ? configuration.tlsHandlerFactory : nil
        if configuration.useTLS && tls == nil {
            throw .invalidConfiguration("TLS (rediss://) needs a tlsHandlerFactory")
        }
        let health = RedisConnectionHealth()
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)  // IPPROTO_TCP (at SOL_SOCKET, 1 is SO_DEBUG)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        for handler in try tls(endpoint.host) { try sync.addHandler(handler) }
                    }
                    try sync.addHandler(RedisCommandHandler(decoder: decoder, health: health))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw .unavailable(endpoint: endpoint.description, reason: "\(error)")
        }
        do throws(RedisError) {
            let version = try await handshake(channel: channel, endpoint: endpoint, configuration: configuration)
            logger.debug("connected to Redis", metadata: ["endpoint": "\(endpoint)", "resp": "\(version.rawValue)"])
            return RedisConnection(
                endpoint: endpoint, channel: channel, protocolVersion: version,
                commandTimeout: configuration.commandTimeout, health: health)
        } catch {
            channel.close(promise: nil)
            switch error {
            case .authenticationFailed, .invalidConfiguration: throw error
            default: throw .unavailable(endpoint: endpoint.description, reason: "handshake failed: \(error)")
            }
        }
    }

    private static func handshake(
        channel: any Channel, endpoint: RedisEndpoint,
        configuration: RedisConfiguration
    ) async throws(RedisError) -> RESPVersion {
        let timeout = configuration.commandTimeout
        func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
            try await write(command.label, [command], timeout: timeout, on: channel)[0]
        }
        var version = RESPVersion.resp2
        var authenticated = false
        if configuration.protocolVersion == .resp3 {
            var hello: [any RedisArgumentConvertible] = ["HELLO", "3"]
            if let credentials = configuration.credentials {
                hello += ["AUTH", credentials.username ?? "default", credentials.password]
            }
            if let name = configuration.clientName { hello += ["SETNAME", name] }
            let reply = try await send(RedisCommand(hello.map(\.redisArgument)))
            if let message = reply.errorMessage {
                if Self.isAuthError(message) { throw .authenticationFailed(message) }
                // An older server (or a proxy) without RESP3 goes on with RESP2 and AUTH; any
                // other refusal ("max number of clients reached", say) is a failed connection,
                // so that the pool backs off instead of reconnecting at once.
                guard Self.isProtocolRefusal(message) else {
                    throw .unavailable(endpoint: endpoint.description, reason: "HELLO refused: \(message.prefix(200))")
                }
            } else {
                version = .resp3
                authenticated = true
            }
        }
        if !authenticated, let credentials = configuration.credentials {
            var auth: [any RedisArgumentConvertible] = ["AUTH"]
            if let username = credentials.username { auth.append(username) }
            auth.append(credentials.password)
            let reply = try await send(RedisCommand(auth.map(\.redisArgument)))
            if let message = reply.errorMessage { throw .authenticationFailed(message) }
        }
        if version == .resp2, let name = configuration.clientName {
            _ = try await send(RedisCommand("CLIENT", "SETNAME", name))
        }
        if configuration.database != 0 {
            let reply = try await send(RedisCommand("SELECT", configuration.database))
            if let message = reply.errorMessage {
                throw .invalidConfiguration("SELECT \(configuration.database) failed: \(message)")
            }
        }
        return version
    }

    /// A server that does not know HELLO or RESP3 (Redis before 6, some proxies).
    static func isProtocolRefusal(_ message: String) -> Bool {
        message.hasPrefix("NOPROTO") || message.hasPrefix("ERR unknown command") || message.hasPrefix("ERR Unknown command")
            || message.lowercased().contains("unknown command")
    }

    static func isAuthError(_ message: String) -> Bool {
        message.hasPrefix("WRONGPASS") || message.hasPrefix("NOAUTH") || message.hasPrefix("NOPERM")
            || message.hasPrefix("ERR invalid password") || message.hasPrefix("ERR AUTH")
    }

    /// Writes `commands` at once; the future holds their replies in order (it completes on the
    /// channel's event loop).
    static func writeFuture(
        _ label: String, _ commands: [RedisCommand], timeout: TimeAmount,
        on channel: any Channel
    ) -> EventLoopFuture<[RESPValue]> {
        var bytes = channel.allocator.buffer(capacity: 64)
        for command in commands { RESPEncoder.encode(command, into: &bytes) }
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        let request = RedisRequest(bytes: bytes, replies: commands.count, timeout: timeout, label: label, target: .promise(promise))
        // If the channel is already closed the handler never sees the request: fail it here (a
        // promise completed twice keeps its first result).
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            promise.fail(RedisError.connectionClosed("cannot write: \(error)"))
        }
        channel.writeAndFlush(request, promise: written)
        return promise.futureResult
    }

    /// Writes `commands` at once and returns their replies in order.
    static func write(
        _ label: String, _ commands: [RedisCommand], timeout: TimeAmount,
        on channel: any Channel
    ) async throws(RedisError) -> [RESPValue] {
        do {
            return try await writeFuture(label, commands, timeout: timeout, on: channel).get()
        } catch {
            throw RedisError.from(error)
        }
    }

    /// Sends `bytes` (`replies` commands, already encoded) without a task or a future: `completion`
    /// runs exactly once on this connection's event loop (possibly before this returns) with the
    /// replies, a failure, or `.late` when `answerWithin` passes first — then the connection
    /// stays open, the reply is read and dropped when it comes, and only the command timeout
    /// closes the connection. The command is written on the connection's loop (from elsewhere
    /// it hops there first) and flushed once that loop has handled this turn's events, so the
    /// look-ups of several handshakes read in one turn share one write to the socket.
    /// `settled`, if given, runs once when the command leaves the pipeline (after its outcome,
    /// or after `.late` once the late reply was read or the connection failed).
    public func send(
        encoded bytes: ByteBuffer, replies: Int, label: String, answerWithin: TimeAmount?,
        settled: (@Sendable () -> Void)? = nil,
        completion: @escaping @Sendable (RedisReplyOutcome) -> Void
    ) {
        // The count is what matches replies to requests in the pipeline: one that does not
        // describe the bytes would hand later requests each other's replies. At least one; the
        // caller encoded that many commands.
        guard replies >= 1 else {
            settled?()
            completion(.failed(.unexpectedReply(command: label, reply: "a request must expect at least one reply, not \(replies)")))
            return
        }
        let request = RedisRequest(
            bytes: bytes, replies: replies, timeout: commandTimeout, answerWithin: answerWithin,
            label: label, target: .callback(completion), settled: settled)
        if channel.eventLoop.inEventLoop {
            write(request)
        } else {
            channel.eventLoop.execute { self.write(request) }
        }
    }

    /// On the channel's loop: an open channel has its handler, which answers the request
    /// whatever happens; a closed one gets no write, and the request fails here.
    private func write(_ request: RedisRequest) {
        guard channel.isActive else {
            request.settled?()
            if case .callback(let completion) = request.target { completion(.failed(.connectionClosed("cannot write: the connection is closed"))) }
            return
        }
        channel.pipeline.syncOperations.write(NIOAny(request), promise: nil)
        // One flush per loop turn: queued behind the turn's I/O events, it runs before the loop
        // waits again (a closed channel ignores it; its requests were failed by the handler).
        guard !flushQueued.exchange(true, ordering: .relaxed) else { return }
        channel.eventLoop.execute {
            self.flushQueued.store(false, ordering: .relaxed)
            self.channel.flush()
        }
    }

    /// The allocator of this connection's channel (to encode a command for `send(encoded:…)`).
    public var allocator: ByteBufferAllocator { channel.allocator }

    /// The event loop this connection's replies are read on.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Sends one command and returns its reply, error replies included as `.error` values.
    public func sendRaw(_ command: RedisCommand, timeout: TimeAmount? = nil) async throws(RedisError) -> RESPValue {
        try await pipelineRaw([command], timeout: timeout)[0]
    }

    /// Sends several commands in one write and returns their replies in order (error replies as
    /// `.error` values). The timeout covers the whole batch.
    public func pipelineRaw(_ commands: [RedisCommand], timeout: TimeAmount? = nil) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let label = commands.count == 1 ? commands[0].label : "pipeline of \(commands.count) (\(commands[0].label), …)"
        return try await Self.write(label, commands, timeout: timeout ?? commandTimeout, on: channel)
    }

    /// Sends one command; an error reply is thrown as `RedisError.server`.
    public func send(_ command: RedisCommand, timeout: TimeAmount? = nil) async throws(RedisError) -> RESPValue {
        let reply = try await sendRaw(command, timeout: timeout)
        if let message = reply.errorMessage { throw .server(message) }
        return reply
    }

    /// Closes the connection; commands still in flight fail with `connectionClosed`.
    public func close() async {
        try? await channel.close()
    }
}

extension RedisCommand {
    /// The name and key, for errors (never the values, which may be secrets).
    var label: String { description }
}
