// (Shared by QSSLRedisTests and QSSLFleetTests.) Starts and stops real redis-server processes (single nodes and a three-master cluster).

import Foundation
import NIOCore
import NIOPosix
import QSSLRedis
import Synchronization

public enum FixtureError: Error, CustomStringConvertible {
    case notInstalled(String)
    case startFailed(String)

    public var description: String {
        switch self {
        case .notInstalled(let tool):
            return "\(tool) is not installed (looked in PATH): these tests need a real Redis; "
                + "install it with `apt-get install -y redis-server redis-tools`"
        case .startFailed(let why): return "could not start Redis: \(why)"
        }
    }
}

/// Every process the fixture started, killed at exit in case a test crashed past its cleanup.
private let livePIDs = Mutex<Set<Int32>>([])
private let installExitHook: Void = {
    atexit {
        for pid in livePIDs.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()

public enum RedisFixture {
    public static func tool(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw FixtureError.notInstalled(name)
    }

    /// A loopback port that is free now, and whose cluster bus port (+10000) is free too.
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20000..<30000)
            if isFree(port) && isFree(port + 10000) { return port }
        }
        throw FixtureError.startFailed("no free port")
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Runs a tool to completion and returns its standard output (stderr merged).
    @discardableResult
    public static func run(_ name: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try tool(name))
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }
}

/// One redis-server process on 127.0.0.1:`port`, in its own temporary directory.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    public let extraArguments: [String]
    private var process: Process?

    public var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }
    public var url: String { "redis://127.0.0.1:\(port)" }

    public init(port: Int? = nil, arguments: [String] = []) async throws {
        _ = installExitHook
        _ = try RedisFixture.tool("redis-server")
        _ = try RedisFixture.tool("redis-cli")
        self.port = try port ?? RedisFixture.freePort()
        self.extraArguments = arguments
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await start()
    }

    /// Starts (or restarts) the server and waits until it answers PING.
    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try RedisFixture.tool("redis-server"))
        process.arguments =
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
                "--logfile", directory.appendingPathComponent("redis.log").path
            ] + extraArguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        livePIDs.withLock { _ = $0.insert(process.processIdentifier) }
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let answer = try? cli("PING"), answer.contains("PONG") || answer.contains("NOAUTH") { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        stop()
        throw FixtureError.startFailed("redis-server on port \(port) did not answer PING; log:\n\(log)")
    }

    /// Kills the server (SIGKILL, as a crash would) and waits for it to exit.
    public func stop() {
        guard let process else { return }
        self.process = nil
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        livePIDs.withLock { _ = $0.remove(process.processIdentifier) }
    }

    /// Stops the server and removes its directory.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs redis-cli against this server.
    @discardableResult
    public func cli(_ arguments: String...) throws -> String {
        try RedisFixture.run("redis-cli", ["-h", "127.0.0.1", "-p", "\(port)"] + arguments)
    }

    deinit { destroy() }
}

/// Runs `body` with a fresh server, which is killed afterwards even if `body` throws.
public func withRedisServer<T>(arguments: [String] = [], _ body: (RedisServer) async throws -> T) async throws -> T {
    let server = try await RedisServer(arguments: arguments)
    defer { server.destroy() }
    return try await body(server)
}

/// Three cluster-enabled masters joined with `redis-cli --cluster create`.
public final class RedisTestCluster: @unchecked Sendable {
    public let nodes: [RedisServer]

    public init() async throws {
        var nodes: [RedisServer] = []
        do {
            for _ in 0..<3 {
                let port = try RedisFixture.freePort()
                // A relative config file lands in the server's own --dir.
                nodes.append(
                    try await RedisServer(
                        port: port,
                        arguments: [
                            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"
                        ]))
            }
            self.nodes = nodes
            let output = try RedisFixture.run(
                "redis-cli",
                ["--cluster", "create"]
                    + nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "0", "--cluster-yes"])
            guard output.contains("[OK] All 16384 slots covered") else {
                throw FixtureError.startFailed("redis-cli --cluster create failed:\n\(output)")
            }
            try await waitUntilConsistent()
        } catch {
            for node in nodes { node.destroy() }
            throw error
        }
    }

    public var url: String { "redis+cluster://" + nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// Waits until every node reports cluster_state:ok and knows all three masters' slots.
    public func waitUntilConsistent() async throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let ok = try nodes.allSatisfy { node in
                let info = try node.cli("CLUSTER", "INFO")
                return info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
                    && info.contains("cluster_slots_assigned:16384")
            }
            if ok { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError.startFailed("the cluster did not become consistent")
    }

    /// The node's cluster ID.
    public func id(of node: RedisServer) throws -> String {
        try node.cli("CLUSTER", "MYID").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func node(port: Int) -> RedisServer? { nodes.first { $0.port == port } }

    public func destroy() { for node in nodes { node.destroy() } }
}

/// Runs `body` with a fresh three-master cluster, which is killed afterwards even if `body` throws.
public func withRedisCluster<T>(_ body: (RedisTestCluster) async throws -> T) async throws -> T {
    let cluster = try await RedisTestCluster()
    defer { cluster.destroy() }
    return try await body(cluster)
}

/// Measures how long `body` takes, in seconds.
public func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try await body()
    let elapsed = ContinuousClock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

extension String {
    public var bytes: [UInt8] { Array(utf8) }
}

/// The error that `body` throws, or `nil` if it succeeds.
public func failure<T>(_ body: () async throws(RedisError) -> T) async -> RedisError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}
