import NIOCore
import NIOPosix
import NIOQSSL
import NIOTLS
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import Testing

/// A server that, once the handshake completes, sends `total` bytes in 16 KiB writes without
/// waiting to be asked.
final class Flood: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    init(total: Int) { self.total = total }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            var sent = 0
            while sent < total {
                let n = min(16_384, total - sent)
                context.write(wrapOutboundOut(context.channel.allocator.buffer(repeating: 0x41, count: n)), promise: nil)
                sent += n
            }
            context.flush()
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@Suite("NIO client against a hostile server: what it keeps is bounded")
struct HostileServerTests {
    @Test("a server that sends more than maxBufferedBytes is cut off there; read returns the first part and truncated is set")
    func receivedDataIsCapped() async throws {
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0,
            configuration: ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        ) {
            [Flood(total: 8 << 20)]
        }
        defer { Task { try? await server.close() } }
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port,
            configuration: ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier),
            serverName: "localhost", maxBufferedBytes: 1 << 20)
        let received = try await client.read(idleTimeout: .seconds(5))
        #expect(received.count == 1 << 20)
        #expect(client.truncated)
        await client.close()
    }

    @Test("a server that sends many tickets: the client keeps the newest few")
    func ticketsAreCapped() async throws {
        var config = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        config.tls13TicketCount = 16
        let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config) { [Echo()] }
        defer { Task { try? await server.close() } }
        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.versions = [.tls13]
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: clientConfig, serverName: "localhost")
        try await client.send(Array("ping".utf8))
        _ = try await client.read(expectedBytes: 4, idleTimeout: .seconds(5))  // the tickets came before the echo
        #expect(client.issuedSessions.count == NIOQSSLClient.maxIssuedSessionsKept)
        await client.close()
    }
}
