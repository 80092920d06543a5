import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session resumption with OpenSSL 4.0 (pyOpenSSL), the hybrid group on the resumed handshake.

extension ResumptionInteropTests {
    /// OpenSSL 4.0 through pyOpenSSL: TLS 1.3 PSK resumption with SecP384r1MLKEM1024 on the
    /// resumed handshake too (psk_dhe_ke).
    @Suite("OpenSSL 4.0 (pyOpenSSL), hybrid psk_dhe_ke")
    struct OpenSSL4 {
        @Test("Q-SSL client resumes with an OpenSSL 4 server on SecP384r1MLKEM1024 (and under requirePostQuantum)", arguments: [false, true])
        func qsslClient(requirePostQuantum: Bool) async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("openssl4_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                    InteropPKI.shared.path("ecdsa.key"), "SecP384r1MLKEM1024", "3"
                ])
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig {
                $0.sessionStore = store
                $0.requirePostQuantum = requirePostQuantum
            }
            var exchanges: [ClientExchange] = []
            for i in 0..<3 {
                let message = "openssl4-resumption-\(i)"
                let exchange = try await qsslExchange(port: port, config: config, request: message, expectedBytes: message.utf8.count)
                #expect(exchange.answer == message)
                exchanges.append(exchange)
                try #require(!store.saved.isEmpty, "no ticket was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish())
            #expect(result["ok"] as? Bool == true, "\(result)")
            expectClientResumptions(exchanges, store: store, mechanism: .tls13PSK, group: .secp384r1MLKEM1024)
            for (i, exchange) in exchanges.enumerated() {
                #expect(
                    (serverHelloLength(exchange.trace) ?? 0) >= hybridServerHelloMinimum,
                    "connection \(i + 1): the ServerHello carries a hybrid share (\(serverHelloLength(exchange.trace) ?? 0) B)")
            }
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            #expect(connections.allSatisfy { $0["group"] as? String == "SecP384r1MLKEM1024" }, "\(connections)")
        }

        @Test("an OpenSSL 4 client resumes with the Q-SSL server on SecP384r1MLKEM1024 (and under requirePostQuantum)", arguments: [false, true])
        func qsslServer(requirePostQuantum: Bool) async throws {
            let (server, outcomes) = try await startResumptionServer { $0.requirePostQuantum = requirePostQuantum }
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("openssl4_peer.py"), "resume-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "localhost", "SecP384r1MLKEM1024", "3"
                ])
            let result = try peerResult(peer.finish(timeout: 60))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            #expect(connections.allSatisfy { $0["group"] as? String == "SecP384r1MLKEM1024" }, "\(connections)")
            expectServerResumptions(outcomes, count: 3, version: .tls13, group: .secp384r1MLKEM1024)
            for (i, h) in outcomes.handshakes.enumerated() {
                #expect(
                    (serverHelloLength(h.trace) ?? 0) >= hybridServerHelloMinimum,
                    "connection \(i + 1): the ServerHello carries a hybrid share (\(serverHelloLength(h.trace) ?? 0) B)")
            }
        }

        @Test("an OpenSSL 4 client sharing only x25519 resumes with the Q-SSL server after a HelloRetryRequest to SecP384r1MLKEM1024")
        func qsslServerHelloRetry() async throws {
            let (server, outcomes) = try await startResumptionServer()
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("openssl4_peer.py"), "resume-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "localhost", "x25519:SecP384r1MLKEM1024", "3"
                ])
            let result = try peerResult(peer.finish(timeout: 60))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            expectServerResumptions(outcomes, count: 3, version: .tls13, group: .secp384r1MLKEM1024)
            let retried = outcomes.summaries.map(\.helloRetryRequest)
            #expect(retried == [true, true, true])
        }

        @Test("a Q-SSL client sharing only x25519 resumes with an OpenSSL 4 server after a HelloRetryRequest to SecP384r1MLKEM1024")
        func qsslClientHelloRetry() async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("openssl4_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                    InteropPKI.shared.path("ecdsa.key"), "SecP384r1MLKEM1024", "3"
                ])
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig(groups: [.secp384r1MLKEM1024, .x25519], keyShares: [.x25519]) { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for i in 0..<3 {
                let message = "openssl4-hrr-\(i)"
                exchanges.append(try await qsslExchange(port: port, config: config, request: message, expectedBytes: message.utf8.count))
                try #require(!store.saved.isEmpty, "no ticket was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish())
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            expectClientResumptions(exchanges, store: store, mechanism: .tls13PSK, group: .secp384r1MLKEM1024)
            let retried = exchanges.map(\.summary.helloRetryRequest)
            #expect(retried == [true, true, true])
        }
    }
}
