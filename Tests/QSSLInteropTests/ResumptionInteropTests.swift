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

/// How a Q-SSL client resumed, judged from the session it offered.
enum ResumptionMechanism: String, Sendable, CustomStringConvertible {
    case sessionID = "TLS 1.2 session ID"
    case tls12Ticket = "TLS 1.2 ticket"
    case tls13PSK = "TLS 1.3 PSK"
    var description: String { rawValue }
    var version: ProtocolVersion { self == .tls13PSK ? .tls13 : .tls12 }

    /// Whether `session`, offered by the client, is of this kind.
    func matches(_ session: TLSSession) -> Bool {
        let ticket = session.ticket.flatMap { $0.isEmpty ? nil : $0 }
        switch self {
        case .sessionID: return session.state.version == .tls12 && ticket == nil && !session.sessionID.isEmpty
        case .tls12Ticket: return session.state.version == .tls12 && ticket != nil
        case .tls13PSK: return session.state.version == .tls13 && ticket != nil
        }
    }
}

/// A client session store that remembers what it saved and handed out, so that a test knows
/// which session (session ID, TLS 1.2 ticket, TLS 1.3 ticket) a resumption was offered.
final class RecordingSessionStore: ClientSessionStore, @unchecked Sendable {
    private let inner = InMemoryClientSessionStore()
    private let lock = NSLock()
    private var _saved: [TLSSession] = []
    private var _offered: [TLSSession?] = []

    /// Every session the client saved, oldest first.
    var saved: [TLSSession] { lock.withLock { _saved } }
    /// What each connection was offered (nil: none), in order.
    var offered: [TLSSession?] { lock.withLock { _offered } }

    func takeSession(for key: String) -> TLSSession? {
        let session = inner.takeSession(for: key)
        lock.withLock { _offered.append(session) }
        return session
    }
    func save(_ session: TLSSession, for key: String) {
        inner.save(session, for: key)
        lock.withLock { _saved.append(session) }
    }
    func removeSessions(for key: String) { inner.removeSessions(for: key) }
}

/// What the Q-SSL server's connections completed with, and their handshake traces.
final class ResumptionOutcomes: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    struct Handshake: Sendable {
        let summary: HandshakeSummary
        let trace: [HandshakeTraceEntry]
    }
    private let lock = NSLock()
    private var _handshakes: [Handshake] = []
    private var _errors: [Error] = []

    var handshakes: [Handshake] { lock.withLock { _handshakes } }
    var summaries: [HandshakeSummary] { handshakes.map(\.summary) }
    var errors: [Error] { lock.withLock { _errors } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? QSSLUserEvent, case .handshakeCompleted(let summary) = e {
            let trace = (try? context.pipeline.syncOperations.handler(type: NIOQSSLHandler.self))?.trace ?? []
            lock.withLock { _handshakes.append(Handshake(summary: summary, trace: trace)) }
        }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NIOQSSLError, case .uncleanShutdown = e { return }
        lock.withLock { _errors.append(error) }
    }
}

/// An in-process Q-SSL echo server (ECDSA P-384 certificate) that records traces.
func startResumptionServer(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> (NIOQSSLServer, ResumptionOutcomes) {
    var config = ServerConfiguration(provider: .swiftCrypto, certificates: [try InteropPKI.shared.ecdsa.serverCertifiedKey])
    configure(&config)
    let outcomes = ResumptionOutcomes()
    let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config, recordTrace: true) { [EchoHandler(), outcomes] }
    return (server, outcomes)
}

/// Server configuration for one resumption mechanism: the other one is turned off, so that a
/// resumption can only have happened the intended way.
func onlyMechanism(_ mechanism: ResumptionMechanism) -> (inout ServerConfiguration) -> Void {
    { config in
        switch mechanism {
        case .sessionID:
            config.versions = [.tls12]
            config.ticketKeys = nil
        case .tls12Ticket:
            config.versions = [.tls12]
            config.sessionCache = nil
        case .tls13PSK:
            config.versions = [.tls13]
            config.sessionCache = nil
        }
    }
}

