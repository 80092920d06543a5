import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes log lines to a file descriptor without making the caller wait on the reader:
/// standard output is often a pipe to a log collector, and a collector that stalls would
/// otherwise stall every connection of the event loop that logs.
///
/// To a file or /dev/null a line goes straight out when nothing is waiting (such a write does not
/// wait on a reader). To a pipe, a socket or a terminal, which can hold a write back for as long
/// as their reader likes, a thread of the writer's own writes the lines, in order, in batches; to
/// a pipe in pieces of at most PIPE_BUF bytes that end at a line's end, so that another writer of
/// the same pipe (stderr through `2>&1`) cannot land inside a line.
///
/// Bounded: when more than `limit` bytes wait, further lines are dropped, and once the backlog is
/// written a line says how many were ("log: N lines dropped …"). With the batch being written,
/// memory is at most about twice the limit. `flush()` writes what waits before it returns;
/// standard output's writer does so at exit, for at most a second.
public final class LineWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var draining = false
        var dropped = 0
    }

    private let descriptor: Int32
    private let limit: Int
    /// Whether lines may be written on the caller's thread: the output is a regular file or a
    /// character device other than a terminal (/dev/null).
    private let direct: Bool
    /// A pipe: only writes of at most PIPE_BUF bytes are whole.
    private let isPipe: Bool
    private let state = Mutex(State())
    /// Held while a batch is taken and written: batches go out in the order they were taken.
    private let writing = Mutex(())
    private let thread: NIOThreadPool

    /// PIPE_BUF: the most a pipe writes whole.
    #if os(Linux)
        static let pipeBuffer = 4096
    #else
        static let pipeBuffer = 512
    #endif

    /// - Parameters:
    ///   - descriptor: where lines go (not closed by the writer).
    ///   - limit: bytes that may wait; beyond it, lines are dropped and counted.
    ///   - direct: whether a line may go out on the caller's thread when the output is a file or
    ///     /dev/null.
    public init(descriptor: Int32, limit: Int = 8 << 20, direct: Bool = true) {
        self.descriptor = descriptor
        self.limit = limit
        var info = stat()
        let known = fstat(descriptor, &info) == 0
        let kind = info.st_mode & S_IFMT
        isPipe = known && kind == S_IFIFO
        self.direct = direct && known && (kind == S_IFREG || kind == S_IFCHR) && isatty(descriptor) == 0
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    deinit {
        flush()
        thread.shutdownGracefully { _ in }
    }

    /// Standard output's writer, flushed at exit.
    public static let standardOutput: LineWriter = {
        let writer = LineWriter(descriptor: 1)
        atexit { LineWriter.standardOutput.flushAtExit() }
        return writer
    }()

    /// Writes `line` and a newline, or queues them; returns at once.
    public func write(_ line: String) {
        if direct, writeDirectly(line) { return }
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
            while drainOnce(until: nil) {}
        }
    }

    /// The line, at once, if nothing waits (a file or /dev/null). True once it was tried: a line
    /// that failed is counted as dropped, never queued again (its start may be out already).
    private func writeDirectly(_ line: String) -> Bool {
        writing.withLockIfAvailable { _ -> Bool in
            guard state.withLock({ $0.pending.isEmpty && !$0.draining && $0.dropped == 0 }) else { return false }
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            if !writeAll(bytes[...], until: nil) { state.withLock { $0.dropped += 1 } }
            return true
        } ?? false
    }

    /// Writes everything queued so far, on the caller's thread, before returning.
    public func flush() {
        while drainOnce(until: nil) {}
    }

    /// What waits, within a second in all: an exit must not hang on a reader that stopped
    /// reading, nor on a batch the writer's thread is blocked in.
    func flushAtExit() {
        let deadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline {
            let done = writing.withLockIfAvailable { _ -> Bool in
                while drainTaken(until: deadline) {}
                return true
            }
            if done == true { return }
            usleep(1000)
        }
    }

    /// Lines dropped since the last notice was written.
    var droppedLines: Int { state.withLock { $0.dropped } }

    /// Takes what waits and writes it; false when nothing did (and then no drain runs).
    private func drainOnce(until deadline: ContinuousClock.Instant?) -> Bool {
        writing.withLock { _ in drainTaken(until: deadline) }
    }

    /// `drainOnce` with `writing` held.
    private func drainTaken(until deadline: ContinuousClock.Instant?) -> Bool {
        let (batch, dropped) = state.withLock { s -> ([UInt8], Int) in
            let taken = (s.pending, s.dropped)
            s.pending = []
            s.dropped = 0
            if taken.0.isEmpty && taken.1 == 0 { s.draining = false }
            return taken
        }
        if batch.isEmpty && dropped == 0 { return false }
        guard writeAll(batch[...], until: deadline) else {
            // Lost with the output (or the exit's deadline), and counted; a later line tries again.
            let lines = batch.lazy.filter { $0 == 0x0A }.count
            state.withLock {
                $0.draining = false
                $0.dropped += lines + dropped
            }
            return false
        }
        if dropped > 0 {
            let notice = "log: \(dropped) lines dropped (more than \(limit) bytes of log were waiting for the output)\n"
            _ = writeAll(Array(notice.utf8)[...], until: deadline)
        }
        return true
    }

    /// Writes all of `bytes`: to a pipe, and to any output when there is a deadline, in pieces of
    /// at most PIPE_BUF bytes ending at a line's end (with a deadline, each piece only once the
    /// output polls writable within it). Waits for the output while it is full (a descriptor
    /// another process made non-blocking). False if the output failed or the deadline passed;
    /// what was not written is lost then.
    private func writeAll(_ bytes: ArraySlice<UInt8>, until deadline: ContinuousClock.Instant?) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            var end = bytes.endIndex
            if (isPipe || deadline != nil) && end - offset > Self.pipeBuffer {
                // The last line's end within PIPE_BUF; a longer line goes alone (it cannot be whole).
                let window = bytes[offset..<(offset + Self.pipeBuffer)]
                if let newline = window.lastIndex(of: 0x0A) {
                    end = newline + 1
                } else if let newline = bytes[offset...].firstIndex(of: 0x0A) {
                    end = newline + 1
                }
            }
            if let deadline {
                let left = deadline - ContinuousClock.now
                guard left > .zero else { return false }
                guard waitWritable(milliseconds: Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))) else {
                    return false
                }
            }
            let n = bytes.withUnsafeBytes { all in
                systemWrite(descriptor, all.baseAddress! + (offset - bytes.startIndex), end - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    _ = waitWritable(milliseconds: deadline == nil ? 1000 : 1)
                    continue
                }
                return false  // the output is gone (a closed pipe): nothing more can be done
            }
            if n == 0 { return false }
            offset += n
        }
        return true
    }

    /// Whether the output became writable within `milliseconds`.
    private func waitWritable(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, milliseconds) == 1
    }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
