// Against a real three-master Redis Cluster: routing, MOVED after a slot migration, ASK during one.

import Foundation
import Testing

@testable import QSSLRedis

extension RedisTestCluster {
    /// Starts moving `slot` from `source` to `target`: IMPORTING on the target, MIGRATING on the
    /// source, then MIGRATE of `keys`. With `finish`, assigns the slot to the target on every node.
    func migrate(slot: Int, keys: [String], from source: RedisServer, to target: RedisServer, finish: Bool) throws {
        let sourceID = try id(of: source)
        let targetID = try id(of: target)
        #expect(try target.cli("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID).contains("OK"))
        #expect(try source.cli("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", targetID).contains("OK"))
        if !keys.isEmpty {
            let output = try source.cli(["MIGRATE", "127.0.0.1", "\(target.port)", "", "0", "5000", "KEYS"] + keys)
            #expect(output.contains("OK"), "MIGRATE: \(output)")
        }
        if finish {
            for node in [target, source] + nodes.filter({ $0 !== source && $0 !== target }) {
                #expect(try node.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", targetID).contains("OK"))
            }
        }
    }
}

extension RedisServer {
    func cli(_ arguments: [String]) throws -> String {
        try RedisFixture.run("redis-cli", ["-h", "127.0.0.1", "-p", "\(port)"] + arguments)
    }
}

