import Foundation
import QSSL
import QSSLX509
import Testing

// TraceTests: --out paths, odd and hostile servers (early close, split records, padding, hostile names), and failures traced.

extension TraceTests {
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
            let run = try dir.tool(
                ["trace", "127.0.0.1:\(relay.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3", "--no-compare"],
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
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir.cert, "-key", dir.key, "-www", "-tls1_3", "-record_padding", "512"
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
        let key = dir.path("evil.key")
        let cert = dir.path("evil.pem")
        let openssl = try Peers.executable("openssl")
        let gen = try PeerProcess(
            openssl,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-utf8", "-subj", evil, "-addext", "subjectAltName=DNS:localhost"
            ])
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
        // qssl connect too: the rejection's message (which names the issuer) and, with the
        // certificate trusted, the summary's subjects.
        for trust in [dir.ca, cert] {
            let run = try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", trust, "--server-name", "localhost"], expectSuccess: false)
            for text in [run.stdout, run.stderr] {
                #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E }, "connect: no ESC, no bidi override: \(text)")
            }
            #expect((run.stdout + run.stderr).contains("onerror"), "the name is still shown: \(run)")
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
        let hrr = try dir.tool([
            "trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3",
            "--groups", "SecP384r1MLKEM1024,x25519", "--key-shares", "x25519"
        ]).stdout
        #expect(hrr.contains("TLS 1.3 full +HRR") && hrr.contains("took 2 round trips (HelloRetryRequest)"), "\(hrr)")
        let classical = try dir.tool(["trace", "127.0.0.1:\(server.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--groups", "x25519"])
            .stdout
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
        let run = try dir.tool(
            ["trace", "127.0.0.1:\(relay.port)", "--ca", Self.composite.ca, "--server-name", "localhost", "--tls-versions", "1.3"],
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
