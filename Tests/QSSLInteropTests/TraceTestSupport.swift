import Foundation
import QSSL
import QSSLX509
import Testing

// qssl trace test support: a traced qssl serve process and a cutting TCP relay.

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

    private func track(_ fd: Int32) {
        lock.lock()
        open.append(fd)
        lock.unlock()
    }

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
        guard connected else {
            shutdown(client, Int32(SHUT_RDWR))
            return
        }
        Thread.detachNewThread {
            var b = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = b.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                if n <= 0 {
                    shutdown(up, Int32(SHUT_RDWR))
                    return
                }
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
        for fd in open {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
        open = []
    }
}
