import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session-resumption interop support: session stores, outcome recorders, servers, and the checks both ends share.

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
        if let summary = (event as? QSSLUserEvent)?.handshakeSummary {
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

    func seal(_ plaintext: SecretBytes) throws(TLSError) -> [UInt8] {
        let ticket = try inner.seal(plaintext)
        lock.withLock { if first == nil { first = ticket } }
        return ticket
    }
    func open(_ ticket: [UInt8]) -> (plaintext: SecretBytes, byCurrentKey: Bool)? {
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

func qsslExchange(
    port: Int, config: ClientConfiguration, request: String, expectedBytes: Int?,
    timeout: TimeAmount = .seconds(10)
) async throws -> ClientExchange {
    let client = try await NIOQSSLClient.connect(
        host: "127.0.0.1", port: port, configuration: config, serverName: "localhost",
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
func expectClientResumptions(
    _ exchanges: [ClientExchange], store: RecordingSessionStore, mechanism: ResumptionMechanism,
    group: NamedGroup? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let full = exchanges.first else { return }
    let fullResumed = full.summary.resumed
    let fullVersion = full.summary.version
    #expect(!fullResumed, "the first handshake is a full one", sourceLocation: sourceLocation)
    #expect(fullVersion == mechanism.version, sourceLocation: sourceLocation)
    let fullCertificate = full.trace.contains { $0.direction == .received && $0.message == "Certificate" }
    #expect(fullCertificate, sourceLocation: sourceLocation)
    let offered = store.offered
    let firstOffered = offered.first.map { $0 != nil }
    #expect(firstOffered == false, "nothing is offered on the first connection", sourceLocation: sourceLocation)
    for (i, exchange) in exchanges.enumerated().dropFirst() {
        let s = exchange.summary
        let resumed = s.resumed
        let version = s.version
        let suite = s.cipherSuite
        let negotiated = s.group
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
        #expect(
            matches == true,
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
func expectServerResumptions(
    _ outcomes: ResumptionOutcomes, count: Int, version: ProtocolVersion, group: NamedGroup? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let handshakes = outcomes.handshakes
    #expect(handshakes.count == count, "\(handshakes.count) handshakes completed", sourceLocation: sourceLocation)
    #expect(outcomes.errors.isEmpty, "\(outcomes.errors)", sourceLocation: sourceLocation)
    guard let full = handshakes.first else { return }
    let fullResumed = full.summary.resumed
    #expect(!fullResumed, sourceLocation: sourceLocation)
    for (i, h) in handshakes.enumerated() {
        let resumed = h.summary.resumed
        let negotiated = h.summary.group
        let suite = h.summary.cipherSuite
        let v = h.summary.version
        #expect(v == version, sourceLocation: sourceLocation)
        if let group { #expect(negotiated == group, "connection \(i + 1)", sourceLocation: sourceLocation) }
        guard i > 0 else { continue }
        #expect(resumed, "connection \(i + 1) resumed", sourceLocation: sourceLocation)
        let certificate = h.trace.contains { $0.direction == .sent && $0.message == "Certificate" }
        #expect(!certificate, sourceLocation: sourceLocation)
        if version == .tls12 { #expect(suite == full.summary.cipherSuite, sourceLocation: sourceLocation) }
    }
}
