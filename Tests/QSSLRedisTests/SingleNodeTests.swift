// Against a real redis-server: commands, pipelining, AUTH, SELECT, timeouts, restarts.

import Foundation
import NIOCore
import Testing

@testable import QSSLRedis

/// All suites that start servers run one test at a time, so that timings are not skewed by the
/// other servers' start-up on a small machine.
@Suite(.serialized) struct RedisIntegrationTests {}

func fastConfiguration(_ url: String) throws -> RedisConfiguration {
    var configuration = try RedisConfiguration(url: url)
    configuration.connectTimeout = .milliseconds(500)
    configuration.commandTimeout = .seconds(1)
    configuration.reconnectBackoff = .init(initial: .milliseconds(50), maximum: .milliseconds(400))
    configuration.minimumSlotRefreshInterval = .milliseconds(100)
    return configuration
}

extension RedisIntegrationTests {
    @Suite struct SingleNode {
        @Test func setGetDelWithPXAndNX() async throws {
            try await withRedisServer { server in
                let client = try RedisClient(configuration: try fastConfiguration(server.url))
                defer { Task { await client.shutdown() } }
                #expect(try await client.ping() == "PONG")
                #expect(try await client.get("missing".bytes) == nil)
                #expect(try await client.set("k".bytes, [0, 1, 2, 255]))
                #expect(try await client.get("k".bytes) == [0, 1, 2, 255])
                // NX: not set when the key exists, and the old value stays.
                #expect(try await client.set("k".bytes, "other".bytes, nx: true) == false)
                #expect(try await client.get("k".bytes) == [0, 1, 2, 255])
                #expect(try await client.set("n".bytes, "v".bytes, px: 150, nx: true))
                let ttl = try await client.pttl("n".bytes)
                #expect(ttl > 0 && ttl <= 150)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await client.get("n".bytes) == nil)
                #expect(try await client.set("n".bytes, "again".bytes, px: 10_000, nx: true))
                // DEL counts only existing keys.
                #expect(try await client.del("k".bytes, "n".bytes, "missing".bytes) == 2)
                #expect(try await client.get("k".bytes) == nil)
                // PEXPIRE, INCR, MGET.
                #expect(try await client.pexpire("nothing".bytes, milliseconds: 100) == false)
                #expect(try await client.incr("c".bytes) == 1)
                #expect(try await client.incr("c".bytes) == 2)
                #expect(try await client.pexpire("c".bytes, milliseconds: 60_000))
                #expect(try await client.mget(["c".bytes, "none".bytes]) == ["2".bytes, nil])
                // Error replies are thrown with the server's message.
                _ = try await client.send("RPUSH", "list", "a")
                await #expect(throws: RedisError.self) { try await client.get("list".bytes) }
                let wrongType = await failure { () async throws(RedisError) in try await client.incr("list".bytes) }
                guard case .server(let message)? = wrongType else {
                    Issue.record("\(String(describing: wrongType))")
                    return
                }
                #expect(message.hasPrefix("WRONGTYPE"))
                await #expect(throws: RedisError.self) { try await client.set("x".bytes, "y".bytes, px: 0) }
                // The generic command: RESP3 maps come back as maps.
                _ = try await client.send("HSET", "h", "f", "v")
                let all = try await client.send("HGETALL", "h")
                #expect(all == .map([RESPMapEntry(key: .bulkString("f".bytes), value: .bulkString("v".bytes))]))
                #expect(try await client.send("SISMEMBER", "nope", "x") == .integer(0))
            }
        }

        @Test func pipeliningAThousandCommands() async throws {
            try await withRedisServer { server in
                let connection = try await RedisConnection.connect(to: server.endpoint, configuration: try fastConfiguration(server.url))
                #expect(connection.protocolVersion == .resp3)
                let sets = (0..<1000).map { RedisCommand("SET", "key:\($0)", "value:\($0)") }
                let replies = try await connection.pipelineRaw(sets)
                #expect(replies.count == 1000 && replies.allSatisfy { $0 == .simpleString("OK") })
                // 1,000 commands in flight at once from concurrent tasks, on one connection.
                let values = try await withThrowingTaskGroup(of: (Int, [UInt8]?).self) { group in
                    for i in 0..<1000 {
                        group.addTask { (i, try await connection.sendRaw(RedisCommand("GET", "key:\(i)")).bytes) }
                    }
                    var values = [[UInt8]?](repeating: nil, count: 1000)
                    for try await (i, value) in group { values[i] = value }
                    return values
                }
                #expect(values.enumerated().allSatisfy { $0.element == "value:\($0.offset)".bytes })
                // And through the client's pool.
                let client = try RedisClient(configuration: try fastConfiguration(server.url))
                let gets = try await client.pipeline((0..<1000).map { RedisCommand("GET", "key:\($0)") })
                #expect(gets.enumerated().allSatisfy { $0.element.bytes == "value:\($0.offset)".bytes })
                await client.shutdown()
                await connection.close()
            }
        }

