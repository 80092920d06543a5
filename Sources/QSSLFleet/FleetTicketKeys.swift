// Session-ticket keys shared by a fleet through Redis: leader-less rotation, kept in memory only.

import Crypto
import QSSL
import QSSLRedis
import Synchronization

/// When ticket keys are made, used and dropped.
///
/// Time is cut into epochs of `rotationSeconds` (epoch k = [k·R, (k+1)·R) in Unix time). Each
/// epoch has one master ticket key in Redis, at `qssl:<fleet id>:tk:<R>:<k>`.
/// - **Creation, leader-less.** Every node, on every poll, makes sure the keys of the current and
///   the next epoch exist: `SET key value PX … NX` with a fresh key (or the one it already holds,
///   after Redis lost its data); the node that wins creates it, the others read the winner's.
///   So the next epoch's key normally exists a whole epoch before it is used.
/// - **Encryption (HAProxy's rule).** A node seals with the key of the newest epoch not in the
///   future whose key was created at least `distributionSeconds` ago — every node polls at
///   least twice per distribution interval, so every node holds a key before any node seals
///   with it. A key seals for at most two epochs (its own, and the next while the next key is
///   not ready, e.g. Redis was down): after that a node issues no tickets rather than keep one
///   key for ever.
/// - **Decryption** until `ticketLifetimeSeconds` after the key's last possible sealing:
///   key k opens tickets until (k+2)·R + L, and Redis expires it then (PX).
/// - **In memory only.** Keys are never written to disk; in Redis each is sealed under the
///   fleet key. A node that cannot reach Redis keeps its keys and serves on; when Redis returns
///   (even empty) the nodes put back the keys they hold, so the fleet keeps agreeing.
public struct TicketKeySchedule: Sendable, Hashable {
    /// R: seconds per epoch (default 3600: a new key every hour, as Cloudflare).
    public var rotationSeconds: UInt32 = 3600
    /// D: seconds a key exists before any node seals with it (default 60).
    public var distributionSeconds: UInt32 = 60
    /// L: the longest lifetime of the tickets sealed (the listeners' session timeout).
    public var ticketLifetimeSeconds: UInt32 = 3600
    /// How often a node reads the keys (default D / 3, at most 10 s, at least 200 ms).
    public var pollMilliseconds: UInt64?

    public init(rotationSeconds: UInt32 = 3600, distributionSeconds: UInt32 = 60, ticketLifetimeSeconds: UInt32 = 3600) {
        self.rotationSeconds = rotationSeconds
        self.distributionSeconds = distributionSeconds
        self.ticketLifetimeSeconds = ticketLifetimeSeconds
    }

    public var effectivePollMilliseconds: UInt64 {
        pollMilliseconds ?? max(200, min(10_000, UInt64(distributionSeconds) * 1000 / 3))
    }

    /// Epochs a node keeps keys for at once.
    var windowEpochs: Int { Int((UInt64(ticketLifetimeSeconds) + UInt64(rotationSeconds) - 1) / UInt64(rotationSeconds)) + 3 }

    public func validate() throws(FleetError) {
        guard rotationSeconds >= 1, rotationSeconds <= 7 * 86_400 else { throw .invalidConfiguration("the ticket rotation is 1 s to 7 days") }
        guard distributionSeconds >= 1, distributionSeconds < rotationSeconds else {
            throw .invalidConfiguration(
                "the ticket-key distribution interval (\(distributionSeconds) s) must be at least 1 s and shorter than the rotation (\(rotationSeconds) s)")
        }
        guard effectivePollMilliseconds * 2 <= UInt64(distributionSeconds) * 1000 else {
            throw .invalidConfiguration("nodes must poll at least twice per distribution interval")
        }
        guard windowEpochs <= 256 else {
            throw .invalidConfiguration(
                "a ticket lifetime of \(ticketLifetimeSeconds) s spans more than 250 rotations of \(rotationSeconds) s; rotate less often")
        }
    }
}

/// A ticket key as `qssl ticket-keys` shows it (never the key bytes).
public struct FleetTicketKeyInfo: Sendable, Hashable {
    public enum Role: String, Sendable { case pending, sealing, opening }
    public let epoch: Int64
    /// 16 hex digits identifying the key (a hash of it).
    public let fingerprint: String
    public let createdAt: UInt64
    public let role: Role
    /// Milliseconds until Redis expires it (-2: not in Redis), when read from Redis.
    public var redisTTL: Int64?
}

/// The fleet's ticket keys as one node holds them, kept in step with Redis by a poll.
public final class FleetTicketKeyStore: Sendable {
    public static let valuePrefix: [UInt8] = Array("QFT".utf8) + [1]
    static let valueLength = valuePrefix.count + 12 + 8 + 32 + 16

