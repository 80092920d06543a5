import Foundation
import QSSL
import QSSLWire
import QSSLX509

/// The QSSLX509 entry points, by mode (FuzzX509's first byte).
public enum X509Modes {
    public static let names = [
        "certificate DER", "chain (u16-prefixed DERs) for localhost", "leaf + presented intermediates (client role)",
        "server name against the fixture leaf", "PEM certificates", "PEM private key", "PKCS#8 DER private key",
        "SEC1 / PKCS#1 DER private key"
    ]

    static let schemes: [SignatureScheme] = X509CertificateVerifier.defaultSchemes + [.rsaPKCS1SHA256, .ecdsaSecp521r1SHA512, SignatureScheme(rawValue: 0x0101)]

    public static func run(_ mode: Int, _ bytes: [UInt8]) {
        let verifier = FuzzPKI.verifier
        switch mode % 8 {
        case 0:
            guard let cert = try? X509Certificate(der: bytes) else { return }
            require(cert.der == bytes, "X509Certificate.der differs from its input")
            _ = cert.signatureScheme
            _ = cert.signatureAlgorithmName
            _ = cert.publicKey.description
            _ = cert.isSigned(by: FuzzPKI.root)
            _ = cert.isSigned(by: cert)
            // The key, whatever it is, checks a signature without crashing.
            if let key = try? X509CertificateVerifier.publicKey(of: cert) {
                for scheme in schemes { _ = try? key.verify(signature: Array(bytes.suffix(64)), scheme: scheme, message: [1, 2, 3]) }
            }
            _ = try? verifier.verify(chain: [bytes], role: .server(name: "localhost"))
            _ = try? verifier.verify(chain: [bytes, FuzzPKI.root.der], role: .client)
        case 1, 2:
            var r = InputReader(bytes)
            var chain: [[UInt8]] = mode % 8 == 2 ? [FuzzPKI.leaf.der] : []
            while !r.isEmpty, chain.count < 12 { chain.append(r.take(r.u16())) }
            _ = try? verifier.verify(chain: chain, role: mode % 8 == 2 ? .client : .server(name: "localhost"))
        case 3:
            _ = try? verifier.verify(chain: [FuzzPKI.leaf.der], role: .server(name: String(decoding: bytes, as: UTF8.self)))
        case 4:
            if let certs = try? CertificateFiles.certificates(fromPEM: String(decoding: bytes, as: UTF8.self)) {
                _ = try? verifier.verify(chain: certs.map(\.der), role: .server(name: "localhost"))
            }
        case 5:
            key(String(decoding: bytes, as: UTF8.self))
        case 6:
            key(pem("PRIVATE KEY", bytes))
        default:
            key(pem(bytes.first.map { $0 & 1 == 0 } ?? true ? "EC PRIVATE KEY" : "RSA PRIVATE KEY", Array(bytes.dropFirst())))
        }
    }

    static func pem(_ label: String, _ der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(b64)\n-----END \(label)-----\n"
    }

    /// A parsed key signs, and `certifiedKey` pairs it (or refuses to) with the fixture leaf.
    static func key(_ pem: String) {
        guard let key = try? CertificateFiles.privateKey(fromPEM: pem) else { return }
        if let scheme = key.supportedSchemes.first { _ = try? key.sign([1, 2, 3], scheme: scheme) }
        _ = try? CertificateFiles.certifiedKey(chain: [FuzzPKI.leaf], key: key)
        _ = try? CertificateFiles.pkcs8PEM(key)
    }
}
