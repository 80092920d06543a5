import Foundation
import QSSL
import QSSLWire

/// Stops the process with a message: libFuzzer records the input as a crash.
public func violated(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant violated: \(message)", file: file, line: line)
}

/// Checks an invariant. A violation whose message contains a line of the file named by
/// QSSL_FUZZ_KNOWN_ISSUES (Fuzz/run passes Fuzz/KnownIssues) is a known, reported bug of the
/// core: it is let through so that fuzzing goes on; without that variable every violation traps.
@inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        let text = message()
        if KnownIssues.patterns.contains(where: { text.contains($0) }) { return }
        violated(text, file: file, line: line)
    }
}

enum KnownIssues {
    static let patterns: [String] = {
        guard let path = ProcessInfo.processInfo.environment["QSSL_FUZZ_KNOWN_ISSUES"],
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let pattern = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingCharacters(in: .whitespaces)
            return pattern.isEmpty ? nil : pattern
        }
    }()
}

/// TLSError.Code is an enum in some versions of the core and a struct in others: its
/// description is the same in both.
func isMisuse(_ error: TLSError) -> Bool { error.code.description.hasPrefix("API misuse") }

/// Splits a byte stream into TLS records (5-byte header + body); a trailing partial record stays one piece.
public func splitRecords(_ bytes: [UInt8]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var i = 0
    while i < bytes.count {
        guard bytes.count - i >= 5 else {
            out.append(Array(bytes[i...]))
            break
        }
        let end = min(bytes.count, i + 5 + (Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])))
        out.append(Array(bytes[i..<end]))
        i = end
    }
    return out
}

/// One connection with the invariants of the brief checked around every call:
/// - `receive` returns events or throws a `TLSError` (the type system says so; apiMisuse and
///   cryptoFailure never come from peer bytes with this provider);
/// - after a throw the connection stays failed: later calls throw the same error and write nothing;
/// - the output of the failing call holds exactly the one fatal alert the error maps to (none for
///   errors without an alert), as its last record; a call that did not fail sends no fatal alert;
/// - `handshakeCompleted` comes at most once, never after a failure, and application data and
///   key updates only after it; `sessionIssued` only on a client, after it (`checkIssued`).
public struct Endpoint {
    public var connection: TLSConnection
    public let side: Side
    public private(set) var summary: HandshakeSummary?
    public private(set) var failure: TLSError?
    public private(set) var receivedData: [UInt8] = []
    public private(set) var sentData: [UInt8] = []
    public private(set) var receivedCloseNotify = false
    /// The sessions a client was issued (`sessionIssued`), in order.
    public private(set) var issuedSessions: [TLSSession] = []

    public init(_ connection: TLSConnection, side: Side) {
        self.connection = connection
        self.side = side
    }

    public var isComplete: Bool { summary != nil }

    /// Feeds bytes; returns what the connection wrote in answer.
    public mutating func receive(_ bytes: [UInt8]) -> [UInt8] {
        let wasFailed = failure != nil
        do {
            let events = try connection.receive(bytes)
            require(!wasFailed, "receive returned on a failed connection")
            require(connection.failure == nil, "receive returned but the connection reports a failure")
            for event in events {
                if let s = event.handshakeSummary {
                    require(summary == nil, "handshakeCompleted twice")
                    summary = s
                } else if let d = event.applicationData {
                    require(summary != nil, "application data before handshakeCompleted")
                    receivedData += d
                } else if event.isCloseNotify {
                    require(!receivedCloseNotify, "closeNotify twice")
                    receivedCloseNotify = true
                } else if event.isPeerKeyUpdate {
                    require(summary != nil, "KeyUpdate before handshakeCompleted")
                } else if let d = event.decision {
                    violated("decisionNeeded (\(d)) with in-memory providers")
                } else if let session = event.issuedSession {
                    checkIssued(session)
                    issuedSessions.append(session)
                } else if event.clientAuthentication != nil {
                    // Only a server that requested a certificate after the handshake hears this;
                    // the fuzz configurations never request one.
                    violated("clientAuthenticated without a post-handshake request")
                } else {
                    violated("an event this check does not know: \(event)")
                }
            }
            let out = takeOutput()
            require(fatalAlerts(out).count == 0, "a call that did not fail sent a fatal alert")
            return out
        } catch {
            return failed(with: error, wasFailed: wasFailed)
        }
    }

    /// `sessionIssued` comes only to a client, only after its handshake completed, and describes
    /// that handshake: same version, server name and ALPN; a TLS 1.3 session has a ticket and no
    /// ID, a TLS 1.2 one an ID or a ticket; it is valid now and survives its own encoding (what
    /// a client writes to a session file).
    private func checkIssued(_ session: TLSSession) {
        require(side == .client, "sessionIssued on a server")
        guard let summary else { violated("sessionIssued before handshakeCompleted") }
        let state = session.state
        require(state.version == summary.version, "issued a \(state.version) session on a \(summary.version) connection")
        require(
            state.serverName == summary.serverName && state.alpnProtocol == summary.alpnProtocol,
            "issued session for \(String(describing: state.serverName))/\(String(describing: state.alpnProtocol)), connection \(String(describing: summary.serverName))/\(String(describing: summary.alpnProtocol))"
        )
        if state.version == .tls13 {
            require(!(session.ticket ?? []).isEmpty && session.sessionID.isEmpty, "a TLS 1.3 session without a ticket, or with a session ID")
        } else {
            require(!session.sessionID.isEmpty || !(session.ticket ?? []).isEmpty, "a TLS 1.2 session with neither ID nor ticket")
        }
        require(state.cipherSuite == summary.cipherSuite, "issued a session of \(state.cipherSuite) on a \(summary.cipherSuite) connection")
        require(state.isValid(at: FuzzClock.now), "issued a session that is not valid now")
        do {
            let encoded = try session.encoded()
            let decoded = try TLSSession(decoding: encoded)
            require(decoded == session, "an issued session does not survive its encoding")
        } catch {
            violated("an issued session does not encode and decode: \(error)")
        }
    }

