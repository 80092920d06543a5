import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOQSSL
import QSSL
import QSSLFleet
import QSSLProxy
import QSSLRedis
import QSSLServeConfig
import QSSLSwiftCrypto
import QSSLX509
import Synchronization

/// `qssl fleet-key generate --out FILE`: the key every node of a fleet holds.
struct FleetKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-key",
        abstract: "Make the fleet key: the key-encryption key of sessions and ticket keys shared through Redis (0600).",
        discussion: """
            Every `qssl serve --session-store … --fleet-key FILE` of one fleet loads the same file. Nothing \
            goes into Redis in the clear: cached sessions and ticket keys are sealed under keys derived from \
            it. Whoever reads it and Redis can decrypt the cached sessions: keep it like a private key.
            """,
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new fleet key file (0600).")

        @Option(help: "The file to write.")
        var out: String

        @Flag(help: "Replace an existing file (the fleet's sessions and ticket keys in Redis stop opening).")
        var force = false

        func run() throws {
            if !force, FileManager.default.fileExists(atPath: out) || (try? FileManager.default.destinationOfSymbolicLink(atPath: out)) != nil {
                throw Failure(message: "\(out) exists; pass --force to replace it (the fleet's shared sessions and ticket keys will stop opening)", code: 1)
            }
            var bytes = FleetKey.generateBytes()
            defer { SecretBytes.wipe(&bytes) }
            do {
                try FleetKey.write(bytes, toPath: out)
                let key = try FleetKey(bytes: bytes)
                print("wrote \(out) (fleet \(key.fleetID))")
            } catch {
                throw Failure(message: "\(error) (nothing written)", code: 1)
            }
        }
    }
}

/// Where the fleet store is and how to reach it: `qssl serve` and `qssl ticket-keys`.
struct FleetStoreOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Share the TLS 1.2 session-ID cache and the ticket keys with a fleet through Redis: "
                + "redis://HOST:PORT[/DB], rediss://… (TLS) or redis+cluster://H:P,H:P,…", valueName: "URL"))
    var sessionStore: String?

    @Option(help: ArgumentHelp("The fleet key (`qssl fleet-key generate`); required with --session-store.", valueName: "FILE"))
    var fleetKey: String?

    @Option(help: ArgumentHelp("The Redis password (first line), for AUTH; the URL's user is kept.", valueName: "FILE"))
    var sessionStorePasswordFile: String?

    @Option(help: ArgumentHelp("Roots that Redis's certificate must chain to, for rediss:// (default: the system's).", valueName: "CAS.pem"))
    var sessionStoreCA: String?

    @Option(help: ArgumentHelp("Seconds per fleet ticket key (default 3600).", valueName: "SECONDS"))
    var ticketRotation: UInt32?

    @Option(help: ArgumentHelp("Seconds a fleet ticket key exists before any node seals with it (default 60).", valueName: "SECONDS"))
    var ticketDistribution: UInt32?

    /// Checks what can be checked before anything is read.
    func validateFleet(fromFile: Bool) throws {
        if sessionStore != nil, fleetKey == nil, !fromFile {
            throw ValidationError("--session-store needs --fleet-key FILE (make one with `qssl fleet-key generate`)")
        }
        if let sessionStore {
            do { _ = try RedisConfiguration(url: sessionStore) } catch { throw ValidationError("--session-store: \(error)") }
            if sessionStoreCA != nil, !sessionStore.lowercased().hasPrefix("rediss") {
                throw ValidationError("--session-store-ca is for rediss:// (TLS); this store is reached without TLS")
            }
        }
        if let ticketRotation, !(1...604_800).contains(ticketRotation) { throw ValidationError("--ticket-rotation must be 1 to 604800 seconds") }
        if let ticketDistribution, !(1...86_400).contains(ticketDistribution) { throw ValidationError("--ticket-distribution must be 1 to 86400 seconds") }
    }

    /// AUTH credentials from the password file (user from the URL, if any).
    func credentials(url: String) throws -> RedisCredentials? {
        guard let sessionStorePasswordFile else { return nil }
        let user = (try? RedisConfiguration(url: url))?.credentials?.username
        do { return try RedisCredentials.fromFile(sessionStorePasswordFile, username: user) } catch {
            throw Failure(message: "\(error)", code: 1)
        }
    }

    /// Q-SSL's own TLS client for rediss://.
    func tlsFactory(url: String) throws -> TLSHandlerFactory? {
        guard url.lowercased().hasPrefix("rediss") else { return nil }
        let verifier = try sessionStoreCA.map { try loadVerifier(roots: $0, what: "session store CA file") } ?? X509CertificateVerifier(roots: systemRoots())
        let configuration = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        return { host in [try NIOQSSLHandler(client: configuration, serverName: host)] }
    }

    /// A store for `qssl ticket-keys` (no events).
    func makeStore(logger: Logger) throws -> FleetStore {
        guard let url = sessionStore, let keyPath = fleetKey else { throw Failure(message: "give --session-store URL and --fleet-key FILE", code: 64) }
        let key: FleetKey
        do { key = try FleetKey.load(path: keyPath) } catch { throw Failure(message: "\(error)", code: 1) }
        do {
            return try FleetStore(url: url, key: key, credentials: try credentials(url: url), tlsHandlerFactory: try tlsFactory(url: url), logger: logger)
        } catch let error as FleetError {
            throw Failure(message: "\(error)", code: 1)
        }
    }
}

