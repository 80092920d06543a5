// Routing commands over a Redis Cluster: slot map, MOVED and ASK, refreshes.

import Logging
import NIOCore
import Synchronization

/// Counters of what the client did, for tests and metrics.
public struct RedisClientStatistics: Sendable, Hashable {
    public var movedRedirections: Int
    public var askRedirections: Int
    public var slotMapRefreshes: Int
}

/// Routes each command to the master of its key's slot, follows MOVED (updating the map and
/// refreshing it in the background) and ASK (ASKING then the command, on one connection), at
/// most `maximumRedirections` times, and refreshes the map after connection failures, at most
/// once per `minimumSlotRefreshInterval`.
final class RedisClusterRouter: Sendable {
    private struct State {
        var slots = SlotMap()
        var pools: [RedisEndpoint: RedisNodePool] = [:]
        var refreshing: Task<Void, any Error>?
        var lastRefresh: ContinuousClock.Instant?
        /// A refresh deferred by the rate limit, to run when the interval has passed.
        var deferredRefresh: Task<Void, Never>?
        /// The last look-up of a redirection's target, and the one running.
        var lastTargetCheck: ContinuousClock.Instant?
        var checkingTarget: Task<Void, any Error>?
        var isShutDown = false
    }

    private let configuration: RedisConfiguration
    private let seeds: [RedisEndpoint]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let moved = Atomic<Int>(0)
    private let asks = Atomic<Int>(0)
    private let refreshes = Atomic<Int>(0)

