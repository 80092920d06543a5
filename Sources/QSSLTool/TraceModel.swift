import Foundation
import QSSL

// `qssl trace`: what one handshake looked like from the client's side — its messages, the
// records and (computed) TCP segments they travelled in, the client's work on each, and the
// timing model built on them. The recorder (TraceRecorder.swift) fills these in; the
// renderers (TraceRender.swift, TraceHTML.swift) only read them. `qssl demo` records its
// handshakes with the same recorder and prints them through `demoTraceLines(run:…)` here.

enum TraceDirection: String, Codable {
    case clientToServer = "C->S"
    case serverToClient = "S->C"
}

/// Work the client did on receipt of a message (or to build one), from the core's trace.
struct TraceComputation: Codable {
    var name: String
    var startMilliseconds: Double
    var wallMilliseconds: Double
    var cpuMilliseconds: Double?
    /// The whole of a message's processing ("processing Certificate"), its steps listed beside.
    var isTotal: Bool
}

/// One TLS record as it crossed the wire.
struct TraceRecord: Codable {
    var direction: TraceDirection
    /// 1-based, per direction.
    var index: Int
    var contentType: UInt8
    var payloadLength: Int
    /// Offset of its header in the direction's byte stream.
    var wireOffset: Int
    /// Milliseconds since the start when its last byte was read (or written).
    var milliseconds: Double
    /// Encrypted (TLS 1.3 handshake records are application_data outside).
    var isProtected: Bool
    /// AEAD overhead counted for it (tag, explicit nonce, inner content type; and padding).
    var overhead: Int
    /// Received records, as the core opened them: the inner content type and plaintext length
    /// (nil when the core did not open the record: the sizes are then inferred).
    var innerContentType: UInt8? = nil
    var plaintextLength: Int? = nil
    var wireLength: Int { 5 + payloadLength }
    var typeName: String {
        switch contentType {
        case 20: return "change_cipher_spec"
        case 21: return "alert"
        case 22: return "handshake"
        case 23: return "application_data"
        default: return "type \(contentType)"
        }
    }
}

/// One handshake message (or ChangeCipherSpec, or alert), with where and when it travelled.
struct TraceMessage: Codable {
    var direction: TraceDirection
    var name: String
    /// Bytes of the message itself (handshake header included), as the core counted them.
    var size: Int
    /// Milliseconds since the start: queued/written (sent) or its last byte read (received).
    var milliseconds: Double
    /// The first byte's arrival, for received messages.
    var firstByteMilliseconds: Double?
    var records: [Int]
    var wireStart: Int
    var wireEnd: Int
    /// 1-based TCP segments of `TraceRun.mss` bytes the message's bytes fall in (computed),
    /// counted from its flight's first byte, as `TraceFlight.segments` is.
    var firstSegment: Int
    var lastSegment: Int
    /// 1-based flight: consecutive messages in one direction.
    var flight: Int
    var computations: [TraceComputation]
    /// Alerts and ChangeCipherSpec are not handshake messages.
    var isHandshake: Bool

    var cpuMilliseconds: Double { computations.filter(\.isTotal).compactMap(\.cpuMilliseconds).reduce(0, +) }
    var arrow: String { direction == .clientToServer ? "Client ──▶ Server" : "Client ◀── Server" }
}

/// A flight: what one side sent before waiting for the other.
struct TraceFlight: Codable {
    var index: Int
    var direction: TraceDirection
    var messages: [String]
    var messageBytes: Int
    /// Bytes on the wire: records with their headers and AEAD overhead.
    var wireBytes: Int
    var segments: Int
    /// Segments past the initial congestion window, and the round trips they cost (slow start
    /// from 10 segments, doubling each round trip).
    var overInitialWindow: Bool
    var extraRoundTrips: Int
    var startMilliseconds: Double
    var endMilliseconds: Double
}

/// What the socket said about the connection (Linux TCP_INFO).
struct TraceTCPInfo: Codable {
    var sendMSS: Int
    var receiveMSS: Int
    var rttMicroseconds: Int
    var rttVarianceMicroseconds: Int
    var sendCongestionWindow: Int
    /// tcpi_min_rtt: the smallest RTT the socket measured (Linux 4.6+).
    var minRTTMicroseconds: Int? = nil
}

/// Why a trace ended early.
struct TraceFailure: Codable {
    var stage: String
    var message: String
    var alertSent: String?
    var alertReceived: String?
    var exitCode: Int32
}