/// `qssl serve`'s flags for the fleet: the store options and the service name.
struct FleetServeOptions: ParsableArguments {
    @OptionGroup var store: FleetStoreOptions

    @Option(help: ArgumentHelp("The service sessions and tickets are bound to (default: derived from the certificates' public keys).", valueName: "NAME"))
    var serviceName: String?

    @Option(help: ArgumentHelp("Milliseconds a handshake waits for Redis before a full handshake (default 50).", valueName: "MS"))
    var sessionStoreTimeout: Int?

    func validate(fromFile: Bool, ticketKeys: String?) throws {
        try store.validateFleet(fromFile: fromFile)
        if store.sessionStore != nil, ticketKeys != nil {
            throw ValidationError("choose one of --ticket-keys and --session-store (the fleet's ticket keys are in Redis)")
        }
        if store.sessionStore == nil, !fromFile,
            store.fleetKey != nil || serviceName != nil || sessionStoreTimeout != nil || store.ticketRotation != nil || store.ticketDistribution != nil
        {
            throw ValidationError("--fleet-key, --service-name, --session-store-timeout, --ticket-rotation and --ticket-distribution need --session-store URL")
        }
        if let serviceName { do { _ = try ServiceIdentity(name: serviceName) } catch { throw ValidationError("--service-name: \(error)") } }
        if let sessionStoreTimeout, !(1...10_000).contains(sessionStoreTimeout) { throw ValidationError("--session-store-timeout must be 1 to 10000 ms") }
    }

    /// The flags override the file's settings in every listener.
    func apply(to l: inout ListenerConfig) {
        if let url = store.sessionStore { l.sessionStore = url }
        if let key = store.fleetKey { l.fleetKey = key }
        if let serviceName { l.serviceName = serviceName }
        if let sessionStoreTimeout { l.sessionStoreTimeout = .milliseconds(sessionStoreTimeout) }
        if let r = store.ticketRotation { l.ticketRotation = .seconds(Int64(r)) }
        if let d = store.ticketDistribution { l.ticketDistribution = .seconds(Int64(d)) }
    }
}

