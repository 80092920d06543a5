import QSSL
import Testing

@Suite("TLS 1.3 tickets: how many a server sends")
struct TicketCountTests {
    @Test("tls13TicketCount tickets after a full handshake; one after a resumption, replacing the ticket used")
    func countAfterFullAndResumed() throws {
        let client = clientConfig { $0.versions = [.tls13] }
        let server = try serverConfig {
            $0.ticketKeys = TicketKeySet(primitives: $0.provider.primitives)
            $0.tls13TicketCount = 3
        }
        let first = try runPair(client: client, server: server)
        #expect(first.clientSummary?.resumed == false)
        #expect(first.clientEvents.compactMap(\.issuedSession).count == 3)
        let second = try runPair(client: client, server: server)
        #expect(second.clientSummary?.resumed == true)
        #expect(second.clientEvents.compactMap(\.issuedSession).count == 1)
        // No tickets at all stays none, resumed or not.
        let none = try serverConfig {
            $0.ticketKeys = TicketKeySet(primitives: $0.provider.primitives)
            $0.tls13TicketCount = 0
        }
        #expect(try runPair(client: client, server: none).clientEvents.compactMap(\.issuedSession).isEmpty)
    }
}
