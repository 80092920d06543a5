// CRC16/XMODEM and key slots (known answers from the cluster specification), slot map parsing
// and MOVED/ASK parsing.

import Testing

@testable import QSSLRedis

@Suite struct ClusterSlotTests {
    @Test func crc16KnownAnswers() {
        // The cluster specification's check value: CRC16/XMODEM("123456789") = 0x31C3.
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisClusterSlot.crc16([UInt8]()) == 0)
        #expect(RedisClusterSlot.crc16([0x00]) == 0)
        #expect(RedisClusterSlot.crc16(Array("A".utf8)) == 0x58E5)
    }

    @Test func slotKnownAnswers() {
        #expect(RedisClusterSlot.slot(for: "123456789") == 12739)
        #expect(RedisClusterSlot.slot(for: "foo") == 12182)
        #expect(RedisClusterSlot.slot(for: "bar") == 5061)
        #expect(RedisClusterSlot.slot(for: "hello") == 866)
        #expect(RedisClusterSlot.slot(for: "") == 0)
    }

    @Test func hashTags() {
        // Only the part between the first '{' and the next '}' is hashed, if it is not empty.
        #expect(RedisClusterSlot.slot(for: "{user1000}.following") == RedisClusterSlot.slot(for: "user1000"))
        #expect(RedisClusterSlot.slot(for: "{user1000}.followers") == RedisClusterSlot.slot(for: "user1000"))
        #expect(RedisClusterSlot.slot(for: "foo{}{bar}") == RedisClusterSlot.slot(for: "foo{}{bar}".utf8.map { $0 }))
        #expect(RedisClusterSlot.slot(for: "foo{}{bar}") != RedisClusterSlot.slot(for: "bar"))
        #expect(RedisClusterSlot.slot(for: "foo{{bar}}zap") == RedisClusterSlot.slot(for: "{bar"))
        #expect(RedisClusterSlot.slot(for: "foo{bar}{zap}") == RedisClusterSlot.slot(for: "bar"))
        #expect(RedisClusterSlot.slot(for: "{foo") == RedisClusterSlot.slot(for: Array("{foo".utf8)))
        #expect(RedisClusterSlot.slot(for: "a{foo}b") == 12182)
        // Slices (non-zero start index) hash like arrays.
        let bytes = Array("xx{foo}".utf8)
        #expect(RedisClusterSlot.slot(for: Array(bytes[2...])) == 12182)
    }

    @Test func slotMapFromClusterSlots() throws {
        let reply = RESPValue.array([
            .array([
                .integer(0), .integer(5460),
                .array([
                    .bulkString(Array("10.0.0.1".utf8)), .integer(7000),
                    .bulkString(Array("id1".utf8))
                ])
            ]),
            .array([
                .integer(5461), .integer(16383), .array([.bulkString([]), .integer(7001)]),
                .array([.bulkString(Array("10.0.0.9".utf8)), .integer(7009)])
            ])
        ])
        let map = try #require(SlotMap.fromSlots(reply, queried: RedisEndpoint(host: "seed", port: 7001)))
        #expect(map.master(for: 0) == RedisEndpoint(host: "10.0.0.1", port: 7000))
        #expect(map.master(for: 5460) == RedisEndpoint(host: "10.0.0.1", port: 7000))
        #expect(map.master(for: 5461) == RedisEndpoint(host: "seed", port: 7001))
        #expect(map.master(for: 16383) == RedisEndpoint(host: "seed", port: 7001))
        #expect(map.master(for: 16384) == nil)
        #expect(map.masters.count == 2)
        #expect(SlotMap.fromSlots(.array([.array([.integer(0), .integer(99999)])]), queried: RedisEndpoint(host: "x")) == nil)
        #expect(SlotMap.fromSlots(.simpleString("OK"), queried: RedisEndpoint(host: "x")) == nil)
        // A node named by something that is not a host name makes the whole reply unusable.
        let hostile = RESPValue.array([
            .array([.integer(0), .integer(16383), .array([.bulkString(Array("10.0.0.1\r\nAUTH".utf8)), .integer(7000)])])
        ])
        #expect(SlotMap.fromSlots(hostile, queried: RedisEndpoint(host: "x")) == nil)
    }

    @Test func slotMapFromClusterShardsInBothProtocols() throws {
        func node(_ ip: String, _ port: Int64, _ role: String, resp3: Bool) -> RESPValue {
            let pairs: [(String, RESPValue)] = [
                ("id", .bulkString(Array("abc".utf8))), ("port", .integer(port)), ("ip", .bulkString(Array(ip.utf8))),
                ("endpoint", .bulkString(Array(ip.utf8))), ("role", .bulkString(Array(role.utf8))),
                ("health", .bulkString(Array("online".utf8)))
            ]
            return resp3
                ? .map(pairs.map { RESPMapEntry(key: .bulkString(Array($0.0.utf8)), value: $0.1) })
                : .array(pairs.flatMap { [.bulkString(Array($0.0.utf8)), $0.1] })
        }
        for resp3 in [false, true] {
            let shard: [(String, RESPValue)] = [
                ("slots", .array([.integer(0), .integer(100), .integer(200), .integer(300)])),
                ("nodes", .array([node("127.0.0.2", 6380, "replica", resp3: resp3), node("127.0.0.1", 6379, "master", resp3: resp3)]))
            ]
            let value: RESPValue =
                resp3
                ? .map(shard.map { RESPMapEntry(key: .bulkString(Array($0.0.utf8)), value: $0.1) })
                : .array(shard.flatMap { [.bulkString(Array($0.0.utf8)), $0.1] })
            let map = try #require(SlotMap.fromShards(.array([value]), queried: RedisEndpoint(host: "q"), tls: false))
            #expect(map.master(for: 50) == RedisEndpoint(host: "127.0.0.1", port: 6379))
            #expect(map.master(for: 250) == RedisEndpoint(host: "127.0.0.1", port: 6379))
            #expect(map.master(for: 150) == nil)
        }
    }

    @Test func clusterShardsNamingNoUsableMasterAssignNoSlots() throws {
        // A shard whose master is named by something that is not a host name, or whose port is
        // out of range, leaves its slots without a master (a dark slot), never a connection there.
        func shard(slots: [Int64], endpoint: String, port: Int64) -> RESPValue {
            let node: [(String, RESPValue)] = [
                ("port", .integer(port)), ("ip", .bulkString(Array(endpoint.utf8))), ("endpoint", .bulkString(Array(endpoint.utf8))),
                ("role", .bulkString(Array("master".utf8)))
            ]
            let fields: [(String, RESPValue)] = [
                ("slots", .array(slots.map { .integer($0) })),
                ("nodes", .array([.array(node.flatMap { [.bulkString(Array($0.0.utf8)), $0.1] })]))
            ]
            return .array(fields.flatMap { [.bulkString(Array($0.0.utf8)), $0.1] })
        }
        let reply = RESPValue.array([
            shard(slots: [0, 99], endpoint: "10.0.0.1\r\nAUTH x", port: 6379),
            shard(slots: [100, 199], endpoint: String(repeating: "a", count: 254), port: 6379),
            shard(slots: [200, 299], endpoint: "10.0.0.3", port: 0),
            shard(slots: [300, 399], endpoint: "10.0.0.4", port: 70000),
            shard(slots: [400, 16383], endpoint: "10.0.0.5", port: 6379)
        ])
        let map = try #require(SlotMap.fromShards(reply, queried: RedisEndpoint(host: "q"), tls: false))
        for slot in [0, 99, 100, 199, 200, 299, 300, 399] { #expect(map.master(for: slot) == nil, "slot \(slot)") }
        #expect(map.master(for: 400) == RedisEndpoint(host: "10.0.0.5", port: 6379))
        #expect(map.masters == [RedisEndpoint(host: "10.0.0.5", port: 6379)])
    }

    @Test func slotMapsKeepOnlyMastersOwningSlotsAndNameAFewHundredAtMost() throws {
        func range(_ lower: Int64, _ upper: Int64, _ host: String, _ port: Int64) -> RESPValue {
            .array([.integer(lower), .integer(upper), .array([.bulkString(Array(host.utf8)), .integer(port)])])
        }
        // A later range takes all of 10.0.0.1's slots: it is not kept as a master (a pool, a
        // candidate to ask for the map).
        let overwritten = RESPValue.array([range(0, 100, "10.0.0.1", 7000), range(0, 16383, "10.0.0.2", 7000)])
        let map = try #require(SlotMap.fromSlots(overwritten, queried: RedisEndpoint(host: "q")))
        #expect(map.masters == [RedisEndpoint(host: "10.0.0.2", port: 7000)])
        #expect(map.master(for: 50) == RedisEndpoint(host: "10.0.0.2", port: 7000))
        // One master per slot for the first slots: more masters than a cluster has is refused.
        let many = RESPValue.array(
            (0...Int64(SlotMap.maximumMasters)).map { range($0, $0, "10.0.\($0 >> 8).\($0 & 255)", 7000) })
        #expect(SlotMap.fromSlots(many, queried: RedisEndpoint(host: "q")) == nil)
        let enough = RESPValue.array(
            (0..<Int64(SlotMap.maximumMasters)).map { range($0, $0, "10.0.\($0 >> 8).\($0 & 255)", 7000) })
        #expect(SlotMap.fromSlots(enough, queried: RedisEndpoint(host: "q"))?.masters.count == SlotMap.maximumMasters)
        // The same full range over and over (work without end for a hostile node) is given up.
        let repeated = RESPValue.array(Array(repeating: range(0, 16383, "10.0.0.1", 7000), count: 5))
        #expect(SlotMap.fromSlots(repeated, queried: RedisEndpoint(host: "q")) == nil)
        // A MOVED to a master the map names reuses it; to another endpoint, adds it once.
        var moved = try #require(SlotMap.fromSlots(overwritten, queried: RedisEndpoint(host: "q")))
        moved.move(7, to: RedisEndpoint(host: "10.0.0.2", port: 7000))
        moved.move(8, to: RedisEndpoint(host: "10.0.0.3", port: 7000))
        moved.move(9, to: RedisEndpoint(host: "10.0.0.3", port: 7000))
        #expect(moved.masters == [RedisEndpoint(host: "10.0.0.2", port: 7000), RedisEndpoint(host: "10.0.0.3", port: 7000)])
        #expect(moved.master(for: 9) == RedisEndpoint(host: "10.0.0.3", port: 7000))
    }

    @Test func redirections() {
        let here = RedisEndpoint(host: "10.1.1.1", port: 7000)
        let moved = ClusterRedirection("MOVED 3999 127.0.0.1:6381", current: here)
        #expect(moved?.kind == .moved && moved?.slot == 3999)
        #expect(moved?.endpoint == RedisEndpoint(host: "127.0.0.1", port: 6381))
        #expect(ClusterRedirection("ASK 1 ::1:6381", current: here)?.endpoint == RedisEndpoint(host: "::1", port: 6381))
        #expect(ClusterRedirection("ASK 1 [::1]:6381", current: here)?.kind == .ask)
        #expect(ClusterRedirection("MOVED 12 :7002", current: here)?.endpoint == RedisEndpoint(host: "10.1.1.1", port: 7002))
        for bad in [
            "MOVED", "MOVED 16384 a:1", "MOVED -1 a:1", "MOVED 1 a", "MOVED 1 a:0", "MOVED 1 a:99999", "ERR x y",
            "MOVED x a:1", "ASK 1 a:1 extra",
            // Not a host name: a control character, a slash, 254 characters.
            "MOVED 1 ev\u{07}il:6379", "MOVED 1 a/b:6379", "ASK 1 \(String(repeating: "a", count: 254)):6379"
        ] {
            #expect(ClusterRedirection(bad, current: here) == nil, "\(bad)")
        }
    }
}