/// Ticket keys under which the first ticket sealed counts as sealed by an older key, as after a
/// rotation: a TLS 1.2 server that opens it resumes and sends a renewed ticket (RFC 5077 §3.1)
/// in the abbreviated handshake. Every later ticket is current.
final class FirstTicketFromOlderKey: TicketSealer, @unchecked Sendable {
    private let inner: TicketKeySet
    private let lock = NSLock()
    private var first: [UInt8]?

    init() { inner = TicketKeySet(primitives: CryptoProvider.swiftCrypto.primitives) }

    func seal(_ plaintext: [UInt8]) throws(TLSError) -> [UInt8] {
        let ticket = try inner.seal(plaintext)
        lock.withLock { if first == nil { first = ticket } }
        return ticket
    }
    func open(_ ticket: [UInt8]) -> (plaintext: [UInt8], byCurrentKey: Bool)? {
        guard let opened = inner.open(ticket) else { return nil }
        let isFirst = lock.withLock { ticket == first }
        return (opened.plaintext, opened.byCurrentKey && !isFirst)
    }
}

/// Whether the Q-SSL server sent a NewSessionTicket on that handshake.
func sentTicket(_ handshake: ResumptionOutcomes.Handshake) -> Bool {
    handshake.trace.contains { $0.direction == .sent && $0.message == "NewSessionTicket" }
}

/// One Q-SSL client connection: handshake, one request, the answer (read until `expectedBytes`
/// arrived or the peer closed; TLS 1.3 tickets come before it), close.
struct ClientExchange {
    let summary: HandshakeSummary
    let answer: String
    let trace: [HandshakeTraceEntry]
}

func qsslExchange(port: Int, config: ClientConfiguration, request: String, expectedBytes: Int?,
                  timeout: TimeAmount = .seconds(10)) async throws -> ClientExchange {
    let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: config, serverName: "localhost",
                                                 recordTrace: true, timeout: timeout)
    try await client.send(Array(request.utf8))
    let answer = try await client.read(expectedBytes: expectedBytes, idleTimeout: timeout)
    let trace = try await client.channel.eventLoop.submit { client.handler.trace }.get()
    await client.close()
    return ClientExchange(summary: client.summary, answer: String(decoding: answer, as: UTF8.self), trace: trace)
}

/// The size of the ServerHello in a trace (sent by a server, received by a client).
func serverHelloLength(_ trace: [HandshakeTraceEntry]) -> Int? {
    trace.first { $0.message == "ServerHello" }?.length
}

/// A ServerHello that carries a SecP384r1MLKEM1024 share (97 + 1568 bytes): the resumed handshake
/// ran psk_dhe_ke with the hybrid, not psk_ke.
let hybridServerHelloMinimum = 97 + 1568

func occurrences(of marker: String, in text: String) -> Int {
    text.components(separatedBy: marker).count - 1
}

