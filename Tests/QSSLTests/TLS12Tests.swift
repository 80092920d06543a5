import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@testable import QSSL

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

@Suite("TLS 1.2 PRF and extended master secret (known answers)")
struct TLS12PRFTests {
    @Test("P_SHA256: the TLS working group's published vector")
    func sha256() {
        let prf = TLS12PRF(primitives: SwiftCryptoPrimitives(), hash: .sha256)
        let out = prf(
            secret: SecretBytes(hex("9bbe436ba940f017b17652849a71db35")), label: "test label", seed: hex("a0ba9f936cda311827a6f796ffd5198c"), length: 100)
        #expect(
            out
                == hex(
                    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
                ))
    }

    @Test("P_SHA384: the vector OpenSSL's TLS1-PRF produces")
    func sha384() {
        let prf = TLS12PRF(primitives: SwiftCryptoPrimitives(), hash: .sha384)
        let out = prf(
            secret: SecretBytes(hex("b80b733d6ceefcdc71566ea48e5567df")), label: "test label", seed: hex("cd665cf6a8447dd6ff8b27555edb7465"), length: 148)
        #expect(
            out
                == hex(
                    "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f"
                ))
    }

    /// A provider that keeps the protocol's default P_hash (an HMAC call per step).
    struct DefaultPHash: CryptoPrimitives {
        let inner = SwiftCryptoPrimitives()
        func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { inner.hash(algorithm, data) }
        func makeIncrementalHash(_ algorithm: HashAlgorithm) -> any IncrementalHash { inner.makeIncrementalHash(algorithm) }
        func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] { inner.hmac(algorithm, key: key, data: data) }
        func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try inner.makeAEAD(algorithm, key: key) }
        func randomBytes(_ count: Int) -> [UInt8] { inner.randomBytes(count) }
    }

    @Test(
        "the default P_hash (HMAC per step) and the provider's (one HMAC key for all its blocks) agree with the vector and with each other for every length up to 200, every seed length and every secret length",
        arguments: [HashAlgorithm.sha256, .sha384])
    func defaultAndKeyedAgree(hash: HashAlgorithm) {
        let secret = SecretBytes(hex("9bbe436ba940f017b17652849a71db35"))
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c")
        let keyed = TLS12PRF(primitives: SwiftCryptoPrimitives(), hash: hash)
        let plain = TLS12PRF(primitives: DefaultPHash(), hash: hash)
        for length in 1...200 {
            #expect(
                keyed(secret: secret, label: "test label", seed: seed, length: length)
                    == plain(secret: secret, label: "test label", seed: seed, length: length), "\(length)")
        }
        // Seeds of every size (one or many hash blocks) give what the default P_hash gives.
        for seedLength in [0, 16, 245, 246, 247, 300, 4096] {
            let long = (0..<seedLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            #expect(
                keyed(secret: secret, label: "test label", seed: long, length: 104)
                    == plain(secret: secret, label: "test label", seed: long, length: 104), "seed of \(seedLength) bytes")
        }
        // Secrets of every size: empty, short, a hash block and past it (HMAC then hashes the
        // key first: a long pre-master secret, a PSK), the key reused for every block.
        for secretLength in [0, 1, 48, 64, 65, 128, 129, 300] {
            let key = SecretBytes((0..<secretLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) })
            #expect(
                keyed(secret: key, label: "test label", seed: seed, length: 150)
                    == plain(secret: key, label: "test label", seed: seed, length: 150), "secret of \(secretLength) bytes")
        }
        if hash == .sha256 {
            #expect(
                plain(secret: secret, label: "test label", seed: seed, length: 100)
                    == hex(
                        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
                    ))
        }
    }

    @Test("randomBytes gives the length asked for, and different bytes each time")
    func randomness() {
        let p = SwiftCryptoPrimitives()
        #expect(p.randomBytes(0).isEmpty)
        let a = p.randomBytes(32)
        let b = p.randomBytes(32)
        #expect(a.count == 32 && b.count == 32 && a != b)
        #expect(Set(p.randomBytes(4096)).count > 200, "all byte values occur")
    }

    @Test("extended master secret (RFC 7627 §4) matches OpenSSL's TLS1-PRF with its label")
    func extendedMasterSecret() {
        let prf = TLS12PRF(primitives: SwiftCryptoPrimitives(), hash: .sha384)
        let ms = prf.masterSecret(
            preMasterSecret: SecretBytes([UInt8](repeating: 0xAA, count: 48)), sessionHash: [UInt8](repeating: 0xBB, count: 48),
            clientRandom: [], serverRandom: [])
        #expect(ms == hex("4dbe56eb1d9d2ec3d1bcfe9263083ad96d1dc7f2bba847a253fcc746f76cab39d6843a4fb16147584ce065a036ac6efe"))
    }

    @Test("the hybrid pre-master secret is SHA-384 of ECDH ‖ ML-KEM (PROTOCOL.md §3)")
    func hybridPMS() {
        let secret = [UInt8](repeating: 1, count: 48) + [UInt8](repeating: 2, count: 32)
        let pms = tls12PreMasterSecret(SecretBytes(secret), hybrid: true, primitives: SwiftCryptoPrimitives())
        #expect(pms == SwiftCryptoPrimitives().hash(.sha384, secret))
        #expect(pms.count == 48)
        #expect(tls12PreMasterSecret(SecretBytes([7, 7]), hybrid: false, primitives: SwiftCryptoPrimitives()) == [7, 7])
    }
}

