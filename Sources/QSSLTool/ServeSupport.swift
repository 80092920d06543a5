import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLX509
import Synchronization

// Pieces shared by `qssl serve` and `qssl demo`: ticket-key reloading, log lines, and the
// simple echo application the demo runs behind NIOQSSLServer.

/// "2 keys, current 0123abcd…" (names only, never key bytes).
func describe(_ keys: [TicketKey]) -> String {
    let current = keys.first.map { " (current \($0.name.prefix(4).map { String(format: "%02x", $0) }.joined())…)" } ?? ""
    return "\(keys.count) key\(keys.count == 1 ? "" : "s")\(current)"
}

/// Re-reads a shared ticket key file when it changes (`qssl ticket-keys rotate` from another
/// process), checked each second and on each accepted connection: one `stat` when nothing
/// changed. A file that became unusable is reported once and its keys are kept.
final class TicketKeyReloader: Sendable {
    let file: TicketKeyFile
    let log: @Sendable (LogLine) -> Void
    private let lastError = Mutex<String?>(nil)

    init(file: TicketKeyFile, log: @escaping @Sendable (LogLine) -> Void) {
        self.file = file
        self.log = log
    }

    func check() {
        do {
            guard try file.reloadIfChanged() else { return }
            lastError.withLock { $0 = nil }
            let (path, keys) = (file.path, file.keySet.keys)
            log(
                LogLine(
                    text: "ticket keys reloaded from \(path): \(describe(keys))",
                    json: jsonLine(["event": "ticket_keys_reloaded", "path": path, "keys": keys.count])))
        } catch {
            let message = "\(error)"
            let isNew = lastError.withLock { last -> Bool in
                defer { last = message }
                return last != message
            }
            guard isNew else { return }
            let (path, kept) = (file.path, file.keySet.keys.count)
            log(
                LogLine(
                    text: "ticket keys: reload failed, keeping the \(kept) loaded: \(message)",
                    json: jsonLine(["event": "ticket_keys_reload_failed", "path": path, "error": message])))
        }
    }
}

func jsonLine(_ object: [String: Any]) -> String {
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

/// The application behind `qssl serve` and `qssl demo`.
enum ServeMode { case echo, http }

/// One line of connection log, as text and as JSON; each is made only when asked for (the JSON
/// of a handshake costs more CPU than a resumed TLS 1.2 handshake itself).
struct LogLine {
    private let makeText: () -> String
    private let makeJSON: () -> String
    var text: String { makeText() }
    var json: String { makeJSON() }

    init(text: @autoclosure @escaping () -> String, json: @autoclosure @escaping () -> String) {
        makeText = text
        makeJSON = json
    }
}

extension NIOQSSLServer {
    static func start(
        host: String, port: Int, configuration: ServerConfiguration, mode: ServeMode, recordTrace: Bool = false,
        onHandler: (@Sendable (NIOQSSLHandler) -> Void)? = nil,
        log: @escaping @Sendable (LogLine) -> Void
    ) async throws -> NIOQSSLServer {
        try await start(host: host, port: port, configuration: configuration, recordTrace: recordTrace, onHandler: onHandler) {
            [ApplicationHandler(mode: mode, log: log)]
        }
    }
}

/// Echo or HTTP behind the TLS handler, logging each connection's outcome.
final class ApplicationHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let mode: ServeMode
    let log: @Sendable (LogLine) -> Void
    var summary: HandshakeSummary?
    var request: [UInt8] = []
    var answered = false

    init(mode: ServeMode, log: @escaping @Sendable (LogLine) -> Void) {
        self.mode = mode
        self.log = log
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let s = (event as? QSSLUserEvent)?.handshakeSummary {
            summary = s
            let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            func json() -> String {
                var object = summaryJSON(s, handshakeMilliseconds: 0)
                object.removeValue(forKey: "handshake_ms")
                object["peer"] = peer
                object["event"] = "handshake"
                return jsonLine(object)
            }
            log(
                LogLine(
                    text:
                        "\(peer): \(s.version) \(s.cipherSuite) \(s.group)\(s.usedPostQuantumKeyExchange ? " [PQ]" : "")\(s.alpnProtocol.map { " alpn=\($0)" } ?? "")\(s.resumed ? " resumed" : "")\(s.peerIdentity.map { " client=" + identityLine($0) } ?? "")",
                    json: json()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch mode {
        case .echo:
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .http:
            request.append(contentsOf: buffer.readableBytesView)
            guard !answered, request.count > 16384 || containsEndOfHeaders(request) else { return }
            answered = true
            let body = httpBody()
            let head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: head + body))).whenComplete { _ in
                bound.value.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        if let e = error as? NIOQSSLError, case .uncleanShutdown = e, summary != nil { return }
        let (alert, direction) = alertText(error)
        func json() -> String {
            var object: [String: Any] = ["event": "error", "peer": peer, "error": "\(error)"]
            if let alert {
                object["alert"] = alert
                object["alert_direction"] = direction
            }
            return jsonLine(object)
        }
        log(LogLine(text: "\(peer): error: \(error)\(alert.map { " [alert \($0) \(direction ?? "")]" } ?? "")", json: json()))
    }

    private func containsEndOfHeaders(_ bytes: [UInt8]) -> Bool {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return false }
        return (0...(bytes.count - 4)).contains { Array(bytes[$0..<($0 + 4)]) == marker }
    }

    private func httpBody() -> String {
        guard let s = summary else { return "Q-SSL\n" }
        return "Hello from Q-SSL\n" + summaryLines(s, handshakeMilliseconds: nil).joined(separator: "\n") + "\n"
    }
}
