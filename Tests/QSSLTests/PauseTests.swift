import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@testable import QSSL

/// Chooses the server configuration by SNI, asynchronously (a proxy serving many names).
struct SNISelector: ServerConfigurationSelector {
    let byName: [String: ServerConfiguration]
    var synchronous = false
    var isSynchronous: Bool { synchronous }
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration {
        guard let name = hello.serverName, let config = byName[name] else {
            throw .incompatible(.unrecognizedServerName, hello.serverName ?? "no server_name")
        }
        return config
    }
}

@Suite("The one pause: every mid-handshake decision, both sides, both versions")
struct PauseTests {
    static let versions: [[ProtocolVersion]] = [[.tls13], [.tls12]]

    static func decisions(_ events: [TLSEvent]) -> [PendingDecision] {
        events.compactMap(\.decision)
    }

    @Test("in-memory providers never pause", arguments: versions)
    func synchronousNoPause(versions: [ProtocolVersion]) throws {
        let o = try runPair(client: clientConfig { $0.versions = versions }, server: try serverConfig())
        #expect(o.client.isHandshakeComplete && o.server.isHandshakeComplete)
        #expect(Self.decisions(o.clientEvents).isEmpty && Self.decisions(o.serverEvents).isEmpty)
    }

    @Test("verifyPeer pauses the client; the answer completes the handshake and exposes the peer's identity", arguments: versions)
    func verifyPeerAnswered(versions: [ProtocolVersion]) throws {
        let o = try runPair(
            client: clientConfig {
                $0.versions = versions
                $0.verifier = AsynchronousVerifier(inner: sharedPKI.verifier)
            },
            server: try serverConfig())
        let pauses = Self.decisions(o.clientEvents)
        #expect(pauses.count == 1)
        let request = try #require(pauses.first?.peerVerification)
        #expect(request.role == .server(name: "localhost"))
        #expect(request.chain == (try sharedPKI.serverCertifiedKey.chain))
        #expect(o.client.isHandshakeComplete && o.server.isHandshakeComplete, "\(String(describing: o.clientError))")
        let identity = try #require(o.client.peerIdentity)
        #expect(identity.subjectAlternativeNames.contains("DNS:localhost"))
        #expect(identity.verifiedChain.count == 2, "leaf and trust anchor")
        #expect(identity.handshakeSignatureScheme == o.client.summary?.peerSignatureScheme)
        #expect(!identity.verifiedSignatureComponents.isEmpty)
        #expect(o.client.summary?.peerIdentity == identity)
        #expect(o.server.peerIdentity == nil, "the server did not ask the client to authenticate")
    }

    /// Drives a client to its verify-peer pause and returns both ends.
    static func pausedClient(versions: [ProtocolVersion]) throws -> (client: TLSConnection, server: TLSConnection) {
        let client = try TLSConnection.client(
            configuration: clientConfig {
                $0.versions = versions
                $0.verifier = AsynchronousVerifier(inner: sharedPKI.verifier)
            },
            serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig())
        _ = try server.receive(client.takeOutput())
        let events = try client.receive(server.takeOutput())
        try #require(Self.decisions(events).count == 1)
        try #require(client.pendingDecision?.peerVerification != nil)
        return (client, server)
    }

    @Test("a verifyPeer answered with an error fails with its alert on both sides", arguments: versions)
    func verifyPeerFailure(versions: [ProtocolVersion]) throws {
        let (client, server) = try Self.pausedClient(versions: versions)
        #expect(throws: TLSError.rejected(.revoked)) { try client.resume(with: .failure(.rejected(.revoked))) }
        #expect(client.failure?.alert == .certificateRevoked)
        #expect(throws: TLSError(.alertReceived(.certificateRevoked))) { try server.receive(client.takeOutput()) }
    }

    @Test("closing while paused cancels: user_canceled and close_notify go out, resume answers closed", arguments: versions)
    func closeWhilePaused(versions: [ProtocolVersion]) throws {
        let (client, server) = try Self.pausedClient(versions: versions)
        client.close()
        #expect(throws: TLSError(.closed)) { try client.resume(with: .failure(.rejected(.revoked))) }
        let output = client.takeOutput()
        if versions == [.tls12] {
            // Plaintext here: user_canceled, then close_notify, both warnings.
            #expect(output.suffix(14) == [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 90, 0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00])
        } else {
            // Under the client's handshake keys: two protected alert records after the CCS.
            #expect(output.filter { _ in true }.count > 2 * (5 + 2 + 1 + 16) - 1)
        }
        // The server learns that the handshake was abandoned, not completed.
        #expect(throws: TLSError(.alertReceived(.closeNotify))) { try server.receive(output) }
        #expect(!server.isHandshakeComplete)
    }