@Suite("TLS 1.2 handshakes between Q-SSL peers")
struct TLS12HandshakeTests {
    static let rsaPKI = try! DemoPKI(algorithm: .rsa3072PSS)

    static func config12(_ pki: DemoPKI = sharedPKI, _ f: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
        var c = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
        c.versions = [.tls12]
        f(&c)
        return c
    }
    static func server(_ pki: DemoPKI = sharedPKI, _ f: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
        var c = ServerConfiguration(provider: .swiftCrypto, certificates: [try! pki.serverCertifiedKey])
        f(&c)
        return c
    }

    @Test("a TLS 1.2-only client gets the hybrid suite with SecP384r1MLKEM1024 and EMS by default")
    func defaultHybrid() throws {
        var o = try runPair(client: Self.config12(), server: Self.server())
        #expect(o.clientError == nil && o.serverError == nil)
        let s = try #require(o.client.summary)
        #expect(s.version == .tls12)
        #expect(s.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384)
        #expect(s.group == .secp384r1MLKEM1024)
        #expect(s.usedPostQuantumKeyExchange)
        #expect(o.server.summary?.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384)
        try o.client.send(Array("twelve".utf8))
        #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData(Array("twelve".utf8))])
        try o.server.send([1, 2])
        #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData([1, 2])])
        o.client.close()
        #expect(try o.server.receive(o.client.takeOutput()) == [.closeNotify])
    }

    @Test(
        "every standard suite with every classical group",
        arguments: [
            TLS12CipherSuite.ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithChaCha20Poly1305SHA256
        ], [NamedGroup.x25519, .secp384r1, .secp256r1])
    func standardECDSA(suite: TLS12CipherSuite, group: NamedGroup) throws {
        let o = try runPair(
            client: Self.config12 {
                $0.tls12CipherSuites = [suite]
                $0.groups = [group, .secp384r1]
            },
            server: Self.server { $0.groups = [group] + Defaults.groups })
        #expect(o.clientError == nil && o.serverError == nil, "\(String(describing: o.clientError)) \(String(describing: o.serverError))")
        #expect(o.client.summary?.cipherSuite == suite.suite)
        #expect(o.client.summary?.group == group)
    }

    @Test(
        "RSA suites, standard and hybrid, with an RSA certificate",
        arguments: [
            TLS12CipherSuite.ecdheRSAWithAES256GCMSHA384, .ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithChaCha20Poly1305SHA256, .ecdheMLKEMRSAWithAES256GCMSHA384
        ])
    func rsa(suite: TLS12CipherSuite) throws {
        let o = try runPair(client: Self.config12(Self.rsaPKI) { $0.tls12CipherSuites = [suite] }, server: Self.server(Self.rsaPKI))
        #expect(o.clientError == nil && o.serverError == nil, "\(String(describing: o.clientError))")
        #expect(o.client.summary?.cipherSuite == suite.suite)
        #expect(o.client.summary?.peerSignatureScheme == .rsaPSSRSAESHA384)
    }

