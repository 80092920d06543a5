// What the session cache and the ticket keys share: the Redis client, the fleet key, the clock,
// Redis's health and where events go.

import Logging
import NIOCore
import NIOPosix
import QSSL
import QSSLRedis
import Synchronization

/// Something that happened in the fleet store, for logs and metrics. `kind` is a stable label
/// (`qssl_fleet_events_total{event=kind}`); `message` is for a log line.
public struct FleetEvent: Sendable, CustomStringConvertible {
    public enum Level: Sendable { case info, warning }
    public let kind: String
    public let message: String
    public let level: Level
    /// Whether the event is worth a log line on its own (a change of state, a hostile value) or
    /// only a count (one lookup's outcome).
    public let logWorthy: Bool

    public init(kind: String, message: String, level: Level = .info, logWorthy: Bool = true) {
        self.kind = kind
        self.message = message
        self.level = level
        self.logWorthy = logWorthy
    }

    public var description: String { "\(kind): \(message)" }
}

/// The limits and timings of a fleet store.
public struct FleetSettings: Sendable {
    /// How long a handshake waits for the session-ID look-up before it goes on with a full
    /// handshake (default 50 ms).
    public var lookupTimeout: Duration = .milliseconds(50)
    /// Look-ups waiting on Redis at once; beyond, a look-up is a miss at once (default 1024).
    public var maximumPendingLookups = 1024
    /// Writes (SET, DEL) waiting on Redis at once; beyond, a write is dropped (default 4096).
    public var maximumPendingWrites = 4096
    /// Session-ID entries one node writes per second at most (default 2000); beyond, a full
    /// handshake's session is not shared (counted as dropped). With sessions of at most an hour,
    /// this bounds what one node can make Redis hold.
    public var maximumSessionWritesPerSecond = 2000
    /// The largest sealed session value read or written (default 64 KiB): a longer value in Redis
    /// is refused unread.
    public var maximumValueBytes = 64 << 10
    /// The Redis client's command and connect timeouts (default 1 s each): a late reply closes
    /// its connection. Look-ups never wait this long (`lookupTimeout`).
    public var redisCommandTimeout: Duration = .seconds(1)
    public var redisConnectTimeout: Duration = .seconds(1)
    /// The longest reconnection backoff to a Redis node (default 2 s).
    public var redisMaximumBackoff: Duration = .seconds(2)

    public init() {}
}

/// One Redis and one fleet key, shared by every listener's session cache and ticket keys.
public final class FleetStore: Sendable {
    public let redis: RedisClient
    public let key: FleetKey
    public let settings: FleetSettings
    public let clock: any WallClock
    let group: any EventLoopGroup
    private let onEvent: @Sendable (FleetEvent) -> Void
    /// Whether the last Redis operation failed (for logging the transitions only).
    private let redisDown = Atomic<Bool>(false)
    private let ownsClient: Bool

    /// A store on an existing client (tests; the caller shuts the client down).
    public init(
        redis: RedisClient, key: FleetKey, settings: FleetSettings = FleetSettings(), clock: any WallClock = SystemClock(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onEvent: @escaping @Sendable (FleetEvent) -> Void = { _ in }
    ) {
        self.redis = redis
        self.key = key
        self.settings = settings
        self.clock = clock
        self.group = group
        self.onEvent = onEvent
        ownsClient = false
    }

    /// A store with its own client for `url` (`redis://`, `rediss://`, `redis+cluster://`).
    public init(
        url: String, key: FleetKey, credentials: RedisCredentials? = nil, tlsHandlerFactory: TLSHandlerFactory? = nil,
        settings: FleetSettings = FleetSettings(), clock: any WallClock = SystemClock(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "qssl.fleet"),
        onEvent: @escaping @Sendable (FleetEvent) -> Void = { _ in }
    ) throws(FleetError) {
        var configuration: RedisConfiguration
        do { configuration = try RedisConfiguration(url: url) } catch { throw .redis("\(error)") }
        if let credentials { configuration.credentials = credentials }
        configuration.tlsHandlerFactory = tlsHandlerFactory
        configuration.commandTimeout = TimeAmount(settings.redisCommandTimeout)
        configuration.connectTimeout = TimeAmount(settings.redisConnectTimeout)
        configuration.reconnectBackoff = .init(initial: .milliseconds(50), maximum: TimeAmount(settings.redisMaximumBackoff))
        configuration.clientName = "qssl-fleet"
        // A sealed session is at most `maximumValueBytes`; anything much longer is hostile.
        configuration.maximumReplySize = max(settings.maximumValueBytes * 2 + 4096, 64 << 10)
        do { redis = try RedisClient(configuration: configuration, eventLoopGroup: group, logger: logger) } catch { throw .redis("\(error)") }
        self.key = key
        self.settings = settings
        self.clock = clock
        self.group = group
        self.onEvent = onEvent
        ownsClient = true
    }

    /// Closes the Redis connections (when the store made its client).
    public func shutdown() async {
        if ownsClient { await redis.shutdown() }
    }

    func emit(_ event: FleetEvent) { onEvent(event) }

    /// Records a Redis operation's outcome; a change between up and down is an event.
    func redisSucceeded() {
        if redisDown.exchange(false, ordering: .relaxed) {
            emit(FleetEvent(kind: "redis_recovered", message: "Redis is reachable again; sessions and ticket keys are shared again"))
        }
    }

    func redisFailed(_ error: any Error, during what: String) {
        if !redisDown.exchange(true, ordering: .relaxed) {
            emit(
                FleetEvent(
                    kind: "redis_down", message: "Redis failed during \(what) (\(error)); full handshakes go on and the last ticket keys are kept",
                    level: .warning))
        }
    }

    /// Whether the last Redis operation failed.
    public var isRedisDown: Bool { redisDown.load(ordering: .relaxed) }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// A counter that admits at most `limit` holders at once.
final class Admission: Sendable {
    private let count = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func tryEnter() -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { count.wrappingSubtract(1, ordering: .relaxed) }
    var current: Int { count.load(ordering: .relaxed) }
}
