@testable import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Synchronization
import Testing

private func summary(_ events: [TLSEvent]) -> HandshakeSummary? {
    for case .handshakeCompleted(let s) in events { return s }
    return nil
}

private func issued(_ events: [TLSEvent]) -> [TLSSession] {
    events.compactMap { if case .sessionIssued(let s) = $0 { s } else { nil } }
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
        #expect(issued(second.clientEvents).count == 2)
        // Data flows on the resumed connection.
        try second.client.send(Array("ping".utf8))
        let events = try second.server.receive(second.client.takeOutput())
        #expect(events.contains(.applicationData(Array("ping".utf8))))
    }
}

extension ResumptionTests {
    @Test("TLS 1.2: a ticket resumes (abbreviated handshake, server Finished first); without tickets the session ID does",
          arguments: [true, false])
    func tls12Resumption(tickets: Bool) throws {
        let client = clientConfig { $0.versions = [.tls12]; $0.tls12SessionTickets = tickets }
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
