import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

/// The fixed PKI, parsed once per process.
public enum FuzzPKI {
    public static let root = try! CertificateFiles.certificates(fromPEM: Fixtures.rootPEM)[0]
    public static let leaf = try! CertificateFiles.certificates(fromPEM: Fixtures.leafPEM)[0]
    public static let key = try! CertificateFiles.privateKey(fromPEM: Fixtures.leafKeyPEM)
    public static let certifiedKey = try! CertificateFiles.certifiedKey(chain: [leaf], key: key)
    /// Verifies against the fixed root at a fixed time (a day into the leaf's validity).
    public static let verifier: X509CertificateVerifier = {
        var v = X509CertificateVerifier(roots: [root])
        let t = leaf.notBefore.addingTimeInterval(86400)
        v.now = { t }
        return v
    }()
}

/// A client and a server configuration that can talk to each other (or, in some variants,
/// deliberately go through HelloRetryRequest, a downgrade check, ALPN, …).
public struct PairConfig {
    public var client: ClientConfiguration
    public var server: ServerConfiguration
    public var serverName: String?
    public var name: String
}

public enum FuzzConfigs {
    static func base(_ name: String) -> PairConfig {
        var client = ClientConfiguration(provider: .fuzz(.client), verifier: FuzzPKI.verifier)
        client.groups = [.x25519, .secp256r1]
        client.keyShareGroups = [.x25519]
        var server = ServerConfiguration(provider: .fuzz(.server), certificates: [FuzzPKI.certifiedKey])
        server.groups = [.x25519, .secp256r1]
        return PairConfig(client: client, server: server, serverName: "localhost", name: name)
    }

    /// TLS 1.3 variants (the client also offers TLS 1.2 unless noted).
    public static let tls13: [PairConfig] = {
        var all: [PairConfig] = []
        var c = base("1.3 default")
        c.server.versions = [.tls13]
        all.append(c)
        var hrr = c; hrr.name = "1.3 HelloRetryRequest to secp256r1"
        hrr.server.groups = [.secp256r1]
        all.append(hrr)
        var chacha = c; chacha.name = "1.3 ChaCha20 + ALPN"
        chacha.server.cipherSuites = [.chaCha20Poly1305SHA256]
        chacha.client.alpnProtocols = ["h2", "http/1.1"]
        chacha.server.alpnProtocols = ["http/1.1"]
        all.append(chacha)
        // An IP literal: no SNI is sent (a nil name is refused by newer cores).
        var plain = c; plain.name = "1.3 AES-128, no middlebox compatibility, no SNI (127.0.0.1)"
        plain.server.cipherSuites = [.aes128GCMSHA256]
        plain.client.middleboxCompatibility = false
        plain.serverName = "127.0.0.1"
        all.append(plain)
        var both = base("1.3 both versions on both sides")
        both.client.keyShareGroups = [.secp256r1, .x25519]
        all.append(both)
        var p256 = c; p256.name = "1.3 secp256r1 only client"
        p256.client.groups = [.secp256r1]
        p256.client.keyShareGroups = [.secp256r1]
        p256.client.versions = [.tls13]
        all.append(p256)
        var hrrALPN = hrr; hrrALPN.name = "1.3 HelloRetryRequest + ChaCha20 + ALPN, no middlebox compatibility"
        hrrALPN.server.cipherSuites = [.chaCha20Poly1305SHA256, .aes256GCMSHA384]
        hrrALPN.client.alpnProtocols = ["h2"]
        hrrALPN.server.alpnProtocols = ["h2"]
        hrrALPN.client.middleboxCompatibility = false
        all.append(hrrALPN)
        var ip = c; ip.name = "1.3 server name LOCALHOST."
        ip.serverName = "LOCALHOST."
        all.append(ip)
        return all
    }()

    /// TLS 1.2 variants (both sides TLS 1.2 only unless noted).
    public static let tls12: [PairConfig] = {
        var all: [PairConfig] = []
        var c = base("1.2 default")
        c.client.versions = [.tls12]
        c.server.versions = [.tls12]
        all.append(c)
        var aes128 = c; aes128.name = "1.2 ECDHE-ECDSA-AES128-GCM, secp256r1"
        aes128.server.tls12CipherSuites = [.ecdheECDSAWithAES128GCMSHA256]
        aes128.server.groups = [.secp256r1]
        all.append(aes128)
        var chacha = c; chacha.name = "1.2 ECDHE-ECDSA-CHACHA20-POLY1305 + ALPN"
        chacha.server.tls12CipherSuites = [.ecdheECDSAWithChaCha20Poly1305SHA256]
        chacha.client.alpnProtocols = ["h2", "http/1.1"]
        chacha.server.alpnProtocols = ["http/1.1"]
        all.append(chacha)
        var downgrade = c; downgrade.name = "1.2 server, client offering 1.3 and 1.2"
        downgrade.client.versions = [.tls13, .tls12]
        all.append(downgrade)
        var sentinel = c; sentinel.name = "1.2 client, server offering 1.3 and 1.2, no SNI (127.0.0.1)"
        sentinel.server.versions = [.tls13, .tls12]
        sentinel.serverName = "127.0.0.1"
        all.append(sentinel)
        return all
    }()
}
