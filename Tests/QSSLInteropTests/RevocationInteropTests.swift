import Foundation
import NIOQSSL
import QSSL
import QSSLX509
import Testing

/// Issue 11 through the `qssl` binary and OpenSSL 3.0: a CA that records what it issued and
/// revoked, its own OCSP responder and CRL, stapling, and the client's three ways of checking.
@Suite("Interop: revocation (qssl cert revoke/crl, ocsp-responder, serve --staple) with OpenSSL 3.0", .serialized)
struct RevocationInteropTests {
    /// A CA, a server certificate naming the responder, and the responder running.
    final class Setup: @unchecked Sendable {
        let dir: ToolDirectory
        let responderPort: Int
        let responder: PeerProcess
        var ca: String { dir.path("ca/ca.pem") }
        var leaf: String { dir.path("srv.pem") }
        var key: String { dir.path("srv.key") }

        init() throws {
            dir = try ToolDirectory()
            responderPort = try Peers.freePort()
            try dir.tool(["cert", "ca", "--out", dir.path("ca"), "--alg", "ecdsa-p384", "--subject", "CN=Revocation Interop CA"])
            try dir.tool([
                "cert", "issue", "--ca", dir.path("ca"), "--alg", "ecdsa-p384", "--subject", "CN=localhost", "--san", "DNS:localhost",
                "--ocsp-url", "http://127.0.0.1:\(responderPort)/", "--crl-url", "http://127.0.0.1:\(responderPort)/ca.crl",
                "--out", dir.path("srv")
            ])
            responder = try PeerProcess(try QSSLToolBinary.path(), ["ocsp-responder", "--ca", dir.path("ca"), "--listen", "127.0.0.1:\(responderPort)"])
            try responder.waitFor("OCSP responder")
        }

        func serial() -> String {
            PeerProcess.run("/usr/bin/openssl", ["x509", "-in", leaf, "-noout", "-serial"])
                .split(separator: "\n").first { $0.hasPrefix("serial=") }.map { String($0.dropFirst(7)) } ?? ""
        }

        func connect(_ port: Int, _ extra: [String]) throws -> ToolRun {
            try dir.tool(["connect", "127.0.0.1:\(port)", "--ca", ca, "--server-name", "localhost"] + extra, expectSuccess: false)
        }

        deinit { responder.terminate() }
    }

    @Test("qssl's responder answers openssl ocsp; a revocation shows at once; the client's ocsp mode fails with certificate_revoked")
    func responderAndClient() throws {
        let s = try Setup()
        let server = try ToolServer(s.dir, [])
        defer { server.stop() }
        // ToolServer serves the interop certificate; this test's own server serves the CA's leaf.
        let port = try Peers.freePort()
        let own = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", s.leaf, "--key", s.key])
        defer { own.terminate() }
        try own.waitFor("listening on")

        let good = PeerProcess.run(
            "/usr/bin/openssl", ["ocsp", "-issuer", s.ca, "-cert", s.leaf, "-url", "http://127.0.0.1:\(s.responderPort)/", "-CAfile", s.ca])
        #expect(good.contains("Response verify OK") && good.contains(": good"), "\(good)")
        #expect(try s.connect(port, ["--revocation", "ocsp", "--hard-fail"]).status == 0)

        try s.dir.tool(["cert", "revoke", "--ca", s.dir.path("ca"), s.serial(), "--reason", "keyCompromise"])
        let revoked = PeerProcess.run(
            "/usr/bin/openssl", ["ocsp", "-issuer", s.ca, "-cert", s.leaf, "-url", "http://127.0.0.1:\(s.responderPort)/", "-CAfile", s.ca])
        #expect(revoked.contains("Response verify OK") && revoked.contains(": revoked") && revoked.lowercased().contains("keycompromise"), "\(revoked)")
        let refused = try s.connect(port, ["--revocation", "ocsp"])
        #expect(refused.status == 2 && refused.stderr.contains("certificate_revoked") || refused.stdout.contains("certificate_revoked"), "\(refused)")
        #expect(own.text.contains("certificate_revoked"), "the server heard the alert: \(own.text)")
    }

