// GET without a task or a future (what a TLS handshake's session look-up uses): answered once,
// `.late` past its bound without closing the connection, and failed once when the connection goes.

import Glibc
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import QSSLRedis

/// Every outcome a callback was given, and on which thread.
final class OutcomeLog: Sendable {
    private let outcomes = Mutex<[(RedisGetOutcome, Bool)]>([])
    func record(_ outcome: RedisGetOutcome, onLoop: Bool) { outcomes.withLock { $0.append((outcome, onLoop)) } }
    var all: [(outcome: RedisGetOutcome, onLoop: Bool)] { outcomes.withLock { $0.map { (outcome: $0.0, onLoop: $0.1) } } }
}

/// Sends a GET through `getIfConnected` from `loop` and waits for its first outcome; the log
/// keeps every outcome (a second one would be a bug).
func callbackGet(
    _ client: RedisClient, _ key: String, within: TimeAmount?, log: OutcomeLog = OutcomeLog(),
    from loop: any EventLoop
) async -> (sent: Bool, outcome: RedisGetOutcome?) {
    await withCheckedContinuation { continuation in
        loop.execute {
            let once = Mutex(Optional(continuation))
            let sent = client.getIfConnected(Array(key.utf8), preferring: loop, answerWithin: within) { outcome in
                log.record(outcome, onLoop: loop.inEventLoop)
                once.withLock { $0.take() }?.resume(returning: (true, outcome))
            }
            if !sent { once.withLock { $0.take() }?.resume(returning: (false, nil)) }
        }
    }
}

