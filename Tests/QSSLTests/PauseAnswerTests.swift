import QSSLSwiftCrypto
import QSSLWire
import Testing

@testable import QSSL

/// One kind of pause, made by the provider that answers only through it.
struct PauseScenario: CustomTestStringConvertible, Sendable {
    let name: String
    let version: ProtocolVersion
    /// The side that pauses.
    let pausingClient: Bool
    let client: @Sendable () throws -> ClientConfiguration
    let server: @Sendable () throws -> ServerConfiguration
    /// Run a first handshake with these configurations and resume its session.
    var resumes = false
    var testDescription: String { "\(name), \(version)" }

    static var all: [PauseScenario] {
        var all: [PauseScenario] = []
        for version in [ProtocolVersion.tls13, .tls12] {
            let versions = [version]
            all.append(
                PauseScenario(
                    name: "client verifies the server", version: version, pausingClient: true,
                    client: {
                        clientConfig {
                            $0.versions = versions
                            $0.verifier = AsynchronousVerifier(inner: sharedPKI.verifier)
                        }
                    },
                    server: { try serverConfig() }))
            all.append(
                PauseScenario(
                    name: "server signs", version: version, pausingClient: false, client: { clientConfig { $0.versions = versions } },
                    server: {
                        try serverConfig {
                            $0.certificates = [CertifiedKey(chain: $0.certificates[0].chain, key: AsynchronousKey(inner: $0.certificates[0].key))]
                        }
                    }))
            all.append(
                PauseScenario(
                    name: "server selects its configuration", version: version, pausingClient: false,
                    client: { clientConfig { $0.versions = versions } },
                    server: { try serverConfig { $0.configurationSelector = AsynchronousSelector(configuration: try! serverConfig()) } }))
            all.append(
                PauseScenario(
                    name: "server verifies the client", version: version, pausingClient: false,
                    client: {
                        clientConfig {
                            $0.versions = versions
                            $0.clientCertificate = ClientPKI.ecdsa
                        }
                    },
                    server: { try mtlsServer(.required) { $0.clientCertificateVerifier = AsynchronousVerifier(inner: sharedPKI.verifier) } }))
            all.append(
                PauseScenario(
                    name: "client signs", version: version, pausingClient: true,
                    client: {
                        clientConfig {
                            $0.versions = versions
                            $0.clientCertificate = CertifiedKey(chain: ClientPKI.ecdsa.chain, key: AsynchronousKey(inner: ClientPKI.ecdsa.key))
                        }
                    },
                    server: { try mtlsServer(.required) }))
        }
        all.append(
            PauseScenario(
                name: "server's key exchange", version: .tls13, pausingClient: false,
                client: {
                    clientConfig {
                        $0.groups = [.x25519]
                        $0.keyShareGroups = [.x25519]
                    }
                },
                server: {
                    try serverConfig {
                        $0 = ServerConfiguration(
                            provider: CryptoProvider.swiftCrypto.replacing(
                                AsynchronousGroup(inner: CryptoProvider.swiftCrypto.keyExchange(for: .x25519)!)), certificates: $0.certificates)
                    }
                }))
        let cache = AsynchronousSessionCache()
        all.append(
            PauseScenario(
                name: "server looks up a session ID", version: .tls12, pausingClient: false,
                client: {
                    clientConfig {
                        $0.versions = [.tls12]
                        $0.tls12SessionTickets = false
                    }
                },
                server: { try serverConfig { $0.sessionCache = cache } }, resumes: true))
        return all
    }
}

@Suite("Each side's pause takes only the answer it asked for")
struct PauseAnswerTests {
    /// One answer of every kind but `decision`'s own.
    static func wrongAnswers(for decision: PendingDecision) throws -> [DecisionAnswer] {
        let peer = try sharedPKI.verifier.verifyPeer(
            PeerVerificationRequest(
                chain: try sharedPKI.serverCertifiedKey.chain,
                role: .server(name: "localhost"), verifier: sharedPKI.verifier))
        var answers: [DecisionAnswer] = []
        if decision.signatureRequest == nil { answers.append(.signature([1, 2, 3])) }
        if decision.peerVerification == nil { answers.append(.peerVerified(peer)) }
        if decision.clientHello == nil { answers.append(.serverConfiguration(try serverConfig())) }
        if decision.sessionLookup == nil { answers += [.session(nil)] }
        if decision.keyExchange == nil { answers.append(.keyExchange(share: [1], secret: SecretBytes([1]))) }
        return answers
    }

    @Test("every wrong kind of answer is misuse that moves nothing; the right one completes the handshake", arguments: PauseScenario.all)
    func wrongAnswersRefused(scenario: PauseScenario) throws {
        var session: TLSSession?
        if scenario.resumes {
            let first = try runPair(client: try scenario.client(), server: try scenario.server())
            #expect(first.client.isHandshakeComplete)
            session = first.clientEvents.compactMap(\.issuedSession).last
            try #require(session != nil)
        }
        let client = try TLSConnection.client(configuration: try scenario.client(), serverName: "localhost", session: session)
        let server = try TLSConnection.server(configuration: try scenario.server())
        var paused = 0
        var toServer = client.takeOutput()
        var toClient: [UInt8] = []
        for _ in 0..<20 where !(toServer.isEmpty && toClient.isEmpty) {
            for (connection, isClient) in [(server, false), (client, true)] {
                let input = isClient ? toClient : toServer
                if isClient { toClient = [] } else { toServer = [] }
                guard !input.isEmpty else { continue }
                _ = try connection.receive(input)
                // What preceded the pause is out already: kept for the peer.
                var output = connection.takeOutput()
                while let decision = connection.pendingDecision {
                    #expect(isClient == scenario.pausingClient)
                    paused += 1
                    for wrong in try Self.wrongAnswers(for: decision) {
                        do {
                            _ = try connection.resume(with: wrong)
                            Issue.record("\(wrong.kind) answered \(decision)")
                        } catch {
                            guard case .apiMisuse = error.code.kind else {
                                Issue.record("\(error)")
                                continue
                            }
                        }
                        #expect(connection.pendingDecision?.description == decision.description, "still paused on the same decision")
                        #expect(connection.failure == nil)
                        #expect(connection.takeOutput().isEmpty, "nothing written for a refused answer")
                    }
                    _ = try connection.resume(with: answerInPlace(decision))
                    output += connection.takeOutput()
                }
                if isClient { toServer += output } else { toClient += output }
            }
        }
        #expect(paused == 1, "one pause for \(scenario.name)")
        #expect(client.isHandshakeComplete && server.isHandshakeComplete)
        if scenario.resumes { #expect(client.summary?.resumed == true) }
    }
}
