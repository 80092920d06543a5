import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

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

    func validate() throws {
        if echo && http { throw ValidationError("choose one of --echo and --http") }
        try hsm.validateHSM()
    }

    func run() async throws {
        let versions = try parseTLSVersions(tlsVersions)
        let (host, port) = try parseHostPort(listen, defaultPort: 8443)
        let (certifiedKey, provider) = try hsm.server(certificate: cert, key: key) { print($0) }
        var config = ServerConfiguration(provider: provider, certificates: [certifiedKey])
        if let g = try parseGroups(groups) { config.groups = g }
        config.requirePostQuantum = pqRequired
        config.versions = versions
        if let alpn { config.alpnProtocols = alpn.split(separator: ",").map(String.init) }
        let server = try await NIOQSSLServer.start(host: host, port: port, configuration: config, mode: http ? .http : .echo) { line in
            print(json ? line.json : line.text)
            fflush(nil)
        }
        print("listening on \(server.localAddress)")
        fflush(nil)
        try await server.channel.closeFuture.get()
    }
}

/// The application behind `qssl serve` and `qssl demo`.
enum ServeMode { case echo, http }

/// One line of connection log, as text and as JSON.
struct LogLine {
    var text: String
    var json: String
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
            var object = summaryJSON(s, handshakeMilliseconds: 0)
            object.removeValue(forKey: "handshake_ms")
            object["peer"] = peer
            object["event"] = "handshake"
            let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            log(LogLine(text: "\(peer): \(s.version) \(s.cipherSuite) \(s.group)\(s.usedPostQuantumKeyExchange ? " [PQ]" : "")\(s.alpnProtocol.map { " alpn=\($0)" } ?? "")", json: json))
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
        var object: [String: Any] = ["event": "error", "peer": peer, "error": "\(error)"]
        if let alert { object["alert"] = alert; object["alert_direction"] = direction }
        let json = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        log(LogLine(text: "\(peer): error: \(error)\(alert.map { " [alert \($0) \(direction ?? "")]" } ?? "")", json: json))
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