/// Waits until `condition` holds, at most `seconds`.
func eventually(_ seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

extension RedisGetOutcome {
    var value: [UInt8]?? { if case .value(let v) = self { return .some(v) } else { return nil } }
    var isLate: Bool { if case .late = self { return true } else { return false } }
    var error: RedisError? { if case .failed(let e) = self { return e } else { return nil } }
}

extension RedisIntegrationTests {
    @Suite struct CallbackSend {
        @Test(
            "a GET without a future answers once on the asking loop; past its bound it is told late once, the connection stays open and the late reply is dropped"
        )
        func lateThenOnTime() async throws {
            try await withRedisServer { server in
                // One loop and one connection: a GET that finds it open proves it stayed open.
                var configuration = try fastConfiguration(server.url)
                configuration.maximumConnectionsPerNode = 1
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                let client = try RedisClient(configuration: configuration, eventLoopGroup: group)
                defer {
                    Task {
                        await client.shutdown()
                        try? await group.shutdownGracefully()
                    }
                }
                let loop = group.next()
                #expect(try await client.set(Array("a".utf8), Array("first".utf8)))
                #expect(try await client.set(Array("b".utf8), Array("second".utf8)))
                let log = OutcomeLog()
                let first = await callbackGet(client, "a", within: .seconds(5), log: log, from: loop)
                #expect(first.sent && first.outcome?.value == .some(Array("first".utf8)) && log.all.count == 1 && log.all[0].onLoop)
                #expect(await callbackGet(client, "missing", within: nil, from: loop).outcome?.value == .some(nil))

                // Paused Redis: the GET is late (once); the command timeout (1 s) is not reached.
                _ = try server.cli("CLIENT", "PAUSE", "800", "ALL")
                let pausedUntil = ContinuousClock.now + .milliseconds(800)
                let lateLog = OutcomeLog()
                let late = await callbackGet(client, "a", within: .milliseconds(20), log: lateLog, from: loop)
                #expect(late.sent && late.outcome?.isLate == true)
                // A caller told late is let go then (its handshake and channel with it), while
                // Redis is still paused and the reply not yet read.
                final class Held: Sendable {}
                final class WeakRef: @unchecked Sendable { weak var value: Held? }
                let ref = WeakRef()
                let toldLate: Bool = await withCheckedContinuation { continuation in
                    loop.execute {
                        let held = Held()
                        ref.value = held
                        let once = Mutex(Optional(continuation))
                        let sent = client.getIfConnected(Array("a".utf8), preferring: loop, answerWithin: .milliseconds(20)) { outcome in
                            _ = held
                            once.withLock { $0.take() }?.resume(returning: outcome.isLate)
                        }
                        if !sent { once.withLock { $0.take() }?.resume(returning: false) }
                    }
                }
                #expect(toldLate)
                let released = try await eventually(0.3) { try await loop.submit { ref.value == nil }.get() }
                #expect(released && ContinuousClock.now < pausedUntil, "the late caller was held until its reply came")
                // The next GET on the same connection gets its own value, not the late reply
                // to "a", which has been read and dropped by then (replies come in order).
                let next = await callbackGet(client, "b", within: .seconds(5), from: loop)
                #expect(next.sent && next.outcome?.value == .some(Array("second".utf8)))
                #expect(lateLog.all.count == 1 && lateLog.all[0].onLoop)
            }
        }

        @Test("past the command timeout the connection closes: every callback in flight fails once, and the next GET finds no open connection or a new one")
        func commandTimeoutClosesOnce() async throws {
            try await withRedisServer { server in
                var configuration = try fastConfiguration(server.url)
                configuration.commandTimeout = .milliseconds(200)
                configuration.maximumConnectionsPerNode = 1
                let client = try RedisClient(configuration: configuration)
                defer { Task { await client.shutdown() } }
                let loop = MultiThreadedEventLoopGroup.singleton.next()
                #expect(try await client.set(Array("a".utf8), Array("x".utf8)))
                #expect(await callbackGet(client, "a", within: nil, from: loop).outcome?.value == .some(Array("x".utf8)))

                _ = try server.cli("CLIENT", "PAUSE", "800", "ALL")
                let logs = [OutcomeLog(), OutcomeLog(), OutcomeLog()]
                // One told late first, then (already answered) left out of the failure; two
                // without a bound, failed by the timeout: one as the command that timed out,
                // the other because the connection closed under it.
                async let first = callbackGet(client, "a", within: .milliseconds(20), log: logs[0], from: loop)
                async let second = callbackGet(client, "a", within: nil, log: logs[1], from: loop)
                async let third = callbackGet(client, "a", within: nil, log: logs[2], from: loop)
                let outcomes = await [first, second, third]
                #expect(outcomes.allSatisfy { $0.sent })
                #expect(outcomes[0].outcome?.isLate == true)
                let failures = [outcomes[1].outcome?.error, outcomes[2].outcome?.error].compactMap { $0 }
                #expect(failures.count == 2 && failures.allSatisfy { $0.isConnectionFailure }, "\(failures)")
                // After Redis answers again, a new connection serves; each callback had one outcome.
                #expect(
                    await eventually(5) {
                        let r = await callbackGet(client, "a", within: .seconds(1), from: loop)
                        if !r.sent { _ = try? await client.get(Array("a".utf8)) }  // connects
                        return r.outcome?.value == .some(Array("x".utf8))
                    })
                #expect(logs.allSatisfy { $0.all.count == 1 })
            }
        }

        @Test("a GET told late in the same timer turn as another command's timeout still gets exactly one outcome")
        func lateAndTimeoutTogether() async throws {
            try await withRedisServer { server in
                let connection = try await RedisConnection.connect(
                    to: RedisEndpoint(host: "127.0.0.1", port: server.port),
                    configuration: try fastConfiguration(server.url))
                _ = try server.cli("CLIENT", "PAUSE", "600", "ALL")
                // The first GET's bound (50 ms) and the second's timeout (100 ms) fall due in one
                // timer turn: the loop is held past both before its timer can fire.
                let log = OutcomeLog()
                var bytes = connection.allocator.buffer(capacity: 32)
                RESPEncoder.encode(RedisCommand("GET", "a"), into: &bytes)
                let second = try await connection.eventLoop.submit { () -> EventLoopFuture<[RESPValue]> in
                    connection.send(encoded: bytes, replies: 1, label: "GET", answerWithin: .milliseconds(50)) { outcome in
                        switch outcome {
                        case .late: log.record(.late, onLoop: true)
                        case .failed(let error): log.record(.failed(error), onLoop: true)
                        case .replies: log.record(.value(nil), onLoop: true)
                        }
                    }
                    let future = RedisConnection.writeFuture(
                        "GET a", [RedisCommand("GET", "a")], timeout: .milliseconds(100),
                        on: connection.channel)
                    usleep(200_000)
                    return future
                }.get()
                do {
                    _ = try await second.get()
                    Issue.record("the second GET was answered during the pause")
                } catch {
                    #expect(RedisError.from(error).isConnectionFailure)
                }
                #expect(await eventually { log.all.count == 1 })
                #expect(log.all.count == 1 && (log.all[0].outcome.isLate || log.all[0].outcome.error != nil))
                await connection.close()
            }
        }

        @Test("a request that expects no reply is refused before it is written, and the connection goes on matching replies to requests")
        func requestWithoutRepliesRefused() async throws {
            try await withRedisServer { server in
                let connection = try await RedisConnection.connect(
                    to: RedisEndpoint(host: "127.0.0.1", port: server.port),
                    configuration: try fastConfiguration(server.url))
                _ = try server.cli("SET", "k", "v")
                var bytes = connection.allocator.buffer(capacity: 32)
                RESPEncoder.encode(RedisCommand("GET", "k"), into: &bytes)
                let outcomes = OutcomeLog()
                let settled = Mutex(0)
                for replies in [0, -1] {
                    connection.send(encoded: bytes, replies: replies, label: "GET", answerWithin: nil, settled: { settled.withLock { $0 += 1 } }) { outcome in
                        if case .failed(let error) = outcome { outcomes.record(.failed(error), onLoop: true) } else { outcomes.record(.late, onLoop: true) }
                    }
                }
                #expect(outcomes.all.count == 2 && outcomes.all.allSatisfy { $0.outcome.error != nil }, "refused at once, each once")
                #expect(settled.withLock { $0 } == 2)
                // Nothing was written: the next request gets its own reply.
                let replies = Mutex<[RESPValue]?>(nil)
                connection.send(encoded: bytes, replies: 1, label: "GET", answerWithin: nil) { outcome in
                    if case .replies(let values) = outcome { replies.withLock { $0 = values } }
                }
                #expect(await eventually { replies.withLock { $0 != nil } })
                #expect(replies.withLock { $0 } == [.bulkString(Array("v".utf8))])
                await connection.close()
            }
        }
    }
}
