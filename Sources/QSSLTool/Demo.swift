import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a hybrid post-quantum TLS handshake on loopback with an in-memory PKI and show it message by message.")

    @Option(help: "Group the client offers and shares (default: SecP384r1MLKEM1024).")
    var group: String = "SecP384r1MLKEM1024"

    @Flag(help: "Share only x25519 first, so the server asks for the hybrid with a HelloRetryRequest.")
    var helloRetry = false

    @Option(name: .customLong("alg"), help: "Certificate algorithm (default: the seed's hybrid, composite ML-DSA-65 + ECDSA-P384).")
    var certificateAlgorithm: String = PKIBuilder.Algorithm.mldsa65ECDSAP384.rawValue

    @Option(help: "Versions to show, in order: 1.3, 1.2 or both.")
    var tlsVersions: String = "1.3,1.2"

    @Option(
        help: ArgumentHelp(
            "Put a relay inside the demo between client and server that delays every chunk by MS milliseconds each way "
                + "(round trip 2×MS), and compare the measured times with the seed's table (§1.2).", valueName: "MS"))
    var latency: Double?

    @Option(help: ArgumentHelp("Handshakes of each kind timed for the summary table (the median is shown).", valueName: "N"))
    var rounds: Int = 5

    func validate() throws {
        if let latency, !(0...2000).contains(latency) { throw ValidationError("--latency must be 0 to 2000 ms") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1 to 100") }
    }

    func run() async throws {
        guard let group = NamedGroup(name: group) else { throw ValidationError("unknown group \(self.group)") }
        let versions = try tlsVersions.split(separator: ",").map { v -> ProtocolVersion in
            switch v.trimmingCharacters(in: .whitespaces) {
            case "1.3": return .tls13
            case "1.2": return .tls12
            default: throw ValidationError("unsupported TLS version '\(v)'")
            }
        }
        guard let algorithm = PKIBuilder.Algorithm(rawValue: certificateAlgorithm) else { throw ValidationError("unknown --alg \(certificateAlgorithm)") }
        print("Q-SSL demo: building an in-memory PKI (\(algorithm.rawValue) root CA and server certificate for localhost)…")
        let pki = try DemoPKI(algorithm: algorithm)
        if let latency {
            print(String(format: "Link: a relay inside the demo delays every chunk by %g ms each way (round trip %g ms).", latency, 2 * latency))
        }
        var rows: [TimingRow] = []
        for version in versions {
            rows += try await show(version: version, group: group, pki: pki)
        }
        for version in versions { try await showMutualTLS(version: version, group: group, pki: pki, algorithm: algorithm) }
        printTimingTable(rows)
    }

    /// A traced echo server on loopback, behind the delaying relay when --latency is set.
    private func startServer(_ configuration: ServerConfiguration, ticketWait: TimeAmount) async throws -> (NIOQSSLServer, DelayRelay?, DemoLink) {
        let serverHandlers = HandlerBox()
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: configuration, mode: .echo, recordTrace: true,
            onHandler: { h in serverHandlers.append(h) }, log: { _ in })
        var relay: DelayRelay?
        if let latency { relay = try await DelayRelay.start(targetPort: server.port, delay: .nanoseconds(Int64(latency * 1e6))) }
        return (server, relay, DemoLink(port: relay?.port ?? server.port, serverPort: server.port, serverHandlers: serverHandlers, ticketWait: ticketWait))
    }

    /// The seed's chapter 5: the server asks for a client certificate; the client proves a
    /// composite (ML-DSA-65 + ECDSA-P384) certificate with CertificateVerify; both halves verify.
    private func showMutualTLS(version: ProtocolVersion, group: NamedGroup, pki: DemoPKI, algorithm: PKIBuilder.Algorithm) async throws {
        let clientKey = try algorithm.generateKey()
        let clientCert = try PKIBuilder.issue(subject: "CN=demo-client, O=Q-SSL", key: clientKey, by: pki.ca, client: true)
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.groups = Defaults.groups + (Defaults.groups.contains(group) ? [] : [group])
        serverConfig.clientAuthentication = .required
        serverConfig.clientCertificateVerifier = pki.verifier
        let (server, relay, link) = try await startServer(serverConfig, ticketWait: .milliseconds(200))
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        config.versions = [version]
        config.groups = [group] + Defaults.groups.filter { $0 != group }
        config.keyShareGroups = [group]
        config.sessionStore = nil
        config.clientCertificate = try CertificateFiles.certifiedKey(chain: [clientCert], key: clientKey)
        let exchange = try await link.exchange(config, trace: true)
        print("")
        print(
            "\(version == .tls13 ? "TLS 1.3" : "TLS 1.2") mutual TLS with a \(clientCert.publicKey.description) client certificate, as in the seed's chapter 5 "
                + "(CertificateRequest, client Certificate and CertificateVerify; the server verifies both halves)")
        exchange.print(fullMilliseconds: nil)
        await relay?.close()
        try await server.close()
    }

    /// One server for a version: its full handshake and its resumptions, traced; then each kind
    /// timed `rounds` times for the table.
    private func show(version: ProtocolVersion, group: NamedGroup, pki: DemoPKI) async throws -> [TimingRow] {
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.groups = Defaults.groups + (Defaults.groups.contains(group) ? [] : [group])
        let (server, relay, link) = try await startServer(serverConfig, ticketWait: .milliseconds(1000 + Int64(4 * (latency ?? 0))))

        // Full handshakes keep no sessions; resumptions share a store, as one application would.
        var full = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        full.versions = [version]
        full.groups = [group] + Defaults.groups.filter { $0 != group }
        full.keyShareGroups = helloRetry ? [.x25519] : [group]
        if helloRetry { full.groups = full.groups.filter { $0 != .x25519 } + [.x25519] }
        full.sessionStore = nil
        var resuming = full
        resuming.sessionStore = InMemoryClientSessionStore(maxSessionsPerKey: 8)

        // One untimed handshake first, so that one-time costs (code paths, caches) do not land on the traced one.
        _ = try await link.exchange(full, trace: false)

        let traced = try await link.exchange(resuming, trace: true)
        print("")
        if version == .tls13 {
            print("TLS 1.3 full handshake (1-RTT), as in the seed's diagram 2.1 — server on 127.0.0.1:\(server.port)")
        } else {
            print("TLS 1.2 full handshake (2-RTT) with the Q-SSL hybrid suite, as in the seed's diagram 1.1 — server on 127.0.0.1:\(server.port)")
        }
        traced.print(fullMilliseconds: nil)

        var rows: [TimingRow] = []
        if version == .tls13 {
            let resumed = try await link.exchange(resuming, trace: true)
            print("")
            print(
                "TLS 1.3 resumption with a ticket from the handshake above (PSK with psk_dhe_ke: a fresh \(resumed.summary.group) key exchange, "
                    + "no Certificate or CertificateVerify), as in the seed's §4")
            resumed.print(fullMilliseconds: traced.milliseconds)
            let fullTimes = try await link.time(full, rounds: rounds)
            let resumedTimes = try await link.time(resuming, rounds: rounds, expectResumed: true)
            rows.append(
                TimingRow(
                    label: helloRetry ? "TLS 1.3 full (HelloRetryRequest, 2-RTT)" : "TLS 1.3 full (1-RTT)", kind: .tls13Full, milliseconds: fullTimes,
                    fullMilliseconds: nil))
            rows.append(TimingRow(label: "TLS 1.3 resumed, PSK psk_dhe_ke", kind: .resumed, milliseconds: resumedTimes, fullMilliseconds: fullTimes))
        } else {
            let byTicket = try await link.exchange(resuming, trace: true)
            print("")
            print("TLS 1.2 resumption by session ticket (RFC 5077; abbreviated handshake, server Finished first), as in the seed's §4")
            byTicket.print(fullMilliseconds: traced.milliseconds)

            var byIDConfig = resuming
            byIDConfig.tls12SessionTickets = false
            byIDConfig.sessionStore = InMemoryClientSessionStore()
            var fullWithoutTicket = full
            fullWithoutTicket.tls12SessionTickets = false
            let idFull = try await link.exchange(byIDConfig, trace: false)
            let byID = try await link.exchange(byIDConfig, trace: true)
            print("")
            print(
                String(
                    format:
                        "TLS 1.2 resumption by session ID (server cache; abbreviated handshake), as in the seed's §3 — after a full handshake without a ticket (%.2f ms)",
                    idFull.milliseconds))
            byID.print(fullMilliseconds: idFull.milliseconds)

            let fullTimes = try await link.time(full, rounds: rounds)
            let ticketTimes = try await link.time(resuming, rounds: rounds, expectResumed: true)
            let idFullTimes = try await link.time(fullWithoutTicket, rounds: rounds)
            let idTimes = try await link.time(byIDConfig, rounds: rounds, expectResumed: true)
            rows.append(TimingRow(label: "TLS 1.2 full (2-RTT)", kind: .tls12Full, milliseconds: fullTimes, fullMilliseconds: nil))
            rows.append(TimingRow(label: "TLS 1.2 resumed, session ticket", kind: .resumed, milliseconds: ticketTimes, fullMilliseconds: fullTimes))
            rows.append(TimingRow(label: "TLS 1.2 full, no ticket", kind: .tls12Full, milliseconds: idFullTimes, fullMilliseconds: nil))
            rows.append(TimingRow(label: "TLS 1.2 resumed, session ID", kind: .resumed, milliseconds: idTimes, fullMilliseconds: idFullTimes))
        }
        await relay?.close()
        try await server.close()
        return rows
    }

    /// The medians, with the seed's figures beside them when a latency was set.
    private func printTimingTable(_ rows: [TimingRow]) {
        guard !rows.isEmpty else { return }
        print("")
        let link = latency.map { String(format: "%g ms each way through the relay (RTT %g ms)", $0, 2 * $0) } ?? "loopback, no added latency"
        print("Handshake times, median of \(rounds) each (client: from the TCP connection to the handshake's completion; \(link)):")
        let seed = latency != nil
        var header = "  " + "handshake".padding(toLength: 40, withPad: " ", startingAt: 0) + "   measured  saved vs full     "
        if seed { header += "   seed    seed saved" }
        while header.last == " " { header.removeLast() }
        print(header)
        for row in rows {
            let m = median(row.milliseconds)
            var line = "  " + row.label.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: " %8.2f ms", m)
            if let full = row.fullMilliseconds.map(median) {
                let saved = String(format: "%.2f ms (%@%.0f%%)", full - m, full >= m ? "−" : "+", abs(full - m) / full * 100)
                line += "  " + saved.padding(toLength: 20, withPad: " ", startingAt: 0)
            } else {
                line += String(repeating: " ", count: 22)
            }
            if seed {
                func seedText(_ ms: Double) -> String {
                    let text = String(format: "~%.0f ms", ms)
                    return "  " + String(repeating: " ", count: max(0, 7 - text.count)) + text
                }
                switch row.kind {
                case .tls12Full: line += seedText(SeedTimings.tls12FullMilliseconds)
                case .tls13Full: line += seedText(SeedTimings.tls13FullMilliseconds)
                case .resumed: line += seedText(SeedTimings.resumedMilliseconds) + String(format: "    −%.0f%%", SeedTimings.resumptionSaving * 100)
                }
            }
            while line.last == " " { line.removeLast() }
            print(line)
        }
        if seed {
            print("  Seed: Q-SSL-sequence-diagrams §1.2 (TLS 1.2 ~93 ms: ~43 ms network + ~50 ms HSM-backed PQC), §2.1 (TLS 1.3 ~70 ms),")
            print("  §3–4 and the summary (resumed ~15 ms, −80%): design figures, not measurements. A resumed handshake still takes one")
            print("  round trip (TLS 1.3 PSK and the TLS 1.2 abbreviated handshake alike), a full TLS 1.2 one two: the larger the RTT")
            print("  against the CPU time, the smaller the share resumption can save.")
        }
    }
}

