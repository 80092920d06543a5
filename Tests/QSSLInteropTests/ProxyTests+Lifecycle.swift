import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// ProxyTests: reload and drain, metrics and the access log.

extension ProxyTests {
    // MARK: - Lifecycle

    @Test(
        "SIGHUP reloads the certificate: an open connection keeps working, a new one sees the new certificate; a broken file keeps the old configuration (\"reload failed\")"
    )
    func reload() async throws {
        let dir = try ToolDirectory()
        let caKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let ca = try PKIBuilder.makeCA(subject: "CN=Q-SSL Proxy Reload CA", key: caKey)
        func writePair(_ subject: String) throws {
            let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
            let cert = try PKIBuilder.issue(subject: "CN=\(subject)", key: key, by: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try CertificateFiles.pkcs8PEM(key).write(toFile: dir.path("server.key"), atomically: true, encoding: .utf8)
            try CertificateFiles.pem([cert]).write(toFile: dir.path("server.pem"), atomically: true, encoding: .utf8)
        }
        try writePair("reload-a.test")
        let server = try ServeProcess(["--echo", "--access-log", "json"], certificates: [(dir.path("server.pem"), dir.path("server.key"))])
        defer { server.stop() }

        var config = ClientConfiguration(provider: .swiftCrypto, verifier: X509CertificateVerifier(roots: [ca.certificate]))
        config.sessionStore = nil  // full handshakes: a resumed one carries no certificate to look at
        func leafSubject(_ client: NIOQSSLClient) -> String {
            client.summary.peerCertificates.first.flatMap { try? X509Certificate(der: $0) }.map { "\($0.subject)" } ?? "?"
        }
        func echo(_ client: NIOQSSLClient, _ text: String) async throws -> Bool {
            try await client.send(Array(text.utf8))
            return try await client.read(expectedBytes: text.utf8.count, idleTimeout: .seconds(5)) == Array(text.utf8)
        }

        let old = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        #expect(leafSubject(old).contains("reload-a.test"))
        #expect(try await echo(old, "before the reload"))

        try writePair("reload-b.test")
        server.signal(SIGHUP)
        try server.waitForText("reloaded")
        let fresh = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        #expect(leafSubject(fresh).contains("reload-b.test"), "a new connection gets the new certificate: \(leafSubject(fresh))")
        await fresh.close()
        #expect(try await echo(old, "after the reload"), "the open connection is not dropped")

        try "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
            .write(toFile: dir.path("server.pem"), atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try server.waitForText("reload failed")
        let stillB = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        #expect(leafSubject(stillB).contains("reload-b.test"), "a broken file keeps the configuration in force: \(leafSubject(stillB))")
        await stillB.close()
        #expect(try await echo(old, "after the failed reload"))
        await old.close()
        #expect(server.isRunning)
    }

    @Test("SIGTERM drains: new connections fail, the open one still echoes; once it closes the process exits 0 well within --drain-timeout")
    func drain() async throws {
        let server = try ServeProcess(["--echo", "--drain-timeout", "20", "--access-log", "json"])
        defer { server.stop() }
        let config = qsslClientConfig()
        let open = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        try await open.send(Array("before".utf8))
        #expect(try await open.read(expectedBytes: 6, idleTimeout: .seconds(5)) == Array("before".utf8))

        let signalled = Date()
        server.signal(SIGTERM)
        try server.waitForText("drain", timeout: 10)
        await #expect(throws: (any Error).self, "a draining server accepts no new connection") {
            let late = try await NIOQSSLClient.connect(
                host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost",
                timeout: .seconds(3))
            await late.close()
        }
        try await open.send(Array("during the drain".utf8))
        #expect(try await open.read(expectedBytes: 16, idleTimeout: .seconds(5)) == Array("during the drain".utf8))
        await open.close()

        let status = server.waitForExit(timeout: 15)
        #expect(status == 0, "exit status \(String(describing: status)):\n\(server.output)")
        #expect(Date().timeIntervalSince(signalled) < 20, "exited before the drain timeout, once the last connection closed")
    }

    @Test("SIGTERM with --drain-timeout 1: a connection still open when the drain timeout passes gets close_notify, and the process exits 0")
    func drainTimeout() async throws {
        let server = try ServeProcess(["--echo", "--drain-timeout", "1", "--access-log", "json"])
        defer { server.stop() }
        let open = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: qsslClientConfig(), serverName: "localhost")
        try await open.send(Array("hold".utf8))
        #expect(try await open.read(expectedBytes: 4, idleTimeout: .seconds(5)) == Array("hold".utf8))
        let signalled = ContinuousClock.now
        server.signal(SIGTERM)
        // Returns when the server closes: normally (close_notify), or throws IncompleteRead.
        let rest = try await open.read(idleTimeout: .seconds(8))
        let waited = ContinuousClock.now - signalled
        #expect(rest.isEmpty)
        #expect(waited >= .milliseconds(800) && waited < .seconds(6), "closed \(waited) after SIGTERM")
        await open.close()
        let status = server.waitForExit(timeout: 10)
        #expect(status == 0, "exit status \(String(describing: status)):\n\(server.output)")
    }

    // MARK: - Observability

