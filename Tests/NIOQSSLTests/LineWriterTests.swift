import Foundation
import Testing

@testable import QSSLProxy

@Suite("Log lines are written off the caller's thread, in order, bounded")
struct LineWriterTests {
    /// A pipe; both ends closed at the end of the test.
    final class Pipe {
        let read: Int32
        let write: Int32
        init() throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw CocoaError(.fileWriteUnknown) }
            read = fds[0]
            write = fds[1]
        }
        deinit {
            close(read)
            close(write)
        }

        /// Everything readable until `count` bytes came or a second passes without any.
        func drain(atLeast count: Int) -> [UInt8] {
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while out.count < count {
                var entry = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 1000) == 1 else { break }
                let n = buffer.withUnsafeMutableBytes { Foundation.read(read, $0.baseAddress!, $0.count) }
                guard n > 0 else { break }
                out += buffer[..<n]
            }
            return out
        }
    }

    @Test("a reader that does not read holds up no writer: lines past the limit are dropped and counted, the rest come in order")
    func stalledReaderDoesNotBlock() throws {
        let pipe = try Pipe()
        // A pipe holds 64 KiB; the writer 256 KiB more. 1,000 lines of 1 KiB are 1 MB.
        let writer = LineWriter(descriptor: pipe.write, limit: 256 * 1024)
        let line = String(repeating: "x", count: 1000)
        let started = ContinuousClock.now
        for i in 0..<1000 { writer.write("\(i) \(line)") }
        #expect(ContinuousClock.now - started < .seconds(5), "writes waited for the reader")
        #expect(writer.droppedLines > 0)
        // Now the reader reads: the lines that were kept come in order, then the notice.
        let bytes = pipe.drain(atLeast: 4 << 20)  // until a second passes with nothing more
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        let kept = lines.compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }
        let notices = lines.filter { $0.hasPrefix("log: ") && $0.contains("lines dropped") }
        let dropped = notices.compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }.reduce(0, +)
        #expect(kept.count > 64, "at least what the pipe held")
        #expect(zip(kept, kept.dropFirst()).allSatisfy { $0 < $1 }, "in order")
        #expect(kept.count + dropped == 1000, "every line written or counted: \(kept.count) + \(dropped)")
        #expect(lines.last.map(notices.contains) == true, "the notice comes once the backlog is out: \(lines.last ?? "")")
        #expect(writer.droppedLines == 0)
    }

    @Test("to a file a line goes straight out: it is in the file when write returns; a pipe's lines go through the thread")
    func directToAFile() throws {
        let path = NSTemporaryDirectory() + "qssl-linewriter-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        let writer = LineWriter(descriptor: fd)
        writer.write("first")
        writer.write("second")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\nsecond\n")
    }

    @Test("flush writes what is waiting before it returns, in order")
    func flushWritesEverything() throws {
        let pipe = try Pipe()
        // Every line through the writer's thread (none straight out): flush must write them.
        let writer = LineWriter(descriptor: pipe.write, direct: false)
        for i in 0..<500 { writer.write("line \(i)") }
        writer.flush()
        // Everything is in the pipe now: read without waiting for more.
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var flags = fcntl(pipe.read, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(pipe.read, F_SETFL, flags)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(pipe.read, $0.baseAddress!, $0.count) }
            guard n > 0 else { break }
            bytes += buffer[..<n]
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == (0..<500).map { "line \($0)" })
    }
}
