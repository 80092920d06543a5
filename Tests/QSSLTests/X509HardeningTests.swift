import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Testing

@testable import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The OpenSSL-made chains of Resources/x509-hardening (see make.sh there).
enum HardeningChains {
    static func certificates(_ name: String) throws -> [X509Certificate] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "pem", subdirectory: "Resources/x509-hardening"))
        return try CertificateFiles.certificates(atPath: url.path)
    }

    static func certificate(_ name: String) throws -> X509Certificate { try certificates(name)[0] }

    static var verifier: X509CertificateVerifier {
        get throws { X509CertificateVerifier(roots: [try certificate("root")]) }
    }

    /// Verifies LEAF (plus INTERMEDIATE) and returns the error, nil when the chain verified.
    static func verify(_ leaf: String, _ intermediate: String?, role: PeerRole) throws -> TLSError? {
        var chain = [try certificate(leaf).der]
        if let intermediate { chain.append(try certificate(intermediate).der) }
        let verifier = try verifier
        do {
            _ = try verifier.verify(chain: chain, role: role)
            return nil
        } catch {
            return error
        }
    }
}

@Suite("X.509 hardening: name constraints and critical extensions (OpenSSL-made chains)")
struct NameConstraintTests {
    @Test("permitted DNS:allowed.example: a localhost leaf → bad_certificate, www.allowed.example → accepted")
    func permittedDNS() throws {
        let outside = try HardeningChains.verify("nc-localhost", "int-permit", role: .server(name: "localhost"))
        #expect(outside?.code == .certificateRejected(.nameConstraintViolation), "\(String(describing: outside))")
        #expect(outside?.alert == .badCertificate)
        #expect(outside?.code.description.contains("name constraints") == true, "\(String(describing: outside))")
        // Without a server name to check, the leaf's own SAN still violates the constraint.
        let asClient = try HardeningChains.verify("nc-localhost", "int-permit", role: .client)
        #expect(asClient?.code == .certificateRejected(.nameConstraintViolation), "\(String(describing: asClient))")
        #expect(asClient?.alert == .badCertificate)

        let inside = try HardeningChains.verify("nc-allowed", "int-permit", role: .server(name: "www.allowed.example"))
        #expect(inside == nil, "\(String(describing: inside))")
    }

    @Test("a leaf without SAN DNS names is constrained through its hostname-like subject CN")
    func commonNameConstrained() throws {
        let error = try HardeningChains.verify("nc-cn-only", "int-permit", role: .client)
        #expect(error?.code == .certificateRejected(.nameConstraintViolation), "\(String(describing: error))")
    }

    @Test("excluded DNS:bad.example and IP:127.0.0.0/8: leaves in them → bad_certificate, others accepted")
    func excludedSubtrees() throws {
        let dns = try HardeningChains.verify("ex-dns", "int-exclude", role: .server(name: "www.bad.example"))
        #expect(dns?.code == .certificateRejected(.nameConstraintViolation), "\(String(describing: dns))")
        #expect(dns?.alert == .badCertificate)
        // The SAN IP 127.0.0.1 is excluded even when the connection uses the permitted DNS name.
        let ip = try HardeningChains.verify("ex-ip", "int-exclude", role: .server(name: "good.example"))
        #expect(ip?.code == .certificateRejected(.nameConstraintViolation), "\(String(describing: ip))")
        #expect(ip?.alert == .badCertificate)
        let ok = try HardeningChains.verify("ex-ok", "int-exclude", role: .server(name: "good.example"))
        #expect(ok == nil, "\(String(describing: ok))")
        let okIP = try HardeningChains.verify("ex-ok", "int-exclude", role: .server(name: "192.0.2.1"))
        #expect(okIP == nil, "\(String(describing: okIP))")
    }

    @Test("a CA constraining a name form Q-SSL does not implement (rfc822Name) → the chain is refused")
    func unimplementedForm() throws {
        let error = try HardeningChains.verify("em-leaf", "int-email", role: .server(name: "www.allowed.example"))
        #expect(error?.alert == .badCertificate, "\(String(describing: error))")
    }

    @Test("an unknown critical extension → unsupported_certificate; the same extension non-critical is accepted")
    func criticalExtensions() throws {
        let critical = try HardeningChains.verify("crit-unknown", nil, role: .server(name: "localhost"))
        #expect(critical?.alert == .unsupportedCertificate, "\(String(describing: critical))")
        #expect(critical?.code.description.contains("critical") == true, "\(String(describing: critical))")
        let nonCritical = try HardeningChains.verify("noncrit-unknown", nil, role: .server(name: "localhost"))
        #expect(nonCritical == nil, "\(String(describing: nonCritical))")
    }

    @Test("handshake: a server with the name-constrained localhost chain → the client sends bad_certificate")
    func handshakeNameConstraint() throws {
        let leaf = try HardeningChains.certificate("nc-localhost")
        let intermediate = try HardeningChains.certificate("int-permit")
        let keyURL = try #require(Bundle.module.url(forResource: "nc-localhost", withExtension: "key", subdirectory: "Resources/x509-hardening"))
        let key = try CertificateFiles.privateKey(fromPEM: String(contentsOf: keyURL, encoding: .utf8))
        let server = ServerConfiguration(
            provider: .swiftCrypto,
            certificates: [try CertificateFiles.certifiedKey(chain: [leaf, intermediate], key: key)])
        let client = ClientConfiguration(provider: .swiftCrypto, verifier: try HardeningChains.verifier)
        let o = try runPair(client: client, server: server, serverName: "localhost")
        #expect(o.clientError?.alert == .badCertificate, "\(String(describing: o.clientError))")
        #expect(o.serverError?.code == .alertReceived(.badCertificate), "\(String(describing: o.serverError))")
    }