    @Test("nothing is read while paused; the rest of the flight, fed before the pause, is processed on resume", arguments: versions)
    func bufferedWhilePaused(versions: [ProtocolVersion]) throws {
        let (client, server) = try Self.pausedClient(versions: versions)
        // The server's flight arrived in one piece; the client stopped at its Certificate.
        #expect(try client.receive([]) == [])
        #expect(client.pendingDecision != nil)
        // A record that would be fatal is not even looked at while paused.
        let paused = try Self.pausedClient(versions: versions)
        #expect(try paused.client.receive([0x63, 0x03, 0x03, 0x00, 0x01, 0x00]) == [], "buffered, not processed")
        #expect(paused.client.failure == nil && paused.client.pendingDecision != nil)
        #expect(throws: TLSError(.peerMisbehaved(.sentRecordWithInvalidContentType))) {
            try paused.client.resume(with: answerInPlace(try #require(paused.client.pendingDecision)))
        }
        let decision = try #require(client.pendingDecision)
        var events = try client.resume(with: answerInPlace(decision))
        _ = try server.receive(client.takeOutput())
        events += try client.receive(server.takeOutput())
        #expect(events.contains { $0.handshakeSummary != nil })
        #expect(server.isHandshakeComplete && client.isHandshakeComplete)
    }

    @Test("answers that do not match the decision, or with no decision pending, are API misuse and change nothing")
    func misuse() throws {
        let (client, _) = try Self.pausedClient(versions: [.tls13])
        #expect(throws: TLSError.self) { try client.resume(with: .signature([1, 2, 3])) }
        #expect(client.failure == nil && client.pendingDecision != nil, "still paused")
        let server = try TLSConnection.server(configuration: try serverConfig())
        #expect(throws: TLSError.misuse("no decision is pending")) { try server.resume(with: .signature([1])) }
        #expect(server.takeOutput().isEmpty)
    }

    @Test("sign pauses the server in both versions; a failed signature is internal_error", arguments: versions)
    func signPause(versions: [ProtocolVersion]) throws {
        let key = AsynchronousKey(inner: sharedPKI.serverKey)
        let chain = try sharedPKI.serverCertifiedKey.chain
        let server = ServerConfiguration(provider: .swiftCrypto, certificates: [CertifiedKey(chain: chain, key: key)])
        let o = try runPair(client: clientConfig { $0.versions = versions }, server: server)
        #expect(Self.decisions(o.serverEvents).count == 1)
        #expect(Self.decisions(o.serverEvents).first?.signatureRequest != nil)
        #expect(o.client.isHandshakeComplete && o.server.isHandshakeComplete)

        let c = try TLSConnection.client(configuration: clientConfig { $0.versions = versions }, serverName: "localhost")
        let s = try TLSConnection.server(configuration: server)
        _ = try s.receive(c.takeOutput())
        try #require(s.pendingDecision?.signatureRequest != nil)
        #expect(throws: TLSError.crypto("HSM unreachable")) { try s.resume(with: .failure(.crypto("HSM unreachable"))) }
        #expect(throws: TLSError(.alertReceived(.internalError))) {
            _ = try c.receive(s.takeOutput())
        }
    }

    static func selectingServer(synchronous: Bool) throws -> ServerConfiguration {
        var h2 = try serverConfig()
        h2.alpnProtocols = ["h2"]
        var selecting = try serverConfig()
        selecting.alpnProtocols = ["never-chosen"]
        selecting.configurationSelector = SNISelector(byName: ["localhost": h2], synchronous: synchronous)
        return selecting
    }

    @Test("selectServerConfiguration pauses the server on the ClientHello; the chosen configuration is used", arguments: versions)
    func selectConfiguration(versions: [ProtocolVersion]) throws {
        let o = try runPair(
            client: clientConfig {
                $0.versions = versions
                $0.alpnProtocols = ["http/1.1", "h2"]
            },
            server: try Self.selectingServer(synchronous: false))
        let hello = try #require(Self.decisions(o.serverEvents).first?.clientHello)
        #expect(hello.serverName == "localhost")
        #expect(hello.alpnProtocols == ["http/1.1", "h2"])
        #expect(!hello.groups.isEmpty && !hello.signatureSchemes.isEmpty)
        #expect(o.server.summary?.alpnProtocol == "h2" && o.client.summary?.alpnProtocol == "h2")
        #expect(o.server.summary?.version == versions[0])
    }

    @Test("a synchronous selector is asked in place, without a pause")
    func selectInPlace() throws {
        let o = try runPair(client: clientConfig { $0.alpnProtocols = ["h2"] }, server: try Self.selectingServer(synchronous: true))
        #expect(Self.decisions(o.serverEvents).isEmpty)
        #expect(o.server.summary?.alpnProtocol == "h2")
    }

