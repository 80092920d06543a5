// Redis Cluster key slots (CRC16/XMODEM with hash tags), slot maps and redirections.

/// The hashing of keys to the 16,384 slots of Redis Cluster.
public enum RedisClusterSlot {
    public static let count = 16384

    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    /// CRC16/XMODEM (polynomial 0x1021, initial value 0), as the cluster specification uses.
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    /// The slot of `key`: of the hash tag if the key has a non-empty `{…}`, else of the whole key.
    public static func slot<C: Collection>(for key: C) -> Int where C.Element == UInt8, C.Index == Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[key.index(after: open)...].firstIndex(of: UInt8(ascii: "}")),
            close > key.index(after: open)
        {
            return Int(crc16(key[key.index(after: open)..<close]) & 0x3FFF)
        }
        return Int(crc16(key) & 0x3FFF)
    }

    public static func slot(for key: String) -> Int { slot(for: Array(key.utf8)) }
}

/// Which master serves each slot.
struct SlotMap: Sendable {
    /// Index into `masters` for each slot, or -1 where no master is known.
    private(set) var owners: [Int16]
    private(set) var masters: [RedisEndpoint]

    /// While a reply is parsed: where each master is in `masters`, and whether the reply went
    /// past what any honest map needs (see `assign`).
    private var masterIndex: [RedisEndpoint: Int16] = [:]
    private var slotsAssigned = 0
    private var overflowed = false

    init() {
        owners = Array(repeating: -1, count: RedisClusterSlot.count)
        masters = []
    }

    var isEmpty: Bool { masters.isEmpty }

    func master(for slot: Int) -> RedisEndpoint? {
        guard slot >= 0, slot < owners.count else { return nil }
        let index = Int(owners[slot])
        return index >= 0 ? masters[index] : nil
    }

    /// The most masters a usable map names (Redis Cluster is meant for up to 1000 nodes): each
    /// is a pool the client may open and a candidate it may ask for the map.
    static let maximumMasters = 1000

    /// The map without the masters that own no slot (a later range took all theirs), or nil when
    /// more than `maximumMasters` remain: a node listing thousands of endpoints is not followed.
    func compacted() -> SlotMap? {
        var used = Array(repeating: false, count: masters.count)
        for owner in owners where owner >= 0 { used[Int(owner)] = true }
        var renumbered = Array(repeating: Int16(-1), count: masters.count)
        var kept: [RedisEndpoint] = []
        for (index, master) in masters.enumerated() where used[index] {
            renumbered[index] = Int16(kept.count)
            kept.append(master)
        }
        guard !overflowed, kept.count <= Self.maximumMasters else { return nil }
        var map = SlotMap()
        map.masters = kept
        map.owners = owners.map { $0 >= 0 ? renumbered[Int($0)] : -1 }
        for (index, master) in kept.enumerated() { map.masterIndex[master] = Int16(index) }
        return map
    }

    /// After a MOVED (to a master of this map or a seed): `slot` is `master`'s now.
    mutating func move(_ slot: Int, to master: RedisEndpoint) {
        guard slot >= 0, slot < owners.count else { return }
        if let known = masterIndex[master] {
            owners[slot] = known
        } else if masters.count < 2 * Self.maximumMasters {
            masterIndex[master] = Int16(masters.count)
            owners[slot] = Int16(masters.count)
            masters.append(master)
        }
    }

    /// Gives `slots` to `master`, parsing a reply. A reply that assigns more slots than four whole maps, or names
    /// more than twice `maximumMasters`, is given up at once (and the map is refused): the work
    /// a hostile reply can cause stays linear and small.
    mutating func assign(_ slots: ClosedRange<Int>, to master: RedisEndpoint) {
        guard !overflowed else { return }
        let lower = max(slots.lowerBound, 0)
        let upper = min(slots.upperBound, RedisClusterSlot.count - 1)
        guard lower <= upper else { return }
        slotsAssigned += upper - lower + 1
        guard slotsAssigned <= 4 * RedisClusterSlot.count else {
            overflowed = true
            return
        }
        let index: Int16
        if let known = masterIndex[master] {
            index = known
        } else {
            guard masters.count < 2 * Self.maximumMasters else {
                overflowed = true
                return
            }
            index = Int16(masters.count)
            masters.append(master)
            masterIndex[master] = index
        }
        for slot in lower...upper { owners[slot] = index }
    }

