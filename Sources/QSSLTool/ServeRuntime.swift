import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLProxy
import QSSLServeConfig
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Synchronization

/// What `qssl serve` builds from its configuration and keeps while it runs: per listener, the
/// session cache and ticket keys (which live across reloads), the keys loaded from an HSM, and the
/// TLS configuration that a reload replaces.
final class ServeRuntime: @unchecked Sendable {
    /// One listener's long-lived parts.
    final class Listener: @unchecked Sendable {
        let config: ListenerConfig
        let name: String
        let tls: TLSConfigurationBox
        let cache: InMemorySessionCache?
        let ticketFile: TicketKeyFile?
        let ticketKeys: (any TicketSealer)?
        /// The fleet's session cache and ticket sealer (`session-store`), in place of the above.
        var fleetCache: (any ServerSessionCache)?
        var fleetSealer: (any TicketSealer)?
        /// Keys in an HSM, loaded once (by certificate and key URI) and kept across reloads.
        var hsmKeys: [String: (CertifiedKey, CryptoProvider)] = [:]
        /// OCSP staples by certificate file, each with the task keeping it fresh: the ones in use,
        /// and those a configuration being built made for a new certificate (taken into use,
        /// their refresh started and the old one's stopped, only if that configuration is).
        var staples: [String: StapleSlot] = [:]
        var pendingStaples: [String: StapleSlot] = [:]
        /// The files the TLS configuration was read from, and what they were.
        var watched: [String: FileStamp] = [:]

        init(
            config: ListenerConfig, name: String, tls: TLSConfigurationBox, cache: InMemorySessionCache?, ticketFile: TicketKeyFile?,
            ticketKeys: (any TicketSealer)?
        ) {
            self.config = config
            self.name = name
            self.tls = tls
            self.cache = cache
            self.ticketFile = ticketFile
            self.ticketKeys = ticketKeys
        }
    }

    let file: ServeConfigFile
    var hsm: HSMOptions
    let metrics: ProxyMetrics?
    let logger: Logger
    private(set) var listeners: [Listener] = []
    private let reloading = Mutex(())
    private var tasks: [RepeatedTask] = []
    let fleet: FleetRuntime

    init(file: ServeConfigFile, hsm: HSMOptions, metrics: ProxyMetrics?, logger: Logger, fleet: FleetStoreOptions = FleetStoreOptions()) throws {
        self.fleet = FleetRuntime(options: fleet, metrics: metrics, logger: logger)
        self.file = file
        self.hsm = hsm
        if let config = file.hsm {
            if self.hsm.module == nil { self.hsm.module = config.module }
            if self.hsm.pinFile == nil { self.hsm.pinFile = config.pinFile }
            self.hsm.hsmThreads = config.signThreads
        }
        self.metrics = metrics
        self.logger = logger
        for (index, config) in file.listeners.enumerated() {
            let name = config.name ?? (file.listeners.count == 1 ? "main" : "listener-\(index + 1)")
            let cache = config.sessionCache ? InMemorySessionCache(timeoutSeconds: UInt32(config.sessionTimeout.components.seconds)) : nil
            var ticketFile: TicketKeyFile?
            var keys: (any TicketSealer)?
            switch config.ticketKeys {
            case .disabled: keys = nil
            case .rotating: keys = TicketKeySet(primitives: CryptoProvider.swiftCrypto.primitives)
            case .file(let path):
                do { ticketFile = try TicketKeyFile(path: path) } catch {
                    throw Failure(message: secretFileMessage(path, what: "ticket key file", reason: "\(error.reason)"), code: 1)
                }
                keys = ticketFile?.keySet
            }
            let listener = Listener(
                config: config, name: name, tls: TLSConfigurationBox(ServerConfiguration(provider: .swiftCrypto, certificates: [])),
                cache: cache, ticketFile: ticketFile, ticketKeys: keys)
            listener.tls.configuration = try makeTLSConfiguration(listener)
            // The service name may come from the certificates: the fleet's parts come after them.
            if let parts = try self.fleet.parts(
                for: config, listenerName: name, certificates: listener.tls.configuration.certificates,
                allListeners: file.listeners)
            {
                listener.fleetCache = parts.cache
                listener.fleetSealer = parts.sealer
                listener.tls.configuration = try makeTLSConfiguration(listener)
            }
            listeners.append(listener)
        }
    }

