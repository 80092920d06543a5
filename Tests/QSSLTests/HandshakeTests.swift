import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@testable import QSSL

@Suite("TLS 1.3 handshakes between Q-SSL peers")
struct HandshakeTests {
    @Test("the default handshake uses SecP384r1MLKEM1024 without a HelloRetryRequest")
    func defaultHybrid() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        #expect(o.clientError == nil && o.serverError == nil)
        let summary = try #require(o.client.summary)
        #expect(summary.group == .secp384r1MLKEM1024)
        #expect(summary.cipherSuite == .tlsAES256GCMSHA384)
        #expect(summary.peerSignatureScheme == .ecdsaSecp384r1SHA384)
        #expect(!summary.helloRetryRequest)
        #expect(summary.usedPostQuantumKeyExchange)
        #expect(o.server.summary?.group == .secp384r1MLKEM1024)

        try o.client.send(Array("ping".utf8))
        let events = try o.server.receive(o.client.takeOutput())
        #expect(events == [.applicationData(Array("ping".utf8))])
        try o.server.send(Array("pong".utf8))
        #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData(Array("pong".utf8))])
    }

    @Test(
        "every group and cipher suite completes a handshake",
        arguments: [
            NamedGroup.secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768, .mlkem1024, .x25519, .secp384r1, .secp256r1
        ], [TLS13CipherSuite.aes128GCMSHA256, .aes256GCMSHA384, .chaCha20Poly1305SHA256])
    func everyGroup(group: NamedGroup, suite: TLS13CipherSuite) throws {
        let o = try runPair(
            client: clientConfig {
                $0.groups = [group]
                $0.keyShareGroups = [group]
                $0.cipherSuites = [suite]
            },
            server: serverConfig { $0.groups = Defaults.groups + [.mlkem1024] })
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(o.client.summary?.group == group)
        #expect(o.client.summary?.cipherSuite == suite.suite)
    }

    @Test("pure MLKEM1024 is opt-in: a default server refuses it with handshake_failure")
    func pureMLKEMOptIn() throws {
        let o = try runPair(
            client: clientConfig {
                $0.groups = [.mlkem1024]
                $0.keyShareGroups = [.mlkem1024]
            }, server: serverConfig())
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.clientError?.alertSentOrReceived == .handshakeFailure)
    }

    @Test("server certificates of every algorithm authenticate, PQ and composite included", arguments: PKIBuilder.Algorithm.allCases.filter { $0 != .mldsa44 })
    func certificateAlgorithms(algorithm: PKIBuilder.Algorithm) throws {
        let pki = try DemoPKI(algorithm: algorithm)
        let o = try runPair(
            client: ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier),
            server: ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey]))
        #expect(o.clientError == nil && o.serverError == nil)
        let expected: [PKIBuilder.Algorithm: SignatureScheme] = [
            .ecdsaP384: .ecdsaSecp384r1SHA384, .ecdsaP256: .ecdsaSecp256r1SHA256, .ed25519: .ed25519, .rsa3072PSS: .rsaPSSRSAESHA384,
            .mldsa65: .mldsa65, .mldsa87: .mldsa87, .mldsa65ECDSAP384: .qsslMLDSA65ECDSASecp384r1SHA512
        ]
        #expect(o.client.summary?.peerSignatureScheme == expected[algorithm])
    }

    @Test("a server preferring a hybrid the client did not share asks with HelloRetryRequest")
    func helloRetryRequest() throws {
        let o = try runPair(
            client: clientConfig { $0.keyShareGroups = [.x25519] },
            server: serverConfig())
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(o.client.summary?.helloRetryRequest == true)
        #expect(o.client.summary?.group == .secp384r1MLKEM1024)
        #expect(o.server.summary?.helloRetryRequest == true)
    }

    @Test("a hybrid share already sent beats a more preferred hybrid that would need a round trip")
    func sharedHybridPreferred() throws {
        let o = try runPair(client: clientConfig { $0.keyShareGroups = [.x25519MLKEM768, .x25519] }, server: serverConfig())
        #expect(o.client.summary?.group == .x25519MLKEM768)
        #expect(o.client.summary?.helloRetryRequest == false)
    }

    @Test("a key that signs asynchronously pauses the server until provideSignature")
    func asynchronousKey() throws {
        let key = AsynchronousKey(inner: sharedPKI.serverKey)
        let chain = try sharedPKI.serverCertifiedKey.chain
        let o = try runPair(client: clientConfig(), server: ServerConfiguration(provider: .swiftCrypto, certificates: [CertifiedKey(chain: chain, key: key)]))
        #expect(o.serverEvents.contains { $0.decision?.signatureRequest?.scheme == .ecdsaSecp384r1SHA384 })
        #expect(o.clientError == nil && o.serverError == nil)
        #expect(o.client.summary?.peerSignatureScheme == .ecdsaSecp384r1SHA384)
    }

    @Test("provideSignature without a pending request is API misuse and sends nothing")
    func provideSignatureMisuse() throws {
        var server = try TLSConnection.server(configuration: serverConfig())
        #expect(throws: TLSError.misuse("no signature was requested")) { _ = try server.provideSignature([1]) }
        #expect(server.takeOutput().isEmpty)
    }

    @Test("key updates in both directions keep the connection usable")
    func keyUpdate() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        try o.client.updateKeys(requestPeerUpdate: true)
        try o.client.send([1, 2, 3])
        let e1 = try o.server.receive(o.client.takeOutput())
        #expect(e1 == [.peerKeyUpdate, .applicationData([1, 2, 3])])
        try o.server.send([4])
        let e2 = try o.client.receive(o.server.takeOutput())
        #expect(e2 == [.peerKeyUpdate, .applicationData([4])])
    }

    @Test("sending keys are updated automatically before the AES-GCM record limit")
    func automaticKeyUpdate() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        o.client.automaticKeyUpdateRecords = 3
        var received: [UInt8] = []
        var updates = 0
        for i in 0..<10 {
            try o.client.send([UInt8(i)])
            for event in try o.server.receive(o.client.takeOutput()) {
                if let d = event.applicationData { received += d }
                if event.isPeerKeyUpdate { updates += 1 }
            }
        }
        #expect(received == Array(0..<10))
        #expect(updates >= 2)
    }

    @Test("large writes are fragmented into 2^14-byte records and reassembled")
    func fragmentation() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        try o.client.send(big)
        let wire = o.client.takeOutput()
        var received: [UInt8] = []
        // Feed one byte at a time for the first record, then the rest.
        for b in wire.prefix(20000) {
            for d in try o.server.receive([b]).compactMap(\.applicationData) { received += d }
        }
        for d in try o.server.receive(wire.dropFirst(20000)).compactMap(\.applicationData) { received += d }
        #expect(received == big)
    }

    @Test("close_notify is delivered as an event")
    func closeNotify() throws {
        var o = try runPair(client: clientConfig(), server: serverConfig())
        o.client.close()
        #expect(try o.server.receive(o.client.takeOutput()) == [.closeNotify])
    }

    @Test("ALPN picks the server's first protocol the client offers")
    func alpn() throws {
        let o = try runPair(
            client: clientConfig { $0.alpnProtocols = ["http/1.1", "h2"] },
            server: serverConfig { $0.alpnProtocols = ["h2", "http/1.1"] })
        #expect(o.client.summary?.alpnProtocol == "h2")
        #expect(o.server.summary?.alpnProtocol == "h2")
    }
}
