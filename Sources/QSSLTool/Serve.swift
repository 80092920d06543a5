import ArgumentParser
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

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Terminate TLS (hybrid post-quantum by default) in front of a TCP service, or echo / answer HTTP.",
        discussion: """
            A production TLS-terminating proxy: several listeners and certificates (chosen by SNI and by what \
            the client can verify), PROXY protocol to the backend, back-pressure and half-close both ways, \
            limits (handshake and idle timeouts, connection and handshake caps, a per-address handshake rate), \
            SIGHUP reload without dropping connections, SIGTERM drain, one access-log line per connection, and \
            Prometheus metrics. Without --backend it echoes (or answers HTTP with --http).
            """)

    @Option(
        help: ArgumentHelp(
            "A configuration file (YAML; `qssl check-config` checks one). Flags given with it override its settings in every listener.", valueName: "FILE"))
    var config: String?

    @Option(help: ArgumentHelp("Address to listen on (repeatable): HOST:PORT, [IPv6]:PORT or unix:/path. Default 127.0.0.1:8443.", valueName: "ADDRESS"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("PEM certificate chain, leaf first, or pkcs11:… (repeatable, paired with --key by order).", valueName: "FILE"))
    var cert: [String] = []

    @Option(help: ArgumentHelp("PEM private key (PKCS#8, SEC1 or PKCS#1), or pkcs11:… for a key in an HSM (repeatable).", valueName: "FILE"))
    var key: [String] = []

    @OptionGroup(title: "HSM options (with --key pkcs11:…)")
    var hsm: HSMOptions

    @Option(
        help: ArgumentHelp(
            "Where the plaintext goes: HOST:PORT or unix:/path. Without it the server echoes (or answers HTTP with --http).", valueName: "ADDRESS"))
    var backend: String?

    @Flag(help: "Echo application data back (the default without --backend).")
    var echo = false

    @Flag(help: "Answer each request with a small HTTP/1.0 page describing the connection, then close with close_notify.")
    var http = false

    @Option(help: ArgumentHelp("Send a PROXY protocol header (v1 or v2, with TLS and post-quantum TLVs) to the backend first.", valueName: "v1|v2"))
    var proxyProtocol: String?

    @Flag(help: "Each client connection starts with a PROXY protocol header (v1 or v2) from a load balancer.")
    var acceptProxyProtocol = false

    @Option(
        help: ArgumentHelp(
            "With --accept-proxy-protocol: the load balancers' addresses or prefixes (comma-separated, e.g. 10.0.0.0/8,::1); connections from elsewhere are closed at accept. Default: any.",
            valueName: "PREFIXES"))
    var acceptProxyFrom: String?

    @Option(help: ArgumentHelp("A server name no certificate serves: the default certificates, or refuse with unrecognized_name.", valueName: "default|reject"))
    var unknownServerName: String?

    @Option(help: "Comma-separated groups in preference order, IANA names.")
    var groups: String?

    @Option(help: "TLS versions to accept: 1.3, 1.2 or 1.2,1.3.")
    var tlsVersions: String?

    @Flag(help: "Refuse handshakes without ML-KEM (insufficient_security).")
    var pqRequired = false

    @Option(help: "Comma-separated ALPN protocols in preference order.")
    var alpn: String?

    @Flag(help: "Log JSON objects (the same as --access-log json).")
    var json = false

    @Option(help: ArgumentHelp("Log format: one line per connection and per server event.", valueName: "text|json"))
    var accessLog: String?

    @Option(
        help: ArgumentHelp(
            "Session-ticket keys shared with other servers (`qssl ticket-keys generate`); re-read when the file changes. "
                + "Default: keys in memory, rotated every 12 h.", valueName: "FILE"))
    var ticketKeys: String?

    @Option(
        help: ArgumentHelp("Lifetime of sessions and tickets, and timeout of the TLS 1.2 session-ID cache, in seconds (1 to 604800).", valueName: "SECONDS"))
    var sessionTimeout: UInt32?

    @Flag(help: "Keep no TLS 1.2 session-ID cache (no resumption by session ID).")
    var noSessionCache = false

    @Flag(help: "Issue and accept no session tickets (TLS 1.2 RFC 5077 and TLS 1.3).")
    var noTickets = false

    @Option(help: ArgumentHelp("TLS 1.3 NewSessionTicket messages sent after a full handshake (0 to 16; one after a resumption).", valueName: "N"))
    var tls13Tickets: Int?

    @Option(help: ArgumentHelp("Trusted roots for client certificates (PEM); with --client-auth optional or required.", valueName: "CAS.pem"))
    var clientCA: String?

    @Option(help: ArgumentHelp("Ask clients for a certificate: none, optional or required.", valueName: "none|optional|required"))
    var clientAuth: String?

    @Option(help: ArgumentHelp("A CRL (PEM or DER) for client certificates (repeatable).", valueName: "FILE"))
    var crl: [String] = []

    @Flag(help: "Staple an OCSP response for the certificate (fetched from the responder in its AIA, refreshed before it expires).")
    var staple = false

    @Option(help: ArgumentHelp("Seconds from accept to handshake completed (default 10).", valueName: "SECONDS"))
    var handshakeTimeout: Double?

    @Option(help: ArgumentHelp("Seconds without data either way before a connection is closed (default 300, 0: never).", valueName: "SECONDS"))
    var idleTimeout: Double?

    @Option(help: ArgumentHelp("Seconds a connection may stay open (default 0: no limit).", valueName: "SECONDS"))
    var maxLifetime: Double?

    @Option(help: ArgumentHelp("Open connections per listener (default 10000); more wait in the accept queue.", valueName: "N"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Handshakes in progress at once per listener (default 256).", valueName: "N"))
    var maxHandshakes: Int?

    @Option(help: ArgumentHelp("Beyond --max-handshakes: wait for a slot or refuse at once (default wait).", valueName: "wait|refuse"))
    var handshakeOverflow: String?

    @Option(help: ArgumentHelp("Handshakes per second from one client address (default 0: unlimited).", valueName: "N"))
    var handshakeRate: Int?

    @Option(help: ArgumentHelp("Seconds a backend connection may take to open (default 5).", valueName: "SECONDS"))
    var backendConnectTimeout: Double?

    @Option(help: ArgumentHelp("The largest HTTP request head --http reads (default 65536).", valueName: "BYTES"))
    var maxRequestBytes: Int?

    @Option(help: ArgumentHelp("On SIGTERM, seconds open connections may take to finish before they are closed (default 30).", valueName: "SECONDS"))
    var drainTimeout: Double?

    @Option(
        help: ArgumentHelp(
            "Event-loop threads serving every listener, 1 to 1024 (default: one per core). Read at start; a reload does not change it. "
                + "Fewer than the cores leaves them to a backend or a load generator on the same machine.",
            valueName: "N"))
    var threads: Int?

    @Option(help: ArgumentHelp("Serve Prometheus metrics (GET /metrics) and GET /healthz on this address (at most 64 connections at once, each closed after 10 s).", valueName: "HOST:PORT"))
    var metrics: String?

    @OptionGroup(title: "Fleet: session IDs and ticket keys shared through Redis")
    var fleet: FleetServeOptions

    func validate() throws {
        if config != nil {
            if !listen.isEmpty || !cert.isEmpty || !key.isEmpty || backend != nil || echo || http {
                throw ValidationError("with --config, the listeners (--listen, --cert, --key, --backend, --echo, --http) are in the file")
            }
        } else {
            guard !cert.isEmpty else { throw ValidationError("--cert is required (or --config FILE)") }
            guard cert.count == key.count else { throw ValidationError("give one --key for each --cert (\(cert.count) certificates, \(key.count) keys)") }
        }
        if let clientAuth, !["none", "optional", "required"].contains(clientAuth) { throw ValidationError("--client-auth is none, optional or required") }
        if let threads, !ServeConfigFile.threadCounts.contains(threads) {
            throw ValidationError("--threads must be \(ServeConfigFile.threadCounts.lowerBound) to \(ServeConfigFile.threadCounts.upperBound)")
        }
        if let clientAuth, clientAuth != "none", clientCA == nil, config == nil {
            throw ValidationError("--client-auth \(clientAuth) needs --client-ca CAS.pem")
        }
        if [echo, http, backend != nil].filter({ $0 }).count > 1 { throw ValidationError("choose one of --backend, --echo and --http") }
        if noTickets && ticketKeys != nil { throw ValidationError("choose one of --ticket-keys and --no-tickets") }
        if let sessionTimeout, !(1...604_800).contains(sessionTimeout) { throw ValidationError("--session-timeout must be 1 to 604800 seconds") }
        if let tls13Tickets, !(0...16).contains(tls13Tickets) { throw ValidationError("--tls13-tickets must be 0 to 16") }
        if let proxyProtocol, !["v1", "v2"].contains(proxyProtocol) { throw ValidationError("--proxy-protocol is v1 or v2") }
        if acceptProxyFrom != nil && !acceptProxyProtocol && config == nil { throw ValidationError("--accept-proxy-from goes with --accept-proxy-protocol") }
        for prefix in trustedProxyPrefixes.invalid { throw ValidationError("--accept-proxy-from: '\(prefix)' is not an address or ADDRESS/LENGTH prefix") }
        if let unknownServerName, !["default", "reject"].contains(unknownServerName) { throw ValidationError("--unknown-server-name is default or reject") }
        if let accessLog, !["text", "json"].contains(accessLog) { throw ValidationError("--access-log is text or json") }
        if let handshakeOverflow, !["wait", "refuse"].contains(handshakeOverflow) { throw ValidationError("--handshake-overflow is wait or refuse") }
        for (name, value, minimum) in [
            ("--handshake-timeout", handshakeTimeout, 0.001), ("--idle-timeout", idleTimeout, 0), ("--max-lifetime", maxLifetime, 0),
            ("--backend-connect-timeout", backendConnectTimeout, 0.001), ("--drain-timeout", drainTimeout, 0)
        ] {
            if let value, !(minimum...86_400 * 365).contains(value) {
                throw ValidationError("\(name) must be \(minimum == 0 ? "0" : "more than 0") to 31536000 seconds")
            }
        }
        for (name, value, minimum) in [
            ("--max-connections", maxConnections, 1), ("--max-handshakes", maxHandshakes, 1), ("--handshake-rate", handshakeRate, 0),
            ("--max-request-bytes", maxRequestBytes, 16)
        ] {
            if let value, !(minimum...100_000_000).contains(value) { throw ValidationError("\(name) must be \(minimum) to 100000000") }
        }
        try hsm.validateHSM()
        try fleet.validate(fromFile: config != nil, ticketKeys: ticketKeys)
    }

    func run() async throws {
        let file = try loadConfiguration()
        // Before anything uses SwiftNIO's shared event-loop group (it may be set only once).
        if let threads = file.threads { NIOSingletons.groupLoopCountSuggestion = threads }
        let format: LogFormat = json ? .json : accessLog.flatMap(LogFormat.init(rawValue:)) ?? (file.accessLog == .json ? .json : .text)
        let logger = Logger(label: "qssl.serve") { _ in LineLogHandler(format: format) }
        let metricsRegistry = file.metrics.map { _ in ProxyMetrics() }
        let trusted = trustedProxyPrefixes.valid
        let runtime = try ServeRuntime(file: file, hsm: hsm, metrics: metricsRegistry, logger: logger, fleet: fleet.store)
        await runtime.fleet.start()
        let server: ProxyServer
        do {
            let settings = runtime.listenerSettings.map { s -> ListenerSettings in
                var s = s
                if !trusted.isEmpty { s.trustedProxySources = trusted }
                return s
            }
            server = try await ProxyServer.start(listeners: settings, metrics: metricsRegistry, logger: logger)
        } catch {
            throw Failure(message: "cannot listen: \(describe(error))", code: 1)
        }
        for (listener, address) in server.boundAddresses {
            logger.info("listening on \(address)", metadata: ["listener": .string(listener), "address": .string(address)])
        }
        let draining = Mutex(false)
        var metricsServer: MetricsServer?
        if let address = file.metrics, let metricsRegistry, case .tcp(let host, let port) = address {
            do {
                metricsServer = try await MetricsServer.start(
                    host: host, port: Int(port), metrics: metricsRegistry,
                    healthy: { !draining.withLock { $0 } })
            } catch {
                throw Failure(message: "cannot serve metrics on \(address): \(describe(error))", code: 1)
            }
            logger.info("metrics on \(metricsServer!.localAddress)", metadata: ["address": .string(metricsServer!.localAddress)])
        }
        runtime.startBackgroundTasks(server: server)

        // Signals: SIGHUP reloads, SIGTERM and SIGINT drain.
        signal(SIGHUP, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "qssl.signals")
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler { runtime.reloadQueue.async { runtime.reload(server: server, why: "SIGHUP") } }
        hup.resume()
        let stop = AsyncStream<Int32>.makeStream()
        var sources = [hup]
        let stopping = Mutex(false)
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                // A second SIGTERM or SIGINT during the drain stops at once.
                if stopping.withLock({ s -> Bool in
                    defer { s = true }
                    return s
                }) {
                    FileHandle.standardError.write(Data("qssl: stopped during the drain\n".utf8))
                    Foundation.exit(1)
                }
                stop.continuation.yield(sig)
            }
            source.resume()
            sources.append(source)
        }
        var signals = stop.stream.makeAsyncIterator()
        let received = await signals.next() ?? SIGTERM
        draining.withLock { $0 = true }
        let timeout = file.drainTimeout
        logger.info(
            "draining",
            metadata: [
                "signal": .string(received == SIGINT ? "SIGINT" : "SIGTERM"),
                "open_connections": .stringConvertible(server.openConnections),
                "drain_timeout_s": .stringConvertible(Int(timeout.components.seconds))
            ])
        let closed = await server.drain(timeout: timeout)
        runtime.stopBackgroundTasks()
        await metricsServer?.close()
        logger.info("drained", metadata: ["closed_at_deadline": .stringConvertible(closed)])
        for source in sources { source.cancel() }
    }

    /// The configuration file with the flags applied, or one listener made of the flags.
    func loadConfiguration() throws -> ServeConfigFile {
        var file: ServeConfigFile
        if let config {
            switch ServeConfigFile.load(contentsOf: config, checkFiles: true) {
            case .success(let loaded): file = loaded
            case .failure(let errors): throw Failure(message: "\(config) has errors:\n\(errors.description)", code: 64)
            }
            if let module = file.hsm?.module, hsm.module == nil { _ = module }
        } else {
            let addresses = try (listen.isEmpty ? ["127.0.0.1:8443"] : listen).map { try parseNetworkAddress($0, listening: true) }
            let target: QSSLServeConfig.Backend
            if let backend { target = .address(try parseNetworkAddress(backend)) } else { target = http ? .http : .echo }
            let pairs = zip(cert, key).map { c, k in
                CertificatePair(cert: HSMOptions.isURI(c) ? .pkcs11(c) : .file(c), key: HSMOptions.isURI(k) ? .pkcs11(k) : .file(k))
            }
            file = ServeConfigFile(listeners: [ListenerConfig(listen: addresses, backend: target, certificates: pairs)])
        }
        if let metrics { file.metrics = try parseNetworkAddress(metrics) }
        if let drainTimeout { file.drainTimeout = .milliseconds(Int64(drainTimeout * 1000)) }
        if let threads { file.threads = threads }
        for i in file.listeners.indices { try applyFlags(to: &file.listeners[i]) }
        return file
    }

    /// Flags given on the command line override the file's settings.
    func applyFlags(to l: inout ListenerConfig) throws {
        if let proxyProtocol { l.proxyProtocol = proxyProtocol == "v1" ? .v1 : .v2 }
        if acceptProxyProtocol { l.acceptProxyProtocol = .either }
        if let unknownServerName { l.unknownServerName = unknownServerName == "reject" ? .reject : .useDefault }
        if let groups { l.groups = try (parseGroups(groups) ?? []).map(\.description) }
        if let tlsVersions { l.tlsVersions = try parseTLSVersions(tlsVersions).map { $0 == .tls13 ? .tls13 : .tls12 } }
        if pqRequired { l.pqRequired = true }
        if let alpn { l.alpn = alpn.split(separator: ",").map(String.init) }
        if let ticketKeys { l.ticketKeys = .file(ticketKeys) }
        if noTickets { l.ticketKeys = .disabled }
        if let sessionTimeout { l.sessionTimeout = .seconds(Int64(sessionTimeout)) }
        if noSessionCache { l.sessionCache = false }
        if let tls13Tickets { l.tls13Tickets = tls13Tickets }
        fleet.apply(to: &l)
        if l.sessionStore != nil, case .file = l.ticketKeys {
            throw ValidationError("listener \(l.name ?? "") has ticket-keys: a file and a session store; the fleet's ticket keys are in Redis")
        }
        if let clientCA { l.clientCA = clientCA }
        if let clientAuth { l.clientAuth = ClientAuthMode(rawValue: clientAuth) ?? .none }
        if !crl.isEmpty { l.crl = crl }
        if staple { l.staple = true }
        func seconds(_ s: Double) -> Duration { .milliseconds(Int64((s * 1000).rounded())) }
        if let handshakeTimeout { l.limits.handshakeTimeout = seconds(handshakeTimeout) }
        if let idleTimeout { l.limits.idleTimeout = idleTimeout == 0 ? nil : seconds(idleTimeout) }
        if let maxLifetime { l.limits.maxLifetime = maxLifetime == 0 ? nil : seconds(maxLifetime) }
        if let maxConnections { l.limits.maxConnections = maxConnections }
        if let maxHandshakes { l.limits.maxHandshakes = maxHandshakes }
        if let handshakeOverflow { l.limits.handshakeOverflow = handshakeOverflow == "refuse" ? .refuse : .wait }
        if let handshakeRate { l.limits.handshakeRatePerSource = handshakeRate == 0 ? nil : handshakeRate }
        if let maxRequestBytes { l.limits.maxRequestBytes = maxRequestBytes }
        if let backendConnectTimeout { l.backendConnectTimeout = seconds(backendConnectTimeout) }
    }
}

