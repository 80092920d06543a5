import ArgumentParser
import Foundation
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLX509

struct HSM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hsm",
        abstract: "Keys in an HSM over PKCS#11: list slots, tokens, mechanisms and keys; generate keys; measure.",
        discussion: """
            Keys are named by RFC 7512 URIs, e.g. pkcs11:token=web;object=server;type=private.
            PINs come from --pin-file or --pin-env, never from the command line.
            """,
        subcommands: [List.self, Keygen.self, HSMBench.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the module, its slots and tokens, their mechanisms and objects.")

        @Option(help: "PKCS#11 module (.so).")
        var module: String

        @Option(help: "Only this token (label).")
        var token: String?

        @Option(help: "File whose first line is the user PIN: private keys are listed only after login.")
        var pinFile: String?

        @Option(help: "Environment variable holding the user PIN.")
        var pinEnv: String?

        @Flag(help: "List every mechanism, not only those Q-SSL uses.")
        var allMechanisms = false

        func run() throws {
            let module = try PKCS11Module.load(path: module)
            print("Module: \(module.path)")
            print("  \(module.info) (function list from \(module.entryPoint))")
            let slots = try module.slots(includeEmpty: true)
            for slot in slots {
                if let error = slot.tokenError {
                    print("Slot \(slot.id): \(slot.description): the token cannot be read: \(error)")
                    continue
                }
                guard let info = slot.token else {
                    print("Slot \(slot.id): \(slot.description) (no token)")
                    continue
                }
                if let token, info.label != token { continue }
                print("Slot \(slot.id): \(slot.description)")
                guard info.isInitialized else {
                    print("  Token: not initialized")
                    continue
                }
                var flags: [String] = []
                if info.requiresLogin { flags.append("login required") }
                if !info.isUserPINInitialized { flags.append("user PIN not set") }
                if info.isUserPINLocked { flags.append("user PIN LOCKED") }
                print(
                    "  Token '\(info.label)': \(info.manufacturer) \(info.model), serial \(info.serialNumber)\(flags.isEmpty ? "" : " (\(flags.joined(separator: ", ")))")"
                )
                let pin: PKCS11PIN? = pinFile.map(PKCS11PIN.file) ?? pinEnv.map(PKCS11PIN.environment)
                let opened = try PKCS11Token.open(
                    module: module, matching: PKCS11URI(token: info.label), pin: pin,
                    configuration: .init(sessionPoolSize: 1, signingThreads: 1))
                defer { opened.close() }
                let mechanisms = opened.mechanisms
                let used: [(String, UInt, String)] = [
                    ("CKM_ECDSA", 0x1041, "ECDSA P-256/P-384 signatures (hashed on the host)"),
                    ("CKM_RSA_PKCS_PSS", 0x0D, "RSA-PSS signatures"),
                    ("CKM_RSA_PKCS", 0x01, "RSA PKCS#1 v1.5 certificate signatures"),
                    ("CKM_ML_DSA", 0x1D, "ML-DSA signatures (PKCS#11 3.2)"),
                    ("CKM_EC_KEY_PAIR_GEN", 0x1040, "EC key generation"),
                    ("CKM_RSA_PKCS_KEY_PAIR_GEN", 0x0, "RSA key generation"),
                    ("CKM_ML_DSA_KEY_PAIR_GEN", 0x1C, "ML-DSA key generation (PKCS#11 3.2)"),
                    ("CKM_ECDH1_DERIVE", 0x1050, "ECDH key agreement"),
                    ("CKM_ML_KEM", 0x17, "ML-KEM encapsulation (PKCS#11 3.2)")
                ]
                print("  Mechanisms Q-SSL uses:")
                for (name, type, purpose) in used {
                    let m = mechanisms.first { $0.type == type }
                    let sizes = m.map { $0.maximumKeySize > 0 ? " (key sizes \($0.minimumKeySize)–\($0.maximumKeySize))" : "" } ?? ""
                    print("    \(m == nil ? "no " : "yes") \(name)\(sizes): \(purpose)")
                }
                print(
                    "  Composite ML-DSA-65 + ECDSA-P384 keys: ECDSA P-384 half in the token, ML-DSA-65 half "
                        + (opened.supportsMLDSA ? "in the token (it has CKM_ML_DSA)" : "in software (the token has no CKM_ML_DSA)"))
                if allMechanisms {
                    print("  All mechanisms (\(mechanisms.count)): \(mechanisms.map(\.name).joined(separator: ", "))")
                } else {
                    print("  (\(mechanisms.count) mechanisms in all; --all-mechanisms lists them)")
                }
                let objects = try opened.objects()
                print("  Objects\(opened.isLoggedIn ? "" : " (public only: no PIN given)"):\(objects.isEmpty ? " none" : "")")
                for object in objects.sorted(by: { ($0.label, $0.type) < ($1.label, $1.type) }) {
                    var uri = PKCS11URI(token: info.label, object: object.label)
                    if object.type == "private" { uri.type = .private }
                    print("    \(object)" + (object.type == "private" ? "  \(uri)" : ""))
                }
            }
        }
    }

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a key pair in a token (the private key never leaves it).")

        @Option(help: "PKCS#11 module (.so).")
        var module: String

        @Option(help: "Token label.")
        var token: String

        @Option(help: "ecdsa-p384, ecdsa-p256, rsa3072, rsa2048, rsa4096, mldsa65, mldsa87 or mldsa65-ecdsa-p384 (composite).")
        var alg: String

        @Option(help: "Label (CKA_LABEL) of the new key: the object= of its URI.")
        var label: String

        @Option(help: "File whose first line is the user PIN.")
        var pinFile: String?

        @Option(help: "Environment variable holding the user PIN.")
        var pinEnv: String?

        @Option(help: "For mldsa65-ecdsa-p384 on a token without ML-DSA: where to write the software ML-DSA-65 half (PKCS#8 PEM).")
        var mldsaOut: String?

        func validate() throws {
            if pinFile == nil && pinEnv == nil { throw ValidationError("give the PIN with --pin-file or --pin-env") }
        }

        func run() throws {
            let pin: PKCS11PIN = pinFile.map(PKCS11PIN.file) ?? .environment(pinEnv!)
            let module = try PKCS11Module.load(path: module)
            let opened = try PKCS11Token.open(module: module, label: token, pin: pin, configuration: .init(sessionPoolSize: 1, signingThreads: 1))
            defer { opened.close() }
            let algorithm: PKCS11KeyAlgorithm
            switch alg {
            case "ecdsa-p384", "mldsa65-ecdsa-p384": algorithm = .ecdsaP384
            case "ecdsa-p256": algorithm = .ecdsaP256
            case "rsa2048": algorithm = .rsa(bits: 2048)
            case "rsa3072", "rsa3072-pss": algorithm = .rsa(bits: 3072)
            case "rsa4096": algorithm = .rsa(bits: 4096)
            case "mldsa65": algorithm = .mldsa65
            case "mldsa87": algorithm = .mldsa87
            default: throw ValidationError("unknown --alg \(alg)")
            }
            if alg == "mldsa65-ecdsa-p384" && !opened.supportsMLDSA {
                guard mldsaOut != nil else {
                    throw ValidationError(
                        "token '\(token)' has no CKM_ML_DSA: the composite key's ML-DSA-65 half will be in software; give --mldsa-out FILE for it")
                }
            }
            let key = try opened.generateKeyPair(algorithm, label: label)
            try key.checkKeyPair()
            print("generated \(key.algorithm) key '\(label)' in token '\(token)' (\(key.algorithm.mechanismName))")
            print("  private key: \(key.uri)")
            guard alg == "mldsa65-ecdsa-p384" else { return }
            if opened.supportsMLDSA {
                let mldsa = try opened.generateKeyPair(.mldsa65, label: label)
                try mldsa.checkKeyPair()
                print("generated the ML-DSA-65 half in the token too: the composite key '\(label)' lives entirely in token '\(token)'")
            } else {
                let mldsa = try PKIBuilder.Algorithm.mldsa65.generateKey()
                try writePrivate(try CertificateFiles.pkcs8PEM(mldsa), to: mldsaOut!)
                print(
                    "composite key '\(label)': ECDSA P-384 half in token '\(token)', ML-DSA-65 half in software (the token has no CKM_ML_DSA), written to \(mldsaOut!)"
                )
                print("  use: --key '\(key.uri)' --mldsa-key \(mldsaOut!)")
            }
        }
    }
}
