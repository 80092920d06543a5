import NIOCore
import NIOTLS
import QSSL

/// Why a connection was closed by `NIOQSSLHandshakeTimeoutHandler`: its TLS handshake had not
/// completed in time (a slowloris client, or one that connected and sent nothing).
public struct NIOQSSLHandshakeTimeoutError: Error, CustomStringConvertible {
    public let timeout: TimeAmount
    public var description: String { "the TLS handshake did not complete within \(timeout)" }
}

/// Closes a connection whose TLS handshake has not completed within a time: put it behind a
/// `NIOQSSLHandler`. A client that connects and sends nothing, or trickles its ClientHello,
/// would otherwise hold its connection (and its socket) for as long as it likes.
/// `NIOQSSLServer` adds one to every connection. The timer starts when the channel is active
/// and stops at `QSSLUserEvent.handshakeCompleted` (or NIO's `TLSUserEvent.handshakeCompleted`);
/// on expiry the error goes down the pipeline (`errorCaught`) and the channel is closed.
public final class NIOQSSLHandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var completed = false

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Q-SSL's completion, or NIO's usual one (another TLS handler in front, or a handler
        // between that passes on only that one).
        var completes = (event as? QSSLUserEvent)?.handshakeSummary != nil
        if case .handshakeCompleted? = event as? TLSUserEvent { completes = true }
        if completes {
            completed = true
            stop()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func start(context: ChannelHandlerContext) {
        guard timer == nil, !completed else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let timeout = self.timeout
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let context = bound.value
            context.fireErrorCaught(NIOQSSLHandshakeTimeoutError(timeout: timeout))
            context.close(promise: nil)
        }
    }

    private func stop() {
        timer?.cancel()
        timer = nil
    }
}
