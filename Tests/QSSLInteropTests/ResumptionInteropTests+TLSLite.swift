import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session resumption with tlslite-ng 0.9.

extension ResumptionInteropTests {
    /// tlslite-ng 0.9 (pure Python): TLS 1.3 with the hybrid, TLS 1.2 by session ID and ticket.
    @Suite("tlslite-ng")
    struct TLSLite {
        /// (mechanism, environment of the peer server that leaves only that mechanism, groups)
        static let serverCases: [(ResumptionMechanism, [String: String], String)] = [
            (.sessionID, ["TLSLITE_VERSION": "1.2", "TLSLITE_TICKETS": "0"], "x25519,secp256r1"),
            (.tls12Ticket, ["TLSLITE_VERSION": "1.2", "TLSLITE_SESSION_CACHE": "0"], "x25519,secp256r1"),
            (.tls13PSK, [:], "secp384r1mlkem1024")
        ]

        @Test("Q-SSL client resumes with a tlslite-ng server", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, environment: [String: String], groups: String) async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("tlslite_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                    InteropPKI.shared.path("ecdsa.key"), groups, "3"
                ], environment: environment)
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for i in 0..<3 {
                let message = "tlslite-resumption-\(i)"
                let exchange = try await qsslExchange(
                    port: port, config: config, request: message, expectedBytes: message.utf8.count,
                    timeout: .seconds(60))
                #expect(exchange.answer == message)
                exchanges.append(exchange)
                try #require(!store.saved.isEmpty, "no session was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish(timeout: 60))
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, true, true], "\(connections)")
            expectClientResumptions(
                exchanges, store: store, mechanism: mechanism,
                group: mechanism == .tls13PSK ? .secp384r1MLKEM1024 : nil)
            if mechanism == .tls13PSK {
                for (i, exchange) in exchanges.enumerated() {
                    #expect((serverHelloLength(exchange.trace) ?? 0) >= hybridServerHelloMinimum, "connection \(i + 1)")
                }
            }
        }

        /// (mechanism, environment of the peer client, groups)
        static let clientCases: [(ResumptionMechanism, [String: String], String)] = [
            (.sessionID, ["TLSLITE_VERSION": "1.2"], "x25519,secp384r1"),
            (.tls12Ticket, ["TLSLITE_VERSION": "1.2"], "x25519,secp384r1"),
            (.tls13PSK, [:], "secp384r1mlkem1024")
        ]

        @Test("a tlslite-ng client resumes with the Q-SSL server", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, environment: [String: String], groups: String) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", groups, "3"
                ], environment: environment)
            let result = try peerResult(peer.finish(timeout: 120))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, true, true], "\(connections)")
            expectServerResumptions(
                outcomes, count: 3, version: mechanism.version,
                group: mechanism == .tls13PSK ? .secp384r1MLKEM1024 : nil)
            if mechanism == .sessionID {
                #expect(connections.allSatisfy { $0["tls12_tickets"] as? Int == 0 }, "no ticket was issued: \(connections)")
            }
            if mechanism == .tls12Ticket {
                #expect(connections.allSatisfy { $0["tls12_tickets"] as? Int ?? 0 > 0 }, "\(connections)")
            }
        }

        /// A ServerHello with no key share: psk_ke (a TLS 1.3 ServerHello with supported_versions
        /// and pre_shared_key only is under 100 bytes; an x25519 share alone adds 40).
        static let pskKEServerHelloMaximum = 100

        @Test("psk_ke: a Q-SSL client that allows it resumes with a tlslite-ng server that accepts only psk_ke")
        func qsslClientPSKKE() async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("tlslite_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                    InteropPKI.shared.path("ecdsa.key"), "secp384r1mlkem1024", "2"
                ], environment: ["TLSLITE_PSK_MODES": "psk_ke"])
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig {
                $0.sessionStore = store
                $0.offerPSKWithoutKeyExchange = true
            }
            var exchanges: [ClientExchange] = []
            for i in 0..<2 {
                let message = "psk_ke-\(i)"
                exchanges.append(
                    try await qsslExchange(
                        port: port, config: config, request: message, expectedBytes: message.utf8.count,
                        timeout: .seconds(60)))
                try #require(!store.saved.isEmpty, "no session was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish(timeout: 60))
            #expect(result["ok"] as? Bool == true, "\(result)")
            expectClientResumptions(exchanges, store: store, mechanism: .tls13PSK)
            let length = serverHelloLength(exchanges[1].trace) ?? 0
            #expect(length > 0 && length < Self.pskKEServerHelloMaximum, "the resumed ServerHello (\(length) B) has no key share")
        }

        @Test(
            "psk_ke: a tlslite-ng client offering only psk_ke resumes with a Q-SSL server that accepts it, and gets full handshakes from one that does not",
            arguments: [true, false])
        func qsslServerPSKKE(accept: Bool) async throws {
            let (server, outcomes) = try await startResumptionServer {
                $0.versions = [.tls13]
                $0.acceptPSKWithoutKeyExchange = accept
            }
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", "secp384r1mlkem1024", "2"
                ], environment: ["TLSLITE_PSK_MODES": "psk_ke"])
            let result = try peerResult(peer.finish(timeout: 120))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, accept], "\(connections)")
            if accept {
                expectServerResumptions(outcomes, count: 2, version: .tls13)
                let length = outcomes.handshakes.count == 2 ? serverHelloLength(outcomes.handshakes[1].trace) ?? 0 : 0
                #expect(length > 0 && length < Self.pskKEServerHelloMaximum, "the resumed ServerHello (\(length) B) has no key share")
            } else {
                let resumed = outcomes.summaries.map(\.resumed)
                #expect(resumed == [false, false], "psk_ke is refused by default: a full handshake, not an error")
                #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
            }
        }

        @Test("TLS 1.2: a tlslite-ng client takes the ticket the Q-SSL server renews in an abbreviated handshake (old key), and resumes with it")
        func renewedTicket() async throws {
            let (server, outcomes) = try await startResumptionServer {
                onlyMechanism(.tls12Ticket)(&$0)
                $0.ticketKeys = FirstTicketFromOlderKey()
            }
            // tlslite-ng 0.9 reads a ticket renewed in an abbreviated handshake into the connection
            // but keeps the old session, old ticket included, for the next one:
            // TLSLITE_TAKE_RENEWED_TICKETS=1 makes the peer script carry the renewed ticket over.
            let peer = try PeerProcess(
                try Peers.requirePython(),
                [
                    Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", "x25519,secp384r1", "3"
                ], environment: ["TLSLITE_VERSION": "1.2", "TLSLITE_TAKE_RENEWED_TICKETS": "1"])
            let result = try peerResult(peer.finish(timeout: 120))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, true, true], "\(connections)")
            #expect(connections.map { $0["renewed_tls12_ticket"] as? Bool } == [false, true, false], "\(connections)")
            expectServerResumptions(outcomes, count: 3, version: .tls12)
            let tickets = outcomes.handshakes.map(sentTicket)
            #expect(tickets == [true, true, false], "ticket sent on: full handshake, renewal, none for the renewed (current) ticket")
        }
    }
}
