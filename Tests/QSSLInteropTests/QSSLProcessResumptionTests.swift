import Foundation
import QSSL
import QSSLX509
import Testing

/// Resumption through the `qssl` tool itself, process against process: `qssl serve` with a shared
/// ticket-key file (PROTOCOL.md §4), `qssl ticket-keys rotate`, and `qssl connect` with
/// `--session-out`, `--session-in` and `--reconnect`.
///
/// Uses the `qssl` binary built next to the tests (`swift build --build-tests` builds it), or
/// the one `QSSL_BINARY` names.
@Suite("Process: qssl serve / qssl connect resumption, shared ticket keys", .serialized)
struct QSSLProcessResumptionTests {
    // MARK: - A ticket issued by one server resumes on another

    @Test(
        "two qssl serve processes sharing one ticket-key file: a ticket from one resumes on the other; a server with other keys does not resume it",
        arguments: ["1.3", "1.2"])
    func sharedTicketKeys(version: String) throws {
        let dir = try ToolDirectory()
        try dir.generateKeys()
        let a = try ToolServer(dir, ["--ticket-keys", dir.keys])
        let b = try ToolServer(dir, ["--ticket-keys", dir.keys])
        let other = try ToolServer(dir, [])  // its own keys, in memory
        defer { [a, b, other].forEach { $0.stop() } }

        let first = try dir.connect(a, version, ["--session-out", dir.path("s1")])
        #expect(first["resumed"] as? Bool == false)
        #expect(try dir.mode(of: "s1") == 0o600)

        let onB = try dir.connect(b, version, ["--session-in", dir.path("s1")])
        #expect(onB["resumed"] as? Bool == true, "a ticket sealed by server A opens on server B")
        try b.process.waitFor(" resumed")

        let onOther = try dir.connect(other, version, ["--session-in", dir.path("s1")])
        #expect(onOther["resumed"] as? Bool == false, "a server with other keys falls back to a full handshake")
    }

    // MARK: - Rotation

    @Test(
        "after qssl ticket-keys rotate (both servers reload), an old ticket still resumes and is replaced by one under the new key; once its key is dropped it no longer resumes",
        arguments: ["1.3", "1.2"])
    func rotation(version: String) throws {
        let dir = try ToolDirectory()
        try dir.generateKeys()
        // No session-ID caches: a TLS 1.2 ticket that fails to open must not be rescued by the
        // session ID that comes with it, so that only the keys decide.
        let a = try ToolServer(dir, ["--ticket-keys", dir.keys, "--no-session-cache"])
        let b = try ToolServer(dir, ["--ticket-keys", dir.keys, "--no-session-cache"])
        defer { [a, b].forEach { $0.stop() } }

        _ = try dir.connect(a, version, ["--session-out", dir.path("old")])
        let oldKey = try dir.currentKeyName()
        #expect(try dir.ticket(in: "old").prefix(16) == oldKey[...])

        try dir.tool(["ticket-keys", "rotate", dir.keys])
        let newKey = try dir.currentKeyName()
        #expect(newKey != oldKey)
        try a.process.waitFor("ticket keys reloaded")
        try b.process.waitFor("ticket keys reloaded")

        let resumed = try dir.connect(b, version, ["--session-in", dir.path("old"), "--session-out", dir.path("new")])
        #expect(resumed["resumed"] as? Bool == true, "a ticket of the previous key still opens")
        #expect(try dir.ticket(in: "new").prefix(16) == newKey[...], "and the client got a ticket under the new key")
        let again = try dir.connect(a, version, ["--session-in", dir.path("new")])
        #expect(again["resumed"] as? Bool == true)

        // A rotation that keeps no older key retires the old one: its tickets fall back to a full handshake.
        try dir.tool(["ticket-keys", "rotate", dir.keys, "--keep-hours", "0"])
        try a.process.waitFor("ticket keys reloaded from \(dir.keys): 1 key")
        let retired = try dir.connect(a, version, ["--session-in", dir.path("old")])
        #expect(retired["resumed"] as? Bool == false)
    }

    // MARK: - Expiry

