// A Redis that accepts connections and never answers, from the node's start: the worst case of
// "Redis slow" (issue 22 item 4), seen from a whole `qssl serve` process.

import Foundation
import NIOCore
import NIOPosix
import Testing

/// Accepts TCP connections and reads them without ever answering (a hung Redis, or a black
/// hole in front of one).
final class MuteServer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    static func start() async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(MuteServer()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }
}

@Suite("qssl serve with a Redis that never answers")
struct MuteRedisTests {
    @Test(
        "the node starts within its bounds, serves full handshakes (TLS 1.2 and 1.3) with no failure and no long wait, offers of sessions are full handshakes, and the timeouts are counted",
        .timeLimit(.minutes(3)))
    func muteRedisFromTheStart() async throws {
        let mute = try await MuteServer.start()
        defer { mute.close(promise: nil) }
        let dir = try FleetDirectory()
        let started = Date()
        let node = try ServeNode(dir, store: "redis://127.0.0.1:\(mute.localAddress?.port ?? 0)")
        defer { node.stop() }
        #expect(Date().timeIntervalSince(started) < 15, "started in \(Date().timeIntervalSince(started)) s")

        for mechanism in Mechanism.allCases {
            let session = dir.path("mute-\(mechanism).pem")
            let first = Date()
            #expect(try sClient(dir, node, mechanism, sessionOut: session) == "New", "\(mechanism)")
            #expect(Date().timeIntervalSince(first) < 5, "\(mechanism): \(Date().timeIntervalSince(first)) s")
            // A session ID is issued whatever Redis does (its SET is what fails); tickets need
            // the fleet's keys, which a mute Redis never gave: none is expected.
            if mechanism == .tls12SessionID {
                #expect(FileManager.default.fileExists(atPath: session), "a session ID was issued")
            }
            // An offered session is looked up in a Redis that never answers: at the 50 ms bound
            // the handshake goes on, full, instead of failing.
            if FileManager.default.fileExists(atPath: session) {
                let again = Date()
                #expect(try sClient(dir, node, mechanism, sessionIn: session) == "New", "\(mechanism): a full handshake, not a failure")
                #expect(Date().timeIntervalSince(again) < 5, "\(mechanism): \(Date().timeIntervalSince(again)) s")
            }
        }
        #expect(try node.metric("qssl_fleet_events_total{event=\"lookup_timeout\"}") >= 1, "the bounded look-ups are counted")
    }
}
