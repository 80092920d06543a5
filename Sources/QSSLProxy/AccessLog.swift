import Logging
import QSSL

/// How log lines are written: one line each, as text or as a JSON object.
public enum LogFormat: String, Sendable {
    case text, json
}

/// A swift-log handler that writes each message as one line on standard output: text
/// ("message key=value …") or a JSON object ({"event": message, key: value, …}) whose numbers
/// and booleans stay numbers and booleans. The access log and the server's events go through it.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let format: LogFormat
    private let sink: @Sendable (String) -> Void

    public init(format: LogFormat, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardOutput) {
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // The handler's own metadata is usually empty: no merge (a dictionary rebuilt per line).
        let all: Logger.Metadata
        if let extra = event.metadata {
            all = metadata.isEmpty ? extra : metadata.merging(extra) { $1 }
        } else {
            all = metadata
        }
        sink(Self.line(message: "\(event.message)", metadata: all, format: format))
    }

    /// Writes a line to standard output without waiting for it (`LineWriter.standardOutput`):
    /// a slow reader of the log never holds up the event loop that logs.
    public static let standardOutput: @Sendable (String) -> Void = { line in LineWriter.standardOutput.write(line) }

    /// The line for `message` and `metadata`, keys in order (stable for tools).
    public static func line(message: String, metadata: Logger.Metadata, format: LogFormat) -> String {
        line(message: message, sortedEntries: metadata.sorted { $0.key < $1.key }, format: format)
    }

    /// The access log's line for `record`, written straight to this handler's sink: the same
    /// line as `log(event:)` would write for `record.metadata`, without building, merging and
    /// sorting a metadata dictionary for every connection. With metadata of the handler's own,
    /// it goes the general way.
    func logAccess(_ message: String, _ record: AccessLogRecord) {
        guard metadata.isEmpty else {
            return log(event: LogEvent(level: .info, message: "\(message)", metadata: record.metadata, source: "QSSLProxy", file: #fileID, function: #function, line: #line))
        }
        sink(Self.line(message: message, sortedEntries: record.sortedEntries, format: format))
    }

    /// The line for entries already in key order.
    static func line(message: String, sortedEntries: some Sequence<(key: String, value: Logger.Metadata.Value)>, format: LogFormat) -> String {
        switch format {
        case .json:
            var out = "{\"event\":" + jsonString(message)
            out.reserveCapacity(384)  // an access-log line, grown once
            for (key, value) in sortedEntries {
                out += "," + jsonString(key) + ":" + jsonValue(value)
            }
            return out + "}"
        case .text:
            var out = needsQuoting(message) ? jsonString(message) : message
            out.reserveCapacity(384)
            for (key, value) in sortedEntries {
                let value = "\(value)"
                // Quoted and escaped when it holds a space, a quote or a control character: a
                // value from a peer or a Redis reply cannot start a line of its own.
                let quote = value.isEmpty || value.utf8.contains { $0 == 0x20 || $0 == 0x22 } || needsQuoting(value)
                out += " \(key)=" + (quote ? jsonString(value) : value)
            }
            return out
        }
    }

    /// Text that could end or forge a line (control characters, and the Unicode line
    /// separators U+0085, U+2028, U+2029) is written quoted and escaped.
    static func needsQuoting(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0.value == 0x85 || $0.value == 0x2028 || $0.value == 0x2029 }
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let v):
            switch v {
            case let b as Bool: return b ? "true" : "false"
            case let i as Int: return String(i)
            case let i as Int64: return String(i)
            case let u as UInt64: return String(u)
            case let d as Double: return d.isFinite ? String(d) : "null"
            case is NullValue: return "null"
            default: return jsonString(v.description)
            }
        case .array(let items): return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { jsonString($0) + ":" + jsonValue(d[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                // Controls, and the Unicode line separators a line-oriented reader might split on.
                if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x85 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A JSON null in log metadata.
public struct NullValue: CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "-" }
}

/// What the access log says of one connection, written once when it ends.
public struct AccessLogRecord: Sendable {
    public var listener: String
    public var client: String
    public var serverName: String?
    public var summary: HandshakeSummary?
    public var bytesFromClient = 0
    public var bytesToClient = 0
    public var duration: Duration = .zero
    /// How it ended: "close_notify", "alert:NAME sent|received", "timeout:handshake",
    /// "timeout:idle", "limit:…", "backend:…", "drain", "closed".
    public var end = "closed"

    public init(listener: String, client: String) {
        self.listener = listener
        self.client = client
    }

    public var metadata: Logger.Metadata {
        Logger.Metadata(uniqueKeysWithValues: sortedEntries.lazy.map { ($0.key, $0.value) })
    }

    /// The fields in key order, as the log line lists them.
    var sortedEntries: [(key: String, value: Logger.Metadata.Value)] {
        func opt(_ s: String?) -> Logger.Metadata.Value { s.map { .string($0) } ?? .stringConvertible(NullValue()) }
        let s = summary
        return [
            ("bytes_from_client", .stringConvertible(bytesFromClient)),
            ("bytes_to_client", .stringConvertible(bytesToClient)),
            ("cipher", opt(s?.cipherSuite.description)),
            ("client", .string(client)),
            ("client_subject", opt(s?.peerIdentity?.subject)),
            ("duration_ms", .stringConvertible(Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000))),
            ("end", .string(end)),
            ("group", opt(s?.group.description)),
            ("listener", .string(listener)),
            ("post_quantum", s.map { .stringConvertible($0.usedPostQuantumKeyExchange) } ?? .stringConvertible(NullValue())),
            ("resumed", s.map { .stringConvertible($0.resumed) } ?? .stringConvertible(NullValue())),
            ("sni", opt(s?.serverName ?? serverName)),
            ("version", opt(s?.version.description))
        ]
    }
}
