import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes log lines to a file descriptor from a thread of its own, so that an event loop that
/// logs never waits on the reader: standard output is often a pipe to a log collector, and a
/// collector that stalls would otherwise stall every connection on the loop with it. Lines are
/// written in order, in batches (one `write` for all the lines that came while the last one was
/// written).
///
/// Bounded: when more than `limit` bytes are waiting, further lines are dropped, and once the
/// backlog is written a line says how many were ("log: N lines dropped …"). `flush()` writes
/// what is waiting before it returns; standard output's writer does so at exit.
public final class LineWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var draining = false
        var dropped = 0
    }

    private let descriptor: Int32
    private let limit: Int
    private let state = Mutex(State())
    /// Held while a batch is taken and written: batches go out in the order they were taken.
    private let writing = Mutex(())
    private let thread: NIOThreadPool

    /// - Parameters:
    ///   - descriptor: where lines go (not closed by the writer).
    ///   - limit: bytes that may wait; beyond it, lines are dropped and counted.
    public init(descriptor: Int32, limit: Int = 8 << 20) {
        self.descriptor = descriptor
        self.limit = limit
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit {
        flush()
        thread.shutdownGracefully { _ in }
    }

    /// Standard output's writer, flushed at exit (for at most a second: an exit must not hang
    /// on a reader that stopped reading).
    public static let standardOutput: LineWriter = {
        let writer = LineWriter(descriptor: 1)
        atexit { LineWriter.standardOutput.flushAtExit() }
        return writer
    }()

    /// Queues `line` and a newline; returns at once.
    public func write(_ line: String) {
        let scheduleDrain = state.withLock { s -> Bool in
            let count = line.utf8.count + 1
            guard s.pending.count + count <= limit else {
                s.dropped += 1
                return false
            }
            s.pending.append(contentsOf: line.utf8)
            s.pending.append(0x0A)
            guard !s.draining else { return false }
            s.draining = true
            return true
        }
        guard scheduleDrain else { return }
        thread.submit { [self] _ in
            while drainOnce() {}
        }
    }

    /// Writes everything queued so far, on the caller's thread, before returning.
    public func flush() {
        while drainOnce() {}
    }

    /// What is waiting, unless a write is in progress (it may be blocked on the reader), and
    /// each write only once the output takes it within a second.
    func flushAtExit() {
        _ = writing.withLockIfAvailable { _ in
            let batch = state.withLock { s -> [UInt8] in
                defer { s.pending = [] }
                return s.pending
            }
            writeAll(batch, waiting: 1000)
        }
    }

    /// Lines dropped since the last notice was written.
    var droppedLines: Int { state.withLock { $0.dropped } }

    /// Takes what is waiting and writes it; false when nothing was (and no drain is running).
    private func drainOnce() -> Bool {
        writing.withLock { _ in
            let (batch, dropped) = state.withLock { s -> ([UInt8], Int) in
                let taken = (s.pending, s.dropped)
                s.pending = []
                s.dropped = 0
                if taken.0.isEmpty && taken.1 == 0 { s.draining = false }
                return taken
            }
            if batch.isEmpty && dropped == 0 { return false }
            writeAll(batch)
            if dropped > 0 {
                writeAll(Array("log: \(dropped) lines dropped (more than \(limit) bytes of log were waiting for the output)\n".utf8))
            }
            return true
        }
    }

    /// Writes all of `bytes`; with `waiting` (milliseconds), only while the output becomes
    /// writable within it each time.
    private func writeAll(_ bytes: [UInt8], waiting: Int32? = nil) {
        var offset = 0
        while offset < bytes.count {
            if let waiting {
                var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                guard poll(&entry, 1, waiting) == 1 else { return }
            }
            let n = bytes.withUnsafeBytes { systemWrite(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return  // the output is gone (a closed pipe): nothing more can be done with the lines
            }
            offset += n
        }
    }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
