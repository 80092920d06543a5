import QSSL
import QSSLWire
import QSSLX509
import X509

/// Chooses a connection's certificates by SNI, then lets the core choose among them by the
/// client's signature_algorithms (through the core's configuration decision, not a second code
/// path): the post-quantum chains (composite, ML-DSA) come first, so a client that offers those
/// schemes gets one, and a client that does not (a browser) gets the ECDSA or RSA chain.
public struct CertificateSelector: ServerConfigurationSelector {
    /// A certificate and the server names it serves.
    public struct Entry: Sendable {
        public var certified: CertifiedKey
        /// Lowercase DNS names, `*.example.com` wildcards allowed (one label).
        public var names: [String]

        /// `names` nil: the leaf's DNS subject alternative names.
        public init(_ certified: CertifiedKey, names: [String]? = nil) {
            self.certified = certified
            self.names = (names ?? Self.dnsNames(certified.chain.first)).map { $0.lowercased() }
        }

        static func dnsNames(_ der: [UInt8]?) -> [String] {
            guard let der, let cert = try? X509Certificate(der: der),
                let sans = (try? cert.extensions.subjectAlternativeNames) ?? nil
            else { return [] }
            return sans.compactMap { if case .dnsName(let name) = $0 { name } else { nil } }
        }

        func serves(_ name: String) -> Bool {
            names.contains { pattern in
                if pattern == name { return true }
                guard pattern.hasPrefix("*.") else { return false }
                let suffix = pattern.dropFirst(1)  // ".example.com"
                guard name.hasSuffix(suffix) else { return false }
                let label = name.dropLast(suffix.count)
                return !label.isEmpty && !label.contains(".")
            }
        }

        var isPostQuantum: Bool {
            certified.key.supportedSchemes.contains { [.qsslMLDSA65ECDSASecp384r1SHA512, .mldsa65, .mldsa87, .mldsa44].contains($0) }
        }
    }

    public let base: ServerConfiguration
    public let entries: [Entry]
    /// A name no certificate serves: refused with unrecognized_name instead of the default set.
    public let rejectUnknownNames: Bool

    public init(base: ServerConfiguration, entries: [Entry], rejectUnknownNames: Bool = false) {
        var base = base
        base.configurationSelector = nil
        self.base = base
        // Post-quantum first (stable within each kind): the core takes the first chain whose key
        // signs with a scheme the client offered.
        self.entries = entries.filter(\.isPostQuantum) + entries.filter { !$0.isPostQuantum }
        self.rejectUnknownNames = rejectUnknownNames
    }

    public var isSynchronous: Bool { true }

    public func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration {
        var chosen = entries
        if let name = hello.serverName?.lowercased() {
            let serving = entries.filter { $0.serves(name) }
            if !serving.isEmpty {
                chosen = serving
            } else if rejectUnknownNames {
                throw .incompatible(.unrecognizedServerName, "no certificate for \(name)")
            }
        }
        var configuration = base
        configuration.certificates = chosen.map(\.certified)
        return configuration
    }
}
