// The fleet's ticket keys: leader-less rotation across nodes, the distribution rule, Redis
// down and back, hostile values, service binding. Real Redis, a fake clock.

import Foundation
import QSSL
import QSSLFleet
import QSSLRedis
import Testing

/// Three nodes of one fleet, each with its own Redis client and key store, one clock.
struct TicketFleet {
    let clock: FakeClock
    let stores: [FleetStore]
    let keys: [FleetTicketKeyStore]
    let events: [EventLog]

    init(url: String, key: FleetKey, schedule: TicketKeySchedule, nodes: Int = 3, start: UInt64) throws {
        clock = FakeClock(start)
        var stores: [FleetStore] = []
        var keys: [FleetTicketKeyStore] = []
        var events: [EventLog] = []
        for _ in 0..<nodes {
            let log = EventLog()
            let store = try makeStore(url, key: key, clock: clock, events: log)
            stores.append(store)
            keys.append(try FleetTicketKeyStore(store: store, schedule: schedule))
            events.append(log)
        }
        self.stores = stores
        self.keys = keys
        self.events = events
    }

    /// Every node polls once, in turn.
    func pollAll() async -> [Bool] {
        var results: [Bool] = []
        for k in keys { results.append(await k.refresh()) }
        return results
    }

    func shutdown() async { for s in stores { await s.shutdown() } }

    func count(_ kind: String) -> Int { events.map { $0.count(kind) }.reduce(0, +) }
}

/// A TLS session state's bytes stand in for the plaintext of a ticket.
func ticketPlaintext() -> SecretBytes { SecretBytes((0..<120).map { _ in UInt8.random(in: 0...255) }) }

@Suite("Fleet ticket keys in Redis", .serialized)
struct FleetTicketKeyTests {
    static let schedule = TicketKeySchedule(rotationSeconds: 10, distributionSeconds: 2, ticketLifetimeSeconds: 30)

    /// An epoch boundary plus `offset` ms, so that tests know where in the epoch they are.
    static func epochStart(_ offset: UInt64 = 0) -> UInt64 {
        let now = SystemClock().nowMilliseconds()
        return (now / 10_000 + 1) * 10_000 + offset
    }

    @Test(
        "three nodes agree on the keys without a leader; none seals before the distribution interval; every ticket opens on every node across rotations; old keys stop opening after their life"
    )
    func rotationAcrossNodes() async throws {
        try await withRedisServer { server in
            let fleet = try TicketFleet(url: server.url, key: try randomKey(), schedule: Self.schedule, start: Self.epochStart(1000))
            defer { Task { await fleet.shutdown() } }
            let service = try ServiceIdentity(name: "shop")
            let sealers = fleet.keys.map { $0.sealer(for: service) }
            #expect(await fleet.pollAll() == [true, true, true])
            // Current and next epoch: exactly one node created each, the others learned them.
            #expect(fleet.count("ticket_key_created") == 2)
            let held = fleet.keys.map { $0.heldKeys.map(\.fingerprint) }
            #expect(held[0].count == 2 && held[0] == held[1] && held[1] == held[2])
            // Fresh keys: nobody seals within the distribution interval.
            #expect(throws: TLSError.self) { try sealers[0].seal(ticketPlaintext()) }
            fleet.clock.advance(milliseconds: 2000)
            _ = await fleet.pollAll()

            var issued: [(ticket: [UInt8], plaintext: SecretBytes, at: UInt64)] = []
            var failures = 0
            var sealingKeys: Set<String> = []
            // 45 s in 500 ms steps: four rotations; each step a random node seals, every node opens
            // every ticket still within its life.
            for step in 0..<90 {
                fleet.clock.advance(milliseconds: 500)
                if step % 2 == 0 { _ = await fleet.pollAll() }
                let plaintext = ticketPlaintext()
                let ticket = try sealers.randomElement()!.seal(plaintext)
                issued.append((ticket, plaintext, fleet.clock.nowMilliseconds()))
                sealingKeys.formUnion(fleet.keys.flatMap { $0.heldKeys.filter { $0.role == .sealing }.map(\.fingerprint) })
                let now = fleet.clock.nowMilliseconds()
                for t in issued where now - t.at < 30_000 {
                    for sealer in sealers where sealer.open(t.ticket)?.plaintext != t.plaintext { failures += 1 }
                }
            }
            #expect(failures == 0, "every ticket within its lifetime opened on every node")
            #expect(sealingKeys.count >= 4, "the sealing key rotated (\(sealingKeys.count) keys sealed)")
            #expect(fleet.keys.allSatisfy { $0.heldKeys.filter { $0.role == .sealing }.count == 1 })
            // The nodes agree on which key seals.
            let sealingNow = fleet.keys.map { $0.heldKeys.first { $0.role == .sealing }?.fingerprint }
            #expect(Set(sealingNow).count == 1)
            // An old ticket still opens, not by the current key (the core then renews it).
            let older = issued[issued.count - 30]
            #expect(sealers[1].open(older.ticket)?.byCurrentKey == false)
            #expect(sealers[1].open(issued.last!.ticket)?.byCurrentKey == true)
            // Past (k+2)·R + L the first key is dropped: its tickets no longer open.
            let first = issued[0]
            fleet.clock.advance(milliseconds: 40_000)
            _ = await fleet.pollAll()
            #expect(sealers.allSatisfy { $0.open(first.ticket) == nil })
            // Redis expires the old keys too (PX), and holds no key in the clear.
            let redisKeys = try server.cli("KEYS", "qssl:*").split(separator: "\n")
            #expect(redisKeys.count <= 8)
        }
    }

