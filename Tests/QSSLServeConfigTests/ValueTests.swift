import Foundation
import Testing

@testable import QSSLServeConfig

@Suite struct ValueTests {
    @Test(
        arguments: [
            ("10s", 10_000), ("500ms", 500), ("5m", 300_000), ("1h", 3_600_000), ("30", 30_000), ("0", 0),
            ("1h30m", 5_400_000), ("2d", 172_800_000), (" 7S ", 7_000), ("1m1s1ms", 61_001)
        ] as [(String, Int64)])
    func durations(text: String, milliseconds: Int64) throws {
        #expect(try Values.milliseconds(text).get() == milliseconds)
    }

    @Test(arguments: ["-1s", "-0", "1.5s", "10 seconds", "s", "", "10x", "1s2", "9223372036854775807s", "99999999999999999999", "1h-5m", "٣s"])
    func badDurations(text: String) {
        #expect(throws: ValueError.self) { try Values.milliseconds(text).get() }
    }

    @Test func addresses() throws {
        #expect(try Values.address("[::]:443", allowUnix: false).get() == .tcp(host: "::", port: 443))
        #expect(try Values.address("[0:0::1]:1", allowUnix: false).get() == .tcp(host: "::1", port: 1))
        #expect(try Values.address("[fe80::1%eth0]:65535", allowUnix: false).get() == .tcp(host: "fe80::1%eth0", port: 65535))
        #expect(try Values.address("Example.COM:80", allowUnix: false).get() == .tcp(host: "example.com", port: 80))
        #expect(try Values.address("unix:/run/a.sock", allowUnix: true).get() == .unix(path: "/run/a.sock"))
        #expect(NetworkAddress.tcp(host: "::1", port: 8).description == "[::1]:8")
        for bad in [
            "", ":443", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:+1", "[::1:443", "[1.2.3.4]:1", "unix:/" + String(repeating: "a", count: 110),
            "-a.com:1", "a..b:1", "[]:1", "[::1%]:1", "1.2.3:4"
        ] {
            #expect(throws: ValueError.self, "\(bad)") { try Values.address(bad, allowUnix: true).get() }
        }
    }

    @Test func serverNames() {
        for good in ["www.example.com", "*.example.com", "localhost", "xn--bcher-kva.example", "a-b.c1"] {
            #expect(Values.serverNameProblem(good) == nil, "\(good)")
        }
        for bad in [
            "", "*", "*.", "*.*.example.com", "w*.example.com", "example.com.", "-a.example", "a_b.example",
            "1.2.3.4", String(repeating: "a", count: 64) + ".com", "ünï.example", "a..b"
        ] {
            #expect(Values.serverNameProblem(bad) != nil, "\(bad)")
        }
    }

    @Test func suggestions() {
        #expect(Values.suggestion(for: "max_handshakes", among: Keys.limits) == "max-handshakes")
        #expect(Values.suggestion(for: "maxHandshakes", among: Keys.limits) == "max-handshakes")
        #expect(Values.suggestion(for: "listn", among: Keys.listener) == "listen")
        #expect(Values.suggestion(for: "completely-different", among: Keys.listener) == nil)
        #expect(Values.suggestion(for: "X25519MLKEM786", among: ListenerConfig.supportedGroups) == "X25519MLKEM768")
    }

    @Test func checkFilesReportsMissingAndUnreadablePaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-config-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = dir + "/cert.pem"
        #expect(FileManager.default.createFile(atPath: cert, contents: Data("x".utf8)))
        let yaml = """
            hsm: {module: \(dir)/missing.so, pin-file: \(dir)}
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                client-auth: optional
                client-ca: \(dir)/ca.pem
                crl: [\(cert), \(dir)/x.crl]
                ticket-keys: \(dir)/tk
                certificates:
                  - {cert: \(cert), key: "pkcs11:object=k"}
                  - {cert: \(cert), key: \(dir)/key.pem}
            """
        #expect(issues(yaml).isEmpty)
        let found = issues(yaml, checkFiles: true)
        expectIssue(found, line: 1, path: "hsm.module", "no such file")
        expectIssue(found, line: 1, path: "hsm.pin-file", "is a directory")
        expectIssue(found, line: 6, path: "listeners[0].client-ca", "no such file: \(dir)/ca.pem")
        expectIssue(found, line: 7, path: "listeners[0].crl[1]", "no such file")
        expectIssue(found, line: 8, path: "listeners[0].ticket-keys", "no such file")
        expectIssue(found, line: 11, path: "listeners[0].certificates[1].key", "no such file")
        #expect(found.count == 6)

        let file = dir + "/serve.yaml"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(minimalYAML.utf8)))
        #expect((try? ServeConfigFile.load(contentsOf: file).get())?.listeners.count == 1)
        #expect(FileManager.default.createFile(atPath: file, contents: Data("listeners:\n  - x: \u{1}\n".utf8) + Data([0xFF, 0x0A])))
        guard case .failure(let errors) = ServeConfigFile.load(contentsOf: file) else {
            Issue.record("invalid UTF-8 accepted")
            return
        }
        #expect(errors.description == "\(file):3: the file is not valid UTF-8")
        guard case .failure(let missing) = ServeConfigFile.load(contentsOf: dir + "/nope.yaml") else {
            Issue.record("missing file accepted")
            return
        }
        #expect(missing.description == "\(dir)/nope.yaml: cannot read the file")
    }
}
