import NIOCore
import NIOPosix

/// A TCP relay on loopback that holds every chunk for `delay` in each direction before passing
/// it on, so that a round trip through it takes at least 2 × `delay`: a WAN link in miniature for
/// `qssl demo --latency`. Chunks keep their order; the relay adds no bandwidth limit.
///
/// Each accepted connection opens one to the target on the same event loop, so the two
/// forwarders of a pair never race.
final class DelayRelay: Sendable {
    let channel: Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: Channel) { self.channel = channel }

    static func start(
        targetPort: Int, delay: TimeAmount,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> DelayRelay {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let toServer = DelayingForwarder(delay: delay)
                let toClient = DelayingForwarder(delay: delay)
                toClient.setPeer(inbound)
                ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture { try outbound.pipeline.syncOperations.addHandler(toClient) }
                    }
                    .connect(host: "127.0.0.1", port: targetPort)
                    .whenComplete { result in
                        switch result {
                        case .success(let outbound): toServer.setPeer(outbound)
                        case .failure: inbound.close(promise: nil)
                        }
                    }
                return inbound.eventLoop.makeCompletedFuture { try inbound.pipeline.syncOperations.addHandler(toServer) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return DelayRelay(channel: channel)
    }

    func close() async {
        try? await channel.close()
    }
}

/// Reads from one side and writes to the other (its peer) `delay` later; closes the peer once
/// everything read before the end of input has gone out. Used on one event loop only.
private final class DelayingForwarder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let delay: TimeAmount
    private var peer: Channel?
    private var queue: [(due: NIODeadline, data: ByteBuffer)] = []
    private var head = 0
    private var timer: Scheduled<Void>?
    private var inputEnded = false

    init(delay: TimeAmount) { self.delay = delay }

    /// The channel written to; what arrived before it was connected goes out when due.
    /// Called on the pair's event loop.
    func setPeer(_ channel: Channel) {
        channel.eventLoop.preconditionInEventLoop()
        peer = channel
        drain(on: channel.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append((.now() + delay, unwrapInboundIn(data)))
        schedule(on: context.eventLoop)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inputEnded = true
        schedule(on: context.eventLoop)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func schedule(on loop: EventLoop) {
        guard timer == nil else { return }
        guard head < queue.count else {
            if inputEnded { peer?.close(promise: nil) }
            return
        }
        timer = loop.scheduleTask(deadline: queue[head].due) {
            self.timer = nil
            self.drain(on: loop)
        }
    }

    private func drain(on loop: EventLoop) {
        guard let peer else { return }
        let now = NIODeadline.now()
        var wrote = false
        while head < queue.count, queue[head].due <= now {
            peer.write(queue[head].data, promise: nil)
            head += 1
            wrote = true
        }
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        if wrote { peer.flush() }
        schedule(on: loop)
    }
}