/// One traced handshake.
struct TraceRun: Codable {
    var target: String
    var serverName: String
    var label: String
    var startedAt: Date
    var tcpConnectMilliseconds: Double?
    var handshakeMilliseconds: Double?
    var version: String?
    var cipherSuite: String?
    var group: String?
    var signatureScheme: String?
    var resumed = false
    var helloRetryRequest = false
    var clientCertificateSent = false
    var peerCertificates: [String] = []
    var tcpAtConnect: TraceTCPInfo?
    var tcpAtEnd: TraceTCPInfo?
    /// The MSS segments are computed with, and where it came from.
    var mss: Int = 1460
    var mssSource = ""
    var initialWindowSegments = 10
    var messages: [TraceMessage] = []
    var records: [TraceRecord] = []
    var flights: [TraceFlight] = []
    var bytesRead = 0
    var bytesWritten = 0
    var reads: [[Double]] = []  // [ms, offset, count]
    var writes: [[Double]] = []
    /// Handshake bytes, record headers, AEAD overhead, CCS, alerts, application data, incomplete tail.
    var wireAccounting: [String: Int] = [:]
    /// Received records whose content could not be attributed exactly (the core did not open them).
    var recordsEstimated = 0
    var clientKeyGenerationCPU: Double?
    var failure: TraceFailure?
    /// Round trips the client waited for before it could send application data.
    var handshakeRoundTrips = 0
    var sessionIssued = false

    var initialWindowBytes: Int { initialWindowSegments * mss }
    var succeeded: Bool { failure == nil && handshakeMilliseconds != nil }
    /// CPU the client spent: building the ClientHello (key shares) and processing what came.
    var clientCPUMilliseconds: Double {
        (clientKeyGenerationCPU ?? 0) + messages.filter { $0.direction == .serverToClient && !isPostHandshake($0) }.map(\.cpuMilliseconds).reduce(0, +)
    }
    /// The network round trip the server time is measured against: tcpi_min_rtt, else the TCP
    /// connect time (one round trip).
    var baseRTTMilliseconds: Double {
        if let m = tcpAtEnd?.minRTTMicroseconds ?? tcpAtConnect?.minRTTMicroseconds, m > 0 { return Double(m) / 1000 }
        return tcpConnectMilliseconds ?? 0
    }
    /// Time the server took for each of its flights: from the client's last byte before it to
    /// the flight's *first* byte, less one RTT (on loopback, about the server's CPU). Not to
    /// its last byte: a flight past the initial window would count its extra round trip here
    /// and again in the timing model.
    var serverMilliseconds: Double {
        let rtt = baseRTTMilliseconds
        var total = 0.0
        for (i, f) in flights.enumerated() where f.direction == .serverToClient && i > 0 && !f.messages.allSatisfy({ $0 == "NewSessionTicket" }) {
            let before = flights[i - 1]
            total += max(0, f.startMilliseconds - before.endMilliseconds - rtt)
        }
        return total
    }
    /// The message of a flight over the initial window after which the window is used up (its
    /// last segment is past it; else the flight's last message): every renderer draws the
    /// initial-window line right after it.
    func initialWindowMessage(_ f: TraceFlight) -> Int? {
        guard f.overInitialWindow else { return nil }
        let inFlight = messages.indices.filter { messages[$0].flight == f.index }
        return inFlight.first { messages[$0].lastSegment > initialWindowSegments } ?? inFlight.last
    }
    func isPostHandshake(_ m: TraceMessage) -> Bool {
        guard let done = handshakeMilliseconds else { return false }
        return m.direction == .serverToClient && m.milliseconds > done + (tcpConnectMilliseconds ?? 0) && m.name == "NewSessionTicket" && version == "TLSv1.3"
    }
}

/// The seed's §1.2 timing table and the measured handshakes of each kind beside it.
struct TraceTimingModel: Codable {
    struct Kind: Codable {
        var label: String
        var seedMilliseconds: Double
        var seedNote: String
        var run: String?  // the run's label, nil when it could not be measured
        var unavailable: String?
        var roundTrips: Int
        var extraRoundTrips: Int
        var clientCPU: Double
        var serverTime: Double
        var largestServerFlight: Int
        /// Total at each --rtt: (round trips + extra) × RTT + CPU; with the TCP handshake, +1 RTT.
        func total(rtt: Double) -> Double { Double(roundTrips + extraRoundTrips) * rtt + clientCPU + serverTime }
    }
    var rtts: [Double]
    var kinds: [Kind]
    var pqcStatement: String
}

// MARK: - Shared per-message lines (`qssl trace` text and `qssl demo`)

