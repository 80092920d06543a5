import QSSLTestSupport
import Testing

@testable import QSSL

@Suite("TLSEvent: constructors and accessors")
struct TLSEventTests {
    /// What every accessor of an event answers, comparable as a whole.
    struct Answers: Equatable, CustomStringConvertible {
        var handshakeSummary: HandshakeSummary?
        var applicationData: [UInt8]?
        var isCloseNotify = false
        var isPeerKeyUpdate = false
        var decision: PendingDecision?
        var issuedSession: TLSSession?
        var clientAuthentication: ClientAuthenticationEvent?

        init(
            handshakeSummary: HandshakeSummary? = nil, applicationData: [UInt8]? = nil, isCloseNotify: Bool = false,
            isPeerKeyUpdate: Bool = false, decision: PendingDecision? = nil, issuedSession: TLSSession? = nil,
            clientAuthentication: ClientAuthenticationEvent? = nil
        ) {
            self.handshakeSummary = handshakeSummary
            self.applicationData = applicationData
            self.isCloseNotify = isCloseNotify
            self.isPeerKeyUpdate = isPeerKeyUpdate
            self.decision = decision
            self.issuedSession = issuedSession
            self.clientAuthentication = clientAuthentication
        }

        init(_ event: TLSEvent) {
            self.init(
                handshakeSummary: event.handshakeSummary, applicationData: event.applicationData,
                isCloseNotify: event.isCloseNotify, isPeerKeyUpdate: event.isPeerKeyUpdate, decision: event.decision,
                issuedSession: event.issuedSession, clientAuthentication: event.clientAuthentication)
        }

        var description: String {
            "summary \(handshakeSummary != nil), data \(String(describing: applicationData)), close \(isCloseNotify), "
                + "keyUpdate \(isPeerKeyUpdate), decision \(String(describing: decision)), session \(issuedSession != nil), "
                + "clientAuthentication \(String(describing: clientAuthentication.map { $0.identity?.subject ?? "declined" }))"
        }
    }

    @Test("each constructor's accessor returns its payload and every other accessor answers nil or false")
    func accessors() throws {
        // Real payloads: a client whose verifier answers asynchronously pauses once, then completes
        // and receives tickets.
        let o = try runPair(
            client: clientConfig { $0.verifier = AsynchronousVerifier(inner: sharedPKI.verifier) },
            server: try serverConfig())
        let summary = try #require(o.client.summary)
        let session = try #require(o.clientEvents.compactMap(\.issuedSession).first)
        let decision = try #require(o.clientEvents.compactMap(\.decision).first)
        let identity = try #require(o.client.peerIdentity)

        let cases: [(TLSEvent, Answers)] = [
            (.handshakeCompleted(summary), Answers(handshakeSummary: summary)),
            (.applicationData([1, 2, 3]), Answers(applicationData: [1, 2, 3])),
            (.applicationData([]), Answers(applicationData: [])),
            (.closeNotify, Answers(isCloseNotify: true)),
            (.peerKeyUpdate, Answers(isPeerKeyUpdate: true)),
            (.decisionNeeded(decision), Answers(decision: decision)),
            (.sessionIssued(session), Answers(issuedSession: session)),
            (.clientAuthenticated(identity), Answers(clientAuthentication: ClientAuthenticationEvent(identity: identity))),
            (.clientAuthenticated(nil), Answers(clientAuthentication: ClientAuthenticationEvent(identity: nil)))
        ]
        for (event, expected) in cases {
            #expect(Answers(event) == expected, "\(event)")
        }
        // A declined request is told apart from "not this event".
        #expect(TLSEvent.clientAuthenticated(nil).clientAuthentication != nil)
        #expect(TLSEvent.clientAuthenticated(nil).clientAuthentication?.identity == nil)
        #expect(TLSEvent.closeNotify.clientAuthentication == nil)
    }

    @Test("events compare by kind and payload, and read as the cases they replace")
    func equalityAndDescription() {
        let events: [TLSEvent] = [.applicationData([42]), .closeNotify]
        #expect(events == [.applicationData([42]), .closeNotify])
        #expect(events.contains(.closeNotify))
        #expect(!events.contains(.peerKeyUpdate))
        #expect(TLSEvent.applicationData([42]) != .applicationData([43]))
        #expect(TLSEvent.clientAuthenticated(nil) != .closeNotify)
        #expect(Set(events + events).count == 2)
        #expect(TLSEvent.closeNotify.description == "closeNotify")
        #expect("\(TLSEvent.applicationData([42]))" == "applicationData([42])")
    }
}
