import QSSLSwiftCrypto
import QSSLWire
import Testing

@testable import QSSL

@Suite("Configurations: copy-on-write fields and the validation kept with them")
struct ConfigurationStorageTests {
    @Test("a copy changed after the original was copied leaves the original as it was (value semantics)")
    func copiesAreValues() throws {
        let original = try serverConfig()
        var copy = original
        copy.tls13TicketCount = 5
        copy.groups.append(.secp256r1)
        copy.alpnProtocols = ["h2"]
        #expect(original.tls13TicketCount == 2 && copy.tls13TicketCount == 5)
        #expect(!original.groups.contains(.secp256r1) || original.groups.count < copy.groups.count)
        #expect(original.alpnProtocols.isEmpty && copy.alpnProtocols == ["h2"])
        // The per-configuration defaults are shared by copies, not made again.
        #expect(copy.sessionCache as AnyObject === original.sessionCache as AnyObject)
        #expect(copy.ticketKeys as AnyObject === original.ticketKeys as AnyObject)
        var client = clientConfig()
        let clientCopy = client
        client.keyShareGroups = [.x25519]
        #expect(clientCopy.keyShareGroups == Defaults.clientKeyShares && client.keyShareGroups == [.x25519])
        #expect(client.sessionStore as AnyObject === clientCopy.sessionStore as AnyObject)
    }

    @Test("a configuration that passed validation and is then changed (in place or in a copy) is validated again")
    func changesAreValidatedAgain() throws {
        var config = try serverConfig()
        _ = try TLSConnection.server(configuration: config)  // validated, and the result kept
        // A change to a shared configuration copies its fields, which start unvalidated; the
        // change in place (below, `solo`) is what needs the kept result cleared.
        var copy = config
        config.tls13TicketCount = 99
        #expect(throws: TLSError.misuse("tls13TicketCount must be 0 to 16")) { _ = try TLSConnection.server(configuration: config) }
        _ = try TLSConnection.server(configuration: copy)  // the copy kept its fields and its validation
        copy.groups = []
        #expect(throws: TLSError.self) { _ = try TLSConnection.server(configuration: copy) }
        // A failed validation is not kept: fixed, the configuration is accepted.
        config.tls13TicketCount = 1
        _ = try TLSConnection.server(configuration: config)

        // Changed in place (no copy alive: the fields are not copied, only the kept result cleared).
        var solo = try serverConfig()
        do { _ = try TLSConnection.server(configuration: solo) }
        solo.sessionLifetimeSeconds = 0
        #expect(throws: TLSError.self) { _ = try TLSConnection.server(configuration: solo) }

        var client = clientConfig()
        _ = try TLSConnection.client(configuration: client, serverName: "localhost")
        client.versions = []
        #expect(throws: TLSError.self) { _ = try TLSConnection.client(configuration: client, serverName: "localhost") }
    }
}
