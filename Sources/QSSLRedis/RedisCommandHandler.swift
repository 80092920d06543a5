// The channel handler that matches pipelined commands with their replies, in order.

import NIOCore

/// A command on its way to the handler: the encoded bytes, how many replies it expects (a
/// pipeline of several commands written at once), and when to give up.
struct RedisRequest: Sendable {
    var bytes: ByteBuffer
    var replies: Int
    var timeout: TimeAmount
    var label: String
    var promise: EventLoopPromise<[RESPValue]>
}

/// Writes requests, matches replies to them in order and enforces their timeouts. A timeout,
/// a decoding error or an unsolicited reply fails every outstanding request and closes the
/// channel, since later replies could no longer be matched.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var id: Int
        var request: RedisRequest
        var received: [RESPValue]
        var timer: Scheduled<Void>?
    }

    private var pending = CircularBuffer<Pending>()
    private var closedReason: RedisError?
    private var nextID = 0
    private let onPush: (@Sendable (RESPValue) -> Void)?

    init(onPush: (@Sendable (RESPValue) -> Void)? = nil) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedReason {
            request.promise.fail(closedReason)
            promise?.fail(closedReason)
            return
        }
        let id = nextID
        nextID &+= 1
        let loop = context.eventLoop.assumeIsolated()
        let timer = loop.scheduleTask(in: request.timeout) { [weak self] in
            let ms = request.timeout.nanoseconds / 1_000_000
            self?.failAll(context: context, failing: id, with: .timeout(command: request.label, milliseconds: ms),
                          rest: .connectionClosed("another command (\(request.label)) timed out"))
        }
        pending.append(Pending(id: id, request: request, received: [], timer: timer))
        let writePromise = context.eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.assumeIsolated().whenFailure { [weak self] error in
            self?.failAll(context: context, rest: .connectionClosed("write failed: \(error)"))
        }
        writePromise.futureResult.cascade(to: promise)
        context.write(wrapOutboundOut(request.bytes), promise: writePromise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push = value {
            onPush?(value)
            return
        }
        guard !pending.isEmpty else {
            failAll(context: context, rest: .protocolViolation(.invalidLine(type: "?", reason: "a reply without a command")))
            return
        }
        pending[pending.startIndex].received.append(value)
        let head = pending[pending.startIndex]
        if head.received.count == head.request.replies {
            _ = pending.removeFirst()
            head.timer?.cancel()
            head.request.promise.succeed(head.received)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(context: context, rest: RedisError.from(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(all: .connectionClosed("closed by the peer or the network"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(all: .connectionClosed("handler removed"))
    }

    /// Fails the request `id` with `error` (if given) and every other one with `rest`, then closes.
    private func failAll(context: ChannelHandlerContext, failing id: Int? = nil, with error: RedisError? = nil,
                         rest: RedisError) {
        guard closedReason == nil else { return }
        closedReason = rest
        if let id, let error, let index = pending.firstIndex(where: { $0.id == id }) {
            let entry = pending.remove(at: index)
            entry.timer?.cancel()
            entry.request.promise.fail(error)
        }
        fail(all: rest)
        context.close(promise: nil)
    }

    private func fail(all error: RedisError) {
        if closedReason == nil { closedReason = error }
        while let entry = pending.popFirst() {
            entry.timer?.cancel()
            entry.request.promise.fail(error)
        }
    }
}
