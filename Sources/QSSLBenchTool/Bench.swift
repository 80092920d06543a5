import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

/// The measurements, shared by the subcommands (Commands.swift): each returns its figures as JSON
/// objects and, unless `json`, prints them as lines while it measures.
struct Bench {
    /// Print nothing while measuring; `finish` prints the figures as one JSON object.
    let json: Bool

    /// `{"results": [...]}` on stdout with --json; nothing otherwise (the lines are printed).
    func finish(_ results: [[String: Any]]) throws {
        guard json else { return }
        let data = try JSONSerialization.data(withJSONObject: ["results": results], options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Full TLS 1.3 handshakes per second per group and the seed's TLS 1.2 hybrid suite; then
    /// certificate-chain verification (root → leaf) per algorithm, and full TLS 1.3 handshakes
    /// with a composite chain next to an ECDSA-P384 chain.
    func handshakeFigures(pki: DemoPKI, handshakes: Int, groups: [NamedGroup]) throws -> [[String: Any]] {
        var results: [[String: Any]] = []
        for group in groups {
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.groups = [group]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.sessionStore = nil  // full handshakes: nothing to resume
            client.versions = [.tls13]
            client.groups = [group]
            client.keyShareGroups = [group]
            _ = try handshake(client: client, server: server)  // warm-up
            let start = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let rate = Double(handshakes) / seconds(since: start)
            results.append([
                "kind": "handshake", "group": group.description, "handshakes_per_second": rate,
                "ms_per_handshake_both_sides": 1000 / rate
            ])
            if !json {
                print(
                    padded(group.description, 20)
                        + String(format: " %8.1f full handshakes/s  (%.2f ms CPU per handshake, client+server) TLS 1.3", rate, 1000 / rate))
            }
        }
        // The seed's TLS 1.2 hybrid (PROTOCOL.md §3) next to TLS 1.3 with the same group.
        do {
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.versions = [.tls12]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.sessionStore = nil
            client.versions = [.tls12]
            _ = try handshake(client: client, server: server)
            let start = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let rate = Double(handshakes) / seconds(since: start)
            results.append([
                "kind": "handshake", "version": "TLSv1.2", "group": "SecP384r1MLKEM1024", "handshakes_per_second": rate,
                "ms_per_handshake_both_sides": 1000 / rate
            ])
            if !json {
                print(
                    padded("SecP384r1MLKEM1024", 20)
                        + String(format: " %8.1f full handshakes/s  (%.2f ms CPU per handshake, client+server) TLS 1.2 hybrid suite", rate, 1000 / rate))
            }
        }
        for algorithm in [PKIBuilder.Algorithm.mldsa65ECDSAP384, .mldsa65, .mldsa87, .ecdsaP384, .ecdsaP256, .rsa3072PSS, .ed25519] {
            let chainPKI = try algorithm == .ecdsaP384 ? pki : DemoPKI(algorithm: algorithm)
            let verifier = chainPKI.verifier
            let chain = [chainPKI.serverCertificate.der]
            let n = max(handshakes, 100)
            let start = ContinuousClock.now
            for _ in 0..<n { _ = try verifier.verify(chain: chain, role: .server(name: "localhost")) }
            let rate = Double(n) / seconds(since: start)
            results.append(["kind": "chain_verification", "algorithm": algorithm.rawValue, "verifications_per_second": rate])
            if !json { print(padded(algorithm.rawValue, 20) + String(format: " %8.1f chain verifications/s (parse + path + signature)", rate)) }
            guard algorithm == .mldsa65ECDSAP384 || algorithm == .ecdsaP384 else { continue }
            let server = ServerConfiguration(provider: .swiftCrypto, certificates: [try chainPKI.serverCertifiedKey])
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
            client.sessionStore = nil
            client.versions = [.tls13]
            let hsStart = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let hsRate = Double(handshakes) / seconds(since: hsStart)
            results.append([
                "kind": "handshake", "version": "TLSv1.3", "group": "SecP384r1MLKEM1024", "certificate": algorithm.rawValue,
                "handshakes_per_second": hsRate
            ])
            if !json {
                print(
                    padded(algorithm.rawValue, 20)
                        + String(format: " %8.1f full handshakes/s with a %@ chain (SecP384r1MLKEM1024, TLS 1.3)", hsRate, algorithm.rawValue as NSString))
            }
        }
        return results
    }

    /// P-384 primitives, Q-SSL's next to swift-crypto's (BenchP384.swift).
    func p384Figures(iterations: Int) throws -> [[String: Any]] {
        let rows = try P384Bench.run(iterations: iterations)
        if !json { P384Bench.printTable(rows) }
        return rows.map { ["kind": "p384", "implementation": $0.implementation, "operation": $0.operation, "microseconds": $0.microseconds] }
    }

    /// Resumed handshakes next to the matching full ones, same process, same run: TLS 1.3
    /// psk_dhe_ke with the hybrid and psk_ke, TLS 1.2 by ticket and by session ID; then what a
    /// cached session costs.
    func resumptionFigures(pki: DemoPKI, resumptions n: Int, only: String? = nil) throws -> [[String: Any]] {
        var results: [[String: Any]] = []
        if !json { print("-- resumption (client + server CPU per handshake, \(n) of each; full handshakes with nothing to resume)") }
        let hybrid = NamedGroup.secp384r1MLKEM1024

        func row(_ label: String, kind: String, client: ClientConfiguration, server: ServerConfiguration, full fullRate: Double?) throws -> Double {
            if let only, !kind.contains(only) { return .nan }  // a resumed row then prints no "vs full"
            let (rate, allocations, side) = try measure(client: client, server: server, count: n, resumed: fullRate != nil)
            let serverMilliseconds = side.time / .milliseconds(1) / Double(n)
            var entry: [String: Any] = [
                "kind": "resumption", "handshake": kind, "handshakes_per_second": rate, "ms_per_handshake_both_sides": 1000 / rate,
                "server_ms_per_handshake": serverMilliseconds
            ]
            if let fullRate, fullRate.isFinite { entry["speedup_vs_full"] = rate / fullRate }
            if let allocations {
                entry["allocations_per_handshake_both_sides"] = allocations
                entry["server_allocations_per_handshake"] = Double(side.allocations) / Double(n)
            }
            results.append(entry)
            if !json {
                let vs = fullRate.flatMap { $0.isFinite ? $0 : nil }.map { String(format: "  ×%.1f vs full, −%.0f%% time", rate / $0, (1 - $0 / rate) * 100) } ?? ""
                let allocated = allocations.map {
                    String(format: "  %.0f allocations (server %.0f)", $0, Double(side.allocations) / Double(n))
                } ?? ""
                print(
                    label.padding(toLength: 46, withPad: " ", startingAt: 0)
                        + String(format: " %9.1f handshakes/s  (%.3f ms; server %.3f ms)", rate, 1000 / rate, serverMilliseconds)
                        + vs + allocated)
            }
            return rate
        }

        // TLS 1.3, the hybrid group, ECDSA P-384 certificate.
        var server13 = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        server13.groups = [hybrid]
        var client13 = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client13.versions = [.tls13]
        client13.groups = [hybrid]
        client13.keyShareGroups = [hybrid]
        var full13 = client13
        full13.sessionStore = nil
        let full13Rate = try row("TLS 1.3 full, SecP384r1MLKEM1024", kind: "tls13_full", client: full13, server: server13, full: nil)
        var dhe = client13
        dhe.sessionStore = InMemoryClientSessionStore()
        _ = try row("TLS 1.3 resumed, psk_dhe_ke SecP384r1MLKEM1024", kind: "tls13_psk_dhe_ke", client: dhe, server: server13, full: full13Rate)
        // The same with x25519 (the classical group scripts/bench-resumption compares with Go).
        var server13X25519 = server13
        server13X25519.groups = [.x25519]
        var dheX25519 = dhe
        dheX25519.sessionStore = InMemoryClientSessionStore()
        dheX25519.groups = [.x25519]
        dheX25519.keyShareGroups = [.x25519]
        _ = try row(
            "TLS 1.3 resumed, psk_dhe_ke x25519", kind: "tls13_psk_dhe_ke_x25519", client: dheX25519, server: server13X25519,
            full: .nan)
        var pskKE = client13
        pskKE.sessionStore = InMemoryClientSessionStore()
        pskKE.offerPSKWithoutKeyExchange = true
        var pskKEServer = server13
        pskKEServer.acceptPSKWithoutKeyExchange = true
        // Which mode the server picks when the client offers both depends on the core's policy:
        // look at the resumed ServerHello (psk_ke carries no key share) rather than assume.
        let chosePSKKE = try resumedServerHelloLength(client: pskKE, server: pskKEServer) < 200
        _ = try row(
            chosePSKKE ? "TLS 1.3 resumed, psk_ke (no key exchange)" : "TLS 1.3 psk_ke offered, psk_dhe_ke chosen",
            kind: chosePSKKE ? "tls13_psk_ke" : "tls13_psk_ke_offered_dhe_chosen", client: pskKE, server: pskKEServer, full: full13Rate)

        // TLS 1.2, the Q-SSL hybrid suite.
        var server12 = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        server12.versions = [.tls12]
        var client12 = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        client12.versions = [.tls12]
        var full12 = client12
        full12.sessionStore = nil
        let full12Rate = try row("TLS 1.2 full, hybrid suite, ticket issued", kind: "tls12_full", client: full12, server: server12, full: nil)
        var byTicket = client12
        byTicket.sessionStore = InMemoryClientSessionStore()
        _ = try row("TLS 1.2 resumed by ticket", kind: "tls12_ticket", client: byTicket, server: server12, full: full12Rate)
        var full12NoTicket = full12
        full12NoTicket.tls12SessionTickets = false
        let full12IDRate = try row(
            "TLS 1.2 full, hybrid suite, session ID cached", kind: "tls12_full_no_ticket", client: full12NoTicket, server: server12, full: nil)
        var byID = client12
        byID.tls12SessionTickets = false
        byID.sessionStore = InMemoryClientSessionStore()
        _ = try row("TLS 1.2 resumed by session ID", kind: "tls12_session_id", client: byID, server: server12, full: full12IDRate)

        if only != nil { return results }
        // What a session costs the server: a session-ID cache entry, or the ticket the client carries.
        let cache = InMemorySessionCache()
        var cached = server12
        cached.sessionCache = cache
        cached.ticketKeys = nil
        for _ in 0..<min(n, 500) { _ = try handshake(client: full12NoTicket, server: cached) }
        var probe12 = client12
        probe12.sessionStore = InMemoryClientSessionStore()  // without a store, tickets are not kept
        var probe13 = client13
        probe13.sessionStore = InMemoryClientSessionStore()
        let tickets12 = try issuedSessions(client: TLSConnection.client(configuration: probe12, serverName: "localhost"), server: server12)
            .compactMap { $0.ticket?.count }
        let tickets13 = try issuedSessions(client: TLSConnection.client(configuration: probe13, serverName: "localhost"), server: server13)
            .compactMap { $0.ticket?.count }
        results.append([
            "kind": "session_cost", "cached_sessions": cache.count, "bytes_per_cached_session": cache.averageBytesPerEntry,
            "tls12_ticket_bytes": tickets12.first ?? 0, "tls13_ticket_bytes": tickets13.first ?? 0
        ])
        if !json {
            print(
                String(
                    format: "session-ID cache: %d sessions, %.1f bytes each (encoded state + ID; table overhead not counted); "
                        + "tickets: TLS 1.2 %d B, TLS 1.3 %d B", cache.count, cache.averageBytesPerEntry, tickets12.first ?? 0, tickets13.first ?? 0))
        }
        return results
    }

    /// `count` handshakes per second (one warm-up first), and the allocations per handshake, both
    /// sides, when a counter is preloaded (`scripts/bench --allocations`); each must resume, or
    /// not, as expected.
    private func measure(
        client: ClientConfiguration, server: ServerConfiguration, count: Int,
        resumed: Bool
    ) throws -> (rate: Double, allocations: Double?, server: ServerSide) {
        _ = try handshake(client: client, server: server)  // warm-up, and the first session
        let allocationsBefore = allocationCount()
        var side = ServerSide()
        let start = ContinuousClock.now
        for _ in 0..<count {
            let (c, _) = try handshake(client: client, server: server, serverSide: &side)
            guard c.summary?.resumed == resumed else {
                throw BenchError("a handshake that should \(resumed ? "" : "not ")resume did\(resumed ? " not" : "")")
            }
        }
        let elapsed = seconds(since: start)
        let allocations = allocationsBefore.flatMap { before in allocationCount().map { Double($0 - before) / Double(count) } }
        return (Double(count) / elapsed, allocations, side)
    }

    /// The size of the ServerHello on a resumption (one full handshake first, for a ticket).
    private func resumedServerHelloLength(client: ClientConfiguration, server: ServerConfiguration) throws -> Int {
        _ = try handshake(client: client, server: server)
        let c = try TLSConnection.client(configuration: client, serverName: "localhost")
        let s = try TLSConnection.server(configuration: server, recordTrace: true)
        for _ in 0..<10 {
            let a = c.takeOutput()
            if !a.isEmpty { _ = try s.receive(a) }
            let b = s.takeOutput()
            if !b.isEmpty { _ = try c.receive(b) }
            if a.isEmpty && b.isEmpty { break }
        }
        guard c.summary?.resumed == true else { throw BenchError("the psk_ke probe did not resume") }
        return s.trace.first { $0.direction == .sent && $0.message == "ServerHello" }?.length ?? 0
    }

    /// The sessions a full handshake of `client` issues (TLS 1.3 tickets included).
    private func issuedSessions(client c: TLSConnection, server: ServerConfiguration) throws -> [TLSSession] {
        let s = try TLSConnection.server(configuration: server)
        var sessions: [TLSSession] = []
        for _ in 0..<10 {
            let a = c.takeOutput()
            if !a.isEmpty { _ = try s.receive(a) }
            let b = s.takeOutput()
            if !b.isEmpty { sessions += try c.receive(b).compactMap(\.issuedSession) }
            if a.isEmpty && b.isEmpty { break }
        }
        return sessions
    }

    /// One full (or resumed) handshake in memory; the TLS 1.3 tickets that follow it are given
    /// to the client, which keeps them for the next one when it has a session store.
    func handshake(client: ClientConfiguration, server: ServerConfiguration) throws -> (TLSConnection, TLSConnection) {
        var side = ServerSide()
        return try handshake(client: client, server: server, serverSide: &side)
    }

    /// The server's share of in-process handshakes: time and allocations inside its calls
    /// (creation, `receive`, `takeOutput`), summed.
    struct ServerSide {
        var time: Duration = .zero
        var allocations: UInt64 = 0
    }

    /// A handshake, the server's calls measured into `serverSide`.
    func handshake(
        client: ClientConfiguration, server: ServerConfiguration, serverSide: inout ServerSide
    ) throws -> (TLSConnection, TLSConnection) {
        func onServer<T>(_ body: () throws -> T) rethrows -> T {
            let allocationsBefore = allocationCount()
            let start = ContinuousClock.now
            defer {
                serverSide.time += ContinuousClock.now - start
                if let allocationsBefore, let now = allocationCount() { serverSide.allocations += now - allocationsBefore }
            }
            return try body()
        }
        let c = try TLSConnection.client(configuration: client, serverName: "localhost")
        let s = try onServer { try TLSConnection.server(configuration: server) }
        while !(c.isHandshakeComplete && s.isHandshakeComplete) {
            let a = c.takeOutput()
            if !a.isEmpty { _ = try onServer { try s.receive(a) } }
            let b = onServer { s.takeOutput() }
            if !b.isEmpty { _ = try c.receive(b) }
            if a.isEmpty && b.isEmpty { throw BenchError("handshake stalled") }
        }
        let tickets = onServer { s.takeOutput() }
        if !tickets.isEmpty { _ = try c.receive(tickets) }
        return (c, s)
    }
}

/// The process's allocation count so far, when scripts/malloc-count.c is preloaded
/// (`scripts/bench --allocations`); nil otherwise.
func allocationCount() -> UInt64? {
    mallocCounter?()
}

/// scripts/malloc-count.c's counter, looked up once (not in every timed call).
private let mallocCounter: (@convention(c) () -> UInt64)? = dlsym(nil, "qssl_malloc_count").map {
    unsafeBitCast($0, to: (@convention(c) () -> UInt64).self)
}

/// `text` left-aligned in `width` columns (String(format:)'s `%-20@` does not pad on Linux).
func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0)
}

/// Seconds from `start` to now.
func seconds(since start: ContinuousClock.Instant) -> Double {
    (ContinuousClock.now - start) / .seconds(1)
}

/// A measurement that could not be made (ArgumentParser prints it, exit status 1).
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = "qssl-bench: " + what }
}
