import Foundation

/// Text, Mermaid and JSON renderings of a `TraceRun` (HTML: TraceHTML.swift).
enum TraceRender {
    static func arrowName(_ d: TraceDirection) -> String { d == .clientToServer ? "C→S" : "S→C" }

    static func headline(_ run: TraceRun) -> String {
        var parts = ["qssl trace \(run.target) (server name \(run.serverName))"]
        if let v = run.version {
            var what = [v]
            if let s = run.cipherSuite { what.append(s) }
            if let g = run.group { what.append(g) }
            if let s = run.signatureScheme { what.append("signed with \(s)") }
            what.append(run.resumed ? "resumed" : "full handshake")
            if run.helloRetryRequest { what.append("after a HelloRetryRequest") }
            if run.clientCertificateSent { what.append("client certificate sent") }
            parts.append(what.joined(separator: ", "))
        }
        return parts.joined(separator: " — ")
    }

    static func tcpLine(_ run: TraceRun) -> String {
        var line = "TCP: "
        if let c = run.tcpConnectMilliseconds { line += String(format: "connected in %.3f ms", c) } else { line += "not connected" }
        if let i = run.tcpAtEnd ?? run.tcpAtConnect {
            line += String(
                format: "; TCP_INFO: MSS %d sent / %d received, RTT %.3f ms (±%.3f), congestion window %d segments", i.sendMSS, i.receiveMSS,
                Double(i.rttMicroseconds) / 1000, Double(i.rttVarianceMicroseconds) / 1000, i.sendCongestionWindow)
        }
        return line
    }

    static func segmentNote(_ run: TraceRun) -> String {
        "Segments are computed from the MSS (\(formatBytes(run.mss)) bytes: \(run.mssSource)): the client sees reads, not segments. "
            + "Initial window: \(run.initialWindowSegments) × MSS = \(formatBytes(run.initialWindowBytes)) bytes."
    }

    static func recordList(_ m: TraceMessage) -> String {
        guard let first = m.records.first else { return "-" }
        let p = m.direction == .clientToServer ? "C" : "S"
        return m.records.count == 1 ? "\(p)\(first)" : "\(p)\(first)–\(p)\(m.records.last!)"
    }

    static func segmentList(_ m: TraceMessage) -> String {
        guard m.firstSegment > 0 else { return "-" }
        return m.firstSegment == m.lastSegment ? "\(m.firstSegment)" : "\(m.firstSegment)–\(m.lastSegment)"
    }

    static func computationText(_ c: TraceComputation) -> String {
        let cpu = c.cpuMilliseconds.map { String(format: "%.3f ms CPU", $0) } ?? String(format: "%.3f ms", c.wallMilliseconds)
        return "\(c.name): \(cpu)"
    }

    // MARK: Text

    static func text(_ run: TraceRun, model: TraceTimingModel?) -> String {
        var lines = [headline(run), tcpLine(run), segmentNote(run), ""]
        var rows: [(ms: Double, direction: TraceDirection, name: String, size: Int, detail: String)] = []
        var sub: [Int: [String]] = [:]
        for (i, m) in run.messages.enumerated() {
            var detail = "records \(recordList(m)), segments \(segmentList(m)), flight \(m.flight)"
            if let total = m.computations.first(where: \.isTotal), m.direction == .serverToClient {
                detail += String(format: "; client work %.3f ms CPU", total.cpuMilliseconds ?? total.wallMilliseconds)
            } else if let gen = m.computations.first(where: \.isTotal) {
                detail += String(format: "; built with %.3f ms CPU (key shares)", gen.cpuMilliseconds ?? gen.wallMilliseconds)
            }
            rows.append((m.milliseconds, m.direction, m.name, m.size, detail))
            sub[i] = m.computations.filter { !$0.isTotal }.map { "                         · " + computationText($0) }
        }
        let body = traceLines(rows)
        lines.append(body[0] + "   where")
        // The initial-window line after the message that uses the window up, as in the
        // Mermaid output and the HTML report.
        let windowAfter = Set(run.flights.compactMap { run.initialWindowMessage($0) })
        for (i, line) in body.dropFirst().enumerated() {
            lines.append(line)
            lines += sub[i] ?? []
            if windowAfter.contains(i) {
                lines.append(
                    "                         ── initial window (\(run.initialWindowSegments) × MSS = \(formatBytes(run.initialWindowBytes)) B) used up: "
                        + "the rest of this flight waits for the client's ACKs ──")
            }
        }
        if let f = run.failure {
            lines.append("")
            var line = "✗ \(f.stage): \(f.message)"
            if let a = f.alertSent { line += " — alert \(a) sent" }
            if let a = f.alertReceived { line += " — alert \(a) received" }
            lines.append(line)
        } else if let hs = run.handshakeMilliseconds {
            lines.append("")
            lines.append(
                String(
                    format: "✓ Handshake complete %.3f ms after the TCP connection; %d round trip%@ before the client could send data.",
                    hs, run.handshakeRoundTrips, run.handshakeRoundTrips == 1 ? "" : "s"))
        }
        lines.append("")
        lines += flightLines(run)
        lines.append("")
        lines.append(accountingLine(run))
        if let model {
            lines.append("")
            lines += modelLines(model)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func flightLines(_ run: TraceRun) -> [String] {
        var lines = [
            "Flights (initial window \(run.initialWindowSegments) × \(formatBytes(run.mss)) = \(formatBytes(run.initialWindowBytes)) bytes):",
            "   #  dir  message B    wire B  segments  messages"
        ]
        for f in run.flights {
            func pad(_ t: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - t.count)) + t }
            var line =
                "  " + pad("\(f.index)", 2) + "  " + arrowName(f.direction) + " " + pad(formatBytes(f.messageBytes), 9) + " " + pad(formatBytes(f.wireBytes), 9)
                + "  " + pad("\(f.segments)", 8) + "  "
            line += f.messages.joined(separator: ", ")
            lines.append(line)
            if f.overInitialWindow {
                lines.append(
                    "      ── over the initial window by \(formatBytes(f.wireBytes - run.initialWindowBytes)) bytes: +\(f.extraRoundTrips) round trip\(f.extraRoundTrips == 1 ? "" : "s") ──"
                )
            }
        }
        return lines
    }

