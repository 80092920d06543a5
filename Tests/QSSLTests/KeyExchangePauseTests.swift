import QSSLSwiftCrypto
import QSSLTestSupport
import QSSLWire
import Testing

@testable import QSSL

@Suite("A server key exchange that answers asynchronously is a decision")
struct KeyExchangePauseCoreTests {
    @Test(
        "the TLS 1.3 server pauses with a keyExchange decision naming the group and the client's share, and completes with the answer",
        arguments: [NamedGroup.secp384r1MLKEM1024, .x25519])
    func pausesAndCompletes(group: NamedGroup) throws {
        let inner = try #require(CryptoProvider.swiftCrypto.keyExchange(for: group))
        let server = try serverConfig {
            $0 = ServerConfiguration(provider: CryptoProvider.swiftCrypto.replacing(AsynchronousGroup(inner: inner)), certificates: $0.certificates)
        }
        let client = clientConfig {
            $0.groups = [group]
            $0.keyShareGroups = [group]
        }
        let o = try runPair(client: client, server: server)
        let decisions = o.serverEvents.compactMap { $0.decision?.keyExchange }
        #expect(decisions.count == 1 && decisions.first?.group == group)
        #expect(decisions.first.map { !$0.clientShare.isEmpty } == true)
        #expect(o.client.isHandshakeComplete && o.server.isHandshakeComplete)
        #expect(o.clientEvents.contains { $0.handshakeSummary?.group == group })
    }

    @Test("a key exchange that fails is the connection's alert on both sides, and a mismatched answer is refused before the state moves")
    func failureAndMismatch() throws {
        let inner = try #require(CryptoProvider.swiftCrypto.keyExchange(for: .x25519))
        let failing = AsynchronousGroup(inner: inner, failure: .misbehaved(.sentKeyShareWrongLength, "token refused the share"))
        let server = try serverConfig { $0 = ServerConfiguration(provider: CryptoProvider.swiftCrypto.replacing(failing), certificates: $0.certificates) }
        let client = clientConfig {
            $0.groups = [.x25519]
            $0.keyShareGroups = [.x25519]
        }
        let o = try runPair(client: client, server: server)
        #expect(o.serverError?.alert == .illegalParameter)
        #expect(o.clientError?.code == .alertReceived(.illegalParameter))

        // Answering a key-exchange pause with a signature is a misuse, refused as such.
        let ok = try serverConfig {
            $0 = ServerConfiguration(provider: CryptoProvider.swiftCrypto.replacing(AsynchronousGroup(inner: inner)), certificates: $0.certificates)
        }
        let c = try TLSConnection.client(configuration: client, serverName: "localhost")
        let s = try TLSConnection.server(configuration: ok)
        let events = try s.receive(c.takeOutput())
        #expect(events.contains { $0.decision?.keyExchange != nil })
        #expect(throws: TLSError.self) { _ = try s.resume(with: .signature([1, 2, 3])) }

        // An answer without a share or a secret fails the handshake before ServerHello goes out.
        let c2 = try TLSConnection.client(configuration: client, serverName: "localhost")
        let s2 = try TLSConnection.server(configuration: ok)
        _ = try s2.receive(c2.takeOutput())
        _ = s2.takeOutput()
        #expect(throws: TLSError.self) { _ = try s2.resume(with: .keyExchange(share: [], secret: SecretBytes([1]))) }
        let sent = s2.takeOutput()
        #expect(sent.first != 0x16, "no handshake record (no ServerHello) after an empty share")
    }
}