    @Test("the TLS server name itself is checked against the constraints on the path")
    func serverNameConstrained() throws {
        let path = [try HardeningChains.certificate("ex-ok"), try HardeningChains.certificate("int-exclude"), try HardeningChains.certificate("root")]
        #expect(throws: Never.self) { try X509CertificateVerifier.checkNameConstraints(path, serverName: "good.example") }
        #expect(throws: TLSError.rejected(.nameConstraintViolation)) {
            try X509CertificateVerifier.checkNameConstraints(path, serverName: "WWW.Bad.Example.")
        }
        #expect(throws: TLSError.rejected(.nameConstraintViolation)) {
            try X509CertificateVerifier.checkNameConstraints(path, serverName: "127.8.9.10")
        }
    }

    @Test("DNS subtree matching: plain, leading-dot and empty constraints; wildcards")
    func dnsMatching() {
        typealias N = NameConstraintSet
        #expect(N.dnsWithin("allowed.example", "allowed.example"))
        #expect(N.dnsWithin("a.b.allowed.example", "allowed.example"))
        #expect(!N.dnsWithin("notallowed.example", "allowed.example"))
        #expect(!N.dnsWithin("allowed.example", ".allowed.example"))
        #expect(N.dnsWithin("www.allowed.example", ".allowed.example"))
        #expect(N.dnsWithin("anything.test", ""))
        #expect(N.dnsWithin("*.allowed.example", "allowed.example"))
        #expect(!N.dnsWithin("*.example", "allowed.example"))
        // Excluded subtrees: a wildcard meets every subtree one of its matches lies in.
        #expect(N.dnsIntersects("*.example", "bad.example"))
        #expect(!N.dnsIntersects("*.example", ".bad.example"))
        #expect(!N.dnsIntersects("*.example", "x.bad.example"))
        #expect(N.dnsIntersects("*.bad.example", "bad.example"))
        #expect(N.dnsIntersects("*.bad.example", ".bad.example"))
        #expect(!N.dnsIntersects("*.good.example", "bad.example"))
        #expect(N.normalize("WWW.Allowed.Example.") == "www.allowed.example")
    }

    @Test("IP ranges: address and mask, same family only; masks must be contiguous; CNs that look like hostnames")
    func ipMatching() {
        typealias N = NameConstraintSet
        let net127: (base: [UInt8], mask: [UInt8]) = ([127, 0, 0, 0], [255, 0, 0, 0])
        #expect(N.ipWithin([127, 1, 2, 3], net127))
        #expect(!N.ipWithin([128, 0, 0, 1], net127))
        #expect(!N.ipWithin([UInt8](repeating: 0, count: 15) + [1], net127))
        #expect(N.isContiguous([255, 255, 240, 0]))
        #expect(!N.isContiguous([255, 0, 255, 0]))
        #expect(ConstrainedNames.looksLikeHostname("www.other.example"))
        #expect(ConstrainedNames.looksLikeHostname("*.other.example"))
        #expect(ConstrainedNames.looksLikeHostname("localhost"))
        #expect(!ConstrainedNames.looksLikeHostname("Q-SSL Hardening Test Root"))
        #expect(!ConstrainedNames.looksLikeHostname("a..example"))
    }
}

@Suite("X.509 hardening: address forms an attacker can use to slip past a constraint")
struct AddressFormTests {
    @Test("an IPv4-mapped IPv6 address is constrained as the IPv4 address it carries, both ways")
    func ipv4Mapped() {
        let loopback8: (base: [UInt8], mask: [UInt8]) = ([127, 0, 0, 0], [255, 0, 0, 0])
        let mapped = NameConstraintSet.ipv4MappedPrefix + [127, 0, 0, 1]
        #expect(NameConstraintSet.ipWithin(mapped, loopback8))
        #expect(!NameConstraintSet.ipWithin(NameConstraintSet.ipv4MappedPrefix + [10, 0, 0, 1], loopback8))
        let mappedRange = (base: NameConstraintSet.ipv4MappedPrefix + [127, 0, 0, 0], mask: [UInt8](repeating: 255, count: 13) + [0, 0, 0])
        #expect(NameConstraintSet.ipWithin([127, 0, 0, 1], mappedRange))
        // A real IPv6 address is not an IPv4 one.
        #expect(!NameConstraintSet.ipWithin([UInt8](repeating: 0, count: 15) + [1], loopback8))
    }

    @Test("IPv4 literals with leading zeros, signs or empty octets are not addresses")
    func strictIPv4() {
        #expect(IPAddress.parse("10.0.0.1") == [10, 0, 0, 1])
        for bad in ["010.0.0.1", "10.0.0.01", "+1.0.0.1", "1..0.1", "1.0.0.256", "0x7f.0.0.1"] {
            #expect(IPAddress.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("a trailing dot on the server name or the SAN does not change the name")
    func trailingDots() {
        #expect(ConstrainedNames(serverName: "WWW.Bad.Example.").dns == ["www.bad.example"])
        #expect(ConstrainedNames(serverName: "10.0.0.1.").ips == [[10, 0, 0, 1]])
    }
}