extension PeerProcess {
    /// Waits until `marker` has appeared `count` times.
    func waitFor(_ marker: String, count: Int, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if occurrences(of: marker, in: text) >= count { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw PeerError("timed out waiting for \(count) × '\(marker)' from \(commandLine):\n\(text)")
    }
}

/// Checks what a Q-SSL client saw over a full handshake and the resumptions after it. (Values
/// are taken out of the summaries first: a failed expectation on a summary would print its
/// certificates.)
func expectClientResumptions(_ exchanges: [ClientExchange], store: RecordingSessionStore, mechanism: ResumptionMechanism,
                             group: NamedGroup? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let full = exchanges.first else { return }
    let fullResumed = full.summary.resumed, fullVersion = full.summary.version
    #expect(!fullResumed, "the first handshake is a full one", sourceLocation: sourceLocation)
    #expect(fullVersion == mechanism.version, sourceLocation: sourceLocation)
    let fullCertificate = full.trace.contains { $0.direction == .received && $0.message == "Certificate" }
    #expect(fullCertificate, sourceLocation: sourceLocation)
    let offered = store.offered
    let firstOffered = offered.first.map { $0 != nil }
    #expect(firstOffered == false, "nothing is offered on the first connection", sourceLocation: sourceLocation)
    for (i, exchange) in exchanges.enumerated().dropFirst() {
        let s = exchange.summary
        let resumed = s.resumed, version = s.version, suite = s.cipherSuite, negotiated = s.group
        #expect(resumed, "connection \(i + 1) resumed", sourceLocation: sourceLocation)
        #expect(version == mechanism.version, sourceLocation: sourceLocation)
        let sameIdentity = s.peerIdentity != nil && s.peerIdentity == full.summary.peerIdentity
        #expect(sameIdentity, "the server's identity is carried over from the full handshake", sourceLocation: sourceLocation)
        let certificate = exchange.trace.contains { $0.direction == .received && $0.message == "Certificate" }
        #expect(!certificate, "no certificate on a resumed handshake", sourceLocation: sourceLocation)
        if mechanism.version == .tls12 {
            #expect(suite == full.summary.cipherSuite, sourceLocation: sourceLocation)
        }
        if let group { #expect(negotiated == group, "connection \(i + 1)", sourceLocation: sourceLocation) }
        let session = i < offered.count ? offered[i] : nil
        let matches = session.map(mechanism.matches)
        #expect(matches == true,
                "connection \(i + 1) offered a \(mechanism): \(session.map { "v\($0.state.version) id \($0.sessionID.count) B, ticket \($0.ticket?.count ?? 0) B" } ?? "nothing")",
                sourceLocation: sourceLocation)
    }
    if mechanism == .tls13PSK {
        // RFC 8446 §C.4: a ticket is offered once.
        let tickets = offered.compactMap { $0?.ticket }
        #expect(Set(tickets).count == tickets.count, "each TLS 1.3 ticket was offered once", sourceLocation: sourceLocation)
    }
}

/// Checks what the Q-SSL server saw over a full handshake and the resumptions after it.
func expectServerResumptions(_ outcomes: ResumptionOutcomes, count: Int, version: ProtocolVersion, group: NamedGroup? = nil,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    let handshakes = outcomes.handshakes
    #expect(handshakes.count == count, "\(handshakes.count) handshakes completed", sourceLocation: sourceLocation)
    #expect(outcomes.errors.isEmpty, "\(outcomes.errors)", sourceLocation: sourceLocation)
    guard let full = handshakes.first else { return }
    let fullResumed = full.summary.resumed
    #expect(!fullResumed, sourceLocation: sourceLocation)
    for (i, h) in handshakes.enumerated() {
        let resumed = h.summary.resumed, negotiated = h.summary.group, suite = h.summary.cipherSuite, v = h.summary.version
        #expect(v == version, sourceLocation: sourceLocation)
        if let group { #expect(negotiated == group, "connection \(i + 1)", sourceLocation: sourceLocation) }
        guard i > 0 else { continue }
        #expect(resumed, "connection \(i + 1) resumed", sourceLocation: sourceLocation)
        let certificate = h.trace.contains { $0.direction == .sent && $0.message == "Certificate" }
        #expect(!certificate, sourceLocation: sourceLocation)
        if version == .tls12 { #expect(suite == full.summary.cipherSuite, sourceLocation: sourceLocation) }
    }
}

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
            (.tls13PSK, ["-tls1_3", "-groups", "secp384r1"], .secp384r1, true),
        ]

        @Test("Q-SSL client resumes with s_server", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, flags: [String], group: NamedGroup, retry: Bool) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(try Peers.executable("openssl"), [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www",
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
            (.tls13PSK, ["-tls1_3"]),
        ]

        @Test("s_client resumes with the Q-SSL server (-sess_out, then -sess_in)", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let marker = "resumption-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", sessionFlag, sessionFile,
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

        @Test("s_client -reconnect resumes five times with the Q-SSL server (TLS 1.2 session ID and ticket)",
              arguments: [ResumptionMechanism.sessionID, .tls12Ticket])
        func reconnect(mechanism: ResumptionMechanism) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let client = try PeerProcess(try Peers.executable("openssl"), [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-verify_return_error", "-tls1_2", "-reconnect",
            ] + (mechanism == .sessionID ? ["-no_ticket"] : []), stdin: "")
            defer { client.terminate() }
            try client.waitFor("Reused, TLSv1.2", count: 5)
            let output = client.text
            client.terminate()
            try await server.close()
            #expect(occurrences(of: "New, TLSv1.2", in: output) == 1, "\(output)")
            expectServerResumptions(outcomes, count: 6, version: .tls12)
        }

        @Test("s_client -reconnect resumes with the Q-SSL server (TLS 1.3)",
              .disabled("""
                  peer limitation: OpenSSL 3.0's s_client -reconnect keeps the session it has when the handshake \
                  completes, before the TLS 1.3 NewSessionTickets arrive, so it never resumes TLS 1.3 — not even \
                  against OpenSSL's own s_server (measured: six 'New, TLSv1.3'). TLS 1.3 with s_client is covered \
                  by -sess_out/-sess_in above.
                  """))
        func reconnectTLS13() async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(.tls13PSK))
            let client = try PeerProcess(try Peers.executable("openssl"), [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-verify_return_error", "-tls1_3", "-reconnect",
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
            let client = try PeerProcess(try Peers.executable("openssl"), [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                "-servername", "localhost", "-verify_return_error", "-tls1_2", "-reconnect",
            ], stdin: "")
            defer { client.terminate() }
            try client.waitFor("Reused, TLSv1.2", count: 5)
            client.terminate()
            try await server.close()
            expectServerResumptions(outcomes, count: 6, version: .tls12)
            let tickets = outcomes.handshakes.map(sentTicket)
            #expect(tickets == [true, true, false, false, false, false],
                    "ticket sent on: the full handshake, the renewal, then none for the renewed (current) ticket")
        }

        @Test("s_client resumes with the Q-SSL server across a HelloRetryRequest (TLS 1.3)")
        func qsslServerHelloRetry() async throws {
            let (server, outcomes) = try await startResumptionServer { $0.groups = [.secp384r1]; $0.versions = [.tls13] }
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let marker = "hrr-resumption-\(i)"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", "-groups", "x25519:secp384r1", sessionFlag, sessionFile,
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
            let server = try PeerProcess(try Peers.executable("openssl"), [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-tls1_3", "-max_early_data", "16384",
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

        @Test("a Q-SSL client offering a session a restarted s_server does not know falls back to a full handshake",
              arguments: [(ResumptionMechanism.sessionID, ["-tls1_2", "-no_ticket"]), (.tls12Ticket, ["-tls1_2", "-no_cache"]), (.tls13PSK, ["-tls1_3"])])
        func qsslClientUnknownSession(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            // Two s_server processes one after the other: the second has another ticket key and
            // an empty cache. Sessions are kept by server name, so the port does not matter.
            for _ in 0..<2 {
                let port = try Peers.freePort()
                let server = try PeerProcess(try Peers.executable("openssl"), [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                    "-key", InteropPKI.shared.path("ecdsa.key"), "-www",
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

        @Test("a Q-SSL client holding a TLS 1.2 session meets a server that now speaks TLS 1.3: a full TLS 1.3 handshake (the echoed legacy_session_id is no resumption)",
              arguments: [(ResumptionMechanism.sessionID, ["-no_ticket"]), (.tls12Ticket, [])])
        func qsslClientTLS12SessionToTLS13Server(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for versionFlags in [["-tls1_2"], []] {
                let port = try Peers.freePort()
                let server = try PeerProcess(try Peers.executable("openssl"), [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                    "-key", InteropPKI.shared.path("ecdsa.key"), "-www",
                ] + versionFlags + flags)
                defer { server.terminate() }
                try Peers.waitForListener(port: port)
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                server.terminate()
            }
            let versions = exchanges.map(\.summary.version), resumed = exchanges.map(\.summary.resumed)
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
                let server = try PeerProcess(try Peers.executable("openssl"), [
                    "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                    "-key", InteropPKI.shared.path("ecdsa.key"), "-www", versionFlag,
                ])
                defer { server.terminate() }
                try Peers.waitForListener(port: port)
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
                server.terminate()
            }
            let versions = exchanges.map(\.summary.version), resumed = exchanges.map(\.summary.resumed)
            #expect(versions == [.tls13, .tls12])
            #expect(resumed == [false, false])
            let offered = store.offered
            #expect(offered.count == 2 && offered[1].map(ResumptionMechanism.tls13PSK.matches) == true, "the TLS 1.3 ticket was offered")
        }

        @Test("ALPN survives resumption: Q-SSL client with s_server -alpn", arguments: serverCases.prefix(3).map { ($0.0, $0.1) })
        func qsslClientALPN(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(try Peers.executable("openssl"), [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-alpn", "http/1.1",
            ] + flags)
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store; $0.alpnProtocols = ["h2", "http/1.1"] }
            var exchanges: [ClientExchange] = []
            for _ in 0..<2 {
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
            }
            expectClientResumptions(exchanges, store: store, mechanism: mechanism)
            let alpn = exchanges.map(\.summary.alpnProtocol)
            #expect(alpn == ["http/1.1", "http/1.1"])
        }

        @Test("ALPN survives resumption: s_client -alpn with the Q-SSL server", arguments: clientCases)
        func qsslServerALPN(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer {
                onlyMechanism(mechanism)(&$0)
                $0.alpnProtocols = ["http/1.1"]
            }
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let marker = "alpn-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-alpn", "h2,http/1.1", sessionFlag, sessionFile,
                ] + flags, stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
            }
            try await server.close()
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            #expect(outputs[1].contains("Reused, \(tls)"), "\(outputs[1])")
            #expect(outputs.allSatisfy { $0.contains("ALPN protocol: http/1.1") }, "\(outputs)")
            expectServerResumptions(outcomes, count: 2, version: mechanism.version)
            let alpn = outcomes.summaries.map(\.alpnProtocol)
            #expect(alpn == ["http/1.1", "http/1.1"])
        }

        @Test("s_client -sess_in offering the session under another server name gets a full handshake from the Q-SSL server",
              arguments: clientCases)
        func qsslServerOtherServerName(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, (sessionFlag, name)) in [("-sess_out", "localhost"), ("-sess_in", "other.localhost")].enumerated() {
                let marker = "sni-\(i)-\(UUID().uuidString.prefix(8))"
                // No hostname check in s_client (it has none without -verify_hostname): the chain is still verified.
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", name, "-verify_return_error", "-trace", sessionFlag, sessionFile,
                ] + flags, stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
            }
            try await server.close()
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            // s_client did offer the session (OpenSSL clients offer it whatever the name).
            switch mechanism {
            case .tls13PSK: #expect(outputs[1].contains("extension_type=psk(41)"), "no PSK offered:\n\(outputs[1])")
            case .tls12Ticket: #expect(outputs[1].range(of: #"session_ticket\(35\), length=[1-9]"#, options: .regularExpression) != nil, "no ticket offered")
            case .sessionID: break
            }
            #expect(outputs[1].contains("New, \(tls)"), "a session for localhost must not resume under other.localhost:\n\(outputs[1])")
            let resumed = outcomes.summaries.map(\.resumed)
            #expect(resumed == [false, false])
            #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
        }

        /// (first connection's suites, second's, whether the second resumes: RFC 8446 §4.2.11 needs
        /// the same hash, not the same suite)
        static let suiteChanges: [(String, String, Bool)] = [
            ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", true),
            ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", false),
        ]

        @Test("TLS 1.3: s_client resumes with another suite of the same hash, and not across hashes (Q-SSL server)", arguments: suiteChanges)
        func qsslServerSuiteChange(first: String, second: String, resumes: Bool) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(.tls13PSK))
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, (sessionFlag, suite)) in [("-sess_out", first), ("-sess_in", second)].enumerated() {
                let marker = "suite-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", "-ciphersuites", suite, sessionFlag, sessionFile,
                ], stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
            }
            try await server.close()
            #expect(outputs[1].contains("\(resumes ? "Reused" : "New"), TLSv1.3, Cipher is \(second)"), "\(outputs[1])")
            let resumed = outcomes.summaries.map(\.resumed), suites = outcomes.summaries.map { "\($0.cipherSuite)" }
            #expect(resumed == [false, resumes])
            #expect(suites == [first, second])
            #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
        }

        @Test("TLS 1.3: the Q-SSL client resumes with another suite of the same hash, and not across hashes (s_server)",
              arguments: [([TLS13CipherSuite.aes128GCMSHA256], [TLS13CipherSuite.chaCha20Poly1305SHA256], true),
                          ([.aes256GCMSHA384], [.aes128GCMSHA256], false)])
        func qsslClientSuiteChange(first: [TLS13CipherSuite], second: [TLS13CipherSuite], resumes: Bool) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(try Peers.executable("openssl"), [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-tls1_3",
            ])
            defer { server.terminate() }
            try Peers.waitForListener(port: port)
            let store = RecordingSessionStore()
            var exchanges: [ClientExchange] = []
            for suites in [first, second] {
                let config = qsslClientConfig { $0.sessionStore = store; $0.cipherSuites = suites }
                exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
            }
            let resumed = exchanges.map(\.summary.resumed), suites = exchanges.map(\.summary.cipherSuite)
            #expect(resumed == [false, resumes])
            #expect(suites == [first[0].suite, second[0].suite])
            #expect(exchanges[1].answer.contains(resumes ? "Reused, TLSv1.3" : "New, TLSv1.3"), "\(exchanges[1].answer)")
        }

        @Test("TLS 1.3: a ticket 11 s old still resumes (ticket age in milliseconds, within the Q-SSL server's 10 s tolerance)")
        func qsslServerTicketAge() async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(.tls13PSK))
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            var outputs: [String] = []
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                if i == 1 { try await Task.sleep(for: .seconds(11)) }
                let marker = "age-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", sessionFlag, sessionFile,
                ], stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
            }
            try await server.close()
            #expect(outputs[1].contains("Reused, TLSv1.3"), "\(outputs[1])")
            expectServerResumptions(outcomes, count: 2, version: .tls13)
        }

        @Test("s_client -sess_in with a session a restarted Q-SSL server cannot open gets a full handshake", arguments: clientCases)
        func qsslServerUnknownSession(mechanism: ResumptionMechanism, flags: [String]) async throws {
            let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
            let tls = mechanism.version == .tls13 ? "TLSv1.3" : "TLSv1.2"
            var outputs: [String] = []
            var restartedOutcomes: ResumptionOutcomes?
            // A new server has fresh ticket keys and an empty session cache.
            for (i, sessionFlag) in ["-sess_out", "-sess_in"].enumerated() {
                let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
                let marker = "restart-\(i)-\(UUID().uuidString.prefix(8))"
                let client = try PeerProcess(try Peers.executable("openssl"), [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", sessionFlag, sessionFile,
                ] + flags, stdin: marker + "\n")
                defer { client.terminate() }
                try client.waitFor(marker)
                client.terminate()
                outputs.append(client.text)
                try await server.close()
                restartedOutcomes = outcomes
            }
            #expect(outputs[1].contains("New, \(tls)"), "s_client -sess_in: \(outputs[1])")
            let outcomes = try #require(restartedOutcomes)
            let resumed = outcomes.summaries.map(\.resumed)
            #expect(resumed == [false])
            #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
        }
    }
}

