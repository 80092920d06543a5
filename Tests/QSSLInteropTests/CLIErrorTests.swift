import Foundation
import Testing

/// `qssl` reports each failure as one line on stderr, `qssl: <what failed, on which file or
/// address, and why>`, with the documented exit code — never Foundation's, NIO's or
/// ArgumentParser's raw error text.
@Suite("qssl: failures are one clear line with the documented exit code", .serialized)
struct CLIErrorTests {
    /// Exactly one stderr line, starting "qssl: ", holding every `expected` fragment and none of
    /// the raw error decorations.
    func expectOneLine(_ run: ToolRun, status: Int32, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = run.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(run.status == status, "exit status; stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(lines.count == 1, "one line on stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("qssl: "), "\(run.stderr)", sourceLocation: sourceLocation)
        for fragment in expected {
            #expect(run.stderr.contains(fragment), "'\(fragment)' in \(run.stderr)", sourceLocation: sourceLocation)
        }
        for raw in [
            "Error Domain", "NSCocoaErrorDomain", "SingleConnectionFailure", "SocketAddressError", "Connection errors", "errno:", "Error: ", "ASN1Error",
            ".swift:"
        ] {
            #expect(!run.stderr.contains(raw), "no '\(raw)' in \(run.stderr)", sourceLocation: sourceLocation)
        }
    }

    func missing(_ dir: ToolDirectory, _ name: String) -> String { dir.path("no-such-\(name)") }