    public let store: FleetStore
    public let schedule: TicketKeySchedule
    private let state = Mutex(State())
    private let poller = Mutex<Task<Void, Never>?>(nil)

    struct Held: Sendable {
        let epoch: Int64
        let material: SecretBytes
        let createdAt: UInt64
        let fingerprint: [UInt8]
        /// The value Redis holds for its epoch (last seen); others only open.
        var current: Bool
    }

    struct State {
        var keys: [Held] = []
        var generation: UInt64 = 0
        var couldSeal = false
        /// The latest-started refresh whose answer was taken.
        var mergedRefresh: UInt64 = 0
    }

    /// Numbers the refreshes in the order they start: one that started earlier and answers
    /// later (the start-up read left running past its bound, overtaken by the poller) is
    /// dropped, not merged over the newer answer.
    private let refreshes = Atomic<UInt64>(0)

    public init(store: FleetStore, schedule: TicketKeySchedule) throws(FleetError) {
        try schedule.validate()
        self.store = store
        self.schedule = schedule
    }

    // MARK: - Schedule arithmetic (ms)

    var rotationMs: UInt64 { UInt64(schedule.rotationSeconds) * 1000 }

    public func epoch(at now: UInt64) -> Int64 { Int64(now / rotationMs) }

    /// The end of key `k`'s life: (k+2)·R + L.
    func keyEnd(_ k: Int64) -> UInt64 { UInt64(k + 2) * rotationMs + UInt64(schedule.ticketLifetimeSeconds) * 1000 }

    public func redisKey(epoch k: Int64) -> [UInt8] {
        Array("qssl:\(store.key.fleetID):tk:\(schedule.rotationSeconds):\(k)".utf8)
    }

    // MARK: - Values

    private func associatedData(_ k: Int64) -> [UInt8] {
        var ad = Array("qssl-fleet-ticket-key-v1".utf8)
        ad.appendField(Array(store.key.fleetID.utf8))
        ad.appendUInt64(UInt64(bitPattern: k))
        ad.appendUInt32(schedule.rotationSeconds)
        ad.appendField(redisKey(epoch: k))
        return ad
    }

    static func fingerprint(_ material: SecretBytes) -> [UInt8] {
        var hash = SHA256()
        hash.update(data: Array("qssl-fleet-ticket-key-id".utf8))
        material.withUnsafeBytes { hash.update(bufferPointer: $0) }
        return Array(hash.finalize().prefix(8))
    }

    func wrap(_ held: Held) -> [UInt8]? {
        var plaintext: [UInt8] = []
        plaintext.appendUInt64(held.createdAt)
        held.material.withUnsafeBytes { plaintext.append(contentsOf: $0) }
        defer { SecretBytes.wipe(&plaintext) }
        guard let box = try? AES.GCM.seal(plaintext, using: store.key.ticketWrapKey, authenticating: associatedData(held.epoch)) else { return nil }
        return Self.valuePrefix + Array(box.nonce) + box.ciphertext + box.tag
    }

