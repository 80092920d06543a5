@testable import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Testing

/// Which PSK key exchange mode a TLS 1.3 server chooses (RFC 8446 §4.2.9): psk_dhe_ke whenever
/// offered, unless it accepts psk_ke and prefers it (`preferPSKWithoutKeyExchange`, as
/// OpenSSL's SSL_OP_PREFER_NO_DHE_KEX); never psk_ke under the PQ policy.
@Suite("PSK key exchange mode")
struct PSKModeTests {
    /// Resumes once after a full handshake and returns the resumed client summary and the size of
    /// the server's first flight on the resumption (ServerHello … Finished): with psk_dhe_ke it
    /// carries the hybrid key share (over 1 KB), with psk_ke none.
    private func resume(client: ClientConfiguration, server: ServerConfiguration) throws -> (summary: HandshakeSummary, serverFlight: Int) {
        let first = try runPair(client: client, server: server)
        #expect(first.clientError == nil && first.serverError == nil)
        var flights: [Int] = []
        let second = try runPair(client: client, server: server) { toServer, bytes in
            if !toServer { flights.append(bytes.count) }
            return bytes
        }
        #expect(second.clientError == nil && second.serverError == nil)
        var summary: HandshakeSummary?
        for case .handshakeCompleted(let s) in second.clientEvents { summary = s }
        let resumed = try #require(summary)
        // Data flows either way.
        try second.client.send(Array("ping".utf8))
        #expect(try second.server.receive(second.client.takeOutput()).contains(.applicationData(Array("ping".utf8))))
        return (resumed, flights.first ?? 0)
    }

    @Test("both offered and accepted: psk_dhe_ke unless the server prefers psk_ke", arguments: [false, true])
    func preference(prefer: Bool) throws {
        let client = clientConfig { $0.offerPSKWithoutKeyExchange = true }
        let server = try serverConfig {
            $0.acceptPSKWithoutKeyExchange = true
            $0.preferPSKWithoutKeyExchange = prefer
        }
        let (summary, flight) = try resume(client: client, server: server)
        #expect(summary.resumed)
        #expect(summary.group == .secp384r1MLKEM1024)   // psk_ke keeps the session's group
        if prefer { #expect(flight < 400, "psk_ke: no key share in the ServerHello") } else { #expect(flight > 1000) }
    }

    @Test("a preference for psk_ke changes nothing unless the client offers it, or under the PQ policy")
    func preferenceNeedsOfferAndNoPQPolicy() throws {
        let notOffered = try resume(client: clientConfig(), server: try serverConfig {
            $0.acceptPSKWithoutKeyExchange = true
            $0.preferPSKWithoutKeyExchange = true
        })
        #expect(notOffered.summary.resumed && notOffered.serverFlight > 1000)
        let pqPolicy = try resume(client: clientConfig { $0.offerPSKWithoutKeyExchange = true }, server: try serverConfig {
            $0.acceptPSKWithoutKeyExchange = true
            $0.preferPSKWithoutKeyExchange = true
            $0.requirePostQuantum = true
        })
        #expect(pqPolicy.summary.resumed && pqPolicy.serverFlight > 1000)
    }
}
