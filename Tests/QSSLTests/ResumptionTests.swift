import QSSLSwiftCrypto
import QSSLWire
import Synchronization
import Testing

@testable import QSSL

private func summary(_ events: [TLSEvent]) -> HandshakeSummary? {
    events.lazy.compactMap(\.handshakeSummary).first
}

private func issued(_ events: [TLSEvent]) -> [TLSSession] {
    events.compactMap(\.issuedSession)
}

@Suite("Resumption")
struct ResumptionTests {
    @Test("TLS 1.3: a ticket resumes with psk_dhe_ke on the hybrid group, identity carried, single use")
    func tls13Resumption() throws {
        let client = clientConfig()
        let server = try serverConfig()
        let first = try runPair(client: client, server: server)
        #expect(first.clientError == nil && first.serverError == nil)
        let full = try #require(summary(first.clientEvents))
        #expect(!full.resumed)
        #expect(issued(first.clientEvents).count == 2)

        let second = try runPair(client: client, server: server)
        #expect(second.clientError == nil && second.serverError == nil)
        let resumed = try #require(summary(second.clientEvents))
        let serverSide = try #require(summary(second.serverEvents))
        #expect(resumed.resumed && serverSide.resumed)
        #expect(resumed.group == .secp384r1MLKEM1024)
        #expect(resumed.peerIdentity == full.peerIdentity)
        #expect(resumed.peerIdentity != nil)
        #expect(issued(second.clientEvents).count == 1, "one ticket replaces the one used")
        // Data flows on the resumed connection.
        try second.client.send(Array("ping".utf8))
        let events = try second.server.receive(second.client.takeOutput())
        #expect(events.contains(.applicationData(Array("ping".utf8))))
    }
}

extension ResumptionTests {
    @Test(
        "TLS 1.2: a ticket resumes (abbreviated handshake, server Finished first); without tickets the session ID does",
        arguments: [true, false])
    func tls12Resumption(tickets: Bool) throws {
        let client = clientConfig {
            $0.versions = [.tls12]
            $0.tls12SessionTickets = tickets
        }
        let server = try serverConfig()
        let first = try runPair(client: client, server: server)
        #expect(first.clientError == nil && first.serverError == nil)
        let full = try #require(summary(first.clientEvents))
        #expect(!full.resumed && full.version == .tls12)
        let session = try #require(issued(first.clientEvents).first)
        #expect((session.ticket != nil) == tickets)
        #expect(session.sessionID.count == 32)

        let second = try runPair(client: client, server: server)
        #expect(second.clientError == nil && second.serverError == nil)
        let resumed = try #require(summary(second.clientEvents))
        let serverSide = try #require(summary(second.serverEvents))
        #expect(resumed.resumed && serverSide.resumed)
        #expect(resumed.cipherSuite == full.cipherSuite)
        #expect(resumed.peerIdentity == full.peerIdentity)
        try second.client.send(Array("ping".utf8))
        #expect(try second.server.receive(second.client.takeOutput()).contains(.applicationData(Array("ping".utf8))))
        try second.server.send(Array("pong".utf8))
        #expect(try second.client.receive(second.server.takeOutput()).contains(.applicationData(Array("pong".utf8))))

        // TLS 1.2 sessions may be resumed again.
        let third = try runPair(client: client, server: server)
        #expect(try #require(summary(third.clientEvents)).resumed)
    }
}

/// Negative and edge cases (issue 9): each lands on a full handshake or the right alert.
@Suite("Resumption: tampering, expiry, policy, early data")
struct ResumptionEdgeTests {
    /// A client configuration whose store holds sessions from one full handshake with `server`.
    static func primed(_ server: ServerConfiguration, _ configure: (inout ClientConfiguration) -> Void = { _ in }) throws -> (ClientConfiguration, [TLSSession])
    {
        let client = clientConfig(configure)
        let o = try runPair(client: client, server: server)
        try #require(o.client.isHandshakeComplete && o.clientError == nil)
        return (client, issued(o.clientEvents))
    }

    static func resumed(_ o: PairOutcome) -> Bool? { summary(o.serverEvents).map(\.resumed) }

