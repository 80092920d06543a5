import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// `qssl serve` as a TLS-terminating proxy (issue 20), process against process: real clients —
/// curl (Debian, OpenSSL 3.0), headless Chromium (Debian), OpenSSL 4.0 through pyOpenSSL
/// (`Peers/tls_client.py`), `qssl connect` and the in-process NIOQSSLClient — through
/// `qssl serve --backend` to a Python backend (`Peers/proxy_backend.py`) that parses the PROXY
/// header itself, echoes, and answers after the client's half-close. Limits, reload (SIGHUP),
/// drain (SIGTERM), metrics, the JSON access log, certificate selection and `qssl check-config`.
///
/// Every process a test starts is ended when the test ends (`ServeProcess`, `PeerProcess` and
/// `runCommand` kill their process group; Chromium's crash handlers, which leave the group, are
/// waited for and killed by pid), and every wait has a bound.
@Suite("Process: qssl serve as a TLS-terminating proxy", .serialized, .timeLimit(.minutes(3)))
struct ProxyTests {
    static var ecdsaCert: String { InteropPKI.shared.path("ecdsa.pem") }
    static var ecdsaKey: String { InteropPKI.shared.path("ecdsa.key") }
    static var ecdsaCA: String { InteropPKI.shared.path("ecdsa-ca.pem") }

    // MARK: - Real clients through the proxy

