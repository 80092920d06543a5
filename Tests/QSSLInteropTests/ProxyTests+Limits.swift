import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// ProxyTests: the limits (timeouts, handshake and connection caps, rates, back-pressure).

extension ProxyTests {
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

    @Test(
        "--max-handshakes 1 --handshake-overflow refuse: with one handshake stalled, a second is refused at once (logged limit:max_handshakes); once the stalled one goes, handshakes work again"
    )
    func maxHandshakesRefuse() async throws {
        let server = try ServeProcess(["--echo", "--max-handshakes", "1", "--handshake-overflow", "refuse", "--handshake-timeout", "20", "--access-log", "json"]
        )
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
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
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
        for _ in 0..<200 { client.channel.writeAndFlush(chunk, promise: nil) }  // 12.5 MiB, echoed into a window nobody empties
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

        let third = try PeerProcess(
            try Peers.requirePython(),
            [
                Peers.script("tls_client.py"), "127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA,
                "--send", "third", "--timeout", "25"
            ])
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

    @Test(
        "--handshake-rate 2: a burst of handshakes from 127.0.0.1 in under a second has some refused (logged limit:handshake_rate); after a pause handshakes work again"
    )
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
                        let client = try await NIOQSSLClient.connect(
                            host: "127.0.0.1", port: port, configuration: config, serverName: "localhost",
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
}