    func unwrap(_ value: [UInt8], epoch k: Int64) -> Held? {
        guard value.count == Self.valueLength, value.starts(with: Self.valuePrefix) else { return nil }
        let n = Self.valuePrefix.count
        guard let nonce = try? AES.GCM.Nonce(data: value[n..<(n + 12)]),
            let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: value[(n + 12)..<(value.count - 16)], tag: value[(value.count - 16)...]),
            var opened = try? AES.GCM.open(box, using: store.key.ticketWrapKey, authenticating: associatedData(k))
        else { return nil }
        // The ticket key is copied once, straight into SecretBytes; swift-crypto's Data that
        // held it is zeroed (it is uniquely ours, so in place), whatever the length was.
        defer { opened.resetBytes(in: opened.startIndex..<opened.endIndex) }
        guard opened.count == 40 else { return nil }
        let createdAt = Array(opened.prefix(8))[...].readUInt64(at: 0)
        let material = opened.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[8...])) }
        return Held(epoch: k, material: material, createdAt: createdAt, fingerprint: Self.fingerprint(material), current: true)
    }

    func fresh(epoch k: Int64, now: UInt64) -> Held {
        let material = SymmetricKey(size: .bits256).withUnsafeBytes { SecretBytes(copying: $0) }
        return Held(epoch: k, material: material, createdAt: now, fingerprint: Self.fingerprint(material), current: true)
    }

    // MARK: - Polling

    /// Starts polling Redis every `effectivePollMilliseconds` (with jitter) until `stop()`.
    public func start() {
        let interval = schedule.effectivePollMilliseconds
        let task = Task { [self] in
            while !Task.isCancelled {
                _ = await refresh()
                let jitter = UInt64.random(in: 0...(interval / 10))
                try? await Task.sleep(for: .milliseconds(interval - jitter))
            }
        }
        poller.withLock { old in
            old?.cancel()
            old = task
        }
    }

    public func stop() {
        poller.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    /// One poll: reads the keys of every epoch still in use, creates the current and the next
    /// epoch's keys if Redis lacks them, and takes what Redis holds. Returns whether Redis
    /// answered; when it did not, the keys held so far stay.
    @discardableResult
    public func refresh() async -> Bool {
        let sequence = refreshes.add(1, ordering: .relaxed).newValue
        let now = store.clock.nowMilliseconds()
        let e = epoch(at: now)
        let lifetimeMs = UInt64(schedule.ticketLifetimeSeconds) * 1000
        let low = max(0, epoch(at: now >= lifetimeMs ? now - lifetimeMs : 0) - 2)
        let epochs = Array(low...(e + 1))
        do {
            let values = try await store.redis.mget(epochs.map { redisKey(epoch: $0) })
            var seen: [Held] = []
            var missing: Set<Int64> = []
            for (k, value) in zip(epochs, values) {
                guard let value else {
                    missing.insert(k)
                    continue
                }
                if let held = unwrap(value, epoch: k) {
                    seen.append(held)
                } else {
                    store.emit(
                        FleetEvent(
                            kind: "ticket_key_refused",
                            message: "the ticket key for epoch \(k) in Redis did not open under the fleet key: ignored" + (k >= e ? " and replaced" : ""),
                            level: .warning))
                    if k >= e {
                        _ = try await store.redis.del(redisKey(epoch: k))
                        missing.insert(k)
                    }
                }
            }
            for k in [e, e + 1] where missing.contains(k) {
                let held = state.withLock { s in s.keys.first { $0.epoch == k && $0.current } } ?? fresh(epoch: k, now: now)
                guard let value = wrap(held), keyEnd(k) > now else { continue }
                let ttl = Int(min(keyEnd(k) - now, UInt64(Int32.max)))
                if try await store.redis.set(redisKey(epoch: k), value, px: ttl, nx: true) {
                    seen.append(held)
                    let again = held.createdAt != now
                    store.emit(
                        FleetEvent(
                            kind: again ? "ticket_key_republished" : "ticket_key_created",
                            message: "\(again ? "put back" : "created") the ticket key of epoch \(k) (\(hex(held.fingerprint)))"))
                } else if let value = try await store.redis.get(redisKey(epoch: k)), let winner = unwrap(value, epoch: k) {
                    seen.append(winner)
                }
            }
            merge(seen, now: now, refresh: sequence)
            store.redisSucceeded()
            return true
        } catch {
            store.redisFailed(error, during: "the ticket-key poll")
            store.emit(FleetEvent(kind: "ticket_keys_refresh_failed", message: "\(error)", level: .warning, logWorthy: false))
            // Nothing was read: only keys past their life go. The refresh number is not taken,
            // so an earlier read that does answer still counts.
            merge([], now: now, refresh: nil)
            return false
        }
    }

    /// Takes the keys read from Redis by refresh number `refresh` (nil: a refresh that read
    /// nothing); drops the keys past their life. An answer older than one already taken is dropped.
    func merge(_ seen: [Held], now: UInt64, refresh: UInt64?) {
        var learned: [Held] = []
        let lostSealing = state.withLock { s -> Bool? in
            if let refresh {
                guard refresh > s.mergedRefresh else { return nil }
                s.mergedRefresh = refresh
            }
            var changed = false
            for held in seen {
                if let i = s.keys.firstIndex(where: { $0.fingerprint == held.fingerprint && $0.epoch == held.epoch }) {
                    if !s.keys[i].current {
                        s.keys[i].current = true
                        changed = true
                    }
                } else {
                    s.keys.append(held)
                    learned.append(held)
                    changed = true
                }
                for j in s.keys.indices where s.keys[j].epoch == held.epoch && s.keys[j].fingerprint != held.fingerprint && s.keys[j].current {
                    s.keys[j].current = false
                    changed = true
                }
            }
            let before = s.keys.count
            s.keys.removeAll { keyEnd($0.epoch) <= now }
            // Bounded whatever Redis sends: the oldest go first.
            let limit = schedule.windowEpochs * 4
            if s.keys.count > limit {
                s.keys.sort { $0.epoch > $1.epoch }
                s.keys.removeLast(s.keys.count - limit)
            }
            if s.keys.count != before { changed = true }
            if changed { s.generation &+= 1 }
            let canSeal = sealing(s.keys, now: now) != nil
            defer { s.couldSeal = canSeal }
            return s.couldSeal == canSeal ? nil : !canSeal
        }
        for held in learned where held.createdAt != now {
            store.emit(FleetEvent(kind: "ticket_key_learned", message: "learned the ticket key of epoch \(held.epoch) (\(hex(held.fingerprint))) from Redis"))
        }
        if let lost = lostSealing {
            store.emit(
                lost
                    ? FleetEvent(
                        kind: "ticket_keys_stale",
                        message: "no ticket key is ready to seal with (Redis unreachable too long, or just started): no tickets are issued until one is",
                        level: .warning)
                    : FleetEvent(kind: "ticket_keys_ready", message: "a ticket key is ready to seal with"))
        }
    }

    /// The key to seal with at `now` (see `TicketKeySchedule`).
    func sealing(_ keys: [Held], now: UInt64) -> Held? {
        let e = epoch(at: now)
        let distribution = UInt64(schedule.distributionSeconds) * 1000
        var best: Held?
        for key in keys
        where key.current && key.epoch <= e && key.createdAt <= now && now - key.createdAt >= distribution
            && now < UInt64(key.epoch + 2) * rotationMs
        {
            if best == nil || key.epoch > best!.epoch { best = key }
        }
        return best
    }

    /// The keys held and the one that seals now (its fingerprint), with a generation that
    /// changes whenever the keys do.
    func snapshot(now: UInt64) -> (generation: UInt64, keys: [Held], sealing: [UInt8]?) {
        state.withLock { s in (s.generation, s.keys, sealing(s.keys, now: now)?.fingerprint) }
    }

    /// The keys this node holds, newest first.
    public var heldKeys: [FleetTicketKeyInfo] {
        let now = store.clock.nowMilliseconds()
        let (_, keys, sealingKey) = snapshot(now: now)
        return keys.sorted { $0.epoch > $1.epoch }.map { info($0, now: now, sealing: sealingKey) }
    }

    private func info(_ key: Held, now: UInt64, sealing: [UInt8]?) -> FleetTicketKeyInfo {
        let role: FleetTicketKeyInfo.Role =
            key.fingerprint == sealing
            ? .sealing
            : (key.epoch > epoch(at: now) || (sealing == nil && key.epoch == epoch(at: now))) ? .pending : .opening
        return FleetTicketKeyInfo(epoch: key.epoch, fingerprint: hex(key.fingerprint), createdAt: key.createdAt, role: role)
    }

    /// The sealer for one service: tickets sealed under keys derived for it only.
    public func sealer(for service: ServiceIdentity) -> FleetTicketSealer {
        FleetTicketSealer(keys: self, service: service)
    }

    // MARK: - Administration (`qssl ticket-keys`)

    /// The keys in Redis now for the epochs in use, with their TTLs, newest first.
    public func listRedis() async throws(FleetError) -> [FleetTicketKeyInfo] {
        let now = store.clock.nowMilliseconds()
        let e = epoch(at: now)
        let lifetimeMs = UInt64(schedule.ticketLifetimeSeconds) * 1000
        let low = max(0, epoch(at: now >= lifetimeMs ? now - lifetimeMs : 0) - 2)
        var found: [(Held, Int64)] = []
        do {
            for k in stride(from: e + 1, through: low, by: -1) {
                guard let value = try await store.redis.get(redisKey(epoch: k)) else { continue }
                guard let held = unwrap(value, epoch: k) else {
                    throw FleetError.redis("the value for epoch \(k) does not open under this fleet key (another fleet key, or tampered)")
                }
                found.append((held, try await store.redis.pttl(redisKey(epoch: k))))
            }
        } catch let error as FleetError {
            throw error
        } catch {
            throw .redis("\(error)")
        }
        let sealingKey = sealing(found.map(\.0), now: now)?.fingerprint
        return found.map { held, ttl in
            var i = info(held, now: now, sealing: sealingKey)
            i.redisTTL = ttl
            return i
        }
    }

    /// Replaces the next epoch's key (which no node seals with yet) by a fresh one: for a key
    /// that may have leaked. Nodes take it at their next poll; it seals once it is
    /// `distributionSeconds` old.
    public func replaceNextKey() async throws(FleetError) -> FleetTicketKeyInfo {
        let now = store.clock.nowMilliseconds()
        let k = epoch(at: now) + 1
        let held = fresh(epoch: k, now: now)
        guard let value = wrap(held) else { throw .redis("cannot seal a ticket key") }
        do {
            _ = try await store.redis.set(redisKey(epoch: k), value, px: Int(keyEnd(k) - now))
        } catch {
            throw .redis("\(error)")
        }
        return info(held, now: now, sealing: nil)
    }
}
