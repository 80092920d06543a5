import Foundation
import NIOQSSL
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLX509
import Testing

/// `qssl hsm`, `qssl cert … --key pkcs11:` and `qssl serve --key pkcs11:` as a user runs them.
@Suite("SoftHSM2: the qssl command", .enabled(if: SoftHSM.isAvailable, SoftHSM.skipReason), .serialized)
struct CLITests {
    static var qssl: String { SoftHSM.packageRoot + "/.build/debug/qssl" }

    func requireTool() throws -> String {
        try #require(FileManager.default.isExecutableFile(atPath: Self.qssl) ? Self.qssl : nil, "build qssl first (swift build --build-tests)")
    }

    @Test("hsm list shows the token, the mechanisms Q-SSL uses, where composite halves go, and the keys — never the PIN")
    func list() async throws {
        let qssl = try requireTool()
        let f = try SoftHSM.cli
        let result = try await run(
            qssl, ["hsm", "list", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--pin-file", f.pinFile], environment: f.environment)
        #expect(result.status == 0, "\(result.text)")
        #expect(result.text.contains("Token '\(SoftHSM.label)'"))
        #expect(result.text.contains("yes CKM_ECDSA"))
        #expect(result.text.contains("no  CKM_ML_DSA"))
        #expect(result.text.contains("ML-DSA-65 half in software (the token has no CKM_ML_DSA)"))
        #expect(result.text.contains("pkcs11:token=\(SoftHSM.label);object=server-p384;type=private"))
        let pin = try String(contentsOfFile: f.pinFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!result.text.contains(pin))
    }

    @Test("hsm keygen makes a key and prints its URI; an algorithm the token lacks fails naming CKR_MECHANISM_INVALID")
    func keygen() async throws {
        let qssl = try requireTool()
        let f = try SoftHSM.cli
        let label = "cli-\(getpid())"
        let made = try await run(
            qssl,
            [
                "hsm", "keygen", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--alg", "ecdsa-p384",
                "--label", label, "--pin-file", f.pinFile
            ], environment: f.environment)
        #expect(made.status == 0, "\(made.text)")
        #expect(made.text.contains("object=\(label);type=private"))
        let refused = try await run(
            qssl,
            [
                "hsm", "keygen", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--alg", "mldsa65",
                "--label", label + "-mldsa", "--pin-file", f.pinFile
            ], environment: f.environment)
        #expect(refused.status != 0)
        #expect(refused.text.contains("CKR_MECHANISM_INVALID") && refused.text.contains("CKM_ML_DSA_KEY_PAIR_GEN"), "\(refused.text)")
    }

    @Test("cert issue certifies a token key (stored in the token too), and serve signs with it for s_client")
    func issueAndServe() async throws {
        let qssl = try requireTool()
        let openssl = try #require(opensslPath, "openssl is not installed")
        let f = try SoftHSM.cli
        let dir = f.directory + "/cli-\(UUID().uuidString.prefix(8))"
        let label = "cli-serve-\(getpid())"
        let key = "pkcs11:token=\(SoftHSM.label);object=\(label);type=private"
        let hsm = ["--pkcs11-module", SoftHSM.modulePath!, "--pin-file", f.pinFile]
        var r = try await run(qssl, ["cert", "ca", "--out", dir, "--alg", "ecdsa-p384", "--subject", "CN=CLI CA"], environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        r = try await run(
            qssl, ["hsm", "keygen", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--alg", "rsa3072", "--label", label, "--pin-file", f.pinFile],
            environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        r = try await run(
            qssl,
            [
                "cert", "issue", "--ca", dir, "--key", key, "--subject", "CN=localhost", "--san", "DNS:localhost,IP:127.0.0.1",
                "--out", dir + "/server", "--store-in-token"
            ] + hsm, environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/server.key"))
        // The certificate from the PEM file, then from the token.
        for certificate in [dir + "/server.pem", "pkcs11:token=\(SoftHSM.label);object=\(label);type=cert"] {
            let port = Int.random(in: 20000..<40000)
            let server = try Background(
                qssl, ["serve", "--listen", "127.0.0.1:\(port)", "--cert", certificate, "--key", key, "--hsm-threads", "2"] + hsm, environment: f.environment)
            defer { server.stop() }
            try await server.waitFor("listening on")
            #expect(server.text.contains("RSA 3072 key '\(label)' in token '\(SoftHSM.label)'"))
            let client = try await run(
                openssl,
                [
                    "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", dir + "/ca.pem", "-servername", "localhost",
                    "-verify_return_error", "-brief", "-tls1_3"
                ], timeout: 30)
            #expect(client.status == 0 && client.text.contains("Verification: OK"), "\(client.text)\nserver: \(server.text)")
        }
    }

    @Test("a composite key made by hsm keygen (ECDSA half in the token, ML-DSA half in a file) serves a Q-SSL client")
    func compositeServe() async throws {
        let qssl = try requireTool()
        let f = try SoftHSM.cli
        let dir = f.directory + "/cli-\(UUID().uuidString.prefix(8))"
        let label = "cli-composite-\(getpid())"
        let key = "pkcs11:token=\(SoftHSM.label);object=\(label);type=private"
        let hsm = ["--pkcs11-module", SoftHSM.modulePath!, "--pin-file", f.pinFile, "--mldsa-key", dir + "/mldsa.key"]
        var r = try await run(qssl, ["cert", "ca", "--out", dir, "--alg", "mldsa65-ecdsa-p384", "--subject", "CN=CLI composite CA"], environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        r = try await run(
            qssl,
            [
                "hsm", "keygen", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--alg", "mldsa65-ecdsa-p384", "--label", label,
                "--pin-file", f.pinFile, "--mldsa-out", dir + "/mldsa.key"
            ], environment: f.environment)
        #expect(r.status == 0 && r.text.contains("ML-DSA-65 half in software"), "\(r.text)")
        r = try await run(
            qssl, ["cert", "issue", "--ca", dir, "--key", key, "--subject", "CN=localhost", "--san", "DNS:localhost", "--out", dir + "/server"] + hsm,
            environment: f.environment)
        #expect(r.status == 0 && r.text.contains("composite"), "\(r.text)")
        let port = Int.random(in: 20000..<40000)
        let server = try Background(
            qssl, ["serve", "--listen", "127.0.0.1:\(port)", "--cert", dir + "/server.pem", "--key", key] + hsm, environment: f.environment)
        defer { server.stop() }
        try await server.waitFor("listening on")
        #expect(server.text.contains("ECDSA P-384 half in token '\(SoftHSM.label)'") && server.text.contains("ML-DSA-65 half in software"), "\(server.text)")
        let roots = try CertificateFiles.certificates(atPath: dir + "/ca.pem")
        let client = try await NIOQSSLClient.connect(
            host: "127.0.0.1", port: port, configuration: ClientConfiguration(provider: .swiftCrypto, verifier: X509CertificateVerifier(roots: roots)),
            serverName: "localhost")
        await client.close()
        #expect(client.summary.peerSignatureScheme == .qsslMLDSA65ECDSASecp384r1SHA512)
        #expect(client.summary.peerIdentity?.verifiedSignatureComponents.count == 2)
    }

    @Test("a CA whose key is in the token (cert ca --key, cert issue --ca-key) certifies another token key; OpenSSL verifies the chain")
    func caInToken() async throws {
        let qssl = try requireTool()
        let openssl = try #require(opensslPath, "openssl is not installed")
        let f = try SoftHSM.cli
        let dir = f.directory + "/ca-\(UUID().uuidString.prefix(8))"
        let hsm = ["--pkcs11-module", SoftHSM.modulePath!, "--pin-file", f.pinFile]
        let caKey = "pkcs11:token=\(SoftHSM.label);object=cli-ca-\(getpid())"
        var r = try await run(
            qssl,
            [
                "hsm", "keygen", "--module", SoftHSM.modulePath!, "--token", SoftHSM.label, "--alg", "rsa3072",
                "--label", "cli-ca-\(getpid())", "--pin-file", f.pinFile
            ], environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        r = try await run(qssl, ["cert", "ca", "--out", dir, "--subject", "CN=Token CA", "--key", caKey] + hsm, environment: f.environment)
        #expect(r.status == 0 && r.text.contains("the CA key stays in the token"), "\(r.text)")
        r = try await run(
            qssl,
            [
                "cert", "issue", "--ca", dir, "--ca-key", caKey, "--key", "pkcs11:token=\(SoftHSM.label);object=server-p384",
                "--subject", "CN=localhost", "--out", dir + "/leaf"
            ] + hsm, environment: f.environment)
        #expect(r.status == 0, "\(r.text)")
        let verified = try await run(openssl, ["verify", "-CAfile", dir + "/ca.pem", dir + "/leaf.pem"])
        #expect(verified.status == 0 && verified.text.contains("OK"), "\(verified.text)")
    }

    @Test("serve with a wrong PIN exits with CKR_PIN_INCORRECT and does not print the PIN")
    func serveWrongPIN() async throws {
        let qssl = try requireTool()
        let f = try SoftHSM.cli
        let wrong = f.directory + "/wrong-pin"
        try "wrong-pin-424242\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        #expect(chmod(wrong, 0o600) == 0)  // a PIN file others can read is refused before any login
        let r = try await run(
            qssl,
            [
                "serve", "--listen", "127.0.0.1:0", "--cert", try SoftHSM.shared.caFile, "--key", "pkcs11:token=\(SoftHSM.pinTestLabel);object=x",
                "--pkcs11-module", SoftHSM.modulePath!, "--pin-file", wrong
            ], environment: f.environment, timeout: 30)
        #expect(r.status != 0)
        #expect(r.text.contains("CKR_PIN_INCORRECT"), "\(r.text)")
        #expect(!r.text.contains("424242"))
    }

    @Test("serve with a module that does not exist says so")
    func serveModuleNotFound() async throws {
        let qssl = try requireTool()
        let f = try SoftHSM.cli
        let r = try await run(
            qssl,
            [
                "serve", "--listen", "127.0.0.1:0", "--cert", try SoftHSM.shared.caFile, "--key", "pkcs11:token=x;object=y",
                "--pkcs11-module", "/nonexistent/module.so", "--pin-file", f.pinFile
            ], environment: f.environment, timeout: 30)
        #expect(r.status != 0)
        #expect(r.text.contains("no PKCS#11 module at /nonexistent/module.so"), "\(r.text)")
    }
}
