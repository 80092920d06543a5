import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import Testing

@Suite("Seed §6.2: one retry with a wider configuration after handshake_failure, never below the floor")
struct RetryTests {
    static let pki = try! DemoPKI()

    static func server(_ configure: (inout ServerConfiguration) -> Void) async throws -> NIOQSSLServer {
        var config = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
        configure(&config)
        return try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config) { [] }
    }

    @Test("a narrow first attempt fails with handshake_failure; the retry with wider suites succeeds")
    func retries() async throws {
        let server = try await Self.server {
            $0.cipherSuites = [.aes128GCMSHA256]
            $0.versions = [.tls13]
        }
        var narrow = ClientConfiguration(provider: .swiftCrypto, verifier: Self.pki.verifier)
        narrow.cipherSuites = [.chaCha20Poly1305SHA256]
        let wide = ClientConfiguration(provider: .swiftCrypto, verifier: Self.pki.verifier)
        let (client, retried) = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port, configuration: narrow,
            serverName: "localhost", retryingWith: wide)
        #expect(retried)
        #expect(client.summary.cipherSuite == .tlsAES128GCMSHA256)
        try? await client.channel.close()
        try await server.close()
    }

    @Test("the retry keeps the post-quantum requirement: against a classical-only server it fails again")
    func keepsFloor() async throws {
        let server = try await Self.server {
            $0.groups = [.x25519]
            $0.tls12CipherSuites = TLS12CipherSuite.all.filter { !$0.isHybrid }
        }
        var strict = ClientConfiguration(provider: .swiftCrypto, verifier: Self.pki.verifier)
        strict.requirePostQuantum = true
        strict.cipherSuites = [.chaCha20Poly1305SHA256]
        var wide = ClientConfiguration(provider: .swiftCrypto, verifier: Self.pki.verifier)
        wide.requirePostQuantum = false
        let widened = strict.widened(to: wide)
        #expect(widened.requirePostQuantum && widened.groups.allSatisfy(\.isPostQuantum))
        await #expect(throws: (any Error).self) {
            _ = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: strict, serverName: "localhost", retryingWith: wide)
        }
        try await server.close()
    }

    @Test("only a lack of common parameters is retried; a certificate failure is not")
    func notRetryable() {
        #expect(ClientConfiguration.isRetryable(TLSError(.alertReceived(.handshakeFailure))))
        #expect(ClientConfiguration.isRetryable(.incompatible(.noCommonCipherSuite)))
        #expect(!ClientConfiguration.isRetryable(.rejected(.unknownIssuer)))
        #expect(!ClientConfiguration.isRetryable(TLSError(.alertReceived(.insufficientSecurity))))
    }
}
