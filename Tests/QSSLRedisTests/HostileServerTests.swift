// A fake server that answers garbage, huge lengths, deep nesting or nothing at all: the client
// must fail with an error, quickly, and never crash or hang.

import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import QSSLRedis

/// What the fake server answers to the n-th command (0 is HELLO) on a connection; `nil` is no answer.
typealias FakeResponder = @Sendable (_ index: Int, _ command: [String]) -> [UInt8]?

/// Decodes the client's commands with the module's own decoder and answers with `responder`.
final class FakeRedisHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var buffer = ByteBuffer()
    private var index = 0
    private let responder: FakeResponder

    init(responder: @escaping FakeResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        while let command = try? RESPDecoder().decode(&buffer) {
            let words = (command.elements ?? []).map { $0.string ?? "" }
            if let reply = responder(index, words) {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
            }
            index += 1
        }
    }
}

/// A fake Redis server on 127.0.0.1 and a free port.
struct FakeRedisServer {
    let channel: any Channel
    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: channel.localAddress?.port ?? 0) }

    static func start(_ responder: @escaping FakeResponder) async throws -> FakeRedisServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeRedisHandler(responder: responder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeRedisServer(channel: channel)
    }

    func stop() async { try? await channel.close() }
}

/// Replies that no server may send, each answered to the client's GET.
private let hostilePayloads: [(String, [UInt8])] = [
    ("garbage", Array("?this is not RESP\r\n".utf8)),
    ("2 GiB bulk length", Array("$2147483648\r\nAAAA".utf8)),
    ("huge array count", Array("*2147483647\r\n".utf8)),
    ("negative bulk length", Array("$-5\r\n".utf8)),
    ("overflowing integer", Array(":123456789012345678901234567890\r\n".utf8)),
    ("deep nesting", Array(String(repeating: "*1\r\n", count: 10_000).utf8)),
    ("endless line", Array(("+" + String(repeating: "a", count: 2 << 20)).utf8)),
    ("bulk without CRLF", Array("$3\r\nabcXY".utf8)),
    ("bare LF", Array("+OK\n".utf8)),
    ("binary noise", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
]

private let refuseHello = Array("-ERR unknown command 'HELLO', with args beginning with: '3'\r\n".utf8)

/// A client on the fake server with short timeouts and a 1 MiB reply limit.
private func hostileClient(_ server: FakeRedisServer) throws -> RedisClient {
    var configuration = RedisConfiguration(mode: .standalone(server.endpoint))
    configuration.connectTimeout = .milliseconds(500)
    configuration.commandTimeout = .milliseconds(500)
    configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
    return try RedisClient(configuration: configuration)
}

extension RedisIntegrationTests {
    @Suite struct HostileServer {
        @Test func fallsBackToRESP2WhenHELLOIsRefused() async throws {
            let server = try await FakeRedisServer.start { index, command in
                switch command.first?.uppercased() {
                case "HELLO": return refuseHello
                case "AUTH":
                    return command.count == 3 && command[1] == "u" && command[2] == "p"
                        ? Array("+OK\r\n".utf8) : Array("-WRONGPASS invalid username-password pair\r\n".utf8)
                case "SELECT": return Array("+OK\r\n".utf8)
                case "GET": return Array("$3\r\nbar\r\n".utf8)
                default: return Array("-ERR unexpected\r\n".utf8)
                }
            }
            defer { Task { await server.stop() } }
            var configuration = RedisConfiguration(mode: .standalone(server.endpoint))
            configuration.credentials = RedisCredentials(username: "u", password: "p")
            configuration.database = 2
            let connection = try await RedisConnection.connect(to: server.endpoint, configuration: configuration)
            #expect(connection.protocolVersion == .resp2)
            #expect(try await connection.send(RedisCommand("GET", "foo")) == .bulkString("bar".bytes))
            await connection.close()
            configuration.credentials = RedisCredentials(username: "u", password: "wrong")
            let error = await failure { () async throws(RedisError) in
                try await RedisConnection.connect(to: server.endpoint, configuration: configuration)
            }
            #expect(error == .authenticationFailed("WRONGPASS invalid username-password pair"))
        }

        @Test(arguments: hostilePayloads)
        func hostileRepliesFailTheCommandWithoutCrashOrHang(_ name: String, _ payload: [UInt8]) async throws {
            let server = try await FakeRedisServer.start { index, _ in index == 0 ? refuseHello : payload }
            defer { Task { await server.stop() } }
            let client = try hostileClient(server)
            let (error, seconds) = await measure {
                await failure { () async throws(RedisError) in try await client.get("k".bytes) }
            }
            #expect(seconds < 2, "\(name): took \(seconds) s")
            guard case .protocolViolation? = error else {
                Issue.record("\(name): \(String(describing: error))")
                return
            }
            await client.shutdown()
        }

        @Test("a server at its client limit (HELLO answered with an error): every command fails at once, and connection attempts back off instead of following each command")
        func aFullServerIsRetriedWithBackoff() async throws {
            let attempts = Mutex(0)
            let full = try await FakeRedisServer.start { index, _ in
                guard index == 0 else { return nil }
                attempts.withLock { $0 += 1 }
                return Array("-ERR max number of clients reached\r\n".utf8)
            }
            defer { Task { await full.stop() } }
            var configuration = RedisConfiguration(mode: .standalone(full.endpoint))
            configuration.connectTimeout = .milliseconds(500)
            configuration.commandTimeout = .milliseconds(500)
            configuration.reconnectBackoff = .init(initial: .milliseconds(200), maximum: .milliseconds(800))
            let client = try RedisClient(configuration: configuration)
            let started = ContinuousClock.now
            var failures = 0
            while ContinuousClock.now - started < .seconds(1) {
                let (error, seconds) = await measure {
                    await failure { () async throws(RedisError) in try await client.get("k".bytes) }
                }
                #expect(error != nil)
                #expect(seconds < 1, "a command against a full server fails without waiting for a timeout")
                failures += 1
            }
            // Backoff from 200 ms doubling: at most a handful of attempts in a second, whatever
            // the number of commands.
            #expect(failures > 10, "\(failures) commands")
            #expect((1...6).contains(attempts.withLock { $0 }), "\(attempts.withLock { $0 }) connection attempts for \(failures) commands")
            if case .unavailable(_, let reason)? = await failure({ () async throws(RedisError) in try await client.get("k".bytes) }) {
                #expect(reason.contains("max number of clients") || reason.contains("down"), "\(reason)")
            }
            await client.shutdown()
        }

        @Test func aServerThatNeverAnswersTimesOut() async throws {
            // Answers the handshake, then nothing.
            let silent = try await FakeRedisServer.start { index, _ in index == 0 ? refuseHello : nil }
            defer { Task { await silent.stop() } }
            let client = try hostileClient(silent)
            let (error, seconds) = await measure {
                await failure { () async throws(RedisError) in try await client.get("k".bytes) }
            }
            #expect(error == .timeout(command: "GET k", milliseconds: 500))
            #expect(seconds >= 0.45 && seconds < 2)
            await client.shutdown()

            // Never answers, not even HELLO: the connection attempt fails within its deadline.
            let mute = try await FakeRedisServer.start { _, _ in nil }
            defer { Task { await mute.stop() } }
            let client2 = try hostileClient(mute)
            let (error2, seconds2) = await measure {
                await failure { () async throws(RedisError) in try await client2.ping() }
            }
            guard case .unavailable(_, let reason)? = error2 else {
                Issue.record("\(String(describing: error2))")
                return
            }
            #expect(reason.contains("timed out"))
            #expect(seconds2 < 2)
            await client2.shutdown()
        }

        @Test func unexpectedReplyTypesAreErrorsNotCrashes() async throws {
            let server = try await FakeRedisServer.start { index, command in
                if index == 0 { return refuseHello }
                switch command.first?.uppercased() {
                case "GET": return Array(":5\r\n".utf8)
                case "SET": return Array("*1\r\n+OK\r\n".utf8)
                case "INCR": return Array("$2\r\nno\r\n".utf8)
                case "MGET": return Array("*1\r\n_\r\n".utf8)
                case "PING": return Array(">2\r\n+push\r\n+ignored\r\n+PONG\r\n".utf8)
                default: return Array("#t\r\n".utf8)
                }
            }
            defer { Task { await server.stop() } }
            let client = try hostileClient(server)
            await #expect(throws: RedisError.self) { try await client.get("k".bytes) }
            await #expect(throws: RedisError.self) { try await client.set("k".bytes, "v".bytes) }
            await #expect(throws: RedisError.self) { try await client.incr("k".bytes) }
            await #expect(throws: RedisError.self) { try await client.mget(["a".bytes, "b".bytes]) }
            await #expect(throws: RedisError.self) { try await client.del("a".bytes) }
            // A push message is not taken for the reply.
            #expect(try await client.ping() == "PONG")
            await client.shutdown()
        }

        @Test func unsolicitedRepliesCloseTheConnection() async throws {
            let server = try await FakeRedisServer.start { index, _ in
                index == 0 ? refuseHello : Array("+PONG\r\n+EXTRA\r\n".utf8)
            }
            defer { Task { await server.stop() } }
            let connection = try await RedisConnection.connect(
                to: server.endpoint, configuration: RedisConfiguration(mode: .standalone(server.endpoint)))
            // The first reply may arrive; the extra one closes the connection.
            _ = try? await connection.send(RedisCommand("PING"))
            try await Task.sleep(for: .milliseconds(100))
            #expect(!connection.isActive)
            await #expect(throws: RedisError.self) { try await connection.send(RedisCommand("PING")) }
        }
    }
}
