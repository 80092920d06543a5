import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import SwiftASN1
import Testing

@testable import QSSLPKCS11

/// Tokens, keys and signatures against SoftHSM2, and every failure with a clear CKR_ error.
@Suite("SoftHSM2: tokens and keys", .enabled(if: SoftHSM.isAvailable, SoftHSM.skipReason))
struct SoftHSMTests {
    @Test("the module loads, lists the token and its mechanisms")
    func listsTokenAndMechanisms() throws {
        let f = try SoftHSM.shared
        #expect(f.module.info.manufacturer.contains("SoftHSM"))
        let slots = try f.module.slots()
        #expect(slots.contains { $0.token?.label == SoftHSM.label })
        #expect(f.token.supports(mechanism: 0x1041))  // CKM_ECDSA
        #expect(f.token.supports(mechanism: 0x0D))  // CKM_RSA_PKCS_PSS
        #expect(!f.token.supportsMLDSA)  // SoftHSM 2.6 has no PKCS#11 3.2 ML-DSA
        #expect(f.token.isLoggedIn)
    }

    @Test("loading the same module again returns the loaded instance")
    func moduleIsLoadedOnce() throws {
        let f = try SoftHSM.shared
        #expect(try PKCS11Module.load(path: SoftHSM.modulePath!) === f.module)
    }

    @Test("generated keys are found by URI with their public half read back", arguments: ["server-p384", "server-p256", "server-rsa"])
    func keysByURI(label: String) throws {
        let f = try SoftHSM.shared
        let key = try f.token.signingKey(matching: PKCS11URI("pkcs11:token=\(SoftHSM.label);object=\(label);type=private"))
        #expect(key.label == label)
        #expect(!key.id.isEmpty)
        try key.checkKeyPair()
        // The URI the key reports finds it again.
        #expect(try f.token.signingKey(matching: key.uri).subjectPublicKeyInfo == key.subjectPublicKeyInfo)
        // The SPKI is what X.509 parses.
        let parsed = try X509PublicKey(spki: try DER.parse(key.subjectPublicKeyInfo))
        #expect(parsed.spki == key.subjectPublicKeyInfo)
    }

    @Test("every TLS scheme of a token key verifies with its public key, signed in place and on the signing threads")
    func signaturesVerify() async throws {
        let f = try SoftHSM.shared
        let message = Array("TLS 1.3, server CertificateVerify".utf8) + [UInt8](repeating: 0x20, count: 64)
        for key in [f.p384, f.p256, f.rsa] {
            for scheme in key.supportedSchemes {
                try key.publicKey.verify(signature: try key.sign(message, scheme: scheme), scheme: scheme, message: message)
                try key.publicKey.verify(signature: try await key.signAsynchronously(message, scheme: scheme), scheme: scheme, message: message)
            }
        }
        #expect(f.rsa.supportedSchemes == [.rsaPSSRSAESHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA512])
        #expect(f.token.signingStatistics.completed > 0)
    }

    @Test("a scheme the key does not have is refused before the token is asked")
    func wrongScheme() throws {
        let f = try SoftHSM.shared
        #expect(throws: TLSError.self) { try f.p384.sign([1, 2, 3], scheme: .rsaPSSRSAESHA256) }
        #expect(throws: TLSError.self) { try f.p256.sign([1, 2, 3], scheme: .ecdsaSecp384r1SHA384) }
    }

