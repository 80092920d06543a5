// The client configuration and its parsing from redis:// URLs.

import NIOCore

/// Makes the TLS handlers for a connection to `host` (the name to verify), placed first in the
/// channel pipeline. Q-SSL passes its own TLS client here, so this module does not depend on it.
public typealias TLSHandlerFactory = @Sendable (_ host: String) throws -> [any ChannelHandler]

/// Which protocol version to negotiate.
public enum RESPVersion: Int, Sendable, Hashable {
    /// RESP2: no HELLO, AUTH and SELECT only.
    case resp2 = 2
    /// RESP3 with HELLO 3, falling back to RESP2 if the server refuses HELLO.
    case resp3 = 3
}

/// Username and password for AUTH / HELLO … AUTH. The description never shows the password.
public struct RedisCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The ACL user; `nil` for the `default` user (password-only AUTH).
    public var username: String?
    public var password: String

    public init(username: String? = nil, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "RedisCredentials(username: \(username ?? "default"), password: <redacted>)" }
}

/// Everything a `RedisClient` needs; build it directly or from a URL with `init(url:)`.
public struct RedisConfiguration: Sendable {
    /// One server, or the seed nodes of a Redis Cluster.
    public enum Mode: Sendable, Hashable {
        case standalone(RedisEndpoint)
        case cluster(seeds: [RedisEndpoint])
    }

    /// Exponential backoff with jitter between failed connection attempts to a node.
    public struct Backoff: Sendable, Hashable {
        public var initial: TimeAmount
        public var maximum: TimeAmount

        public init(initial: TimeAmount = .milliseconds(100), maximum: TimeAmount = .seconds(5)) {
            self.initial = initial
            self.maximum = maximum
        }

        /// The delay after `failures` consecutive failures: `initial · 2^(failures-1)`, capped at
        /// `maximum`, then scaled by a random factor in [0.5, 1].
        public func delay(afterFailures failures: Int) -> TimeAmount {
            let exponent = min(max(failures - 1, 0), 30)
            let base = min(max(initial.nanoseconds, 1) << Int64(exponent), max(maximum.nanoseconds, 1))
            return .nanoseconds(Int64.random(in: (base / 2)...base))
        }
    }

    public var mode: Mode
    /// Connect with TLS (`rediss://`); needs `tlsHandlerFactory`.
    public var useTLS: Bool = false
    public var tlsHandlerFactory: TLSHandlerFactory?
    public var credentials: RedisCredentials?
    /// The database (SELECT); must be 0 in cluster mode.
    public var database: Int = 0
    public var protocolVersion: RESPVersion = .resp3
    /// Sent with HELLO / CLIENT SETNAME when set.
    public var clientName: String?
    /// The limit for establishing TCP (and the handshake commands each have `commandTimeout`).
    public var connectTimeout: TimeAmount = .seconds(2)
    /// The deadline for each command's reply; a late reply closes its connection.
    public var commandTimeout: TimeAmount = .seconds(2)
    /// Connections kept per node; commands are pipelined on the least busy one.
    public var maximumConnectionsPerNode: Int = 4
    public var maximumReplySize: Int = 1 << 20
    public var maximumNestingDepth: Int = 32
    public var reconnectBackoff = Backoff()
    /// The most MOVED/ASK redirections followed for one command.
    public var maximumRedirections: Int = 5
    /// The least time between two slot map refreshes triggered by errors or MOVED.
    public var minimumSlotRefreshInterval: TimeAmount = .seconds(1)