/// The fleet stores of a `qssl serve`: one per Redis URL, fleet key and schedule, shared by the
/// listeners that name them; each listener gets a session cache and a ticket sealer for its
/// service. Events are logged (state changes at once; per-handshake ones at most every 10 s
/// per kind) and counted in `qssl_fleet_events_total{event}`.
final class FleetRuntime: @unchecked Sendable {
    struct StoreKey: Hashable {
        let url: String
        let fleetKey: String
        let timeoutMs: Int64
        let rotation: Int64
        let distribution: Int64
    }

    final class Shared: @unchecked Sendable {
        let store: FleetStore
        let keys: FleetTicketKeyStore?
        init(store: FleetStore, keys: FleetTicketKeyStore?) {
            self.store = store
            self.keys = keys
        }
    }

    let options: FleetStoreOptions
    let metrics: ProxyMetrics?
    let logger: Logger
    private var shared: [StoreKey: Shared] = [:]
    private let limiter = Mutex<[String: (last: ContinuousClock.Instant, suppressed: Int)]>([:])

    init(options: FleetStoreOptions, metrics: ProxyMetrics?, logger: Logger) {
        self.options = options
        self.metrics = metrics
        self.logger = logger
    }

    var isEmpty: Bool { shared.isEmpty }

    /// The session cache and ticket sealer of a listener whose configuration names a store.
    func parts(for c: ListenerConfig, listenerName: String, certificates: [CertifiedKey], allListeners: [ListenerConfig])
        throws -> (cache: RedisSessionCache?, sealer: FleetTicketSealer?, service: ServiceIdentity)?
    {
        guard let url = c.sessionStore else { return nil }
        guard let keyPath = c.fleetKey else { throw Failure(message: "listener \(listenerName): session-store needs fleet-key", code: 64) }
        let storeKey = StoreKey(
            url: url, fleetKey: keyPath,
            timeoutMs: Int64(c.sessionStoreTimeout.components.seconds * 1000 + c.sessionStoreTimeout.components.attoseconds / 1_000_000_000_000_000),
            rotation: c.ticketRotation.components.seconds, distribution: c.ticketDistribution.components.seconds)
        let s = try shared[storeKey] ?? makeShared(storeKey, tickets: c.ticketKeys != .disabled, allListeners: allListeners)
        shared[storeKey] = s
        let serviceName =
            c.serviceName
            ?? ServiceIdentity.defaultName(
                leafSPKIs: certificates.compactMap { pair in
                    pair.chain.first.flatMap { try? X509Certificate(der: $0) }?.publicKey.spki
                })
        let service: ServiceIdentity
        do { service = try ServiceIdentity(name: serviceName) } catch { throw Failure(message: "listener \(listenerName): \(error)", code: 64) }
        let cache =
            c.sessionCache ? RedisSessionCache(store: s.store, service: service, timeoutSeconds: UInt32(clamping: c.sessionTimeout.components.seconds)) : nil
        let sealer = c.ticketKeys == .disabled ? nil : s.keys?.sealer(for: service)
        logger.info(
            "fleet session store",
            metadata: [
                "listener": .string(listenerName), "store": .string(redacted(url)), "fleet": .string(s.store.key.fleetID),
                "service": .string(service.name), "session_ids": .stringConvertible(cache != nil), "tickets": .stringConvertible(sealer != nil)
            ])
        return (cache, sealer, service)
    }

