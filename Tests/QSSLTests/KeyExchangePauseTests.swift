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

        // Nor after a share or a secret of the wrong size (a token answering truncated output).
        let good = try inner.respond(toClientShare: try inner.generateClientShare().share)
        let truncated = good.secret.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0.dropLast())) }
        for (share, secret) in [(good.share, truncated), (Array(good.share.dropLast()), good.secret), (good.share + [0], good.secret)] {
            let c3 = try TLSConnection.client(configuration: client, serverName: "localhost")
            let s3 = try TLSConnection.server(configuration: ok)
            _ = try s3.receive(c3.takeOutput())
            _ = s3.takeOutput()
            #expect(throws: TLSError.self) { _ = try s3.resume(with: .keyExchange(share: share, secret: secret)) }
            #expect(s3.failure?.alert == .internalError)
            #expect(s3.takeOutput().first != 0x16, "no ServerHello after a \(share.count)-byte share and \(secret.count)-byte secret")
        }
        // The right sizes complete the handshake.
        let c4 = try TLSConnection.client(configuration: client, serverName: "localhost")
        let s4 = try TLSConnection.server(configuration: ok)
        _ = try s4.receive(c4.takeOutput())
        let request = try #require(s4.pendingDecision?.keyExchange)
        let answer = try inner.respond(toClientShare: request.clientShare)
        _ = try s4.resume(with: .keyExchange(share: answer.share, secret: answer.secret))
        #expect(s4.failure == nil)
    }
}

@Suite("Key-share answer sizes")
struct KeyShareLengthTests {
    @Test("every group the swift-crypto provider implements answers with the sizes NamedGroup.responseLengths names")
    func lengthsMatchTheProvider() throws {
        let provider = CryptoProvider.swiftCrypto
        #expect(provider.keyExchangeGroups.count >= 5)
        for kx in provider.keyExchangeGroups {
            let expected = try #require(kx.group.responseLengths, "no sizes for \(kx.group)")
            let answer = try kx.respond(toClientShare: try kx.generateClientShare().share)
            #expect(answer.share.count == expected.share, "\(kx.group) share")
            #expect(answer.secret.count == expected.secret, "\(kx.group) secret")
        }
    }
}
