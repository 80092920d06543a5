import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

// What Q-SSL's tests share: an in-memory client/server pair driven through the real pause, a
// deterministic generator and a test PKI. Not a product: only the test targets depend on it.

/// Outcome of driving a client and a server against each other in memory.
public struct PairOutcome {
    public var client: TLSConnection
    public var server: TLSConnection
    public var clientEvents: [TLSEvent] = []
    public var serverEvents: [TLSEvent] = []
    public var clientError: TLSError?
    public var serverError: TLSError?

    public init(client: TLSConnection, server: TLSConnection) {
        self.client = client
        self.server = server
    }

    /// The client's handshake summary, if it completed.
    public var clientSummary: HandshakeSummary? { Self.summary(clientEvents) }
    /// The server's handshake summary, if it completed.
    public var serverSummary: HandshakeSummary? { Self.summary(serverEvents) }

    static func summary(_ events: [TLSEvent]) -> HandshakeSummary? {
        events.lazy.compactMap(\.handshakeSummary).first
    }
}

/// Moves bytes between a new client and a new server until neither has anything to say,
/// answering every pause through the real pause (`decisionNeeded`, then `resume(with:)`).
/// - Parameters:
///   - session: a session the client offers (else it takes one from its store).
///   - pauseClient: whether the client's pauses are answered too (else only the server's).
///   - tamper: may rewrite each flight in flight (`true`: client to server).
public func runPair(
    client: ClientConfiguration, server: ServerConfiguration, serverName: String? = "localhost", session: TLSSession? = nil,
    tamper: (Bool, [UInt8]) -> [UInt8] = { $1 }
) throws -> PairOutcome {
    var outcome = PairOutcome(
        client: try TLSConnection.client(configuration: client, serverName: serverName, session: session),
        server: try TLSConnection.server(configuration: server))
    for _ in 0..<20 {
        let toServer = outcome.client.takeOutput()
        if !toServer.isEmpty, outcome.serverError == nil {
            do {
                outcome.serverEvents += try outcome.server.receive(tamper(true, toServer))
                try resumeWhilePaused(outcome.server, &outcome.serverEvents)
            } catch { outcome.serverError = error }
        }
        let toClient = outcome.server.takeOutput()
        if !toClient.isEmpty, outcome.clientError == nil {
            do {
                outcome.clientEvents += try outcome.client.receive(tamper(false, toClient))
                try resumeWhilePaused(outcome.client, &outcome.clientEvents)
            } catch { outcome.clientError = error }
        }
        if toServer.isEmpty && toClient.isEmpty { break }
    }
    return outcome
}

/// Why a pause was not answered as the tests expect.
public struct PauseNotSurfaced: Error, CustomStringConvertible {
    public let decision: String
    public var description: String { "the pause \(decision) was not surfaced as a decisionNeeded event" }
}

/// Answers every pending decision of `connection` in place, as `PendingDecision.resolve()` would
/// off the event loop. Throws `TLSError.misuse` when a pause was not surfaced as an event.
public func resumeWhilePaused(_ connection: TLSConnection, _ events: inout [TLSEvent]) throws(TLSError) {
    while let decision = connection.pendingDecision {
        guard events.contains(where: { $0.decision != nil }) else {
            throw .misuse("the pause \(decision) was not surfaced as a decisionNeeded event")
        }
        events += try connection.resume(with: answerInPlace(decision))
    }
}

/// The answer to a decision, computed here from what it carries.
public func answerInPlace(_ decision: PendingDecision) -> DecisionAnswer {
    do {
        if let r = decision.signatureRequest { return .signature(try r.key.sign(r.message, scheme: r.scheme)) }
        if let r = decision.peerVerification { return .peerVerified(try r.verifier.verifyPeer(r)) }
        if let r = decision.sessionLookup { return .session(r.cache.lookUp(sessionID: r.sessionID)) }
        if let r = decision.keyExchange {
            let (share, secret) = try r.exchange.respond(toClientShare: r.clientShare)
            return .keyExchange(share: share, secret: secret)
        }
        if let hello = decision.clientHello, let selector = decision.configurationSelector {
            return .serverConfiguration(try selector.select(for: hello))
        }
        return .failure(.misuse("unknown decision \(decision)"))
    } catch {
        return .failure(error)
    }
}

/// A small deterministic generator for reproducible random tests (SplitMix64).
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The tests' PKI: an ECDSA P-384 CA and a server certificate for localhost, 127.0.0.1 and
/// ::1, made once per test process (key generation is slow).
public enum TestPKI {
    public static let shared: DemoPKI = {
        do { return try DemoPKI() } catch { fatalError("test PKI: \(error)") }
    }()

    /// A server configuration with the shared certificate.
    public static func serverConfiguration(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
        var c = ServerConfiguration(provider: .swiftCrypto, certificates: [try shared.serverCertifiedKey])
        configure(&c)
        return c
    }

    /// A client configuration trusting the shared CA.
    public static func clientConfiguration(_ configure: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
        var c = ClientConfiguration(provider: .swiftCrypto, verifier: shared.verifier)
        configure(&c)
        return c
    }
}