    @Test(
        "with --session-timeout 1, a session offered after it expired does not resume (full handshake, no error); qssl connect refuses an expired session file",
        arguments: ["1.3", "1.2 ticket", "1.2 session ID"])
    func expiry(kind: String) throws {
        let dir = try ToolDirectory()
        let version = kind.hasPrefix("1.3") ? "1.3" : "1.2"
        let server = try ToolServer(dir, ["--session-timeout", "1"] + (kind == "1.2 session ID" ? ["--no-tickets"] : []))
        defer { server.stop() }
        _ = try dir.connect(server, version, ["--session-out", dir.path("s")])
        let saved = try TLSSession(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir.path("s")))))
        #expect((saved.ticket ?? []).isEmpty == (kind == "1.2 session ID"))
        // Still fresh: it resumes.
        #expect(try dir.connect(server, version, ["--session-in", dir.path("s")])["resumed"] as? Bool == true)

        guard kind != "1.2 session ID" else {
            // A session ID carries no lifetime (only tickets have a hint): the client keeps it
            // for its own default, and only the server's cache timeout ends it.
            #expect(saved.state.lifetimeSeconds > 1)
            Thread.sleep(forTimeInterval: 1.6)
            let late = try dir.connect(server, version, ["--session-in", dir.path("s")])
            #expect(late["resumed"] as? Bool == false)
            #expect(late["peer_certificates"] as? [String] == ["CN=localhost"], "a full handshake, with the server's certificate")
            return
        }
        #expect(saved.state.lifetimeSeconds == 1, "the ticket's lifetime hint")
        Thread.sleep(forTimeInterval: 1.6)
        // The client sees the expiry itself and says so.
        let refused = try dir.tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
                "--tls-versions", version, "--session-in", dir.path("s")
            ], expectSuccess: false)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("has expired"))

        // A client that believes the session is still valid (its lifetime rewritten) offers it;
        // the server, whose own lifetime has passed, runs a full handshake instead.
        var faked = saved
        faked.state.lifetimeSeconds = 3600
        try CertificateFiles.writeSecretFile(try faked.encoded(), toPath: dir.path("faked"))
        let late = try dir.connect(server, version, ["--session-in", dir.path("faked")])
        #expect(late["resumed"] as? Bool == false)
        #expect(late["peer_certificates"] as? [String] == ["CN=localhost"], "a full handshake, with the server's certificate")
    }

    // MARK: - The trust policy in force (second review)

    @Test(
        "two servers sharing ticket keys but trusting different client CAs: a session from one is not resumed at the other",
        arguments: ["1.3", "1.2"])
    func clientCAAcrossServers(version: String) throws {
        let dir = try ToolDirectory()
        try dir.generateKeys()
        for ca in ["ca-a", "ca-b"] {
            try dir.tool(["cert", "ca", "--out", dir.path(ca), "--alg", "ecdsa-p384", "--subject", "CN=Client CA \(ca)"])
        }
        try dir.tool([
            "cert", "issue", "--ca", dir.path("ca-a"), "--alg", "ecdsa-p384", "--subject", "CN=alice", "--client",
            "--out", dir.path("alice")
        ])
        let a = try ToolServer(dir, ["--ticket-keys", dir.keys, "--client-auth", "required", "--client-ca", dir.path("ca-a") + "/ca.pem"])
        defer { a.stop() }
        let b = try ToolServer(dir, ["--ticket-keys", dir.keys, "--client-auth", "required", "--client-ca", dir.path("ca-b") + "/ca.pem"])
        defer { b.stop() }
        let mtls = ["--cert", dir.path("alice") + ".pem", "--key", dir.path("alice") + ".key"]
        #expect(try dir.connect(a, version, mtls + ["--session-out", dir.path("s")])["resumed"] as? Bool == false)
        // The same server resumes it (the policy did not change) …
        #expect(try dir.connect(a, version, mtls + ["--session-in", dir.path("s")])["resumed"] as? Bool == true)
        // … the other does not: a full handshake, which refuses alice (her CA is not trusted there).
        // In TLS 1.3 the server's refusal follows the client's Finished, so the client sends a
        // request and reads the alert.
        let atB = try dir.tool(
            [
                "connect", "127.0.0.1:\(b.port)", "--ca", dir.ca, "--server-name", "localhost", "--tls-versions", version,
                "--json", "--send", "ping", "--session-in", dir.path("s")
            ] + mtls, expectSuccess: false)
        #expect(atB.status != 0, "\(atB.stdout)")
        #expect(!atB.stdout.contains("\"resumed\" : true") && !atB.stdout.contains("\"resumed\":true"))
        // In TLS 1.2 the refusal is in the handshake. In TLS 1.3 it follows the client's Finished:
        // the alert is read, unless the server's close resets the connection first (a race of
        // the transport), which still ends the connection refused.
        let output = atB.stdout + atB.stderr
        if version == "1.2" {
            #expect(output.contains("handshake_failure"), "\(output)")
        } else {
            #expect(
                output.contains("certificate_required") || output.contains("reset") || output.contains("broken pipe")
                    || output.contains("closed"), "\(output)")
        }
    }

    @Test(
        "a client with a stricter verifier does not resume a session it would not accept now: --ca other roots, --pq-certificates",
        arguments: ["1.3", "1.2"])
    func stricterClient(version: String) throws {
        let dir = try ToolDirectory()
        let server = try ToolServer(dir, [])
        defer { server.stop() }
        #expect(try dir.connect(server, version, ["--session-out", dir.path("s")])["resumed"] as? Bool == false)
        try dir.tool(["cert", "ca", "--out", dir.path("other"), "--alg", "ecdsa-p384", "--subject", "CN=Other roots"])
        for (flags, name) in [(["--ca", dir.path("other") + "/ca.pem"], "other roots"), (["--ca", dir.ca, "--pq-certificates"], "PQ certificates")] {
            let run = try dir.tool(
                [
                    "connect", "127.0.0.1:\(server.port)", "--server-name", "localhost", "--tls-versions", version,
                    "--session-in", dir.path("s")
                ] + flags, expectSuccess: false)
            #expect(run.status == 2, "\(name): a full handshake, whose verification fails: \(run.stdout)\(run.stderr)")
        }
        #expect(try dir.connect(server, version, ["--session-in", dir.path("s")])["resumed"] as? Bool == true, "the same policy still resumes")
    }

    @Test("a --session-in file that group or others may access, or that is not a regular file, is refused: it is a bearer credential")
    func sessionFilePermissions() throws {
        let dir = try ToolDirectory()
        let server = try ToolServer(dir, [])
        defer { server.stop() }
        _ = try dir.connect(server, "1.3", ["--session-out", dir.path("s")])
        #expect(chmod(dir.path("s"), 0o644) == 0)
        let open = try dir.tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
                "--session-in", dir.path("s")
            ], expectSuccess: false)
        #expect(open.status == 1 && open.stderr.contains("chmod 600"), "\(open.stderr)")
        #expect(mkfifo(dir.path("fifo"), 0o600) == 0)
        let fifo = try dir.tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
                "--session-in", dir.path("fifo")
            ], expectSuccess: false, timeout: 20)
        #expect(fifo.status == 1 && fifo.stderr.contains("not a regular file"), "a FIFO is refused without blocking: \(fifo.stderr)")
    }

    // MARK: - --reconnect and session files

    @Test(
        "qssl connect --reconnect 2 --json: one JSON line per connection, the later ones resumed",
        arguments: [("1.3", [String]()), ("1.2", []), ("1.2", ["--no-tickets"])])
    func reconnect(version: String, serverFlags: [String]) throws {
        let dir = try ToolDirectory()
        let server = try ToolServer(dir, serverFlags)
        defer { server.stop() }
        let run = try dir.tool([
            "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
            "--tls-versions", version, "--reconnect", "2", "--json", "--send", "hi", "--wait", "0.2"
        ])
        let objects = try run.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(objects.count == 3)
        #expect(objects.map { $0["connection"] as? Int } == [1, 2, 3])
        #expect(objects.map { $0["resumed"] as? Bool } == [false, true, true])
        #expect(objects.allSatisfy { ($0["handshake_ms"] as? Double ?? 0) > 0 && $0["received"] as? String == "hi" })
        #expect(objects.allSatisfy { $0["version"] as? String == "TLSv\(version)" })
        try server.process.waitFor(" resumed")
    }

    @Test("qssl connect --session-in refuses a file that is not a session, and --session-out refuses to write through a symbolic link")
    func badSessionFiles() throws {
        let dir = try ToolDirectory()
        let server = try ToolServer(dir, [])
        defer { server.stop() }
        try "not a session".write(toFile: dir.path("junk"), atomically: true, encoding: .utf8)
        #expect(chmod(dir.path("junk"), 0o600) == 0)
        let junk = try dir.tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
                "--session-in", dir.path("junk")
            ], expectSuccess: false)
        #expect(junk.status != 0)
        #expect(junk.stderr.contains("not a Q-SSL session file"))

        try FileManager.default.createSymbolicLink(atPath: dir.path("link"), withDestinationPath: dir.path("target"))
        let linked = try dir.tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", dir.ca, "--server-name", "localhost",
                "--session-out", dir.path("link")
            ], expectSuccess: false)
        #expect(linked.status != 0)
        #expect(linked.stderr.contains("symbolic link"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("target")))
    }
}