/// The seed's timing table (Q-SSL-sequence-diagrams.md §1.2, §2.1, §3–4 and its summary), for
/// `qssl demo --latency`: figures from the design document, not measurements.
enum SeedTimings {
    /// TLS 1.2 full handshake with the hybrid: ~43 ms of network plus ~50 ms of PQC work.
    static let tls12FullMilliseconds = 93.0
    /// TLS 1.3 full handshake, 1-RTT.
    static let tls13FullMilliseconds = 70.0
    /// A resumed handshake, by session ID or ticket.
    static let resumedMilliseconds = 15.0
    /// "Session resumption cuts handshake time by 80%".
    static let resumptionSaving = 0.80
}

/// One line of the demo's timing table.
struct TimingRow {
    enum Kind { case tls12Full, tls13Full, resumed }
    var label: String
    var kind: Kind
    var milliseconds: [Double]
    /// The matching full handshake's times, for a resumption.
    var fullMilliseconds: [Double]?
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The demo's client side of one server (directly or through the relay): every connection is
/// driven and recorded by `qssl trace`'s recorder (TraceRecorder.swift) — messages, records,
/// segments and the client's computations — so the demo and `qssl trace` share one code path.
struct DemoLink {
    let port: Int
    let serverPort: Int
    let serverHandlers: HandlerBox
    let ticketWait: TimeAmount
    static let message = Array("Hello, post-quantum world!".utf8)

