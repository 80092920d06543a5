// Three `qssl serve` processes sharing sessions and ticket keys through Redis, driven by
// OpenSSL 3.0's s_client (-sess_out, then -sess_in at another node).

import Foundation
import Synchronization
import Testing

/// The `qssl` binary: `QSSL_BINARY`, or the one built beside this test bundle.
func qsslBinary() throws -> String {
    if let given = ProcessInfo.processInfo.environment["QSSL_BINARY"] { return given }
    var candidates: [String] = []
    if let executable = Bundle.main.executablePath {
        var url = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(url.appendingPathComponent("qssl").path)
            url = url.deletingLastPathComponent()
        }
    }
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    throw FixtureError.startFailed("the qssl binary was not found (looked in \(candidates)): run `swift build --build-tests` or set QSSL_BINARY")
}

/// Runs a program to completion; returns its exit status and output (stderr merged).
@discardableResult
func runTool(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    watchdog.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A directory with a CA, two server certificates (ECDSA P-256, for OpenSSL) and a fleet key.
final class FleetDirectory: @unchecked Sendable {
    let root: String
    func path(_ name: String) -> String { root + "/" + name }
    var ca: String { path("ca/ca.pem") }
    var fleetKey: String { path("fleet.key") }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-fleet-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let qssl = try qsslBinary()
        try check(runTool(qssl, ["cert", "ca", "--out", path("ca"), "--alg", "ecdsa-p256", "--subject", "CN=Fleet Test CA"]))
        for name in ["a", "b"] {
            try check(
                runTool(
                    qssl,
                    [
                        "cert", "issue", "--ca", path("ca"), "--alg", "ecdsa-p256", "--subject", "CN=localhost",
                        "--san", "DNS:localhost", "--out", path(name)
                    ]))
        }
        try check(runTool(qssl, ["fleet-key", "generate", "--out", fleetKey]))
    }

    private func check(_ run: (status: Int32, output: String)) throws {
        if run.status != 0 { throw FixtureError.startFailed("qssl failed: \(run.output)") }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// One `qssl serve` node (echo) with metrics.
final class ServeNode: @unchecked Sendable {
    let port: Int
    let metricsPort: Int
    let process: Process
    let log: String

    init(_ dir: FleetDirectory, store: String, cert: String = "a", extra: [String] = []) throws {
        port = try RedisFixture.freePort()
        metricsPort = try RedisFixture.freePort()
        log = dir.path("serve-\(port).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: try qsslBinary())
        process.arguments =
            [
                "serve", "--listen", "127.0.0.1:\(port)", "--cert", dir.path(cert + ".pem"), "--key", dir.path(cert + ".key"),
                "--metrics", "127.0.0.1:\(metricsPort)", "--session-store", store, "--fleet-key", dir.fleetKey,
                "--session-timeout", "60", "--ticket-rotation", "6", "--ticket-distribution", "1"
            ] + extra
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if logText.contains("listening on") { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw FixtureError.startFailed("qssl serve did not start:\n\(logText)")
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGKILL: the test process blocks SIGTERM, and its children inherit the mask.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// The value of a Prometheus sample (`name{labels}`), 0 when absent.
    func metric(_ sample: String) throws -> Double {
        let text = try runTool("/usr/bin/curl", ["-s", "http://127.0.0.1:\(metricsPort)/metrics"]).output
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    deinit { stop() }
}

enum Mechanism: String, CaseIterable, CustomStringConvertible {
    case tls12SessionID, tls12Ticket, tls13Ticket
    var flags: [String] {
        switch self {
        case .tls12SessionID: ["-tls1_2", "-no_ticket"]
        case .tls12Ticket: ["-tls1_2"]
        case .tls13Ticket: ["-tls1_3"]
        }
    }
    var version: String { self == .tls13Ticket ? "TLSv1.3" : "TLSv1.2" }
    var description: String { rawValue }
}

/// One s_client connection to `node` that sends a line and waits for its echo: "New" or "Reused",
/// or nil when the connection failed.
func sClient(_ dir: FleetDirectory, _ node: ServeNode, _ mechanism: Mechanism, sessionOut: String? = nil, sessionIn: String? = nil) throws -> String? {
    let marker = "fleet-\(UUID().uuidString.prefix(8))"
    let output = dir.path("s_client-\(marker).out")
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try RedisFixture.tool("openssl"))
    var arguments =
        ["s_client", "-connect", "127.0.0.1:\(node.port)", "-servername", "localhost", "-CAfile", dir.ca, "-verify_return_error"]
        + mechanism.flags
    if let sessionOut { arguments += ["-sess_out", sessionOut] }
    if let sessionIn { arguments += ["-sess_in", sessionIn] }
    process.arguments = arguments
    let input = Pipe()
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    process.standardInput = input
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    input.fileHandleForWriting.write(Data((marker + "\n").utf8))
    let deadline = Date().addingTimeInterval(15)
    var text = ""
    while Date() < deadline {
        text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // The echo comes after the TLS 1.3 tickets, so -sess_out has been written by then.
        if text.components(separatedBy: marker).count >= 2 || !process.isRunning { break }
        Thread.sleep(forTimeInterval: 0.02)
    }
    // SIGKILL: the test process blocks SIGTERM, and its children inherit the mask.
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? text
    guard text.contains(marker) else { return nil }
    if text.contains("Reused, \(mechanism.version)") { return "Reused" }
    if text.contains("New, \(mechanism.version)") { return "New" }
    return nil
}

@Suite("Fleet: three qssl serve processes sharing resumption through Redis", .serialized)
struct FleetProcessTests {
    @Test(
        "single Redis: TLS 1.2 session ID, TLS 1.2 ticket and TLS 1.3 ticket from any node resume at every other node; rotation with no failed resumption; Redis killed and restarted; garbage planted"
    )
    func singleNode() async throws {
        try await withRedisServer { server in
            let dir = try FleetDirectory()
            let nodes = try (0..<3).map { _ in try ServeNode(dir, store: server.url) }
            defer { nodes.forEach { $0.stop() } }
            // Fresh ticket keys seal once they are a distribution interval (1 s) old.
            try await Task.sleep(for: .milliseconds(1500))

            for mechanism in Mechanism.allCases {
                for (i, origin) in nodes.enumerated() {
                    let session = dir.path("\(mechanism)-\(i).pem")
                    #expect(try sClient(dir, origin, mechanism, sessionOut: session) == "New", "\(mechanism) at node \(i)")
                    for (j, other) in nodes.enumerated() where j != i {
                        #expect(try sClient(dir, other, mechanism, sessionIn: session) == "Reused", "\(mechanism) from node \(i) at node \(j)")
                    }
                }
            }
            // What resumed: session IDs through the Redis cache, tickets through the shared keys.
            let hits = try nodes.map { try $0.metric("qssl_session_cache_lookups_total{result=\"hit\"}") }.reduce(0, +)
            let tickets = try nodes.map {
                try $0.metric("qssl_tickets_accepted_total{key=\"current\"}") + $0.metric("qssl_tickets_accepted_total{key=\"previous\"}")
            }.reduce(0, +)
            #expect(hits >= 6, "session IDs resumed through Redis: \(hits)")
            #expect(tickets >= 12, "tickets opened under the fleet's keys: \(tickets)")

            // Rotation: 14 s, two rotations of 6 s; a session from a random node resumes at another.
            var failed = 0
            var attempts = 0
            let end = Date().addingTimeInterval(14)
            var round = 0
            while Date() < end {
                let mechanism: Mechanism = round % 2 == 0 ? .tls13Ticket : .tls12Ticket
                let from = nodes.randomElement()!
                let to = nodes.filter { $0 !== from }.randomElement()!
                let session = dir.path("rotation-\(round).pem")
                round += 1
                guard try sClient(dir, from, mechanism, sessionOut: session) == "New" else {
                    failed += 1
                    continue
                }
                attempts += 1
                if try sClient(dir, to, mechanism, sessionIn: session) != "Reused" { failed += 1 }
            }
            #expect(attempts >= 10 && failed == 0, "\(failed) failed of \(attempts) resumptions across rotations")
            let learned = nodes.map { $0.logText.components(separatedBy: "ticket key of epoch").count - 1 }
            #expect(learned.allSatisfy { $0 >= 3 }, "every node created or learned the next keys: \(learned)")
            let shown = try runTool(
                try qsslBinary(),
                [
                    "ticket-keys", "show", "--session-store", server.url, "--fleet-key", dir.fleetKey,
                    "--ticket-rotation", "6", "--ticket-distribution", "1", "--ticket-lifetime", "60"
                ])
            #expect(shown.status == 0 && shown.output.components(separatedBy: "sealing (and opening)").count == 2, "\(shown.output)")
            #expect(shown.output.contains("pending"), "\(shown.output)")

            // Redis killed mid-run: every connection still completes (full handshakes; tickets
            // still resume from the keys in memory).
            let ticketSession = dir.path("before-kill.pem")
            let idSession = dir.path("before-kill-id.pem")
            #expect(try sClient(dir, nodes[0], .tls13Ticket, sessionOut: ticketSession) == "New")
            #expect(try sClient(dir, nodes[0], .tls12SessionID, sessionOut: idSession) == "New")
            server.stop()
            var outcomes: [String?] = []
            for node in nodes {
                outcomes.append(try sClient(dir, node, .tls13Ticket))
                outcomes.append(try sClient(dir, node, .tls13Ticket, sessionIn: ticketSession))
                outcomes.append(try sClient(dir, node, .tls12SessionID, sessionIn: idSession))
            }
            #expect(outcomes.allSatisfy { $0 != nil }, "zero failed connections with Redis down: \(outcomes)")
            #expect(outcomes[4] == "Reused", "a ticket resumes at another node from the keys in memory")
            #expect(outcomes[5] == "New", "a session ID cannot resume while Redis is down: a full handshake")
            #expect(try nodes[1].metric("qssl_fleet_events_total{event=\"redis_down\"}") >= 1)
            try await server.start()
            // Resumption through Redis comes back by itself.
            var back = false
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline && !back {
                let session = dir.path("after-restart.pem")
                if try sClient(dir, nodes[0], .tls12SessionID, sessionOut: session) == "New" {
                    try await Task.sleep(for: .milliseconds(100))
                    back = try sClient(dir, nodes[2], .tls12SessionID, sessionIn: session) == "Reused"
                }
                if !back { try await Task.sleep(for: .milliseconds(300)) }
            }
            #expect(back, "session-ID resumption across nodes came back after Redis restarted")
            #expect(nodes[2].logText.contains("Redis is reachable again"))

            // Garbage planted over every cached session: refused, full handshakes, nothing breaks.
            let session = dir.path("planted.pem")
            #expect(try sClient(dir, nodes[0], .tls12SessionID, sessionOut: session) == "New")
            try await Task.sleep(for: .milliseconds(200))
            let keys = try server.cli("--scan", "--pattern", "qssl:*:s:*").split(separator: "\n").map(String.init)
            #expect(!keys.isEmpty)
            for key in keys { try server.cli("SET", key, "garbage") }
            #expect(try sClient(dir, nodes[1], .tls12SessionID, sessionIn: session) == "New")
            #expect(try nodes[1].metric("qssl_fleet_events_total{event=\"value_refused\"}") >= 1)
            // Garbage over the ticket keys too: the nodes keep theirs and go on.
            for key in try server.cli("--scan", "--pattern", "qssl:*:tk:*").split(separator: "\n") { try server.cli("SET", String(key), "junk") }
            try await Task.sleep(for: .milliseconds(800))
            let fresh = dir.path("after-garbage.pem")
            #expect(try sClient(dir, nodes[2], .tls13Ticket, sessionOut: fresh) == "New")
            #expect(try sClient(dir, nodes[0], .tls13Ticket, sessionIn: fresh) == "Reused")
            #expect(nodes.allSatisfy { $0.process.isRunning })
        }
    }

    @Test("a session of service A is refused by service B (other certificates, or another --service-name), with the same Redis, fleet key and SNI name")
    func serviceSeparation() async throws {
        try await withRedisServer { server in
            let dir = try FleetDirectory()
            let a = try ServeNode(dir, store: server.url, cert: "a")
            let a2 = try ServeNode(dir, store: server.url, cert: "a")
            let b = try ServeNode(dir, store: server.url, cert: "b")
            let renamed = try ServeNode(dir, store: server.url, cert: "a", extra: ["--service-name", "another-service"])
            defer { [a, a2, b, renamed].forEach { $0.stop() } }
            try await Task.sleep(for: .milliseconds(1500))
            for mechanism in Mechanism.allCases {
                let session = dir.path("service-\(mechanism).pem")
                #expect(try sClient(dir, a, mechanism, sessionOut: session) == "New")
                #expect(try sClient(dir, a2, mechanism, sessionIn: session) == "Reused", "\(mechanism): the same service resumes")
                #expect(try sClient(dir, b, mechanism, sessionIn: session) == "New", "\(mechanism): another certificate's service refuses it")
                #expect(try sClient(dir, renamed, mechanism, sessionIn: session) == "New", "\(mechanism): another service name refuses it")
            }
            func service(_ node: ServeNode) -> String? {
                node.logText.split(separator: "\n").first { $0.contains("fleet session store") }
                    .flatMap { line in line.split(separator: " ").first { $0.hasPrefix("service=") } }.map(String.init)
            }
            #expect(service(a) != nil && service(a) == service(a2) && service(a) != service(b))
            #expect(service(renamed) == "service=another-service")
        }
    }

    @Test(
        "rediss://: nodes reach a TLS-only Redis (OpenSSL 3.0 inside redis-server) through Q-SSL's client and share sessions; a node that does not trust Redis's certificate never talks to it and goes on with full handshakes"
    )
    func redisOverTLS() async throws {
        let dir = try FleetDirectory()
        let qssl = try qsslBinary()
        let issued = try runTool(
            qssl,
            [
                "cert", "issue", "--ca", dir.path("ca"), "--alg", "ecdsa-p256", "--subject", "CN=redis.test",
                "--san", "DNS:localhost", "--out", dir.path("redis")
            ])
        try #require(issued.status == 0, "\(issued.output)")
        // Another CA, which did not issue Redis's certificate.
        let other = try runTool(qssl, ["cert", "ca", "--out", dir.path("other-ca"), "--alg", "ecdsa-p256", "--subject", "CN=Other CA"])
        try #require(other.status == 0, "\(other.output)")
        let tlsPort = try RedisFixture.freePort()
        // The plain port stays on loopback for the fixture's own readiness checks; the nodes know
        // only the TLS port.
        try await withRedisServer(arguments: [
            "--tls-port", "\(tlsPort)", "--tls-cert-file", dir.path("redis.pem"),
            "--tls-key-file", dir.path("redis.key"), "--tls-ca-cert-file", dir.ca,
            "--tls-auth-clients", "no"
        ]) { server in
            let store = "rediss://localhost:\(tlsPort)"
            let a = try ServeNode(dir, store: store, extra: ["--session-store-ca", dir.ca])
            let b = try ServeNode(dir, store: store, extra: ["--session-store-ca", dir.ca])
            let untrusting = try ServeNode(dir, store: store, extra: ["--session-store-ca", dir.path("other-ca/ca.pem")])
            defer { [a, b, untrusting].forEach { $0.stop() } }
            try await Task.sleep(for: .milliseconds(1500))
            for mechanism in Mechanism.allCases {
                let session = dir.path("tls-\(mechanism).pem")
                #expect(try sClient(dir, a, mechanism, sessionOut: session) == "New")
                #expect(try sClient(dir, b, mechanism, sessionIn: session) == "Reused", "\(mechanism): shared through Redis over TLS")
                #expect(try sClient(dir, untrusting, mechanism, sessionIn: session) == "New", "\(mechanism): no Redis, a full handshake")
            }
            #expect(try b.metric("qssl_session_cache_lookups_total{result=\"hit\"}") >= 1)
            // The untrusting node's attempts ended in its TLS handshake, and it says why.
            #expect(untrusting.logText.contains("certificate rejected: chain does not end in a trusted root"), "\(untrusting.logText.suffix(2000))")
            #expect(!a.logText.contains("certificate rejected"), "\(a.logText.suffix(2000))")
            let clients = try server.cli("CLIENT", "LIST")
            #expect(clients.contains("name=qssl-fleet"), "\(clients)")
        }
    }

    @Test("Redis Cluster of three masters: session IDs and TLS 1.3 tickets resume across nodes, also after the session's slot moved")
    func cluster() async throws {
        try await withRedisCluster { cluster in
            let dir = try FleetDirectory()
            let nodes = try (0..<3).map { _ in try ServeNode(dir, store: cluster.url) }
            defer { nodes.forEach { $0.stop() } }
            try await Task.sleep(for: .milliseconds(1500))
            for mechanism in [Mechanism.tls12SessionID, .tls13Ticket] {
                let session = dir.path("cluster-\(mechanism).pem")
                #expect(try sClient(dir, nodes[0], mechanism, sessionOut: session) == "New")
                #expect(try sClient(dir, nodes[1], mechanism, sessionIn: session) == "Reused", "\(mechanism)")
            }
            // Move the slot of a fresh session's key to another master: nodes follow MOVED.
            let session = dir.path("cluster-moved.pem")
            #expect(try sClient(dir, nodes[0], .tls12SessionID, sessionOut: session) == "New")
            try await Task.sleep(for: .milliseconds(200))
            var moved = false
            for source in cluster.nodes {
                let keys = try source.cli("--scan", "--pattern", "qssl:*:s:*").split(separator: "\n").map(String.init)
                for key in keys {
                    let slot = Int(try source.cli("CLUSTER", "KEYSLOT", key).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
                    let target = cluster.nodes.first { $0 !== source }!
                    try cluster.migrate(slot: slot, keys: [key], from: source, to: target, finish: true)
                    moved = true
                }
            }
            #expect(moved)
            #expect(try sClient(dir, nodes[2], .tls12SessionID, sessionIn: session) == "Reused")
            #expect(try sClient(dir, nodes[1], .tls12SessionID, sessionIn: session) == "Reused")
        }
    }
}
