// A pool of pipelined connections to one node, with reconnection backoff.

import Logging
import NIOCore
import Synchronization

/// Up to `maximumConnectionsPerNode` connections to one node. Commands go to the least busy
/// open connection (each connection pipelines, so no command waits for a free connection); a
/// new connection is opened in the background while all are busy and the pool is not full.
///
/// When a connection attempt fails, the node is "down" for a backoff delay (exponential with
/// jitter, capped): during it commands fail at once with `RedisError.unavailable` instead of
/// waiting, and the first command after it tries again — so the pool recovers by itself.
actor RedisNodePool {
    nonisolated let endpoint: RedisEndpoint
    private let configuration: RedisConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private var connections: [RedisConnection] = [] {
        didSet { ready.withLock { $0 = connections } }
    }
    /// The open connections, readable without entering the actor (`readyConnection`).
    private nonisolated let ready = Mutex<[RedisConnection]>([])
    private var connecting: Task<RedisConnection, any Error>?
    private var consecutiveFailures = 0
    private var retryAfter = ContinuousClock.now
    private var lastError: RedisError?
    private var isShutDown = false

    init(endpoint: RedisEndpoint, configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.endpoint = endpoint
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// A connection to send on: an open one, or a new one if there is none (bounded by the
    /// connect timeout and the handshake's command timeouts).
    func connection() async throws(RedisError) -> RedisConnection {
        guard !isShutDown else { throw .shutDown }
        connections.removeAll { !$0.isActive }
        if let best = connections.min(by: { $0.inFlight < $1.inFlight }) {
            if best.inFlight > 0, connections.count < configuration.maximumConnectionsPerNode, connecting == nil,
                ContinuousClock.now >= retryAfter
            {
                _ = startConnecting()  // grow in the background; use what is open meanwhile
            }
            return best
        }
        let attempt: Task<RedisConnection, any Error>
        if let connecting {
            attempt = connecting
        } else {
            guard ContinuousClock.now >= retryAfter else {
                let reason = lastError.map { "\($0)" } ?? "connection failed"
                throw .unavailable(endpoint: endpoint.description, reason: "\(reason) (backing off before retrying)")
            }
            attempt = startConnecting()
        }
        do {
            return try await attempt.value
        } catch {
            throw RedisError.from(error, endpoint: endpoint)
        }
    }

    /// An open connection to send on without entering the actor, or nil when none is open
    /// (then `connection()` connects). One whose replies are read on `loop` is preferred (no
    /// thread hop for a caller on that loop); when there is none and the pool has room, one is
    /// opened on `loop` in the background for the next caller.
    nonisolated func readyConnection(preferring loop: (any EventLoop)?) -> RedisConnection? {
        let open = ready.withLock { $0 }
        if let loop, let local = open.first(where: { $0.isActive && $0.eventLoop === loop }) { return local }
        let best = open.filter(\.isActive).min(by: { $0.inFlight < $1.inFlight })
        if let loop, best != nil, open.count < configuration.maximumConnectionsPerNode,
            !growRequested.exchange(true, ordering: .relaxed)
        {
            Task { await self.growIfRoom(on: loop) }
        }
        return best
    }

    /// Whether a `growIfRoom` is on its way (at most one task for it at a time).
    private nonisolated let growRequested = Atomic<Bool>(false)

    private func growIfRoom(on loop: any EventLoop) {
        defer { growRequested.store(false, ordering: .relaxed) }
        connections.removeAll { !$0.isActive }
        guard !isShutDown, connecting == nil, ContinuousClock.now >= retryAfter,
            connections.count < configuration.maximumConnectionsPerNode,
            !connections.contains(where: { $0.isActive && $0.eventLoop === loop })
        else { return }
        _ = startConnecting(on: loop)
    }

    private func startConnecting(on loop: (any EventLoop)? = nil) -> Task<RedisConnection, any Error> {
        let endpoint = endpoint
        let configuration = configuration
        let logger = logger
        let group: any EventLoopGroup = loop ?? self.group
        let task = Task<RedisConnection, any Error> {
            do {
                let connection = try await RedisConnection.connect(
                    to: endpoint, configuration: configuration, eventLoopGroup: group, logger: logger)
                await self.finished(.success(connection))
                return connection
            } catch {
                await self.finished(.failure(RedisError.from(error, endpoint: endpoint)))
                throw error
            }
        }
        connecting = task
        return task
    }

    private func finished(_ result: Result<RedisConnection, RedisError>) async {
        connecting = nil
        switch result {
        case .success(let connection):
            if isShutDown {
                await connection.close()
                return
            }
            connections.append(connection)
            if consecutiveFailures > 0 {
                logger.info("Redis node reachable again", metadata: ["endpoint": "\(endpoint)"])
            }
            consecutiveFailures = 0
            lastError = nil
        case .failure(let error):
            consecutiveFailures += 1
            lastError = error
            // Whatever the cause (refused, timed out, handshake or credentials), back off.
            let delay = configuration.reconnectBackoff.delay(afterFailures: consecutiveFailures)
            retryAfter = ContinuousClock.now + .nanoseconds(delay.nanoseconds)
            logger.warning(
                "Redis connection failed",
                metadata: [
                    "endpoint": "\(endpoint)", "error": "\(error)", "failures": "\(consecutiveFailures)",
                    "retry_in_ms": "\(delay.nanoseconds / 1_000_000)"
                ])
        }
    }

    /// Closes every connection; later commands fail with `shutDown`.
    func shutdown() async {
        isShutDown = true
        let open = connections
        connections = []
        for connection in open { await connection.close() }
    }

    /// The number of open connections (for tests and metrics).
    var openConnections: Int {
        connections.filter(\.isActive).count
    }
}
