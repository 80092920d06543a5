import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

// Mutual TLS, Q-SSL ↔ Q-SSL with composite client certificates over a real loopback connection.

/// Signs, then flips one byte of the signature (a composite signature: one half broken).
struct MTLSCorruptingKey: SigningKey {
    let inner: any SigningKey
    /// Byte offset to flip; negative counts from the end.
    let offset: Int
    var supportedSchemes: [SignatureScheme] { inner.supportedSchemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        var s = try inner.sign(message, scheme: scheme)
        s[offset >= 0 ? offset : s.count + offset] ^= 0x01
        return s
    }
}

@Suite("Interop: Q-SSL ↔ Q-SSL composite client certificates over NIO loopback", .serialized)
struct MutualTLSInteropCompositeTests {
    static let versions: [ProtocolVersion] = [.tls13, .tls12]

    @Test("composite ML-DSA-65 + ECDSA P-384 client certificate: both halves verified (TLS 1.3, TLS 1.2 hybrid suite)", arguments: versions)
    func composite(version: ProtocolVersion) async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.compositeCA.certificate])
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: server.port,
            configuration: mtlsClientConfig(pki.compositeClient, versions: [version]), serverName: "localhost")
        try await client.send(Array("composite".utf8))
        let echoed = try await client.read(expectedBytes: 9)
        await client.close()
        await record.wait { !$0.summaries.isEmpty }
        try await server.close()
        #expect(echoed == Array("composite".utf8))
        #expect(client.summary.clientCertificateSent)
        #expect(client.summary.localSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        let summary = try #require(record.summaries.first)
        #expect(summary.version == version)
        #expect(summary.group == .secp384r1MLKEM1024)
        if version == .tls12 { #expect(summary.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384) }
        let identity = try #require(summary.peerIdentity)
        #expect(identity.subject.contains("composite-client"))
        #expect(identity.keyAlgorithm.hasPrefix("composite ML-DSA-65"), "\(identity.keyAlgorithm)")
        #expect(identity.handshakeSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test("post-handshake authentication with a composite client certificate: the server asks after the handshake")
    func compositePostHandshake() async throws {
        let pki = MTLSInteropPKI.shared
        let (server, record) = try await startMTLSServer(policy: .none, clientRoots: [pki.compositeCA.certificate], requestAfterHandshake: true)
        let config = mtlsClientConfig(pki.compositeClient, versions: [.tls13]) { $0.offerPostHandshakeAuthentication = true }
        let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: server.port, configuration: config, serverName: "localhost")
        #expect(!client.summary.clientCertificateSent)
        let line = String(decoding: try await client.read(idleTimeout: .seconds(5)), as: UTF8.self)
        try await client.send(Array("after".utf8))
        let echoed = try await client.read(expectedBytes: 5)
        await client.close()
        await record.wait { !$0.authenticated.isEmpty }
        try await server.close()
        #expect(line.hasPrefix("authenticated:") && line.contains("composite-client"), "\(line)")
        #expect(echoed == Array("after".utf8))
        #expect(record.summaries.first?.peerIdentity == nil)
        let identity = try #require(record.authenticated.first ?? nil)
        #expect(identity.handshakeSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"])
        #expect(record.errors.isEmpty, "\(record.errors)")
    }

    @Test(
        "a composite CertificateVerify with one broken half is refused with decrypt_error on both sides (ML-DSA half, ECDSA half)",
        arguments: [(ProtocolVersion.tls13, 10), (.tls13, -10), (.tls12, 10), (.tls12, -10)])
    func brokenHalf(version: ProtocolVersion, offset: Int) async throws {
        let pki = MTLSInteropPKI.shared
        var broken = pki.compositeClient
        broken.key = MTLSCorruptingKey(inner: broken.key, offset: offset)
        let (server, record) = try await startMTLSServer(policy: .required, clientRoots: [pki.compositeCA.certificate])
        let outcome = await mtlsClientFailure(port: server.port, configuration: mtlsClientConfig(broken, versions: [version]), probe: "x")
        await record.wait { !$0.errors.isEmpty }
        try await server.close()
        #expect(outcome.error?.code.receivedAlert == .decryptError, "\(outcome.description)")
        #expect(record.tlsErrors.first?.alert == .decryptError, "\(record.errors)")
        #expect(record.summaries.isEmpty)
    }
}