    @Test("qssl cert crl: OpenSSL verifies the CRL and lists the serial; the client's crl mode refuses the certificate")
    func crl() throws {
        let s = try Setup()
        try s.dir.tool(["cert", "revoke", "--ca", s.dir.path("ca"), s.serial(), "--reason", "superseded"])
        try s.dir.tool(["cert", "crl", "--ca", s.dir.path("ca"), "--out", s.dir.path("ca.crl"), "--days", "2"])
        let text = PeerProcess.run("/usr/bin/openssl", ["crl", "-in", s.dir.path("ca.crl"), "-CAfile", s.ca, "-noout", "-text"])
        #expect(text.contains("verify OK") || text.contains("verify ok"), "\(text)")
        #expect(text.contains(s.serial()) && text.contains("Superseded"), "\(text)")
        let port = try Peers.freePort()
        let own = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", s.leaf, "--key", s.key])
        defer { own.terminate() }
        try own.waitFor("listening on")
        let refused = try s.connect(port, ["--revocation", "crl", "--crl", s.dir.path("ca.crl")])
        #expect(refused.status == 2, "\(refused)")
        #expect((refused.stdout + refused.stderr).contains("certificate_revoked"))
    }

    @Test("qssl serve --staple: openssl s_client -status sees the staple; after a revocation a restarted server staples revoked")
    func stapling() throws {
        let s = try Setup()
        func serve() throws -> (PeerProcess, Int) {
            let port = try Peers.freePort()
            let p = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", s.leaf, "--key", s.key, "--staple"])
            try p.waitFor("staple: ")
            return (p, port)
        }
        var (server, port) = try serve()
        let seen = PeerProcess.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-status", "-CAfile", s.ca])
        #expect(seen.contains("OCSP Response Status: successful") && seen.contains("Cert Status: good"), "\(seen)")
        #expect(try s.connect(port, ["--revocation", "staple", "--hard-fail"]).status == 0)
        server.terminate()

        try s.dir.tool(["cert", "revoke", "--ca", s.dir.path("ca"), s.serial()])
        (server, port) = try serve()
        defer { server.terminate() }
        let refused = try s.connect(port, ["--revocation", "staple"])
        #expect(refused.status == 2 && (refused.stdout + refused.stderr).contains("certificate_revoked"), "\(refused)")
    }

    @Test("qssl serve --staple: a renewed certificate file, reloaded, is stapled with its own response from the first connection, not its predecessor's")
    func staplingAfterRenewal() throws {
        let s = try Setup()
        let port = try Peers.freePort()
        let server = try PeerProcess(try QSSLToolBinary.path(), ["serve", "--listen", "127.0.0.1:\(port)", "--cert", s.leaf, "--key", s.key, "--staple"])
        defer { server.terminate() }
        try server.waitFor("staple: ")
        let before = s.serial()
        #expect(try s.connect(port, ["--revocation", "staple", "--hard-fail"]).status == 0)
        // The renewal: a new certificate and key in place of the files (the file watch reloads).
        try s.dir.tool([
            "cert", "issue", "--ca", s.dir.path("ca"), "--alg", "ecdsa-p384", "--subject", "CN=localhost", "--san", "DNS:localhost",
            "--ocsp-url", "http://127.0.0.1:\(s.responderPort)/", "--out", s.dir.path("renewed")
        ])
        try FileManager.default.removeItem(atPath: s.leaf)
        try FileManager.default.removeItem(atPath: s.key)
        try FileManager.default.copyItem(atPath: s.dir.path("renewed.key"), toPath: s.key)
        try FileManager.default.copyItem(atPath: s.dir.path("renewed.pem"), toPath: s.leaf)
        #expect(s.serial() != before)
        // Stapled from the first connection after the reload: the new certificate's response
        // was fetched before the reload took it into use.
        try server.waitFor("reloaded", count: 1)
        #expect(server.text.contains("for the certificate being reloaded"), "\(server.text)")
        let run = try s.connect(port, ["--revocation", "staple", "--hard-fail"])
        #expect(run.status == 0, "\(run)")
        let seen = PeerProcess.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-status", "-CAfile", s.ca])
        #expect(seen.contains("Cert Status: good") && seen.contains("Serial Number: \(s.serial())"), "\(seen)")
    }

