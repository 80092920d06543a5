import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

// Session resumption with OpenSSL 3.0, continued: ALPN, another server name, suite changes, ticket age, unknown sessions.

extension ResumptionInteropTests.OpenSSL3 {
    @Test("ALPN survives resumption: Q-SSL client with s_server -alpn", arguments: serverCases.prefix(3).map { ($0.0, $0.1) })
    func qsslClientALPN(mechanism: ResumptionMechanism, flags: [String]) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-alpn", "http/1.1"
            ] + flags)
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let store = RecordingSessionStore()
        let config = qsslClientConfig {
            $0.sessionStore = store
            $0.alpnProtocols = ["h2", "http/1.1"]
        }
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
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-alpn", "h2,http/1.1", sessionFlag, sessionFile
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

    @Test(
        "s_client -sess_in offering the session under another server name gets a full handshake from the Q-SSL server",
        arguments: clientCases)
    func qsslServerOtherServerName(mechanism: ResumptionMechanism, flags: [String]) async throws {
        let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(mechanism))
        let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
        var outputs: [String] = []
        for (i, (sessionFlag, name)) in [("-sess_out", "localhost"), ("-sess_in", "other.localhost")].enumerated() {
            let marker = "sni-\(i)-\(UUID().uuidString.prefix(8))"
            // No hostname check in s_client (it has none without -verify_hostname): the chain is still verified.
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", name, "-verify_return_error", "-trace", sessionFlag, sessionFile
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
        ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", false)
    ]

    @Test("TLS 1.3: s_client resumes with another suite of the same hash, and not across hashes (Q-SSL server)", arguments: suiteChanges)
    func qsslServerSuiteChange(first: String, second: String, resumes: Bool) async throws {
        let (server, outcomes) = try await startResumptionServer(configure: onlyMechanism(.tls13PSK))
        let sessionFile = InteropPKI.shared.directory + "/openssl-session-\(UUID().uuidString).pem"
        var outputs: [String] = []
        for (i, (sessionFlag, suite)) in [("-sess_out", first), ("-sess_in", second)].enumerated() {
            let marker = "suite-\(i)-\(UUID().uuidString.prefix(8))"
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", "-ciphersuites", suite, sessionFlag, sessionFile
                ], stdin: marker + "\n")
            defer { client.terminate() }
            try client.waitFor(marker)
            client.terminate()
            outputs.append(client.text)
        }
        try await server.close()
        #expect(outputs[1].contains("\(resumes ? "Reused" : "New"), TLSv1.3, Cipher is \(second)"), "\(outputs[1])")
        let resumed = outcomes.summaries.map(\.resumed)
        let suites = outcomes.summaries.map { "\($0.cipherSuite)" }
        #expect(resumed == [false, resumes])
        #expect(suites == [first, second])
        #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
    }

    @Test(
        "TLS 1.3: the Q-SSL client resumes with another suite of the same hash, and not across hashes (s_server)",
        arguments: [
            ([TLS13CipherSuite.aes128GCMSHA256], [TLS13CipherSuite.chaCha20Poly1305SHA256], true),
            ([.aes256GCMSHA384], [.aes128GCMSHA256], false)
        ])
    func qsslClientSuiteChange(first: [TLS13CipherSuite], second: [TLS13CipherSuite], resumes: Bool) async throws {
        let port = try Peers.freePort()
        let server = try PeerProcess(
            try Peers.executable("openssl"),
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", InteropPKI.shared.path("ecdsa.pem"),
                "-key", InteropPKI.shared.path("ecdsa.key"), "-www", "-tls1_3"
            ])
        defer { server.terminate() }
        try Peers.waitForListener(port: port)
        let store = RecordingSessionStore()
        var exchanges: [ClientExchange] = []
        for suites in [first, second] {
            let config = qsslClientConfig {
                $0.sessionStore = store
                $0.cipherSuites = suites
            }
            exchanges.append(try await qsslExchange(port: port, config: config, request: "GET / HTTP/1.0\r\n\r\n", expectedBytes: nil))
        }
        let resumed = exchanges.map(\.summary.resumed)
        let suites = exchanges.map(\.summary.cipherSuite)
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
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", "-tls1_3", sessionFlag, sessionFile
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
            let client = try PeerProcess(
                try Peers.executable("openssl"),
                [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", InteropPKI.shared.path("ecdsa-ca.pem"),
                    "-servername", "localhost", "-verify_return_error", sessionFlag, sessionFile
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
