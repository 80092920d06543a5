import Foundation
import NIOQSSL
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// The optional ephemeral ECDH in the token (`CryptoProvider.swiftCryptoWithTokenECDH(_:)`).
@Suite("SoftHSM2: ECDH in the token (optional)", .enabled(if: SoftHSM.isAvailable, SoftHSM.skipReason), .serialized)
struct SoftHSMECDHTests {
    static func ecdhGroups(_ provider: CryptoProvider) -> [PKCS11ECDHGroup] { provider.keyExchangeGroups.compactMap { $0 as? PKCS11ECDHGroup } }

    @Test("a hybrid SecP384r1MLKEM1024 handshake with the server's ECDH half in the token, and no session object left behind")
    func hybridWithECDHInToken() async throws {
        let f = try SoftHSM.shared
        let provider = try CryptoProvider.swiftCryptoWithTokenECDH(f.token)
        #expect(Set(Self.ecdhGroups(provider).map(\.group)) == [.secp384r1MLKEM1024, .secp256r1MLKEM768, .secp384r1, .secp256r1])
        let objectsBefore = try f.token.objects().count
        let derivationsBefore = Self.ecdhGroups(provider)[0].derivations
        let (server, outcomes) = try await startServer(try f.certifiedKey(f.p384)) { $0.provider = provider }
        for group in [NamedGroup.secp384r1MLKEM1024, .secp384r1, .secp256r1MLKEM768] {
            var configuration = ClientConfiguration(provider: .swiftCrypto, verifier: f.verifier)
            configuration.groups = [group]
            configuration.keyShareGroups = [group]
            configuration.sessionStore = nil
            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration, serverName: "localhost")
            try await client.send(Array("ecdh".utf8))
            #expect(try await client.read() == Array("ecdh".utf8))
            await client.close()
            #expect(client.summary.group == group)
        }
        try await server.close()
        #expect(outcomes.errors.isEmpty)
        #expect(Self.ecdhGroups(provider)[0].derivations == derivationsBefore + 3)
        #expect(try f.token.objects().count == objectsBefore)
    }

    @Test("OpenSSL 3.0 s_client completes secp384r1 with the server's ECDH in the token")
    func opensslSecp384r1() async throws {
        let openssl = try #require(opensslPath, "openssl is not installed")
        let f = try SoftHSM.shared
        let provider = try CryptoProvider.swiftCryptoWithTokenECDH(f.token)
        let (server, outcomes) = try await startServer(try f.certifiedKey(f.p384)) { $0.provider = provider }
        let result = try await run(
            openssl,
            [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", f.caFile, "-servername", "localhost",
                "-verify_return_error", "-brief", "-tls1_3", "-groups", "secp384r1"
            ], timeout: 30)
        try await server.close()
        #expect(result.status == 0 && result.text.contains("Verification: OK"), "\(result.text)")
        #expect(result.text.contains("Server Temp Key: ECDH, secp384r1") || result.text.contains("Server Temp Key: ECDH, P-384"), "\(result.text)")
        #expect(outcomes.summaries.first?.group == .secp384r1)
        #expect(Self.ecdhGroups(provider)[0].derivations >= 1)
    }

    @Test("a client point that is not on the curve is refused before the token sees it (illegal_parameter)")
    func invalidPoint() throws {
        let f = try SoftHSM.shared
        let group = try #require(try PKCS11ECDHGroup.groups(in: f.token).first { $0.group == .secp384r1 })
        var point = [UInt8](repeating: 0x11, count: 97)
        point[0] = 0x04
        #expect { try group.respond(toClientShare: point) } throws: { ($0 as? TLSError)?.alert == .illegalParameter }
        #expect { try group.respond(toClientShare: [0x02] + [UInt8](repeating: 1, count: 48)) } throws: { ($0 as? TLSError)?.alert == .illegalParameter }
        #expect(group.derivations == 0)
    }
}