    @Test("Q-SSL's client verifies OpenSSL's s_server -status_file staple (good, then revoked)")
    func opensslStaple() throws {
        let s = try Setup()
        func staple(_ name: String) -> String {
            let path = s.dir.path(name)
            PeerProcess.run(
                "/usr/bin/openssl",
                [
                    "ocsp", "-issuer", s.ca, "-cert", s.leaf, "-url", "http://127.0.0.1:\(s.responderPort)/",
                    "-CAfile", s.ca, "-respout", path
                ])
            return path
        }
        for (file, revoke) in [("good.der", false), ("revoked.der", true)] {
            if revoke { try s.dir.tool(["cert", "revoke", "--ca", s.dir.path("ca"), s.serial()]) }
            let port = try Peers.freePort()
            let server = try PeerProcess(
                "/usr/bin/openssl",
                [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", s.leaf, "-key", s.key,
                    "-status_file", staple(file), "-www"
                ])
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let run = try s.connect(port, ["--revocation", "staple", "--hard-fail"])
            if revoke {
                #expect(run.status == 2 && (run.stdout + run.stderr).contains("certificate_revoked"), "\(run)")
            } else {
                #expect(run.status == 0, "\(run)")
            }
        }
    }

    @Test("Q-SSL's client asks an openssl ocsp responder (an openssl ca index): good, then revoked")
    func opensslResponder() throws {
        let dir = try ToolDirectory()
        let port = try Peers.freePort()
        try dir.tool(["cert", "ca", "--out", dir.path("ca"), "--alg", "ecdsa-p384", "--subject", "CN=OpenSSL Responder CA"])
        try dir.tool([
            "cert", "issue", "--ca", dir.path("ca"), "--alg", "ecdsa-p384", "--subject", "CN=localhost", "--san", "DNS:localhost",
            "--ocsp-url", "http://127.0.0.1:\(port)/", "--out", dir.path("srv")
        ])
        let ca = dir.path("ca/ca.pem")
        let serial =
            PeerProcess.run("/usr/bin/openssl", ["x509", "-in", dir.path("srv.pem"), "-noout", "-serial"])
            .split(separator: "\n").first { $0.hasPrefix("serial=") }.map { String($0.dropFirst(7)) } ?? ""
        let serverPort = try Peers.freePort()
        let server = try PeerProcess(
            try QSSLToolBinary.path(),
            [
                "serve", "--listen", "127.0.0.1:\(serverPort)", "--cert", dir.path("srv.pem"),
                "--key", dir.path("srv.key")
            ])
        defer { server.terminate() }
        try server.waitFor("listening on")
        for revoked in [false, true] {
            let line =
                revoked
                ? "R\t351231235959Z\t261130000000Z,keyCompromise\t\(serial)\tunknown\t/CN=localhost\n"
                : "V\t351231235959Z\t\t\(serial)\tunknown\t/CN=localhost\n"
            try line.write(toFile: dir.path("index.txt"), atomically: true, encoding: .utf8)
            let responder = try PeerProcess(
                "/usr/bin/openssl",
                [
                    "ocsp", "-index", dir.path("index.txt"), "-port", "\(port)", "-rsigner", ca,
                    "-rkey", dir.path("ca/ca.key"), "-CA", ca, "-ignore_err"
                ])
            defer { responder.terminate() }
            // Not probed with a connection: openssl ocsp serves one connection at a time and would
            // sit on the probe.
            try responder.waitFor("waiting for OCSP client connections")
            let run = try dir.tool(
                ["connect", "127.0.0.1:\(serverPort)", "--ca", ca, "--server-name", "localhost", "--revocation", "ocsp", "--hard-fail"],
                expectSuccess: false)
            if revoked {
                #expect(run.status == 2 && (run.stdout + run.stderr).contains("certificate_revoked"), "\(run)")
            } else {
                #expect(run.status == 0, "\(run)\n\(responder.text)")
            }
        }
    }
}