    static func accountingLine(_ run: TraceRun) -> String {
        let a = run.wireAccounting
        func v(_ k: String) -> String { formatBytes(a[k] ?? 0) }
        var line =
            "Bytes read: \(v("total_read")) = handshake messages \(v("handshake_messages")) + record headers \(v("record_headers")) (\(run.records.filter { $0.direction == .serverToClient }.count) records)"
            + " + AEAD overhead \(v("aead_overhead")) + ChangeCipherSpec \(v("change_cipher_spec")) + alerts \(v("alerts"))"
        if (a["record_padding"] ?? 0) > 0 { line += " + record padding \(v("record_padding"))" }
        if (a["application_data"] ?? 0) > 0 { line += " + application data \(v("application_data"))" }
        if (a["unattributed"] ?? 0) > 0 { line += " + unattributed \(v("unattributed"))" }
        if (a["incomplete_record"] ?? 0) > 0 { line += " + incomplete record \(v("incomplete_record"))" }
        line += "; bytes written: \(formatBytes(run.bytesWritten))."
        if run.recordsEstimated > 0 {
            line +=
                " \(run.recordsEstimated) received record\(run.recordsEstimated == 1 ? " was" : "s were") not opened by the client: their content and overhead are estimated, not exact."
        }
        return line
    }

    static func modelLines(_ model: TraceTimingModel) -> [String] {
        var lines = [
            "Timing model: (round trips + extra round trips for flights past the initial window) × RTT + measured CPU; TCP's own handshake adds 1 RTT."
        ]
        var header = "  " + "kind".padding(toLength: 18, withPad: " ", startingAt: 0) + "RTTs  extra  client CPU  server time"
        for r in model.rtts { header += String(format: "  @%5g ms", r) }
        header += "   seed"
        lines.append(header)
        for k in model.kinds {
            var line = "  " + k.label.padding(toLength: 18, withPad: " ", startingAt: 0)
            if let why = k.unavailable {
                line += "not measured: \(why)"
            } else {
                line += String(format: "%4d  %5d  %7.2f ms  %8.2f ms", k.roundTrips, k.extraRoundTrips, k.clientCPU, k.serverTime)
                for r in model.rtts { line += String(format: "  %7.2f ms", k.total(rtt: r)) }
            }
            line += String(format: "   ~%.0f ms, %@", k.seedMilliseconds, k.seedNote)
            lines.append(line)
        }
        lines.append("")
        lines.append(model.pqcStatement)
        return lines
    }

    // MARK: Mermaid

