import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session resumption with GnuTLS 3.7.

extension ResumptionInteropTests {
    /// GnuTLS 3.7 (Debian): gnutls-serv and gnutls-cli --resume. Classical groups only.
    @Suite("GnuTLS gnutls-serv / gnutls-cli")
    struct GnuTLS {
        /// (mechanism, gnutls-serv flags that leave only that mechanism, priority)
        static let serverCases: [(ResumptionMechanism, [String], String)] = [
            (.sessionID, ["--noticket"], "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
            (.tls12Ticket, ["--nodb"], "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
            (.tls13PSK, [], "NORMAL:-VERS-ALL:+VERS-TLS1.3")
        ]

        @Test("Q-SSL client resumes with gnutls-serv", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, flags: [String], priority: String) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(
                try Peers.executable("gnutls-serv"),
                [
                    "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
                    "--echo", "--priority", priority
                ] + flags)
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for i in 0..<3 {
                let message = "gnutls-resumption-\(i)\n"
                let exchange = try await qsslExchange(port: port, config: config, request: message, expectedBytes: message.utf8.count)
                #expect(exchange.answer == message)
                exchanges.append(exchange)
                try #require(!store.saved.isEmpty, "no session was saved after connection \(i + 1): \(server.text)")
            }
            try server.waitFor("This is a resumed session", count: 2, timeout: 10)
            server.terminate()
            expectClientResumptions(exchanges, store: store, mechanism: mechanism)
        }

        /// (mechanism, gnutls-cli priority, extra flags)
        static let clientCases: [(ResumptionMechanism, String, [String])] = [
            (.sessionID, "NORMAL:-VERS-ALL:+VERS-TLS1.2:%NO_TICKETS", []),
            (.tls12Ticket, "NORMAL:-VERS-ALL:+VERS-TLS1.2", []),
            (.tls13PSK, "NORMAL:-VERS-ALL:+VERS-TLS1.3", ["--waitresumption"])
        ]

        @Test("gnutls-cli --resume resumes with the Q-SSL server", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, priority: String, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let client = try PeerProcess(
                try Peers.executable("gnutls-cli"),
                [
                    "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", priority, "--resume"
                ] + flags + ["localhost"], stdin: "hello-after-resumption\n")
            defer { client.terminate() }
            try client.waitFor("This is a resumed session")
            try client.waitFor("hello-after-resumption")
            client.terminate()
            try await server.close()
            expectServerResumptions(outcomes, count: 2, version: mechanism.version)
        }

        @Test("TLS 1.2: gnutls-cli --resume takes the ticket the Q-SSL server renews in an abbreviated handshake (old key)")
        func renewedTicket() async throws {
            let (server, outcomes) = try await startResumptionServer {
                onlyMechanism(.tls12Ticket)(&$0)
                $0.ticketKeys = FirstTicketFromOlderKey()
            }
            let client = try PeerProcess(
                try Peers.executable("gnutls-cli"),
                [
                    "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2",
                    "--resume", "localhost"
                ], stdin: "hello-after-renewal\n")
            defer { client.terminate() }
            try client.waitFor("This is a resumed session")
            try client.waitFor("hello-after-renewal")
            client.terminate()
            try await server.close()
            expectServerResumptions(outcomes, count: 2, version: .tls12)
            let tickets = outcomes.handshakes.map(sentTicket)
            #expect(tickets == [true, true], "the resumed handshake renewed the ticket")
        }
    }
}
