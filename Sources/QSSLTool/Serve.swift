import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Synchronization

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a TLS server that echoes data or answers HTTP.")

    @Option(help: "HOST:PORT to listen on.")
    var listen: String = "127.0.0.1:8443"

    @Option(help: "PEM certificate chain, leaf first (or pkcs11:… for a certificate in the token).")
    var cert: String

    @Option(help: "PEM private key (PKCS#8, SEC1 or PKCS#1), or pkcs11:… for a key in an HSM (see HSM options).")
    var key: String

    @OptionGroup(title: "HSM options (with --key pkcs11:…)")
    var hsm: HSMOptions

    @Option(help: "Comma-separated groups in preference order, IANA names.")
    var groups: String?

    @Option(help: "TLS versions to accept: 1.3, 1.2 or 1.2,1.3.")
    var tlsVersions: String = "1.2,1.3"

    @Flag(help: "Refuse handshakes without ML-KEM (insufficient_security).")
    var pqRequired = false

    @Option(help: "Comma-separated ALPN protocols in preference order.")
    var alpn: String?

    @Flag(help: "Echo application data back (the default).")
    var echo = false

    @Flag(help: "Answer any request with a small HTTP/1.0 200 response, then close with close_notify.")
    var http = false

    @Flag(help: "Log one JSON object per connection.")
    var json = false

    @Option(help: ArgumentHelp("Session-ticket keys shared with other servers (`qssl ticket-keys generate`); re-read when the file changes. "
                               + "Default: keys in memory, rotated every 12 h.", valueName: "FILE"))
    var ticketKeys: String?

    @Option(help: ArgumentHelp("Lifetime of sessions and tickets, and timeout of the TLS 1.2 session-ID cache, in seconds (1 to 604800).", valueName: "SECONDS"))
    var sessionTimeout: UInt32 = 3600

    @Flag(help: "Keep no TLS 1.2 session-ID cache (no resumption by session ID).")
    var noSessionCache = false

    @Flag(help: "Issue and accept no session tickets (TLS 1.2 RFC 5077 and TLS 1.3).")
    var noTickets = false

    @Option(help: ArgumentHelp("TLS 1.3 NewSessionTicket messages sent after each handshake (0 to 16).", valueName: "N"))
    var tls13Tickets: Int = 2

    @Option(help: ArgumentHelp("Trusted roots for client certificates (PEM); with --client-auth optional or required.", valueName: "CAS.pem"))
    var clientCA: String?

    @Option(help: ArgumentHelp("Ask clients for a certificate: none, optional or required.", valueName: "none|optional|required"))
    var clientAuth: String = "none"

    @Flag(help: "Staple an OCSP response for the certificate (fetched from the responder in its AIA, refreshed before it expires).")
    var staple = false

    func validate() throws {
        guard ["none", "optional", "required"].contains(clientAuth) else { throw ValidationError("--client-auth is none, optional or required") }
        if clientAuth != "none" && clientCA == nil { throw ValidationError("--client-auth \(clientAuth) needs --client-ca CAS.pem") }
        if echo && http { throw ValidationError("choose one of --echo and --http") }
        if noTickets && ticketKeys != nil { throw ValidationError("choose one of --ticket-keys and --no-tickets") }
        guard (1...604_800).contains(sessionTimeout) else { throw ValidationError("--session-timeout must be 1 to 604800 seconds") }
        guard (0...16).contains(tls13Tickets) else { throw ValidationError("--tls13-tickets must be 0 to 16") }
        try hsm.validateHSM()
    }

    func run() async throws {
        let versions = try parseTLSVersions(tlsVersions)
        let (host, port) = try parseHostPort(listen, defaultPort: 8443)
        var (certified, provider) = try hsm.server(certificate: cert, key: key) { print($0) }
        if staple { certified.ocspStaple = OCSPStaple() }
        var config = ServerConfiguration(provider: provider, certificates: [certified])
        // Mutual TLS (seed chapter 5).
        switch clientAuth {
        case "optional": config.clientAuthentication = .optional
        case "required": config.clientAuthentication = .required
        default: config.clientAuthentication = .none
        }
        if let clientCA { config.clientCertificateVerifier = try X509CertificateVerifier(rootsPEM: String(contentsOfFile: clientCA, encoding: .utf8)) }
        if let g = try parseGroups(groups) { config.groups = g }
        config.requirePostQuantum = pqRequired
        config.versions = versions
        if let alpn { config.alpnProtocols = alpn.split(separator: ",").map(String.init) }
        let log: @Sendable (LogLine) -> Void = { line in
            print(json ? line.json : line.text)
            fflush(nil)
        }
        // Resumption (PROTOCOL.md §4).
        config.sessionLifetimeSeconds = sessionTimeout
        config.tls13TicketCount = tls13Tickets
        let cache = noSessionCache ? nil : InMemorySessionCache(timeoutSeconds: sessionTimeout)
        config.sessionCache = cache
        var keyFile: TicketKeyFile?
        if noTickets {
            config.ticketKeys = nil
        } else if let ticketKeys {
            do { keyFile = try TicketKeyFile(path: ticketKeys) } catch { throw Failure(message: "\(error)", code: 1) }
            config.ticketKeys = keyFile?.keySet
        }
        let reloader = keyFile.map { TicketKeyReloader(file: $0, log: log) }
        let onHandler: (@Sendable (NIOQSSLHandler) -> Void)? = reloader.map { r in { @Sendable _ in r.check() } }
        let server = try await NIOQSSLServer.start(host: host, port: port, configuration: config, mode: http ? .http : .echo,
                                                   onHandler: onHandler, log: log)
        print("listening on \(server.localAddress)")
        if staple, let holder = certified.ocspStaple {
            let chain = try certified.chain.map { try X509Certificate(der: $0) }
            Task { await StapleRefresher(chain: chain, staple: holder, log: log).run() }
        }
        if let keyFile {
            print("ticket keys from \(keyFile.path): \(describe(keyFile.keySet.keys)); re-read when the file changes")
        }
        fflush(nil)
        // Once a second: pick up a rotated key file, and sweep expired sessions out of the cache
        // (lookups drop what they find expired; the sweep frees what is never looked up again).
        let loop = server.channel.eventLoop
        let reloading = reloader.map { r in
            loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in r.check() }
        }
        let sweeping = cache.map { c in
            loop.scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in c.removeExpired() }
        }
        defer {
            reloading?.cancel()
            sweeping?.cancel()
        }
        try await server.channel.closeFuture.get()
    }
}

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
            log(LogLine(text: "ticket keys reloaded from \(path): \(describe(keys))",
                        json: jsonLine(["event": "ticket_keys_reloaded", "path": path, "keys": keys.count])))
        } catch {
            let message = "\(error)"
            let isNew = lastError.withLock { last -> Bool in
                defer { last = message }
                return last != message
            }
            guard isNew else { return }
            let (path, kept) = (file.path, file.keySet.keys.count)
            log(LogLine(text: "ticket keys: reload failed, keeping the \(kept) loaded: \(message)",
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
    static func start(host: String, port: Int, configuration: ServerConfiguration, mode: ServeMode, recordTrace: Bool = false,
                      onHandler: (@Sendable (NIOQSSLHandler) -> Void)? = nil,
                      log: @escaping @Sendable (LogLine) -> Void) async throws -> NIOQSSLServer {
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
        if let e = event as? QSSLUserEvent, case .handshakeCompleted(let s) = e {
            summary = s
            let peer = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            func json() -> String {
                var object = summaryJSON(s, handshakeMilliseconds: 0)
                object.removeValue(forKey: "handshake_ms")
                object["peer"] = peer
                object["event"] = "handshake"
                return jsonLine(object)
            }
            log(LogLine(text: "\(peer): \(s.version) \(s.cipherSuite) \(s.group)\(s.usedPostQuantumKeyExchange ? " [PQ]" : "")\(s.alpnProtocol.map { " alpn=\($0)" } ?? "")\(s.resumed ? " resumed" : "")\(s.peerIdentity.map { " client=" + identityLine($0) } ?? "")", json: json()))
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
            if let alert { object["alert"] = alert; object["alert_direction"] = direction }
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
