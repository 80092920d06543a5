import Crypto
import _CryptoExtras
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import X509

/// Verifies peer certificate chains against a set of trust anchors (RFC 5280 §6, simplified to
/// what TLS needs): path building through the presented intermediates, signatures, validity,
/// basicConstraints and pathLen, keyUsage/extendedKeyUsage, and DNS/IP names.
public struct X509CertificateVerifier: CertificateVerifier {
    public var roots: [X509Certificate]
    /// The time against which validity is checked.
    public var now: @Sendable () -> Date = { Date() }
    public var supportedSchemes: [SignatureScheme] = X509CertificateVerifier.defaultSchemes

    /// Schemes offered in signature_algorithms, strongest first.
    public static let defaultSchemes: [SignatureScheme] = [
        .qsslMLDSA65ECDSASecp384r1SHA512, .mldsa65, .mldsa87, .mldsa44,
        .ecdsaSecp384r1SHA384, .ecdsaSecp256r1SHA256, .ed25519,
        .rsaPSSRSAESHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA512,
    ]

    /// Certificate signatures we verify: the handshake schemes plus RSA PKCS#1 v1.5.
    public var supportedCertificateSchemes: [SignatureScheme] {
        supportedSchemes + [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]
    }

    /// Policy: when set, every certificate signature on the path (trust anchors' self-signatures
    /// excepted) must use one of these schemes, e.g. `[.qsslMLDSA65ECDSASecp384r1SHA512, .mldsa65, .mldsa87]`
    /// for post-quantum chains only. Violations are bad_certificate.
    public var allowedCertificateSignatures: Set<SignatureScheme>?
    /// Policy: when set, the leaf's key must sign with one of these schemes.
    public var allowedKeySchemes: Set<SignatureScheme>?

    /// Chains whose signatures and leaf key are post-quantum (ML-DSA or composite).
    public mutating func requirePostQuantumChains() {
        allowedCertificateSignatures = [.qsslMLDSA65ECDSASecp384r1SHA512, .mldsa65, .mldsa87, .mldsa44]
        allowedKeySchemes = allowedCertificateSignatures
    }

    public init(roots: [X509Certificate]) { self.roots = roots }

    /// Trust anchors from a PEM file's contents.
    public init(rootsPEM: String) throws {
        self.init(roots: try CertificateFiles.certificates(fromPEM: rootsPEM))
    }

    public func verify(chain: [[UInt8]], role: PeerRole) throws(TLSError) -> any PeerPublicKey {
        var parsed: [X509Certificate] = []
        for (i, der) in chain.enumerated() {
            do { parsed.append(try X509Certificate(der: der)) } catch {
                throw .rejected(.malformed, "certificate \(i): \(error.detail ?? "\(error)")")
            }
        }
        guard let leaf = parsed.first else { throw .rejected(.malformed, "empty chain") }
        let path = try buildPath(leaf: leaf, presented: Array(parsed.dropFirst()))
        let date = now()
        for (depth, cert) in path.enumerated() {
            if date < cert.notBefore {
                throw .rejected(.notYetValid, "\(cert.subject) is not valid before \(cert.notBefore)")
            }
            if date > cert.notAfter {
                throw .rejected(.expired, "\(cert.subject) expired at \(cert.notAfter)")
            }
            if depth > 0 { try checkIssuer(cert, belowCount: depth - 1) }
            // Policy: the signatures the path relies on (not the anchor's self-signature).
            if let allowed = allowedCertificateSignatures, depth < path.count - 1 || path.count == 1 {
                guard let scheme = cert.signatureScheme, allowed.contains(scheme) else {
                    throw .rejected(.other("signature algorithm not allowed by policy"),
                                    "\(cert.subject) is signed with \(cert.signatureAlgorithmName), which the policy does not allow")
                }
            }
            if let allowed = allowedKeySchemes, depth == 0,
               !cert.publicKey.key.supportedSchemes.contains(where: allowed.contains) {
                throw .rejected(.other("key algorithm not allowed by policy"), "\(cert.subject) has a \(cert.publicKey.description) key")
            }
        }
        try checkLeafPurpose(leaf, role: role)
        if case .server(let name?) = role { try checkName(leaf, name) }
        return try Self.publicKey(of: leaf)
    }

    /// Leaf first, then issuers, ending with a trust anchor.
    private func buildPath(leaf: X509Certificate, presented: [X509Certificate]) throws(TLSError) -> [X509Certificate] {
        if roots.contains(leaf) { return [leaf] }
        var path = [leaf]
        var pool = presented
        var sawBadSignature = false
        while path.count <= 10 {
            let current = path[path.count - 1]
            let candidates = roots.filter { Self.mayHaveIssued($0, current) }
            if let anchor = candidates.first(where: { current.isSigned(by: $0) }) {
                path.append(anchor)
                return path
            }
            if !candidates.isEmpty { sawBadSignature = true }
            guard let i = pool.firstIndex(where: { Self.mayHaveIssued($0, current) && $0 != current }) else { break }
            let issuer = pool.remove(at: i)
            guard current.isSigned(by: issuer) else {
                sawBadSignature = true
                break
            }
            path.append(issuer)
        }
        if sawBadSignature {
            let cert = path[path.count - 1]
            throw .rejected(.badSignature, "the \(cert.signatureAlgorithmName) signature on \(cert.subject) does not verify")
        }
        throw .rejected(.unknownIssuer, "no trusted root for issuer \(path[path.count - 1].issuer)")
    }