    private func recorder(_ config: ClientConfiguration, label: String, data: [UInt8]?) -> TraceRecorder {
        var r = TraceRecorder(host: "127.0.0.1", port: port, serverName: "localhost", configuration: config, session: nil, label: label, mss: nil)
        r.sessionKey = "127.0.0.1:\(serverPort)"
        r.applicationData = data
        // With a session store, the session(s) the server issues are waited for (and kept);
        // without one, the connection ends with the echo.
        r.ticketWait = config.sessionStore != nil ? Double(ticketWait.nanoseconds) / 1e9 : 0
        r.stopOnceSessionIssued = true
        return r
    }

    private static func check(_ run: TraceRun) throws {
        if let f = run.failure { throw Failure(message: "\(f.stage): \(f.message)", code: 1) }
        guard run.succeeded else { throw Failure(message: "the handshake did not complete", code: 1) }
    }

    /// One connection: handshake, a message echoed, the session tickets read, closed.
    func exchange(_ config: ClientConfiguration, trace: Bool) async throws -> DemoExchange {
        var r = recorder(config, label: "demo", data: Self.message)
        let run = await r.run()
        try Self.check(run)
        guard let summary = r.summary else { throw Failure(message: "the handshake did not complete", code: 1) }
        guard r.received == Self.message else { throw Failure(message: "echo mismatch", code: 1) }
        let serverTrace = trace ? try await serverHandlers.lastTrace() : []
        return DemoExchange(run: run, summary: summary, origin: r.origin, serverTrace: serverTrace, echoed: r.received)
    }