    /// The proxy's settings for each listener.
    var listenerSettings: [ListenerSettings] {
        listeners.map { l in
            let c = l.config
            let backend: BackendTarget =
                switch c.backend {
                case .echo: .echo
                case .http: .http
                case .address(.tcp(let host, let port)): .tcp(host: host, port: Int(port))
                case .address(.unix(let path)): .unix(path: path)
                }
            var s = ListenerSettings(
                name: l.name,
                addresses: c.listen.map { a in
                    switch a {
                    case .tcp(let host, let port): .tcp(host: host, port: Int(port))
                    case .unix(let path): .unix(path: path)
                    }
                }, tls: l.tls, backend: backend)
            s.proxyProtocol = c.proxyProtocol == .none ? nil : c.proxyProtocol == .v1 ? .v1 : .v2
            s.acceptProxyProtocol = c.acceptProxyProtocol != .off
            s.acceptedProxyVersions =
                switch c.acceptProxyProtocol {
                case .v1: .v1
                case .v2: .v2
                default: .either
                }
            var limits = ProxyLimits()
            limits.handshakeTimeout = c.limits.handshakeTimeout
            limits.idleTimeout = c.limits.idleTimeout
            limits.maxLifetime = c.limits.maxLifetime
            limits.maxConnections = c.limits.maxConnections
            limits.maxHandshakes = c.limits.maxHandshakes
            limits.handshakeOverflow = c.limits.handshakeOverflow == .refuse ? .refuse : .wait
            limits.handshakeRatePerSource = c.limits.handshakeRatePerSource
            limits.maxRequestBytes = c.limits.maxRequestBytes
            limits.backendConnectTimeout = c.backendConnectTimeout
            s.limits = limits
            return s
        }
    }

    /// A listener's TLS configuration, read from its files now.
    func makeTLSConfiguration(_ l: Listener) throws -> ServerConfiguration {
        l.pendingStaples = [:]
        let c = l.config
        var entries: [CertificateSelector.Entry] = []
        var provider = CryptoProvider.swiftCrypto
        var watched: [String: FileStamp] = [:]
        for pair in c.certificates {
            var certified: CertifiedKey
            switch (pair.cert, pair.key) {
            case (.file(let certPath), .file(let keyPath)):
                try stamp(certPath, into: &watched)
                try stamp(keyPath, into: &watched)
                certified = try loadCertifiedKey(chain: certPath, key: keyPath)
            case (_, .pkcs11(let uri)):
                let certText = pair.cert.description
                let cacheKey = certText + " " + uri
                if let (loaded, p) = l.hsmKeys[cacheKey] {
                    certified = loaded
                    provider = p
                    if case .file(let certPath) = pair.cert {
                        // A renewed certificate for the same key in the token.
                        try stamp(certPath, into: &watched)
                        let chain = try loadCertificates(certPath)
                        certified.chain = chain.map(\.der)
                    }
                } else {
                    let (loaded, p) = try hsm.server(certificate: certText, key: uri) { [logger] in logger.info("\($0)") }
                    l.hsmKeys[cacheKey] = (loaded, p)
                    certified = loaded
                    provider = p
                }
            case (.pkcs11, .file(let keyPath)):
                throw Failure(message: "\(keyPath): a certificate in a token needs its key in the token too (key pkcs11:…)", code: 64)
            }
            if c.staple {
                // One staple per certificate, not per file: a renewed certificate must not be
                // served with the response for the one it replaced.
                let path = pair.cert.description
                let leaf = certified.chain.first ?? []
                let slot: StapleSlot
                if let current = l.pendingStaples[path] ?? l.staples[path], current.leaf == leaf {
                    slot = current
                } else {
                    slot = StapleSlot(chain: try certified.chain.map { try X509Certificate(der: $0) }, leaf: leaf)
                    l.pendingStaples[path] = slot
                }
                certified.ocspStaple = slot.staple
            }
            entries.append(CertificateSelector.Entry(certified, names: pair.serverNames.isEmpty ? nil : pair.serverNames))
        }
        guard !entries.isEmpty else { throw Failure(message: "listener \(l.name) has no certificate", code: 64) }
        var config = ServerConfiguration(provider: provider, certificates: entries.map(\.certified))
        switch c.clientAuth {
        case .none: config.clientAuthentication = .none
        case .optional: config.clientAuthentication = .optional
        case .required: config.clientAuthentication = .required
        }
        if let clientCA = c.clientCA {
            try stamp(clientCA, into: &watched)
            var verifier = try loadVerifier(roots: clientCA, what: "client CA file")
            for path in c.crl { try stamp(path, into: &watched) }
            verifier.crls = try c.crl.flatMap { path in
                try reading(path, what: "CRL file") { try CertificateRevocationList.load(path: path) }
            }
            config.clientCertificateVerifier = verifier
        }
        config.groups = try c.groups.map { name in
            guard let group = NamedGroup(name: name) else { throw Failure(message: "unknown group \(name)", code: 64) }
            return group
        }
        config.versions = c.tlsVersions.map { $0 == .tls13 ? ProtocolVersion.tls13 : .tls12 }
        config.requirePostQuantum = c.pqRequired
        config.alpnProtocols = c.alpn
        config.sessionLifetimeSeconds = UInt32(clamping: c.sessionTimeout.components.seconds)
        config.tls13TicketCount = c.tls13Tickets
        let cache: (any ServerSessionCache)? = c.sessionStore != nil ? l.fleetCache : l.cache
        let ticketKeys: (any TicketSealer)? = c.sessionStore != nil ? l.fleetSealer : l.ticketKeys
        if let metrics {
            config.sessionCache = cache.map { CountingSessionCache($0, metrics: metrics) }
            config.ticketKeys = ticketKeys.map { CountingTicketSealer($0, metrics: metrics) }
        } else {
            config.sessionCache = cache
            config.ticketKeys = ticketKeys
        }
        // By name and by what the client can verify, when there is a choice to make.
        if entries.count > 1 || c.unknownServerName == .reject {
            config.configurationSelector = CertificateSelector(base: config, entries: entries, rejectUnknownNames: c.unknownServerName == .reject)
        }
        // Checked now (a connection validates its configuration), not on the first client.
        do { _ = try TLSConnection.server(configuration: config) } catch {
            throw Failure(message: "listener \(l.name): \(error)", code: 64)
        }
        l.watched = watched
        return config
    }

