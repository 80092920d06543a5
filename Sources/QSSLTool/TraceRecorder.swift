import Foundation
import QSSL
import QSSLWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// TraceRecorder: drives a traced client handshake over a blocking socket.

/// Thread CPU time, for the computations in a trace.
@Sendable func threadCPUNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Drives one client handshake over a plain blocking socket — the core is sans-I/O, so every
/// byte read and written, and every record, is seen here — and records it as a `TraceRun`.
/// `qssl trace` runs it against a server; `qssl demo` against its own loopback server, with
/// `applicationData` echoed back after the handshake (one code path for both).
struct TraceRecorder {
    var host: String
    var port: Int
    var serverName: String
    var configuration: ClientConfiguration
    var session: TLSSession?
    var label: String
    /// MSS for the segment computation; nil: the socket's, or 1460 on loopback.
    var mss: Int?
    var timeout: Double = 10
    /// How long to keep reading after a TLS 1.3 handshake for NewSessionTicket.
    var ticketWait: Double = 0.3
    /// The session store's key for this server (default: HOST:PORT).
    var sessionKey: String?
    /// Sent once the handshake is complete; the recording then lasts until as many bytes came
    /// back (an echo server: `qssl demo`).
    var applicationData: [UInt8]?
    /// Stop as soon as the server issued a session (and any echo came back) instead of
    /// waiting out `ticketWait`.
    var stopOnceSessionIssued = false

    /// The handshake's outcome, as the core reported it.
    private(set) var summary: HandshakeSummary?
    /// The application data the server sent.
    private(set) var received: [UInt8] = []
    /// The clock's reading at the run's time 0 (to place other traces of the same process on it).
    private(set) var origin = ContinuousClock.now

    /// The sessions the server issued (the last one is used to trace a resumption).
    private(set) var sessions: [TLSSession] = []