    @Test("hybrid suites with each hybrid group", arguments: [NamedGroup.secp384r1MLKEM1024, .x25519MLKEM768, .secp256r1MLKEM768])
    func hybridGroups(group: NamedGroup) throws {
        let o = try runPair(client: Self.config12 { $0.groups = [group, .x25519] }, server: Self.server())
        #expect(o.client.summary?.group == group)
        #expect(o.client.summary?.cipherSuite == .ecdheMLKEMECDSAWithAES256GCMSHA384)
    }

    @Test("a client offering 1.3 and 1.2 gets 1.3 from a server doing both, 1.2 from a 1.2-only server")
    func versionNegotiation() throws {
        let both = try runPair(client: clientConfig(), server: Self.server())
        #expect(both.client.summary?.version == .tls13)
        let old = try runPair(client: clientConfig(), server: Self.server { $0.versions = [.tls12] })
        #expect(old.clientError == nil)
        #expect(old.client.summary?.version == .tls12)
    }

    @Test("a server doing 1.3 marks a 1.2 ServerHello; a 1.3-capable client refuses it with illegal_parameter")
    func downgradeDetected() throws {
        // The attacker strips supported_versions so the server falls back to 1.2.
        try expectServerFlightCheck(client: clientConfig(), server: Self.server()) { hello in
            hello.extensions.items.removeAll { $0.type == .supportedVersions }
        }
    }

    func expectServerFlightCheck(client: ClientConfiguration, server: ServerConfiguration, tamper: @escaping (inout ClientHello) -> Void) throws {
        var first = true
        let o = try runPair(client: client, server: server) { toServer, bytes in
            guard toServer, first else { return bytes }
            first = false
            return rewriteFirstMessage(bytes, as: ClientHello.self, tamper)
        }
        #expect(o.clientError?.alert == .illegalParameter)
        #expect(o.clientError?.code == .peerMisbehaved(.sentDowngradeSentinel))
        #expect(o.serverError?.code == .alertReceived(.illegalParameter))
    }

