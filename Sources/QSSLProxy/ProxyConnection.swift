import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLProxyProtocol
import QSSLWire
import QSSLX509
import Synchronization
import X509

// ProxyConnection: one client connection through the proxy (client side, limits, ending, timers).

/// What a listener shares with its connections: settings, counters, metrics, logger, and the
/// registry of open connections that a drain closes.
final class ListenerRuntime: Sendable {
    let settings: ListenerSettings
    let gate: ConnectionGate
    let metrics: ProxyMetrics?
    let logger: Logger
    let connections: ConnectionRegistry
    /// `logger`'s handler when it is the line handler `qssl serve` installs: the access log is
    /// then written straight from the record (see `LineLogHandler.logAccess`).
    private let lineHandler: LineLogHandler?

    init(settings: ListenerSettings, gate: ConnectionGate, metrics: ProxyMetrics?, logger: Logger, connections: ConnectionRegistry) {
        self.settings = settings
        self.gate = gate
        self.metrics = metrics
        self.logger = logger
        self.connections = connections
        self.lineHandler = logger.handler as? LineLogHandler
    }

    /// Writes `record` to the access log (at info level).
    func logAccess(_ record: AccessLogRecord) {
        guard logger.logLevel <= .info else { return }
        if let lineHandler {
            lineHandler.logAccess("connection", record)
        } else {
            logger.info("connection", metadata: record.metadata)
        }
    }

    /// A connection refused before it had a pipeline (a limit at accept).
    func refused(_ channel: Channel, limit: String, counted: Bool = true) {
        if counted { metrics?.limitActed(limit) }
        var record = AccessLogRecord(listener: settings.name, client: describe(channel.remoteAddress))
        record.end = counted ? "limit:\(limit)" : "refused:\(limit)"
        logAccess(record)
        channel.close(promise: nil)
    }
}

/// One client connection through the proxy: the TLS side, the backend side (or a built-in
/// backend), the limits that apply to it, and its access-log record. Lives on the client
/// channel's event loop; the backend channel is opened on the same loop, so nothing here is
/// touched from another thread.
final class ProxyConnection: @unchecked Sendable {
    let runtime: ListenerRuntime
    let channel: Channel
    var limits: ProxyLimits { runtime.settings.limits }
    var front: ChannelHandlerContext?
    var backend: Channel?
    var backendConnecting = false
    var toBackend: [ByteBuffer] = []
    var toBackendBytes = 0
    var record: AccessLogRecord
    private var endReason: String?
    private let started = ContinuousClock.now
    private var handshakeDone = false
    private var holdsSlot = false
    private var waiter: UInt64?
    private var handshakeTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var lifetimeTimer: Scheduled<Void>?
    var lastActivity = NIODeadline.now()
    var clientInputClosed = false
    var clientOutputClosed = false
    var backendInputClosed = false
    var finished = false
    var proxiedSource: SocketAddress?
    private var proxiedHeader: ProxyHeader?
    private var backendNeedsFlush = false
    private var clientNeedsFlush = false
    private var http = HTTPRequestScanner()
    private var answeredHTTP = false
    /// With a PROXY header in front: passes the bytes read after it on to TLS, once this
    /// connection holds a handshake slot (not before: they would start the handshake anyway).
    var onAdmitted: (() -> Void)?

    /// Connections not yet freed, in this process (a test checks that ended ones are).
    static let unfreed = Atomic<Int>(0)

    init(runtime: ListenerRuntime, channel: Channel) {
        self.runtime = runtime
        self.channel = channel
        record = AccessLogRecord(listener: runtime.settings.name, client: describe(channel.remoteAddress))
        Self.unfreed.add(1, ordering: .relaxed)
    }

    deinit { Self.unfreed.subtract(1, ordering: .relaxed) }

    // MARK: - Client side

    func clientActive(_ context: ChannelHandlerContext) {
        front = context
        runtime.metrics?.connectionOpened()
        runtime.connections.register(self)
        handshakeTimer = channel.eventLoop.scheduleTask(in: TimeAmount(limits.handshakeTimeout)) { [self] in
            guard !handshakeDone else { return }
            runtime.metrics?.limitActed("handshake_timeout")
            end("timeout:handshake")
            channel.close(promise: nil)
        }
        // With a PROXY header in front, the source is known only once it is read.
        if !runtime.settings.acceptProxyProtocol { admit() }
    }

    /// The header a load balancer sent (`--accept-proxy-protocol`).
    func receivedProxyHeader(_ header: ProxyHeader) {
        proxiedHeader = header
        if let source = header.sourceAddress {
            proxiedSource = source
            record.client = describe(source)
        }
        admit()
    }

