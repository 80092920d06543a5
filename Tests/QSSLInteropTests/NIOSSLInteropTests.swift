// swift-nio-ssl (BoringSSL) as an in-process peer: its client against Q-SSL's NIO server, and
// Q-SSL's NIO client against its server, over loopback, for each group and version both speak.
// swift-nio-ssl 2.37 offers X25519MLKEM768 but neither SecP384r1MLKEM1024 nor SecP256r1MLKEM768.

import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import NIOSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@Suite("Interop: swift-nio-ssl 2.37 (BoringSSL) in process")
struct NIOSSLInteropTests {
    /// One pairing: the version and group both ends are held to, and the server's PKI.
    struct Case: Sendable, CustomTestStringConvertible {
        let version: TLSVersion
        let curve: NIOTLSCurve
        let group: NamedGroup
        let pki: String

        var qsslVersion: ProtocolVersion { version == .tlsv13 ? .tls13 : .tls12 }
        var testDescription: String { "\(version == .tlsv13 ? "TLS 1.3" : "TLS 1.2"), \(group), \(pki)" }
    }

    static let cases: [Case] = [
        Case(version: .tlsv13, curve: .x25519_MLKEM768, group: .x25519MLKEM768, pki: "ecdsa"),
        Case(version: .tlsv13, curve: .x25519, group: .x25519, pki: "ecdsa"),
        Case(version: .tlsv13, curve: .secp384r1, group: .secp384r1, pki: "rsa"),
        Case(version: .tlsv12, curve: .secp384r1, group: .secp384r1, pki: "ecdsa"),
        Case(version: .tlsv12, curve: .x25519, group: .x25519, pki: "rsa")
    ]

    /// What a swift-nio-ssl client reads back, once `expected` bytes have come (or why not).
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let expected: Int
        let done: EventLoopPromise<[UInt8]>
        private var bytes: [UInt8] = []
        private var finished = false