    @Test("standard suites never negotiate an ML-KEM group: ML-KEM-only groups with standard suites → handshake_failure")
    func hybridGroupsOnlyWithHybridSuites() throws {
        let o = try runPair(
            client: Self.config12 {
                $0.groups = [.secp384r1MLKEM1024]
                $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384]
            },
            server: Self.server())
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.clientError?.code == .alertReceived(.handshakeFailure))
    }

    @Test("an ECDSA certificate's curve must be among the client's groups in TLS 1.2 (RFC 8422 §5.1)")
    func certificateCurve() throws {
        let o = try runPair(
            client: Self.config12 {
                $0.groups = [.x25519]
                $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384]
            }, server: Self.server())
        #expect(o.serverError?.alert == .handshakeFailure)
        let ok = try runPair(
            client: Self.config12 {
                $0.groups = [.x25519, .secp384r1]
                $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384]
            }, server: Self.server())
        #expect(ok.client.summary?.group == .x25519)
    }

    @Test("a peer offering only standard suites never lands on a hybrid suite")
    func standardOnlyPeer() throws {
        let o = try runPair(
            client: Self.config12 { $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithAES128GCMSHA256] }, server: Self.server())
        #expect(o.client.summary?.cipherSuite == .ecdheECDSAWithAES256GCMSHA384)
        #expect(o.client.summary?.group == .x25519)
    }

    @Test("a hybrid-suite ClientHello without extended master secret → handshake_failure")
    func hybridWithoutEMS() throws {
        var first = true
        let o = try runPair(client: Self.config12 { $0.tls12CipherSuites = [.ecdheMLKEMECDSAWithAES256GCMSHA384] }, server: Self.server()) { toServer, bytes in
            guard toServer, first else { return bytes }
            first = false
            return rewriteFirstMessage(bytes, as: ClientHello.self) { $0.extensions.items.removeAll { $0.type == .extendedMasterSecret } }
        }
        #expect(o.serverError?.alert == .handshakeFailure)
        #expect(o.serverError?.code == .peerIncompatible(.extendedMasterSecretRequired))
        #expect(o.clientError?.code == .alertReceived(.handshakeFailure))
    }

    @Test("a proxy that strips EMS from the ClientHello is caught by Finished (decrypt_error); legacy peers without EMS are tested against tlslite-ng")
    func standardWithoutEMS() throws {
        var first = true
        let o = try runPair(client: Self.config12 { $0.tls12CipherSuites = [.ecdheECDSAWithAES128GCMSHA256] }, server: Self.server()) { toServer, bytes in
            guard toServer, first else { return bytes }
            first = false
            return rewriteFirstMessage(bytes, as: ClientHello.self) { $0.extensions.items.removeAll { $0.type == .extendedMasterSecret } }
        }
        // The tampered ClientHello changes the transcript, so the Finished check fails — after the
        // server accepted the hello and both derived keys with the legacy master secret. A
        // handshake with a real peer that does not do EMS is in TLS12InteropTests.
        #expect(o.serverError?.alert == .decryptError)
        #expect(o.clientError?.code == .alertReceived(.decryptError))
    }

    @Test("PQ-required: a 1.2 client refuses a standard suite, a 1.2 server refuses a standard-only client → insufficient_security")
    func pqRequired() throws {
        let c = try runPair(
            client: Self.config12 { $0.requirePostQuantum = true }, server: Self.server { $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384] })
        #expect(c.clientError?.alert == .insufficientSecurity)
        #expect(c.serverError?.code == .alertReceived(.insufficientSecurity))
        let s = try runPair(
            client: Self.config12 { $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384] }, server: Self.server { $0.requirePostQuantum = true })
        #expect(s.serverError?.alert == .insufficientSecurity)
        #expect(s.clientError?.code == .alertReceived(.insufficientSecurity))
    }

    @Test("a bad ServerKeyExchange signature → decrypt_error")
    func badSKESignature() throws {
        let key = CorruptingKey(inner: sharedPKI.serverKey)
        let chain = try sharedPKI.serverCertifiedKey.chain
        var server = ServerConfiguration(provider: .swiftCrypto, certificates: [CertifiedKey(chain: chain, key: key)])
        server.versions = [.tls12]
        let o = try runPair(client: Self.config12(), server: server)
        #expect(o.clientError?.alert == .decryptError)
        #expect(o.serverError?.code == .alertReceived(.decryptError))
    }

    @Test("a wrong Finished verify_data → decrypt_error, detected by either side", arguments: [true, false])
    func wrongFinished(clientIsFaulty: Bool) throws {
        var client = Self.config12()
        var server = Self.server()
        let faulty = FinishedLabelFault(label: clientIsFaulty ? "client finished" : "server finished")
        if clientIsFaulty { client.provider.primitives = faulty } else { server.provider.primitives = faulty }
        let o = try runPair(client: client, server: server)
        let detector = clientIsFaulty ? o.serverError : o.clientError
        let other = clientIsFaulty ? o.clientError : o.serverError
        #expect(detector?.alert == .decryptError)
        #expect(detector?.code == .peerMisbehaved(.sentWrongFinished))
        #expect(other?.code == .alertReceived(.decryptError))
    }

    @Test("a malformed hybrid ClientKeyExchange (short ML-KEM ciphertext) → illegal_parameter")
    func shortCiphertext() throws {
        var o = PairOutcome(
            client: try TLSConnection.client(configuration: Self.config12(), serverName: "localhost"),
            server: try TLSConnection.server(configuration: Self.server()))
        _ = try o.server.receive(o.client.takeOutput())
        _ = try o.client.receive(o.server.takeOutput())
        let flight = o.client.takeOutput()
        // First record: ClientKeyExchange (16-bit length) with P-384 point ‖ ciphertext; drop one ciphertext byte.
        let recordLength = Int(flight[3]) << 8 | Int(flight[4])
        var body = Array(flight[5..<(5 + recordLength)])
        let exchange = Array(body[6...].dropLast())
        body =
            [16] + [0, UInt8((exchange.count + 2) >> 8), UInt8((exchange.count + 2) & 0xFF)] + [UInt8(exchange.count >> 8), UInt8(exchange.count & 0xFF)]
            + exchange
        let record = [22, 3, 3, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        #expect(throws: TLSError.misbehaved(.sentKeyShareWrongLength)) { _ = try o.server.receive(record) }
        #expect(try o.server.takeOutput() == [21, 3, 3, 0, 2, 2, 47])
    }

    @Test("a malformed ML-KEM encapsulation key in ServerKeyExchange → illegal_parameter from the client")
    func badServerEncapsulationKey() throws {
        // Tamper with the first ek coefficient inside the signed params: the signature check would
        // fail first, so the server's key must be bad before signing — use a server whose group
        // implementation publishes an invalid ek.
        var server = Self.server()
        server.provider.keyExchangeGroups = [BadEncapsulationKeyGroup()] + server.provider.keyExchangeGroups.filter { $0.group != .secp384r1MLKEM1024 }
        let o = try runPair(client: Self.config12(), server: server)
        #expect(o.clientError?.alert == .illegalParameter)
        #expect(o.clientError?.code == .peerMisbehaved(.sentInvalidMLKEMKey))
        #expect(o.serverError?.code == .alertReceived(.illegalParameter))
    }

    @Test("renegotiation is refused with a no_renegotiation warning and the connection goes on")
    func renegotiationRefused() throws {
        var o = try runPair(client: Self.config12(), server: Self.server())
        var client2 = try TLSConnection.client(configuration: Self.config12(), serverName: "localhost")
        let hello = client2.takeOutput()
        // Send a ClientHello inside the protected connection: the client's record layer encrypts it.
        _ = hello
        try o.client.sendRawHandshakeForTesting(HandshakeMessage(type: .clientHello, body: Array(hello.dropFirst(9))))
        let events = try o.server.receive(o.client.takeOutput())
        #expect(events.isEmpty)
        let warning = try o.client.receive(o.server.takeOutput())
        #expect(warning.isEmpty)
        #expect(o.client.receivedWarnings == [.noRenegotiation], "the server answered with a no_renegotiation warning")
        try o.client.send([5])
        #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData([5])])
    }
}