    @Test("no configuration for the name: unrecognized_name on both sides")
    func unknownName() throws {
        let o = try runPair(
            client: clientConfig {
                $0.alpnProtocols = ["h2"]
                $0.dangerouslySkipServerNameVerification = true
            },
            server: try Self.selectingServer(synchronous: false), serverName: "unknown.example")
        #expect(o.serverError?.alert == .unrecognizedName)
        #expect(o.clientError?.code == .alertReceived(.unrecognizedName))
    }

    @Test("a verification answer for another certificate than the peer's is bad_certificate, not trusted")
    func mismatchedAnswer() throws {
        let (client, server) = try Self.pausedClient(versions: [.tls13])
        let other = try DemoPKI()
        let foreign = try other.verifier.verify(chain: [other.serverCertificate.der], role: .server(name: "localhost"))
        #expect(throws: TLSError.self) { try client.resume(with: .peerVerified(foreign)) }
        #expect(client.failure?.alert == .badCertificate)
        #expect(throws: TLSError(.alertReceived(.badCertificate))) { try server.receive(client.takeOutput()) }
    }

    @Test("a verification answer naming the peer's certificate but carrying another certificate's key is bad_certificate")
    func answerWithAnotherKey() throws {
        let (client, server) = try Self.pausedClient(versions: [.tls13])
        let right = answerInPlace(try #require(client.pendingDecision))
        let rightPeer = try #require(right.peerAnswer)
        let other = try DemoPKI()
        let foreign = try other.verifier.verify(chain: [other.serverCertificate.der], role: .server(name: "localhost"))
        // The identity (the leaf DER) is the peer's; the key is not.
        let mixed = VerifiedPeer(publicKey: foreign.publicKey, identity: rightPeer.identity)
        #expect { try client.resume(with: .peerVerified(mixed)) } throws: {
            ($0 as? TLSError)?.description.contains("not the key of the peer's certificate") == true
        }
        #expect(client.failure?.alert == .badCertificate)
        #expect(throws: TLSError(.alertReceived(.badCertificate))) { try server.receive(client.takeOutput()) }
    }

    @Test("double resume is misuse; resume after a failure rethrows the failure")
    func doubleResume() throws {
        let (client, _) = try Self.pausedClient(versions: [.tls13])
        let answer = answerInPlace(try #require(client.pendingDecision))
        _ = try client.resume(with: answer)
        #expect(throws: TLSError.misuse("no decision is pending")) { try client.resume(with: answer) }
        let (failed, _) = try Self.pausedClient(versions: [.tls12])
        #expect(throws: TLSError.rejected(.expired)) { try failed.resume(with: .failure(.rejected(.expired))) }
        #expect(throws: TLSError.rejected(.expired)) { try failed.resume(with: answer) }
    }

    @Test("a failure answer with no alert of its own still sends one (internal_error)")
    func silentFailureAnswer() throws {
        let (client, server) = try Self.pausedClient(versions: [.tls12])
        #expect(throws: TLSError.self) { try client.resume(with: .failure(.misuse("oops"))) }
        #expect(client.failure?.alert == .internalError)
        #expect(throws: TLSError(.alertReceived(.internalError))) { try server.receive(client.takeOutput()) }
    }

    @Test("the base configuration is a floor: a selected configuration cannot drop requirePostQuantum or add versions")
    func selectionWithinPolicy() throws {
        var classical = try serverConfig()
        classical.groups = [.x25519]
        classical.versions = [.tls13, .tls12]
        var base = try serverConfig()
        base.requirePostQuantum = true
        base.versions = [.tls13]
        base.configurationSelector = SNISelector(byName: ["localhost": classical])
        let o = try runPair(client: clientConfig { $0.groups = [.x25519] }, server: base)
        #expect(o.serverError?.alert == .insufficientSecurity, "\(String(describing: o.serverError))")
        var both = try serverConfig()
        both.versions = [.tls13, .tls12]
        var base13 = try serverConfig()
        base13.versions = [.tls13]
        base13.configurationSelector = SNISelector(byName: ["localhost": both])
        let o12 = try runPair(client: clientConfig { $0.versions = [.tls12] }, server: base13)
        #expect(o12.serverError?.alert == .protocolVersion, "\(String(describing: o12.serverError))")
    }

    @Test("what a peer sends while a decision is pending is bounded")
    func boundedWhilePaused() throws {
        let (client, _) = try Self.pausedClient(versions: [.tls13])
        let record: [UInt8] = [0x17, 0x03, 0x03, 0x40, 0x00] + [UInt8](repeating: 0, count: 0x4000)
        var threw = false
        for _ in 0..<200 {
            do { _ = try client.receive(record) } catch {
                #expect(error == TLSError.misbehaved(.sentTooMuchWhileWaiting))
                threw = true
                break
            }
        }
        #expect(threw, "more than \(TLSConnection.maxBufferedWhilePaused) bytes are refused")
        #expect(client.failure?.alert == .unexpectedMessage)
    }
}
