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
        let process = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", composite.cert, "--key", composite.key] + flags)
        try process.waitFor("listening on")
        try Peers.waitForListener(port: port)
        return TracedServer(port: port, process: process)
    }

    /// `qssl trace … --format json`: the document.
    static func traceJSON(_ dir: ToolDirectory, port: Int, ca: String, _ extra: [String], expectSuccess: Bool = true) throws -> (doc: [String: Any], run: ToolRun) {
        let run = try dir.tool(["trace", "127.0.0.1:\(port)", "--ca", ca, "--server-name", "localhost", "--format", "json"] + extra, expectSuccess: expectSuccess)
        let doc = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        return (try #require(doc, "qssl trace printed \(run.stdout)\n\(run.stderr)"), run)
    }

    static func names(_ trace: [String: Any], _ direction: String? = nil) -> [String] {
        ((trace["messages"] as? [[String: Any]]) ?? []).filter { direction == nil || $0["direction"] as? String == direction }.compactMap { $0["name"] as? String }
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
        #expect(records.filter { $0["direction"] as? String == "S->C" }.map { 5 + ($0["payload_length"] as? Int ?? 0) }.reduce(0, +) == acc["total_read"],
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
            let flight = m["flight"] as? Int ?? 0, direction = m["direction"] as? String
            let indices = Set(messages.filter { $0["flight"] as? Int == flight }.flatMap { ($0["records"] as? [Int]) ?? [] })
            let flightStart = records.filter { $0["direction"] as? String == direction && indices.contains($0["index"] as? Int ?? -1) }
                .compactMap { $0["wire_offset"] as? Int }.min() ?? 0
            let start = (m["wire_start"] as? Int ?? 0) - flightStart, end = (m["wire_end"] as? Int ?? 0) - flightStart
            #expect(m["first_segment"] as? Int == start / mss + 1, "\(m)", sourceLocation: sourceLocation)
            #expect(m["last_segment"] as? Int == max(start, end - 1) / mss + 1, "\(m)", sourceLocation: sourceLocation)
            let f = ((trace["flights"] as? [[String: Any]]) ?? []).first { $0["index"] as? Int == flight }
            #expect((m["last_segment"] as? Int ?? 0) <= (f?["segments"] as? Int ?? 0), "\(m)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - qssl serve

    @Test("qssl serve, composite certificate, TLS 1.3: the message sequence, sizes matching the wire, segments, the client's work; companions for 1.2 and resumption")
    func qsslServe13() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let (doc, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca, ["--tls-versions", "1.3"])
        let trace = try #require(doc["trace"] as? [String: Any])
        #expect(Self.names(trace) == ["ClientHello", "ServerHello", "ChangeCipherSpec", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished",
                                      "ChangeCipherSpec", "Finished", "NewSessionTicket", "NewSessionTicket"])
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
        let (hrr, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca,
                                          ["--tls-versions", "1.3", "--groups", "SecP384r1MLKEM1024,x25519", "--key-shares", "x25519", "--no-compare"])
        let trace = try #require(hrr["trace"] as? [String: Any])
        #expect(Self.names(trace, "S->C").first == "HelloRetryRequest")
        #expect(Self.names(trace, "C->S").filter { $0 == "ClientHello" }.count == 2)
        #expect(trace["hello_retry_request"] as? Bool == true)
        #expect(trace["handshake_round_trips"] as? Int == 2)
        Self.checkWire(trace)

        let (t12, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca, ["--tls-versions", "1.2", "--no-compare"])
        let trace12 = try #require(t12["trace"] as? [String: Any])
        #expect(Self.names(trace12, "S->C") == ["ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone", "NewSessionTicket", "ChangeCipherSpec", "Finished"])
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
            let (doc, _) = try Self.traceJSON(dir, port: server.port, ca: Self.composite.ca,
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
        let server = try PeerProcess(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir.cert, "-key", dir.key, "-www", flag,
        ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let (doc, _) = try Self.traceJSON(dir, port: port, ca: dir.ca, ["--no-compare"])
        let trace = try #require(doc["trace"] as? [String: Any])
        if flag == "-tls1_3" {
            #expect(trace["version"] as? String == "TLSv1.3")
            #expect(Self.names(trace, "S->C").starts(with: ["ServerHello", "ChangeCipherSpec", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished"]))
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
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: FileManager.default.isExecutableFile) else {
            Issue.record("chromium is not installed")
            return
        }
        let png = dir.path("trace.png")
        let browser = try PeerProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--screenshot=\(png)",
                                                 "--window-size=1200,2000", "file://\(html)"])
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

    // MARK: - Review fixes

    @Test("--out: a symbolic link, a FIFO and a directory are refused and left alone; a new file is 0644; an existing file is replaced")
    func outPaths() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let base = ["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--no-compare", "--format", "json"]
        let target = dir.path("target.txt")
        try "keep me".write(toFile: target, atomically: true, encoding: .utf8)
        let link = dir.path("link.json")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let directory = dir.path("adir")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (path, reason) in [(link, "symbolic link"), (fifo, "not a regular file"), (directory, "directory")] {
            let run = try dir.tool(base + ["--out", path], expectSuccess: false)
            #expect(run.status == 1, "\(path): \(run.stderr)")
            #expect(run.stderr.contains("cannot write \(path)") && run.stderr.contains(reason), "\(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me")
        var st = stat()
        #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
        #expect(lstat(fifo, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO, "the FIFO is still a FIFO")
        #expect(lstat(directory, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        // New: created 0644.
        let fresh = dir.path("fresh.json")
        try dir.tool(base + ["--out", fresh])
        #expect(lstat(fresh, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_mode & 0o777 == 0o644)
        #expect(try String(contentsOfFile: fresh, encoding: .utf8).contains("\"trace\""))
        // Existing regular file: replaced (through a temporary file; none is left behind).
        try dir.tool(base + ["--out", target])
        #expect(try String(contentsOfFile: target, encoding: .utf8).contains("\"trace\""))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.root).allSatisfy { !$0.contains(".qssl-trace.") })
        // "-": standard output.
        #expect(try dir.tool(base + ["--out", "-"]).stdout.contains("\"trace\""))
    }

    /// A Python relay on loopback (the reviewer's relay.py and split.py): `forward N` passes the
    /// ClientHello and the first N bytes of the server's answer (N = 0: its whole first flight,
    /// up to 0.5 s of silence), then closes the client side without reading; `split` passes everything, the server's first handshake record cut in two.
    static func pythonRelay(_ dir: ToolDirectory, mode: String, upstream: Int, bytes: Int = 0) throws -> (port: Int, process: PeerProcess) {
        let script = dir.path("relay-\(mode).py")
        try """
            import socket, sys, threading, struct
            mode, port, up, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', port)); s.listen(8)
            def pump(c, u):
                try:
                    while True:
                        d = c.recv(65536)
                        if not d: break
                        u.sendall(d)
                except Exception: pass
                try: u.shutdown(socket.SHUT_WR)
                except Exception: pass
            def forward(c):
                u = socket.create_connection(('127.0.0.1', up))
                u.sendall(c.recv(65536))
                got = b''
                while nbytes == 0 or len(got) < nbytes:
                    try: d = u.recv(65536)
                    except socket.timeout: break
                    if not d: break
                    got += d
                    u.settimeout(0.5)   # nbytes 0: the flight is what arrives before 0.5 s of silence
                c.sendall(got[:nbytes] if nbytes else got); c.close(); u.close()
            def split(c):
                u = socket.create_connection(('127.0.0.1', up))
                threading.Thread(target=pump, args=(c, u), daemon=True).start()
                buf = b''; first = True
                try:
                    while True:
                        d = u.recv(65536)
                        if not d: break
                        buf += d; out = b''
                        while len(buf) >= 5:
                            n = struct.unpack('>H', buf[3:5])[0]
                            if len(buf) < 5 + n: break
                            r, buf = buf[:5+n], buf[5+n:]
                            if first and r[0] == 22:
                                first = False; body = r[5:]
                                out += r[:3] + struct.pack('>H', 10) + body[:10] + r[:3] + struct.pack('>H', len(body)-10) + body[10:]
                            else:
                                out += r
                        c.sendall(out)
                except Exception: pass
                c.close()
            print('relay ready', flush=True)
            while True:
                c, _ = s.accept(); threading.Thread(target=forward if mode == 'forward' else split, args=(c,), daemon=True).start()
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let port = try Peers.freePort()
        let process = try PeerProcess("/usr/bin/python3", [script, mode, "\(port)", "\(upstream)", "\(bytes)"])
        try process.waitFor("relay ready")
        try Peers.waitForListener(port: port)
        return (port, process)
    }

    @Test("a server that closes right after its first flight: no SIGPIPE, the trace is written, a failed write is the failure")
    func serverClosesEarly() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let relay = try Self.pythonRelay(dir, mode: "forward", upstream: server.port, bytes: 0)
        defer { relay.process.terminate() }
        for _ in 0..<3 {
            let run = try dir.tool(["trace", "127.0.0.1:\(relay.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3", "--no-compare"],
                                   expectSuccess: false)
            #expect(run.status == 0 || run.status == 1, "not killed by a signal: status \(run.status)\n\(run.stderr)")
            #expect(run.stdout.contains("CertificateVerify"), "the trace is written: \(run.stdout)")
            if run.status == 1 {
                #expect(run.stderr.contains("writing the client's flight") || run.stderr.contains("reading the server's flight"), "\(run.stderr)")
            }
        }
    }

    @Test("a ServerHello split across two records: version, suite and the byte accounting still hold")
    func splitServerHello() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let relay = try Self.pythonRelay(dir, mode: "split", upstream: server.port)
        defer { relay.process.terminate() }
        for version in ["1.3", "1.2"] {
            let (doc, _) = try Self.traceJSON(dir, port: relay.port, ca: Self.composite.ca, ["--tls-versions", version, "--no-compare"])
            let trace = try #require(doc["trace"] as? [String: Any])
            #expect(trace["version"] as? String == "TLSv\(version)")
            #expect(Self.names(trace, "S->C").first == "ServerHello")
            let records = ((trace["records"] as? [[String: Any]]) ?? []).filter { $0["direction"] as? String == "S->C" }
            #expect(records.first?["payload_length"] as? Int == 10, "the relay split the first record")
            Self.checkWire(trace)
            let acc = (trace["wire_accounting"] as? [String: Int]) ?? [:]
            #expect(acc["record_padding"] == 0 && acc["unattributed"] == 0, "\(acc)")
        }
    }

    @Test("OpenSSL s_server -record_padding 512: padding and application data are accounted for exactly")
    func recordPadding() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let server = try PeerProcess(try Peers.executable("openssl"), [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir.cert, "-key", dir.key, "-www", "-tls1_3", "-record_padding", "512",
        ])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let (doc, _) = try Self.traceJSON(dir, port: port, ca: dir.ca, ["--no-compare"])
        let trace = try #require(doc["trace"] as? [String: Any])
        let acc = (trace["wire_accounting"] as? [String: Int]) ?? [:]
        #expect((acc["record_padding"] ?? 0) > 0, "\(acc)")
        #expect(acc["unattributed"] == 0, "\(acc)")
        let sum = ["handshake_messages", "record_headers", "aead_overhead", "record_padding", "change_cipher_spec", "alerts", "application_data"]
            .map { acc[$0] ?? 0 }.reduce(0, +)
        #expect(sum == acc["total_read"], "\(acc)")
        let records = ((trace["records"] as? [[String: Any]]) ?? []).filter { $0["direction"] as? String == "S->C" }
        // Every encrypted record: a multiple of 512 of plaintext, the inner type and the tag.
        for r in records where r["is_protected"] as? Bool == true {
            #expect(((r["payload_length"] as? Int ?? 0) - 16) % 512 == 0, "\(r)")
            #expect(r["inner_content_type"] as? Int != nil)
        }
        #expect(trace["records_estimated"] as? Int == 0)
        // The messages' sizes are the core's, not the padded records'.
        let certificate = try #require(((trace["messages"] as? [[String: Any]]) ?? []).first { $0["name"] as? String == "Certificate" })
        #expect((certificate["size"] as? Int ?? 0) % 512 != 0 || (certificate["size"] as? Int ?? 0) < 2000)
    }

    @Test("server-controlled names (a certificate subject with HTML, a Mermaid directive, an ESC sequence and a bidi override) are sanitised everywhere")
    func hostileCertificateName() throws {
        let dir = try ToolDirectory()
        // Spread over three attributes: a CN holds at most 64 characters.
        let evil = "/CN=Evil <img src=x onerror=alert(1)>/O=%%{init: {\"theme\":\"dark\"}}%%/OU=\u{1B}[31mred\u{1B}[0m \u{202E}gpj.exe"
        let key = dir.path("evil.key"), cert = dir.path("evil.pem")
        let openssl = try Peers.executable("openssl")
        let gen = try PeerProcess(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                                            "-days", "2", "-utf8", "-subj", evil, "-addext", "subjectAltName=DNS:localhost"])
        _ = gen.finish(timeout: 30)
        #expect(FileManager.default.fileExists(atPath: cert))
        let port = try Peers.freePort()
        let server = try PeerProcess(openssl, ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key, "-www", "-tls1_3"])
        defer { server.terminate() }
        try server.waitFor("ACCEPT")
        let base = ["trace", "127.0.0.1:\(port)", "--ca", dir.ca, "--server-name", "localhost", "--no-compare"]
        var outputs: [String: ToolRun] = [:]
        for format in ["text", "mermaid", "html", "json"] {
            let run = try dir.tool(base + ["--format", format], expectSuccess: false)
            #expect(run.status == 2, "certificate rejected: \(run.stderr)")
            outputs[format] = run
            for text in [run.stdout, run.stderr] {
                #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E }, "\(format): no ESC, no bidi override")
            }
        }
        let text = try #require(outputs["text"])
        #expect(text.stdout.contains("onerror"), "the name is still shown: \(text.stdout)")
        let mermaid = try #require(outputs["mermaid"]).stdout
        #expect(!mermaid.contains("<img") && !mermaid.contains("%%{") && !mermaid.contains("}%%"), "\(mermaid)")
        #expect(mermaid.contains("#lt;img src=x onerror=alert(1)") && mermaid.contains("#37;#37;#123;init"), "\(mermaid)")
        let html = try #require(outputs["html"]).stdout
        #expect(!html.contains("<img") && html.contains("&lt;img"))
    }

    @Test("timing model: a HelloRetryRequest handshake is labelled as such; no ML-KEM claimed for a classical handshake")
    func timingModelLabels() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        let hrr = try dir.tool(["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3",
                                "--groups", "SecP384r1MLKEM1024,x25519", "--key-shares", "x25519"]).stdout
        #expect(hrr.contains("TLS 1.3 full +HRR") && hrr.contains("took 2 round trips (HelloRetryRequest)"), "\(hrr)")
        let classical = try dir.tool(["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--groups", "x25519"]).stdout
        #expect(!classical.contains("ML-KEM and ECDH"), "\(classical)")
        #expect(classical.contains("no ML-KEM in this handshake"), "\(classical)")
        let pq = try dir.tool(["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--no-compare"]).stdout
        #expect(pq.contains("ML-KEM and ECDH"), "\(pq)")
    }

    // MARK: - Failures

    @Test("a server flight cut off mid-record: the trace shows the messages up to the cut and exits 1")
    func truncatedFlight() throws {
        let dir = try ToolDirectory()
        let server = try Self.compositeServer(dir)
        defer { server.stop() }
        // A relay that passes the client's bytes on and only the first 3,000 of the server's.
        let relay = try CuttingRelay(upstreamPort: server.port, passServerBytes: 3000)
        defer { relay.stop() }
        let run = try dir.tool(["trace", "127.0.0.1:\(relay.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3"],
                               expectSuccess: false)
        #expect(run.status == 1)
        #expect(run.stdout.contains("ServerHello"), "\(run.stdout)")
        #expect(!run.stdout.contains("CertificateVerify"))
        #expect(run.stdout.contains("was cut off"), "\(run.stdout)")
        #expect(run.stderr.contains("closed the connection"), "\(run.stderr)")
        let json = try Self.traceJSON(dir, port: relay.port, ca: Self.composite.ca, ["--tls-versions", "1.3"], expectSuccess: false)
        #expect(json.run.status == 1)
        let trace = try #require(json.doc["trace"] as? [String: Any])
        #expect((trace["failure"] as? [String: Any])?["stage"] as? String == "reading the server's flight")
        #expect(trace["bytes_read"] as? Int == 3000)
    }

    @Test("garbage from the server: the alert the client sent is shown and it exits 1")
    func garbage() throws {
        let dir = try ToolDirectory()
        let relay = try CuttingRelay(upstreamPort: nil, passServerBytes: 0, reply: Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8))
        defer { relay.stop() }
        let run = try dir.tool(["trace", "127.0.0.1:\(relay.port)", "--ca", dir.ca, "--server-name", "localhost"], expectSuccess: false)
        #expect(run.status == 1)
        #expect(run.stdout.contains("Client ──▶ Server  ClientHello"))
        #expect(run.stdout.contains("alert") && run.stderr.contains("alert"), "\(run.stdout)\n\(run.stderr)")
    }

    @Test("an unreachable port: exits 1 with the reason")
    func unreachable() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let run = try dir.tool(["trace", "127.0.0.1:\(port)", "--ca", dir.ca], expectSuccess: false)
        #expect(run.status == 1)
        #expect(run.stderr.contains("cannot connect to 127.0.0.1:\(port)"), "\(run.stderr)")
        #expect(run.stdout.contains("TCP connect"))
    }
}

/// A `qssl serve` process with the composite certificate.
struct TracedServer {
    let port: Int
    let process: PeerProcess
    func stop() { process.terminate() }
}

/// One-connection TCP relay on loopback: the client's bytes go upstream; of the upstream's
/// answer only the first `passServerBytes` come back, then both sides are closed. Without an
/// upstream it answers `reply` to whatever arrives and closes.
final class CuttingRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private var stopped = false
    private let lock = NSLock()
    private var open: [Int32] = []

    init(upstreamPort: Int?, passServerBytes: Int, reply: [UInt8] = []) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok, listen(fd, 8) == 0 else { throw PeerError("relay: cannot listen") }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listening = self.listener
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                track(client)
                Thread.detachNewThread { [self] in serve(client, upstreamPort: upstreamPort, pass: passServerBytes, reply: reply) }
            }
        }
    }

    private func track(_ fd: Int32) { lock.lock(); open.append(fd); lock.unlock() }

    private func serve(_ client: Int32, upstreamPort: Int?, pass: Int, reply: [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        guard let upstreamPort else {
            _ = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            _ = reply.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            shutdown(client, Int32(SHUT_RDWR))
            return
        }
        let up = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        track(up)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(upstreamPort).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(up, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { shutdown(client, Int32(SHUT_RDWR)); return }
        Thread.detachNewThread {
            var b = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = b.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                if n <= 0 { shutdown(up, Int32(SHUT_RDWR)); return }
                _ = b.withUnsafeBytes { write(up, $0.baseAddress, n) }
            }
        }
        var passed = 0
        while passed < pass {
            let n = buffer.withUnsafeMutableBytes { read(up, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            let k = min(n, pass - passed)
            _ = buffer.withUnsafeBytes { write(client, $0.baseAddress, k) }
            passed += k
        }
        shutdown(client, Int32(SHUT_RDWR))
        shutdown(up, Int32(SHUT_RDWR))
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
        open = []
    }
}