        @Test func authenticatesAnACLUserWithAPasswordFile() async throws {
            try await withRedisServer { server in
                try server.cli("ACL", "SETUSER", "qssl", "on", ">t1cket-s3cret", "~*", "+@all")
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-redis-auth-\(UUID().uuidString)").path
                try "t1cket-s3cret\n".write(toFile: path, atomically: false, encoding: .utf8)
                chmod(path, 0o600)
                defer { unlink(path) }
                try server.cli("ACL", "SETUSER", "default", "off")
                let credentials = try RedisCredentials.fromFile(path, username: "qssl")
                for version in [RESPVersion.resp3, .resp2] {
                    var configuration = try fastConfiguration(server.url)
                    configuration.credentials = credentials
                    configuration.protocolVersion = version
                    let connection = try await RedisConnection.connect(to: server.endpoint, configuration: configuration)
                    #expect(connection.protocolVersion == version)
                    #expect(try await connection.send(RedisCommand("ACL", "WHOAMI")).string == "qssl")
                    await connection.close()
                }
                let client = try RedisClient(url: server.url, credentials: credentials)
                #expect(try await client.set("a".bytes, "b".bytes))
                await client.shutdown()
                // Wrong password, and no password: refused with the server's reason, quickly.
                for bad in [RedisCredentials(username: "qssl", password: "wrong"), nil] {
                    for version in [RESPVersion.resp3, .resp2] {
                        var configuration = try fastConfiguration(server.url)
                        configuration.credentials = bad
                        configuration.protocolVersion = version
                        // (RESP2 without AUTH connects, and only fails on the first command.)
                        let (error, seconds) = await measure {
                            await failure { () async throws(RedisError) in
                                try await RedisConnection.connect(to: server.endpoint, configuration: configuration)
                            }
                        }
                        #expect(seconds < 2)
                        if bad != nil || version == .resp3 {
                            guard case .authenticationFailed(let message)? = error else {
                                Issue.record("\(String(describing: error))")
                                continue
                            }
                            #expect(message.contains("WRONGPASS") || message.contains("NOAUTH"))
                        }
                    }
                }
                var noAuth = try fastConfiguration(server.url)
                noAuth.protocolVersion = .resp2
                let anonymous = try RedisClient(configuration: noAuth)
                await #expect(throws: RedisError.server("NOAUTH Authentication required.")) { try await anonymous.get("a".bytes) }
                await anonymous.shutdown()
            }
        }

        @Test func theTLSHookInstallsItsHandlersFirst() async throws {
            try await withRedisServer { server in
                // A stand-in for Q-SSL's TLS client: a pass-through handler that records the host.
                let hosts = PortBox()
                var configuration = try fastConfiguration(server.url.replacingOccurrences(of: "redis://", with: "rediss://"))
                configuration.tlsHandlerFactory = { host in
                    hosts.value += host == "127.0.0.1" ? 1 : 1000
                    return [PassThroughHandler()]
                }
                let client = try RedisClient(configuration: configuration)
                #expect(try await client.ping() == "PONG")
                #expect(hosts.value == 1)
                await client.shutdown()
                // A factory that fails makes the node unavailable, with its reason.
                configuration.tlsHandlerFactory = { _ in throw FixtureError.startFailed("no TLS configured") }
                let failing = try RedisClient(configuration: configuration)
                let error = await failure { () async throws(RedisError) in try await failing.ping() }
                guard case .unavailable(_, let reason)? = error else {
                    Issue.record("\(String(describing: error))")
                    return
                }
                #expect(reason.contains("no TLS configured"))
            }
        }

        @Test func selectsTheDatabase() async throws {
            try await withRedisServer { server in
                let db5 = try RedisClient(url: server.url + "/5")
                let db0 = try RedisClient(url: server.url)
                #expect(try await db5.set("where".bytes, "five".bytes))
                #expect(try await db0.get("where".bytes) == nil)
                #expect(try server.cli("-n", "5", "GET", "where").contains("five"))
                let db99 = try RedisClient(url: server.url + "/99")
                await #expect(throws: RedisError.self) { try await db99.ping() }
                for client in [db5, db0, db99] { await client.shutdown() }
            }
        }

        @Test func aTimedOutCommandFailsAndItsConnectionIsReplaced() async throws {
            try await withRedisServer { server in
                var configuration = try fastConfiguration(server.url)
                configuration.commandTimeout = .milliseconds(300)
                configuration.maximumConnectionsPerNode = 1
                let client = try RedisClient(configuration: configuration)
                #expect(try await client.ping() == "PONG")
                let (error, seconds) = await measure {
                    await failure { () async throws(RedisError) in try await client.send("BLPOP", "empty-list", "2") }
                }
                guard case .timeout(let command, let ms)? = error else {
                    Issue.record("\(String(describing: error))")
                    return
                }
                #expect(command == "BLPOP empty-list" && ms == 300)
                #expect(seconds >= 0.25 && seconds < 1.5)
                // The late reply must not be taken for the next command's: a new connection is used.
                #expect(try await client.set("after".bytes, "timeout".bytes))
                #expect(try await client.get("after".bytes) == "timeout".bytes)
                await client.shutdown()
            }
        }

        @Test func errorsQuicklyWhileTheServerIsDownAndRecoversAfterARestart() async throws {
            try await withRedisServer { server in
                let configuration = try fastConfiguration(server.url)
                let client = try RedisClient(configuration: configuration)
                #expect(try await client.set("survivor".bytes, "1".bytes))
                server.stop()
                // Every operation fails within its deadline (connect 0.5 s + command 1 s), most at once.
                for _ in 0..<10 {
                    let (error, seconds) = await measure {
                        await failure { () async throws(RedisError) in try await client.get("survivor".bytes) }
                    }
                    #expect(seconds < 1.5, "took \(seconds) s")
                    switch error {
                    case .unavailable?, .connectionClosed?: break
                    default: Issue.record("unexpected: \(String(describing: error))")
                    }
                    try await Task.sleep(for: .milliseconds(30))
                }
                try await server.start()
                // It recovers by itself (the data is gone: the server ran without persistence).
                let (recovered, seconds) = await measure { () async -> Bool in
                    for _ in 0..<100 {
                        if (try? await client.set("back".bytes, "yes".bytes)) == true { return true }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return false
                }
                #expect(recovered && seconds < 3)
                #expect(try await client.get("back".bytes) == "yes".bytes)
                await client.shutdown()
                await #expect(throws: RedisError.shutDown) { try await client.ping() }
            }
        }
    }
}

final class PassThroughHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
}
