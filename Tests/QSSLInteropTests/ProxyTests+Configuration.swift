import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// ProxyTests: certificates by SNI, backends and listeners, the configuration file.

extension ProxyTests {
    // MARK: - Certificates by SNI and by what the client can verify

    @Test(
        "ECDSA and composite ML-DSA-65+ECDSA-P384 pairs: qssl connect (offers 0xFE46) gets the composite chain; curl, OpenSSL 4 (no composite) get ECDSA",
        arguments: [false, true])
    func certificateByClient(compositeFirst: Bool) throws {
        let curl = try Peers.executable("curl")
        let (compositeDir, _) = try MLDSAInteropTests.qsslFiles(.mldsa65ECDSAP384)
        let ecdsa = (Self.ecdsaCert, Self.ecdsaKey)
        let composite = (compositeDir + "/server.pem", compositeDir + "/server.key")
        let server = try ServeProcess(["--http", "--access-log", "json"], certificates: compositeFirst ? [composite, ecdsa] : [ecdsa, composite])
        defer { server.stop() }
        let dir = try ToolDirectory()

        // Only the composite CA: the connection succeeds only with the composite chain.
        let connect = try dir.tool(
            ["connect", "127.0.0.1:\(server.port)", "--ca", compositeDir + "/ca.pem", "--server-name", "localhost", "--json"],
            expectSuccess: false, timeout: 30)
        #expect(connect.status == 0, "\(connect.stdout)\(connect.stderr)")
        let object = (try? JSONSerialization.jsonObject(with: Data(connect.stdout.utf8))) as? [String: Any]
        #expect(object?["signature_scheme"] as? String == "qssl_mldsa65_ecdsa_secp384r1_sha512", "\(connect.stdout)")
        #expect((object?["peer_certificates"] as? [String])?.isEmpty == false)

        // Only the ECDSA CA: curl (OpenSSL 3.0, a browser-like client) gets the ECDSA chain.
        let run = runCommand(
            curl,
            [
                "-sS", "-v", "--http1.1", "--cacert", Self.ecdsaCA, "--resolve", "localhost:\(server.port):127.0.0.1",
                "-m", "20", "https://localhost:\(server.port)/"
            ], timeout: 30)
        #expect(run.status == 0, "curl: \(run.stderr)")
        #expect(run.stderr.contains("SSL certificate verify ok"), "\(run.stderr)")

        // OpenSSL 4 offers ML-DSA but not the composite scheme: ECDSA.
        let openssl4 = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--send", ""])
        #expect(openssl4["ok"] as? Bool == true, "\(openssl4)")
    }

    @Test("--unknown-server-name reject: an unknown SNI gets unrecognized_name; a known one is served. Without it the default pair answers")
    func unknownServerName() throws {
        let dir = try ToolDirectory()
        let strict = try ServeProcess(["--echo", "--unknown-server-name", "reject", "--access-log", "json"])
        defer { strict.stop() }
        let rejected = try dir.tool(
            ["connect", "127.0.0.1:\(strict.port)", "--ca", Self.ecdsaCA, "--server-name", "unknown.example", "--json"],
            expectSuccess: false, timeout: 30)
        #expect(rejected.status != 0)
        let object = (try? JSONSerialization.jsonObject(with: Data(rejected.stdout.utf8))) as? [String: Any]
        #expect(object?["alert"] as? String == "unrecognized_name", "\(rejected.stdout)\(rejected.stderr)")
        #expect(object?["alert_direction"] as? String == "received")
        _ = try strict.waitForConnection { ($0["end"] as? String)?.hasPrefix("alert:unrecognized_name") == true }
        let known = try tlsClient(["127.0.0.1:\(strict.port)", "--ca", Self.ecdsaCA, "--sni", "localhost"])
        #expect(known["ok"] as? Bool == true, "\(known)")

        let lenient = try ServeProcess(["--echo", "--unknown-server-name", "default"])
        defer { lenient.stop() }
        let unknown = try tlsClient(["127.0.0.1:\(lenient.port)", "--sni", "unknown.example"])  // no --ca: the name is not checked
        #expect(unknown["ok"] as? Bool == true, "\(unknown)")
        #expect(unknown["peer_subject"] as? String == "localhost")
    }

