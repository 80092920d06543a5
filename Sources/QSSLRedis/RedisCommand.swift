// Commands (arrays of byte strings) and the errors of this module.

/// Something that can be a command argument: strings (UTF-8), byte arrays and integers.
public protocol RedisArgumentConvertible: Sendable {
    var redisArgument: [UInt8] { get }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: [UInt8] { self }
}

extension Int: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Int64: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

/// A command: its name and arguments, each a byte string.
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    public var arguments: [[UInt8]]
    /// The key that routes this command in Redis Cluster, if it has one.
    public var key: [UInt8]?

    /// A command from byte strings. `key` defaults to the first argument after the name, except
    /// for commands known to have no key (PING, INFO, CLUSTER, …).
    public init(_ arguments: [[UInt8]], key: [UInt8]? = nil) {
        self.arguments = arguments
        self.key = key ?? Self.defaultKey(arguments)
    }

    /// A command from strings, byte arrays and integers: `RedisCommand("SET", key, value)`.
    public init(_ arguments: any RedisArgumentConvertible..., key: [UInt8]? = nil) {
        self.init(arguments.map(\.redisArgument), key: key)
    }

    /// The upper-cased command name.
    public var name: String {
        String(decoding: arguments.first ?? [], as: UTF8.self).uppercased()
    }

    public var description: String {
        // Values may be secrets: show the name and the key only.
        let key = self.key.map { " " + String(decoding: $0.prefix(64), as: UTF8.self) } ?? ""
        return "\(name)\(key)"
    }

    private static let keyless: Set<String> = [
        "PING", "ECHO", "INFO", "CLUSTER", "ASKING", "READONLY", "READWRITE", "HELLO", "AUTH", "SELECT",
        "CLIENT", "CONFIG", "DBSIZE", "FLUSHALL", "FLUSHDB", "ACL", "COMMAND", "TIME", "SCRIPT", "FUNCTION",
        "MULTI", "EXEC", "DISCARD", "WAIT", "SAVE", "BGSAVE", "LASTSAVE", "DEBUG", "MEMORY", "LATENCY",
        "SLOWLOG", "MONITOR", "QUIT", "RESET", "ROLE", "SCAN", "RANDOMKEY", "SWAPDB", "PUBLISH",
        "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "EVAL", "EVALSHA", "FCALL", "SHUTDOWN"
    ]

    static func defaultKey(_ arguments: [[UInt8]]) -> [UInt8]? {
        guard arguments.count >= 2 else { return nil }
        let name = String(decoding: arguments[0], as: UTF8.self).uppercased()
        return keyless.contains(name) ? nil : arguments[1]
    }
}

/// A host and TCP port of a Redis server.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 6379) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Whether `host` can be a host name or an IP address literal: 1–253 characters of letters,
    /// digits, `.`, `-`, `_`, `:` and `%` (an IPv6 zone). A cluster node's reply (MOVED, ASK, the
    /// slot map) names the hosts this client connects to and sends its credentials to; one
    /// that is not even a host name (control characters, spaces, a megabyte) is refused.
    static func isPlausibleHost(_ host: some StringProtocol) -> Bool {
        let utf8 = host.utf8
        guard !utf8.isEmpty, utf8.count <= 253 else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"): true
            default: false
            }
        }
    }
}

/// Every error that this module throws.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server answered with an error reply (`-ERR …`, `-WRONGTYPE …`).
    case server(String)
    /// The server sent bytes that are not valid RESP, or a reply beyond the configured limits.
    case protocolViolation(RESPDecodingError)
    /// A reply of a type that the command does not return.
    case unexpectedReply(command: String, reply: String)
    /// The command got no reply within its timeout; the connection has been closed.
    case timeout(command: String, milliseconds: Int64)
    /// The connection was closed (by either side) before the reply arrived.
    case connectionClosed(String)
    /// No connection to the node could be made (or it failed recently and is backing off).
    case unavailable(endpoint: String, reason: String)
    /// The server refused the credentials.
    case authenticationFailed(String)
    /// A Redis URL that cannot be used, with the reason.
    case invalidURL(url: String, reason: String)
    /// A configuration value that cannot be used.
    case invalidConfiguration(String)
    /// A credentials file that cannot be used (wrong type, permissions, owner, size).
    case credentialsFile(path: String, reason: String)
    /// More than the allowed number of MOVED/ASK redirections for one command.
    case tooManyRedirections(command: String, limit: Int)
    /// The cluster's slot map could not be loaded, or a slot has no master.
    case clusterUnavailable(String)
    /// Keys of one command that hash to different slots in cluster mode.
    case crossSlot(command: String)
    /// The client has been shut down.
    case shutDown
    /// The calling task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .server(let message): return "Redis error reply: \(message)"
        case .protocolViolation(let error): return "Redis protocol violation: \(error)"
        case .unexpectedReply(let command, let reply): return "unexpected reply to \(command): \(reply.prefix(200))"
        case .timeout(let command, let ms): return "Redis command \(command) timed out after \(ms) ms"
        case .connectionClosed(let why): return "Redis connection closed: \(why)"
        case .unavailable(let endpoint, let reason): return "Redis unavailable at \(endpoint): \(reason)"
        case .authenticationFailed(let message): return "Redis authentication failed: \(message)"
        case .invalidURL(let url, let reason): return "invalid Redis URL '\(url)': \(reason)"
        case .invalidConfiguration(let reason): return "invalid Redis configuration: \(reason)"
        case .credentialsFile(let path, let reason): return "unusable Redis credentials file \(path): \(reason)"
        case .tooManyRedirections(let command, let limit): return "\(command): more than \(limit) cluster redirections"
        case .clusterUnavailable(let reason): return "Redis Cluster unavailable: \(reason)"
        case .crossSlot(let command): return "\(command): keys hash to different cluster slots"
        case .shutDown: return "the Redis client has been shut down"
        case .cancelled: return "the Redis operation was cancelled"
        }
    }

    /// Maps any error to a `RedisError`.
    static func from(_ error: any Error, endpoint: RedisEndpoint? = nil) -> RedisError {
        switch error {
        case let e as RedisError: return e
        case let e as RESPDecodingError: return .protocolViolation(e)
        case is CancellationError: return .cancelled
        default:
            if let endpoint { return .unavailable(endpoint: endpoint.description, reason: "\(error)") }
            return .connectionClosed("\(error)")
        }
    }

    /// Whether the error says that the connection or node failed (as opposed to a reply).
    var isConnectionFailure: Bool {
        switch self {
        case .timeout, .connectionClosed, .unavailable, .protocolViolation: return true
        default: return false
        }
    }
}
