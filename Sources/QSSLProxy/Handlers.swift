import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLProxyProtocol
import Synchronization

/// Behind the TLS handler on a client channel: hands everything to the `ProxyConnection`.
final class FrontHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let connection: ProxyConnection
    init(connection: ProxyConnection) { self.connection = connection }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { connection.clientActive(context) }
    }
    func channelActive(context: ChannelHandlerContext) {
        connection.clientActive(context)
        context.fireChannelActive()
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.fromClient(unwrapInboundIn(data))
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let summary = (event as? QSSLUserEvent)?.handshakeSummary {
            connection.handshakeCompleted(summary)
        } else if case .inputClosed? = event as? ChannelEvent {
            connection.clientClosedInput()
        }
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.clientWritabilityChanged()
    }
    func channelReadComplete(context: ChannelHandlerContext) {
        connection.clientReadComplete()
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.clientError(error)
        context.close(promise: nil)
    }
    func channelInactive(context: ChannelHandlerContext) {
        connection.clientInactive()
    }
}

/// The backend channel's only handler.
final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let connection: ProxyConnection
    init(connection: ProxyConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.fromBackend(unwrapInboundIn(data))
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { connection.backendClosedInput() }
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.backendWritabilityChanged(context.channel.isWritable)
    }
    func channelReadComplete(context: ChannelHandlerContext) {
        connection.backendReadComplete()
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.backendError(error)
        context.close(promise: nil)
    }
    func channelInactive(context: ChannelHandlerContext) {
        connection.backendInactive()
    }
}

/// First on a client channel with `acceptProxyProtocol`: reads the PROXY header (v1 or v2), tells
/// the connection, passes what follows it on, and leaves the pipeline. A malformed header closes
/// this connection only.
final class InboundProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let connection: ProxyConnection
    private var parser: ProxyHeaderParser
    private var done = false

    init(connection: ProxyConnection, accepting versions: ProxyHeaderParser.AcceptedVersions) {
        self.connection = connection
        parser = ProxyHeaderParser(accepting: versions, maximumHeaderLength: 1024)
    }

    /// Bytes after the header, held until the connection is admitted (bounded: reading stops
    /// while it waits, so at most a read or two arrive).
    private var held: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if done {
            held += unwrapInboundIn(data).readableBytesView
            if held.count > 64 * 1024 { context.close(promise: nil) }
            return
        }
        let buffer = unwrapInboundIn(data)
        do {
            switch try parser.feed(buffer.readableBytesView) {
            case .needMoreData:
                return
            case .header(let header, _, let remaining):
                done = true
                // What followed the header (the ClientHello) reaches TLS only once the connection
                // holds a handshake slot; refused, it never does.
                held = remaining
                connection.onAdmitted = { [self] in
                    let bytes = held
                    held = []
                    if !bytes.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes))) }
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                }
                connection.receivedProxyHeader(header)
            }
        } catch {
            done = true
            connection.proxyHeaderFailed(error)
        }
    }
}

/// Finds the end of an HTTP request head in one pass over each byte (however the request is
/// split): a blank line, with CRLF or bare LF line ends.
struct HTTPRequestScanner {
    enum Result { case incomplete, complete, tooLarge }
    private var seen = 0
    private var lineBreaks = 0

    mutating func scan(_ bytes: ByteBufferView, limit: Int) -> Result {
        for byte in bytes {
            seen += 1
            switch byte {
            case 0x0A:
                lineBreaks += 1
                if lineBreaks == 2 { return .complete }
            case 0x0D:
                break
            default:
                lineBreaks = 0
            }
            if seen >= limit { return .tooLarge }
        }
        return .incomplete
    }
}

/// The built-in HTTP backend's page: what was negotiated.
func httpPage(_ summary: HandshakeSummary?) -> String {
    guard let s = summary else { return "Q-SSL\n" }
    var lines = [
        "Hello from Q-SSL", "Protocol:          \(s.version)", "Cipher suite:      \(s.cipherSuite)",
        "Key exchange:      \(s.group)\(s.usedPostQuantumKeyExchange ? " (post-quantum hybrid)" : " (classical)")",
        "Resumed:           \(s.resumed ? "yes" : "no")"
    ]
    if let alpn = s.alpnProtocol { lines.append("ALPN:              \(alpn)") }
    if let subject = s.peerIdentity?.subject { lines.append("Client:            \(subject)") }
    return lines.joined(separator: "\n") + "\n"
}

/// One line for a connection error: "connection refused", "timed out", …
public func describeNetworkError(_ error: Error) -> String {
    if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
    if let e = error as? ChannelError {
        switch e {
        case .connectTimeout(let t): return "timed out after \(t.nanoseconds / 1_000_000) ms"
        case .ioOnClosedChannel, .alreadyClosed: return "connection closed"
        case .eof: return "connection closed (EOF)"
        default: return "\(e)"
        }
    }
    if let e = error as? NIOConnectionError {
        if let first = e.connectionErrors.first { return describeNetworkError(first.error) }
        if let dns = e.dnsAAAAError ?? e.dnsAError { return "cannot resolve \(e.host): \(dns)" }
        return "cannot connect to \(e.host):\(e.port)"
    }
    if let e = error as? SocketAddressError {
        switch e {
        case .unknown(let host, let port): return "cannot resolve \(host):\(port)"
        default: return "\(e)"
        }
    }
    return "\(error)"
}

/// The open client channels of a listener, for a drain.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: (Channel, ProxyConnection?)]>([:])
    func add(_ channel: Channel, _ connection: ProxyConnection? = nil) {
        channels.withLock { $0[ObjectIdentifier(channel)] = (channel, connection) }
    }
    func register(_ connection: ProxyConnection) {
        channels.withLock { $0[ObjectIdentifier(connection.channel)] = (connection.channel, connection) }
    }
    func remove(_ channel: Channel) { _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    var count: Int { channels.withLock { $0.count } }
    var all: [(Channel, ProxyConnection?)] { channels.withLock { Array($0.values) } }
}