        init(expected: Int, done: EventLoopPromise<[UInt8]>) {
            self.expected = expected
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
            if bytes.count >= expected { finish(.success(bytes)) }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            finish(.failure(error))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(ChannelError.eof))
        }

        /// From off the channel (a failed connect, the deadline): hops to the promise's loop.
        func fail(_ error: Error) {
            done.futureResult.eventLoop.execute { self.finish(.failure(error)) }
        }

        private func finish(_ result: Result<[UInt8], Error>) {
            guard !finished else { return }
            finished = true
            done.completeWith(result)
        }
    }

    /// Connects a swift-nio-ssl client to `port`, sends `message` and returns what came back (the
    /// echo), closing the connection either way.
    static func niosslRoundTrip(port: Int, tls: TLSConfiguration, message: [UInt8]) async throws -> [UInt8] {
        let context = try NIOSSLContext(configuration: tls)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = loop.makePromise(of: [UInt8].self)
        let collect = Collect(expected: message.count, done: done)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            try NIOSSLClientHandler(context: context, serverHostname: "localhost"), collect
                        ])
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
        } catch {
            collect.fail(error)  // a promise left pending is a fatal leak in debug builds
            throw error
        }
        // A handshake or echo that stalls ends the test instead of hanging it.
        let deadline = loop.scheduleTask(in: .seconds(30)) { collect.fail(ChannelError.connectTimeout(.seconds(30))) }
        channel.writeAndFlush(ByteBuffer(bytes: message), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        return try await done.futureResult.get()
    }

    /// `niosslRoundTrip` to `server`, which is closed afterwards, whatever happened.
    static func roundTrip(closing server: NIOQSSLServer, tls: TLSConfiguration, message: [UInt8]) async throws -> [UInt8] {
        let result: Result<[UInt8], Error>
        do { result = .success(try await niosslRoundTrip(port: server.port, tls: tls, message: message)) } catch { result = .failure(error) }
        try await server.close()
        return try result.get()
    }

    @Test("swift-nio-ssl client ↔ Q-SSL server", arguments: cases)
    func niosslClient(_ c: Case) async throws {
        let (server, outcomes) = try await startQSSLServer(pki: c.pki)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = c.version
        tls.maximumTLSVersion = c.version
        tls.curves = [c.curve]
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(InteropPKI.shared.path("\(c.pki)-ca.pem")))
        let message = Array("hello from swift-nio-ssl".utf8)
        let echoed = try await Self.roundTrip(closing: server, tls: tls, message: message)
        #expect(echoed == message)
        let summary = try #require(outcomes.summaries.first)
        #expect(summary.version == c.qsslVersion)
        #expect(summary.group == c.group)
        #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
    }

    @Test("Q-SSL client ↔ swift-nio-ssl server", arguments: cases)
    func qsslClient(_ c: Case) async throws {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(InteropPKI.shared.path("\(c.pki).pem")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: InteropPKI.shared.path("\(c.pki).key"), format: .pem)))
        tls.minimumTLSVersion = c.version
        tls.maximumTLSVersion = c.version
        tls.curves = [c.curve]
        if c.version == .tlsv12 && c.pki == "ecdsa" {
            // What BoringSSL picks by default with its P-384 key in TLS 1.2 (SHA-256: the code
            // point names the hash only there), pinned so the row keeps testing that reading.
            tls.signingSignatureAlgorithms = [.ecdsaSecp256R1Sha256]
        }
        let context = try NIOSSLContext(configuration: tls)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([NIOSSLServerHandler(context: context), EchoHandler()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let config = qsslClientConfig(pki: c.pki, groups: [c.group]) { $0.versions = [c.qsslVersion] }
        let message = Array("hello from Q-SSL".utf8)
        let result: Result<NIOQSSLClient, Error>
        do {
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost")
            try await client.send(message)
            #expect(try await client.read(expectedBytes: message.count) == message)
            await client.close()
            result = .success(client)
        } catch {
            result = .failure(error)
        }
        try await listener.close()
        let client = try result.get()
        #expect(client.summary.version == c.qsslVersion)
        #expect(client.summary.group == c.group)
        #expect(client.summary.peerCertificates.count == 1)
        if c.version == .tlsv12 && c.pki == "ecdsa" { #expect(client.summary.peerSignatureScheme == .ecdsaSecp256r1SHA256) }
    }

    @Test("a swift-nio-ssl client that trusts another CA refuses Q-SSL's certificate, and the server hears why")
    func unknownCA() async throws {
        let (server, outcomes) = try await startQSSLServer(pki: "ecdsa")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(InteropPKI.shared.path("rsa-ca.pem")))
        await #expect(throws: NIOSSLError.self) { try await Self.niosslRoundTrip(port: server.port, tls: tls, message: Array("x".utf8)) }
        // The server learns of it from the client's alert: unknown_ca (RFC 8446 §6.2).
        let deadline = ContinuousClock.now + .seconds(10)
        while outcomes.errors.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        try await server.close()
        let error = try #require(outcomes.errors.first.flatMap(tlsError), "\(outcomes.errors)")
        #expect(error.code.receivedAlert == .unknownCA, "\(error)")
    }

    @Test("a swift-nio-ssl client verifies Q-SSL's ML-DSA-65 chain and CertificateVerify (TLS 1.3)")
    func mldsaServer() async throws {
        let pki = try DemoPKI(algorithm: .mldsa65)
        let caPath = InteropPKI.shared.path("mldsa65-ca.pem")
        try CertificateFiles.pem([pki.ca.certificate]).write(toFile: caPath, atomically: true, encoding: .utf8)
        let outcomes = ServerOutcomes()
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: ServerConfiguration(provider: .swiftCrypto, certificates: [pki.serverCertifiedKey])
        ) { [EchoHandler(), outcomes] }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv13
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
        // BoringSSL verifies ML-DSA-65 (0x0905) when asked to; it is not in its default list.
        tls.verifySignatureAlgorithms = [SignatureAlgorithm(rawValue: 0x0905)]
        let message = Array("post-quantum signatures".utf8)
        let echoed = try await Self.roundTrip(closing: server, tls: tls, message: message)
        #expect(echoed == message)
        let summary = try #require(outcomes.summaries.first)
        #expect(summary.localSignatureScheme == .mldsa65)
        #expect(summary.group.isPostQuantum, "swift-nio-ssl's default groups start with X25519MLKEM768: \(summary.group)")
    }

    @Test("a swift-nio-ssl client authenticates with its ECDSA P-384 certificate to a Q-SSL server", arguments: [TLSVersion.tlsv13, .tlsv12])
    func mutualTLS(_ version: TLSVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.clientCA.certificate])
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = version
        tls.maximumTLSVersion = version
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(InteropPKI.shared.path("ecdsa-ca.pem")))
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(pki.path("client.pem")).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: pki.path("client.key"), format: .pem))
        let message = Array("hello, it is me".utf8)
        let reply = try await Self.roundTrip(closing: server, tls: tls, message: message)
        #expect(reply == message)
        let summary = try #require(record.summaries.first)
        #expect(summary.version == (version == .tlsv13 ? .tls13 : .tls12))
        #expect(summary.peerIdentity?.subject.contains("client-1") == true, "\(String(describing: summary.peerIdentity))")
        #expect(summary.peerIdentity?.keyAlgorithm == "ECDSA P-384")
        // BoringSSL signs TLS 1.2's CertificateVerify with SHA-256 on its P-384 key
        // (ecdsa_secp256r1_sha256, which in TLS 1.2 names the hash only); TLS 1.3 binds the curve.
        #expect(summary.peerSignatureScheme == (version == .tlsv13 ? .ecdsaSecp384r1SHA384 : .ecdsaSecp256r1SHA256))
        #expect(record.errors.isEmpty, "\(record.errors)")
    }
}
