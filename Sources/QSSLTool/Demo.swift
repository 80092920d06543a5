import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a hybrid post-quantum TLS handshake on loopback with an in-memory PKI and show it message by message.")

    @Option(help: "Group the client offers and shares (default: SecP384r1MLKEM1024).")
    var group: String = "SecP384r1MLKEM1024"

    @Flag(help: "Share only x25519 first, so the server asks for the hybrid with a HelloRetryRequest.")
    var helloRetry = false

    @Option(name: .customLong("alg"), help: "Certificate algorithm (default: the seed's hybrid, composite ML-DSA-65 + ECDSA-P384).")
    var certificateAlgorithm: String = PKIBuilder.Algorithm.mldsa65ECDSAP384.rawValue

    @Option(help: "Versions to show, in order: 1.3, 1.2 or both.")
    var tlsVersions: String = "1.3,1.2"

    func run() async throws {
        guard let group = NamedGroup(name: group) else { throw ValidationError("unknown group \(self.group)") }
        let versions = try tlsVersions.split(separator: ",").map { v -> ProtocolVersion in
            switch v.trimmingCharacters(in: .whitespaces) {
            case "1.3": return .tls13
            case "1.2": return .tls12
            default: throw ValidationError("unsupported TLS version '\(v)'")
            }
        }
        guard let algorithm = PKIBuilder.Algorithm(rawValue: certificateAlgorithm) else { throw ValidationError("unknown --alg \(certificateAlgorithm)") }
        print("Q-SSL demo: building an in-memory PKI (\(algorithm.rawValue) root CA and server certificate for localhost)…")
        let pki = try DemoPKI(algorithm: algorithm)
        for version in versions {
            try await show(version: version, group: group, pki: pki)
        }
    }

    private func show(version: ProtocolVersion, group: NamedGroup, pki: DemoPKI) async throws {
        var serverConfig = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        serverConfig.groups = Defaults.groups + (Defaults.groups.contains(group) ? [] : [group])
        let serverHandlers = HandlerBox()
        let server = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: serverConfig, mode: .echo, recordTrace: true,
            onHandler: { h in serverHandlers.append(h) }, log: { _ in })
        let port = server.port

        var clientConfig = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        clientConfig.versions = [version]
        clientConfig.groups = [group] + Defaults.groups.filter { $0 != group }
        clientConfig.keyShareGroups = helloRetry ? [.x25519] : [group]
        if helloRetry { clientConfig.groups = clientConfig.groups.filter { $0 != .x25519 } + [.x25519] }

        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: clientConfig,
                                                     serverName: "localhost", recordTrace: true)
        let message = Array("Hello, post-quantum world!".utf8)
        try await client.send(message)
        let echoed = try await client.read(expectedBytes: message.count)
        await client.close()
        let serverTrace = try await server.channel.eventLoop.submit { serverHandlers.first?.trace ?? [] }.get()
        try await server.close()

        print("")
        if version == .tls13 {
            print("TLS 1.3 full handshake (1-RTT), as in the seed's diagram 2.1 — server on 127.0.0.1:\(port)")
        } else {
            print("TLS 1.2 full handshake (2-RTT) with the Q-SSL hybrid suite, as in the seed's diagram 1.1 — server on 127.0.0.1:\(port)")
        }
        printTimeline(client: client.handler.trace, server: serverTrace)
        print("")
        summaryLines(client.summary, handshakeMilliseconds: milliseconds(client.handshakeDuration)).forEach { print($0) }
        print("Application data: sent \(message.count) bytes, echoed back \(echoed.count) bytes: \"\(String(decoding: echoed, as: UTF8.self))\"")
        guard echoed == message else { throw Failure(message: "echo mismatch", code: 1) }
    }

    /// Prints each message once, at the time it was sent, with the time it arrived at the other side.
    private func printTimeline(client: [HandshakeTraceEntry], server: [HandshakeTraceEntry]) {
        guard let origin = (client + server).map(\.instant).min() else { return }
        func ms(_ i: ContinuousClock.Instant) -> String { String(format: "%8.3f", milliseconds(i - origin)) }
        var rows: [(ContinuousClock.Instant, String)] = []
        for (side, sent, other) in [("C", client, server), ("S", server, client)] {
            var receivedBy: [String: [HandshakeTraceEntry]] = [:]
            for e in other where e.direction == .received { receivedBy[e.message, default: []].append(e) }
            var used: [String: Int] = [:]
            for e in sent where e.direction == .sent {
                let k = used[e.message, default: 0]
                used[e.message] = k + 1
                let arrival = receivedBy[e.message].flatMap { k < $0.count ? $0[k] : nil }
                let arrow = side == "C" ? "Client ────────▶ Server" : "Client ◀──────── Server"
                let name = e.message == "ServerHello" && sent.contains(where: { $0.message == "HelloRetryRequest" }) ? e.message : e.message
                let arrives = arrival.map { "processed at \(ms($0.instant)) ms" } ?? ""
                rows.append((e.instant, "\(ms(e.instant)) ms  \(arrow)  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(String(format: "%6d", e.length)) B   \(arrives)"))
            }
        }
        print("     time     direction                  message                 size")
        for (_, line) in rows.sorted(by: { $0.0 < $1.0 }) { print(line) }
    }
}

/// Server handlers created on event loops, read back on the same loop once the exchange is over.
final class HandlerBox: @unchecked Sendable {
    private let lock = NIOLock()
    private var handlers: [NIOQSSLHandler] = []
    func append(_ h: NIOQSSLHandler) { lock.withLock { handlers.append(h) } }
    var first: NIOQSSLHandler? { lock.withLock { handlers.first } }
}