    @Test("a ticket of service A does not open at service B, though they share the fleet's keys")
    func serviceBinding() async throws {
        try await withRedisServer { server in
            let fleet = try TicketFleet(url: server.url, key: try randomKey(), schedule: Self.schedule, nodes: 2, start: Self.epochStart(1000))
            defer { Task { await fleet.shutdown() } }
            _ = await fleet.pollAll()
            fleet.clock.advance(milliseconds: 2500)
            let a = fleet.keys[0].sealer(for: try ServiceIdentity(name: "service-a"))
            let a2 = fleet.keys[1].sealer(for: try ServiceIdentity(name: "service-a"))
            let b = fleet.keys[1].sealer(for: try ServiceIdentity(name: "service-b"))
            let plaintext = ticketPlaintext()
            let ticket = try a.seal(plaintext)
            #expect(a2.open(ticket)?.plaintext == plaintext)
            #expect(b.open(ticket) == nil)
            // B's own tickets carry another key name.
            let ticketB = try b.seal(plaintext)
            #expect(ticketB.prefix(16) != ticket.prefix(16))
            #expect(a.open(ticketB) == nil)
            // Tampered tickets do not open.
            var tampered = ticket
            tampered[30] ^= 0x80
            #expect(a2.open(tampered) == nil)
            #expect(a2.open(Array(ticket.prefix(40))) == nil)
            #expect(a2.open([]) == nil)
        }
    }

    @Test("Redis killed: nodes keep their keys and keep sealing and opening; restarted empty: the nodes put back the same keys, and a new node learns them")
    func redisDownAndBack() async throws {
        try await withRedisServer { server in
            let key = try randomKey()
            let fleet = try TicketFleet(url: server.url, key: key, schedule: Self.schedule, nodes: 2, start: Self.epochStart(1000))
            defer { Task { await fleet.shutdown() } }
            let service = try ServiceIdentity(name: "shop")
            _ = await fleet.pollAll()
            fleet.clock.advance(milliseconds: 2500)
            let before = fleet.keys[0].heldKeys.map(\.fingerprint)
            server.stop()
            #expect(await fleet.pollAll() == [false, false])
            #expect(fleet.count("redis_down") == 2)
            let plaintext = ticketPlaintext()
            let ticket = try fleet.keys[0].sealer(for: service).seal(plaintext)
            #expect(fleet.keys[1].sealer(for: service).open(ticket)?.plaintext == plaintext)
            #expect(fleet.keys[0].heldKeys.map(\.fingerprint) == before)

            try await server.start()  // empty: no persistence
            #expect(await eventually(10) { await fleet.keys[0].refresh() })
            _ = await fleet.pollAll()
            #expect(fleet.keys[0].heldKeys.map(\.fingerprint) == before, "the same keys, put back")
            #expect(fleet.count("ticket_key_republished") >= 1)
            #expect(fleet.count("redis_recovered") >= 1)
            // A node that starts now learns them from Redis and opens the old ticket.
            let late = try makeStore(server.url, key: key, clock: fleet.clock)
            defer { Task { await late.shutdown() } }
            let lateKeys = try FleetTicketKeyStore(store: late, schedule: Self.schedule)
            #expect(await lateKeys.refresh())
            #expect(lateKeys.sealer(for: service).open(ticket)?.plaintext == plaintext)
        }
    }