    /// Handshake times of `rounds` connections (no data, but the tickets read when resuming).
    func time(_ config: ClientConfiguration, rounds: Int, expectResumed: Bool = false) async throws -> [Double] {
        var times: [Double] = []
        for _ in 0..<rounds {
            var r = recorder(config, label: "timed", data: nil)
            let run = await r.run()
            try Self.check(run)
            if run.resumed != expectResumed {
                throw Failure(message: "a \(expectResumed ? "resumption" : "full handshake") was \(run.resumed ? "resumed" : "not resumed")", code: 1)
            }
            times.append(run.handshakeMilliseconds ?? 0)
        }
        return times
    }
}

struct DemoExchange {
    /// The client's side, as `qssl trace` records it.
    let run: TraceRun
    let summary: HandshakeSummary
    /// The recorder's time 0, to place the server's trace on the same clock.
    let origin: ContinuousClock.Instant
    let serverTrace: [HandshakeTraceEntry]
    let echoed: [UInt8]
    /// From the TCP connection to the handshake's completion.
    var milliseconds: Double { run.handshakeMilliseconds ?? 0 }

    func print(fullMilliseconds: Double?) {
        demoTraceLines(run: run, origin: origin, server: serverTrace).forEach { Swift.print($0) }
        Swift.print("")
        // The flights and their segments, as `qssl trace` prints them.
        TraceRender.flightLines(run).forEach { Swift.print($0) }
        Swift.print("")
        summaryLines(summary, handshakeMilliseconds: milliseconds).forEach { Swift.print($0) }
        if let full = fullMilliseconds {
            let saved = full - milliseconds
            Swift.print(
                String(
                    format: "Time saved:        %.2f ms against the full handshake above (%.2f ms): %@%.0f%%",
                    saved, full, saved >= 0 ? "−" : "+", abs(saved) / full * 100))
        }
        Swift.print("Application data: sent \(DemoLink.message.count) bytes, echoed back \(echoed.count) bytes: \"\(String(decoding: echoed, as: UTF8.self))\"")
    }
}

/// Server handlers created on event loops, read back on their loop once the exchange is over.
final class HandlerBox: @unchecked Sendable {
    private let lock = NIOLock()
    private var handlers: [(handler: NIOQSSLHandler, loop: EventLoop?)] = []

    /// Called on the connection's event loop.
    func append(_ h: NIOQSSLHandler) {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        lock.withLock { handlers.append((h, loop)) }
    }

    /// The newest connection's server trace.
    func lastTrace() async throws -> [HandshakeTraceEntry] {
        guard let last = lock.withLock({ handlers.last }) else { return [] }
        nonisolated(unsafe) let handler = last.handler
        guard let loop = last.loop else { return handler.trace }
        return try await loop.submit { handler.trace }.get()
    }
}