    @Test("curl (OpenSSL 3.0) → qssl serve --backend --proxy-protocol v2 → Python backend: the request is echoed; the backend reads the PROXY v2 TLVs (authority, SSL version/cipher, Q-SSL group TLV)")
    func curlThroughProxyV2() throws {
        let curl = try Peers.executable("curl")
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--expect-proxy", "v2", "--http"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json"])
        defer { server.stop() }

        let run = runCommand(curl, ["-sS", "--http1.1", "--cacert", Self.ecdsaCA, "--resolve", "localhost:\(server.port):127.0.0.1",
                                    "-m", "20", "--data-binary", "hello through the proxy from curl",
                                    "-w", "\nHTTP-STATUS %{http_code}\n", "https://localhost:\(server.port)/proxy-echo"], timeout: 30)
        #expect(run.status == 0, "curl: \(run.stderr)")
        #expect(run.stdout.contains("HTTP-STATUS 200"), "\(run.stdout)")
        #expect(run.stdout.contains("POST /proxy-echo HTTP/1.1"), "the backend's page echoes the request: \(run.stdout)")
        #expect(run.stdout.contains("hello through the proxy from curl"), "the request body reached the backend: \(run.stdout)")

        let record = try #require(try backend.records(count: 1).first)
        #expect(record["proxy_error"] == nil, "\(record)")
        #expect(record["proxy"] as? String == "v2")
        #expect(record["command"] as? String == "PROXY")
        #expect(record["family"] as? String == "INET")
        #expect(record["source"] as? String == "127.0.0.1")
        #expect(record["destination"] as? String == "127.0.0.1")
        #expect(record["destination_port"] as? Int == server.port)
        #expect(record["authority"] as? String == "localhost", "PP2_TYPE_AUTHORITY carries the SNI: \(record)")
        #expect((record["request"] as? String)?.contains("hello through the proxy from curl") == true)
        let ssl = try #require(record["ssl"] as? [String: Any], "PP2_TYPE_SSL: \(record)")
        #expect(ssl["client_ssl"] as? Bool == true)
        #expect(ssl["client_cert_conn"] as? Bool == false, "curl sent no certificate")
        #expect(ssl["version"] as? String == "TLSv1.3")
        let cipher = try #require(ssl["cipher"] as? String)
        #expect(["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"].contains(cipher))
        #expect((ssl["sig_alg"] as? String)?.isEmpty == false, "PP2_SUBTYPE_SSL_SIG_ALG: \(ssl)")
        #expect((ssl["key_alg"] as? String)?.isEmpty == false, "PP2_SUBTYPE_SSL_KEY_ALG: \(ssl)")
        let qssl = try #require(record["qssl"] as? [String: Any], "the Q-SSL TLV 0xE0: \(record)")
        #expect(qssl["format"] as? Int == 1)
        // Debian's curl (OpenSSL 3.0) has no hybrid: x25519, classical.
        #expect(qssl["group"] as? String == "x25519", "\(qssl)")
        #expect(qssl["group_code"] as? Int == 0x001D)
        #expect(qssl["post_quantum"] as? Bool == false)
        #expect(qssl["resumed"] as? Bool == false)

        // The access log says the same, and names curl's address as the header does.
        let entry = try server.waitForConnection { $0["sni"] as? String == "localhost" }
        #expect(entry["cipher"] as? String == cipher)
        #expect(entry["group"] as? String == "x25519")
        #expect(entry["post_quantum"] as? Bool == false)
        #expect(entry["client"] as? String == "127.0.0.1:\(record["source_port"] as? Int ?? -1)")
    }

    @Test("OpenSSL 4.0 client with SecP384r1MLKEM1024 through the proxy: data both ways, then close_notify + FIN: the backend reads EOF and its answer (EOF-SEEN) still reaches the client before the proxy's close_notify")
    func openssl4HalfClose() throws {
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--expect-proxy", "v2"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json"])
        defer { server.stop() }

        let message = "hello from OpenSSL 4 through the proxy"
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--sni", "localhost", "--groups", "SecP384r1MLKEM1024",
                                    "--send", message, "--chunks", "4", "--chunk-size", "16384", "--half-close"])
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["version"] as? String == "TLSv1.3")
        #expect(result["group"] as? String == "SecP384r1MLKEM1024")
        #expect(result["echo"] as? String == message)
        #expect(result["echo_ok"] as? Bool == true, "64 KiB echoed in 16 KiB pieces: \(result)")
        #expect(result["received"] as? String == "EOF-SEEN\n", "after the client's close_notify and FIN the backend saw EOF and could still answer: \(result)")
        #expect(result["close_notify_received"] as? Bool == true, "the proxy closes with close_notify once the backend closed: \(result)")

        let record = try #require(try backend.records(count: 1).first)
        #expect(record["eof_seen"] as? Bool == true)
        #expect(record["bytes_received"] as? Int == message.utf8.count + 4 * 16384)
        let qssl = try #require(record["qssl"] as? [String: Any], "\(record)")
        #expect(qssl["group"] as? String == "SecP384r1MLKEM1024")
        #expect(qssl["group_code"] as? Int == 0x11ED)
        #expect(qssl["post_quantum"] as? Bool == true)
        #expect((record["ssl"] as? [String: Any])?["cipher"] as? String == result["cipher"] as? String)

        let entry = try server.waitForConnection { $0["group"] as? String == "SecP384r1MLKEM1024" }
        #expect(entry["post_quantum"] as? Bool == true)
        #expect(entry["end"] as? String == "close_notify", "\(entry)")
        #expect((entry["bytes_from_client"] as? Int ?? 0) >= message.utf8.count + 4 * 16384)
        #expect((entry["bytes_to_client"] as? Int ?? 0) >= message.utf8.count + 4 * 16384 + 9)
    }

    @Test("a client certificate through the proxy: PROXY v2 says CERT_CONN, verify 0 and the subject CN; the access log names the client subject")
    func clientCertificateInProxyHeader() throws {
        let dir = try ToolDirectory()
        let pki = InteropPKI.shared.ecdsa
        let clientKey = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let clientCert = try PKIBuilder.issue(subject: "CN=proxy-test-client, O=Q-SSL", key: clientKey, by: pki.ca, client: true)
        try CertificateFiles.pem([clientCert]).write(toFile: dir.path("client.pem"), atomically: true, encoding: .utf8)
        try CertificateFiles.pkcs8PEM(clientKey).write(toFile: dir.path("client.key"), atomically: true, encoding: .utf8)

        let backend = try ProxyBackend(dir, ["--expect-proxy", "v2"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json",
                                       "--client-auth", "optional", "--client-ca", Self.ecdsaCA])
        defer { server.stop() }

        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--groups", "X25519MLKEM768",
                                    "--cert", dir.path("client.pem"), "--key", dir.path("client.key"), "--half-close"])
        #expect(result["ok"] as? Bool == true, "\(result)")
        let record = try #require(try backend.records(count: 1).first)
        let ssl = try #require(record["ssl"] as? [String: Any], "\(record)")
        #expect(ssl["client_ssl"] as? Bool == true)
        #expect(ssl["client_cert_conn"] as? Bool == true, "a certificate was presented on this connection: \(ssl)")
        #expect(ssl["verify"] as? Int == 0, "verified: \(ssl)")
        #expect(ssl["cn"] as? String == "proxy-test-client")
        let qssl = try #require(record["qssl"] as? [String: Any])
        #expect(qssl["group"] as? String == "X25519MLKEM768")
        #expect(qssl["group_code"] as? Int == 0x11EC)
        #expect(qssl["post_quantum"] as? Bool == true)

        let entry = try server.waitForConnection { $0["sni"] as? String == "localhost" }
        #expect((entry["client_subject"] as? String)?.contains("proxy-test-client") == true, "\(entry)")
    }

    @Test("headless Chromium through the proxy to an HTTP backend gets the page, over X25519MLKEM768 (the access log says so)")
    func chromium() throws {
        let chromium = try Peers.executable("chromium")
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--http"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--access-log", "json"])
        defer { server.stop() }

        // A home and profile of its own, so that its crash handlers (which leave the process
        // group) can be found by their command line and ended.
        let home = dir.path("chromium-home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let browser = try PeerProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                                 "--disable-breakpad", "--disable-crash-reporter", "--ignore-certificate-errors",
                                                 "--user-data-dir=\(home)/profile", "--host-resolver-rules=MAP localhost 127.0.0.1",
                                                 "--dump-dom", "https://localhost:\(server.port)/chromium-test"],
                                      environment: ["HOME": home, "XDG_CONFIG_HOME": home + "/config", "XDG_CACHE_HOME": home + "/cache"])
        let output = browser.finish(timeout: 60)
        endProcesses(mentioning: home)
        #expect(output.contains("qssl-proxy-backend"), "Chromium's DOM has the backend's page: \(output.suffix(2000))")
        #expect(output.contains("GET /chromium-test HTTP/1.1"))

        let entry = try server.waitForConnection(timeout: 15) { $0["group"] is String }
        #expect(entry["group"] as? String == "X25519MLKEM768", "\(entry)")
        #expect(entry["post_quantum"] as? Bool == true)
        #expect(entry["sni"] as? String == "localhost")
        #expect(entry["version"] as? String == "TLSv1.3")
        // Any other connection Chromium made negotiated the same.
        for other in server.connections where other["group"] is String {
            #expect(other["group"] as? String == "X25519MLKEM768", "\(other)")
        }
    }

    // MARK: - PROXY protocol from a load balancer

    @Test("--accept-proxy-from: a PROXY header from an address outside the trusted prefixes is refused at accept; from inside, it is believed")
    func acceptProxyFrom() throws {
        for (prefixes, trusted) in [("10.0.0.0/8,2001:db8::/32", false), ("192.0.2.1,127.0.0.0/8", true)] {
            let server = try ServeProcess(["--echo", "--accept-proxy-protocol", "--accept-proxy-from", prefixes, "--access-log", "json"])
            defer { server.stop() }
            let v2 = proxyV2Header(source: "203.0.113.7", sourcePort: 4242, destination: "127.0.0.1", destinationPort: UInt16(server.port))
            let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--prefix-hex", hex(v2), "--send", "who am I"])
            if trusted {
                #expect(result["ok"] as? Bool == true, "\(result)")
                _ = try server.waitForConnection { $0["client"] as? String == "203.0.113.7:4242" }
            } else {
                #expect(result["ok"] as? Bool != true, "a peer outside \(prefixes) cannot claim an address: \(result)")
                _ = try server.waitForConnection { $0["end"] as? String == "refused:proxy_source" && ($0["client"] as? String)?.hasPrefix("127.0.0.1:") == true }
            }
        }
    }

    @Test("--accept-proxy-protocol: a v2 and a v1 header from the load balancer, then TLS: the access log shows the header's source; a malformed header closes only that connection")
    func acceptProxyProtocol() throws {
        let server = try ServeProcess(["--echo", "--accept-proxy-protocol", "--access-log", "json"])
        defer { server.stop() }

        let v2 = proxyV2Header(source: "203.0.113.7", sourcePort: 4242, destination: "127.0.0.1", destinationPort: UInt16(server.port))
        let viaV2 = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--prefix-hex", hex(v2), "--send", "after a v2 header"])
        #expect(viaV2["ok"] as? Bool == true, "\(viaV2)")
        let v2Entry = try server.waitForConnection { $0["client"] as? String == "203.0.113.7:4242" }
        #expect(v2Entry["sni"] as? String == "localhost")

        let v1 = Array("PROXY TCP4 198.51.100.9 127.0.0.1 5555 \(server.port)\r\n".utf8)
        let viaV1 = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--prefix-hex", hex(v1), "--send", "after a v1 header"])
        #expect(viaV1["ok"] as? Bool == true, "\(viaV1)")
        _ = try server.waitForConnection { $0["client"] as? String == "198.51.100.9:5555" }

        // Malformed: the v2 signature with version 3, and a v1 line that is not one. Each
        // connection is closed; the server goes on.
        for malformed in [Array("\r\n\r\n\0\r\nQUIT\n".utf8) + [0x31, 0x11, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12),
                          Array("PROXY TCP4 not-an-address\r\n".utf8)] {
            let raw = try RawSocket(port: server.port)
            try raw.send(malformed)
            let closed = raw.waitClosed(timeout: 8)
            #expect(closed != nil, "a malformed PROXY header closes the connection")
        }
        let after = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--prefix-hex", hex(v2), "--send", "still served"])
        #expect(after["ok"] as? Bool == true, "the next good connection is served: \(after)")
        #expect(server.isRunning)
    }

    // MARK: - Limits

    @Test("--handshake-timeout 1: half a ClientHello is closed after about a second (not before 0.9 s, before 5 s); logged timeout:handshake")
    func handshakeTimeout() throws {
        let server = try ServeProcess(["--echo", "--handshake-timeout", "1", "--access-log", "json"])
        defer { server.stop() }
        let started = Date()
        let raw = try RawSocket(port: server.port)
        try raw.send(halfClientHello)
        let closed = try #require(raw.waitClosed(timeout: 10), "the stalled handshake was never closed")
        let seconds = closed.at.timeIntervalSince(started)
        #expect(seconds >= 0.9 && seconds < 5, "closed after \(seconds) s")
        let entry = try server.waitForConnection { $0["end"] as? String == "timeout:handshake" }
        #expect(entry["version"] is NSNull || entry["version"] == nil)
    }

    @Test("--max-handshakes 1 --handshake-overflow refuse: with one handshake stalled, a second is refused at once (logged limit:max_handshakes); once the stalled one goes, handshakes work again")
    func maxHandshakesRefuse() async throws {
        let server = try ServeProcess(["--echo", "--max-handshakes", "1", "--handshake-overflow", "refuse", "--handshake-timeout", "20", "--access-log", "json"])
        defer { server.stop() }
        let stalled = try RawSocket(port: server.port)
        try stalled.send(halfClientHello)
        try await Task.sleep(for: .milliseconds(500))

        let refused = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--timeout", "15"])
        #expect(refused["ok"] as? Bool == false, "\(refused)")
        #expect(refused["stage"] as? String == "handshake" || refused["stage"] as? String == "connect", "\(refused)")
        #expect((refused["seconds"] as? Double ?? 99) < 3, "refused at once, not after a timeout: \(refused)")
        _ = try server.waitForConnection { $0["end"] as? String == "limit:max_handshakes" }

        stalled.close()
        try await Task.sleep(for: .milliseconds(300))
        let served = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA])
        #expect(served["ok"] as? Bool == true, "\(served)")
    }

    @Test("--idle-timeout 1 closes an idle established connection (logged timeout:idle)")
    func idleTimeout() throws {
        let server = try ServeProcess(["--echo", "--idle-timeout", "1", "--access-log", "json"])
        defer { server.stop() }
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--wait-close", "10"])
        #expect(result["echo_ok"] as? Bool == true, "\(result)")
        let seconds = result["seconds_to_close"] as? Double ?? 99
        #expect(seconds >= 0.8 && seconds < 5, "closed \(seconds) s after the last data: \(result)")
        // The contract does not say how an idle connection is closed: close_notify is expected of
        // a clean proxy, a bare FIN is accepted; not closing is not.
        #expect(["close_notify", "eof"].contains(result["end"] as? String ?? ""), "\(result)")
        _ = try server.waitForConnection { $0["end"] as? String == "timeout:idle" }
    }

    @Test("--max-lifetime 1 closes a connection after a second even though --idle-timeout has not passed (logged limit:max_lifetime)")
    func maxLifetime() throws {
        let server = try ServeProcess(["--echo", "--max-lifetime", "1", "--idle-timeout", "300", "--access-log", "json"])
        defer { server.stop() }
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--wait-close", "10"])
        #expect(result["echo_ok"] as? Bool == true, "\(result)")
        #expect((result["seconds_to_close"] as? Double ?? 99) < 5, "\(result)")
        #expect(result["end"] as? String != "timeout", "\(result)")
        _ = try server.waitForConnection { $0["end"] as? String == "limit:max_lifetime" }
    }

    @Test("--max-connections under connect/close churn from many threads: accepting never stays off (the hostile review's wedge)")
    func maxConnectionsChurn() async throws {
        let server = try ServeProcess(["--echo", "--max-connections", "2", "--handshake-timeout", "2", "--access-log", "json"])
        defer { server.stop() }
        let port = server.port
        // 16 threads × 1.5 s of TCP connect, 1 ms, close: the gate crosses its maximum both ways,
        // from both event loops, thousands of times.
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let deadline = Date().addingTimeInterval(1.5)
            while Date() < deadline {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard fd >= 0 else { continue }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                usleep(1000)
                close(fd)
            }
        }
        // Within the handshake timeout the churned connections are gone, and a client is served.
        // Up to 1,024 dead connections wait in the accept queue; a debug build takes a while to go
        // through them, two at a time: a generous timeout.
        let client = try tlsClient(["127.0.0.1:\(port)", "--ca", Self.ecdsaCA, "--send", "after the churn", "--timeout", "90"], timeout: 120)
        #expect(client["ok"] as? Bool == true, "a connection after the churn is served: \(client) — log: \(server.lines.suffix(3))")
    }

    @Test("a client that never reads is still closed by --idle-timeout: close_notify waits at most 2 s to be written")
    func nonReadingClientIsClosed() async throws {
        let server = try ServeProcess(["--echo", "--idle-timeout", "1", "--access-log", "json"])
        defer { server.stop() }
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: qsslClientConfig(), serverName: "localhost")
        try await client.channel.setOption(ChannelOptions.autoRead, value: false)
        let chunk = client.channel.allocator.buffer(repeating: 0x61, count: 64 * 1024)
        for _ in 0..<200 { client.channel.writeAndFlush(chunk, promise: nil) }   // 12.5 MiB, echoed into a window nobody empties
        let started = ContinuousClock.now
        try await client.channel.closeFuture.get()
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(15), "closed \(waited) after the flood began (idle 1 s, then at most 2 s for close_notify)")
        _ = try server.waitForConnection { $0["end"] as? String == "timeout:idle" }
    }

    @Test("--proxy-protocol v1 end to end: the backend reads a v1 line with the client's address, and the data flows")
    func proxyProtocolV1() throws {
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--expect-proxy", "v1"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v1", "--access-log", "json"])
        defer { server.stop() }
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--send", "over a v1 header", "--half-close"])
        #expect(result["echo"] as? String == "over a v1 header", "result: \(result)")
        #expect(result["received"] as? String == "EOF-SEEN\n", "half-close reached the backend: \(result)")
        let record = try #require(try backend.records(count: 1).first)
        #expect(record["proxy_error"] == nil, "\(record)")
        #expect(record["proxy"] as? String == "v1")
        #expect(record["source"] as? String == "127.0.0.1")
        #expect(record["destination_port"] as? Int == server.port)
        _ = try server.waitForConnection { $0["end"] as? String == "close_notify" }
    }

    @Test("--max-connections 2: a third connection is not served while two are open; once one closes, connections are served again")
    func maxConnections() async throws {
        let server = try ServeProcess(["--echo", "--max-connections", "2", "--access-log", "json"])
        defer { server.stop() }
        let config = qsslClientConfig()
        let first = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        let second = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        for (client, text) in [(first, "first"), (second, "second")] {
            try await client.send(Array(text.utf8))
            #expect(try await client.read(expectedBytes: text.utf8.count, idleTimeout: .seconds(5)) == Array(text.utf8))
        }

        let third = try PeerProcess(try Peers.requirePython(), [Peers.script("tls_client.py"), "127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA,
                                                                "--send", "third", "--timeout", "25"])
        defer { third.terminate() }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(!third.text.contains("\"ok\": true"), "a third connection was served while two were open: \(third.text)")

        await first.close()
        let thirdResult = try peerResult(third.finish(timeout: 30))
        if thirdResult["ok"] as? Bool != true {
            // The third was refused rather than kept waiting: then the refusal is logged, and a
            // new connection is served now that a slot is free.
            _ = try server.waitForConnection { $0["end"] as? String == "limit:max_connections" }
            let fourth = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--send", "fourth"])
            #expect(fourth["ok"] as? Bool == true, "after one of two connections closed, a new one is served: \(fourth)")
        }
        try await second.send(Array("still".utf8))
        #expect(try await second.read(expectedBytes: 5, idleTimeout: .seconds(5)) == Array("still".utf8))
        await second.close()
    }

    @Test("--handshake-rate 2: a burst of handshakes from 127.0.0.1 in under a second has some refused (logged limit:handshake_rate); after a pause handshakes work again")
    func handshakeRate() async throws {
        let server = try ServeProcess(["--echo", "--handshake-rate", "2", "--access-log", "json"])
        defer { server.stop() }
        // x25519 keeps the handshakes cheap, so that all of them arrive within the second.
        let config = qsslClientConfig(groups: [.x25519])
        let port = server.port
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost",
                                                                     timeout: .seconds(10))
                        await client.close()
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var results: [Bool] = []
            for await ok in group { results.append(ok) }
            return results
        }
        let served = outcomes.filter { $0 }.count
        #expect(served >= 2, "the first two handshakes of the second are allowed: \(outcomes)")
        #expect(served <= 7, "the 5th and later handshakes in a second from 127.0.0.1 are refused: \(outcomes)")
        _ = try server.waitForConnection { $0["end"] as? String == "limit:handshake_rate" }

        try await Task.sleep(for: .milliseconds(2500))
        let later = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
        await later.close()
    }

    @Test("back-pressure: a client that writes and never reads, to a backend that does not read, cannot make the proxy buffer without bound")
    func backPressure() throws {
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--delay-read", "30"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--access-log", "json"])
        defer { server.stop() }
        let before = server.residentBytes ?? 0
        let result = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--send", "", "--flood", "6", "--timeout", "20"])
        #expect(result["ok"] as? Bool == true, "\(result)")
        let flooded = result["flood_bytes"] as? Int ?? 0
        #expect(flooded < 48 << 20, "the proxy kept taking data from a client whose backend reads nothing: \(flooded) bytes")
        #expect(result["flood_blocked"] as? Bool == true, "writes stopped being taken: \(result)")
        if let after = server.residentBytes {
            #expect(after - before < 48 << 20, "the proxy grew by \((after - before) >> 20) MiB")
        }
    }

    // MARK: - Lifecycle

    @Test("SIGHUP reloads the certificate: an open connection keeps working, a new one sees the new certificate; a broken file keeps the old configuration (\"reload failed\")")
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
        config.sessionStore = nil   // full handshakes: a resumed one carries no certificate to look at
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
            let late = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost",
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

    @Test("--metrics: after 3 handshakes and one stalled ClientHello, /metrics counts them (handshakes, handshake_timeout limit, bytes, open connections) and /healthz is 200 ok")
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
        #expect(handshakes.filter { $0.labels["group"] == "X25519MLKEM768" && $0.labels["post_quantum"] == "true" }.reduce(0) { $0 + $1.value } == Double(n),
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
        let fields = ["client", "sni", "version", "cipher", "group", "post_quantum", "resumed", "client_subject",
                      "bytes_from_client", "bytes_to_client", "duration_ms", "end"]
        let endPattern = #/^(close_notify|closed|drain|refused:proxy_source|proxy_header:.+|timeout:(handshake|idle)|limit:(max_lifetime|max_handshakes|handshake_rate|max_connections)|alert:[a-z_0-9]+ (sent|received)|backend:.+)$/#
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
        #expect(alert?["end"] as? String != nil && (alert?["end"] as? String)!.hasSuffix(" sent"),
                "the plaintext request got an alert, logged as sent: \(connections)")
    }

    // MARK: - Certificates by SNI and by what the client can verify

    @Test("ECDSA and composite ML-DSA-65+ECDSA-P384 pairs: qssl connect (offers 0xFE46) gets the composite chain; curl, OpenSSL 4 (no composite) get ECDSA",
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
        let connect = try dir.tool(["connect", "127.0.0.1:\(server.port)", "--ca", compositeDir + "/ca.pem", "--server-name", "localhost", "--json"],
                                   expectSuccess: false, timeout: 30)
        #expect(connect.status == 0, "\(connect.stdout)\(connect.stderr)")
        let object = (try? JSONSerialization.jsonObject(with: Data(connect.stdout.utf8))) as? [String: Any]
        #expect(object?["signature_scheme"] as? String == "qssl_mldsa65_ecdsa_secp384r1_sha512", "\(connect.stdout)")
        #expect((object?["peer_certificates"] as? [String])?.isEmpty == false)

        // Only the ECDSA CA: curl (OpenSSL 3.0, a browser-like client) gets the ECDSA chain.
        let run = runCommand(curl, ["-sS", "-v", "--http1.1", "--cacert", Self.ecdsaCA, "--resolve", "localhost:\(server.port):127.0.0.1",
                                    "-m", "20", "https://localhost:\(server.port)/"], timeout: 30)
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
        let rejected = try dir.tool(["connect", "127.0.0.1:\(strict.port)", "--ca", Self.ecdsaCA, "--server-name", "unknown.example", "--json"],
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
        let unknown = try tlsClient(["127.0.0.1:\(lenient.port)", "--sni", "unknown.example"])   // no --ca: the name is not checked
        #expect(unknown["ok"] as? Bool == true, "\(unknown)")
        #expect(unknown["peer_subject"] as? String == "localhost")
    }

    // MARK: - Backends and listeners

    @Test("a backend that refuses: the client's connection is closed cleanly, logged backend:…, counted in qssl_backend_connect_failures_total")
    func backendRefused() throws {
        let dead = try Peers.freePort()
        let metricsPort = try Peers.freePort()
        let server = try ServeProcess(["--backend", "127.0.0.1:\(dead)", "--backend-connect-timeout", "2", "--metrics", "127.0.0.1:\(metricsPort)",
                                       "--access-log", "json"])
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
        for (name, source) in [("pq-chain.pem", Self.ecdsaCert), ("pq-key.pem", Self.ecdsaKey), ("fallback-chain.pem", Self.ecdsaCert),
                               ("api-chain.pem", Self.ecdsaCert), ("api-key.pem", Self.ecdsaKey), ("client-cas.pem", Self.ecdsaCA)] {
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

// MARK: - Processes

/// A `qssl serve` process on free ports: stdout and stderr kept apart (log lines are whole lines
/// in each), signals by pid, the exit status. Ended (its whole process group) when stopped or
/// released.
final class ServeProcess: @unchecked Sendable {
    let port: Int
    private let process = Process()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""

    /// - Parameters:
    ///   - flags: after `serve` and the `--listen`/`--cert`/`--key` arguments.
    ///   - certificates: `--cert`/`--key` pairs (default: the interop ECDSA pair).
    ///   - listen: the `--listen` addresses (default: 127.0.0.1 on a free port); waits until
    ///     each is reported listening.
    init(_ flags: [String], certificates: [(String, String)]? = nil, listen: [String]? = nil) throws {
        let addresses = try listen ?? ["127.0.0.1:\(try Peers.freePort())"]
        port = Int(addresses[0].split(separator: ":").last!)!
        var arguments = ["serve"]
        for address in addresses { arguments += ["--listen", address] }
        for (cert, key) in certificates ?? [(InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"))] {
            arguments += ["--cert", cert, "--key", key]
        }
        arguments += flags
        process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        process.arguments = ["-e", PeerProcess.cleanExec, try QSSLToolBinary.path()] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            // End of file: stop watching (an empty read would otherwise repeat at once).
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            guard let self else { return }
            self.lock.withLock { self.stdoutText += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            // End of file: stop watching (an empty read would otherwise repeat at once).
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            guard let self else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        // Ready when each listener is reported ("listening on ADDR", or a JSON line with event
        // "listening"): no probe connection, which would show in the log, metrics and limits.
        for address in addresses {
            let portText = String(address.split(separator: ":").last!)
            try waitUntil(timeout: 30, "qssl serve listening on \(address)") {
                self.lines.contains { $0.contains("listening") && $0.contains(portText) }
            }
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var output: String { lock.withLock { stdoutText + (stderrText.isEmpty ? "" : "\n--- stderr ---\n" + stderrText) } }

    /// Every complete line of stdout and stderr (stdout's first).
    var lines: [String] {
        lock.withLock {
            [stdoutText, stderrText].flatMap { text in
                text.split(separator: "\n", omittingEmptySubsequences: true).dropLast(text.hasSuffix("\n") ? 0 : 1).map(String.init)
            }
        }
    }

    /// The access-log lines: JSON objects with "event": "connection".
    var connections: [[String: Any]] {
        lines.compactMap { line in
            guard line.hasPrefix("{"), let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  o["event"] as? String == "connection" else { return nil }
            return o
        }
    }

    @discardableResult
    func waitForConnection(timeout: Double = 10, where match: ([String: Any]) -> Bool) throws -> [String: Any] {
        var found: [String: Any]?
        try waitUntil(timeout: timeout, "an access-log line as expected") {
            found = self.connections.first(where: match)
            return found != nil
        }
        return found!
    }

    func waitForConnections(count: Int, timeout: Double = 10) throws -> [[String: Any]] {
        try waitUntil(timeout: timeout, "\(count) access-log connection lines") { self.connections.count >= count }
        return connections
    }

    func waitForText(_ text: String, timeout: Double = 10) throws {
        try waitUntil(timeout: timeout, "'\(text)' in the log") { self.output.contains(text) }
    }

    func signal(_ sig: Int32) {
        if process.isRunning { kill(process.processIdentifier, sig) }
    }

    /// The exit status once the process exits within `timeout`; nil if it is still running.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// VmRSS of the process, in bytes.
    var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }

    private func waitUntil(timeout: Double, _ what: String, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            if !process.isRunning {
                Thread.sleep(forTimeInterval: 0.1)
                if condition() { return }
                throw PeerError("qssl serve exited (\(process.terminationStatus)) while waiting for \(what):\n\(output)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw PeerError("timed out waiting for \(what) from qssl serve:\n\(output)")
    }

    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// `Peers/proxy_backend.py` on a free port (or a Unix socket), recording each connection.
final class ProxyBackend: @unchecked Sendable {
    let process: PeerProcess
    let port: Int
    let recordPath: String

    init(_ dir: ToolDirectory, _ flags: [String]) throws {
        recordPath = dir.path("backend-\(UInt32.random(in: 0...UInt32.max)).jsonl")
        let portFlags = flags.contains("--unix") ? [] : ["--port", "0"]
        process = try PeerProcess(try Peers.requirePython(), [Peers.script("proxy_backend.py"), "--record", recordPath] + portFlags + flags)
        try process.waitFor("listening ")
        let word = process.text.split(separator: "\n").first { $0.hasPrefix("listening ") }?.split(separator: " ").last
        port = word.flatMap { Int($0) } ?? 0
    }

    /// The first `count` connection records, waiting for them to be written.
    func records(count: Int, timeout: Double = 10) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var found: [[String: Any]] = []
        while Date() < deadline {
            let text = (try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? ""
            found = text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            if found.count >= count { return Array(found.prefix(count)) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw PeerError("the backend recorded \(found.count) of \(count) connections:\n\(process.text)")
    }

    func stop() { process.terminate() }
}

/// Runs `Peers/tls_client.py` (OpenSSL 4.0) to completion and returns its JSON object.
func tlsClient(_ arguments: [String], timeout: Double = 40) throws -> [String: Any] {
    let peer = try PeerProcess(try Peers.requirePython(), [Peers.script("tls_client.py")] + arguments)
    return try peerResult(peer.finish(timeout: timeout))
}

/// Runs a program to completion (its process group killed after `timeout`).
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60) -> ToolRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
    process.arguments = ["-e", PeerProcess.cleanExec, executable] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { return ToolRun(status: -1, stdout: "", stderr: "\(error)") }
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let errBox = ProxyDataBox()
    let errDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        errDone.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    errDone.wait()
    watchdog.cancel()
    return ToolRun(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errBox.data, as: UTF8.self))
}

private final class ProxyDataBox: @unchecked Sendable {
    var data = Data()
}

/// Ends (by pid) the processes whose command line mentions `marker` — Chromium's crash
/// handlers, which start sessions of their own and so outlive a process-group kill — after
/// giving them a few seconds to exit by themselves.
func endProcesses(mentioning marker: String) {
    func matching() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }
    }
    let deadline = Date().addingTimeInterval(5)
    while !matching().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    for pid in matching() { kill(pid, SIGKILL) }
}

// MARK: - Sockets, headers, HTTP

/// A plain TCP connection for what no TLS client sends: half a ClientHello, a PROXY header, garbage.
final class RawSocket: @unchecked Sendable {
    private var fd: Int32

    init(port: Int, host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(host)
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw PeerError("cannot connect to \(host):\(port): errno \(e)")
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw PeerError("send failed: errno \(errno)") }
            sent += n
        }
    }

    /// Reads until the peer closes (EOF or reset); the moment it did and what arrived, or nil if
    /// the connection is still open after `timeout` seconds.
    func waitClosed(timeout: Double) -> (at: Date, received: [UInt8])? {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno != EINTR { return (Date(), received) }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (Date(), received) }
            received += buffer[0..<n]
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// The first 50 bytes of a TLS 1.3 ClientHello whose record says 512 bytes follow: a handshake
/// that never completes.
let halfClientHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
    + (0..<32).map { _ in UInt8.random(in: 0...255) } + [0x20] + [UInt8](repeating: 0x5A, count: 6)

/// A PROXY protocol v2 header (PROXY, TCP over IPv4), written here rather than by Q-SSL's codec.
func proxyV2Header(source: String, sourcePort: UInt16, destination: String, destinationPort: UInt16) -> [UInt8] {
    func ipv4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    let body = ipv4(source) + ipv4(destination) + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
    return Array("\r\n\r\n\0\r\nQUIT\n".utf8) + [0x21, 0x11, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// GET with curl: the status and the body. With `retryFor`, retries until an answer comes.
func httpGet(_ url: String, retryFor: Double = 0) throws -> (status: Int, body: String) {
    let curl = try Peers.executable("curl")
    let deadline = Date().addingTimeInterval(retryFor)
    while true {
        let run = runCommand(curl, ["-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", url], timeout: 20)
        if run.status == 0, let statusLine = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).last, let status = Int(statusLine) {
            return (status, String(run.stdout.dropLast(statusLine.count + 1)))
        }
        if Date() >= deadline { throw PeerError("GET \(url) failed: \(run.status) \(run.stderr)") }
        Thread.sleep(forTimeInterval: 0.2)
    }
}

/// One sample of the Prometheus text format: `name{label="value",…} value`.
struct PrometheusSample: CustomStringConvertible {
    let name: String
    let labels: [String: String]
    let value: Double

    var description: String { "\(name)\(labels) \(value)" }

    static func parse(_ text: String) -> [PrometheusSample] {
        text.split(separator: "\n").compactMap { raw in
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { return nil }
            var name = ""
            var labels: [String: String] = [:]
            var rest: Substring
            if let brace = line.firstIndex(of: "{") {
                name = String(line[..<brace])
                var i = line.index(after: brace)
                // key="value" pairs; values may hold \" \\ \n escapes.
                while i < line.endIndex, line[i] != "}" {
                    if line[i] == "," || line[i] == " " { i = line.index(after: i); continue }
                    guard let eq = line[i...].firstIndex(of: "=") else { return nil }
                    let key = String(line[i..<eq])
                    var j = line.index(after: eq)
                    guard j < line.endIndex, line[j] == "\"" else { return nil }
                    j = line.index(after: j)
                    var value = ""
                    while j < line.endIndex, line[j] != "\"" {
                        if line[j] == "\\", line.index(after: j) < line.endIndex {
                            j = line.index(after: j)
                            value.append(line[j] == "n" ? "\n" : line[j])
                        } else {
                            value.append(line[j])
                        }
                        j = line.index(after: j)
                    }
                    labels[key] = value
                    i = j < line.endIndex ? line.index(after: j) : j
                }
                rest = i < line.endIndex ? line[line.index(after: i)...] : ""
            } else {
                let parts = line.split(separator: " ", maxSplits: 1)
                name = String(parts[0])
                rest = parts.count > 1 ? parts[1] : ""
            }
            guard let token = rest.split(separator: " ").first else { return nil }
            let value: Double? = switch token {
            case "+Inf": .infinity
            case "-Inf": -.infinity
            case "NaN": .nan
            default: Double(token)
            }
            return value.map { PrometheusSample(name: name, labels: labels, value: $0) }
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    static func sum(_ samples: [PrometheusSample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    /// The value of the one sample named `name` (nil when absent).
    static func value(_ samples: [PrometheusSample], _ name: String) -> Double? {
        samples.first { $0.name == name }?.value
    }
}
