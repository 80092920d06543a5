// Parsing redis:// URLs and reading password files.

import Foundation
import Testing

@testable import QSSLRedis

@Suite struct RedisURLTests {
    @Test func standaloneURLs() throws {
        var c = try RedisConfiguration(url: "redis://localhost")
        #expect(c.mode == .standalone(RedisEndpoint(host: "localhost", port: 6379)))
        #expect(!c.useTLS && c.database == 0 && c.credentials == nil)

        c = try RedisConfiguration(url: "rediss://alice:s%3Acr%40t@cache.example.com:6380/3")
        #expect(c.mode == .standalone(RedisEndpoint(host: "cache.example.com", port: 6380)))
        #expect(c.useTLS && c.database == 3)
        #expect(c.credentials == RedisCredentials(username: "alice", password: "s:cr@t"))
        #expect(!"\(c.credentials!)".contains("s:cr@t"))

        c = try RedisConfiguration(url: "REDIS://:pw@127.0.0.1:7000/")
        #expect(c.credentials == RedisCredentials(username: nil, password: "pw"))
        #expect(c.mode == .standalone(RedisEndpoint(host: "127.0.0.1", port: 7000)))

        c = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(c.mode == .standalone(RedisEndpoint(host: "::1", port: 6390)))
        #expect(c.database == 1)
        #expect(RedisEndpoint(host: "::1", port: 6390).description == "[::1]:6390")

        c = try RedisConfiguration(url: "redis://[fe80::1%25eth0]")
        #expect(c.mode == .standalone(RedisEndpoint(host: "fe80::1%eth0", port: 6379)))
    }

    @Test func clusterURLs() throws {
        var c = try RedisConfiguration(url: "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/")
        #expect(
            c.mode
                == .cluster(seeds: [
                    RedisEndpoint(host: "10.0.0.1", port: 7000),
                    RedisEndpoint(host: "10.0.0.2", port: 7001),
                    RedisEndpoint(host: "::1", port: 7002)
                ]))
        #expect(!c.useTLS)
        c = try RedisConfiguration(url: "rediss+cluster://u:p@node1")
        #expect(c.mode == .cluster(seeds: [RedisEndpoint(host: "node1", port: 6379)]))
        #expect(c.useTLS && c.credentials?.username == "u")
    }

    @Test(arguments: [
        ("localhost:6379", "missing scheme"),
        ("http://localhost", "unsupported scheme"),
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://host:0", "invalid port"),
        ("redis://host:65536", "invalid port"),
        ("redis://host:http", "invalid port"),
        ("redis://host:-1", "invalid port"),
        ("redis://::1:6379", "IPv6 addresses must be in brackets"),
        ("redis://[::1", "unclosed"),
        ("redis://[::1]x", "junk after"),
        ("redis://[nothex]:1", "is not an IPv6"),
        ("redis://host/abc", "database number"),
        ("redis://host/-1", "database number"),
        ("redis://a:1,b:2", "several hosts"),
        ("redis+cluster://a:1,b:2/1", "only database 0"),
        ("redis+cluster://a:1,,b:2", "missing host"),
        ("redis://user@host", "without a password"),
        ("redis://u:%zz@host", "percent-encoding"),
        ("redis://host?timeout=1", "query"),
        ("redis://ho st", "invalid host")
    ])
    func invalidURLs(_ url: String, _ reason: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("accepted \(url)")
        } catch {
            guard case .invalidURL(_, let why) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(why.contains(reason), "\(url): \(why)")
        }
    }

    @Test func aPasswordHoldingSlashesColonsOrAtSignsIsRedactedWhole() {
        #expect(RedisConfiguration.redacted("redis://bob:pa/ss@host:6379/2") == "redis://bob:<redacted>@host:6379/2")
        #expect(RedisConfiguration.redacted("rediss://:a:b@c/d@host:6380") == "rediss://:<redacted>@host:6380")
        #expect(RedisConfiguration.redacted("redis://host:6379/0") == "redis://host:6379/0")
    }

    @Test func passwordsAreRedactedInErrors() {
        #expect(throws: RedisError.invalidURL(url: "redis://bob:<redacted>@host:99999", reason: "invalid port '99999'")) {
            try RedisConfiguration(url: "redis://bob:hunter2@host:99999")
        }
    }

    @Test func tlsNeedsAHandlerFactory() throws {
        #expect(throws: RedisError.self) { try RedisClient(url: "rediss://localhost") }
        let client = try RedisClient(url: "rediss://localhost", tlsHandlerFactory: { _ in [] })
        #expect(client.configuration.useTLS)
    }

    @Test func backoffIsBoundedAndJittered() {
        let backoff = RedisConfiguration.Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        for failures in 0...80 {
            let delay = backoff.delay(afterFailures: failures).nanoseconds
            let base = min(100_000_000 << Int64(min(max(failures - 1, 0), 30)), 2_000_000_000)
            #expect(delay >= base / 2 && delay <= base)
        }
    }

    // MARK: Password files

    private func file(_ contents: String, mode: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-redis-pw-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode_t(mode))
        return path
    }

    @Test func readsAPrivatePasswordFile() throws {
        let path = try file("s3cret\n", mode: 0o600)
        defer { unlink(path) }
        #expect(try RedisCredentials.fromFile(path, username: "app") == RedisCredentials(username: "app", password: "s3cret"))
        let crlf = try file("pw\r\n", mode: 0o400)
        defer { unlink(crlf) }
        #expect(try RedisCredentials.fromFile(crlf).password == "pw")
    }

    @Test func rejectsUnsafePasswordFiles() throws {
        func reason(_ path: String) -> String {
            do {
                _ = try RedisCredentials.fromFile(path)
                return "accepted"
            } catch {
                guard case .credentialsFile(_, let why) = error else { return "\(error)" }
                return why
            }
        }
        let groupReadable = try file("pw", mode: 0o640)
        let worldReadable = try file("pw", mode: 0o604)
        let empty = try file("\n", mode: 0o600)
        let large = try file(String(repeating: "x", count: 4097), mode: 0o600)
        let twoLines = try file("a\nb\n", mode: 0o600)
        defer { for path in [groupReadable, worldReadable, empty, large, twoLines] { unlink(path) } }
        #expect(reason(groupReadable).contains("chmod 600"))
        #expect(reason(worldReadable).contains("chmod 600"))
        #expect(reason(empty).contains("empty"))
        #expect(reason(large).contains("larger than 4096"))
        #expect(reason(twoLines).contains("several lines"))
        #expect(reason(FileManager.default.temporaryDirectory.path).contains("not a regular file"))
        #expect(reason("/nonexistent/qssl-redis-pw").contains("cannot open"))
        let maximal = try file(String(repeating: "y", count: 4096), mode: 0o600)
        defer { unlink(maximal) }
        #expect(try RedisCredentials.fromFile(maximal).password.count == 4096)
        if geteuid() == 0 {
            // Owned by someone else (root can give a file away).
            let foreign = try file("pw", mode: 0o600)
            defer { unlink(foreign) }
            chown(foreign, 65534, 65534)
            #expect(reason(foreign).contains("not by the current user"))
        }
    }
}