// MARK: - Running the tool

/// The `qssl` binary: `QSSL_BINARY`, or the one built beside this test bundle.
enum QSSLToolBinary {
    static func path() throws -> String {
        if let given = ProcessInfo.processInfo.environment["QSSL_BINARY"] { return given }
        var candidates: [String] = []
        if let executable = Bundle.main.executablePath {
            // …/.build/<triple>/debug/Q-SSLPackageTests.xctest (Linux) or …/debug/Q-SSLPackageTests.xctest/Contents/MacOS/… (macOS)
            var url = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(url.appendingPathComponent("qssl").path)
                url = url.deletingLastPathComponent()
            }
        }
        candidates.append(Peers.packageRoot + "/.build/debug/qssl")
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        throw PeerError("the qssl binary was not found (looked in \(candidates.joined(separator: ", "))): run `swift build --build-tests` or set QSSL_BINARY")
    }
}

struct ToolRun {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// A directory with a server certificate, its CA and whatever the test writes (keys, sessions).
final class ToolDirectory: @unchecked Sendable {
    let root: String
    var keys: String { path("ticket-keys") }
    var ca: String { InteropPKI.shared.path("ecdsa-ca.pem") }
    var cert: String { InteropPKI.shared.path("ecdsa.pem") }
    var key: String { InteropPKI.shared.path("ecdsa.key") }

