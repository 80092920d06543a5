#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QSSL
import QSSLWire

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
            connection = try TLSConnection.client(configuration: configuration, serverName: serverName, session: session,
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
                switch event {
                case .handshakeCompleted(let s):
                    summary = s
                    completedAt = now()
                case .sessionIssued(let s):
                    issued.append(s)
                case .applicationData(let bytes):
                    appReceived += bytes
                case .decisionNeeded(let decision):
                    // An asynchronous verifier or key: resolved here, timed as the client's work.
                    let c0 = threadCPUNanoseconds(), t0 = now()
                    let answer = await decision.resolve()
                    let comp = TraceComputation(name: "\(decision)", startMilliseconds: t0, wallMilliseconds: now() - t0,
                                                cpuMilliseconds: Double(threadCPUNanoseconds() - c0) / 1e6, isTotal: false)
                    decisions.append((connection.trace.count, comp))
                    pending += try connection.resume(with: answer)
                default:
                    break
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
                    failure = TraceFailure(stage: "reading the server's flight", message: "connection to \(run.target) failed after \(run.bytesRead) bytes: \(reason)", exitCode: 1)
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
                    failure = TraceFailure(stage: completedAt == nil ? "handshake" : "after the handshake",
                                           message: "handshake with \(run.target) failed: \(describe(error, address: run.target))",
                                           alertSent: direction == "sent" ? alertName : nil,
                                           alertReceived: direction == "received" ? alertName : nil,
                                           exitCode: error.code.certificateRejection != nil ? 2 : 1)
                    if let receivedAlert = error.code.receivedAlert { state.noteReceivedAlert(receivedAlert.name ?? "\(receivedAlert.rawValue)") }
                    state.noteNegotiated(version: connection.negotiatedVersion, suite: connection.negotiatedCipherSuite)
                    _ = flush()   // the alert
                    break readLoop
                }
                state.attribute(trace: connection.trace, from: before, recordIndex: state.receivedRecords.count)
                state.noteNegotiated(version: connection.negotiatedVersion, suite: connection.negotiatedCipherSuite)
                guard flush() else {
                    failure = TraceFailure(stage: "writing the client's flight",
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
                        failure = TraceFailure(stage: "after the handshake",
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
        state.finish(into: &run, trace: connection.trace, traceStart: { milliseconds($0 - origin) }, decisions: decisions,
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
            if fd < 0 { lastError = errno; continue }
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
                if soError != 0 { lastError = soError; r = -1 } else { r = 0 }
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
        return TraceTCPInfo(sendMSS: u32(16), receiveMSS: u32(20), rttMicroseconds: u32(68), rttVarianceMicroseconds: u32(72), sendCongestionWindow: u32(80),
                            minRTTMicroseconds: len >= 152 ? u32(148) : nil)
    }
}

/// The bytes of both directions, cut into records, and the core's messages laid over them.
struct WireState {
    var received: [UInt8] = []
    var receivedConsumed = 0
    var receivedRecords: [TraceRecord] = []
    var sentRecords: [TraceRecord] = []
    var sentBytes = 0
    /// Record index (per direction) each received core entry was attributed to.
    var entryRecord: [Int: Int] = [:]
    var receivedAlerts: [(name: String, record: Int)] = []
    /// From the ServerHello: 0x0304 for TLS 1.3; the suite for TLS 1.2's AEAD overhead.
    var negotiatedVersion: UInt16?
    var tls12Suite: UInt16?
    var serverChangeCipherSpecSeen = false
    var clientChangeCipherSpecSeen = false

    /// The next complete received record (header and payload), or nil.
    mutating func nextReceivedRecord(at t: Double) -> [UInt8]? {
        let available = received.count - receivedConsumed
        guard available >= 5 else { return nil }
        let base = receivedConsumed
        var length = Int(received[base + 3]) << 8 | Int(received[base + 4])
        // Not a TLS record (an HTTP answer, say): handed to the core at once, which refuses it
        // with its alert, instead of waiting for a "record" that never ends.
        let garbage = !(20...24).contains(received[base]) || received[base + 1] != 3 || length > (1 << 14) + 2048
        if garbage { length = available - 5 }
        guard available >= 5 + length else { return nil }
        let bytes = Array(received[base..<(base + 5 + length)])
        let type = bytes[0]
        if type == 20 { serverChangeCipherSpecSeen = true }
        let protected = isProtected(type: type, serverSide: true)
        receivedRecords.append(TraceRecord(direction: .serverToClient, index: receivedRecords.count + 1, contentType: type, payloadLength: length,
                                           wireOffset: base, milliseconds: t, isProtected: protected,
                                           overhead: protected ? overhead : 0))
        receivedConsumed += 5 + length
        return bytes
    }

    func partialRecordDescription() -> String? {
        let available = received.count - receivedConsumed
        guard available > 0 else { return nil }
        guard available >= 5 else { return "\(available) bytes of a record header were left" }
        let length = Int(received[receivedConsumed + 3]) << 8 | Int(received[receivedConsumed + 4])
        return "record \(receivedRecords.count + 1) was cut off: \(available - 5) of its \(length) bytes arrived"
    }

    private func isProtected(type: UInt8, serverSide: Bool) -> Bool {
        if type == 20 { return false }
        guard let v = negotiatedVersion else { return false }
        if v == 0x0304 { return type == 23 }   // TLS 1.3: everything after ServerHello is application_data outside
        return serverSide ? serverChangeCipherSpecSeen : clientChangeCipherSpecSeen
    }

    /// AEAD overhead of a protected record: tag and inner content type (TLS 1.3), tag and
    /// explicit nonce (TLS 1.2 AES-GCM) or tag alone (TLS 1.2 ChaCha20-Poly1305).
    private var overhead: Int {
        if negotiatedVersion == 0x0304 { return 17 }
        if let suite = tls12Suite, (suite & 0xFF00) == 0xCC00 { return 16 }
        return 24
    }

    /// The version and suite, from the core once it accepted the ServerHello (however the
    /// server fragmented it).
    mutating func noteNegotiated(version: ProtocolVersion?, suite: CipherSuite?) {
        guard negotiatedVersion == nil, let version else { return }
        negotiatedVersion = version.rawValue
        tls12Suite = version == .tls12 ? suite?.rawValue : nil
    }
    /// Each received record as the core opened it (inner content type, plaintext length), in order.
    var opened: [(contentType: UInt8, plaintextLength: Int)] = []

    /// Cuts what the client wrote into records (their headers are always in the clear).
    mutating func parseSent(_ bytes: [UInt8], at t: Double) {
        var i = 0
        while i + 5 <= bytes.count {
            let type = bytes[i]
            let length = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
            if type == 20 { clientChangeCipherSpecSeen = true }
            let protected = isProtected(type: type, serverSide: false)
            sentRecords.append(TraceRecord(direction: .clientToServer, index: sentRecords.count + 1, contentType: type, payloadLength: length,
                                           wireOffset: sentBytes + i, milliseconds: t, isProtected: protected, overhead: protected ? overhead : 0))
            if type == 21 && !protected && length == 2 && i + 7 <= bytes.count { sentAlertNames.append(alertName(bytes[i + 6])) }
            i += 5 + length
        }
        sentBytes += bytes.count
    }
    var sentAlertNames: [String] = []

    mutating func attribute(trace: [HandshakeTraceEntry], from start: Int, recordIndex: Int) {
        for i in start..<trace.count where trace[i].direction == .received && !trace[i].isComputation { entryRecord[i] = recordIndex }
    }

    mutating func noteReceivedAlert(_ name: String) { receivedAlerts.append((name, receivedRecords.count)) }

    /// Lays the core's messages over the records and segments, groups flights, accounts for
    /// every byte.
    func finish(into run: inout TraceRun, trace: [HandshakeTraceEntry], traceStart: (ContinuousClock.Instant) -> Double,
                decisions: [(afterEntry: Int, computation: TraceComputation)], completedAt: Double?) {
        // The received records as the core opened them: inner content type and plaintext
        // length, so padding and post-handshake records are attributed exactly.
        var receivedRecords = self.receivedRecords
        for k in receivedRecords.indices where k < opened.count {
            let o = opened[k]
            guard o.plaintextLength <= receivedRecords[k].payloadLength else { continue }
            receivedRecords[k].innerContentType = o.contentType
            receivedRecords[k].plaintextLength = o.plaintextLength
            receivedRecords[k].overhead = receivedRecords[k].payloadLength - o.plaintextLength
            receivedRecords[k].isProtected = receivedRecords[k].overhead > 0
        }
        let estimated = receivedRecords.filter { $0.innerContentType == nil }.count
        run.recordsEstimated = estimated
        run.records = sentRecords + receivedRecords
        /// What a record carried: the core's inner type when known, else inferred from the outside.
        func carried(_ r: TraceRecord) -> UInt8 {
            if let t = r.innerContentType { return t }
            if r.contentType == 23 && r.isProtected && negotiatedVersion == 0x0304 {
                return r.direction == .serverToClient && receivedAlerts.contains { $0.record == r.index } ? 21 : 22
            }
            return r.contentType
        }
        func plainLength(_ r: TraceRecord) -> Int { r.plaintextLength ?? max(0, r.payloadLength - r.overhead) }
        var messages: [TraceMessage] = []
        // Handshake plaintext laid over the records of each direction.
        func handshakeRecords(_ records: [TraceRecord]) -> [(record: TraceRecord, plainStart: Int, plainLength: Int, prefix: Int)] {
            var out: [(TraceRecord, Int, Int, Int)] = []
            var plain = 0
            for r in records where carried(r) == 22 {
                let length = plainLength(r)
                let prefix = r.isProtected && negotiatedVersion != 0x0304 && overhead == 24 ? 8 : 0
                out.append((r, plain, length, prefix))
                plain += length
            }
            return out
        }
        let layout: [TraceDirection: [(record: TraceRecord, plainStart: Int, plainLength: Int, prefix: Int)]] = [
            .clientToServer: handshakeRecords(sentRecords), .serverToClient: handshakeRecords(receivedRecords),
        ]
        var plainOffset: [TraceDirection: Int] = [.clientToServer: 0, .serverToClient: 0]
        func wire(_ direction: TraceDirection, plain: Int) -> (offset: Int, record: Int)? {
            guard let rs = layout[direction] else { return nil }
            for r in rs where plain >= r.plainStart && plain < r.plainStart + max(1, r.plainLength) {
                return (r.record.wireOffset + 5 + r.prefix + (plain - r.plainStart), r.record.index)
            }
            return nil
        }
        var ccsIndex: [TraceDirection: Int] = [.clientToServer: 0, .serverToClient: 0]
        for (i, e) in trace.enumerated() {
            if e.isComputation {
                let comp = TraceComputation(name: e.message, startMilliseconds: traceStart(e.instant), wallMilliseconds: Double(e.durationNanoseconds) / 1e6,
                                            cpuMilliseconds: e.cpuNanoseconds.map { Double($0) / 1e6 }, isTotal: e.message.hasPrefix("processing "))
                if let last = messages.lastIndex(where: { $0.direction == .serverToClient }) {
                    messages[last].computations.append(comp)
                }
                continue
            }
            let direction: TraceDirection = e.direction == .sent ? .clientToServer : .serverToClient
            var m = TraceMessage(direction: direction, name: e.message, size: e.length, milliseconds: traceStart(e.instant), firstByteMilliseconds: nil,
                                 records: [], wireStart: 0, wireEnd: 0, firstSegment: 0, lastSegment: 0, flight: 0, computations: [], isHandshake: true)
            if e.message == "ChangeCipherSpec" {
                m.isHandshake = false
                let records = (direction == .clientToServer ? sentRecords : receivedRecords).filter { $0.contentType == 20 }
                let k = ccsIndex[direction, default: 0]
                ccsIndex[direction] = k + 1
                if k < records.count {
                    m.records = [records[k].index]
                    m.wireStart = records[k].wireOffset + 5
                    m.wireEnd = m.wireStart + 1
                    if direction == .serverToClient { m.milliseconds = records[k].milliseconds }
                }
            } else {
                let start = plainOffset[direction, default: 0]
                plainOffset[direction] = start + e.length
                if let a = wire(direction, plain: start), let b = wire(direction, plain: start + e.length - 1) {
                    m.wireStart = a.offset
                    m.wireEnd = b.offset + 1
                    m.records = Array(a.record...b.record)
                }
                if direction == .serverToClient, let r = entryRecord[i], let rec = receivedRecords.first(where: { $0.index == r }) {
                    m.milliseconds = rec.milliseconds
                }
            }
            // Sent: when its bytes were written (messages are queued just before).
            if direction == .clientToServer, let w = run.writes.first(where: { Int($0[1]) + Int($0[2]) > m.wireStart }) { m.milliseconds = w[0] }
            if direction == .serverToClient, let firstRead = run.reads.first(where: { Int($0[1]) + Int($0[2]) > m.wireStart }) {
                m.firstByteMilliseconds = firstRead[0]
            }
            (m.firstSegment, m.lastSegment) = segmentRange(start: m.wireStart, end: m.wireEnd, mss: run.mss)
            messages.append(m)
        }
        // Decisions resolved by the tool: after the message whose processing paused.
        for d in decisions {
            let received = trace[..<min(d.afterEntry, trace.count)].filter { $0.direction == .received && !$0.isComputation }.count
            var seen = 0
            for k in messages.indices where messages[k].direction == .serverToClient {
                seen += 1
                if seen == received { messages[k].computations.append(d.computation); break }
            }
        }
        // The ClientHello's key generation.
        if let gen = run.clientKeyGenerationCPU, let k = messages.firstIndex(where: { $0.name == "ClientHello" }) {
            messages[k].computations.append(TraceComputation(name: "key share generation", startMilliseconds: run.tcpConnectMilliseconds ?? 0,
                                                             wallMilliseconds: gen, cpuMilliseconds: gen, isTotal: true))
        }
        // Alerts, as messages of their own.
        for r in sentRecords where r.contentType == 21 && !(r.isProtected && completedAt != nil) {
            let name = r.isProtected ? "Alert (encrypted)" : "Alert"
            var m = TraceMessage(direction: .clientToServer, name: name, size: r.payloadLength - r.overhead, milliseconds: r.milliseconds, firstByteMilliseconds: nil,
                                 records: [r.index], wireStart: r.wireOffset + 5, wireEnd: r.wireOffset + r.wireLength, firstSegment: 0, lastSegment: 0,
                                 flight: 0, computations: [], isHandshake: false)
            (m.firstSegment, m.lastSegment) = segmentRange(start: m.wireStart, end: m.wireEnd, mss: run.mss)
            messages.append(m)
        }
        for (k, r) in receivedRecords.enumerated() where carried(r) == 21 {
            let name = receivedAlerts.first { $0.record == k + 1 }.map { "Alert \($0.name)" } ?? "Alert"
            var m = TraceMessage(direction: .serverToClient, name: name, size: plainLength(r), milliseconds: r.milliseconds, firstByteMilliseconds: r.milliseconds,
                                 records: [r.index], wireStart: r.wireOffset + 5, wireEnd: r.wireOffset + r.wireLength, firstSegment: 0, lastSegment: 0,
                                 flight: 0, computations: [], isHandshake: false)
            (m.firstSegment, m.lastSegment) = segmentRange(start: m.wireStart, end: m.wireEnd, mss: run.mss)
            messages.append(m)
        }
        for k in messages.indices {
            if messages[k].name.hasPrefix("Alert"), messages[k].direction == .clientToServer, let first = sentAlertNames.first, messages[k].name == "Alert" {
                messages[k].name = "Alert \(first)"
            }
        }
        // Wire order within each direction, then time order overall.
        // The TLS 1.3 client's compatibility ChangeCipherSpec goes out right after the
        // ServerHello, while the rest of the server's flight may still be arriving: it belongs
        // with the client's next flight.
        var keys = messages.map(\.milliseconds)
        for k in messages.indices where messages[k].direction == .clientToServer && messages[k].name == "ChangeCipherSpec" && negotiatedVersion == 0x0304 {
            let later = messages.filter { $0.direction == .clientToServer && $0.name != "ChangeCipherSpec" && $0.wireStart > messages[k].wireStart }
            if let next = later.map(\.milliseconds).min() { keys[k] = next - 1e-6 }
        }
        messages = messages.indices.sorted { a, b in (keys[a], messages[a].wireStart) < (keys[b], messages[b].wireStart) }.map { messages[$0] }
        // Flights.
        var flights: [TraceFlight] = []
        for k in messages.indices {
            let m = messages[k]
            if flights.last?.direction != m.direction {
                flights.append(TraceFlight(index: flights.count + 1, direction: m.direction, messages: [], messageBytes: 0, wireBytes: 0, segments: 0,
                                           overInitialWindow: false, extraRoundTrips: 0, startMilliseconds: m.firstByteMilliseconds ?? m.milliseconds,
                                           endMilliseconds: m.milliseconds))
            }
            flights[flights.count - 1].messages.append(m.name)
            flights[flights.count - 1].messageBytes += m.size
            flights[flights.count - 1].endMilliseconds = max(flights[flights.count - 1].endMilliseconds, m.milliseconds)
            messages[k].flight = flights.count
        }
        for f in flights.indices {
            let records = Set(messages.filter { $0.flight == f + 1 }.flatMap(\.records))
            let pool = flights[f].direction == .clientToServer ? sentRecords : receivedRecords
            let spans = pool.filter { records.contains($0.index) }
            let start = spans.map(\.wireOffset).min() ?? 0
            let end = spans.map { $0.wireOffset + $0.wireLength }.max() ?? 0
            flights[f].wireBytes = end - start
            // Segments counted from the flight's own first byte: the server starts a flight on
            // a fresh segment once it has the client's answer.
            flights[f].segments = (flights[f].wireBytes + run.mss - 1) / run.mss
            flights[f].overInitialWindow = flights[f].wireBytes > run.initialWindowBytes
            flights[f].extraRoundTrips = extraRoundTrips(segments: flights[f].segments, window: run.initialWindowSegments)
            // Its messages' segments, numbered the same way: from the flight's first byte.
            for k in messages.indices where messages[k].flight == f + 1 {
                (messages[k].firstSegment, messages[k].lastSegment) = segmentRange(start: messages[k].wireStart - start, end: messages[k].wireEnd - start, mss: run.mss)
            }
        }
        run.messages = messages
        run.flights = flights
        // Round trips before the client could send data: server flights before completion.
        if let completedAt {
            run.handshakeRoundTrips = flights.filter { $0.direction == .serverToClient && $0.endMilliseconds <= completedAt + 0.001 }.count
        } else {
            run.handshakeRoundTrips = flights.filter { $0.direction == .serverToClient }.count
        }
        // Every byte read, accounted for.
        // AEAD overhead is the tag, inner type and explicit nonce; whatever else a protected
        // record held beyond its plaintext is padding (TLS 1.3, RFC 8446 §5.4).
        let nominal = self.overhead
        var acc: [String: Int] = ["record_headers": 5 * receivedRecords.count]
        acc["aead_overhead"] = receivedRecords.map { $0.isProtected ? min($0.overhead, nominal) : 0 }.reduce(0, +)
        acc["record_padding"] = receivedRecords.map { $0.isProtected ? max(0, $0.overhead - nominal) : 0 }.reduce(0, +)
        acc["handshake_messages"] = messages.filter { $0.direction == .serverToClient && $0.isHandshake }.map(\.size).reduce(0, +)
        acc["change_cipher_spec"] = receivedRecords.filter { carried($0) == 20 }.map(plainLength).reduce(0, +)
        acc["alerts"] = receivedRecords.filter { carried($0) == 21 }.map(plainLength).reduce(0, +)
        acc["application_data"] = receivedRecords.filter { carried($0) == 23 }.map(plainLength).reduce(0, +)
        let handshakePlain = layout[.serverToClient]?.map(\.plainLength).reduce(0, +) ?? 0
        let otherTypes = receivedRecords.filter { ![20, 21, 22, 23].contains(carried($0)) }.map(plainLength).reduce(0, +)
        acc["unattributed"] = max(0, handshakePlain - acc["handshake_messages"]!) + otherTypes
        acc["application_data_and_unattributed"] = acc["application_data"]! + acc["unattributed"]!
        acc["incomplete_record"] = received.count - receivedConsumed
        acc["total_read"] = received.count
        run.wireAccounting = acc
    }

    private func alertName(_ code: UInt8) -> String {
        let names: [UInt8: String] = [0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
                                      42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
                                      46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
                                      51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
                                      86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension", 110: "unsupported_extension",
                                      112: "unrecognized_name", 116: "certificate_required", 120: "no_application_protocol"]
        return names[code] ?? "alert \(code)"
    }
}