    private func makeShared(_ k: StoreKey, tickets: Bool, allListeners: [ListenerConfig]) throws -> Shared {
        let key: FleetKey
        do { key = try FleetKey.load(path: k.fleetKey) } catch {
            throw Failure(message: secretFileMessage(k.fleetKey, what: "fleet key file", reason: "\(error)"), code: 1)
        }
        var settings = FleetSettings()
        settings.lookupTimeout = .milliseconds(k.timeoutMs)
        let store: FleetStore
        do {
            // The client's own per-attempt lines only for errors: the transitions are fleet events.
            var redisLogger = logger
            redisLogger.logLevel = .error
            store = try FleetStore(
                url: k.url, key: key, credentials: try options.credentials(url: k.url), tlsHandlerFactory: try options.tlsFactory(url: k.url),
                settings: settings, logger: redisLogger, onEvent: { [weak self] event in self?.record(event) })
        } catch let error as FleetError {
            throw Failure(message: "session store \(redacted(k.url)): \(error)", code: 64)
        }
        // The longest lifetime of the tickets sealed with these keys: the listeners sharing them.
        let lifetime =
            allListeners.filter { $0.sessionStore == k.url && $0.fleetKey == k.fleetKey }
            .map { UInt32(clamping: $0.sessionTimeout.components.seconds) }.max() ?? 3600
        var keys: FleetTicketKeyStore?
        if tickets {
            let schedule = TicketKeySchedule(
                rotationSeconds: UInt32(clamping: k.rotation), distributionSeconds: UInt32(clamping: k.distribution),
                ticketLifetimeSeconds: lifetime)
            do { keys = try FleetTicketKeyStore(store: store, schedule: schedule) } catch {
                throw Failure(message: "session store \(redacted(k.url)): \(error)", code: 64)
            }
        }
        return Shared(store: store, keys: keys)
    }

    /// Reads the ticket keys of every store once, all at once and for at most 2 s together (so
    /// that a node starts with them if Redis is up), then polls in the background. A read still
    /// running at 2 s goes on in the background: a task group would wait for it, however long a
    /// Redis that accepts and never answers makes it, and one store after another would add up.
    func start() async {
        let stores = shared.values.compactMap(\.keys)
        let reads = stores.map { keys in Task { _ = await keys.refresh() } }
        await waitAtMost(.seconds(2), for: reads)
        for keys in stores { keys.start() }
    }

    func stop() {
        for s in shared.values { s.keys?.stop() }
    }

    private func record(_ event: FleetEvent) {
        metrics?.count("qssl_fleet_events_total", [("event", event.kind)])
        var suppressed = 0
        if !event.logWorthy {
            let now = ContinuousClock.now
            let allowed = limiter.withLock { table -> Bool in
                var entry = table[event.kind] ?? (now - .seconds(60), 0)
                if now - entry.last < .seconds(10) {
                    entry.suppressed += 1
                    table[event.kind] = entry
                    return false
                }
                suppressed = entry.suppressed
                table[event.kind] = (now, 0)
                return true
            }
            guard allowed else { return }
        }
        var metadata: Logger.Metadata = ["fleet_event": .string(event.kind)]
        if suppressed > 0 { metadata["similar_in_last_10s"] = .stringConvertible(suppressed) }
        switch event.level {
        case .info: logger.info("fleet: \(event.message)", metadata: metadata)
        case .warning: logger.warning("fleet: \(event.message)", metadata: metadata)
        }
    }
}

/// A Redis URL with any password hidden, for logs.
func redacted(_ url: String) -> String {
    // Everything up to the last "@" is user information (a password may hold "/" or "@").
    guard let scheme = url.range(of: "://") else { return url }
    let rest = url[scheme.upperBound...]
    guard let at = rest.lastIndex(of: "@") else { return url }
    return String(url[..<scheme.upperBound]) + "<credentials>" + String(rest[at...])
}

// MARK: - `qssl ticket-keys show|rotate --session-store …`

enum FleetTicketKeysAdmin {
    static func schedule(_ options: FleetStoreOptions, lifetime: UInt32) -> TicketKeySchedule {
        TicketKeySchedule(
            rotationSeconds: options.ticketRotation ?? 3600, distributionSeconds: options.ticketDistribution ?? 60,
            ticketLifetimeSeconds: lifetime)
    }

