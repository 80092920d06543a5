import QSSLSwiftCrypto
import QSSLX509

/// The examples' PKI: a hybrid (ML-DSA-65 + ECDSA P-384) root and one leaf per served name.
enum ExamplePKI {
    static let names = ["api.example.test", "www.example.test"]

    static func make() throws -> (root: PKIBuilder.Issuer, leaves: [(String, PKIBuilder.Issuer)]) {
        let rootKey = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
        let root = try PKIBuilder.makeCA(subject: "CN=Example Root, O=Q-SSL examples", key: rootKey)
        var leaves: [(String, PKIBuilder.Issuer)] = []
        for name in names {
            let key = try PKIBuilder.Algorithm.mldsa65ECDSAP384.generateKey()
            let certificate = try PKIBuilder.issue(subject: "CN=\(name)", key: key, by: root, dnsNames: [name])
            leaves.append((name, PKIBuilder.Issuer(certificate: certificate, key: key)))
        }
        return (root, leaves)
    }
}