    func proxyHeaderFailed(_ error: ProxyProtocolError) {
        end("proxy_header:\(error.message)")
        channel.close(promise: nil)
    }

    /// The rate and concurrency limits, before the first byte of TLS is read.
    private func admit() {
        let source = (proxiedSource ?? channel.remoteAddress)?.ipAddress ?? "?"
        let now = UInt64(max(0, NIODeadline.now().uptimeNanoseconds / 1_000_000_000))
        guard runtime.gate.allowHandshake(from: source, nowSeconds: now) else {
            runtime.metrics?.limitActed("handshake_rate")
            end("limit:handshake_rate")
            channel.close(promise: nil)
            return
        }
        let loop = channel.eventLoop
        switch runtime.gate.admitHandshake(resume: { loop.execute { self.slotGranted() } }) {
        case .granted:
            holdsSlot = true
            runtime.metrics?.handshakeStarted()
            setReading(true)
            admitted()
        case .queued(let id):
            waiter = id
            setReading(false)
        case .refused:
            runtime.metrics?.limitActed("max_handshakes")
            end("limit:max_handshakes")
            channel.close(promise: nil)
        }
    }

    private func slotGranted() {
        waiter = nil
        guard !finished, channel.isActive else {
            runtime.gate.releaseHandshake()
            return
        }
        holdsSlot = true
        runtime.metrics?.handshakeStarted()
        setReading(true)
        admitted()
    }

    private func admitted() {
        let release = onAdmitted
        onAdmitted = nil
        release?()
    }

    private func releaseSlot() {
        if holdsSlot {
            holdsSlot = false
            runtime.metrics?.handshakeEnded()
            runtime.gate.releaseHandshake()
        } else if let id = waiter {
            waiter = nil
            if !runtime.gate.cancelWaiter(id) {
                // Granted meanwhile: slotGranted() will run, see the connection finished, and release it.
            }
        }
    }

    func handshakeCompleted(_ summary: HandshakeSummary) {
        handshakeDone = true
        handshakeTimer?.cancel()
        releaseSlot()
        record.summary = summary
        runtime.metrics?.handshakeCompleted(summary, duration: ContinuousClock.now - started)
        lastActivity = .now()
        if let idle = limits.idleTimeout { scheduleIdleCheck(after: TimeAmount(idle)) }
        if let lifetime = limits.maxLifetime {
            lifetimeTimer = channel.eventLoop.scheduleTask(in: TimeAmount(lifetime)) { [self] in
                runtime.metrics?.limitActed("max_lifetime")
                end("limit:max_lifetime")
                closeAll()
            }
        }
        switch runtime.settings.backend {
        case .tcp, .unix: connectBackend(summary)
        case .echo, .http: break
        }
    }

    func fromClient(_ buffer: ByteBuffer) {
        record.bytesFromClient += buffer.readableBytes
        lastActivity = .now()
        switch runtime.settings.backend {
        case .echo:
            writeToClient(buffer)
        case .http:
            answerHTTP(buffer)
        case .tcp, .unix:
            if let backend, !backendConnecting {
                // Flushed once per read (`clientReadComplete`): the records of one read go out
                // in one write.
                backend.write(buffer, promise: nil)
                backendNeedsFlush = true
                if !backend.isWritable { setReading(false) }
            } else {
                // Still connecting: hold what came, and read no more until the backend is there.
                toBackend.append(buffer)
                toBackendBytes += buffer.readableBytes
                setReading(false)
            }
        }
    }

    /// close_notify from the client: the backend's write side is shut (it reads EOF) and may
    /// still answer; the built-in backends close.
    func clientClosedInput() {
        clientReadComplete()  // what came before the close goes first
        clientInputClosed = true
        switch runtime.settings.backend {
        case .echo, .http:
            closeAll()
        case .tcp, .unix:
            if backendInputClosed {
                closeAll()
                return
            }
            if let backend, !backendConnecting { backend.close(mode: .output, promise: nil) }
        // else: shut once connected and the held data is written (connectBackend).
        }
    }

    /// The end of one read from the client: what it carried goes to the backend now.
    func clientReadComplete() {
        if backendNeedsFlush, let backend {
            backendNeedsFlush = false
            backend.flush()
        }
    }

    /// The end of one read from the backend: what it carried goes to the client now.
    func backendReadComplete() {
        if clientNeedsFlush, let front {
            clientNeedsFlush = false
            front.flush()
        }
    }

    func clientWritabilityChanged() {
        guard handshakeDone else { return }
        let writable = channel.isWritable
        switch runtime.settings.backend {
        case .echo: setReading(writable)
        case .http: break
        case .tcp, .unix: backend?.setAutoRead(writable)
        }
    }