    public mutating func send(_ data: [UInt8]) -> [UInt8] {
        let wasFailed = failure != nil
        do {
            try connection.send(data)
            require(!wasFailed, "send succeeded on a failed connection")
            if !connection.sentCloseNotify { sentData += data }
            return takeOutput()
        } catch {
            if error.code.isAPIMisuse, !wasFailed { return takeOutput() }  // send after close
            return failed(with: error, wasFailed: wasFailed)
        }
    }

    public mutating func updateKeys(request: Bool) -> [UInt8] {
        let wasFailed = failure != nil
        do {
            try connection.updateKeys(requestPeerUpdate: request)
            require(!wasFailed, "updateKeys succeeded on a failed connection")
            return takeOutput()
        } catch {
            if error.code.isAPIMisuse, wasFailed {
                // updateKeys checks the phase before the failure: a failed connection answers
                // "key update before the handshake completed". Nothing may be written.
                let out = takeOutput()
                require(out.isEmpty, "updateKeys on a failed connection wrote \(out.count) bytes")
                return out
            }
            if error.code.isAPIMisuse, !wasFailed {
                // Before the handshake completed (the connection goes on), or on TLS 1.2, where
                // the core fails the connection for good: remember that as our own failure.
                if connection.failure != nil { failure = error }
                let out = takeOutput()
                require(fatalAlerts(out).isEmpty, "updateKeys misuse sent a fatal alert")
                return out
            }
            return failed(with: error, wasFailed: wasFailed)
        }
    }

    public mutating func close() -> [UInt8] {
        connection.close()
        let out = takeOutput()
        if failure != nil { require(out.isEmpty, "close on a failed connection wrote \(out.count) bytes") }
        require(fatalAlerts(out).isEmpty, "close sent a fatal alert")
        return out
    }

    private mutating func failed(with error: TLSError, wasFailed: Bool) -> [UInt8] {
        if !wasFailed {
            if error.code.isAPIMisuse { violated("apiMisuse from peer bytes: \(error)") }
            if error.code.isProviderFailure {
                violated("cryptoFailure from peer bytes with a provider that cannot fail: \(error)")
            }
        }
        require(connection.failure != nil, "threw \(error) but the connection is not failed")
        if let first = failure {
            require(error == first, "a failed connection threw \(error) after \(first)")
        }
        let out = takeOutput()
        if wasFailed {
            require(out.isEmpty, "a failed connection wrote \(out.count) more bytes")
        } else {
            let alerts = fatalAlerts(out)
            require(alerts.count <= 1, "\(alerts.count) fatal alerts after \(error)")
            if let expected = error.alert {
                require(alerts.count == 1, "no fatal alert for \(error)")
                require(alerts[0].description == expected.rawValue, "sent alert \(alerts[0].description), expected \(expected) for \(error)")
                require(alerts[0].last, "the fatal alert is not the last record")
            } else {
                require(alerts.isEmpty, "an alert was sent for \(error), which maps to none")
            }
        }
        failure = error
        // Stays failed: at once again, with nothing more to send.
        do {
            _ = try connection.receive([UInt8]())
            violated("receive returned after the connection failed")
        } catch {
            require(error == failure!, "a failed connection threw \(error) after \(failure!)")
        }
        require(connection.failure != nil, "the failure was forgotten")
        let more = connection.takeOutput()
        require(more.isEmpty, "a failed connection queued \(more.count) bytes more")
        _ = Tap.drain(side)
        return out
    }

    /// What the connection has queued (its first flight, after creation). Application data
    /// must never follow our own close_notify.
    public mutating func takeOutput() -> [UInt8] {
        let out = connection.takeOutput()
        lastSealed = Tap.drain(side)
        for record in classify(out) {
            if record.type == ContentType.alert.rawValue, record.head == [AlertLevel.warning.rawValue, AlertDescription.closeNotify.rawValue] {
                wroteCloseNotify = true
            } else if record.type == ContentType.applicationData.rawValue {
                require(!wroteCloseNotify, "application data written after our close_notify")
            }
        }
        return out
    }

    private var lastSealed: [SealedRecord] = []
    private var wroteCloseNotify = false

    struct Alert {
        var description: UInt8
        var last: Bool
    }

    /// The records of `out` with their real content types: plaintext records read as they are,
    /// protected ones (the last `lastSealed.count` records) by what the AEAD saw before sealing.
    private func classify(_ out: [UInt8]) -> [SealedRecord] {
        let records = splitRecords(out)
        let protectedFrom = records.count - lastSealed.count
        guard protectedFrom >= 0 else { return [] }
        return records.enumerated().map { i, r in
            i >= protectedFrom ? lastSealed[i - protectedFrom] : SealedRecord(type: r[0], head: Array(r.dropFirst(5).prefix(2)))
        }
    }

    private func fatalAlerts(_ out: [UInt8]) -> [Alert] {
        let records = classify(out)
        var alerts: [Alert] = []
        for (i, r) in records.enumerated() where r.type == ContentType.alert.rawValue && r.head.count == 2 && r.head[0] == AlertLevel.fatal.rawValue {
            alerts.append(Alert(description: r.head[1], last: i == records.count - 1))
        }
        return alerts
    }
}