    @Test("a missing file: cannot read <what> <path>: no such file")
    func missingFiles() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let pem = missing(dir, "file.pem")
        expectOneLine(
            try dir.tool(["cert", "show", pem], expectSuccess: false), status: 1,
            ["cannot read PEM file \(pem): no such file"])
        let ca = missing(dir, "ca.pem")
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", ca], expectSuccess: false), status: 1,
            ["cannot read CA file \(ca): no such file"])
        let cert = missing(dir, "chain.pem")
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", cert, "--key", dir.key], expectSuccess: false),
            status: 1, ["cannot read certificate file \(cert): no such file"])
        let key = missing(dir, "client.key")
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", key], expectSuccess: false),
            status: 1, ["cannot read private key \(key): no such file"])
        let crl = missing(dir, "crl.pem")
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--revocation", "crl", "--crl", crl], expectSuccess: false),
            status: 1, ["cannot read CRL file \(crl): no such file"])
        let keys = missing(dir, "ticket-keys")
        expectOneLine(
            try dir.tool(["ticket-keys", "show", keys], expectSuccess: false), status: 1,
            ["cannot read ticket key file \(keys): no such file"])
        expectOneLine(
            try dir.tool(["cert", "issue", "--ca", dir.path("no-such-ca-dir"), "--subject", "CN=x", "--out", dir.path("x")], expectSuccess: false),
            status: 1, ["cannot read CA certificate \(dir.path("no-such-ca-dir"))/ca.pem: no such file"])
    }

    @Test("a file that is not PEM, or holds the wrong thing, says so and names it")
    func notPEM() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let text = dir.path("notes.txt")
        try "hello, this is not a certificate\n".write(toFile: text, atomically: true, encoding: .utf8)
        let empty = dir.path("empty.pem")
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let binary = dir.path("cert.der")
        try Data([0x30, 0x82, 0x01, 0xff, 0xfe, 0x80]).write(to: URL(fileURLWithPath: binary))

        expectOneLine(try dir.tool(["cert", "show", text], expectSuccess: false), status: 1, ["\(text) is not a PEM file: no -----BEGIN line"])
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", text], expectSuccess: false), status: 1,
            ["\(text) is not a PEM CA file"])
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", empty], expectSuccess: false), status: 1,
            ["\(empty) is not a PEM CA file: the file is empty"])
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", binary], expectSuccess: false), status: 1,
            ["\(binary) is not a PEM CA file: it holds binary data"])
        // A key where certificates belong, and a certificate where the key belongs.
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.key], expectSuccess: false), status: 1,
            ["CA file \(dir.key): no certificate in it (it holds only PRIVATE KEY)"])
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", dir.cert], expectSuccess: false),
            status: 1, ["private key \(dir.cert): no private key in it (it holds only CERTIFICATE)"])
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", text], expectSuccess: false),
            status: 1, ["\(text) is not a PEM private key"])
        // PEM whose certificate is not DER.
        let broken = dir.path("broken.pem")
        try "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n".write(toFile: broken, atomically: true, encoding: .utf8)
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", broken], expectSuccess: false), status: 1,
            ["CA file \(broken): its certificate does not parse: "])
        // A CRL file that is no CRL.
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--revocation", "crl", "--crl", text], expectSuccess: false),
            status: 1, ["CRL file \(text): "])
        // A key of another certificate.
        let other = InteropPKI.shared.path("rsa.key")
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", other], expectSuccess: false),
            status: 1, ["private key \(other): it does not match the certificate in \(dir.cert)"])
    }

    @Test("a key that cannot be read: a directory, a FIFO without a writer (no hang), and mode 000 when not root")
    func unreadableKey() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        let directory = dir.path("key-dir")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", directory], expectSuccess: false),
            status: 1, ["cannot read private key \(directory): it is a directory"])
        expectOneLine(
            try dir.tool(["cert", "show", directory], expectSuccess: false), status: 1,
            ["cannot read PEM file \(directory): it is a directory"])

        let fifo = dir.path("key.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", fifo], expectSuccess: false, timeout: 20),
            status: 1, ["\(fifo) is not a PEM private key: the file is empty"])

        if geteuid() != 0 {  // root reads a mode-000 file anyway
            let locked = dir.path("locked.key")
            try FileManager.default.copyItem(atPath: dir.key, toPath: locked)
            #expect(chmod(locked, 0) == 0)
            expectOneLine(
                try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--cert", dir.cert, "--key", locked], expectSuccess: false),
                status: 1, ["cannot read private key \(locked): permission denied"])
        }
    }

    @Test("a refused connection: cannot connect to HOST:PORT: connection refused (exit 1)")
    func refused() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        expectOneLine(
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca], expectSuccess: false), status: 1,
            ["cannot connect to 127.0.0.1:\(port): connection refused"])
        // With --json the object on stdout says the same, and stderr stays empty.
        let json = try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--json"], expectSuccess: false)
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["error"] as? String == "cannot connect to 127.0.0.1:\(port): connection refused", "\(json.stdout)")
    }

    @Test("an unknown host: cannot resolve host NAME (exit 1)")
    func unknownHost() throws {
        let dir = try ToolDirectory()
        expectOneLine(
            try dir.tool(["connect", "no-such-host.invalid:443", "--ca", dir.ca], expectSuccess: false), status: 1,
            ["cannot resolve host no-such-host.invalid"])
    }

    @Test("a rejected certificate: one line with the alert, exit 2")
    func verificationFailure() throws {
        let dir = try ToolDirectory()
        let server = try ToolServer(dir, [])
        defer { server.stop() }
        let wrongCA = InteropPKI.shared.path("rsa-ca.pem")
        let run = try dir.tool(["connect", "127.0.0.1:\(server.port)", "--ca", wrongCA, "--server-name", "localhost"], expectSuccess: false)
        expectOneLine(run, status: 2, ["handshake with 127.0.0.1:\(server.port) failed: ", "[alert "])
    }

    @Test("usage errors keep ArgumentParser's message and exit 64")
    func usage() throws {
        let dir = try ToolDirectory()
        let run = try dir.tool(["connect", "--no-such-option", "x"], expectSuccess: false)
        #expect(run.status == 64)
        #expect(run.stderr.contains("Unknown option '--no-such-option'"))
        let invalid = try dir.tool(["connect", "127.0.0.1:1", "--revocation", "sometimes"], expectSuccess: false)
        #expect(invalid.status == 64)
    }

    @Test("--help and --version are ArgumentParser's own output with exit 0, at the top and for a subcommand")
    func helpAndVersion() throws {
        let dir = try ToolDirectory()
        for arguments in [["--help"], ["serve", "--help"], ["cert", "ca", "--help"]] {
            let run = try dir.tool(arguments, expectSuccess: false)
            #expect(run.status == 0, "\(arguments): \(run.stderr)")
            #expect(run.stdout.contains("USAGE:"), "\(arguments): \(run.stdout)")
            #expect(!run.stderr.contains("CommandError"), "\(arguments): \(run.stderr)")
        }
        let version = try dir.tool(["--version"])
        #expect(!version.stdout.isEmpty)
    }
}