    /// Records what `path` is before it is read (so that a replacement made during the read is
    /// seen next time), and refuses anything but a regular file (a FIFO would block the reload).
    private func stamp(_ path: String, into watched: inout [String: FileStamp]) throws {
        let stamp = FileStamp(path)
        watched[path] = stamp
        if stamp.exists && !stamp.isRegular { throw Failure(message: "\(path) is not a regular file", code: 1) }
    }

    /// Where reloads run, one at a time: never on an event loop, nor on the signal queue (a
    /// slow file must not delay a drain).
    let reloadQueue = DispatchQueue(label: "qssl.serve.reload")
    /// The stamps of the last attempt, successful or not: a broken file is reported once per
    /// version, not every two seconds.
    private var attempted: [String: [String: FileStamp]] = [:]

    /// Re-reads every listener's certificates, keys, client CAs and CRLs (and ticket-key files):
    /// all or nothing. Open connections keep the configuration they started with.
    func reload(server: ProxyServer, why: String) {
        reloading.withLock { _ in
            var fresh: [(Listener, ServerConfiguration)] = []
            for l in listeners {
                do {
                    fresh.append((l, try makeTLSConfiguration(l)))
                    attempted[l.name] = l.watched
                } catch {
                    attempted[l.name] = l.config.watchedPaths.reduce(into: [:]) { $0[$1] = FileStamp($1) }
                    logger.error(
                        "reload failed, keeping the previous configuration",
                        metadata: ["trigger": .string(why), "listener": .string(l.name), "error": .string(describe(error))])
                    return
                }
            }
            // Only once every listener's files were good: the ticket keys too, then the swap.
            for l in listeners { if let file = l.ticketFile { _ = try? file.reloadIfChanged() } }
            prefetchStaples(fresh.map(\.0))
            for (l, configuration) in fresh {
                server.replaceTLSConfiguration(listener: l.name, with: configuration)
                commitStaples(l)
            }
            let subjects = fresh.flatMap { $0.1.certificates.compactMap { $0.chain.first.flatMap { try? X509Certificate(der: $0) }.map { "\($0.subject)" } } }
            logger.info(
                "reloaded",
                metadata: [
                    "trigger": .string(why), "listeners": .stringConvertible(fresh.count),
                    "certificates": .array(subjects.map { .string($0) })
                ])
        }
    }

