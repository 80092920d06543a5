import ArgumentParser
import Foundation
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLX509

/// The options of commands that use keys in an HSM (`--key pkcs11:…`): which module, where the
/// PIN is (a file or an environment variable: never the command line), and how much the token
/// is asked to do at once.
struct HSMOptions: ParsableArguments {
    @Option(name: .customLong("pkcs11-module"), help: "PKCS#11 module for pkcs11: keys (default: the URI's module-path).")
    var module: String?

    @Option(help: "File whose first line is the token's user PIN.")
    var pinFile: String?

    @Option(help: "Environment variable holding the token's user PIN.")
    var pinEnv: String?

    @Option(help: "PKCS#11 sessions kept open with the token.")
    var hsmSessions: Int = 4

    @Option(help: "Threads signing in the token at once (the signing concurrency).")
    var hsmThreads: Int = 4

    @Option(help: "Signatures that may wait for a signing thread; beyond that a handshake fails at once with internal_error.")
    var hsmQueue: Int = 64

    @Option(help: "Seconds a handshake waits for the token before failing with internal_error.")
    var hsmTimeout: Double = 10

    @Option(help: "The ML-DSA-65 half (PKCS#8 PEM) of a composite key whose ECDSA half is in the token, when the token has no ML-DSA.")
    var mldsaKey: String?

    @Flag(
        help:
            "Also make the server's ephemeral ECDH (secp384r1/secp256r1 and the ECDH half of their ML-KEM hybrids) in the token. Off by default: it blocks the event loop for each derivation."
    )
    var hsmECDH = false

    static func isURI(_ text: String?) -> Bool { text?.lowercased().hasPrefix("pkcs11:") == true }

    var pin: PKCS11PIN? {
        if let pinFile { return .file(pinFile) }
        if let pinEnv { return .environment(pinEnv) }
        return nil
    }

    var tokenConfiguration: PKCS11Token.Configuration {
        PKCS11Token.Configuration(
            sessionPoolSize: hsmSessions, signingThreads: hsmThreads, signingQueueLimit: hsmQueue,
            signingTimeout: .milliseconds(Int(hsmTimeout * 1000)))
    }

    func validateHSM() throws {
        if pinFile != nil && pinEnv != nil { throw ValidationError("choose one of --pin-file and --pin-env") }
        guard hsmSessions >= 1, hsmThreads >= 1, hsmQueue >= 0, hsmTimeout > 0 else {
            throw ValidationError("--hsm-sessions and --hsm-threads must be at least 1, --hsm-queue at least 0, --hsm-timeout positive")
        }
    }

    /// The module and token a URI names.
    func openToken(_ uri: PKCS11URI) throws -> PKCS11Token {
        guard let path = module ?? uri.modulePath else {
            throw ValidationError("a pkcs11: key needs --pkcs11-module PATH (or module-path= in the URI)")
        }
        let module = try PKCS11Module.load(path: path)
        return try PKCS11Token.open(module: module, matching: uri, pin: pin, configuration: tokenConfiguration)
    }

    /// A key in a token: a single key, or a composite whose ECDSA half `uri` names (chosen when
    /// `composite` is true, when `--mldsa-key` is given, or when the URI finds a P-384 key and an
    /// ML-DSA-65 key).
    func loadKey(_ text: String, composite: Bool) throws -> HSMKey {
        let uri = try PKCS11URI(text)
        let token = try openToken(uri)
        // Both halves of a composite key in the token share one label.
        let halves = Set(try token.privateKeys(matching: uri).map(\.algorithm))
        if composite || mldsaKey != nil || halves == [.ecdsaP384, .mldsa65] {
            let key: PKCS11CompositeKey
            if let mldsaKey {
                guard case .mldsa65(let software) = try loadPrivateKey(mldsaKey, what: "ML-DSA key") else {
                    throw ValidationError("--mldsa-key \(mldsaKey) is not an ML-DSA-65 key")
                }
                key = try token.compositeKey(matching: uri, softwareMLDSA: software)
            } else {
                key = try token.compositeKey(matching: uri, softwareMLDSA: nil)
            }
            try key.ecdsa.checkKeyPair()
            return HSMKey(
                token: token, key: key, subjectPublicKeyInfo: key.subjectPublicKeyInfo, summary: key.description, label: key.ecdsa.label, id: key.ecdsa.id)
        }
        let key = try token.signingKey(matching: uri)
        try key.checkKeyPair()
        return HSMKey(
            token: token, key: key, subjectPublicKeyInfo: key.subjectPublicKeyInfo,
            summary: "\(key) (\(key.algorithm.mechanismName))", label: key.label, id: key.id)
    }

    /// The server's certificate and key, and the crypto provider (with `--hsm-ecdh`, ECDH in the
    /// key's token).
    func server(certificate: String, key: String, announce: (String) -> Void) throws -> (CertifiedKey, CryptoProvider) {
        guard Self.isURI(key) else {
            if hsmECDH { throw ValidationError("--hsm-ecdh needs --key pkcs11:…") }
            return (try loadCertifiedKey(chain: certificate, key: key), .swiftCrypto)
        }
        let (certified, token) = try certifiedKey(certificate: certificate, key: key, announce: announce)
        guard hsmECDH else { return (certified, .swiftCrypto) }
        announce(
            "ECDH: the server's ephemeral secp384r1/secp256r1 keys (alone or in their ML-KEM hybrids) in token '\(token.info.label)' (CKM_ECDH1_DERIVE); ML-KEM and X25519 in software"
        )
        return (certified, try .swiftCryptoWithTokenECDH(token))
    }

    /// A key in a token with its certificate in a PEM file or in the token (`--cert pkcs11:…`).
    func certifiedKey(certificate: String, key: String, announce: (String) -> Void) throws -> (CertifiedKey, PKCS11Token) {
        var chain: [X509Certificate]?
        if !Self.isURI(certificate) { chain = try loadCertificates(certificate) }
        // The certificate's key decides between a single key and a composite one.
        let composite = chain.map { if case .composite = $0[0].publicKey.key { true } else { false } } ?? false
        let loaded = try loadKey(key, composite: composite)
        if chain == nil {
            chain = [try X509Certificate(der: loaded.token.certificate(matching: try PKCS11URI(certificate)))]
        }
        announce("key: \(loaded.summary)")
        do {
            return (try CertificateFiles.certifiedKey(chain: chain!, key: loaded.key, subjectPublicKeyInfo: loaded.subjectPublicKeyInfo), loaded.token)
        } catch CertificateFiles.LoadError.keyDoesNotMatchCertificate {
            throw Failure(message: "the certificate \(certificate) is not for \(loaded.summary)", code: 1)
        }
    }
}

/// A key loaded from a token.
struct HSMKey {
    let token: PKCS11Token
    let key: any SigningKey
    let subjectPublicKeyInfo: [UInt8]
    /// Which key, and where its halves are.
    let summary: String
    let label: String
    let id: [UInt8]
}