    init() throws {
        root = InteropPKI.shared.directory + "/tool-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { root + "/" + name }

    func mode(of name: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path(name))[.posixPermissions] as? Int) ?? -1
    }

    func generateKeys() throws { try tool(["ticket-keys", "generate", "--out", keys]) }

    /// The name of the key that seals now (the newest).
    func currentKeyName() throws -> [UInt8] {
        let loaded = try TicketKeyFile.readKeys(atPath: keys)
        return try #require(loaded.max { $0.createdAt < $1.createdAt }).name
    }

    /// The ticket of a saved session.
    func ticket(in name: String) throws -> [UInt8] {
        let session = try TLSSession(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))))
        return try #require(session.ticket)
    }

    /// `qssl connect` to a server with the test CA: the JSON object it printed.
    func connect(_ server: ToolServer, _ version: String, _ extra: [String]) throws -> [String: Any] {
        let run = try tool(
            [
                "connect", "127.0.0.1:\(server.port)", "--ca", ca, "--server-name", "localhost",
                "--tls-versions", version, "--json"
            ] + extra)
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        return try #require(object, "qssl connect printed \(run.stdout)")
    }

    /// Runs `qssl` to completion (killed after `timeout`).
    @discardableResult
    func tool(_ arguments: [String], expectSuccess: Bool = true, timeout: Double = 60) throws -> ToolRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try QSSLToolBinary.path())
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        // Both pipes drained at once, so that neither fills while the other is read.
        let errData = DataBox()
        let errDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errData.data = err.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errDone.wait()
        watchdog.cancel()
        let run = ToolRun(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.data, as: UTF8.self))
        if expectSuccess && run.status != 0 {
            throw PeerError("qssl \(arguments.joined(separator: " ")) exited with \(run.status):\n\(run.stdout)\n\(run.stderr)")
        }
        return run
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// A `qssl serve` process on a free port, with the test certificate.
final class ToolServer: @unchecked Sendable {
    let port: Int
    let process: PeerProcess

    init(_ dir: ToolDirectory, _ flags: [String]) throws {
        port = try Peers.freePort()
        process = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", dir.cert, "--key", dir.key] + flags)
        try process.waitFor("listening on")
        try Peers.waitForListener(port: port)
    }

    func stop() { process.terminate() }
}
