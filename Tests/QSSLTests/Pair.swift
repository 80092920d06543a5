@testable import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// Shared PKI: key generation is slow enough to do once.
let sharedPKI = try! DemoPKI()

func serverConfig(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
    var c = ServerConfiguration(provider: .swiftCrypto, certificates: [try sharedPKI.serverCertifiedKey])
    configure(&c)
    return c
}

func clientConfig(_ configure: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
    var c = ClientConfiguration(provider: .swiftCrypto, verifier: sharedPKI.verifier)
    configure(&c)
    return c
}

/// Outcome of driving a client and a server against each other in memory.
struct PairOutcome {
    var client: TLSConnection
    var server: TLSConnection
    var clientEvents: [TLSEvent] = []
    var serverEvents: [TLSEvent] = []
    var clientError: TLSError?
    var serverError: TLSError?
}

/// Moves bytes between the two until neither has anything to say. `tamper` may rewrite each
/// flight in flight (direction: true = client to server).
func runPair(client: ClientConfiguration, server: ServerConfiguration, serverName: String? = "localhost",
             tamper: (Bool, [UInt8]) -> [UInt8] = { $1 }) throws -> PairOutcome {
    var outcome = PairOutcome(client: try TLSConnection.client(configuration: client, serverName: serverName),
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

/// Answers every pause through the real pause: the event, then `resume(with:)`. The providers
/// of these tests are in memory, so the answer is computed here on the test's thread (what
/// `PendingDecision.resolve()` would do off the event loop).
func resumeWhilePaused(_ connection: TLSConnection, _ events: inout [TLSEvent]) throws(TLSError) {
    while let decision = connection.pendingDecision {
        #expect(events.contains { if case .decisionNeeded = $0 { true } else { false } }, "the pause was surfaced as an event")
        events += try connection.resume(with: answerInPlace(decision))
    }
}

func answerInPlace(_ decision: PendingDecision) -> DecisionAnswer {
    do {
        if let r = decision.signatureRequest { return .signature(try r.key.sign(r.message, scheme: r.scheme)) }
        if let r = decision.peerVerification { return .peerVerified(try r.verifier.verifyPeer(r)) }
        if let r = decision.sessionLookup { return .session(r.cache.lookUp(sessionID: r.sessionID)) }
        if let hello = decision.clientHello, let selector = pendingSelector(decision) { return .serverConfiguration(try selector.select(for: hello)) }
        return .failure(.misuse("unknown decision \(decision)"))
    } catch {
        return .failure(error)
    }
}

/// The selector behind a configuration decision (tests only).
func pendingSelector(_ decision: PendingDecision) -> (any ServerConfigurationSelector)? {
    if case .selectServerConfiguration(_, let selector) = decision.kind { return selector }
    return nil
}

extension TLSError {
    /// The alert this error sent, or the one it received.
    var alertSentOrReceived: AlertDescription? {
        if let a = code.receivedAlert { return a }
        return alert
    }
}
