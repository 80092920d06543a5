import ArgumentParser
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLX509
import SwiftASN1
import X509

struct Cert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make and inspect certificates: classical, ML-DSA and composite ML-DSA-65 + ECDSA-P384.",
        subcommands: [CA.self, Issue.self, Revoke.self, CRL.self, Show.self])

    /// `--alg`, for the subcommands that generate a key (`ca`, `issue`).
    struct AlgorithmOption: ParsableArguments {
        @Option(
            help: ArgumentHelp(
                "Key algorithm: \(PKIBuilder.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")) (mldsa44 can be verified but not generated)."))
        var alg: String = PKIBuilder.Algorithm.mldsa65ECDSAP384.rawValue

        /// The algorithm `--alg` names.
        func algorithm() throws -> PKIBuilder.Algorithm {
            guard let algorithm = PKIBuilder.Algorithm(rawValue: alg) else { throw ValidationError("unknown --alg \(alg)") }
            return algorithm
        }
    }

    /// `--ca`, for the subcommands that work in a CA directory `qssl cert ca` made (`issue`,
    /// `revoke`, `crl`).
    struct CADirectoryOption: ParsableArguments {
        @Option(help: "CA directory made by `qssl cert ca`.")
        var ca: String
    }

    struct CA: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a self-signed CA as DIR/ca.pem and DIR/ca.key.")

        @Option(help: "Directory for ca.pem and ca.key.")
        var out: String

        @OptionGroup var keyAlgorithm: AlgorithmOption

        @Option(help: "Subject, e.g. \"CN=QSIGN Root CA, O=QSIGN, C=KR\".")
        var subject: String

        @Option(help: "Days of validity.")
        var days: Int = 3650

        @Option(help: "A CA key in an HSM (pkcs11:…) instead of a generated one: writes only DIR/ca.pem.")
        var key: String?

        @OptionGroup(title: "HSM options (with --key pkcs11:…)")
        var hsm: HSMOptions

        func validate() throws {
            try hsm.validateHSM()
            if let key, !HSMOptions.isURI(key) { throw ValidationError("--key takes a pkcs11: URI") }
        }

        func run() throws {
            do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
                throw Failure(message: "cannot create directory \(out): \(fileErrorReason(error) ?? describe(error))", code: 1)
            }
            if let key {
                let loaded = try hsm.loadKey(key, composite: false)
                let certificate = try PKIBuilder.makeCA(
                    subject: subject, signer: try CertificateSigner(key: loaded.key, subjectPublicKeyInfo: loaded.subjectPublicKeyInfo),
                    notAfter: Date().addingTimeInterval(Double(days) * 86400))
                try CertificateFiles.pem([certificate]).write(toFile: out + "/ca.pem", atomically: true, encoding: .utf8)
                print(
                    "wrote \(out)/ca.pem (\(certificate.publicKey.description), \(certificate.signatureAlgorithmName)); the CA key stays in the token: \(loaded.summary)"
                )
                print("  issue with: qssl cert issue --ca \(out) --ca-key '\(key)' …")
                return
            }
            let ca = try PKIBuilder.makeCA(
                subject: subject, key: try keyAlgorithm.algorithm().generateKey(), notAfter: Date().addingTimeInterval(Double(days) * 86400))
            // The key first: if it cannot be written, the old certificate and key still belong together.
            try writePrivate(try CertificateFiles.pkcs8PEM(ca.key), to: out + "/ca.key")
            try CertificateFiles.pem([ca.certificate]).write(toFile: out + "/ca.pem", atomically: true, encoding: .utf8)
            print("wrote \(out)/ca.pem and \(out)/ca.key (\(ca.certificate.publicKey.description), \(ca.certificate.signatureAlgorithmName))")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a server or client certificate as PREFIX.pem (leaf, then chain) and PREFIX.key.")

        @OptionGroup var directory: CADirectoryOption

        @OptionGroup var keyAlgorithm: AlgorithmOption

        @Option(help: "Subject, e.g. \"CN=server.example\".")
        var subject: String

        @Option(help: "Subject alternative names: DNS:name,IP:address,…")
        var san: String?

        @Flag(help: "A client certificate (extendedKeyUsage clientAuth).")
        var client = false

        @Option(help: "Days of validity from now.")
        var days: Int?

        @Option(help: "Start of validity, ISO 8601 (e.g. 2026-01-01T00:00:00Z).")
        var notBefore: String?

        @Option(help: "End of validity, ISO 8601.")
        var notAfter: String?

        @Option(help: "Output prefix: writes PREFIX.pem and PREFIX.key.")
        var out: String

        @Option(help: ArgumentHelp("OCSP responder URL for the AIA extension (e.g. http://127.0.0.1:8080/).", valueName: "URL"))
        var ocspURL: String?

        @Option(help: ArgumentHelp("CRL URL for the CRL distribution points extension.", valueName: "URL"))
        var crlURL: String?

        @Option(help: "Certify a key in an HSM (pkcs11:…) instead of generating one: writes only PREFIX.pem.")
        var key: String?

        @Option(help: "The CA's key in an HSM (pkcs11:…) instead of CA/ca.key.")
        var caKey: String?

        @Flag(help: "Also store the certificate in the token, under the key's label and CKA_ID.")
        var storeInToken = false

        @OptionGroup(title: "HSM options (with --key or --ca-key pkcs11:…)")
        var hsm: HSMOptions

        func validate() throws {
            try hsm.validateHSM()
            if let key, !HSMOptions.isURI(key) { throw ValidationError("--key takes a pkcs11: URI") }
            if let caKey, !HSMOptions.isURI(caKey) { throw ValidationError("--ca-key takes a pkcs11: URI") }
            if storeInToken && key == nil { throw ValidationError("--store-in-token needs --key pkcs11:…") }
        }

        func run() throws {
            let ca = directory.ca
            let caChain = try loadCertificates(ca + "/ca.pem", what: "CA certificate")
            let issuerSigner: CertificateSigner
            if let caKey {
                let isComposite = if case .composite = caChain[0].publicKey.key { true } else { false }
                let loaded = try hsm.loadKey(caKey, composite: isComposite)
                issuerSigner = try CertificateSigner(key: loaded.key, subjectPublicKeyInfo: loaded.subjectPublicKeyInfo)
                guard issuerSigner.subjectPublicKeyInfo == caChain[0].publicKey.spki else {
                    throw Failure(message: "\(ca)/ca.pem is not the certificate of \(loaded.summary)", code: 1)
                }
            } else {
                issuerSigner = try CertificateSigner(try loadPrivateKey(ca + "/ca.key", what: "CA private key"))
            }
            var dns: [String] = []
            var ips: [String] = []
            for entry in (san ?? "").split(separator: ",") {
                let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("bad --san entry \(entry): use DNS:name or IP:address") }
                switch parts[0].uppercased() {
                case "DNS": dns.append(parts[1])
                case "IP": ips.append(parts[1])
                default: throw ValidationError("bad --san entry \(entry): use DNS:name or IP:address")
                }
            }
            let iso = ISO8601DateFormatter()
            let start =
                try notBefore.map {
                    guard let d = iso.date(from: $0) else { throw ValidationError("bad --not-before \($0)") }
                    return d
                }
                ?? Date().addingTimeInterval(-300)
            let end =
                try notAfter.map {
                    guard let d = iso.date(from: $0) else { throw ValidationError("bad --not-after \($0)") }
                    return d
                }
                ?? start.addingTimeInterval(Double(days ?? 365) * 86400)
            if let key {
                // The subject key stays in the token: only its public half is certified.
                let loaded = try hsm.loadKey(key, composite: false)
                let cert = try PKIBuilder.issue(
                    subject: subject, subjectPublicKeyInfo: loaded.subjectPublicKeyInfo, issuerCertificate: caChain[0],
                    issuerSigner: issuerSigner, dnsNames: dns, ipAddresses: ips, client: client,
                    ocspURL: ocspURL, crlURL: crlURL, notBefore: start, notAfter: end)
                var index = try CAIndex(directory: ca)
                index.recordIssued(cert)
                try index.save()
                try CertificateFiles.pem([cert] + caChain).write(toFile: out + ".pem", atomically: true, encoding: .utf8)
                print("wrote \(out).pem (\(cert.publicKey.description), signed with \(cert.signatureAlgorithmName)) for \(loaded.summary)")
                if storeInToken {
                    try loaded.token.storeCertificate(cert.der, label: loaded.label, id: loaded.id, subject: cert.subjectDER)
                    print("stored the certificate in token '\(loaded.token.info.label)' as '\(loaded.label)': serve with --cert '\(key)'")
                }
                return
            }
            let key = try keyAlgorithm.algorithm().generateKey()
            let cert = try PKIBuilder.issue(
                subject: subject, subjectPublicKeyInfo: try key.subjectPublicKeyInfo(), issuerCertificate: caChain[0],
                issuerSigner: issuerSigner, dnsNames: dns, ipAddresses: ips, client: client,
                ocspURL: ocspURL, crlURL: crlURL, notBefore: start, notAfter: end)
            // Recorded for `qssl cert revoke`, `qssl cert crl` and `qssl ocsp-responder`.
            var index = try CAIndex(directory: ca)
            index.recordIssued(cert)
            try index.save()
            try writePrivate(try CertificateFiles.pkcs8PEM(key), to: out + ".key")
            try CertificateFiles.pem([cert] + caChain).write(toFile: out + ".pem", atomically: true, encoding: .utf8)
            print("wrote \(out).pem and \(out).key (\(cert.publicKey.description), signed with \(cert.signatureAlgorithmName))")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a certificate (chain) or private key readably.")

        @Argument(help: "A PEM file.")
        var file: String

        func run() throws {
            let what = "PEM file"
            let pem = try readTextFile(file, what: what)
            let documents = try CertificateFiles.pemDocuments(pem, path: file, what: what)
            for (index, document) in documents.enumerated() {
                func invalid(_ error: Error) -> CertificateFiles.FileError {
                    CertificateFiles.FileError(
                        .invalid, path: file, what: what,
                        reason: "block \(index + 1) (\(document.discriminator)): "
                            + CertificateFiles.undecorated((error as? TLSError)?.detail ?? CertificateFiles.shortReason(error)))
                }
                switch document.discriminator {
                case "CERTIFICATE":
                    let certificate: X509Certificate
                    do { certificate = try X509Certificate(der: document.derBytes) } catch { throw invalid(error) }
                    printCertificate(certificate)
                case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
                    let key: SwiftCryptoSigningKey
                    do { key = try CertificateFiles.privateKey(fromPEM: document.pemString) } catch { throw invalid(error) }
                    print("Private key: \(describe(key))")
                    print("  Signature schemes: \(key.supportedSchemes.map(\.description).joined(separator: ", "))")
                default:
                    print("(\(document.discriminator) block skipped)")
                }
            }
        }

        func printCertificate(_ cert: X509Certificate) {
            print("Certificate:")
            print("  Subject:       \(cert.subject)")
            print("  Issuer:        \(cert.issuer)")
            print("  Serial:        \(cert.serialNumber.map { String(format: "%02x", $0) }.joined())")
            print("  Validity:      \(cert.notBefore) … \(cert.notAfter)")
            print("  Public key:    \(cert.publicKey.description)")
            if case .composite(let k) = cert.publicKey.key {
                print("    ML-DSA-65 half:  \(k.mldsa.rawRepresentation.count) bytes")
                print("    ECDSA P-384 half: \(k.ecdsa.x963Representation.count) bytes (uncompressed point)")
            }
            print("  Signature:     \(cert.signatureAlgorithmName)")
            if let bc = try? cert.extensions.basicConstraints { print("  Basic constraints: \(bc)") }
            if let ku = try? cert.extensions.keyUsage { print("  Key usage:     \(ku)") }
            if let eku = try? cert.extensions.extendedKeyUsage { print("  Extended key usage: \(eku)") }
            if let sans = try? cert.extensions.subjectAlternativeNames {
                print("  SANs:          \(sans.map { "\($0)" }.joined(separator: ", "))")
            }
        }

        func describe(_ key: SwiftCryptoSigningKey) -> String {
            switch key {
            case .p256: return "ECDSA P-256"
            case .p384: return "ECDSA P-384"
            case .ed25519: return "Ed25519"
            case .rsa(let k): return "RSA \(k.keySizeInBits)"
            case .mldsa65: return "ML-DSA-65 (seed form)"
            case .mldsa87: return "ML-DSA-87 (seed form)"
            case .composite: return "composite ML-DSA-65 (seed) + ECDSA P-384"
            }
        }
    }
}

/// Private keys are written readable by the owner only, from the first byte; any failure
/// (including a symbolic link at the target) is an error and a non-zero exit.
func writePrivate(_ text: String, to path: String) throws {
    do { try CertificateFiles.writePrivateKey(text, toPath: path) } catch let error as CertificateFiles.WriteError {
        throw Failure(message: "\(error) (private key not written)", code: 1)
    }
}