    func clientError(_ error: Error) {
        if let tls = error as? NIOQSSLError {
            switch tls {
            case .tls(let e):
                if let received = e.code.receivedAlert {
                    end(received == .closeNotify ? "close_notify" : "alert:\(received.name ?? "\(received.rawValue)") received")
                } else if let alert = e.alert {
                    end("alert:\(alert.name ?? "\(alert.rawValue)") sent")
                } else {
                    end("error:\(e)")
                }
            case .uncleanShutdown:
                end("closed")
            }
        } else {
            end("error:\(error)")
        }
    }

    func clientInactive() {
        finish()
    }

    // MARK: - Writing to the client

    func writeToClient(_ buffer: ByteBuffer, flush: Bool = true) {
        guard let front, !clientOutputClosed else { return }
        record.bytesToClient += buffer.readableBytes
        if flush {
            front.writeAndFlush(NIOAny(buffer), promise: nil)
        } else {
            front.write(NIOAny(buffer), promise: nil)
            clientNeedsFlush = true
        }
        if !channel.isWritable {
            switch runtime.settings.backend {
            case .echo: setReading(false)
            default: backend?.setAutoRead(false)
            }
        }
    }

    private func answerHTTP(_ buffer: ByteBuffer) {
        guard !answeredHTTP else { return }
        switch http.scan(buffer.readableBytesView, limit: limits.maxRequestBytes) {
        case .incomplete: return
        case .tooLarge:
            answeredHTTP = true
            respondHTTP(status: "431 Request Header Fields Too Large", body: "request head over \(limits.maxRequestBytes) bytes\n")
        case .complete:
            answeredHTTP = true
            respondHTTP(status: "200 OK", body: httpPage(record.summary))
        }
    }

    private func respondHTTP(status: String, body: String) {
        let head = "HTTP/1.0 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        writeToClient(channel.allocator.buffer(string: head + body))
        setReading(false)
        channel.close(promise: nil)  // close_notify follows the response
    }

    // MARK: - Ending

    /// The first reason given is the one logged.
    func end(_ reason: String) {
        if endReason == nil { endReason = reason }
    }

    /// Closes both sides (the client with close_notify, through the TLS handler).
    func closeAll() {
        clientReadComplete()
        backendReadComplete()
        backend?.close(promise: nil)
        if channel.isActive { channel.close(promise: nil) }
    }

    /// Called by a drain at its deadline.
    func drained() {
        end("drain")
        closeAll()
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        onAdmitted = nil
        handshakeTimer?.cancel()
        idleTimer?.cancel()
        lifetimeTimer?.cancel()
        releaseSlot()
        backend?.close(promise: nil)
        runtime.connections.remove(channel)  // (the gate's count drops when the channel closes)
        runtime.metrics?.connectionClosed()
        record.duration = ContinuousClock.now - started
        record.end = endReason ?? (clientInputClosed ? "close_notify" : "closed")
        // A handshake that did not complete, counted once, by how it ended (a limit that refused
        // the connection before it began is counted as that limit, not as a failed handshake).
        if !handshakeDone && !record.end.hasPrefix("limit:") {
            let reason =
                record.end.hasPrefix("timeout:")
                ? "timeout"
                : record.end.hasPrefix("proxy_header:")
                    ? "proxy_header"
                    : record.end.hasPrefix("alert:") ? record.end : record.end.hasPrefix("backend:") ? "backend" : "closed"
            runtime.metrics?.handshakeFailed(reason: reason)
        }
        runtime.metrics?.bytes(fromClient: record.bytesFromClient, toClient: record.bytesToClient)
        runtime.logAccess(record)
        // The channel is inactive: nothing more is written to the client. The context holds the
        // FrontHandler, which holds this connection; kept, the three (and the channel with its
        // buffers, 4.6 KB) were never freed, for every connection the proxy ever served.
        front = nil
    }

    // MARK: - Timers and reading

    private func scheduleIdleCheck(after delay: TimeAmount) {
        idleTimer = channel.eventLoop.scheduleTask(in: delay) { [self] in
            guard !finished, let idle = limits.idleTimeout else { return }
            let quiet = NIODeadline.now() - lastActivity
            if quiet >= TimeAmount(idle) {
                runtime.metrics?.limitActed("idle_timeout")
                end("timeout:idle")
                closeAll()
            } else {
                scheduleIdleCheck(after: TimeAmount(idle) - quiet)
            }
        }
    }

    func setReading(_ on: Bool) {
        channel.setAutoRead(on)
    }
}