    @Test("a tampered ticket is a full handshake, never an error", arguments: [ProtocolVersion.tls13, .tls12])
    func tamperedTicket(version: ProtocolVersion) throws {
        let server = try serverConfig { $0.sessionCache = nil }  // else the TLS 1.2 session ID resumes from the cache
        var (client, sessions) = try Self.primed(server) { $0.versions = [version] }
        var session = try #require(sessions.first)
        session.ticket![session.ticket!.count / 2] ^= 1
        client.sessionStore = nil
        let o = try runPairOffering(session, client: client, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
        #expect(summary(o.clientEvents)?.resumed == false)
    }

    @Test("a ticket sealed by another server's keys is a full handshake")
    func foreignTicket() throws {
        let (client, _) = try Self.primed(try serverConfig())
        let o = try runPair(client: client, server: try serverConfig())
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
    }

    @Test("a wrong binder is decrypt_error on both sides")
    func wrongBinder() throws {
        let server = try serverConfig()
        let (client, _) = try Self.primed(server)
        try expectServerAlert(.decryptError, client: client, server: server) { hello in
            var psk = try! OfferedPSKs(decoding: hello.extensions[.preSharedKey]!)
            psk.binders[0][0] ^= 1
            replace(&hello.extensions, .preSharedKey, try! psk.encoded())
        }
    }

    @Test("pre_shared_key not last is illegal_parameter; PSK without psk_key_exchange_modes is missing_extension")
    func pskExtensionRules() throws {
        let server = try serverConfig()
        let (client, _) = try Self.primed(server)
        try expectServerAlert(.illegalParameter, client: client, server: server) { hello in
            let psk = hello.extensions.items.removeLast()
            hello.extensions.items.insert(psk, at: 0)
        }
        let (client2, _) = try Self.primed(server)
        try expectServerAlert(.missingExtension, client: client2, server: server) { hello in
            hello.extensions.items.removeAll { $0.type == .pskKeyExchangeModes }
        }
    }

    @Test("a ticket for another server name is not resumed (full handshake)")
    func otherServerName() throws {
        let server = try serverConfig()
        var (client, sessions) = try Self.primed(server)
        var session = try #require(sessions.first)
        #expect(session.state.serverName == "localhost")
        session.state.serverName = "127.0.0.1"  // the client's copy; the sealed ticket says localhost
        client.sessionStore = nil
        let o = try runPairOffering(session, client: client, server: server, serverName: "127.0.0.1")
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
    }

    @Test(
        "an expired session is a full handshake (server clock past the lifetime; client clock not)",
        arguments: [ProtocolVersion.tls13, .tls12])
    func expired(version: ProtocolVersion) throws {
        let clock = FakeClock()
        let server = try serverConfig {
            $0.clock = clock
            $0.ticketKeys = TicketKeySet(primitives: $0.provider.primitives, clock: clock)
            $0.sessionCache = InMemorySessionCache(clock: clock)
        }
        let (client, _) = try Self.primed(server) { $0.versions = [version] }
        clock.advance(seconds: 3601)
        let o = try runPair(client: client, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
    }

    @Test("a client never offers an expired session")
    func clientExpiry() throws {
        let clock = FakeClock()
        let server = try serverConfig()
        let (client, _) = try Self.primed(server) {
            $0.clock = clock
            $0.sessionStore = InMemoryClientSessionStore(clock: clock)
        }
        clock.advance(seconds: 3601)
        let (o, hello, _) = try runPairCapturingHellos(client: client, server: server)
        #expect(Self.resumed(o) == false)
        #expect(!hello.extensions.contains(.preSharedKey))
    }

    @Test("ticket age outside the tolerance is a full handshake")
    func ticketAgeSkew() throws {
        let clock = FakeClock()
        let server = try serverConfig {
            $0.clock = clock
            $0.ticketKeys = TicketKeySet(primitives: $0.provider.primitives, clock: clock)
        }
        let (client, _) = try Self.primed(server)  // the client's real clock: its ticket age is ~0
        clock.advance(seconds: 60)  // the server thinks a minute passed
        let o = try runPair(client: client, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
    }

    @Test("PQ policy: a server requiring ML-KEM does not resume a classical session; a client requiring it does not offer one")
    func postQuantumPolicy() throws {
        let classical = try serverConfig { $0.groups = [.x25519] }
        var pq = try serverConfig { $0.requirePostQuantum = true }
        pq.ticketKeys = classical.ticketKeys
        let (client, sessions) = try Self.primed(classical)
        #expect(sessions.first?.state.group == .x25519)
        let o = try runPair(client: client, server: pq)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
        #expect(summary(o.clientEvents)?.group == .secp384r1MLKEM1024)

        let (client2, _) = try Self.primed(classical)
        var strict = client2
        strict.requirePostQuantum = true
        strict.offerPSKWithoutKeyExchange = true
        let (_, hello2, _) = try runPairCapturingHellos(client: strict, server: classical)
        #expect(!hello2.extensions.contains(.preSharedKey))
    }

    @Test("psk_ke only when both sides allow it; otherwise psk_dhe_ke")
    func pskKE() throws {
        var server = try serverConfig()
        server.acceptPSKWithoutKeyExchange = true
        let (client, _) = try Self.primed(server) { $0.offerPSKWithoutKeyExchange = true }
        let (o, _, sh) = try runPairCapturingHellos(client: client, server: server)
        #expect(Self.resumed(o) == true)
        #expect(!sh.extensions.contains(.keyShare), "psk_ke: no key share")
        #expect(summary(o.clientEvents)?.group == .secp384r1MLKEM1024, "the session keeps its original group")

        let strictServer = try serverConfig()  // psk_ke not accepted
        let (client2, _) = try Self.primed(strictServer) { $0.offerPSKWithoutKeyExchange = true }
        let (o2, _, sh2) = try runPairCapturingHellos(client: client2, server: strictServer)
        #expect(Self.resumed(o2) == true)
        #expect(sh2.extensions.contains(.keyShare), "psk_dhe_ke")
    }

    @Test("resumption across a HelloRetryRequest, the binder recomputed over both hellos")
    func acrossHelloRetryRequest() throws {
        let server = try serverConfig()
        let (client, _) = try Self.primed(server) { $0.keyShareGroups = [.x25519] }
        let o = try runPair(client: client, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        let s = try #require(summary(o.clientEvents))
        #expect(s.resumed && s.helloRetryRequest && s.group == .secp384r1MLKEM1024)
    }

    @Test(
        "0-RTT is skipped, never accepted: the handshake completes; too much of it is unexpected_message",
        arguments: [1, 3])
    func earlyDataSkipped(records: Int) throws {
        let server = try serverConfig()
        let (client, _) = try Self.primed(server) { $0.offerEarlyDataForTesting = true }
        var first = true
        let o = try runPair(client: client, server: server) { toServer, bytes in
            guard toServer, first else { return bytes }
            first = false
            var out = bytes
            for _ in 0..<records { out += [0x17, 0x03, 0x03, 0x01, 0x00] + [UInt8](repeating: 0xAB, count: 256) }
            return out
        }
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == true)
        let ee = o.server.trace  // nothing to check in the trace; EncryptedExtensions never accepts
        _ = ee

        let (client2, _) = try Self.primed(server) { $0.offerEarlyDataForTesting = true }
        var first2 = true
        let flood = try runPair(client: client2, server: server) { toServer, bytes in
            guard toServer, first2 else { return bytes }
            first2 = false
            var out = bytes
            for _ in 0..<70 { out += [0x17, 0x03, 0x03, 0x01, 0x00] + [UInt8](repeating: 0xAB, count: 256) }
            return out
        }
        #expect(flood.serverError?.code.misbehavior == .sentTooMuchEarlyData)
        #expect(flood.clientError?.code == .alertReceived(.unexpectedMessage))
    }

    @Test("0-RTT records after the first ClientHello are skipped when a HelloRetryRequest follows; early_data in ClientHello2 is illegal_parameter")
    func earlyDataAndRetry() throws {
        let server = try serverConfig()
        let client = clientConfig {
            $0.offerEarlyDataForTesting = true
            $0.keyShareGroups = [.x25519]
        }
        var first = true
        let o = try runPair(client: client, server: server) { toServer, bytes in
            guard toServer, first else { return bytes }
            first = false
            return bytes + [0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xCD, count: 32)
        }
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(summary(o.clientEvents)?.helloRetryRequest == true)
    }

    @Test("TLS 1.2: a ticket from a rotated-out key still resumes and is replaced; past the key lifetime it does not")
    func tls12Rotation() throws {
        let clock = FakeClock()
        let server = try serverConfig {
            $0.clock = clock
            $0.sessionLifetimeSeconds = 604_800
            $0.sessionCache = nil
            $0.ticketKeys = TicketKeySet(primitives: $0.provider.primitives, clock: clock)
        }
        let (client, sessions) = try Self.primed(server) {
            $0.versions = [.tls12]
            $0.clock = clock
            $0.sessionStore = InMemoryClientSessionStore(clock: clock)
        }
        let original = try #require(sessions.first?.ticket)
        clock.advance(seconds: 13 * 3600)
        let o = try runPair(client: client, server: server)
        #expect(Self.resumed(o) == true)
        let renewed = try #require(issued(o.clientEvents).first?.ticket)
        #expect(renewed != original, "a ticket opened by an older key is replaced")
        #expect(Array(renewed.prefix(16)) != Array(original.prefix(16)), "under the current key")
        clock.advance(seconds: 37 * 3600)
        var (c2, s2) = (client, issued(o.clientEvents))
        c2.sessionStore = nil
        var old = try #require(sessions.first)
        old.receivedAt = clock.nowMilliseconds()
        _ = s2
        let late = try runPairOffering(old, client: c2, server: server)
        #expect(Self.resumed(late) == false, "the original key is gone after 36 h")
    }

    @Test("TLS 1.2 RFC 7627 §5.3: an EMS session without EMS in the ClientHello is handshake_failure; a session without EMS is not resumed into one with it")
    func extendedMasterSecretRules() throws {
        let server = try serverConfig { $0.ticketKeys = nil }  // session IDs only
        let (client, sessions) = try Self.primed(server) { $0.versions = [.tls12] }
        #expect(sessions.first?.state.extendedMasterSecret == true)
        try expectServerAlert(.handshakeFailure, client: client, server: server) { hello in
            hello.extensions.items.removeAll { $0.type == .extendedMasterSecret }
        }
        // A session without EMS (made by hand, cached by the server) offered with EMS: full handshake.
        let cache = try #require(server.sessionCache)
        let id = [UInt8](repeating: 7, count: 32)
        var state = try #require(sessions.first?.state)
        state.extendedMasterSecret = false
        cache.save(state, sessionID: id)
        var c2 = client
        c2.sessionStore = nil
        let o = try runPairOffering(TLSSession(state: state, ticket: nil, sessionID: id, receivedAt: 0), client: c2, server: server)
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(Self.resumed(o) == false)
    }

    @Test("a client refuses a TLS 1.2 ServerHello that echoes a session ID it did not offer")
    func unofferedResumption() throws {
        var offeredID: [UInt8] = []
        var first = (true, true)
        let o = try runPair(client: clientConfig(), server: try serverConfig { $0.versions = [.tls12] }) { toServer, bytes in
            if toServer, first.0 {
                first.0 = false
                offeredID = firstMessage(bytes, as: ClientHello.self).legacySessionID
            } else if !toServer, first.1 {
                first.1 = false
                return rewriteFirstMessage(bytes, as: ServerHello.self) { $0.legacySessionIDEcho = offeredID }
            }
            return bytes
        }
        #expect(offeredID.count == 32, "a random ID for middleboxes")
        #expect(o.clientError?.code.misbehavior == .resumedUnofferedSession)
        #expect(o.serverError?.code == .alertReceived(.illegalParameter))
    }

    @Test("a session cache that answers asynchronously is asked through the pause")
    func asynchronousCache() throws {
        final class SlowCache: ServerSessionCache, @unchecked Sendable {
            let inner = InMemorySessionCache()
            var isSynchronous: Bool { false }
            func lookUp(sessionID: [UInt8]) -> SessionState? { inner.lookUp(sessionID: sessionID) }
            func save(_ state: SessionState, sessionID: [UInt8]) { inner.save(state, sessionID: sessionID) }
            func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
        }
        let server = try serverConfig {
            $0.sessionCache = SlowCache()
            $0.ticketKeys = nil
        }
        let (client, _) = try Self.primed(server) { $0.versions = [.tls12] }
        let o = try runPair(client: client, server: server)
        #expect(o.serverEvents.contains { $0.decision?.sessionLookup != nil })
        #expect(Self.resumed(o) == true)
    }

    @Test("TLS 1.3 tickets are single use in the client store")
    func singleUse() throws {
        let server = try serverConfig()
        let store = InMemoryClientSessionStore()
        let (client, sessions) = try Self.primed(server) { $0.sessionStore = store }
        let key = client.sessionStoreKey(for: "localhost")
        #expect(sessions.count == 2 && store.sessionCount(for: key) == 2)
        let o = try runPair(client: client, server: server)
        #expect(Self.resumed(o) == true)
        #expect(store.sessionCount(for: key) == 2, "one taken, one new")
    }
}

/// Runs a pair whose client offers `session` explicitly.
func runPairOffering(_ session: TLSSession, client: ClientConfiguration, server: ServerConfiguration, serverName: String = "localhost") throws -> PairOutcome {
    try runPair(client: client, server: server, serverName: serverName, session: session)
}

/// The first handshake message of a flight.
func firstMessage<M: HandshakeBody>(_ wire: [UInt8], as: M.Type) -> M {
    let length = Int(wire[3]) << 8 | Int(wire[4])
    let record = Array(wire[5..<(5 + length)])
    let bodyLength = Int(record[1]) << 16 | Int(record[2]) << 8 | Int(record[3])
    return try! HandshakeMessage(type: M.handshakeType, body: Array(record[4..<(4 + bodyLength)])).decode(as: M.self)
}

/// Runs a pair and returns the first ClientHello and ServerHello as sent.
func runPairCapturingHellos(client: ClientConfiguration, server: ServerConfiguration) throws -> (PairOutcome, ClientHello, ServerHello) {
    var hello: ClientHello?
    var serverHello: ServerHello?
    let o = try runPair(client: client, server: server) { toServer, bytes in
        if toServer, hello == nil { hello = firstMessage(bytes, as: ClientHello.self) }
        if !toServer, serverHello == nil { serverHello = firstMessage(bytes, as: ServerHello.self) }
        return bytes
    }
    return (o, try #require(hello), try #require(serverHello))
}
