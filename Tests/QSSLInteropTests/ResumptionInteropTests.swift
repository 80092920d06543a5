import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session resumption against real peers (issue 9), both directions where the peer can:
// TLS 1.2 by session ID and by RFC 5077 ticket, TLS 1.3 PSK (psk_dhe_ke) — OpenSSL 3.0's
// s_server/s_client, GnuTLS, OpenSSL 4.0 through pyOpenSSL (the hybrid SecP384r1MLKEM1024 on the
// resumed handshake) and tlslite-ng. Each case checks both ends: `resumed` on the Q-SSL side and
// the peer's own word for it (s_client's and s_server's "Reused, TLSv1.x", GnuTLS's "This is a
// resumed session", pyOpenSSL's SSL_session_reused, tlslite-ng's `resumed` or the binder it
// verified). The mechanism is pinned by configuration, not guessed: a session-ID case runs with
// tickets off on the side that would issue them, a ticket case with the session cache off.
//
// TLS 1.3 tickets arrive after the handshake: every Q-SSL client here reads the peer's answer
// (which the tickets precede) before it closes, and every peer client does the same.

@Suite("Interop: session resumption", .serialized)
struct ResumptionInteropTests {}

// MARK: - OpenSSL 3.0

extension ResumptionInteropTests {
    /// OpenSSL 3.0 (Debian): s_server and s_client. Classical groups only.
    @Suite("OpenSSL 3.0 s_server / s_client")
    struct OpenSSL3 {
        /// (mechanism, s_server flags that leave only that mechanism, key exchange, HelloRetryRequest expected)
        static let serverCases: [(ResumptionMechanism, [String], NamedGroup, Bool)] = [
            (.sessionID, ["-tls1_2", "-no_ticket"], .x25519, false),
            (.tls12Ticket, ["-tls1_2", "-no_cache"], .x25519, false),
            (.tls13PSK, ["-tls1_3"], .x25519, false),
            // s_server wants only secp384r1, which the Q-SSL client does not share at first: the
            // resumed ClientHello is retried too, and its binder recomputed over the retry.
            (.tls13PSK, ["-tls1_3", "-groups", "secp384r1"], .secp384r1, true)
        ]