/// A SecP384r1MLKEM1024 group whose published encapsulation key fails the FIPS 203 check.
struct BadEncapsulationKeyGroup: KeyExchangeGroup {
    let inner = SwiftCryptoGroups.secp384r1MLKEM1024
    var group: NamedGroup { .secp384r1MLKEM1024 }
    func generateClientShare() throws(TLSError) -> (share: [UInt8], pending: any PendingKeyExchange) {
        var (share, pending) = try inner.generateClientShare()
        share[97] = 0xFF
        share[98] |= 0x0F
        return (share, pending)
    }
    func respond(toClientShare share: [UInt8]) throws(TLSError) -> (share: [UInt8], secret: SecretBytes) { try inner.respond(toClientShare: share) }
}

/// Computes the TLS 1.2 PRF wrongly for one Finished label: a peer whose Finished is bad.
struct FinishedLabelFault: CryptoPrimitives {
    let label: String
    let inner = SwiftCryptoPrimitives()
    func hash(_ a: HashAlgorithm, _ d: [UInt8]) -> [UInt8] { inner.hash(a, d) }
    func makeAEAD(_ a: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try inner.makeAEAD(a, key: key) }
    func randomBytes(_ n: Int) -> [UInt8] { inner.randomBytes(n) }
    func hmac(_ a: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] {
        var out = inner.hmac(a, key: key, data: data)
        if data.starts(with: Array(label.utf8)) { out[0] ^= 1 }  // A(1) of P_hash over this label
        return out
    }
}