    mutating func run() async -> TraceRun {
        let (host, port, serverName, configuration, session, timeout, ticketWait, mss) =
            (self.host, self.port, self.serverName, self.configuration, self.session, self.timeout, self.ticketWait, self.mss)
        let (applicationData, stopOnceSessionIssued, sessionKey) = (self.applicationData, self.stopOnceSessionIssued, self.sessionKey)
        var issued: [TLSSession] = []
        var appReceived: [UInt8] = []
        var summary: HandshakeSummary?
        defer {
            sessions = issued
            self.summary = summary
            received = appReceived
        }
        var run = TraceRun(target: hostPort(host, port), serverName: serverName, label: label, startedAt: Date())
        let origin = ContinuousClock.now
        self.origin = origin
        func now() -> Double { milliseconds(ContinuousClock.now - origin) }

        // TCP
        let fd: Int32
        do {
            fd = try Self.connect(host: host, port: port, timeout: timeout)
        } catch let f as Failure {
            run.failure = TraceFailure(stage: "TCP connect", message: f.message, exitCode: 1)
            return run
        } catch {
            run.failure = TraceFailure(stage: "TCP connect", message: describe(error, address: run.target), exitCode: 1)
            return run
        }
        defer { close(fd) }
        run.tcpConnectMilliseconds = now()
        run.tcpAtConnect = Self.tcpInfo(fd)
        if let mss {
            run.mss = mss
            run.mssSource = "--mss \(mss)"
        } else if let info = run.tcpAtConnect, info.receiveMSS > 0 {
            let measured = max(info.receiveMSS, info.sendMSS)
            if measured > 1460 {
                run.mss = 1460
                run.mssSource = "Ethernet MSS 1460 assumed: the socket's MSS is \(measured) (loopback or jumbo frames); --mss to change"
            } else {
                run.mss = measured
                run.mssSource = "the socket's MSS (TCP_INFO)"
            }
        } else {
            run.mss = 1460
            run.mssSource = "Ethernet MSS 1460 assumed (no TCP_INFO)"
        }

        // TLS
        let connection: TLSConnection
        let cpu0 = threadCPUNanoseconds()
        do {
            connection = try TLSConnection.client(
                configuration: configuration, serverName: serverName, session: session,
                sessionKey: sessionKey ?? run.target, recordTrace: true)
        } catch {
            run.failure = TraceFailure(stage: "ClientHello", message: describe(error), exitCode: 64)
            return run
        }
        run.clientKeyGenerationCPU = Double(threadCPUNanoseconds() - cpu0) / 1e6
        connection.traceCPUClock = threadCPUNanoseconds

        var state = WireState()
        var applicationDataSent = false
        var completedAt: Double?
        var decisions: [(afterEntry: Int, computation: TraceComputation)] = []
        var failure: TraceFailure?
        var postHandshakeDeadline: Double?

        // A write that failed (the server closed or reset the connection): nothing more is written.
        var writeError: Int32?
        // The server closed or reset the connection: no close_notify is written to it.
        var peerClosed = false
        func flush() -> Bool {
            guard writeError == nil else { return false }
            let out = connection.takeOutput()
            guard !out.isEmpty else { return true }
            let t = now()
            state.parseSent(out, at: t)
            run.writes.append([t, Double(run.bytesWritten), Double(out.count)])
            run.bytesWritten += out.count
            var offset = 0
            while offset < out.count {
                // MSG_NOSIGNAL: a server that closed early is an EPIPE here, not a SIGPIPE that kills the trace.
                let n = out[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    writeError = n < 0 ? errno : EPIPE
                    return false
                }
                offset += n
            }
            return true
        }

        func handle(_ events: [TLSEvent]) async throws(TLSError) {
            var pending = events
            while !pending.isEmpty {
                let event = pending.removeFirst()
                if let s = event.handshakeSummary {
                    summary = s
                    completedAt = now()
                } else if let s = event.issuedSession {
                    issued.append(s)
                } else if let bytes = event.applicationData {
                    appReceived += bytes
                } else if let decision = event.decision {
                    // An asynchronous verifier or key: resolved here, timed as the client's work.
                    let c0 = threadCPUNanoseconds()
                    let t0 = now()
                    let answer = await decision.resolve()
                    let comp = TraceComputation(
                        name: "\(decision)", startMilliseconds: t0, wallMilliseconds: now() - t0,
                        cpuMilliseconds: Double(threadCPUNanoseconds() - c0) / 1e6, isTotal: false)
                    decisions.append((connection.trace.count, comp))
                    pending += try connection.resume(with: answer)
                }
            }
        }

        guard flush() else {
            run.failure = TraceFailure(stage: "ClientHello", message: "cannot write to \(run.target): \(ioReason(writeError ?? EPIPE))", exitCode: 1)
            return run
        }

        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        readLoop: while true {
            let deadline = postHandshakeDeadline ?? ((run.tcpConnectMilliseconds ?? 0) + timeout * 1000)
            let remaining = deadline - now()
            if remaining <= 0 {
                if postHandshakeDeadline != nil { break }
                failure = TraceFailure(stage: "waiting for the server", message: "no answer within \(timeout) s (\(run.bytesRead) bytes read)", exitCode: 1)
                break
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                peerClosed = true
                let reason = ioReason(errno)
                if completedAt == nil {
                    failure = TraceFailure(
                        stage: "reading the server's flight", message: "connection to \(run.target) failed after \(run.bytesRead) bytes: \(reason)", exitCode: 1
                    )
                }
                break
            }
            if n == 0 {
                peerClosed = true
                if completedAt == nil {
                    var message = "the server closed the connection after \(run.bytesRead) bytes, before the handshake completed"
                    if let partial = state.partialRecordDescription() { message += "; \(partial)" }
                    failure = TraceFailure(stage: "reading the server's flight", message: message, exitCode: 1)
                }
                break
            }
            let t = now()
            run.reads.append([t, Double(run.bytesRead), Double(n)])
            run.bytesRead += n
            state.received.append(contentsOf: buffer[0..<n])
            // One record at a time, so that each message is attributed to its record.
            while let record = state.nextReceivedRecord(at: t) {
                let before = connection.trace.count
                do throws(TLSError) {
                    let events = try connection.receive(record)
                    try await handle(events)
                } catch {
                    state.attribute(trace: connection.trace, from: before, recordIndex: state.receivedRecords.count)
                    let (alertName, direction) = alertText(error)
                    failure = TraceFailure(
                        stage: completedAt == nil ? "handshake" : "after the handshake",
                        message: "handshake with \(run.target) failed: \(describe(error, address: run.target))",
                        alertSent: direction == "sent" ? alertName : nil,
                        alertReceived: direction == "received" ? alertName : nil,
                        exitCode: error.code.certificateRejection != nil ? 2 : 1)
                    if let receivedAlert = error.code.receivedAlert { state.noteReceivedAlert(receivedAlert.name ?? "\(receivedAlert.rawValue)") }
                    state.noteNegotiated(version: connection.negotiatedVersion, suite: connection.negotiatedCipherSuite)
                    _ = flush()  // the alert
                    break readLoop
                }
                state.attribute(trace: connection.trace, from: before, recordIndex: state.receivedRecords.count)
                state.noteNegotiated(version: connection.negotiatedVersion, suite: connection.negotiatedCipherSuite)
                guard flush() else {
                    failure = TraceFailure(
                        stage: "writing the client's flight",
                        message: "cannot write to \(run.target) after \(run.bytesRead) bytes read: \(ioReason(writeError ?? EPIPE))", exitCode: 1)
                    break readLoop
                }
            }
            if completedAt != nil {
                if let data = applicationData, !applicationDataSent {
                    applicationDataSent = true
                    do throws(TLSError) {
                        try connection.send(data)
                    } catch {
                        failure = TraceFailure(stage: "after the handshake", message: "cannot send application data: \(describe(error))", exitCode: 1)
                        break readLoop
                    }
                    guard flush() else {
                        failure = TraceFailure(
                            stage: "after the handshake",
                            message: "cannot write to \(run.target): \(ioReason(writeError ?? EPIPE))", exitCode: 1)
                        break readLoop
                    }
                }
                // Any echo first; then the sessions.
                if appReceived.count >= applicationData?.count ?? 0 {
                    if stopOnceSessionIssued && !issued.isEmpty { break }
                    if postHandshakeDeadline == nil {
                        // TLS 1.3 tickets follow the handshake: read a moment longer (TLS 1.2: done).
                        if summary?.version == .tls13 && ticketWait > 0 {
                            postHandshakeDeadline = now() + ticketWait * 1000
                        } else {
                            break
                        }
                    }
                }
            }
        }
        if failure == nil && writeError == nil && !peerClosed {
            connection.close()
            _ = flush()
            shutdown(fd, Int32(SHUT_WR))
        }
        run.tcpAtEnd = Self.tcpInfo(fd)
        // Failure text quotes the server (certificate names, alerts): made safe once, here.
        if var f = failure {
            f.message = sanitizeServerText(f.message, limit: 600)
            f.alertSent = f.alertSent.map { sanitizeServerText($0) }
            f.alertReceived = f.alertReceived.map { sanitizeServerText($0) }
            failure = f
        }
        run.failure = failure
        if let summary, let completedAt {
            run.handshakeMilliseconds = completedAt - (run.tcpConnectMilliseconds ?? 0)
            run.version = summary.version.description
            run.cipherSuite = summary.cipherSuite.description
            run.group = summary.group.description
            run.signatureScheme = summary.peerSignatureScheme?.description
            run.resumed = summary.resumed
            run.helloRetryRequest = summary.helloRetryRequest
            run.clientCertificateSent = summary.clientCertificateSent
            run.peerCertificates = subjects(summary.peerCertificates).map { sanitizeServerText($0) }
        } else if let v = state.negotiatedVersion {
            run.version = v == 0x0304 ? "TLSv1.3" : "TLSv1.2"
        }
        run.sessionIssued = !issued.isEmpty
        state.opened = connection.tracedReceivedRecords
        state.finish(
            into: &run, trace: connection.trace, traceStart: { milliseconds($0 - origin) }, decisions: decisions,
            completedAt: completedAt)
        return run
    }