    /// Parses a `CLUSTER SHARDS` reply (Redis 7); `queried` replaces an unknown endpoint.
    static func fromShards(_ reply: RESPValue, queried: RedisEndpoint, tls: Bool) -> SlotMap? {
        guard let shards = reply.elements else { return nil }
        var map = SlotMap()
        for shard in shards {
            guard let fields = dictionary(shard), let slots = fields["slots"]?.elements,
                let nodes = fields["nodes"]?.elements
            else { return nil }
            var master: RedisEndpoint?
            for node in nodes {
                guard let info = dictionary(node), info["role"]?.string == "master" else { continue }
                if let health = info["health"]?.string, health != "online" { continue }
                let portValue = tls ? (info["tls-port"] ?? info["port"]) : (info["port"] ?? info["tls-port"])
                guard let port = portValue?.int, port > 0, port <= 65535 else { continue }
                var host = info["endpoint"]?.string ?? ""
                if host.isEmpty || host == "?" { host = info["ip"]?.string ?? "" }
                if host.isEmpty || host == "?" { host = queried.host }
                guard RedisEndpoint.isPlausibleHost(host) else { continue }
                master = RedisEndpoint(host: host, port: Int(port))
            }
            guard let master else { continue }
            var index = 0
            while index + 1 < slots.count {
                if let lower = slots[index].int, let upper = slots[index + 1].int, lower <= upper,
                    lower >= 0, upper < RedisClusterSlot.count
                {
                    map.assign(Int(lower)...Int(upper), to: master)
                }
                index += 2
            }
        }
        return map.compacted()
    }

    /// Parses a `CLUSTER SLOTS` reply; an empty host means the node that was queried.
    static func fromSlots(_ reply: RESPValue, queried: RedisEndpoint) -> SlotMap? {
        guard let ranges = reply.elements else { return nil }
        var map = SlotMap()
        for range in ranges {
            guard let fields = range.elements, fields.count >= 3, let lower = fields[0].int, let upper = fields[1].int,
                lower >= 0, lower <= upper, upper < RedisClusterSlot.count,
                let node = fields[2].elements, node.count >= 2, var host = node[0].string,
                let port = node[1].int, port > 0, port <= 65535
            else { return nil }
            if host.isEmpty || host == "?" { host = queried.host }
            guard RedisEndpoint.isPlausibleHost(host) else { return nil }
            map.assign(Int(lower)...Int(upper), to: RedisEndpoint(host: host, port: Int(port)))
        }
        return map.compacted()
    }

    /// A RESP3 map, or a RESP2 array of alternating names and values, keyed by name.
    private static func dictionary(_ value: RESPValue) -> [String: RESPValue]? {
        guard let entries = value.mapEntries else { return nil }
        var result: [String: RESPValue] = [:]
        for entry in entries {
            if let name = entry.key.string { result[name] = entry.value }
        }
        return result
    }
}

/// A `MOVED` or `ASK` error reply.
struct ClusterRedirection: Sendable, Hashable {
    enum Kind: Sendable { case moved, ask }
    var kind: Kind
    var slot: Int
    var endpoint: RedisEndpoint

    /// Parses `MOVED 3999 127.0.0.1:6381` / `ASK 3999 [::1]:6381`; an empty host is `current`'s.
    init?(_ message: String, current: RedisEndpoint) {
        let parts = message.split(separator: " ")
        guard parts.count == 3 else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        guard let slot = Int(parts[1]), slot >= 0, slot < RedisClusterSlot.count,
            let colon = parts[2].lastIndex(of: ":"),
            let port = Int(parts[2][parts[2].index(after: colon)...]), port > 0, port <= 65535
        else { return nil }
        var host = parts[2][..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard host.isEmpty || RedisEndpoint.isPlausibleHost(host) else { return nil }
        self.slot = slot
        self.endpoint = RedisEndpoint(host: host.isEmpty ? current.host : String(host), port: port)
    }
}