    /// RFC 5280 §4.2.1.1: the issuer's name matches and, when both carry key identifiers, the
    /// authority key identifier names the issuer's key. A name match with another key is a
    /// different CA (unknown_ca), not a bad signature.
    static func mayHaveIssued(_ issuer: X509Certificate, _ cert: X509Certificate) -> Bool {
        guard issuer.subject == cert.issuer else { return false }
        guard let aki = (try? cert.extensions.authorityKeyIdentifier)??.keyIdentifier,
              let ski = (try? issuer.extensions.subjectKeyIdentifier)??.keyIdentifier else { return true }
        return aki == ski
    }

    /// An issuing certificate must be a CA allowed to sign certificates, with a path length
    /// constraint that admits the `belowCount` intermediates under it.
    private func checkIssuer(_ cert: X509Certificate, belowCount: Int) throws(TLSError) {
        let constraints: BasicConstraints?
        let usage: KeyUsage?
        do {
            constraints = try cert.extensions.basicConstraints
            usage = try cert.extensions.keyUsage
        } catch {
            throw .rejected(.malformed, "\(cert.subject): \(error)")
        }
        guard case .isCertificateAuthority(let maxPathLength) = constraints else {
            throw .rejected(.other("issuer is not a CA"), "\(cert.subject) lacks basicConstraints cA")
        }
        if let maxPathLength, belowCount > maxPathLength {
            throw .rejected(.other("path length exceeded"), "\(cert.subject) allows \(maxPathLength) intermediates")
        }
        if let usage, !usage.keyCertSign {
            throw .rejected(.invalidPurpose, "\(cert.subject) keyUsage lacks keyCertSign")
        }
    }

    private func checkLeafPurpose(_ leaf: X509Certificate, role: PeerRole) throws(TLSError) {
        do {
            if let usage = try leaf.extensions.keyUsage, !usage.digitalSignature {
                throw TLSError.rejected(.invalidPurpose, "keyUsage lacks digitalSignature")
            }
            if let eku = try leaf.extensions.extendedKeyUsage {
                let wanted: ExtendedKeyUsage.Usage = role == .client ? .clientAuth : .serverAuth
                guard eku.contains(wanted) || eku.contains(.any) else {
                    throw TLSError.rejected(.invalidPurpose, "extendedKeyUsage lacks \(wanted)")
                }
            }
        } catch let error as TLSError {
            throw error
        } catch {
            throw .rejected(.malformed, "leaf extensions: \(error)")
        }
    }

    /// RFC 6125 / RFC 9525: DNS names (one leading wildcard label) and IP addresses from the SAN.
    private func checkName(_ leaf: X509Certificate, _ name: String) throws(TLSError) {
        let sans: SubjectAlternativeNames?
        do { sans = try leaf.extensions.subjectAlternativeNames } catch {
            throw .rejected(.malformed, "subjectAlternativeName: \(error)")
        }
        let host = name.lowercased().hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased()
        let ip = IPAddress.parse(host)
        for san in sans ?? SubjectAlternativeNames([]) {
            switch san {
            case .dnsName(let dns) where ip == nil:
                if Self.dnsMatches(pattern: dns.lowercased(), host: host) { return }
            case .ipAddress(let bytes):
                if let ip, ip == Array(bytes.bytes) { return }
            default:
                continue
            }
        }
        throw .rejected(.nameMismatch, "certificate is not valid for \(name)")
    }

    static func dnsMatches(pattern: String, host: String) -> Bool {
        if pattern == host { return true }
        guard pattern.hasPrefix("*.") else { return false }
        let suffix = pattern.dropFirst(1)   // ".example.com"
        guard host.hasSuffix(suffix) else { return false }
        let label = host.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".")
    }

    /// The leaf's key as a verifier of handshake signatures.
    public static func publicKey(of cert: X509Certificate) throws(TLSError) -> any PeerPublicKey {
        if case .rsa(let k) = cert.publicKey.key, k.keySizeInBits < 2048 {
            throw .rejected(.unsupportedAlgorithm, "RSA key of \(k.keySizeInBits) bits")
        }
        return cert.publicKey.key
    }
}

/// IPv4 and IPv6 literals as bytes.
enum IPAddress {
    static func parse(_ s: String) -> [UInt8]? {
        let v4 = s.split(separator: ".", omittingEmptySubsequences: false)
        if v4.count == 4 {
            let bytes = v4.compactMap { UInt8($0) }
            return bytes.count == 4 ? bytes : nil
        }
        guard s.contains(":") else { return nil }
        var text = s
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            let g = part.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0, radix: 16) }
            return g.contains(where: { $0 == nil }) ? nil : g.map { $0! }
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
