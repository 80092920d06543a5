import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Proxy test support: the qssl serve and backend processes, and running commands.

// MARK: - Processes

/// A `qssl serve` process on free ports: stdout and stderr kept apart (log lines are whole lines
/// in each), signals by pid, the exit status. Ended (its whole process group) when stopped or
/// released.
final class ServeProcess: @unchecked Sendable {
    let port: Int
    private let process = Process()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""

    /// - Parameters:
    ///   - flags: after `serve` and the `--listen`/`--cert`/`--key` arguments.
    ///   - certificates: `--cert`/`--key` pairs (default: the interop ECDSA pair).
    ///   - listen: the `--listen` addresses (default: 127.0.0.1 on a free port); waits until
    ///     each is reported listening.
    init(_ flags: [String], certificates: [(String, String)]? = nil, listen: [String]? = nil) throws {
        let addresses = try listen ?? ["127.0.0.1:\(try Peers.freePort())"]
        port = Int(addresses[0].split(separator: ":").last!)!
        var arguments = ["serve"]
        for address in addresses { arguments += ["--listen", address] }
        for (cert, key) in certificates ?? [(InteropPKI.shared.path("ecdsa.pem"), InteropPKI.shared.path("ecdsa.key"))] {
            arguments += ["--cert", cert, "--key", key]
        }
        arguments += flags
        process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        process.arguments = ["-e", PeerProcess.cleanExec, try QSSLToolBinary.path()] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            // End of file: stop watching (an empty read would otherwise repeat at once).
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            guard let self else { return }
            self.lock.withLock { self.stdoutText += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            // End of file: stop watching (an empty read would otherwise repeat at once).
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            guard let self else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        // Ready when each listener is reported ("listening on ADDR", or a JSON line with event
        // "listening"): no probe connection, which would show in the log, metrics and limits.
        for address in addresses {
            let portText = String(address.split(separator: ":").last!)
            try waitUntil(timeout: 30, "qssl serve listening on \(address)") {
                self.lines.contains { $0.contains("listening") && $0.contains(portText) }
            }
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var output: String { lock.withLock { stdoutText + (stderrText.isEmpty ? "" : "\n--- stderr ---\n" + stderrText) } }

    /// Every complete line of stdout and stderr (stdout's first).
    var lines: [String] {
        lock.withLock {
            [stdoutText, stderrText].flatMap { text in
                text.split(separator: "\n", omittingEmptySubsequences: true).dropLast(text.hasSuffix("\n") ? 0 : 1).map(String.init)
            }
        }
    }

    /// The access-log lines: JSON objects with "event": "connection".
    var connections: [[String: Any]] {
        lines.compactMap { line in
            guard line.hasPrefix("{"), let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                o["event"] as? String == "connection"
            else { return nil }
            return o
        }
    }

    @discardableResult
    func waitForConnection(timeout: Double = 10, where match: ([String: Any]) -> Bool) throws -> [String: Any] {
        var found: [String: Any]?
        try waitUntil(timeout: timeout, "an access-log line as expected") {
            found = self.connections.first(where: match)
            return found != nil
        }
        return found!
    }

    func waitForConnections(count: Int, timeout: Double = 10) throws -> [[String: Any]] {
        try waitUntil(timeout: timeout, "\(count) access-log connection lines") { self.connections.count >= count }
        return connections
    }

    func waitForText(_ text: String, timeout: Double = 10) throws {
        try waitUntil(timeout: timeout, "'\(text)' in the log") { self.output.contains(text) }
    }

    func signal(_ sig: Int32) {
        if process.isRunning { kill(process.processIdentifier, sig) }
    }

    /// The exit status once the process exits within `timeout`; nil if it is still running.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// VmRSS of the process, in bytes.
    var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kb * 1024
    }

    private func waitUntil(timeout: Double, _ what: String, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            if !process.isRunning {
                Thread.sleep(forTimeInterval: 0.1)
                if condition() { return }
                throw PeerError("qssl serve exited (\(process.terminationStatus)) while waiting for \(what):\n\(output)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw PeerError("timed out waiting for \(what) from qssl serve:\n\(output)")
    }

    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// `Peers/proxy_backend.py` on a free port (or a Unix socket), recording each connection.
final class ProxyBackend: @unchecked Sendable {
    let process: PeerProcess
    let port: Int
    let recordPath: String

    init(_ dir: ToolDirectory, _ flags: [String]) throws {
        recordPath = dir.path("backend-\(UInt32.random(in: 0...UInt32.max)).jsonl")
        let portFlags = flags.contains("--unix") ? [] : ["--port", "0"]
        process = try PeerProcess(try Peers.requirePython(), [Peers.script("proxy_backend.py"), "--record", recordPath] + portFlags + flags)
        try process.waitFor("listening ")
        let word = process.text.split(separator: "\n").first { $0.hasPrefix("listening ") }?.split(separator: " ").last
        port = word.flatMap { Int($0) } ?? 0
    }

    /// The first `count` connection records, waiting for them to be written.
    func records(count: Int, timeout: Double = 10) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var found: [[String: Any]] = []
        while Date() < deadline {
            let text = (try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? ""
            found = text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            if found.count >= count { return Array(found.prefix(count)) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw PeerError("the backend recorded \(found.count) of \(count) connections:\n\(process.text)")
    }

    func stop() { process.terminate() }
}

/// Runs `Peers/tls_client.py` (OpenSSL 4.0) to completion and returns its JSON object.
func tlsClient(_ arguments: [String], timeout: Double = 40) throws -> [String: Any] {
    let peer = try PeerProcess(try Peers.requirePython(), [Peers.script("tls_client.py")] + arguments)
    return try peerResult(peer.finish(timeout: timeout))
}

/// Runs a program to completion (its process group killed after `timeout`).
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60) -> ToolRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
    process.arguments = ["-e", PeerProcess.cleanExec, executable] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { return ToolRun(status: -1, stdout: "", stderr: "\(error)") }
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem {
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let errBox = ProxyDataBox()
    let errDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        errDone.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    errDone.wait()
    watchdog.cancel()
    return ToolRun(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errBox.data, as: UTF8.self))
}

private final class ProxyDataBox: @unchecked Sendable {
    var data = Data()
}

/// Ends (by pid) the processes whose command line mentions `marker` — Chromium's crash
/// handlers, which start sessions of their own and so outlive a process-group kill — after
/// giving them a few seconds to exit by themselves.
func endProcesses(mentioning marker: String) {
    func matching() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }
    }
    let deadline = Date().addingTimeInterval(5)
    while !matching().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    for pid in matching() { kill(pid, SIGKILL) }
}
