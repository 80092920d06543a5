import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Proxy test support: raw sockets, PROXY v2 headers, HTTP GETs and Prometheus samples.

// MARK: - Sockets, headers, HTTP

/// A plain TCP connection for what no TLS client sends: half a ClientHello, a PROXY header, garbage.
final class RawSocket: @unchecked Sendable {
    private var fd: Int32

    init(port: Int, host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(host)
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw PeerError("cannot connect to \(host):\(port): errno \(e)")
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw PeerError("send failed: errno \(errno)") }
            sent += n
        }
    }

    /// Reads until the peer closes (EOF or reset); the moment it did and what arrived, or nil if
    /// the connection is still open after `timeout` seconds.
    func waitClosed(timeout: Double) -> (at: Date, received: [UInt8])? {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno != EINTR { return (Date(), received) }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (Date(), received) }
            received += buffer[0..<n]
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// The first 50 bytes of a TLS 1.3 ClientHello whose record says 512 bytes follow: a handshake
/// that never completes.
let halfClientHello: [UInt8] =
    [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
    + (0..<32).map { _ in UInt8.random(in: 0...255) } + [0x20] + [UInt8](repeating: 0x5A, count: 6)

/// A PROXY protocol v2 header (PROXY, TCP over IPv4), written here rather than by Q-SSL's codec.
func proxyV2Header(source: String, sourcePort: UInt16, destination: String, destinationPort: UInt16) -> [UInt8] {
    func ipv4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }
    let body = ipv4(source) + ipv4(destination) + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
    return Array("\r\n\r\n\0\r\nQUIT\n".utf8) + [0x21, 0x11, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// GET with curl: the status and the body. With `retryFor`, retries until an answer comes.
func httpGet(_ url: String, retryFor: Double = 0) throws -> (status: Int, body: String) {
    let curl = try Peers.executable("curl")
    let deadline = Date().addingTimeInterval(retryFor)
    while true {
        let run = runCommand(curl, ["-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", url], timeout: 20)
        if run.status == 0, let statusLine = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).last, let status = Int(statusLine) {
            return (status, String(run.stdout.dropLast(statusLine.count + 1)))
        }
        if Date() >= deadline { throw PeerError("GET \(url) failed: \(run.status) \(run.stderr)") }
        Thread.sleep(forTimeInterval: 0.2)
    }
}

/// One sample of the Prometheus text format: `name{label="value",…} value`.
struct PrometheusSample: CustomStringConvertible {
    let name: String
    let labels: [String: String]
    let value: Double

    var description: String { "\(name)\(labels) \(value)" }

    static func parse(_ text: String) -> [PrometheusSample] {
        text.split(separator: "\n").compactMap { raw in
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { return nil }
            var name = ""
            var labels: [String: String] = [:]
            var rest: Substring
            if let brace = line.firstIndex(of: "{") {
                name = String(line[..<brace])
                var i = line.index(after: brace)
                // key="value" pairs; values may hold \" \\ \n escapes.
                while i < line.endIndex, line[i] != "}" {
                    if line[i] == "," || line[i] == " " {
                        i = line.index(after: i)
                        continue
                    }
                    guard let eq = line[i...].firstIndex(of: "=") else { return nil }
                    let key = String(line[i..<eq])
                    var j = line.index(after: eq)
                    guard j < line.endIndex, line[j] == "\"" else { return nil }
                    j = line.index(after: j)
                    var value = ""
                    while j < line.endIndex, line[j] != "\"" {
                        if line[j] == "\\", line.index(after: j) < line.endIndex {
                            j = line.index(after: j)
                            value.append(line[j] == "n" ? "\n" : line[j])
                        } else {
                            value.append(line[j])
                        }
                        j = line.index(after: j)
                    }
                    labels[key] = value
                    i = j < line.endIndex ? line.index(after: j) : j
                }
                rest = i < line.endIndex ? line[line.index(after: i)...] : ""
            } else {
                let parts = line.split(separator: " ", maxSplits: 1)
                name = String(parts[0])
                rest = parts.count > 1 ? parts[1] : ""
            }
            guard let token = rest.split(separator: " ").first else { return nil }
            let value: Double? =
                switch token {
                case "+Inf": .infinity
                case "-Inf": -.infinity
                case "NaN": .nan
                default: Double(token)
                }
            return value.map { PrometheusSample(name: name, labels: labels, value: $0) }
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    static func sum(_ samples: [PrometheusSample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    /// The value of the one sample named `name` (nil when absent).
    static func value(_ samples: [PrometheusSample], _ name: String) -> Double? {
        samples.first { $0.name == name }?.value
    }
}