    /// Once a second: ticket-key files and a file watch on the TLS files (a change reloads, as
    /// SIGHUP does); once a minute: expired sessions out of the caches; OCSP staples refreshed.
    func startBackgroundTasks(server: ProxyServer) {
        let loop = server.group.next()
        for l in listeners {
            if let file = l.ticketFile {
                let reloader = TicketKeyReloader(file: file) { [logger] line in logger.info("\(line.text)") }
                tasks.append(loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in reloader.check() })
            }
            if let cache = l.cache {
                tasks.append(loop.scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in cache.removeExpired() })
            }
            commitStaples(l)
        }
        // The file watch runs on the reload queue: a slow or blocking file never stalls a loop.
        for l in listeners { attempted[l.name] = l.watched }
        let watch = DispatchSource.makeTimerSource(queue: reloadQueue)
        watch.schedule(deadline: .now() + 2, repeating: 2)
        watch.setEventHandler { [self] in
            let changed = listeners.contains { l in
                (attempted[l.name] ?? l.watched).contains { path, stamp in FileStamp(path) != stamp }
            }
            if changed { reload(server: server, why: "file change") }
        }
        watch.resume()
        fileWatch = watch
    }

    private var fileWatch: DispatchSourceTimer?
    /// Set by `stopBackgroundTasks` (under the reload lock): no staple refresher starts after it.
    private var stopped = false

    /// A renewed certificate's first staple, fetched before the reload takes it into use (for at
    /// most `stapleFetchBeforeReload`, on the reload queue, not on a loop): served without a
    /// staple meanwhile, it would fail clients that require one. The refresher takes over from
    /// this fetch; one that did not finish in time leaves the certificate unstapled until then.
    private func prefetchStaples(_ listeners: [Listener]) {
        let slots = listeners.flatMap { $0.pendingStaples.values }
        guard !slots.isEmpty, !stopped else { return }
        let done = DispatchGroup()
        for slot in slots {
            done.enter()
            let logger = self.logger
            Task {
                defer { done.leave() }
                do {
                    let (status, url, next) = try await StapleRefresher(chain: slot.chain, staple: slot.staple) { _ in }.fetchOnce(timeout: Self.stapleFetchBeforeReload)
                    slot.fetched.withLock { $0 = .some(next) }
                    logger.info("staple: \(status) from \(url), for the certificate being reloaded")
                } catch {
                    logger.info("staple: \(error), for the certificate being reloaded; it is served without a staple until a fetch succeeds")
                }
            }
        }
        _ = done.wait(timeout: .now() + .milliseconds(Int(Self.stapleFetchBeforeReload.components.seconds * 1000)))
    }

    static let stapleFetchBeforeReload: Duration = .seconds(3)

    /// Takes the staples made for `l`'s new configuration into use: each starts being refreshed,
    /// and the one it replaces stops (connections already made keep what they were sent).
    private func commitStaples(_ l: Listener) {
        guard !stopped else {
            l.pendingStaples = [:]
            return
        }
        for (path, slot) in l.pendingStaples {
            l.staples[path]?.task?.cancel()
            let logger = self.logger
            let fetched = slot.fetched.withLock { $0 }
            slot.task = Task { await StapleRefresher(chain: slot.chain, staple: slot.staple) { logger.info("\($0.text)") }.run(fetched: fetched) }
            l.staples[path] = slot
        }
        l.pendingStaples = [:]
    }

    func stopBackgroundTasks() {
        // Under the reload lock: a reload running on the reload queue finishes first, and none
        // after this one starts a refresher.
        reloading.withLock { _ in
            stopped = true
            for l in listeners { for slot in l.staples.values { slot.task?.cancel() } }
        }
        fileWatch?.cancel()
        fleet.stop()
        for task in tasks { task.cancel() }
        tasks = []
    }
}

/// What tells one version of a file from the next without reading it.
struct FileStamp: Equatable {
    var exists = false
    var isRegular = false
    var inode: UInt64 = 0
    var size: Int64 = -1
    var modified: Int64 = 0
    var modifiedNanoseconds: Int = 0

    init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        exists = true
        isRegular = info.st_mode & S_IFMT == S_IFREG
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }
}

extension ListenerConfig {
    /// Every file a listener's TLS configuration is read from.
    var watchedPaths: [String] {
        var paths: [String] = []
        for pair in certificates {
            if case .file(let path) = pair.cert { paths.append(path) }
            if case .file(let path) = pair.key { paths.append(path) }
        }
        if let clientCA { paths.append(clientCA) }
        return paths + crl
    }
}

/// An OCSP staple for one certificate, and the task keeping it fresh.
final class StapleSlot: @unchecked Sendable {  // changed only under the runtime's reload lock, or at start
    let staple = OCSPStaple()
    let chain: [X509Certificate]
    let leaf: [UInt8]
    var task: Task<Void, Never>?
    /// Set when a fetch before the reload succeeded: when its response is good until (nil
    /// inside: it did not say).
    let fetched = Mutex<Date??>(nil)

    init(chain: [X509Certificate], leaf: [UInt8]) {
        self.chain = chain
        self.leaf = leaf
    }
}