    init(seeds: [RedisEndpoint], configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.seeds = seeds
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    var statistics: RedisClientStatistics {
        RedisClientStatistics(
            movedRedirections: moved.load(ordering: .relaxed),
            askRedirections: asks.load(ordering: .relaxed),
            slotMapRefreshes: refreshes.load(ordering: .relaxed))
    }

    func pool(for endpoint: RedisEndpoint) throws(RedisError) -> RedisNodePool {
        let pool: RedisNodePool? = state.withLock { state in
            guard !state.isShutDown else { return nil }
            if let pool = state.pools[endpoint] { return pool }
            let pool = RedisNodePool(endpoint: endpoint, configuration: configuration, group: group, logger: logger)
            state.pools[endpoint] = pool
            return pool
        }
        guard let pool else { throw .shutDown }
        return pool
    }

    /// The master currently believed to serve `key`'s slot.
    func master(forKey key: [UInt8]) async throws(RedisError) -> RedisEndpoint {
        try await ensureSlotMap()
        let slot = RedisClusterSlot.slot(for: key)
        if let master = state.withLock({ $0.slots.master(for: slot) }) { return master }
        // A dark slot: the map is stale (a failover, a slot being assigned) or the cluster is
        // down there. The map is asked again, at most once per minimum interval (a refresh
        // deferred by the interval still runs later, and the next command finds the slot).
        try? await refreshTask(force: false)?.value
        guard let master = state.withLock({ $0.slots.master(for: slot) }) else {
            throw .clusterUnavailable("no master known for slot \(slot)")
        }
        return master
    }

    /// Sends `command` to the master of its key (any master if it has none), following
    /// redirections. Error replies other than redirections are returned as `.error` values.
    func execute(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try await ensureSlotMap()
        var target: RedisEndpoint
        if let key = command.key {
            target = try await master(forKey: key)
        } else {
            guard let any = state.withLock({ $0.slots.masters.randomElement() }) else {
                throw .clusterUnavailable("no master known")
            }
            target = any
        }
        var asking = false
        for _ in 0...configuration.maximumRedirections {
            let reply: RESPValue
            do throws(RedisError) {
                let connection = try await pool(for: target).connection()
                reply =
                    asking
                    ? try await connection.pipelineRaw([RedisCommand("ASKING"), command])[1]
                    : try await connection.sendRaw(command)
            } catch {
                if error.isConnectionFailure { triggerRefresh() }
                throw error
            }
            guard let message = reply.errorMessage, let redirection = ClusterRedirection(message, current: target) else {
                if let message = reply.errorMessage, message.hasPrefix("CLUSTERDOWN") { triggerRefresh() }
                return reply
            }
            // A redirection is followed only into the cluster's own topology: to a master of
            // the slot map or a configured seed. An endpoint that neither names is looked up by
            // a refresh of the map asked of the seeds first and never of the node that
            // redirected (a failover promotes a node we did not know as a master; a node
            // cannot vouch for its own redirection), at most once per minimum refresh interval.
            // If the map does not list it either, the command fails: one error reply does not
            // make this client connect, and send its credentials, wherever it says.
            if !isInTopology(redirection.endpoint) {
                try? await targetCheck(excluding: target)?.value
                guard isInTopology(redirection.endpoint) else {
                    logger.warning(
                        "Redis Cluster redirection to a node outside the cluster's slot map refused",
                        metadata: ["reply": "\(message)", "from": "\(target)"])
                    throw .unexpectedReply(command: command.label, reply: "redirection to \(redirection.endpoint), which is not in the slot map")
                }
            }
            target = redirection.endpoint
            switch redirection.kind {
            case .moved:
                moved.add(1, ordering: .relaxed)
                asking = false
                state.withLock { $0.slots.move(redirection.slot, to: redirection.endpoint) }
                triggerRefresh()
            case .ask:
                asks.add(1, ordering: .relaxed)
                asking = true
            }
            logger.debug("Redis Cluster redirection", metadata: ["reply": "\(message)", "command": "\(command)"])
        }
        throw .tooManyRedirections(command: command.label, limit: configuration.maximumRedirections)
    }

    private func isInTopology(_ endpoint: RedisEndpoint) -> Bool {
        seeds.contains(endpoint) || state.withLock { $0.slots.masters.contains(endpoint) }
    }

    /// Loads the slot map if there is none yet (waiting for it).
    func ensureSlotMap() async throws(RedisError) {
        if state.withLock({ !$0.slots.isEmpty }) { return }
        do {
            try await refreshTask(force: true)?.value
        } catch {
            throw RedisError.from(error)
        }
        if state.withLock({ $0.slots.isEmpty }) { throw .clusterUnavailable("the slot map is empty") }
    }

    /// Starts a background refresh unless one is running; if the last one was too recent, one
    /// is scheduled for when the minimum interval has passed (at most one such is pending).
    func triggerRefresh() {
        _ = refreshTask(force: false)
    }

    private func refreshTask(force: Bool) -> Task<Void, any Error>? {
        state.withLock { state -> Task<Void, any Error>? in
            guard !state.isShutDown else { return nil }
            if let running = state.refreshing { return running }
            let interval = Duration.nanoseconds(configuration.minimumSlotRefreshInterval.nanoseconds)
            if !force, let last = state.lastRefresh, ContinuousClock.now - last < interval {
                if state.deferredRefresh == nil {
                    let wait = interval - (ContinuousClock.now - last)
                    state.deferredRefresh = Task { [self] in
                        try? await Task.sleep(for: wait)
                        self.state.withLock { $0.deferredRefresh = nil }
                        if !Task.isCancelled { self.triggerRefresh() }
                    }
                }
                return nil
            }
            state.lastRefresh = ContinuousClock.now
            let task = Task { [self] in
                defer { self.state.withLock { $0.refreshing = nil } }
                try await self.refresh()
            }
            state.refreshing = task
            return task
        }
    }

    /// A refresh to look up a redirection's target: the seeds first, then the other known
    /// masters, never `redirecting`; nil when one ran within the minimum interval (the map as
    /// it stands decides) or the client is shut down.
    private func targetCheck(excluding redirecting: RedisEndpoint) -> Task<Void, any Error>? {
        state.withLock { state -> Task<Void, any Error>? in
            guard !state.isShutDown else { return nil }
            if let running = state.checkingTarget { return running }
            let interval = Duration.nanoseconds(configuration.minimumSlotRefreshInterval.nanoseconds)
            if let last = state.lastTargetCheck, ContinuousClock.now - last < interval { return nil }
            state.lastTargetCheck = ContinuousClock.now
            let known = state.slots.masters
            let task = Task { [self] in
                defer { self.state.withLock { $0.checkingTarget = nil } }
                var candidates = seeds.filter { $0 != redirecting }
                for node in known.shuffled().prefix(Self.knownMastersAsked) where node != redirecting && !candidates.contains(node) {
                    candidates.append(node)
                }
                try await self.refresh(candidates: candidates)
            }
            state.checkingTarget = task
            return task
        }
    }

    /// Asks some known masters, then the seeds, for the slot map until one answers.
    private func refresh() async throws(RedisError) {
        let known = state.withLock { $0.slots.masters }
        var candidates = Array(known.shuffled().prefix(Self.knownMastersAsked))
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        try await refresh(candidates: candidates)
    }

    /// Known masters asked for the map in one refresh, before the seeds: each unreachable one
    /// costs a connection timeout, and the map may name many.
    static let knownMastersAsked = 8
    /// How long one refresh may go on asking before it gives up (look-ups on slots it would
    /// serve wait for it).
    static let refreshBudget: Duration = .seconds(5)

    /// Asks `candidates` in order for the slot map until one answers, and installs it. Past
    /// `refreshBudget` only the first seed and the first known master not yet asked are still
    /// tried: dead nodes of one kind (an outdated seed list, masters that went away) never keep
    /// the other kind from being asked.
    private func refresh(candidates: [RedisEndpoint]) async throws(RedisError) {
        var failures: [String] = []
        let deadline = ContinuousClock.now + Self.refreshBudget
        var askedSeed = false
        var askedKnown = false
        for node in candidates {
            let isSeed = seeds.contains(node)
            guard ContinuousClock.now < deadline || (isSeed ? !askedSeed : !askedKnown) else {
                failures.append("\(node): not asked, past \(Self.refreshBudget)")
                continue
            }
            if isSeed { askedSeed = true } else { askedKnown = true }
            do throws(RedisError) {
                let connection = try await pool(for: node).connection()
                var map: SlotMap?
                let shards = try await connection.sendRaw(RedisCommand("CLUSTER", "SHARDS"))
                if shards.errorMessage == nil {
                    map = SlotMap.fromShards(shards, queried: node, tls: configuration.useTLS)
                }
                if map == nil || map!.isEmpty {
                    let slots = try await connection.sendRaw(RedisCommand("CLUSTER", "SLOTS"))
                    if let message = slots.errorMessage { throw RedisError.server(message) }
                    map = SlotMap.fromSlots(slots, queried: node)
                }
                guard let map, !map.isEmpty else { throw RedisError.unexpectedReply(command: "CLUSTER SLOTS", reply: "no slots") }
                install(map)
                return
            } catch {
                failures.append("\(node): \(error)")
            }
        }
        throw .clusterUnavailable("no node returned a slot map (\(failures.joined(separator: "; ")))")
    }

    private func install(_ map: SlotMap) {
        refreshes.add(1, ordering: .relaxed)
        let retired: [RedisNodePool] = state.withLock { state in
            state.slots = map
            let keep = Set(map.masters).union(seeds)
            let gone = state.pools.filter { !keep.contains($0.key) }
            for endpoint in gone.keys { state.pools[endpoint] = nil }
            return Array(gone.values)
        }
        logger.debug("Redis Cluster slot map loaded", metadata: ["masters": "\(map.masters)"])
        for pool in retired { Task { await pool.shutdown() } }
    }

    func shutdown() async {
        let pools: [RedisNodePool] = state.withLock { state in
            state.isShutDown = true
            state.refreshing?.cancel()
            state.deferredRefresh?.cancel()
            state.checkingTarget?.cancel()
            return Array(state.pools.values)
        }
        for pool in pools { await pool.shutdown() }
    }
}