    @Test(
        "--metrics: after 3 handshakes and one stalled ClientHello, /metrics counts them (handshakes, handshake_timeout limit, bytes, open connections) and /healthz is 200 ok"
    )
    func metrics() throws {
        let metricsPort = try Peers.freePort()
        let server = try ServeProcess(["--echo", "--handshake-timeout", "1", "--metrics", "127.0.0.1:\(metricsPort)", "--access-log", "json"])
        defer { server.stop() }
        let healthz = try httpGet("http://127.0.0.1:\(metricsPort)/healthz", retryFor: 10)
        #expect(healthz.status == 200)
        #expect(healthz.body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")

        let n = 3
        for i in 0..<n {
            let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--groups", "X25519MLKEM768", "--send", "metrics handshake \(i)"])
            #expect(result["ok"] as? Bool == true, "\(result)")
        }
        let stalled = try RawSocket(port: server.port)
        try stalled.send(halfClientHello)
        #expect(stalled.waitClosed(timeout: 10) != nil)
        _ = try server.waitForConnections(count: n + 1)

        let scrape = try httpGet("http://127.0.0.1:\(metricsPort)/metrics")
        #expect(scrape.status == 200)
        let samples = PrometheusSample.parse(scrape.body)
        let handshakes = samples.filter { $0.name == "qssl_handshakes_total" }
        #expect(handshakes.reduce(0) { $0 + $1.value } == Double(n), "qssl_handshakes_total: \(handshakes)")
        #expect(
            handshakes.filter { $0.labels["group"] == "X25519MLKEM768" && $0.labels["post_quantum"] == "true" }.reduce(0) { $0 + $1.value } == Double(n),
            "by group and post_quantum: \(handshakes)")
        #expect(handshakes.allSatisfy { $0.labels["version"] != nil && $0.labels["resumed"] != nil })
        #expect(PrometheusSample.sum(samples, "qssl_limit_actions_total", ["limit": "handshake_timeout"]) == 1)
        #expect(PrometheusSample.sum(samples, "qssl_handshake_duration_seconds_count") >= Double(n))
        #expect(PrometheusSample.sum(samples, "qssl_bytes_total", ["direction": "from_client"]) >= Double("metrics handshake 0".utf8.count * n))
        #expect(PrometheusSample.sum(samples, "qssl_bytes_total", ["direction": "to_client"]) >= Double("metrics handshake 0".utf8.count * n))
        #expect(PrometheusSample.value(samples, "qssl_connections_open") == 0, "every connection has ended")
        #expect(PrometheusSample.value(samples, "qssl_handshakes_in_progress") == 0)
        #expect(scrape.body.contains("# TYPE qssl_handshake_duration_seconds histogram"))
    }

    @Test("--json access log: every line is a JSON object with an event; one connection line per connection with every field, and how it ended")
    func accessLog() throws {
        let server = try ServeProcess(["--echo", "--json"])
        defer { server.stop() }
        let message = "access log line"
        let tls13 = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--groups", "X25519MLKEM768", "--send", message])
        #expect(tls13["ok"] as? Bool == true, "\(tls13)")
        let tls12 = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--tls-version", "1.2", "--send", message])
        #expect(tls12["ok"] as? Bool == true, "\(tls12)")
        let garbage = try RawSocket(port: server.port)
        try garbage.send(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        _ = garbage.waitClosed(timeout: 10)
        let silent = try RawSocket(port: server.port)
        silent.close()

        let connections = try server.waitForConnections(count: 4)
        for line in server.lines where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            #expect(object?["event"] is String, "not a JSON log line with an event: \(line)")
        }
        let fields = [
            "client", "sni", "version", "cipher", "group", "post_quantum", "resumed", "client_subject",
            "bytes_from_client", "bytes_to_client", "duration_ms", "end"
        ]
        let endPattern =
            #/^(close_notify|closed|drain|refused:proxy_source|proxy_header:.+|timeout:(handshake|idle)|limit:(max_lifetime|max_handshakes|handshake_rate|max_connections)|alert:[a-z_0-9]+ (sent|received)|backend:.+)$/#
        for entry in connections {
            for field in fields { #expect(entry.keys.contains(field), "\(field) missing from \(entry)") }
            #expect((entry["client"] as? String)?.wholeMatch(of: #/127\.0\.0\.1:\d+/#) != nil, "\(entry)")
            #expect(entry["bytes_from_client"] is Int && entry["bytes_to_client"] is Int, "\(entry)")
            #expect((entry["duration_ms"] as? Double ?? -1) >= 0, "\(entry)")
            #expect((entry["end"] as? String)?.wholeMatch(of: endPattern) != nil, "end: \(entry)")
            #expect(entry["client_subject"] is NSNull, "no client certificates here: \(entry)")
        }

        let first = try #require(connections.first { $0["version"] as? String == "TLSv1.3" }, "\(connections)")
        #expect(first["sni"] as? String == "localhost")
        #expect(first["cipher"] as? String == tls13["cipher"] as? String)
        #expect(first["group"] as? String == "X25519MLKEM768")
        #expect(first["post_quantum"] as? Bool == true)
        #expect(first["resumed"] as? Bool == false)
        #expect((first["bytes_from_client"] as? Int ?? 0) >= message.utf8.count)
        #expect((first["bytes_to_client"] as? Int ?? 0) >= message.utf8.count)
        #expect(first["end"] as? String == "close_notify")

        let second = try #require(connections.first { $0["version"] as? String == "TLSv1.2" }, "\(connections)")
        #expect(second["post_quantum"] as? Bool == false)
        #expect(second["group"] as? String == tls12["group"] as? String)

        let alert = connections.first { ($0["end"] as? String)?.hasPrefix("alert:") == true }
        #expect(
            alert?["end"] as? String != nil && (alert?["end"] as? String)!.hasSuffix(" sent"),
            "the plaintext request got an alert, logged as sent: \(connections)")
    }
}
