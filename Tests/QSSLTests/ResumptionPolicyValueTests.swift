import QSSLWire
import Testing

@testable import QSSL

private func issued(_ events: [TLSEvent]) -> [TLSSession] {
    events.compactMap(\.issuedSession)
}

@Suite("ResumptionPolicy: one decision for every resumption path")
struct ResumptionPolicyValueTests {
    @Test("each rule refuses a session on the server and on the client, TLS 1.3 and TLS 1.2 alike", arguments: [ProtocolVersion.tls13, .tls12])
    func rules(version: ProtocolVersion) throws {
        let clock = FakeClock()
        let server = try serverConfig { $0.clock = clock }
        let client = clientConfig {
            $0.clock = clock
            $0.versions = [version]
        }
        // A real client session (with the server's identity) and the server's view of one.
        let full = try runPair(client: client, server: server)
        let clientState = try #require(issued(full.clientEvents).first).state
        #expect(clientState.version == version)
        var serverState = clientState
        serverState.peerIdentity = nil
        serverState.trustBinding = ResumptionPolicy.binding(server)
        let other: ProtocolVersion = version == .tls13 ? .tls12 : .tls13

        func both(
            _ s: ServerConfiguration, _ c: ClientConfiguration, name: String? = "localhost",
            change: (inout SessionState) -> Void = { _ in }
        ) -> [Bool] {
            var ss = serverState
            var cs = clientState
            change(&ss)
            change(&cs)
            return [
                ResumptionPolicy.server(s, serverName: name).admits(ss, version: version),
                ResumptionPolicy.client(c, serverName: name).admits(cs, version: version)
            ]
        }
        #expect(both(server, client) == [true, true])
        #expect(ResumptionPolicy.server(server, serverName: "localhost").admits(serverState, version: other) == false)
        #expect(ResumptionPolicy.client(clientConfig { $0.clock = clock }, serverName: "localhost").admits(clientState, version: other) == false)
        // Another name.
        #expect(both(server, client, name: "other.example") == [false, false])
        // A version no longer enabled.
        #expect(
            both(
                try serverConfig {
                    $0.clock = clock
                    $0.versions = [other]
                },
                clientConfig {
                    $0.clock = clock
                    $0.versions = [other]
                })
                == [false, false])
        // A classical session under the PQ policy.
        #expect(
            both(
                try serverConfig {
                    $0.clock = clock
                    $0.requirePostQuantum = true
                },
                clientConfig {
                    $0.clock = clock
                    $0.versions = [version]
                    $0.requirePostQuantum = true
                },
                change: { $0.group = .x25519 }) == [false, false])
        // Another trust policy.
        let mtls = try serverConfig {
            $0.clock = clock
            $0.clientAuthentication = .optional
            $0.clientCertificateVerifier = sharedPKI.verifier
        }
        let skipping = clientConfig {
            $0.clock = clock
            $0.versions = [version]
            $0.dangerouslySkipServerNameVerification = true
        }
        #expect(both(mtls, skipping) == [false, false])
        // A server whose configured lifetime was shortened below the session's age.
        clock.advance(seconds: 120)
        #expect(
            both(
                try serverConfig {
                    $0.clock = clock
                    $0.sessionLifetimeSeconds = 60
                }, client) == [false, true])
        // Past the session's own lifetime.
        clock.advance(seconds: UInt64(max(clientState.lifetimeSeconds, serverState.lifetimeSeconds)))
        #expect(both(server, client) == [false, false])
    }
}
