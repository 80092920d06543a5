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

    @Test(
        "curl (OpenSSL 3.0) → qssl serve --backend --proxy-protocol v2 → Python backend: the request is echoed; the backend reads the PROXY v2 TLVs (authority, SSL version/cipher, Q-SSL group TLV)"
    )
    func curlThroughProxyV2() throws {
        let curl = try Peers.executable("curl")
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--expect-proxy", "v2", "--http"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json"])
        defer { server.stop() }

        let run = runCommand(
            curl,
            [
                "-sS", "--http1.1", "--cacert", Self.ecdsaCA, "--resolve", "localhost:\(server.port):127.0.0.1",
                "-m", "20", "--data-binary", "hello through the proxy from curl",
                "-w", "\nHTTP-STATUS %{http_code}\n", "https://localhost:\(server.port)/proxy-echo"
            ], timeout: 30)
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

    @Test(
        "OpenSSL 4.0 client with SecP384r1MLKEM1024 through the proxy: data both ways, then close_notify + FIN: the backend reads EOF and its answer (EOF-SEEN) still reaches the client before the proxy's close_notify"
    )
    func openssl4HalfClose() throws {
        let dir = try ToolDirectory()
        let backend = try ProxyBackend(dir, ["--expect-proxy", "v2"])
        defer { backend.stop() }
        let server = try ServeProcess(["--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json"])
        defer { server.stop() }

        let message = "hello from OpenSSL 4 through the proxy"
        let result = try tlsClient([
            "127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--sni", "localhost", "--groups", "SecP384r1MLKEM1024",
            "--send", message, "--chunks", "4", "--chunk-size", "16384", "--half-close"
        ])
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
        let server = try ServeProcess([
            "--backend", "127.0.0.1:\(backend.port)", "--proxy-protocol", "v2", "--access-log", "json",
            "--client-auth", "optional", "--client-ca", Self.ecdsaCA
        ])
        defer { server.stop() }

        let result = try tlsClient([
            "127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--groups", "X25519MLKEM768",
            "--cert", dir.path("client.pem"), "--key", dir.path("client.key"), "--half-close"
        ])
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
        let browser = try PeerProcess(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-breakpad", "--disable-crash-reporter", "--ignore-certificate-errors",
                "--user-data-dir=\(home)/profile", "--host-resolver-rules=MAP localhost 127.0.0.1",
                "--dump-dom", "https://localhost:\(server.port)/chromium-test"
            ],
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
                _ = try server.waitForConnection {
                    $0["end"] as? String == "refused:proxy_source" && ($0["client"] as? String)?.hasPrefix("127.0.0.1:") == true
                }
            }
        }
    }

    @Test(
        "--accept-proxy-protocol: a v2 and a v1 header from the load balancer, then TLS: the access log shows the header's source; a malformed header closes only that connection"
    )
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
        for malformed in [
            Array("\r\n\r\n\0\r\nQUIT\n".utf8) + [0x31, 0x11, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12),
            Array("PROXY TCP4 not-an-address\r\n".utf8)
        ] {
            let raw = try RawSocket(port: server.port)
            try raw.send(malformed)
            let closed = raw.waitClosed(timeout: 8)
            #expect(closed != nil, "a malformed PROXY header closes the connection")
        }
        let after = try tlsClient(["127.0.0.1:\(server.port)", "--ca", Self.ecdsaCA, "--prefix-hex", hex(v2), "--send", "still served"])
        #expect(after["ok"] as? Bool == true, "the next good connection is served: \(after)")
        #expect(server.isRunning)
    }
}
