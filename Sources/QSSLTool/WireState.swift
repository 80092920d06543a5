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

// WireState: a traced connection's bytes both ways, cut into records, with the core's messages laid over them.

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
        receivedRecords.append(
            TraceRecord(
                direction: .serverToClient, index: receivedRecords.count + 1, contentType: type, payloadLength: length,
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
        if v == 0x0304 { return type == 23 }  // TLS 1.3: everything after ServerHello is application_data outside
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
            sentRecords.append(
                TraceRecord(
                    direction: .clientToServer, index: sentRecords.count + 1, contentType: type, payloadLength: length,
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
    func finish(
        into run: inout TraceRun, trace: [HandshakeTraceEntry], traceStart: (ContinuousClock.Instant) -> Double,
        decisions: [(afterEntry: Int, computation: TraceComputation)], completedAt: Double?
    ) {
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
            .clientToServer: handshakeRecords(sentRecords), .serverToClient: handshakeRecords(receivedRecords)
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
                let comp = TraceComputation(
                    name: e.message, startMilliseconds: traceStart(e.instant), wallMilliseconds: Double(e.durationNanoseconds) / 1e6,
                    cpuMilliseconds: e.cpuNanoseconds.map { Double($0) / 1e6 }, isTotal: e.message.hasPrefix("processing "))
                if let last = messages.lastIndex(where: { $0.direction == .serverToClient }) {
                    messages[last].computations.append(comp)
                }
                continue
            }
            let direction: TraceDirection = e.direction == .sent ? .clientToServer : .serverToClient
            var m = TraceMessage(
                direction: direction, name: e.message, size: e.length, milliseconds: traceStart(e.instant), firstByteMilliseconds: nil,
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
                if seen == received {
                    messages[k].computations.append(d.computation)
                    break
                }
            }
        }
        // The ClientHello's key generation.
        if let gen = run.clientKeyGenerationCPU, let k = messages.firstIndex(where: { $0.name == "ClientHello" }) {
            messages[k].computations.append(
                TraceComputation(
                    name: "key share generation", startMilliseconds: run.tcpConnectMilliseconds ?? 0,
                    wallMilliseconds: gen, cpuMilliseconds: gen, isTotal: true))
        }
        // Alerts, as messages of their own.
        for r in sentRecords where r.contentType == 21 && !(r.isProtected && completedAt != nil) {
            let name = r.isProtected ? "Alert (encrypted)" : "Alert"
            var m = TraceMessage(
                direction: .clientToServer, name: name, size: r.payloadLength - r.overhead, milliseconds: r.milliseconds, firstByteMilliseconds: nil,
                records: [r.index], wireStart: r.wireOffset + 5, wireEnd: r.wireOffset + r.wireLength, firstSegment: 0, lastSegment: 0,
                flight: 0, computations: [], isHandshake: false)
            (m.firstSegment, m.lastSegment) = segmentRange(start: m.wireStart, end: m.wireEnd, mss: run.mss)
            messages.append(m)
        }
        for (k, r) in receivedRecords.enumerated() where carried(r) == 21 {
            let name = receivedAlerts.first { $0.record == k + 1 }.map { "Alert \($0.name)" } ?? "Alert"
            var m = TraceMessage(
                direction: .serverToClient, name: name, size: plainLength(r), milliseconds: r.milliseconds, firstByteMilliseconds: r.milliseconds,
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
                flights.append(
                    TraceFlight(
                        index: flights.count + 1, direction: m.direction, messages: [], messageBytes: 0, wireBytes: 0, segments: 0,
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
                (messages[k].firstSegment, messages[k].lastSegment) = segmentRange(
                    start: messages[k].wireStart - start, end: messages[k].wireEnd - start, mss: run.mss)
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
        let names: [UInt8: String] = [
            0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
            42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
            46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
            51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
            86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension", 110: "unsupported_extension",
            112: "unrecognized_name", 116: "certificate_required", 120: "no_application_protocol"
        ]
        return names[code] ?? "alert \(code)"
    }
}