/// HOST:PORT, [IPv6]:PORT or unix:/path.
extension Serve {
    /// `--accept-proxy-from`, parsed (and what did not parse).
    var trustedProxyPrefixes: (valid: [AddressPrefix], invalid: [String]) {
        let items = (acceptProxyFrom ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return (items.compactMap(AddressPrefix.init), items.filter { AddressPrefix($0) == nil })
    }
}

/// Port 0 (any free port) only for a listening address.
func parseNetworkAddress(_ text: String, listening: Bool = false) throws -> NetworkAddress {
    if text.hasPrefix("unix:") {
        let path = String(text.dropFirst(5))
        guard path.hasPrefix("/") else { throw ValidationError("\(text): a unix: address needs an absolute path") }
        return .unix(path: path)
    }
    let (host, port) = try parseHostPort(text, defaultPort: -1)
    guard ((listening ? 0 : 1)...65535).contains(port) else { throw ValidationError("\(text): expected HOST:PORT with a port from 1 to 65535") }
    return .tcp(host: host, port: UInt16(port))
}

/// `qssl check-config FILE`: every error of a configuration file, with its line.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a `qssl serve --config` file: prints every error with its line and column, or ok.")

    @Argument(help: "The configuration file (YAML).")
    var file: String?

    @Flag(help: "Do not check that the certificate, key, CA, CRL, PIN and ticket-key files it names exist and can be read.")
    var noFileChecks = false

    @Flag(help: "Print a complete commented example configuration and exit.")
    var sample = false

    func validate() throws {
        if !sample && file == nil { throw ValidationError("name the configuration file to check (or --sample for an example)") }
    }

    func run() throws {
        if sample {
            print(ServeConfigFile.sampleYAML, terminator: "")
            return
        }
        guard let file else { return }
        switch ServeConfigFile.load(contentsOf: file, checkFiles: !noFileChecks) {
        case .success(let config):
            let names = config.listeners.enumerated().map { $0.element.name ?? "listener \($0.offset + 1)" }
            print("\(config.listeners.count) listener\(config.listeners.count == 1 ? "" : "s"): \(names.joined(separator: ", "))")
            print("\(file): ok")
        case .failure(let errors):
            print(errors.description)
            throw ExitCode(1)
        }
    }
}