        @Test("Q-SSL client resumes with s_server", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, flags: [String], group: NamedGroup, retry: Bool) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                    "-key", InteropPKI.shared.path("ecdsa.key"), "-www"
                ] + flags)
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for _ in 0..<3 {
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                try #require(!store.saved.isEmpty, "no session was saved after connection \(exchanges.count): \(server.text)")
            }
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            #expect(exchanges[0].answer.contains("New, \(tls)"), "\(exchanges[0].answer)")
            for e in exchanges.dropFirst() {
                let retried = e.summary.helloRetryRequest
                #expect(e.answer.contains("Reused, \(tls)"), "s_server's page: \(e.answer)")
                #expect(retried == retry)
            }
            expectClientResumptions(exchanges, store: store, mechanism: mechanism, group: group)
        }

        /// (mechanism, s_client flags)
        static let clientCases: [(ResumptionMechanism, [String])] = [
            (.sessionID, ["-tls1_2", "-no_ticket"]),
            (.tls12Ticket, ["-tls1_2"]),
            (.tls13PSK, ["-tls1_3"])
        ]

        @Test("s_client resumes with the Q-SSL server (-sess_out, then -sess_in)", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let marker = "resumption-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(
                    try Peers.executable("openssl"),
                    [
                        "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                        "-servername", "localhost", "-verify_return_error", sessionFlag, sessionFile
                    ] + flags, stdin: marker + "\n")
                defer { client.terminate() }
                // The echo comes after the TLS 1.3 tickets, so -sess_out has been written by then.
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
                if i == 0 {
                    let written = (try? String(contentsOfFile: sessionFile, encoding: .utf8)) ?? ""
                    try #require(written.contains("BEGIN SSL SESSION PARAMETERS"), "s_client wrote no session: \(client.text)")
                }
            }
            try await server.close()
            #expect(outputs[0].contains("New, \(tls)"), "\(outputs[0])")
            #expect(outputs[1].contains("Reused, \(tls)"), "s_client -sess_in: \(outputs[1])")
            expectServerResumptions(outcomes, count: 2, version: mechanism.version)
        }

        @Test(
            "s_client -reconnect resumes five times with the Q-SSL server (TLS 1.2 session ID and ticket)",
            arguments: [ResumptionMechanism.sessionID, .tls12Ticket])
        func reconnect(mechanism: ResumptionMechanism) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_2", "-reconnect"
                ] + (mechanism == .sessionID ? ["-no_ticket"] : []), stdin: "")
            defer { client.terminate() }
            try client.waitFor("Reused, TLSv1.2", count: 5)
            let output = client.text
            client.terminate()
            try await server.close()
            #expect(occurrences(of: "New, TLSv1.2", in: output) == 1, "\(output)")
            expectServerResumptions(outcomes, count: 6, version: .tls12)
        }

        @Test(
            "s_client -reconnect resumes with the Q-SSL server (TLS 1.3)",
            .disabled(
                """
                peer limitation: OpenSSL 3.0's s_client -reconnect keeps the session it has when the handshake \
                completes, before the TLS 1.3 NewSessionTickets arrive, so it never resumes TLS 1.3 — not even \
                against OpenSSL's own s_server (measured: six 'New, TLSv1.3'). TLS 1.3 with s_client is covered \
                by -sess_out/-sess_in above.
                """))
        func reconnectTLS13() async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(.tls13PSK))
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", "-reconnect"
                ], stdin: "")
            defer { client.terminate() }
            try client.waitFor("Reused, TLSv1.3", count: 5)
            client.terminate()
            try await server.close()
            expectServerResumptions(outcomes, count: 6, version: .tls13)
        }

        @Test("TLS 1.2: s_client -reconnect takes the ticket the Q-SSL server renews in an abbreviated handshake (old key), and resumes with it")
        func renewedTicket() async throws {
            let (server, outcomes) = try await startResumptionServer {
                onlyMechanism(.tls12Ticket)(&$0)
                $0.ticketKeys = FirstTicketFromOlderKey()
            }
            // -reconnect, not -sess_in/-sess_out: s_client 3.0 writes no -sess_out file after a
            // resumed TLS 1.2 handshake, renewed ticket or not (observed); -reconnect reuses the
            // connection's current session, which holds the renewed ticket.
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_2", "-reconnect"
                ], stdin: "")
            defer { client.terminate() }
            try client.waitFor("Reused, TLSv1.2", count: 5)
            client.terminate()
            try await server.close()
            expectServerResumptions(outcomes, count: 6, version: .tls12)
            let tickets = outcomes.handshakes.map(sentTicket)
            #expect(
                tickets == [true, true, false, false, false, false],
                "ticket sent on: the full handshake, the renewal, then none for the renewed (current) ticket")
        }

        @Test("s_client resumes with the Q-SSL server across a HelloRetryRequest (TLS 1.3)")
        func qsslServerHelloRetry() async throws {
            let (server, outcomes) = try await startResumptionServer {
                $0.groups = [.secp384r1]
                $0.versions = [.tls13]
            }
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let marker = "hrr-resumption-\(i)"
                let client = try PeerProcess(
                    try Peers.executable("openssl"),
                    [
                        "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                        "-servername", "localhost", "-verify_return_error", "-tls1_3", "-groups", "x25519:secp384r1", sessionFlag, sessionFile
                    ], stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
            }
            try await server.close()
            #expect(outputs[1].contains("Reused, TLSv1.3"), "s_client -sess_in: \(outputs[1])")
            expectServerResumptions(outcomes, count: 2, version: .tls13, group: .secp384r1)
            let retried = outcomes.summaries.map(\.helloRetryRequest)
            #expect(retried == [true, true])
        }

        @Test("s_server whose tickets allow early data (max_early_data): the Q-SSL client keeps them, resumes, sends none")
        func qsslClientEarlyDataTickets() async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                    "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-tls1_3", "-max_early_data", "16384"
                ])
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for _ in 0..<3 {
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                try #require(!store.saved.isEmpty, "no session was saved after connection \(exchanges.count): \(server.text)")
            }
            for e in exchanges.dropFirst() { #expect(e.answer.contains("Reused, TLSv1.3"), "s_server's page: \(e.answer)") }
            // (s_server cannot read early data in -www mode; the tickets advertise it all the same.)
            let earlyData = exchanges.contains { $0.trace.contains { $0.direction == .sent && $0.message == "EndOfEarlyData" } }
            #expect(!earlyData)
            expectClientResumptions(exchanges, store: store, mechanism: .tls13PSK, group: .x25519)
        }

        @Test(
            "a Q-SSL client offering a session a restarted s_server does not know falls back to a full handshake",
            arguments: [(ResumptionMechanism.sessionID, ["-tls1_2", "-no_ticket"]), (.tls12Ticket, ["-tls1_2", "-no_cache"]), (.tls13PSK, ["-tls1_3"])])
        func qsslClientUnknownSession(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            // Two s_server processes one after the other: the second has another ticket key and
            // an empty cache. Sessions are kept by server name, so the port does not matter.
            for _ in 0..<2 {
                let port = try Peers.freePort()
                let server = try PeerProcess(
                    try Peers.executable("openssl"),
                    [
                        "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                        "-key", InteropPKI.shared.path("ecdsa.key"), "-www"
                    ] + flags)
                defer { server.terminate() }
                try Peers.waitForListener(port: port)
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                server.terminate()
            }
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            let resumed = exchanges.map(\.summary.resumed)
            #expect(resumed == [false, false])
            #expect(exchanges[1].answer.contains("New, \(tls)"), "\(exchanges[1].answer)")
            let offered = store.offered
            #expect(offered.count == 2 && offered[1].map(mechanism.matches) == true, "the second connection offered the first one's session")
            // The full handshake's new session replaces the refused one.
            #expect(store.saved.count >= 2)
        }

        @Test(
            "a Q-SSL client holding a TLS 1.2 session meets a server that now speaks TLS 1.3: a full TLS 1.3 handshake (the echoed legacy_session_id is no resumption)",
            arguments: [(ResumptionMechanism.sessionID, ["-no_ticket"]), (.tls12Ticket, [])])
        func qsslClientTLS12SessionToTLS13Server(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for versionFlags in [["-tls1_2"], []] {
                let port = try Peers.freePort()
                let server = try PeerProcess(
                    try Peers.executable("openssl"),
                    [
                        "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                        "-key", InteropPKI.shared.path("ecdsa.key"), "-www"
                    ] + versionFlags + flags)
                defer { server.terminate() }
                try Peers.waitForListener(port: port)
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                server.terminate()
            }
            let versions = exchanges.map(\.summary.version)
            let resumed = exchanges.map(\.summary.resumed)
            #expect(versions == [.tls12, .tls13])
            #expect(resumed == [false, false])
            #expect(exchanges[1].answer.contains("New, TLSv1.3"), "\(exchanges[1].answer)")
            let offered = store.offered
            #expect(offered.count == 2 && offered[1].map(mechanism.matches) == true, "the TLS 1.2 session was offered")
        }

        @Test("a Q-SSL client holding a TLS 1.3 ticket meets a TLS 1.2-only s_server: a full TLS 1.2 handshake")
        func qsslClientTLS13TicketToTLS12Server() async throws {
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for versionFlag in ["-tls1_3", "-tls1_2"] {
                let port = try Peers.freePort()
                let server = try PeerProcess(
                    try Peers.executable("openssl"),
                    [
                        "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                        "-key", InteropPKI.shared.path("ecdsa.key"), "-www", versionFlag
                    ])
                defer { server.terminate() }
                try Peers.waitForListener(port: port)
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                server.terminate()
            }
            let versions = exchanges.map(\.summary.version)
            let resumed = exchanges.map(\.summary.resumed)
            #expect(versions == [.tls13, .tls12])
            #expect(resumed == [false, false])
            let offered = store.offered
            #expect(offered.count == 2 && offered[1].map(ResumptionMechanism.tls13PSK.matches) == true, "the TLS 1.3 ticket was offered")
        }
    }
}
