// The channel handler that matches pipelined commands with their replies, in order.

import NIOCore
import Synchronization

/// What a callback request learns, exactly once, on the connection's event loop.
public enum RedisReplyOutcome: Sendable {
    /// The replies, in order (error replies as `.error` values).
    case replies([RESPValue])
    /// The command (or the connection) failed.
    case failed(RedisError)
    /// No reply within the request's `answerWithin`: the caller goes on without it. The command
    /// stays in the pipeline (its reply is read and dropped) and the connection stays open
    /// unless the command timeout passes too.
    case late
}

/// Where a request's outcome goes: a promise (async callers), or a callback run on the loop
/// (callers on the loop that want no future chain).
enum RedisReplyTarget: Sendable {
    case promise(EventLoopPromise<[RESPValue]>)
    case callback(@Sendable (RedisReplyOutcome) -> Void)
}

/// A command on its way to the handler: the encoded bytes, how many replies it expects (a
/// pipeline of several commands written at once), when to give up on the connection
/// (`timeout`), and, for a callback, when to stop waiting for the answer (`answerWithin`).
struct RedisRequest: Sendable {
    var bytes: ByteBuffer
    var replies: Int
    var timeout: TimeAmount
    var answerWithin: TimeAmount? = nil
    var label: String
    var target: RedisReplyTarget
    /// Called once when the command leaves the pipeline (its reply read, or failed), after a
    /// `.late` too: what the caller counts as in flight (the fleet's look-up admission) stays
    /// counted while a late command still occupies the connection.
    var settled: (@Sendable () -> Void)? = nil
}

/// The state a connection and its handler share: commands in flight, and whether the stream
/// became unusable (set by the handler, before the channel has finished closing).
final class RedisConnectionHealth: Sendable {
    let inFlight = Atomic<Int>(0)
    let broken = Atomic<Bool>(false)
}

