import NIOCore
import NIOEmbedded
import NIOQSSL
import NIOTLS
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

let pki = try! DemoPKI()

/// Records what reaches the application above the TLS handler.
final class Recorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var data: [UInt8] = []
    var events: [String] = []
    var qsslEvents: [QSSLUserEvent] = []
    var errors: [Error] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.data += unwrapInboundIn(data).readableBytesView
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? QSSLUserEvent { qsslEvents.append(e) }
        if let e = event as? TLSUserEvent {
            switch e {
            case .handshakeCompleted(let alpn): events.append("handshakeCompleted(\(alpn ?? "-"))")
            case .shutdownCompleted: events.append("shutdownCompleted")
            }
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) { errors.append(error) }
}

/// Two EmbeddedChannels joined back to back.
struct Pair {
    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let clientApp = Recorder()
    let serverApp = Recorder()

    init(client clientConfig: ClientConfiguration? = nil, server serverConfig: ServerConfiguration? = nil) throws {
        var c = clientConfig ?? ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        c.alpnProtocols = c.alpnProtocols.isEmpty ? ["h2"] : c.alpnProtocols
        var s = try serverConfig ?? ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        s.alpnProtocols = ["h2"]
        client = EmbeddedChannel()
        server = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandlers([try NIOQSSLHandler(client: c, serverName: "localhost"), clientApp])
        try server.pipeline.syncOperations.addHandlers([try NIOQSSLHandler(server: s), serverApp])
        _ = try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Moves bytes until neither side writes anything more.
    func interact() throws {
        for _ in 0..<50 {
            var moved = false
            while let out = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                if server.isActive { try server.writeInbound(out) }
            }
            while let out = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if client.isActive { try client.writeInbound(out) }
            }
            if !moved { return }
        }
    }
}