    /// The seed's style: sequenceDiagram, autonumber, Client and Server, one arrow per message
    /// with its size, the client's work as self-messages with notes, one rect per round trip.
    static func mermaid(_ run: TraceRun) -> String {
        let colours = ["rgb(230, 240, 255)", "rgb(255, 240, 230)", "rgb(230, 255, 240)", "rgb(255, 255, 230)"]
        var out = ["sequenceDiagram", "    autonumber", "    participant C as Client", "    participant S as Server", ""]
        out.append("    Note over C,S: \(clean(headline(run).replacingOccurrences(of: "qssl trace ", with: "")))")
        var roundTrip = 0
        var open = false
        for f in run.flights {
            if f.direction == .clientToServer {
                if open { out.append("    end") }
                roundTrip += 1
                out.append("")
                out.append("    rect \(colours[(roundTrip - 1) % colours.count])")
                open = true
                let reply = run.flights.first { $0.index == f.index + 1 }
                let after = run.succeeded && roundTrip > run.handshakeRoundTrips
                var title =
                    after
                    ? "After the handshake: client flight \(formatBytes(f.wireBytes)) B"
                    : "Round trip \(roundTrip): client flight \(formatBytes(f.wireBytes)) B"
                if let reply {
                    title += ", server flight \(formatBytes(reply.wireBytes)) B in \(reply.segments) segment\(reply.segments == 1 ? "" : "s")"
                    title += reply.overInitialWindow ? " — over the initial window, +\(reply.extraRoundTrips) RTT" : " — within the initial window"
                }
                out.append("        Note over C,S: \(clean(title))")
            } else if !open {
                roundTrip += 1
                out.append("    rect \(colours[(roundTrip - 1) % colours.count])")
                open = true
            }
            var cumulative = 0
            var markedWindow = false
            let windowAfter = run.initialWindowMessage(f)
            for (i, m) in run.messages.enumerated() where m.flight == f.index {
                let arrow = m.direction == .clientToServer ? "C->>S" : "S->>C"
                let name = m.name.hasPrefix("Alert") ? m.name : (isEncrypted(m, run) ? "{\(m.name)}" : m.name)
                cumulative += m.wireEnd - m.wireStart
                if m.direction == .clientToServer, let gen = m.computations.first(where: { $0.name == "key share generation" }) {
                    out.append("        C->>C: \(clean(String(format: "Generate key shares (%.2f ms CPU)", gen.cpuMilliseconds ?? gen.wallMilliseconds)))")
                }
                out.append("        \(arrow): \(clean("\(name) (\(formatBytes(m.size)) B)"))")
                var facts = ["record \(recordList(m))", "segment\(m.firstSegment == m.lastSegment ? "" : "s") \(segmentList(m))"]
                facts.append(String(format: "t = %.2f ms", m.milliseconds))
                out.append("        Note \(m.direction == .clientToServer ? "right of C" : "left of S"): \(clean(facts.joined(separator: ", ")))")
                if i == windowAfter && !markedWindow {
                    out.append(
                        "        Note over C,S: \(clean("Initial window (\(run.initialWindowSegments) × MSS = \(formatBytes(run.initialWindowBytes)) B) reached: the rest waits for the client's ACKs"))"
                    )
                    markedWindow = true
                }
                if m.direction == .serverToClient {
                    for c in m.computations where !c.isTotal {
                        out.append("        C->>C: \(clean(computationText(c)))")
                    }
                    if let total = m.computations.first(where: \.isTotal), (total.cpuMilliseconds ?? 0) > 0.05 || m.computations.count > 1 {
                        out.append(
                            "        Note right of C: \(clean(String(format: "client work on %@: %.2f ms CPU", m.name, total.cpuMilliseconds ?? total.wallMilliseconds)))"
                        )
                    }
                }
            }
        }
        if open { out.append("    end") }
        out.append("")
        if let f = run.failure {
            var line = "❌ \(f.stage): \(f.message)"
            if let a = f.alertSent { line += " — alert \(a) sent" }
            if let a = f.alertReceived { line += " — alert \(a) received" }
            out.append("    Note over C,S: \(clean(line))")
        } else if let hs = run.handshakeMilliseconds {
            out.append("    rect rgb(240, 255, 240)")
            out.append("        Note over C,S: \(clean(String(format: "✅ Handshake Complete (%.2f ms, %d-RTT)", hs, run.handshakeRoundTrips)))")
            out.append("        C<<->>S: Application Data (encrypted)")
            out.append("    end")
        }
        out.append("    Note over C,S: \(clean("Segments computed from MSS \(run.mss) B (the client sees reads, not segments)"))")
        return out.joined(separator: "\n") + "\n"
    }

    static func isEncrypted(_ m: TraceMessage, _ run: TraceRun) -> Bool {
        let pool = run.records.filter { $0.direction == m.direction }
        return m.records.contains { i in pool.first { $0.index == i }?.isProtected == true }
    }

    /// Mermaid text: controls and bidi overrides dropped (`sanitizeServerText`); ';' (a
    /// statement separator) and '#' (an entity) replaced; '<', '>', '{', '}' and '%' as entity
    /// codes, so that no HTML, no `%%{init}%%` directive and no comment can be formed. Lines
    /// are joined with <br/>.
    static func clean(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var t = sanitizeServerText(String(line), limit: 2000)
            t = t.replacingOccurrences(of: ";", with: ",").replacingOccurrences(of: "#", with: "no. ")
            var out = ""
            for c in t {
                switch c {
                case "<": out += "#lt;"
                case ">": out += "#gt;"
                case "{": out += "#123;"
                case "}": out += "#125;"
                case "%": out += "#37;"
                default: out.append(c)
                }
            }
            return out
        }.joined(separator: "<br/>")
    }

    // MARK: JSON

    static func json(traced: TraceRun, companions: [TraceRun], model: TraceTimingModel) -> String {
        struct Document: Encodable {
            var trace: TraceRun
            var companions: [TraceRun]
            var timingModel: TraceTimingModel
            var note: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let doc = Document(
            trace: traced, companions: companions, timingModel: model,
            note: "Times in milliseconds since the TCP connect began; segments computed from the MSS; reads and writes are [ms, stream offset, bytes].")
        guard let data = try? encoder.encode(doc) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