    @Test("--threads N: the server runs N event-loop threads and serves on them; --threads 0 is refused")
    func eventLoopThreads() throws {
        func eventLoopThreads(_ pid: Int32) -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return tasks.filter { task in
                ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-SGLTN")
            }.count
        }
        for threads in [1, 3] {
            let server = try ServeProcess(["--echo", "--threads", "\(threads)"])
            defer { server.stop() }
            let served = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--sni", "localhost"])
            #expect(served["ok"] as? Bool == true, "\(served)")
            #expect(eventLoopThreads(server.pid) == threads, "--threads \(threads)")
        }
        let dir = try ToolDirectory()
        let refused = try dir.tool(
            ["serve", "--listen", "127.0.0.1:1", "--cert", Self.ecdsaCA, "--key", Self.ecdsaCA, "--threads", "0"], expectSuccess: false, timeout: 30)
        #expect(refused.status != 0 && refused.stderr.contains("--threads must be 1 to 1024"), "\(refused.stderr)")
    }

    // MARK: - Backends and listeners

    @Test("a backend that refuses: the client's connection is closed cleanly, logged backend:…, counted in qssl_backend_connect_failures_total")
    func backendRefused() throws {
        let dead = try Peers.freePort()
        let metricsPort = try Peers.freePort()
        let server = try ServeProcess([
            "--backend", "127.0.0.1:\(dead)", "--backend-connect-timeout", "2", "--metrics", "127.0.0.1:\(metricsPort)",
            "--access-log", "json"
        ])
        defer { server.stop() }
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--send", "", "--wait-close", "10"])
        if result["stage"] == nil {
            #expect((result["seconds_to_close"] as? Double ?? 99) < 6, "\(result)")
            #expect(result["end"] as? String == "close_notify", "closed cleanly: \(result)")
        }
        let entry = try server.waitForConnection { ($0["end"] as? String)?.hasPrefix("backend:") == true }
        #expect((entry["end"] as? String ?? "").count > "backend:".count)
        let scrape = try httpGet("http://127.0.0.1:\(metricsPort)/metrics", retryFor: 10)
        #expect(PrometheusSample.sum(PrometheusSample.parse(scrape.body), "qssl_backend_connect_failures_total") == 1)
        #expect(server.isRunning)
    }

    @Test("two listeners, IPv4 and IPv6, to a backend on a Unix socket")
    func listenersAndUnixBackend() throws {
        let dir = try ToolDirectory()
        let socketPath = dir.path("backend.sock")
        let backend = try ProxyBackend(dir, ["--unix", socketPath])
        defer { backend.stop() }
        let v4 = try Peers.freePort()
        let v6 = try Peers.freePort()
        let server = try ServeProcess(["--backend", "unix:\(socketPath)", "--access-log", "json"], listen: ["127.0.0.1:\(v4)", "[::1]:\(v6)"])
        defer { server.stop() }
        for address in ["127.0.0.1:\(v4)", "[::1]:\(v6)"] {
            let result = try tlsClient([address, "--ca", Self.ecdsaCA, "--send", "via \(address)", "--half-close"])
            #expect(result["ok"] as? Bool == true, "\(address): \(result)")
            #expect(result["received"] as? String == "EOF-SEEN\n", "\(address): \(result)")
        }
        #expect(try backend.records(count: 2).allSatisfy { $0["eof_seen"] as? Bool == true })
        _ = try server.waitForConnection { ($0["client"] as? String)?.hasPrefix("[::1]:") == true || ($0["client"] as? String)?.hasPrefix("::1") == true }
    }

    // MARK: - Configuration file

    @Test("qssl check-config: a file with two errors prints both with their lines and exits 1; the sample configuration prints ok")
    func checkConfig() throws {
        let dir = try ToolDirectory()
        let broken = dir.path("broken.yaml")
        try """
        access-log: json
        listeners:
          - listen: 127.0.0.1:8443
            backend: echo
            pq-required: maybe
            certificates:
              - cert: \(Self.ecdsaCert)
                key: \(Self.ecdsaKey)
            limits:
              max-handshakes: 0

        """.write(toFile: broken, atomically: true, encoding: .utf8)
        let bad = try dir.tool(["check-config", broken], expectSuccess: false, timeout: 30)
        #expect(bad.status == 1, "\(bad.stdout)\(bad.stderr)")
        let lines = (bad.stdout + bad.stderr).split(separator: "\n").map(String.init)
        let problems = lines.filter { $0.hasPrefix(broken + ":") && $0.dropFirst(broken.count).wholeMatch(of: #/:\d+:\d+: .+/#) != nil }
        #expect(problems.count == 2, "one line per problem: \(lines)")
        #expect(problems.contains { $0.hasPrefix("\(broken):5:18: listeners[0].pq-required: ") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(broken):10:23: listeners[0].limits.max-handshakes: ") }, "\(problems)")

        // The sample, with the files it names put in this directory (in case they are checked).
        let sample = try sampleConfig()
        let etc = dir.path("etc")
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        for (name, source) in [
            ("pq-chain.pem", Self.ecdsaCert), ("pq-key.pem", Self.ecdsaKey), ("fallback-chain.pem", Self.ecdsaCert),
            ("api-chain.pem", Self.ecdsaCert), ("api-key.pem", Self.ecdsaKey), ("client-cas.pem", Self.ecdsaCA)
        ] {
            try FileManager.default.copyItem(atPath: source, toPath: etc + "/" + name)
        }
        try "1234\n".write(toFile: etc + "/pin", atomically: true, encoding: .utf8)
        try dir.tool(["ticket-keys", "generate", "--out", etc + "/ticket.keys"])
        try dir.tool(["fleet-key", "generate", "--out", etc + "/fleet.key"])
        try "".write(toFile: etc + "/ca.crl", atomically: true, encoding: .utf8)
        let samplePath = dir.path("sample.yaml")
        try sample.replacingOccurrences(of: "/etc/qssl/", with: etc + "/").write(toFile: samplePath, atomically: true, encoding: .utf8)
        let good = try dir.tool(["check-config", samplePath], expectSuccess: false, timeout: 30)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("ok"), "\(good.stdout)")
    }

    /// `ServeConfigFile.sampleYAML`, read from its source (this target does not link QSSLServeConfig).
    func sampleConfig() throws -> String {
        let source = try String(contentsOfFile: Peers.packageRoot + "/Sources/QSSLServeConfig/SampleConfig.swift", encoding: .utf8)
        let start = try #require(source.range(of: "#\"\"\"\n"))
        let end = try #require(source.range(of: "\"\"\"#", range: start.upperBound..<source.endIndex))
        let body = source[start.upperBound..<end.lowerBound]
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        // The closing delimiter's indentation is stripped from every line, as Swift does.
        let indent = lines.last.map { $0.prefix { $0 == " " }.count } ?? 0
        return lines.map { $0.count >= indent ? String($0.dropFirst(indent)) : String($0.drop { $0 == " " }) }.joined(separator: "\n")
    }
}