/// Writes requests, decodes the replies (RESP, with the decoder's size and depth limits),
/// matches them to the requests in order and enforces their timeouts. A timeout, a decoding
/// error or an unsolicited reply fails every outstanding request and closes the channel, since
/// later replies could no longer be matched.
///
/// Replies are decoded here rather than by a `ByteToMessageHandler` in front: one handler
/// per read instead of a second pipeline step and a boxed value per reply.
///
/// Timeouts cost no timer per command: one timer per connection is armed for the earliest
/// deadline of the commands in flight; when it fires it settles what is due and re-arms for
/// the next deadline, if any (a reply does not cancel it).
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var id: Int
        var request: RedisRequest
        var received: [RESPValue]
        var deadline: NIODeadline
        /// For a callback with `answerWithin`: when it is told `.late` (nil once it was told).
        var answerBy: NIODeadline?
    }

    private var pending = CircularBuffer<Pending>()
    private var closedReason: RedisError?
    private var nextID = 0
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let health: RedisConnectionHealth
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private let decoder: RESPDecoder
    /// Bytes read and not yet decoded (part of a reply), and how far they have been scanned.
    private var received: ByteBuffer?
    private var need = RESPDecoder.Need.unknown

    init(
        decoder: RESPDecoder = RESPDecoder(), health: RedisConnectionHealth = RedisConnectionHealth(),
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) {
        self.decoder = decoder
        self.health = health
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedReason {
            request.settled?()
            Self.deliver(.failed(closedReason), to: request.target)
            promise?.fail(closedReason)
            return
        }
        let id = nextID
        nextID &+= 1
        let now = NIODeadline.now()
        let entry = Pending(
            id: id, request: request, received: [], deadline: now + request.timeout,
            answerBy: request.answerWithin.map { now + $0 })
        pending.append(entry)
        health.inFlight.add(1, ordering: .relaxed)
        arm(context: context, for: min(entry.deadline, entry.answerBy ?? entry.deadline))
        // A failed write closes the channel (NIO closes it on a socket error), which fails every
        // request here; a write that never completes is caught by the command timeout.
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard closedReason == nil else { return }
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        // Every complete reply in what arrived; a callback may write the next command meanwhile
        // (which does not touch these bytes) or the connection may fail (then decoding stops).
        while closedReason == nil, var buffer = received {
            received = nil  // no copy-on-write while decoding
            let value: RESPValue?
            do {
                value = try decoder.decode(&buffer, need: &need)
            } catch {
                failAll(context: context, rest: .protocolViolation(error))
                return
            }
            if buffer.readableBytes > 0 {
                if buffer.readerIndex > 4096 { buffer.discardReadBytes() }
                received = buffer
            }
            guard let value else { return }
            handle(value, context: context)
        }
    }

    private func handle(_ value: RESPValue, context: ChannelHandlerContext) {
        if case .push = value {
            onPush?(value)
            return
        }
        guard !pending.isEmpty else {
            failAll(context: context, rest: .protocolViolation(.invalidLine(type: "?", reason: "a reply without a command")))
            return
        }
        pending[pending.startIndex].received.append(value)
        guard pending[pending.startIndex].received.count == pending[pending.startIndex].request.replies else { return }
        let head = pending.removeFirst()
        health.inFlight.subtract(1, ordering: .relaxed)
        // A callback already told `.late` has had its answer; the reply is dropped.
        Self.finish(head, .replies(head.received))
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

    // MARK: Timeouts

    /// Makes sure the timer fires no later than `deadline`.
    private func arm(context: ChannelHandlerContext, for deadline: NIODeadline) {
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.timerFired(context: context)
        }
    }

    /// Settles what is due: a command past its timeout fails the connection; a callback past
    /// `answerWithin` is told `.late`. Then re-arms for the next deadline.
    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        guard closedReason == nil else { return }
        let now = NIODeadline.now()
        var next: NIODeadline?
        var late: [RedisReplyTarget] = []
        var expired: Pending?
        for index in pending.indices {
            let entry = pending[index]
            if entry.deadline <= now {
                expired = entry
                break
            }
            var due = entry.deadline
            if let answerBy = entry.answerBy {
                if answerBy <= now {
                    pending[index].answerBy = nil
                    // Told `.late` below, it hears nothing more: the waiting caller (a handshake,
                    // its channel) is released now, not when the late reply or the timeout comes.
                    pending[index].request.target = Self.answered
                    late.append(entry.request.target)
                } else {
                    due = answerBy
                }
            }
            next = min(next ?? due, due)
        }
        if expired == nil, let next { arm(context: context, for: next) }
        // After the scan: a callback may write the next command (re-entering `write`). Those
        // marked late are told so before any failure below, which then leaves them out.
        for target in late { Self.deliver(.late, to: target) }
        if let expired {
            let ms = expired.request.timeout.nanoseconds / 1_000_000
            failAll(
                context: context, failing: expired.id, with: .timeout(command: expired.request.label, milliseconds: ms),
                rest: .connectionClosed("another command (\(expired.request.label)) timed out"))
        }
    }

    // MARK: Failing

    /// Fails the request `id` with `error` (if given) and every other one with `rest`, then closes.
    private func failAll(
        context: ChannelHandlerContext, failing id: Int? = nil, with error: RedisError? = nil,
        rest: RedisError
    ) {
        guard closedReason == nil else { return }
        closedReason = rest
        health.broken.store(true, ordering: .relaxed)
        if let id, let error, let index = pending.firstIndex(where: { $0.id == id }) {
            let entry = pending.remove(at: index)
            health.inFlight.subtract(1, ordering: .relaxed)
            Self.finish(entry, .failed(error))
        }
        fail(all: rest)
        context.close(promise: nil)
    }

    private func fail(all error: RedisError) {
        if closedReason == nil { closedReason = error }
        health.broken.store(true, ordering: .relaxed)
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        while let entry = pending.popFirst() {
            health.inFlight.subtract(1, ordering: .relaxed)
            Self.finish(entry, .failed(error))
        }
    }

    /// A command left the pipeline: settled, and its outcome delivered unless it was told
    /// `.late` already (then the reply is dropped).
    private static func finish(_ entry: Pending, _ outcome: RedisReplyOutcome) {
        entry.request.settled?()
        if entry.request.answerWithin == nil || entry.answerBy != nil { deliver(outcome, to: entry.request.target) }
    }

    /// The target of a callback already told `.late`.
    private static let answered = RedisReplyTarget.callback { _ in }

    private static func deliver(_ outcome: RedisReplyOutcome, to target: RedisReplyTarget) {
        switch (target, outcome) {
        case (.callback(let callback), _): callback(outcome)
        case (.promise(let promise), .replies(let replies)): promise.succeed(replies)
        case (.promise(let promise), .failed(let error)): promise.fail(error)
        case (.promise, .late): break  // promises have no answerWithin
        }
    }
}