extension RedisIntegrationTests {
    @Suite struct Cluster {
        @Test func keysAreSpreadOverAllMastersAndRoutedToThem() async throws {
            try await withRedisCluster { cluster in
                let client = try RedisClient(configuration: try fastConfiguration(cluster.url))
                let keys = (0..<300).map { "session:\($0)".bytes }
                for key in keys { #expect(try await client.set(key, key + [1], px: 60_000)) }
                for node in cluster.nodes {
                    let count = Int(try node.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    #expect(count > 50, "node \(node.port) holds \(count) keys")
                }
                // No redirections: every command went straight to its slot's master.
                #expect(client.statistics.movedRedirections == 0)
                #expect(client.statistics.askRedirections == 0)
                for key in keys.prefix(50) { #expect(try await client.get(key) == key + [1]) }
                // MGET and DEL over many slots are split per slot; the values come back in order.
                let values = try await client.mget(keys + ["absent".bytes])
                #expect(values == keys.map { $0 + [1] } + [nil])
                #expect(try await client.incr("{tag}counter".bytes) == 1)
                #expect(try await client.pexpire("{tag}counter".bytes, milliseconds: 10_000))
                let sameSlot = try await client.pipeline([RedisCommand("SET", "{tag}a", "1"), RedisCommand("GET", "{tag}a")])
                #expect(sameSlot == [.simpleString("OK"), .bulkString("1".bytes)])
                await #expect(throws: RedisError.crossSlot(command: "pipeline")) {
                    try await client.pipeline([RedisCommand("GET", "a"), RedisCommand("GET", "b")])
                }
                #expect(try await client.del(keys) == keys.count)
                #expect(try await client.ping() == "PONG")
                let owner = try await client.node(forKey: "foo".bytes)
                #expect(cluster.nodes.contains { $0.endpoint == owner })

                // A master dies: its keys fail quickly with an error, the others still work.
                let ownerPort = try #require(owner?.port)
                let dead = try #require(cluster.node(port: ownerPort))
                dead.stop()
                for _ in 0..<5 {
                    let (error, seconds) = await measure {
                        await failure { () async throws(RedisError) in try await client.get("foo".bytes) }
                    }
                    #expect(error?.isConnectionFailure == true, "\(String(describing: error))")
                    #expect(seconds < 2, "took \(seconds) s")
                }
                var served = 0
                for key in keys.prefix(30) where try await client.node(forKey: key) != owner {
                    #expect(try await client.set(key, "still".bytes))
                    served += 1
                }
                #expect(served > 0)
                await client.shutdown()
            }
        }

        @Test func followsMOVEDAfterASlotIsMigrated() async throws {
            try await withRedisCluster { cluster in
                let client = try RedisClient(configuration: try fastConfiguration(cluster.url))
                let key = "ticket-key:1"
                let slot = RedisClusterSlot.slot(for: key)
                #expect(try await client.set(key.bytes, "k1".bytes))
                let sourceEndpoint = try #require(try await client.node(forKey: key.bytes))
                let source = try #require(cluster.node(port: sourceEndpoint.port))
                let target = try #require(cluster.nodes.first { $0 !== source })
                try cluster.migrate(slot: slot, keys: [key], from: source, to: target, finish: true)

                // The client still routes to the old owner, which answers MOVED; it follows.
                #expect(try await client.get(key.bytes) == "k1".bytes)
                #expect(client.statistics.movedRedirections == 1)
                #expect(try await client.node(forKey: key.bytes) == target.endpoint)
                // The map was updated: no more redirections for that slot.
                #expect(try await client.set(key.bytes, "k2".bytes))
                #expect(try await client.get(key.bytes) == "k2".bytes)
                #expect(client.statistics.movedRedirections == 1)
                #expect(try target.cli("GET", key).contains("k2"))
                // The background refresh loads the new map.
                try await Task.sleep(for: .milliseconds(300))
                #expect(client.statistics.slotMapRefreshes >= 2)
                #expect(try await client.node(forKey: key.bytes) == target.endpoint)
                await client.shutdown()
            }
        }

        @Test func followsASKDuringAMigration() async throws {
            try await withRedisCluster { cluster in
                let client = try RedisClient(configuration: try fastConfiguration(cluster.url))
                let moved = "{migrating}moved"
                let stays = "{migrating}stays"
                let fresh = "{migrating}fresh"
                let slot = RedisClusterSlot.slot(for: moved)
                #expect(try await client.set(moved.bytes, "m".bytes))
                #expect(try await client.set(stays.bytes, "s".bytes))
                let sourceEndpoint = try #require(try await client.node(forKey: moved.bytes))
                let source = try #require(cluster.node(port: sourceEndpoint.port))
                let target = try #require(cluster.nodes.first { $0 !== source })
                try cluster.migrate(slot: slot, keys: [moved], from: source, to: target, finish: false)

                // A key still on the source is served there; a migrated one via ASK at the target.
                #expect(try await client.get(stays.bytes) == "s".bytes)
                #expect(client.statistics.askRedirections == 0)
                #expect(try await client.get(moved.bytes) == "m".bytes)
                #expect(client.statistics.askRedirections == 1)
                // A new key of a migrating slot is created at the target (ASK again), and ASK does
                // not change the slot map.
                #expect(try await client.set(fresh.bytes, "f".bytes))
                #expect(client.statistics.askRedirections == 2)
                #expect(client.statistics.movedRedirections == 0)
                #expect(try await client.node(forKey: moved.bytes) == source.endpoint)
                #expect(try target.cli("-c", "GET", fresh).contains("f"))

                // Finish the migration: the next command is MOVED to the target.
                try cluster.migrate(slot: slot, keys: [stays], from: source, to: target, finish: true)
                #expect(try await client.mget([moved.bytes, stays.bytes, fresh.bytes]) == ["m".bytes, "s".bytes, "f".bytes])
                #expect(client.statistics.movedRedirections == 1)
                #expect(try await client.node(forKey: moved.bytes) == target.endpoint)
                await client.shutdown()
            }
        }

        @Test func redirectionsAreBounded() async throws {
            // A fake cluster node that owns every slot yet answers every command with MOVED to itself.
            let port = PortBox()
            let node = try await FakeRedisServer.start { _, command in
                if let reply = fakeNodeProtocolReply(command) { return reply }
                if command.first?.uppercased() == "CLUSTER" { return fakeSlotMap(port: port.value) }
                return Array("-MOVED 12182 127.0.0.1:\(port.value)\r\n".utf8)
            }
            defer { Task { await node.stop() } }
            port.value = node.endpoint.port
            let client = try RedisClient(configuration: try fastConfiguration("redis+cluster://127.0.0.1:\(port.value)"))
            let (error, seconds) = await measure {
                await failure { () async throws(RedisError) in try await client.get("foo".bytes) }
            }
            #expect(error == .tooManyRedirections(command: "GET foo", limit: 5))
            #expect(client.statistics.movedRedirections == 6)
            #expect(seconds < 2)
            await client.shutdown()
        }
    }
}

extension RedisIntegrationTests.Cluster {
    @Test func aRedirectionOutsideTheSlotMapIsRefusedWithoutConnectingThere() async throws {
        // Node A answers each command with MOVED to another server and, asked for the slot map
        // again, would list that server (a poisoned map). Node B, the other seed, gives the
        // cluster's real map. The client looks the target up with B, never with A (a node does
        // not vouch for its own redirection), refuses, and never talks to the target; further
        // redirections within the minimum refresh interval are refused without asking again.
        let elsewhereCommands = PortBox()
        let elsewhere = try await FakeRedisServer.start { _, _ in
            elsewhereCommands.value += 1
            return Array("+OK\r\n".utf8)
        }
        defer { Task { await elsewhere.stop() } }
        let portA = PortBox()
        let mapRequestsA = PortBox()
        let mapRequestsB = PortBox()
        let nodeA = try await FakeRedisServer.start { _, command in
            if let reply = fakeNodeProtocolReply(command) { return reply }
            if command.first?.uppercased() == "CLUSTER" {
                mapRequestsA.value += 1
                return fakeSlotMap(port: mapRequestsA.value == 1 ? portA.value : elsewhere.endpoint.port)
            }
            return Array("-MOVED 12182 127.0.0.1:\(elsewhere.endpoint.port)\r\n".utf8)
        }
        defer { Task { await nodeA.stop() } }
        portA.value = nodeA.endpoint.port
        let nodeB = try await FakeRedisServer.start { _, command in
            if let reply = fakeNodeProtocolReply(command) { return reply }
            if command.first?.uppercased() == "CLUSTER" {
                mapRequestsB.value += 1
                return fakeSlotMap(port: portA.value)
            }
            return Array("+OK\r\n".utf8)
        }
        defer { Task { await nodeB.stop() } }
        var configuration = try fastConfiguration("redis+cluster://127.0.0.1:\(portA.value),127.0.0.1:\(nodeB.endpoint.port)")
        configuration.minimumSlotRefreshInterval = .seconds(30)
        let client = try RedisClient(configuration: configuration)
        for attempt in 0..<3 {
            let error = await failure { () async throws(RedisError) in try await client.get("foo".bytes) }
            guard case .unexpectedReply(_, let reply)? = error else {
                Issue.record("attempt \(attempt): expected the redirection to be refused, got \(String(describing: error))")
                break
            }
            #expect(reply.contains("not in the slot map"))
        }
        #expect(elsewhereCommands.value == 0, "the client talked to the node it was redirected to")
        #expect(mapRequestsA.value == 1, "the redirecting node was asked to vouch for its redirection")
        #expect(mapRequestsB.value == 1, "the target was looked up with the other seed once, then not again within the interval")
        await client.shutdown()
    }
}

extension RedisIntegrationTests.Cluster {
    @Test func aDarkSlotIsLookedUpAgainAndServedOnceTheMapCoversIt() async throws {
        // The first slot map leaves "foo"'s slot 12182 without a master (as during a failover);
        // the next one covers it. A command on that slot asks for the map again (no sooner than
        // the minimum interval) instead of failing until some unrelated error refreshes it.
        let port = PortBox()
        let slotMapRequests = PortBox()
        let node = try await FakeRedisServer.start { _, command in
            if let reply = fakeNodeProtocolReply(command) { return reply }
            switch command.first?.uppercased() {
            case "CLUSTER":
                slotMapRequests.value += 1
                return fakeSlotMap(port: port.value, upper: slotMapRequests.value == 1 ? 10000 : 16383)
            case "GET": return Array("$3\r\nbar\r\n".utf8)
            default: return Array("+OK\r\n".utf8)
            }
        }
        defer { Task { await node.stop() } }
        port.value = node.endpoint.port
        let client = try RedisClient(configuration: try fastConfiguration("redis+cluster://127.0.0.1:\(port.value)"))
        // Within the minimum interval after the first map the slot is dark and the command fails
        // at once with a refresh deferred to the end of the interval; later, the refresh runs
        // before the command. Without a refresh on a dark slot, it would fail for good.
        var value: [UInt8]?
        for _ in 0..<50 where value == nil {
            try await Task.sleep(for: .milliseconds(50))
            value = try? await client.get("foo".bytes)
        }
        #expect(value == Array("bar".utf8))
        #expect(slotMapRequests.value >= 2)
        await client.shutdown()
    }
}

/// What every fake cluster node here answers alike: HELLO refused (so RESP2) and CLUSTER
/// SHARDS refused (so CLUSTER SLOTS); nil for any other command.
@Sendable func fakeNodeProtocolReply(_ command: [String]) -> [UInt8]? {
    switch command.first?.uppercased() {
    case "HELLO": return Array("-ERR unknown command 'HELLO'\r\n".utf8)
    case "CLUSTER" where command.count > 1 && command[1].uppercased() == "SHARDS": return Array("-ERR unknown subcommand 'SHARDS'\r\n".utf8)
    default: return nil
    }
}

/// A CLUSTER SLOTS reply: slots 0...upper served by 127.0.0.1:port.
@Sendable func fakeSlotMap(port: Int, upper: Int = 16383) -> [UInt8] {
    Array("*1\r\n*3\r\n:0\r\n:\(upper)\r\n*2\r\n$9\r\n127.0.0.1\r\n:\(port)\r\n".utf8)
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

extension RedisIntegrationTests.Cluster {
    @Test("a slot-map refresh over seeds that accept and never answer gives up after its budget (5 s), not after one connect timeout per seed")
    func aRefreshOverSilentSeedsIsBounded() async throws {
        // 16 seeds that accept and never answer HELLO: each costs a 500 ms connect timeout, 8 s
        // in all without the budget.
        var silent: [FakeRedisServer] = []
        for _ in 0..<16 { silent.append(try await FakeRedisServer.start { _, _ in nil }) }
        defer { for server in silent { Task { await server.stop() } } }
        let seeds = silent.map { "127.0.0.1:\($0.endpoint.port)" }.joined(separator: ",")
        let client = try RedisClient(configuration: try fastConfiguration("redis+cluster://\(seeds)"))
        let (error, seconds) = await measure {
            await failure { () async throws(RedisError) in try await client.get("foo".bytes) }
        }
        guard case .clusterUnavailable(let reason)? = error else {
            Issue.record("expected no slot map, got \(String(describing: error))")
            await client.shutdown()
            return
        }
        #expect(reason.contains("not asked, past"), "seeds beyond the budget were skipped: \(reason.prefix(300))")
        #expect(seconds >= 4.5 && seconds < 7.5, "gave up after \(seconds) s")
        await client.shutdown()
    }
}
