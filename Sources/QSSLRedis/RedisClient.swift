// The client: one node or a cluster behind one API.

import Logging
import NIOCore
import NIOPosix

/// What `RedisClient.getIfConnected` learns.
public enum RedisGetOutcome: Sendable {
    /// The value, or nil when the key does not exist.
    case value([UInt8]?)
    case failed(RedisError)
    /// No reply within `answerWithin`.
    case late
}

/// A Redis client for one server (`redis://`) or a Redis Cluster (`redis+cluster://`), with a
/// pool of pipelined connections per node, reconnection with backoff, and a deadline on every
/// operation: at most the connect timeout plus the command timeout per attempt (times the
/// redirections followed in a cluster). Every error thrown is a `RedisError`; error replies
/// are thrown as `RedisError.server`.
public final class RedisClient: Sendable {
    private enum Backend: Sendable {
        case standalone(RedisNodePool)
        case cluster(RedisClusterRouter)
    }

    public let configuration: RedisConfiguration
    private let backend: Backend

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "qssl.redis")
    ) throws(RedisError) {
        try configuration.validate()
        self.configuration = configuration
        switch configuration.mode {
        case .standalone(let endpoint):
            backend = .standalone(
                RedisNodePool(
                    endpoint: endpoint, configuration: configuration,
                    group: eventLoopGroup, logger: logger))
        case .cluster(let seeds):
            backend = .cluster(
                RedisClusterRouter(
                    seeds: seeds, configuration: configuration,
                    group: eventLoopGroup, logger: logger))
        }
    }

    /// A client for `url` (see `RedisConfiguration.init(url:)`); `credentials` (e.g. from
    /// `RedisCredentials.fromFile`) replace any in the URL.
    public convenience init(
        url: String, credentials: RedisCredentials? = nil,
        tlsHandlerFactory: TLSHandlerFactory? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "qssl.redis")
    ) throws(RedisError) {
        var configuration = try RedisConfiguration(url: url)
        if let credentials { configuration.credentials = credentials }
        configuration.tlsHandlerFactory = tlsHandlerFactory
        try self.init(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// Sends a command and returns its reply; an error reply is thrown as `RedisError.server`.
    /// In a cluster it goes to the master of `command.key`.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        let reply = try await sendRaw(command)
        if let message = reply.errorMessage { throw .server(message) }
        return reply
    }

    /// `send(RedisCommand(arguments…))`.
    public func send(_ arguments: any RedisArgumentConvertible...) async throws(RedisError) -> RESPValue {
        try await send(RedisCommand(arguments.map(\.redisArgument)))
    }

    /// Sends a command and returns its reply, error replies included as `.error` values.
    public func sendRaw(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        guard !command.arguments.isEmpty else { throw .invalidConfiguration("an empty command") }
        switch backend {
        case .standalone(let pool):
            return try await pool.connection().sendRaw(command)
        case .cluster(let router):
            return try await router.execute(command)
        }
    }

    /// Sends commands pipelined on one connection and returns their replies in order (error
    /// replies as `.error` values). In a cluster every command must hash to one slot.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        switch backend {
        case .standalone(let pool):
            return try await pool.connection().pipelineRaw(commands)
        case .cluster(let router):
            let slots = Set(commands.compactMap { $0.key.map(RedisClusterSlot.slot(for:)) })
            guard slots.count <= 1 else { throw .crossSlot(command: "pipeline") }
            guard let key = commands.compactMap(\.key).first else {
                throw .invalidConfiguration("a cluster pipeline needs a command with a key")
            }
            let master = try await router.master(forKey: key)
            // A redirection is answered per command; such replies are retried one by one.
            var replies = try await router.pool(for: master).connection().pipelineRaw(commands)
            for (index, reply) in replies.enumerated() {
                if let message = reply.errorMessage, message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
                    replies[index] = try await router.execute(commands[index])
                }
            }
            return replies
        }
    }

    // MARK: Commands

    /// PING; returns the server's answer ("PONG").
    public func ping() async throws(RedisError) -> String {
        let reply = try await send(RedisCommand("PING"))
        guard let text = reply.string else { throw unexpected("PING", reply) }
        return text
    }

    /// GET: the value, or `nil` if the key does not exist.
    public func get(_ key: [UInt8]) async throws(RedisError) -> [UInt8]? {
        let reply = try await send(RedisCommand("GET", key))
        if reply.isNull { return nil }
        guard let bytes = reply.bytes else { throw unexpected("GET", reply) }
        return bytes
    }

    /// GET without a task or a future, on an open connection (one single-node Redis): false, and
    /// `completion` is never called, when none is open now or in a cluster (the caller uses
    /// `get` instead). Otherwise `completion` runs exactly once, on the connection's event loop
    /// (possibly before this returns): with the value, a failure, or `.late` when
    /// `answerWithin` passes first (the connection stays open; see `RedisConnection.send(encoded:…)`).
    /// A connection whose replies are read on `loop` is preferred, so that a caller on that loop
    /// gets its answer there, without a thread hop.
    /// `settled` runs once when the GET has left the connection's pipeline (see `send(encoded:…)`).
    public func getIfConnected(
        _ key: [UInt8], preferring loop: (any EventLoop)?, answerWithin: TimeAmount?,
        settled: (@Sendable () -> Void)? = nil,
        completion: @escaping @Sendable (RedisGetOutcome) -> Void
    ) -> Bool {
        guard case .standalone(let pool) = backend, let connection = pool.readyConnection(preferring: loop) else { return false }
        var bytes = connection.allocator.buffer(capacity: 24 + key.count)
        RESPEncoder.encode(RedisCommand([Self.getName, key], key: key), into: &bytes)
        connection.send(encoded: bytes, replies: 1, label: "GET", answerWithin: answerWithin, settled: settled) { outcome in
            switch outcome {
            case .late: completion(.late)
            case .failed(let error): completion(.failed(error))
            case .replies(let replies):
                let reply = replies[0]
                if let message = reply.errorMessage { return completion(.failed(.server(message))) }
                if reply.isNull { return completion(.value(nil)) }
                guard let value = reply.bytes else { return completion(.failed(self.unexpected("GET", reply))) }
                completion(.value(value))
            }
        }
        return true
    }

    private static let getName = Array("GET".utf8)

    /// SET with an optional expiry in milliseconds (PX) and only-if-absent (NX). Returns whether
    /// the value was set (false when NX found the key).
    @discardableResult
    public func set(
        _ key: [UInt8], _ value: [UInt8], px milliseconds: Int? = nil,
        nx: Bool = false
    ) async throws(RedisError) -> Bool {
        var arguments: [[UInt8]] = [Array("SET".utf8), key, value]
        if let milliseconds {
            guard milliseconds > 0 else { throw .invalidConfiguration("SET PX needs a positive expiry, not \(milliseconds)") }
            arguments += [Array("PX".utf8), milliseconds.redisArgument]
        }
        if nx { arguments.append(Array("NX".utf8)) }
        let reply = try await send(RedisCommand(arguments))
        if reply.isNull { return false }
        guard reply.string == "OK" else { throw unexpected("SET", reply) }
        return true
    }

    /// DEL: the number of keys removed. In a cluster the keys are grouped by slot.
    public func del(_ keys: [UInt8]...) async throws(RedisError) -> Int {
        try await del(keys)
    }

    public func del(_ keys: [[UInt8]]) async throws(RedisError) -> Int {
        guard !keys.isEmpty else { return 0 }
        var total = 0
        for group in groupedBySlot(keys) {
            let reply = try await send(RedisCommand([Array("DEL".utf8)] + group.map { keys[$0] }, key: keys[group[0]]))
            guard let count = reply.int, count >= 0, count <= Int64(group.count) else { throw unexpected("DEL", reply) }
            total += Int(count)
        }
        return total
    }

    /// PEXPIRE: whether the timeout was set (false if the key does not exist).
    public func pexpire(_ key: [UInt8], milliseconds: Int) async throws(RedisError) -> Bool {
        let reply = try await send(RedisCommand("PEXPIRE", key, milliseconds))
        guard let result = reply.int else { throw unexpected("PEXPIRE", reply) }
        return result == 1
    }

    /// PTTL: milliseconds to live, -1 without expiry, -2 if the key does not exist.
    public func pttl(_ key: [UInt8]) async throws(RedisError) -> Int64 {
        let reply = try await send(RedisCommand("PTTL", key))
        guard let result = reply.int else { throw unexpected("PTTL", reply) }
        return result
    }

    /// INCR: the value after the increment.
    public func incr(_ key: [UInt8]) async throws(RedisError) -> Int64 {
        let reply = try await send(RedisCommand("INCR", key))
        guard case .integer(let value) = reply else { throw unexpected("INCR", reply) }
        return value
    }

    /// MGET: the values in the order of `keys`. In a cluster the keys are split per slot.
    public func mget(_ keys: [[UInt8]]) async throws(RedisError) -> [[UInt8]?] {
        guard !keys.isEmpty else { return [] }
        var values = [[UInt8]?](repeating: nil, count: keys.count)
        for group in groupedBySlot(keys) {
            let reply = try await send(RedisCommand([Array("MGET".utf8)] + group.map { keys[$0] }, key: keys[group[0]]))
            guard let elements = reply.elements, elements.count == group.count else { throw unexpected("MGET", reply) }
            for (index, element) in zip(group, elements) {
                if element.isNull { continue }
                guard let bytes = element.bytes else { throw unexpected("MGET", reply) }
                values[index] = bytes
            }
        }
        return values
    }

    // MARK: Cluster introspection and lifecycle

    /// In a cluster, the master currently believed to serve `key`; `nil` for one server.
    public func node(forKey key: [UInt8]) async throws(RedisError) -> RedisEndpoint? {
        guard case .cluster(let router) = backend else { return nil }
        return try await router.master(forKey: key)
    }

    /// Redirections followed and slot map refreshes so far (zero for one server).
    public var statistics: RedisClientStatistics {
        guard case .cluster(let router) = backend else {
            return RedisClientStatistics(movedRedirections: 0, askRedirections: 0, slotMapRefreshes: 0)
        }
        return router.statistics
    }

    /// Closes every connection; later operations fail with `RedisError.shutDown`.
    public func shutdown() async {
        switch backend {
        case .standalone(let pool): await pool.shutdown()
        case .cluster(let router): await router.shutdown()
        }
    }

    /// Indices of `keys` grouped by slot (one group for a single server), in first-seen order.
    private func groupedBySlot(_ keys: [[UInt8]]) -> [[Int]] {
        guard case .cluster = backend else { return [Array(keys.indices)] }
        var order: [Int] = []
        var groups: [Int: [Int]] = [:]
        for (index, key) in keys.enumerated() {
            let slot = RedisClusterSlot.slot(for: key)
            if groups[slot] == nil { order.append(slot) }
            groups[slot, default: []].append(index)
        }
        return order.map { groups[$0]! }
    }

    private func unexpected(_ command: String, _ reply: RESPValue) -> RedisError {
        .unexpectedReply(command: command, reply: reply.description)
    }
}