/// The per-message lines: time, direction, name, size, then whatever `detail` adds.
func traceLines(_ messages: [(ms: Double, direction: TraceDirection, name: String, size: Int, detail: String)]) -> [String] {
    var lines = ["     time     direction             message                     size"]
    for m in messages {
        let arrow = m.direction == .clientToServer ? "Client ──▶ Server" : "Client ◀── Server"
        var line =
            String(format: "%8.3f ms  ", m.ms) + arrow + "  " + m.name.padding(toLength: 24, withPad: " ", startingAt: 0)
            + String(format: " %7d B", m.size)
        if !m.detail.isEmpty { line += "   " + m.detail }
        lines.append(line)
    }
    return lines
}

/// `qssl demo`: one in-process handshake as the recorder saw it from the client (`run`, whose
/// time 0 is `origin`), with the server's own trace of the same connection: each message once,
/// when it was sent, with when the other side began processing it, and the record, segments and
/// flight it travelled in. Times are from the TCP connection.
func demoTraceLines(run: TraceRun, origin: ContinuousClock.Instant, server: [HandshakeTraceEntry]) -> [String] {
    let base = run.tcpConnectMilliseconds ?? 0
    func ms(_ i: ContinuousClock.Instant) -> Double { milliseconds(i - origin) - base }
    let server = server.filter { !$0.isComputation }
    var serverSent: [String: [HandshakeTraceEntry]] = [:]
    var serverReceived: [String: [HandshakeTraceEntry]] = [:]
    for e in server {
        if e.direction == .sent { serverSent[e.message, default: []].append(e) } else { serverReceived[e.message, default: []].append(e) }
    }
    var used: [String: Int] = [:]
    var rows: [(ms: Double, direction: TraceDirection, name: String, size: Int, detail: String)] = []
    for m in run.messages {
        // The server traces its HelloRetryRequest as the ServerHello it is.
        let name = m.name == "HelloRetryRequest" ? "ServerHello" : m.name
        let key = "\(m.direction.rawValue) \(name)"
        let k = used[key, default: 0]
        used[key] = k + 1
        func nth(_ table: [String: [HandshakeTraceEntry]]) -> HandshakeTraceEntry? { table[name].flatMap { k < $0.count ? $0[k] : nil } }
        let sent: Double
        let processed: Double?
        if m.direction == .clientToServer {
            sent = m.milliseconds - base
            processed = nth(serverReceived).map { ms($0.instant) }
        } else {
            sent = nth(serverSent).map { ms($0.instant) } ?? ((m.firstByteMilliseconds ?? m.milliseconds) - base)
            processed = (m.computations.first(where: \.isTotal)?.startMilliseconds ?? m.milliseconds) - base
        }
        var detail = processed.map { String(format: "processed at %8.3f ms", $0) } ?? String(repeating: " ", count: 24)
        detail += "  flight \(m.flight), segment\(m.firstSegment == m.lastSegment ? "" : "s") \(TraceRender.segmentList(m))"
        rows.append((sent, m.direction, m.name, m.size, detail))
    }
    return traceLines(rows.enumerated().sorted { ($0.element.ms, $0.offset) < ($1.element.ms, $1.offset) }.map(\.element))
}

/// The segments a byte range falls in, 1-based.
func segmentRange(start: Int, end: Int, mss: Int) -> (Int, Int) {
    guard mss > 0 else { return (1, 1) }
    return (start / mss + 1, max(start, end - 1) / mss + 1)
}

/// Round trips a flight of `segments` costs beyond the first, in slow start from an initial
/// window of `window` segments that doubles each round trip.
func extraRoundTrips(segments: Int, window: Int) -> Int {
    var sent = window
    var cwnd = window
    var extra = 0
    while sent < segments {
        cwnd *= 2
        sent += cwnd
        extra += 1
    }
    return extra
}

func formatBytes(_ n: Int) -> String {
    let f = NumberFormatter()
    f.numberStyle = .decimal
    f.groupingSeparator = ","
    return f.string(from: NSNumber(value: n)) ?? "\(n)"
}

func formatMS(_ v: Double?, digits: Int = 2) -> String {
    guard let v else { return "-" }
    return String(format: "%.\(digits)f", v)
}

/// Text from the server (certificate names, alert text, error messages quoting them), made safe
/// for a terminal, Mermaid and HTML: C0 and C1 controls and bidi overrides/isolates dropped,
/// capped at `limit` characters. (Mermaid and HTML escaping come on top, in their renderers.)
func sanitizeServerText(_ s: String, limit: Int = 200) -> String {
    var out = String.UnicodeScalarView()
    var count = 0
    var truncated = false
    for u in s.unicodeScalars {
        let v = u.value
        if v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F || v == 0x061C
        {
            if v == 0x0A || v == 0x09 || v == 0x0D {
                out.append(" ")
                count += 1
            }
            continue
        }
        if count >= limit {
            truncated = true
            break
        }
        out.append(u)
        count += 1
    }
    return String(out) + (truncated ? "…" : "")
}
