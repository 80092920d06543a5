import Foundation
import QSSL
import QSSLX509
import Testing

/// `qssl trace` (issue 23) against real servers: `qssl serve` (composite ML-DSA-65 + ECDSA-P384
/// certificate), OpenSSL 3.0 `s_server` (TLS 1.3 and TLS 1.2), with HelloRetryRequest,
/// resumption and client certificates; the HTML report rendered in headless Chromium; a
/// truncated server flight, garbage and an unreachable port traced to their failure.
@Suite("Process: qssl trace", .serialized)
struct TraceTests {
    /// The composite PKI `qssl serve` is given here.
    static let composite: (cert: String, key: String, ca: String) = {
        let dir = InteropPKI.shared.directory + "/trace"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            let pki = try DemoPKI(algorithm: .mldsa65ECDSAP384)
            try CertificateFiles.pem([pki.serverCertificate]).write(toFile: dir + "/composite.pem", atomically: true, encoding: .utf8)
            try CertificateFiles.pkcs8PEM(pki.serverKey).write(toFile: dir + "/composite.key", atomically: true, encoding: .utf8)
            try CertificateFiles.pem([pki.ca.certificate]).write(toFile: dir + "/composite-ca.pem", atomically: true, encoding: .utf8)
        } catch { fatalError("composite PKI: \(error)") }
        return (dir + "/composite.pem", dir + "/composite.key", dir + "/composite-ca.pem")
    }()

    static func compositeServer(_ dir: ToolDirectory, _ flags: [String] = []) throws -> TracedServer {
        let port = try Peers.freePort()
        let process = try PeerProcess(
            try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", composite.cert, "--key", composite.key] + flags)
        try process.waitFor("listening on")
        try Peers.waitForListener(port: port)
        return TracedServer(port: port, process: process)
    }

    /// `qssl trace … --format json`: the document.
    static func traceJSON(_ dir: ToolDirectory, port: Int, ca: String, _ extra: [String], expectSuccess: Bool = true) throws -> (
        doc: [String: Any], run: ToolRun
    ) {
        let run = try dir.tool(
            ["trace", "127.0.0.1:\(port)", "--ca", ca, "--server-name", "localhost", "--format", "json"] + extra, expectSuccess: expectSuccess)
        let doc = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        return (try #require(doc, "qssl trace printed \(run.stdout)\n\(run.stderr)"), run)
    }

    static func names(_ trace: [String: Any], _ direction: String? = nil) -> [String] {
        ((trace["messages"] as? [[String: Any]]) ?? []).filter { direction == nil || $0["direction"] as? String == direction }.compactMap {
            $0["name"] as? String
        }
    }

    /// Sizes that match the wire: the core's message sizes, plus 5 bytes per record, AEAD
    /// overhead, ChangeCipherSpec and alerts, are every byte read; segments and the initial
    /// window follow from the MSS.
    static func checkWire(_ trace: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
        let acc = (trace["wire_accounting"] as? [String: Int]) ?? [:]
        let sum = ["handshake_messages", "record_headers", "aead_overhead", "change_cipher_spec", "alerts"].map { acc[$0] ?? 0 }.reduce(0, +)
        #expect(acc["total_read"] == trace["bytes_read"] as? Int, sourceLocation: sourceLocation)
        #expect(sum == acc["total_read"], "\(acc)", sourceLocation: sourceLocation)
        #expect(acc["application_data_and_unattributed"] == 0, "\(acc)", sourceLocation: sourceLocation)
        let records = (trace["records"] as? [[String: Any]]) ?? []
        #expect(
            records.filter { $0["direction"] as? String == "S->C" }.map { 5 + ($0["payload_length"] as? Int ?? 0) }.reduce(0, +) == acc["total_read"],
            sourceLocation: sourceLocation)
        let mss = trace["mss"] as? Int ?? 0
        let window = (trace["initial_window_segments"] as? Int ?? 0) * mss
        #expect(mss > 0 && window == 10 * mss, sourceLocation: sourceLocation)
        for flight in (trace["flights"] as? [[String: Any]]) ?? [] {
            let wire = flight["wire_bytes"] as? Int ?? 0
            #expect(flight["segments"] as? Int == (wire + mss - 1) / mss, sourceLocation: sourceLocation)
            #expect(flight["over_initial_window"] as? Bool == (wire > window), sourceLocation: sourceLocation)
        }
        // Segments are numbered from the flight's first byte (its first record's header), for
        // the messages as for the flights.
        let messages = (trace["messages"] as? [[String: Any]]) ?? []
        for m in messages {
            let flight = m["flight"] as? Int ?? 0
            let direction = m["direction"] as? String
            let indices = Set(messages.filter { $0["flight"] as? Int == flight }.flatMap { ($0["records"] as? [Int]) ?? [] })
            let flightStart =
                records.filter { $0["direction"] as? String == direction && indices.contains($0["index"] as? Int ?? -1) }
                .compactMap { $0["wire_offset"] as? Int }.min() ?? 0
            let start = (m["wire_start"] as? Int ?? 0) - flightStart
            let end = (m["wire_end"] as? Int ?? 0) - flightStart
            #expect(m["first_segment"] as? Int == start / mss + 1, "\(m)", sourceLocation: sourceLocation)
            #expect(m["last_segment"] as? Int == max(start, end - 1) / mss + 1, "\(m)", sourceLocation: sourceLocation)
            let f = ((trace["flights"] as? [[String: Any]]) ?? []).first { $0["index"] as? Int == flight }
            #expect((m["last_segment"] as? Int ?? 0) <= (f?["segments"] as? Int ?? 0), "\(m)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - qssl serve

    @Test(
        "qssl serve, composite certificate, TLS 1.3: the message sequence, sizes matching the wire, segments, the client's work; companions for 1.2 and resumption"
    )
    func qsslServe13() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let (doc, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca, ["--tls-versions", "1.3"])
        let trace = try #require(doc["trace"] as? [String: Any])
        #expect(
            Self.names(trace) == [
                "ClientHello", "ServerHello", "ChangeCipherSpec", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished",
                "ChangeCipherSpec", "Finished", "NewSessionTicket", "NewSessionTicket"
            ])
        #expect(trace["version"] as? String == "TLSv1.3")
        #expect(trace["group"] as? String == "SecP384r1MLKEM1024")
        #expect(trace["handshake_round_trips"] as? Int == 1)
        Self.checkWire(trace)
        // The client's work, with CPU: key exchange and key schedule on ServerHello, the rest per message.
        let messages = (trace["messages"] as? [[String: Any]]) ?? []
        let serverHello = try #require(messages.first { $0["name"] as? String == "ServerHello" })
        let steps = ((serverHello["computations"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(steps.contains("key exchange SecP384r1MLKEM1024"), "\(steps)")
        #expect(steps.contains("handshake key schedule"))
        #expect(steps.contains("processing ServerHello"))
        #expect(((serverHello["computations"] as? [[String: Any]]) ?? []).allSatisfy { ($0["cpu_milliseconds"] as? Double ?? -1) >= 0 })
        // The certificate travelled in records and segments of its own.
        let certificate = try #require(messages.first { $0["name"] as? String == "Certificate" })
        #expect((certificate["size"] as? Int ?? 0) > 5000, "a composite certificate is large")
        // The timing model's companions: TLS 1.2 full and a TLS 1.3 resumption.
        let companions = (doc["companions"] as? [[String: Any]]) ?? []
        let t12 = try #require(companions.first { $0["version"] as? String == "TLSv1.2" })
        #expect(Self.names(t12).starts(with: ["ClientHello", "ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone"]))
        #expect(t12["handshake_round_trips"] as? Int == 2)
        Self.checkWire(t12)
        let resumed = try #require(companions.first { $0["resumed"] as? Bool == true })
        #expect(!Self.names(resumed).contains("Certificate"))
        #expect(resumed["handshake_round_trips"] as? Int == 1)
        Self.checkWire(resumed)
        let model = try #require(doc["timing_model"] as? [String: Any])
        let kinds = (model["kinds"] as? [[String: Any]]) ?? []
        #expect(kinds.count == 3 && kinds.allSatisfy { $0["unavailable"] == nil })
    }

    @Test("text and Mermaid output of a qssl serve trace")
    func textAndMermaid() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let base = ["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost"]
        let text = try dir.tool(base + ["--rtt", "20", "--rtt", "100"]).stdout
        #expect(text.contains("the client sees reads, not segments"))
        #expect(text.contains("Client ◀── Server  Certificate"))
        #expect(text.contains("key exchange SecP384r1MLKEM1024"))
        #expect(text.contains("@   20 ms") && text.contains("@  100 ms"))
        #expect(text.contains("~93 ms") && text.contains("~70 ms") && text.contains("~15 ms"))
        #expect(text.contains("seed budgets ~50 ms"))
        let mermaid = try dir.tool(base + ["--format", "mermaid", "--tls-versions", "1.3"]).stdout
        #expect(mermaid.hasPrefix("sequenceDiagram\n    autonumber\n    participant C as Client\n    participant S as Server"))
        #expect(mermaid.contains("S->>C: ServerHello ("))
        #expect(mermaid.contains("S->>C: #123;Certificate#125; ("), "braces as entity codes")
        #expect(mermaid.contains("C->>C: key exchange SecP384r1MLKEM1024"))
        #expect(mermaid.contains("rect rgb(230, 240, 255)"))
        // No ';' but the ones closing entity codes (#lt; #123; …).
        #expect(!mermaid.replacingOccurrences(of: "#[a-z0-9]+;", with: "", options: .regularExpression).contains(";"))
    }

    @Test("HelloRetryRequest, and a TLS 1.2 qssl serve")
    func helloRetryAndTLS12() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let (hrr, _) = try Self.traceJSON(
            dir, port: server.port, ca: Self.composite.ca,
            ["--tls-versions", "1.3", "--groups", "SecP384r1MLKEM1024,x25519", "--key-shares", "x25519", "--no-compare"])
        let trace = try #require(hrr["trace"] as? [String: Any])
        #expect(Self.names(trace, "S->C").first == "HelloRetryRequest")
        #expect(Self.names(trace, "C->S").filter { $0 == "ClientHello" }.count == 2)
        #expect(trace["hello_retry_request"] as? Bool == true)
        #expect(trace["handshake_round_trips"] as? Int == 2)
        Self.checkWire(trace)

        let (t12, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca, ["--tls-versions", "1.2", "--no-compare"])
        let trace12 = try #require(t12["trace"] as? [String: Any])
        #expect(
            Self.names(trace12, "S->C") == [
                "ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone", "NewSessionTicket", "ChangeCipherSpec", "Finished"
            ])
        #expect(Self.names(trace12, "C->S") == ["ClientHello", "ClientKeyExchange", "ChangeCipherSpec", "Finished"])
        Self.checkWire(trace12)
    }

    @Test("client certificates: qssl serve --client-auth required, traced with --cert/--key")
    func clientCertificate() throws {
        let dir = try ToolDirectory()
        let mtls = MTLSInteropPKI.shared
        let server = try Self.compositeServer(dir, ["--client-auth", "required", "--client-ca", mtls.path("composite-client-ca.pem")])
        defer { server.stop() }
        for version in ["1.3", "1.2"] {
            let (doc, _) = try Self.traceJSON(
                dir, port: server.port, ca: Self.composite.ca,
                ["--tls-versions", version, "--cert", mtls.path("composite-client.pem"), "--key", mtls.path("composite-client.key"), "--no-compare"])
            let trace = try #require(doc["trace"] as? [String: Any])
            #expect(Self.names(trace, "S->C").contains("CertificateRequest"))
            #expect(Self.names(trace, "C->S").contains("Certificate") && Self.names(trace, "C->S").contains("CertificateVerify"))
            #expect(trace["client_certificate_sent"] as? Bool == true)
            Self.checkWire(trace)
        }
    }

    // MARK: - OpenSSL 3.0

    @Test("OpenSSL 3.0 s_server, TLS 1.3 and TLS 1.2", arguments: ["-tls1_3", "-tls1_2"])
    func openSSL(flag: String) throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir.cert, "-key", dir.key, "-www", flag
            ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let (doc, _) = try Self.traceJSON(dir, port: port, ca: dir.ca, ["--no-compare"])
        let trace = try #require(doc["trace"] as? [String: Any])
        if flag == "-tls1_3" {
            #expect(trace["version"] as? String == "TLSv1.3")
            #expect(
                Self.names(trace, "S->C").starts(with: [
                    "ServerHello", "ChangeCipherSpec", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"
                ]))
            #expect(trace["handshake_round_trips"] as? Int == 1)
        } else {
            #expect(trace["version"] as? String == "TLSv1.2")
            #expect(Self.names(trace, "S->C").starts(with: ["ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone"]))
            #expect(Self.names(trace, "S->C").suffix(2) == ["ChangeCipherSpec", "Finished"])
            #expect(trace["handshake_round_trips"] as? Int == 2)
        }
        Self.checkWire(trace)
    }

    // MARK: - The HTML report in a browser

    @Test("the HTML report is self-contained and renders in headless Chromium")
    func htmlInChromium() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let html = dir.path("trace.html")
        try dir.tool(["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--format", "html", "--out", html])
        let text = try String(contentsOfFile: html, encoding: .utf8)
        #expect(text.contains("<svg"))
        #expect(text.contains("initial window"))
        #expect(!text.contains("<script") && !text.contains("http://") && !text.contains("https://") && !text.contains("@import") && !text.contains("url(http"))
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: FileManager.default.isExecutableFile)
        else {
            Issue.record("chromium is not installed")
            return
        }
        let png = dir.path("trace.png")
        let browser = try PeerProcess(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--screenshot=\(png)",
                "--window-size=1200,2000", "file://\(html)"
            ])
        defer { browser.terminate() }
        let deadline = Date().addingTimeInterval(60)
        func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: png))?[.size] as? Int) ?? 0 }
        while Date() < deadline && size() == 0 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        browser.finish(timeout: 10)
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        #expect(data.count > 10_000, "a screenshot of the report, not an empty page")
        #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }
}