// MARK: - GnuTLS 3.7

extension ResumptionInteropTests {
    /// GnuTLS 3.7 (Debian): gnutls-serv and gnutls-cli --resume. Classical groups only.
    @Suite("GnuTLS gnutls-serv / gnutls-cli")
    struct GnuTLS {
        /// (mechanism, gnutls-serv flags that leave only that mechanism, priority)
        static let serverCases: [(ResumptionMechanism, [String], String)] = [
            (.sessionID, ["--noticket"], "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
            (.tls12Ticket, ["--nodb"], "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
            (.tls13PSK, [], "NORMAL:-VERS-ALL:+VERS-TLS1.3"),
        ]

        @Test("Q-SSL client resumes with gnutls-serv", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, flags: [String], priority: String) async throws {
            let port = try Peers.freePort()
            let server = try PeerProcess(try Peers.executable("gnutls-serv"), [
                "--port", "\(port)", "--x509certfile", InteropPKI.shared.path("ecdsa.pem"), "--x509keyfile", InteropPKI.shared.path("ecdsa.key"),
                "--echo", "--priority", priority,
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
            (.tls13PSK, "NORMAL:-VERS-ALL:+VERS-TLS1.3", ["--waitresumption"]),
        ]

        @Test("gnutls-cli --resume resumes with the Q-SSL server", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, priority: String, flags: [String]) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let client = try PeerProcess(try Peers.executable("gnutls-cli"), [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", priority, "--resume",
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
            let client = try PeerProcess(try Peers.executable("gnutls-cli"), [
                "--port", "\(server.port)", "--x509cafile", InteropPKI.shared.path("ecdsa-ca.pem"), "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2",
                "--resume", "localhost",
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

// MARK: - OpenSSL 4.0

extension ResumptionInteropTests {
    /// OpenSSL 4.0 through pyOpenSSL: TLS 1.3 PSK resumption with SecP384r1MLKEM1024 on the
    /// resumed handshake too (psk_dhe_ke).
    @Suite("OpenSSL 4.0 (pyOpenSSL), hybrid psk_dhe_ke")
    struct OpenSSL4 {
        @Test("Q-SSL client resumes with an OpenSSL 4 server on SecP384r1MLKEM1024 (and under requirePostQuantum)", arguments: [false, true])
        func qsslClient(requirePostQuantum: Bool) async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("openssl4_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                InteropPKI.shared.path("ecdsa.key"), "SecP384r1MLKEM1024", "3",
            ])
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store; $0.requirePostQuantum = requirePostQuantum }
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
                #expect((serverHelloLength(exchange.trace) ?? 0) >= hybridServerHelloMinimum,
                        "connection \(i + 1): the ServerHello carries a hybrid share (\(serverHelloLength(exchange.trace) ?? 0) B)")
            }
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            #expect(connections.allSatisfy { $0["group"] as? String == "SecP384r1MLKEM1024" }, "\(connections)")
        }

        @Test("an OpenSSL 4 client resumes with the Q-SSL server on SecP384r1MLKEM1024 (and under requirePostQuantum)", arguments: [false, true])
        func qsslServer(requirePostQuantum: Bool) async throws {
            let (server, outcomes) = try await startResumptionServer { $0.requirePostQuantum = requirePostQuantum }
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("openssl4_peer.py"), "resume-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"),
                "localhost", "SecP384r1MLKEM1024", "3",
            ])
            let result = try peerResult(peer.finish(timeout: 60))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["reused"] as? Bool } == [false, true, true], "\(connections)")
            #expect(connections.allSatisfy { $0["group"] as? String == "SecP384r1MLKEM1024" }, "\(connections)")
            expectServerResumptions(outcomes, count: 3, version: .tls13, group: .secp384r1MLKEM1024)
            for (i, h) in outcomes.handshakes.enumerated() {
                #expect((serverHelloLength(h.trace) ?? 0) >= hybridServerHelloMinimum,
                        "connection \(i + 1): the ServerHello carries a hybrid share (\(serverHelloLength(h.trace) ?? 0) B)")
            }
        }