@Suite("NIOQSSLHandler back to back on EmbeddedChannels")
struct HandlerTests {
    @Test("the application closing before the handshake completed is not reported to it as the peer's unclean shutdown")
    func ownCloseBeforeHandshakeIsClean() throws {
        let pair = try Pair()
        try pair.client.close().wait()
        #expect(!pair.clientApp.errors.contains { ($0 as? NIOQSSLError).map { if case .uncleanShutdown = $0 { true } else { false } } ?? false },
            "\(pair.clientApp.errors)")
        #expect(!pair.client.isActive)
    }

    @Test("a write held until the handshake completes is failed, not dropped, when the handler is removed first")
    func heldWriteFailsOnRemoval() throws {
        let pair = try Pair()
        let promise = pair.client.eventLoop.makePromise(of: Void.self)
        pair.client.pipeline.write(pair.client.allocator.buffer(bytes: [1, 2, 3]), promise: promise)
        let handler = try pair.client.pipeline.syncOperations.handler(type: NIOQSSLHandler.self)
        try pair.client.pipeline.syncOperations.removeHandler(handler).wait()
        final class Outcome: @unchecked Sendable { var error: Error? }  // set on the embedded loop, this thread
        let outcome = Outcome()
        promise.futureResult.whenFailure { outcome.error = $0 }
        #expect(outcome.error is ChannelError, "the promise of a held write completes when its handler goes")
    }

    @Test("the handshake fires TLSUserEvent.handshakeCompleted with the ALPN protocol on both sides")
    func handshakeEvents() throws {
        let pair = try Pair()
        try pair.interact()
        #expect(pair.clientApp.events == ["handshakeCompleted(h2)"])
        #expect(pair.serverApp.events == ["handshakeCompleted(h2)"])
    }

    @Test("QSSLUserEvent: the handshake's summary, then the issued sessions, each read only through its own accessor")
    func qsslUserEvents() throws {
        let pair = try Pair()
        try pair.interact()
        let client = pair.clientApp.qsslEvents
        try #require(client.count >= 2, "\(client)")
        let summary = try #require(client[0].handshakeSummary)
        #expect(summary.alpnProtocol == "h2")
        #expect(client[0].issuedSession == nil && client[0].clientAuthentication == nil)
        #expect(client[0] == .handshakeCompleted(summary))
        for event in client.dropFirst() {
            let session = try #require(event.issuedSession)
            #expect(event.handshakeSummary == nil && event.clientAuthentication == nil)
            #expect(event == .sessionIssued(session))
        }
        #expect(pair.serverApp.qsslEvents.map(\.handshakeSummary?.alpnProtocol) == ["h2"])

        // A declined certificate request is told apart from "not this event".
        let declined = QSSLUserEvent.clientAuthenticated(nil)
        #expect(declined.clientAuthentication == ClientAuthenticationEvent(identity: nil))
        #expect(declined.handshakeSummary == nil && declined.issuedSession == nil)
        #expect(declined != .handshakeCompleted(summary))
    }

    @Test("writes made before the handshake completes are buffered and delivered after it")
    func earlyWrites() throws {
        let pair = try Pair()
        pair.client.writeAndFlush(pair.client.allocator.buffer(string: "early"), promise: nil)
        try pair.interact()
        #expect(pair.serverApp.data == Array("early".utf8))
        pair.server.writeAndFlush(pair.server.allocator.buffer(string: "reply"), promise: nil)
        try pair.interact()
        #expect(pair.clientApp.data == Array("reply".utf8))
    }

    @Test("close sends close_notify; the peer answers, reports shutdownCompleted and closes")
    func cleanShutdown() throws {
        let pair = try Pair()
        try pair.interact()
        let closed = pair.client.close()
        try pair.interact()
        try closed.wait()
        #expect(pair.serverApp.events.contains("shutdownCompleted"))
        #expect(!pair.server.isActive)
        #expect(pair.serverApp.errors.isEmpty)
    }

    @Test("a failed handshake surfaces the TLS error, writes the alert and closes the channel")
    func failure() throws {
        var client = ClientConfiguration(provider: .swiftCrypto, verifier: try DemoPKI().verifier)  // trusts another root
        client.alpnProtocols = ["h2"]
        let pair = try Pair(client: client)
        try pair.interact()
        let clientError = try #require(pair.clientApp.errors.first as? NIOQSSLError)
        guard case .tls(let e) = clientError else {
            Issue.record("\(clientError)")
            return
        }
        #expect(e.alert == .unknownCA)
        #expect(!pair.client.isActive)
        let serverError = try #require(pair.serverApp.errors.first as? NIOQSSLError)
        guard case .tls(let s) = serverError else {
            Issue.record("\(serverError)")
            return
        }
        #expect(s.code == .alertReceived(.unknownCA))
    }

    @Test("a transport closed before close_notify is reported as an unclean shutdown")
    func uncleanShutdown() throws {
        let pair = try Pair()
        try pair.interact()
        _ = try? pair.server.finish()
        pair.client.pipeline.fireChannelInactive()
        #expect(pair.clientApp.errors.contains { ($0 as? NIOQSSLError).map { if case .uncleanShutdown = $0 { true } else { false } } ?? false })
    }

    @Test("the fatal alert is written before errorCaught fires, so an application that closes there still sends it")
    func alertBeforeError() throws {
        final class CloseOnError: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
        }
        let server = EmbeddedChannel()
        let config = try ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        try server.pipeline.syncOperations.addHandlers([try NIOQSSLHandler(server: config), CloseOnError()])
        _ = try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // A handshake record whose ClientHello is truncated: decode_error.
        _ = try? server.writeInbound(server.allocator.buffer(bytes: [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03]))
        var written: [UInt8] = []
        while let out = try? server.readOutbound(as: ByteBuffer.self) { written += out.readableBytesView }
        #expect(written == [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, AlertDescription.decodeError.rawValue])
        #expect(!server.isActive)
    }
}