    public init(mode: Mode) {
        self.mode = mode
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]`, `rediss://…`,
    /// `redis+cluster://host1:port1,host2:port2/` and `rediss+cluster://…`. IPv6 hosts go in
    /// brackets; user and password are percent-decoded; the port defaults to 6379.
    public init(url: String) throws(RedisError) {
        func fail(_ reason: String) -> RedisError { .invalidURL(url: Self.redacted(url), reason: reason) }
        guard let schemeEnd = url.firstRange(of: "://") else { throw fail("missing scheme (redis://, rediss://, redis+cluster://)") }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let cluster: Bool
        switch scheme {
        case "redis": (useTLS, cluster) = (false, false)
        case "rediss": (useTLS, cluster) = (true, false)
        case "redis+cluster": (useTLS, cluster) = (false, true)
        case "rediss+cluster": (useTLS, cluster) = (true, true)
        default: throw fail("unsupported scheme '\(scheme)'")
        }
        var rest = url[schemeEnd.upperBound...]
        if rest.contains("?") || rest.contains("#") { throw fail("query and fragment are not supported") }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let user: Substring
            var password: Substring?
            if let colon = userinfo.firstIndex(of: ":") {
                user = userinfo[..<colon]
                password = userinfo[userinfo.index(after: colon)...]
            } else {
                user = userinfo
            }
            guard let decodedUser = Self.percentDecode(user), let decodedPassword = Self.percentDecode(password ?? "") else {
                throw fail("bad percent-encoding in the user information")
            }
            guard password != nil else { throw fail("a user without a password (use user:password@)") }
            credentials = RedisCredentials(username: decodedUser.isEmpty ? nil : decodedUser, password: decodedPassword)
        }
        let hosts = try rest.split(separator: ",", omittingEmptySubsequences: false).map { (part) throws(RedisError) in
            do throws(RedisError) { return try Self.parseEndpoint(part) } catch {
                if case .invalidConfiguration(let reason) = error { throw fail(reason) }
                throw error
            }
        }
        if cluster {
            mode = .cluster(seeds: hosts)
        } else {
            guard hosts.count == 1 else { throw fail("several hosts need redis+cluster:// or rediss+cluster://") }
            mode = .standalone(hosts[0])
        }
        if !path.isEmpty {
            guard path.allSatisfy(\.isASCII), let db = Int(path), db >= 0, db <= 1_000_000 else {
                throw fail("the path must be a database number, not '\(path)'")
            }
            if cluster && db != 0 { throw fail("Redis Cluster has only database 0") }
            database = db
        }
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    static func parseEndpoint(_ text: Substring) throws(RedisError) -> RedisEndpoint {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidConfiguration("unclosed '[' in '\(text)'") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidConfiguration("junk after ']' in '\(text)'") }
                portText = after.dropFirst()
            }
            // A zone ID follows "%25" (RFC 6874), or a bare "%".
            var zone: Substring = ""
            if let percent = host.firstIndex(of: "%") {
                zone = host[host.index(after: percent)...]
                if zone.hasPrefix("25") && zone.count > 2 { zone = zone.dropFirst(2) }
                host = host[..<percent]
            }
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }),
                zone.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
            else {
                throw .invalidConfiguration("'\(host)' in brackets is not an IPv6 address")
            }
            if !zone.isEmpty { host = Substring(host + "%" + zone) }
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw .invalidConfiguration("IPv6 addresses must be in brackets: '\(text)'") }
            host = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }) else {
                throw .invalidConfiguration("invalid host name '\(host)'")
            }
        }
        guard !host.isEmpty else { throw .invalidConfiguration("missing host in '\(text)'") }
        var port = 6379
        if let portText {
            guard portText.allSatisfy(\.isASCII), let p = Int(portText), (1...65535).contains(p) else {
                throw .invalidConfiguration("invalid port '\(portText)'")
            }
            port = p
        }
        return RedisEndpoint(host: String(host), port: port)
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The URL with any password replaced, for error messages.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        // Everything between the scheme and the last "@" is user information: a password may
        // hold "/", ":" or "@" itself, so none of them is trusted to end it.
        let afterScheme = url[schemeEnd.upperBound...]
        guard let at = afterScheme.lastIndex(of: "@") else { return url }
        let user = afterScheme[..<at]
        guard let colon = user.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":<redacted>" + String(url[at...])
    }

    /// Checks the values that cannot work, before any connection is made.
    func validate() throws(RedisError) {
        if useTLS && tlsHandlerFactory == nil {
            throw .invalidConfiguration("TLS (rediss://) needs a tlsHandlerFactory")
        }
        if case .cluster(let seeds) = mode {
            if seeds.isEmpty { throw .invalidConfiguration("a cluster needs at least one seed node") }
            if database != 0 { throw .invalidConfiguration("Redis Cluster has only database 0") }
        }
        if maximumConnectionsPerNode < 1 { throw .invalidConfiguration("maximumConnectionsPerNode must be at least 1") }
        if maximumRedirections < 0 { throw .invalidConfiguration("maximumRedirections must not be negative") }
        if connectTimeout.nanoseconds <= 0 || commandTimeout.nanoseconds <= 0 {
            throw .invalidConfiguration("timeouts must be positive")
        }
    }
}