    @Test("a wrong PIN fails with CKR_PIN_INCORRECT, and the message holds no PIN")
    func wrongPIN() throws {
        let f = try SoftHSM.shared
        #expect {
            try PKCS11Token.open(module: f.module, label: SoftHSM.pinTestLabel, pin: .value("not-the-pin-31337"))
        } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.returnValueName == "CKR_PIN_INCORRECT" && e.function == "C_Login" && !e.description.contains("31337")
        }
    }

    @Test("a PIN from an environment variable logs in")
    func pinFromEnvironment() throws {
        let f = try SoftHSM.shared
        let pin = try String(contentsOfFile: f.pinFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        setenv("QSSL_TEST_TOKEN_PIN", pin, 1)
        let token = try PKCS11Token.open(module: f.module, label: SoftHSM.pinTestLabel, pin: .environment("QSSL_TEST_TOKEN_PIN"))
        #expect(token.isLoggedIn)
        token.close()
    }

    @Test("a PIN in the URI (pin-value) is refused")
    func pinValueRefused() throws {
        let f = try SoftHSM.shared
        #expect {
            try PKCS11Token.open(module: f.module, matching: try PKCS11URI("pkcs11:token=\(SoftHSM.label)?pin-value=1234"), pin: nil)
        } throws: { ($0 as? PKCS11Error)?.reason == .pinUnavailable }
    }

    @Test("a missing object is objectNotFound, naming the URI and the keys there are")
    func missingObject() throws {
        let f = try SoftHSM.shared
        #expect {
            try f.token.signingKey(matching: PKCS11URI("pkcs11:token=\(SoftHSM.label);object=no-such-key;type=private"))
        } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.reason == .objectNotFound && e.description.contains("object=no-such-key") && e.description.contains("'server-p384'")
        }
        #expect { try f.token.certificate(matching: PKCS11URI(object: "no-such-cert")) } throws: { ($0 as? PKCS11Error)?.reason == .objectNotFound }
    }

    @Test("without a PIN private keys are invisible, and the error says why")
    func noLogin() throws {
        let f = try SoftHSM.shared
        let token = try PKCS11Token.open(module: f.module, label: SoftHSM.pinTestLabel, pin: nil)
        defer { token.close() }
        #expect(!token.isLoggedIn)
        #expect { try token.signingKey(matching: PKCS11URI(object: "server-p384")) } throws: {
            ($0 as? PKCS11Error)?.description.contains("not logged in") == true
        }
    }

    @Test("an unknown token is tokenNotFound, listing the tokens there are")
    func missingToken() throws {
        let f = try SoftHSM.shared
        #expect { try PKCS11Token.open(module: f.module, label: "no-such-token", pin: nil) } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.reason == .tokenNotFound && e.description.contains("'\(SoftHSM.label)'")
        }
    }

    @Test("a mechanism the token lacks fails with CKR_MECHANISM_INVALID, before and at the token")
    func unsupportedMechanism() throws {
        let f = try SoftHSM.shared
        // Checked against C_GetMechanismList: SoftHSM 2.6 cannot make ML-DSA keys.
        #expect { try f.token.generateKeyPair(.mldsa65, label: "never") } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.reason == .mechanismNotSupported && e.returnValueName == "CKR_MECHANISM_INVALID" && e.description.contains("CKM_ML_DSA_KEY_PAIR_GEN")
        }
        // Asked of the token anyway: C_SignInit answers with the code.
        #expect { try f.p384.sign(mechanism: 0x1D, data: [1, 2, 3]) } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.function == "C_SignInit" && e.returnValueName == "CKR_MECHANISM_INVALID"
        }
    }

    @Test("a module path that does not exist, or a library that is not a module, is a clear error")
    func moduleNotFound() throws {
        #expect { try PKCS11Module.load(path: "/nonexistent/libpkcs11.so") } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.reason == .moduleNotLoadable && e.description.contains("/nonexistent/libpkcs11.so")
        }
        let notAModule = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1"]
            .first { FileManager.default.fileExists(atPath: $0) }
        if let notAModule {
            #expect { try PKCS11Module.load(path: notAModule) } throws: { ($0 as? PKCS11Error)?.reason == .notAPKCS11Module }
        }
    }

    @Test("keys are generated with one label per kind, and a second of the same kind is refused")
    func keygenRefusesDuplicates() throws {
        let f = try SoftHSM.shared
        #expect { try f.token.generateKeyPair(.ecdsaP384, label: "server-p384") } throws: { ($0 as? PKCS11Error)?.reason == .ambiguousObject }
    }

    @Test("a CA whose key is in the token issues a certificate that verifies, and certificates are stored in and read from the token")
    func caInToken() throws {
        let f = try SoftHSM.shared
        for caKey in [f.p384, f.rsa] {
            let signer = try CertificateSigner(key: caKey, subjectPublicKeyInfo: caKey.subjectPublicKeyInfo)
            let ca = try PKIBuilder.makeCA(subject: "CN=Token CA \(caKey.label)", signer: signer)
            #expect(ca.isSigned(by: ca))
            let leafKey = SwiftCryptoSigningKey.p256(.init())
            let leaf = try PKIBuilder.issue(
                subject: "CN=localhost", subjectPublicKeyInfo: try leafKey.subjectPublicKeyInfo(), issuerCertificate: ca,
                issuerSigner: signer, dnsNames: ["localhost"])
            _ = try X509CertificateVerifier(roots: [ca]).verify(chain: [leaf.der], role: .server(name: "localhost"))
        }
        // A certificate object under the key's label and id: the key's URI finds both.
        let label = "stored-\(getpid())"
        let key = try f.token.generateKeyPair(.ecdsaP256, label: label)
        let cert = try f.certificate(for: key.subjectPublicKeyInfo)
        try f.token.storeCertificate(cert.der, label: label, id: key.id, subject: cert.subjectDER)
        #expect(try f.token.certificate(matching: key.uri) == cert.der)
        #expect(try f.token.destroyObjects(labelled: label) == 3)
    }
}