    static func show(_ options: FleetStoreOptions, lifetime: UInt32, json: Bool) async throws {
        let logger = Logger(label: "qssl.ticket-keys") { _ in SwiftLogNoOpLogHandler() }
        let store = try options.makeStore(logger: logger)
        defer { Task { await store.shutdown() } }
        let keys: FleetTicketKeyStore
        do { keys = try FleetTicketKeyStore(store: store, schedule: schedule(options, lifetime: lifetime)) } catch {
            throw Failure(message: "\(error)", code: 64)
        }
        let list: [FleetTicketKeyInfo]
        do { list = try await keys.listRedis() } catch { throw Failure(message: "\(error)", code: 1) }
        let now = SystemClock().nowMilliseconds()
        if json {
            let objects: [[String: Any]] = list.map { k in
                ["epoch": k.epoch, "fingerprint": k.fingerprint, "created_at_ms": k.createdAt, "role": k.role.rawValue, "redis_ttl_ms": k.redisTTL ?? -2]
            }
            let data = try JSONSerialization.data(
                withJSONObject: [
                    "fleet": store.key.fleetID, "rotation_s": keys.schedule.rotationSeconds,
                    "current_epoch": keys.epoch(at: now), "keys": objects
                ], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(
            "fleet \(store.key.fleetID) at \(redacted(options.sessionStore ?? "")): \(list.count) ticket key\(list.count == 1 ? "" : "s") "
                + "(rotation \(keys.schedule.rotationSeconds) s, distribution \(keys.schedule.distributionSeconds) s, current epoch \(keys.epoch(at: now)))")
        for k in list {
            let created = Date(timeIntervalSince1970: Double(k.createdAt) / 1000)
            let ttl = (k.redisTTL ?? -2) >= 0 ? "expires in \((k.redisTTL ?? 0) / 1000) s" : "no expiry"
            let role =
                switch k.role {
                case .sealing: "sealing (and opening)"
                case .pending: "pending (opens; seals later)"
                case .opening: "older (opens only)"
                }
            print("  epoch \(k.epoch)  \(k.fingerprint)  created \(created.formatted(.iso8601))  \(ttl)  \(role)")
        }
    }

    static func rotate(_ options: FleetStoreOptions, lifetime: UInt32, replaceNext: Bool) async throws {
        let logger = Logger(label: "qssl.ticket-keys") { _ in SwiftLogNoOpLogHandler() }
        let events = Mutex<[FleetEvent]>([])
        guard let url = options.sessionStore, let keyPath = options.fleetKey else {
            throw Failure(message: "give --session-store URL and --fleet-key FILE", code: 64)
        }
        let key: FleetKey
        do { key = try FleetKey.load(path: keyPath) } catch { throw Failure(message: "\(error)", code: 1) }
        let store: FleetStore
        do {
            store = try FleetStore(
                url: url, key: key, credentials: try options.credentials(url: url), tlsHandlerFactory: try options.tlsFactory(url: url),
                logger: logger, onEvent: { e in events.withLock { $0.append(e) } })
        } catch { throw Failure(message: "\(error)", code: 1) }
        defer { Task { await store.shutdown() } }
        let keys: FleetTicketKeyStore
        do { keys = try FleetTicketKeyStore(store: store, schedule: schedule(options, lifetime: lifetime)) } catch {
            throw Failure(message: "\(error)", code: 64)
        }
        if replaceNext {
            do {
                let info = try await keys.replaceNextKey()
                print(
                    "replaced the key of epoch \(info.epoch) with \(info.fingerprint); nodes take it at their next poll and seal with it from epoch \(info.epoch) once it is \(keys.schedule.distributionSeconds) s old"
                )
            } catch { throw Failure(message: "\(error)", code: 1) }
        }
        guard await keys.refresh() else {
            throw Failure(message: "session store \(redacted(url)): \(events.withLock { $0.map(\.message).joined(separator: "; ") })", code: 1)
        }
        for event in events.withLock({ $0 }) where event.kind.hasPrefix("ticket_key_created") || event.kind == "ticket_key_refused" {
            print(event.message)
        }
        for k in keys.heldKeys { print("  epoch \(k.epoch)  \(k.fingerprint)  \(k.role.rawValue)") }
    }
}
