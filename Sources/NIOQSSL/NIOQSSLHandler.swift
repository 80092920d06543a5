import NIOCore
import NIOTLS
import QSSL
import QSSLWire

/// Carries a Q-SSL connection over a NIO `Channel`: ciphertext `ByteBuffer`s below,
/// plaintext `ByteBuffer`s above. Translation and lifecycle only; every protocol decision is
/// the core's.
///
/// Writes made before the handshake completes, or during a pause after it (a client
/// certificate verified asynchronously), are held here and sent in order when it ends; their
/// promises complete then. They are not counted in the channel's writability: an application
/// that may write much while a pause lasts should bound what it writes until its promises
/// complete, as it would for any channel.
public final class NIOQSSLHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var connection: TLSConnection
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var failed = false
    private var closing = false
    /// A half-closure (`close(mode: .output)`) asked for while writes were held: carried out
    /// once they have gone out.
    private var heldOutputClose: (promise: EventLoopPromise<Void>?, requested: Bool) = (nil, false)
    /// A decision is being resolved off the loop: reads wait.
    private var paused = false
    private var readPending = false
    /// The transport's input closed during a pause: judged once the bytes held before it
    /// (a close_notify among them) have been processed.
    private var inputClosedDuringPause = false
    /// The task resolving it, cancelled if the connection goes away first.
    private var resolving: Task<Void, Never>?
    /// Which pause an answer belongs to: one for an abandoned pause is dropped.
    private var pauseGeneration: UInt64 = 0
    /// While the pause is being handed out (an answer given at once must wait a loop turn).
    private var startingPause = false
    private var removed = false
    /// Half-closure (a proxy's mode): the peer's close_notify closes only our input, fired as
    /// `ChannelEvent.inputClosed`; we keep sending until the application closes our output
    /// (`close(mode: .output)`: close_notify, then the TCP write side). The channel should set
    /// `ChannelOptions.allowRemoteHalfClosure` so that a TCP FIN after close_notify does not
    /// close everything; a FIN without close_notify is a truncation and fails the connection.
    public let allowsHalfClosure: Bool
    private var inputClosedFired = false
    /// Set when the handshake completed in the events being handled: once its last flight is
    /// out, the connection's handshake-sized buffers are released.
    private var handshakeJustCompleted = false

    /// A client handler; the ClientHello goes out when the channel becomes active.
    /// - Parameters:
    ///   - session: a session to offer (one read from a file, say); by default one is taken from
    ///     the configuration's session store under `sessionKey`.
    ///   - sessionKey: where sessions are taken from and saved to in the store (the server name
    ///     unless given; "host:port" keeps two servers behind one name apart).
    public init(
        client configuration: ClientConfiguration, serverName: String?, session: TLSSession? = nil,
        sessionKey: String? = nil, recordTrace: Bool = false
    ) throws {
        connection = try TLSConnection.client(
            configuration: configuration, serverName: serverName, session: session,
            sessionKey: sessionKey, recordTrace: recordTrace)
        allowsHalfClosure = false
    }

    /// A server handler.
    public init(server configuration: ServerConfiguration, recordTrace: Bool = false, allowsHalfClosure: Bool = false) throws {
        connection = try TLSConnection.server(configuration: configuration, recordTrace: recordTrace)
        self.allowsHalfClosure = allowsHalfClosure
    }

    /// The negotiated parameters, once the handshake has completed.
    public var summary: HandshakeSummary? { connection.summary }
    /// The handshake messages with sizes and times (when created with `recordTrace`).
    public var trace: [HandshakeTraceEntry] { connection.trace }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { flushOutput(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        flushOutput(context: context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        let events: [TLSEvent]
        do {
            events = try connection.receive(buffer.readableBytesView)
        } catch {
            fail(context: context, error: error)
            return
        }
        handle(events, context: context)
    }

    private func handle(_ events: [TLSEvent], context: ChannelHandlerContext) {
        for event in events {
            if let summary = event.handshakeSummary {
                // Writes made during the handshake go out now, behind our last flight and
                // before anything the application writes on hearing of the completion.
                writePending(context: context)
                context.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: summary.alpnProtocol))
                context.fireUserInboundEventTriggered(QSSLUserEvent.handshakeCompleted(summary))
                handshakeJustCompleted = true
            } else if let bytes = event.applicationData {
                context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes)))
            } else if event.isCloseNotify, allowsHalfClosure {
                // RFC 8446 §6.1: close_notify closes the peer's write side only; we may still send.
                inputClosedFired = true
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else if event.isCloseNotify {
                // RFC 8446 §6.1: answer close_notify with our own and close the transport.
                connection.close()
                flushOutput(context: context)
                context.fireUserInboundEventTriggered(TLSUserEvent.shutdownCompleted)
                context.close(promise: nil)
            } else if event.isPeerKeyUpdate {
                // Nothing to pass on.
            } else if let answer = event.clientAuthentication {
                context.fireUserInboundEventTriggered(QSSLUserEvent.clientAuthenticated(answer.identity))
            } else if let session = event.issuedSession {
                // Already in the configuration's session store; passed on for applications that
                // keep sessions elsewhere (a file, `qssl connect --session-out`).
                context.fireUserInboundEventTriggered(QSSLUserEvent.sessionIssued(session))
            } else if let decision = event.decision {
                // The core's one pause (a signature in an HSM, a peer verification that fetches
                // OCSP, a configuration chosen by SNI): resolved off the event loop so that it
                // never stalls other connections, and resumed on the loop. Reads stop meanwhile
                // (back-pressure); what already arrived waits in the core.
                flushOutput(context: context)
                paused = true
                pauseGeneration &+= 1
                let generation = pauseGeneration
                let loop = context.eventLoop
                let loopBound = NIOLoopBound((self, context), eventLoop: loop)
                // An answer given on this loop (a store whose reply is read here) resumes at
                // once; from another thread it hops here. One that comes while this call is
                // still on the stack (an answer known at once) waits for the next loop turn,
                // so the core is never re-entered.
                startingPause = true
                defer { startingPause = false }
                resolving = decision.resolve { answer in
                    if loop.inEventLoop, !loopBound.value.0.startingPause {
                        let (handler, context) = loopBound.value
                        handler.resume(with: answer, generation: generation, context: context)
                    } else {
                        loop.execute {
                            let (handler, context) = loopBound.value
                            handler.resume(with: answer, generation: generation, context: context)
                        }
                    }
                }
            }
            // Kinds of event this adapter does not know yet are dropped.
        }
        flushOutput(context: context)
        if handshakeJustCompleted {
            handshakeJustCompleted = false
            connection.releaseIdleStorage()
        }
    }

    private func resume(with answer: DecisionAnswer, generation: UInt64, context: ChannelHandlerContext) {
        // An answer to a pause that was abandoned (the connection went away) is dropped.
        guard paused, generation == pauseGeneration else { return }
        paused = false
        resolving = nil
        guard !failed, !removed, context.channel.isActive else { return }
        let events: [TLSEvent]
        do {
            events = try connection.resume(with: answer)
        } catch {
            fail(context: context, error: error)
            return
        }
        // Writes held during a post-handshake pause go out behind what the resumption sent,
        // before the events it caused reach the application (which may write or close on them).
        if connection.isHandshakeComplete && connection.pendingDecision == nil {
            writePending(context: context)
            performHeldOutputClose(context: context)
        }
        handle(events, context: context)
        if !paused && inputClosedDuringPause {
            inputClosedDuringPause = false
            inputClosed(context: context)
        }
        if !paused && readPending {
            readPending = false
            context.read()
        }
    }

    /// Sends the writes held back (during the handshake or a pause), in order. One that fails
    /// fails the connection; `write` then fails the ones behind it (ioOnClosedChannel).
    private func writePending(context: ChannelHandlerContext) {
        guard !pendingWrites.isEmpty else { return }
        let pending = pendingWrites
        pendingWrites = []
        for (data, promise) in pending { write(context: context, data: wrapOutboundOut(data), promise: promise) }
        if !failed { context.flush() }
    }

    /// The half-closure asked for while writes were held, once they are out.
    private func performHeldOutputClose(context: ChannelHandlerContext) {
        guard heldOutputClose.requested, pendingWrites.isEmpty, !paused else { return }
        let promise = heldOutputClose.promise
        heldOutputClose = (nil, false)
        close(context: context, mode: .output, promise: promise)
    }

    /// Held writes and a held half-closure that will not happen (the connection failed or
    /// went away): their promises fail with `error`.
    private func failHeld(_ error: Error) {
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(error) }
        guard heldOutputClose.requested else { return }
        let promise = heldOutputClose.promise
        heldOutputClose = (nil, false)
        promise?.fail(error)
    }

    /// While a decision is pending, reads are held back (and replayed on resume).
    public func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The transport's own half-closure (with allowRemoteHalfClosure).
        if case .inputClosed? = event as? ChannelEvent {
            // Bytes held during a pause may hold the peer's close_notify: judged after them.
            if paused {
                inputClosedDuringPause = true
                return
            }
            inputClosed(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The transport's half-closure: after close_notify it was already reported (or is
    /// nothing to report); without one, it is a truncation.
    private func inputClosed(context: ChannelHandlerContext) {
        if connection.receivedCloseNotify || inputClosedFired { return }
        guard !failed else { return }
        failed = true
        context.fireErrorCaught(NIOQSSLError.uncleanShutdown)
        context.close(promise: nil)
    }

    /// A pending decision is abandoned: its work is cancelled and the core cancels the handshake.
    private func abandonPause() {
        guard paused else { return }
        paused = false
        resolving?.cancel()
        resolving = nil
        pauseGeneration &+= 1
        connection.close()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        abandonPause()
        // A read held for the pause goes on to the handlers that stay.
        if readPending {
            readPending = false
            context.read()
        }
        // Writes never sent are failed, not dropped with their promises.
        failHeld(ChannelError.ioOnClosedChannel)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        abandonPause()
        if !failed && !connection.receivedCloseNotify && !closing {
            context.fireErrorCaught(NIOQSSLError.uncleanShutdown)
        }
        failHeld(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        // Held here until the handshake completes, and during a post-handshake pause (client
        // authentication verified asynchronously): the core would keep them unsent while their
        // promises reported them written.
        guard !failed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        // Behind writes already held: a write made while the handler drains them (from an
        // event it fires) must not overtake them.
        guard connection.isHandshakeComplete, !paused, pendingWrites.isEmpty else {
            pendingWrites.append((buffer, promise))
            return
        }
        // Sealed straight from the ByteBuffer's bytes (no intermediate array), and the record
        // copied once into the ByteBuffer that goes out.
        let connection = self.connection
        let sent = buffer.withUnsafeReadableBytes { bytes in Result { () throws(TLSError) in try connection.send(bytes) } }
        if case .failure(let error) = sent {
            promise?.fail(NIOQSSLError.tls(error))
            fail(context: context, error: error)
            return
        }
        let allocator = context.channel.allocator
        let output = connection.takeOutput { allocator.buffer(bytes: $0) }
        context.write(wrapOutboundOut(output), promise: promise)
    }

    public func flush(context: ChannelHandlerContext) {
        context.flush()
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let request = event as? QSSLOutboundRequest else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch request.kind {
        case .requestClientCertificate:
            do {
                try connection.requestClientCertificate()
                flushOutput(context: context)
                promise?.succeed(())
            } catch {
                flushOutput(context: context)
                promise?.fail(NIOQSSLError.tls(error))
            }
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Half-closure behind held writes (a post-handshake pause): after them, once it ends;
        // sent now, close_notify would cancel the pause and lose them.
        if mode == .output && allowsHalfClosure && !failed && connection.isHandshakeComplete && (paused || !pendingWrites.isEmpty) {
            if heldOutputClose.requested, let first = heldOutputClose.promise {
                if let promise { first.futureResult.cascade(to: promise) }
            } else {
                heldOutputClose = (promise, true)
            }
            return
        }
        // Half-closure: close_notify, then the TCP write side; the input stays open.
        if mode == .output && allowsHalfClosure && !failed && connection.isHandshakeComplete && !connection.sentCloseNotify {
            connection.close()
            let output = connection.takeOutput()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let written = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output)))
            Self.closeWhenWritten(written, context: context, mode: .output, promise: promise, bound: bound)
            return
        }
        // Closing mid-decision cancels the handshake (the core sends user_canceled, close_notify).
        let cancelsPause = mode == .all && paused
        guard cancelsPause || (mode == .all && !failed && connection.isHandshakeComplete && !connection.sentCloseNotify) else {
            // This end's own close (before the handshake completed, say) is not the peer's
            // truncation: no uncleanShutdown for it.
            if mode == .all { closing = true }
            context.close(mode: mode, promise: promise)
            return
        }
        // Send close_notify, then close the transport once it is written; we do not wait for
        // the peer's close_notify (RFC 8446 §6.1 allows this).
        closing = true
        abandonPause()
        connection.close()
        let output = connection.takeOutput()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let written = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output)))
        Self.closeWhenWritten(written, context: context, mode: .all, promise: promise, bound: bound)
    }

    /// How long close_notify (or a fatal alert) may wait to be written: a peer that does not
    /// read would otherwise keep the connection open for as long as it likes.
    public static let closeWriteTimeout: TimeAmount = .seconds(2)

    /// Closes once `written` completes, or after `closeWriteTimeout` (the transport as a whole)
    /// if the peer is not taking the bytes.
    private static func closeWhenWritten(
        _ written: EventLoopFuture<Void>, context: ChannelHandlerContext, mode: CloseMode,
        promise: EventLoopPromise<Void>?, bound: NIOLoopBound<ChannelHandlerContext>
    ) {
        let timer = context.eventLoop.scheduleTask(in: closeWriteTimeout) { bound.value.close(mode: .all, promise: nil) }
        written.whenComplete { _ in
            timer.cancel()
            bound.value.close(mode: mode, promise: promise)
        }
    }

    private func flushOutput(context: ChannelHandlerContext) {
        let allocator = context.channel.allocator
        guard let output = connection.takeOutput({ $0.isEmpty ? nil : allocator.buffer(bytes: $0) }) else { return }
        context.writeAndFlush(wrapOutboundOut(output), promise: nil)
    }

    /// The alert goes out first (written and flushed), then the error is fired: an application
    /// that closes the channel in `errorCaught`, as most do, must not lose the alert.
    private func fail(context: ChannelHandlerContext, error: TLSError) {
        failed = true
        let output = connection.takeOutput()  // the alert, if one is owed
        let written: EventLoopFuture<Void>
        if output.isEmpty {
            written = context.eventLoop.makeSucceededVoidFuture()
        } else {
            written = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output)))
        }
        context.fireErrorCaught(NIOQSSLError.tls(error))
        failHeld(NIOQSSLError.tls(error))
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        Self.closeWhenWritten(written, context: context, mode: .all, promise: nil, bound: bound)
    }
}

@available(*, unavailable)
extension NIOQSSLHandler: Sendable {}