        @Test("an OpenSSL 4 client sharing only x25519 resumes with the Q-SSL server after a HelloRetryRequest to SecP384r1MLKEM1024")
        func qsslServerHelloRetry() async throws {
            let (server, outcomes) = try await startResumptionServer()
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("openssl4_peer.py"), "resume-client", "\(server.port)", InteropPKI.shared.path("ecdsa-ca.pem"),
                "localhost", "x25519:SecP384r1MLKEM1024", "3",
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
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("openssl4_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                InteropPKI.shared.path("ecdsa.key"), "SecP384r1MLKEM1024", "3",
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

// MARK: - tlslite-ng 0.9

extension ResumptionInteropTests {
    /// tlslite-ng 0.9 (pure Python): TLS 1.3 with the hybrid, TLS 1.2 by session ID and ticket.
    @Suite("tlslite-ng")
    struct TLSLite {
        /// (mechanism, environment of the peer server that leaves only that mechanism, groups)
        static let serverCases: [(ResumptionMechanism, [String: String], String)] = [
            (.sessionID, ["TLSLITE_VERSION": "1.2", "TLSLITE_TICKETS": "0"], "x25519,secp256r1"),
            (.tls12Ticket, ["TLSLITE_VERSION": "1.2", "TLSLITE_SESSION_CACHE": "0"], "x25519,secp256r1"),
            (.tls13PSK, [:], "secp384r1mlkem1024"),
        ]

        @Test("Q-SSL client resumes with a tlslite-ng server", arguments: serverCases)
        func qsslClient(mechanism: ResumptionMechanism, environment: [String: String], groups: String) async throws {
            let port = try Peers.freePort()
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("tlslite_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                InteropPKI.shared.path("ecdsa.key"), groups, "3",
            ], environment: environment)
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store }
            var exchanges: [ClientExchange] = []
            for i in 0..<3 {
                let message = "tlslite-resumption-\(i)"
                let exchange = try await qsslExchange(port: port, config: config, request: message, expectedBytes: message.utf8.count,
                                                      timeout: .seconds(60))
                #expect(exchange.answer == message)
                exchanges.append(exchange)
                try #require(!store.saved.isEmpty, "no session was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish(timeout: 60))
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, true, true], "\(connections)")
            expectClientResumptions(exchanges, store: store, mechanism: mechanism,
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
            (.tls13PSK, [:], "secp384r1mlkem1024"),
        ]

        @Test("a tlslite-ng client resumes with the Q-SSL server", arguments: clientCases)
        func qsslServer(mechanism: ResumptionMechanism, environment: [String: String], groups: String) async throws {
            let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", groups, "3",
            ], environment: environment)
            let result = try peerResult(peer.finish(timeout: 120))
            try await server.close()
            #expect(result["ok"] as? Bool == true, "\(result)")
            let connections = result["connections"] as? [[String: Any]] ?? []
            #expect(connections.map { $0["resumed"] as? Bool } == [false, true, true], "\(connections)")
            expectServerResumptions(outcomes, count: 3, version: mechanism.version,
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
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("tlslite_peer.py"), "resume-server", "\(port)", InteropPKI.shared.path("ecdsa.pem"),
                InteropPKI.shared.path("ecdsa.key"), "secp384r1mlkem1024", "2",
            ], environment: ["TLSLITE_PSK_MODES": "psk_ke"])
            defer { peer.terminate() }
            try peer.waitFor("ready")
            let store = RecordingSessionStore()
            let config = qsslClientConfig { $0.sessionStore = store; $0.offerPSKWithoutKeyExchange = true }
            var exchanges: [ClientExchange] = []
            for i in 0..<2 {
                let message = "psk_ke-\(i)"
                exchanges.append(try await qsslExchange(port: port, config: config, request: message, expectedBytes: message.utf8.count,
                                                        timeout: .seconds(60)))
                try #require(!store.saved.isEmpty, "no session was saved after connection \(i + 1): \(peer.text)")
            }
            let result = try peerResult(peer.finish(timeout: 60))
            #expect(result["ok"] as? Bool == true, "\(result)")
            expectClientResumptions(exchanges, store: store, mechanism: .tls13PSK)
            let length = serverHelloLength(exchanges[1].trace) ?? 0
            #expect(length > 0 && length < Self.pskKEServerHelloMaximum, "the resumed ServerHello (\(length) B) has no key share")
        }

        @Test("psk_ke: a tlslite-ng client offering only psk_ke resumes with a Q-SSL server that accepts it, and gets full handshakes from one that does not",
              arguments: [true, false])
        func qsslServerPSKKE(accept: Bool) async throws {
            let (server, outcomes) = try await startResumptionServer { $0.versions = [.tls13]; $0.acceptPSKWithoutKeyExchange = accept }
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", "secp384r1mlkem1024", "2",
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
            let peer = try PeerProcess(try Peers.requirePython(), [
                Peers.script("tlslite_peer.py"), "resume-client", "\(server.port)", "localhost", "x25519,secp384r1", "3",
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