    @Test(
        "hostile ticket-key values: garbage and another epoch's genuine value are refused (and replaced when they are the current or next key); nothing crashes"
    )
    func hostileKeyValues() async throws {
        try await withRedisServer { server in
            let fleet = try TicketFleet(url: server.url, key: try randomKey(), schedule: Self.schedule, nodes: 1, start: Self.epochStart(1000))
            defer { Task { await fleet.shutdown() } }
            let node = fleet.keys[0]
            let e = node.epoch(at: fleet.clock.nowMilliseconds())
            let current = String(decoding: node.redisKey(epoch: e), as: UTF8.self)
            let next = String(decoding: node.redisKey(epoch: e + 1), as: UTF8.self)
            try server.cli("SET", current, "garbage")
            #expect(await node.refresh())
            #expect(fleet.count("ticket_key_refused") == 1)
            #expect(node.heldKeys.count == 2)
            // Copy the current epoch's genuine value to the next epoch's key: refused (the epoch
            // is in the associated data).
            try server.cli("DEL", next)
            let value = try #require(try await fleet.stores[0].redis.get(node.redisKey(epoch: e)))
            try await fleet.stores[0].redis.set(node.redisKey(epoch: e + 1), value)
            #expect(await node.refresh())
            #expect(fleet.count("ticket_key_refused") == 2)
            #expect(Set(node.heldKeys.map(\.epoch)) == [e, e + 1])
            let fingerprints = node.heldKeys.map(\.fingerprint)
            #expect(Set(fingerprints).count == fingerprints.count, "no key serves two epochs")
            // A value under another fleet key at a past epoch's key: ignored.
            let stranger = try makeStore(server.url, key: try randomKey(), clock: fleet.clock)
            defer { Task { await stranger.shutdown() } }
            let strangerKeys = try FleetTicketKeyStore(store: stranger, schedule: Self.schedule)
            #expect(await strangerKeys.refresh())
            let strangerValue = try #require(try await stranger.redis.get(strangerKeys.redisKey(epoch: e)))
            try await fleet.stores[0].redis.set(node.redisKey(epoch: e - 1), strangerValue)
            #expect(await node.refresh())
            #expect(!node.heldKeys.contains { $0.epoch == e - 1 })
        }
    }

    @Test("in a three-master cluster the nodes share the keys (spread over slots)")
    func cluster() async throws {
        try await withRedisCluster { cluster in
            let fleet = try TicketFleet(url: cluster.url, key: try randomKey(), schedule: Self.schedule, start: Self.epochStart(1000))
            defer { Task { await fleet.shutdown() } }
            let service = try ServiceIdentity(name: "shop")
            #expect(await fleet.pollAll() == [true, true, true])
            fleet.clock.advance(milliseconds: 2500)
            var failures = 0
            for _ in 0..<30 {
                fleet.clock.advance(milliseconds: 1000)
                _ = await fleet.pollAll()
                let plaintext = ticketPlaintext()
                let ticket = try fleet.keys.randomElement()!.sealer(for: service).seal(plaintext)
                for k in fleet.keys where k.sealer(for: service).open(ticket)?.plaintext != plaintext { failures += 1 }
            }
            #expect(failures == 0)
            #expect(fleet.count("ticket_key_created") >= 4)
        }
    }

    @Test("schedules that cannot work are refused")
    func scheduleValidation() throws {
        #expect(throws: FleetError.self) { try TicketKeySchedule(rotationSeconds: 10, distributionSeconds: 10, ticketLifetimeSeconds: 30).validate() }
        #expect(throws: FleetError.self) { try TicketKeySchedule(rotationSeconds: 1, distributionSeconds: 1, ticketLifetimeSeconds: 30).validate() }
        #expect(throws: FleetError.self) { try TicketKeySchedule(rotationSeconds: 60, distributionSeconds: 10, ticketLifetimeSeconds: 604_800).validate() }
        try TicketKeySchedule().validate()
        try Self.schedule.validate()
    }
}