    // MARK: - Sockets

    static func connect(host: String, port: Int, timeout: Double) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(message: "cannot resolve host \(host)\(rc == 0 ? "" : ": " + String(cString: gai_strerror(rc)))", code: 1)
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = ECONNREFUSED
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 {
                lastError = errno
                continue
            }
            let flags = fcntl(fd, F_GETFL, 0)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var r = Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen)
            if r < 0 && errno == EINPROGRESS {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, Int32(timeout * 1000))
                if ready == 0 {
                    close(fd)
                    throw Failure(message: "cannot connect to \(hostPort(host, port)): timed out after \(timeout) s", code: 1)
                }
                var soError: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                if soError != 0 {
                    lastError = soError
                    r = -1
                } else {
                    r = 0
                }
            } else if r != 0 {
                lastError = errno
            }
            if r != 0 {
                close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY */, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw Failure(message: "cannot connect to \(hostPort(host, port)): \(ioReason(lastError))", code: 1)
    }

    /// Linux `struct tcp_info`, read by offset (stable since 2.6).
    static func tcpInfo(_ fd: Int32) -> TraceTCPInfo? {
        var raw = [UInt8](repeating: 0, count: 256)
        var len = socklen_t(raw.count)
        let rc = raw.withUnsafeMutableBytes { getsockopt(fd, Int32(IPPROTO_TCP), 11 /* TCP_INFO */, $0.baseAddress, &len) }
        guard rc == 0, len >= 92 else { return nil }
        func u32(_ offset: Int) -> Int {
            Int(UInt32(raw[offset]) | UInt32(raw[offset + 1]) << 8 | UInt32(raw[offset + 2]) << 16 | UInt32(raw[offset + 3]) << 24)
        }
        return TraceTCPInfo(
            sendMSS: u32(16), receiveMSS: u32(20), rttMicroseconds: u32(68), rttVarianceMicroseconds: u32(72), sendCongestionWindow: u32(80),
            minRTTMicroseconds: len >= 152 ? u32(148) : nil)
    }
}
