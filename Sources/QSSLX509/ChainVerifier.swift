import Synchronization
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
/// basicConstraints and pathLen, keyUsage/extendedKeyUsage, DNS/IP name constraints, critical
/// extensions, and DNS/IP names.
public struct X509CertificateVerifier: CertificateVerifier {
    public var roots: [X509Certificate] { didSet { updateDigest() } }
    /// The time against which validity is checked.
    public var now: @Sendable () -> Date = { Date() }
    public var supportedSchemes: [SignatureScheme] = X509CertificateVerifier.defaultSchemes { didSet { updateDigest() } }
    /// SHA-256 of this verifier's policy (`policyBytes`): kept up to date by every property
    /// that changes which peers are accepted, so that reading it per handshake costs nothing.
    public internal(set) var trustPolicyDigest: [UInt8] = []

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
    public var allowedCertificateSignatures: Set<SignatureScheme>? { didSet { updateDigest() } }
    /// Policy: when set, the leaf's key must sign with one of these schemes.
    public var allowedKeySchemes: Set<SignatureScheme>? { didSet { updateDigest() } }

    /// Chains whose signatures and leaf key are post-quantum (ML-DSA or composite).
    public mutating func requirePostQuantumChains() {
        allowedCertificateSignatures = [.qsslMLDSA65ECDSASecp384r1SHA512, .mldsa65, .mldsa87, .mldsa44]
        allowedKeySchemes = allowedCertificateSignatures
    }

    /// Certificate revocation lists (RFC 5280 §5), consulted for every certificate of the path
    /// below its trust anchor: a listed serial is certificate_revoked.
    public var crls: [CertificateRevocationList] = [] { didSet { updateDigest() } }
    /// What a missing, unverifiable or out-of-date CRL means: ignored (soft-fail, the default) or
    /// a rejected chain (hard-fail).
    public var revocationPolicy: RevocationPolicy = .softFail { didSet { updateDigest() } }
    /// Fetches OCSP responses from the responder in a leaf's AIA extension when no staple came
    /// (`NIOOCSPFetcher` over HTTP); nil checks only staples and CRLs.
    public var ocspFetcher: (any OCSPFetching)? { didSet { updateDigest() } }
    public var ocspTimeout: Duration = .seconds(5)
    /// Fetched responses, kept until their nextUpdate (shared by copies of this verifier).
    public var ocspCache = OCSPResponseCache()

    public init(roots: [X509Certificate]) {
        self.roots = roots
        updateDigest()
    }

    /// Trust anchors from a PEM file's contents.
    public init(rootsPEM: String) throws {
        self.init(roots: try CertificateFiles.certificates(fromPEM: rootsPEM))
    }

    public func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer {
        try verify(request, leafStatusFetched: false)
    }

    /// With an `ocspFetcher`, verification waits on the network: the handshake pauses (never
    /// the event loop) while the leaf's status is fetched from its AIA responder, unless a staple
    /// already answered. Soft-fail goes on when the responder is down, slow or answers garbage;
    /// hard-fail refuses the chain.
    public var isSynchronous: Bool { ocspFetcher == nil }

    public func verifyPeerAsynchronously(_ request: PeerVerificationRequest) async throws(TLSError) -> VerifiedPeer {
        guard let fetcher = ocspFetcher, request.stapledOCSPResponse == nil else { return try verify(request, leafStatusFetched: false) }
        // Verify first (no network for a chain we would refuse anyway), then ask about the leaf.
        _ = try verify(request, leafStatusFetched: true, skipRevocation: true)
        let parsed = try request.chain.prefix(1).map { (der) throws(TLSError) in try X509Certificate(der: der) }
        guard let leaf = parsed.first else { throw .rejected(.malformed, "empty chain") }
        let presented = try request.chain.dropFirst().map { (der) throws(TLSError) in try X509Certificate(der: der) }
        let path = try buildPath(leaf: leaf, presented: presented, at: now())
        guard path.count > 1 else { return try verify(request, leafStatusFetched: false) }
        var fetched = false
        do {
            let status = try await ocspStatus(of: leaf, issuer: path[1], fetcher: fetcher)
            switch status {
            case .good: fetched = true
            case .revoked(let at, let reason):
                throw TLSError.rejected(.revoked, "\(leaf.subject) serial \(hex(leaf.serialNumber)) revoked at \(at)\(reason.map { " (\($0))" } ?? "") (OCSP)")
            case .unknown: fetched = false
            }
        } catch let error as TLSError {
            throw error
        } catch {
            if revocationPolicy == .hardFail {
                throw .rejected(.other("revocation status unknown"), "OCSP for \(leaf.subject): \(error) (hard-fail)")
            }
        }
        return try verify(request, leafStatusFetched: fetched)
    }

    /// The leaf's status from its responder (or the cache), checked like a staple.
    func ocspStatus(of leaf: X509Certificate, issuer: X509Certificate, fetcher: any OCSPFetching) async throws -> OCSPCertStatus {
        let id = try OCSPCertID(certificate: leaf, issuer: issuer)
        let date = now()
        if let cached = ocspCache.response(for: id, at: date) {
            return try OCSPResponse(der: cached).status(of: leaf, issuer: issuer, at: date)
        }
        guard let url = leaf.ocspResponderURL else { throw OCSPError("\(leaf.subject) names no OCSP responder") }
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let body = try await fetcher.fetch(url: url, request: try OCSPRequest(certID: id, nonce: nonce).der(), timeout: ocspTimeout)
        let response = try OCSPResponse(der: body)
        // A responder may ignore the nonce (RFC 8954 §3); one it echoes must match.
        let status = try response.status(of: leaf, issuer: issuer, at: date, nonce: response.basic?.nonce == nil ? nil : nonce)
        if let until = response.basic?.responses.first(where: { $0.certID == id })?.nextUpdate { ocspCache.store(body, for: id, until: until) }
        return status
    }

    func verify(_ request: PeerVerificationRequest, leafStatusFetched: Bool, skipRevocation: Bool = false) throws(TLSError) -> VerifiedPeer {
        let chain = request.chain
        let role = request.role
        var parsed: [X509Certificate] = []
        for (i, der) in chain.enumerated() {
            do { parsed.append(try X509Certificate(der: der)) } catch {
                throw .rejected(.malformed, "certificate \(i): \(error.detail ?? "\(error)")")
            }
        }
        guard let leaf = parsed.first else { throw .rejected(.malformed, "empty chain") }
        let date = now()
        let path = try buildPath(leaf: leaf, presented: Array(parsed.dropFirst()), at: date)
        for (depth, cert) in path.enumerated() {
            if date < cert.notBefore {
                throw .rejected(.notYetValid, "\(cert.subject) is not valid before \(cert.notBefore)")
            }
            if date > cert.notAfter {
                throw .rejected(.expired, "\(cert.subject) expired at \(cert.notAfter)")
            }
            if depth > 0 { try checkIssuer(cert, belowCount: depth - 1) }
            // A trust anchor is trusted as configured (RFC 5280 §6.1: its extensions are not
            // processed as a certificate of the path); every other certificate must not carry a
            // critical extension we do not process.
            if !(depth == path.count - 1 && roots.contains(cert)) { try Self.checkCriticalExtensions(cert) }
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
        // A stapled OCSP response for the leaf (RFC 6066 §8, RFC 8446 §4.4.2.1) is checked
        // whenever one was sent: revoked is certificate_revoked, a bad one
        // bad_certificate_status_response.
        var leafStatusKnown = leafStatusFetched
        if let staple = request.stapledOCSPResponse, path.count > 1 {
            leafStatusKnown = try checkOCSP(staple, leaf: leaf, issuer: path[1], at: date) || leafStatusKnown
        }
        if !skipRevocation && (!crls.isEmpty || revocationPolicy == .hardFail) {
            try checkRevocation(path, at: date, leafStatusKnown: leafStatusKnown)
        }
        var serverName: String?
        if case .server(let name?) = role { serverName = name }
        try Self.checkNameConstraints(path, serverName: serverName)
        try checkLeafPurpose(leaf, role: role)
        if let serverName { try checkName(leaf, serverName) }
        return VerifiedPeer(publicKey: try Self.publicKey(of: leaf), identity: Self.identity(leaf, path: path))
    }

    /// RFC 5280 §6.3 (complete CRLs only): each certificate below the anchor against the CRLs its
    /// issuer signed.
    /// Every certificate is looked up in the CRLs, whatever OCSP said: a revocation from any
    /// source wins. `leafStatusKnown` (a good OCSP answer) only satisfies hard-fail for the leaf.
    func checkRevocation(_ path: [X509Certificate], at date: Date, leafStatusKnown: Bool = false) throws(TLSError) {
        for depth in 0..<max(0, path.count - 1) {
            let cert = path[depth]
            let issuer = path[depth + 1]
            // RFC 5280 §4.2.1.3: a CRL counts only if its issuer's keyUsage (when present)
            // allows cRLSign.
            let signed = Self.mayIssueCRLs(issuer) ? crls.filter { $0.isSigned(by: issuer) } : []
            let current = signed.filter { $0.thisUpdate <= date && ($0.nextUpdate.map { date <= $0 } ?? true) }
            if let revoking = current.first(where: { $0.isRevoked(serial: cert.serialNumber) }) {
                let reason = revoking.revoked[cert.serialNumber].flatMap { $0 }.map { " (\($0))" } ?? ""
                throw .rejected(.revoked, "\(cert.subject) serial \(hex(cert.serialNumber)) is revoked by \(issuer.subject)'s CRL\(reason)")
            }
            if current.isEmpty && revocationPolicy == .hardFail && !(depth == 0 && leafStatusKnown) {
                let why = signed.isEmpty ? "no CRL signed by \(issuer.subject)" : "the CRL of \(issuer.subject) is out of date"
                throw .rejected(.other("revocation status unknown"), "\(cert.subject): \(why) (hard-fail)")
            }
        }
    }

    /// RFC 5280 §4.2.1.3: "the cRLSign bit is asserted" in a CRL issuer's keyUsage, when it has one.
    static func mayIssueCRLs(_ issuer: X509Certificate) -> Bool {
        switch Result(catching: { try issuer.extensions.keyUsage }) {
        case .success(let usage?): return usage.cRLSign
        case .success(nil): return true
        case .failure: return false
        }
    }

    /// Returns whether the response established the leaf's status (good); throws for revoked
    /// and for a response that cannot be trusted.
    func checkOCSP(_ der: [UInt8], leaf: X509Certificate, issuer: X509Certificate, at date: Date) throws(TLSError) -> Bool {
        let status: OCSPCertStatus
        do {
            status = try OCSPResponse(der: der).status(of: leaf, issuer: issuer, at: date)
        } catch {
            throw .rejected(.badOCSPResponse, "stapled OCSP response for \(leaf.subject): \(error)")
        }
        switch status {
        case .good: return true
        case .revoked(let at, let reason):
            throw .rejected(.revoked, "\(leaf.subject) serial \(hex(leaf.serialNumber)) revoked at \(at)\(reason.map { " (\($0))" } ?? "") (OCSP)")
        case .unknown:
            if revocationPolicy == .hardFail { throw .rejected(.other("revocation status unknown"), "the OCSP responder does not know \(leaf.subject)") }
            return false
        }
    }

    /// Who the leaf names, for `PeerIdentity`.
    static func identity(_ leaf: X509Certificate, path: [X509Certificate]) -> PeerIdentity {
        var names: [String] = []
        let sans = (try? leaf.extensions.subjectAlternativeNames) ?? nil
        for san in sans ?? SubjectAlternativeNames([]) {
            switch san {
            case .dnsName(let dns): names.append("DNS:\(dns)")
            case .ipAddress(let bytes): names.append("IP:" + IPAddress.format(Array(bytes.bytes)))
            default: continue
            }
        }
        var identity = PeerIdentity(verifiedChain: path.map(\.der), subject: "\(leaf.subject)", subjectAlternativeNames: names,
                                    keyAlgorithm: leaf.publicKey.description, certificateSignatureAlgorithm: leaf.signatureAlgorithmName)
        // Below the anchor (all of a one-certificate path): what a resumption checks again.
        identity.pathReferences = path.prefix(max(1, path.count - 1)).compactMap { cert in
            cert.issuerDER.map { CertificateReference(issuer: $0, serialNumber: cert.serialNumber, notAfter: Int64(cert.notAfter.timeIntervalSince1970)) }
        }
        return identity
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
        let host = NameConstraintSet.normalize(name)
        let ip = IPAddress.parse(host)
        for san in sans ?? SubjectAlternativeNames([]) {
            switch san {
            case .dnsName(let dns) where ip == nil:
                if Self.dnsMatches(pattern: NameConstraintSet.normalize(dns), host: host) { return }
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

    /// The extensions this verifier acts on. A critical extension outside this list means the
    /// issuer relies on a rule we would silently ignore, so the certificate is refused (RFC 5280 §4.2).
    static let processedExtensions: Set<ASN1ObjectIdentifier> = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.nameConstraints,
        .X509ExtensionID.authorityKeyIdentifier, .X509ExtensionID.subjectKeyIdentifier,
    ]

    static func checkCriticalExtensions(_ cert: X509Certificate) throws(TLSError) {
        for ext in cert.extensions where ext.critical && !processedExtensions.contains(ext.oid) {
            throw .rejected(.unhandledCriticalExtension, "\(cert.subject) carries the critical extension \(ext.oid), which Q-SSL does not process")
        }
    }

    /// RFC 5280 §4.2.1.10 and §6.1.3 (b), (g): the name constraints of every CA on the path
    /// (the trust anchor's included) apply to the names of every certificate below it and to the
    /// server name being checked. Only the dNSName and iPAddress forms are implemented; a CA
    /// constraining any other form is refused rather than half-enforced.
    static func checkNameConstraints(_ path: [X509Certificate], serverName: String?) throws(TLSError) {
        guard path.count > 1 else { return }
        var constraints: [(depth: Int, ca: X509Certificate, set: NameConstraintSet)] = []
        for depth in 1..<path.count {
            if let set = try NameConstraintSet(path[depth]) { constraints.append((depth, path[depth], set)) }
        }
        guard !constraints.isEmpty else { return }
        for depth in 0..<(path.count - 1) {
            let cert = path[depth]
            // Self-issued intermediates are exempt (RFC 5280 §6.1.3 (b)); the leaf never is.
            if depth > 0 && cert.subject == cert.issuer { continue }
            let names = try ConstrainedNames(cert, isLeaf: depth == 0)
            for c in constraints where c.depth > depth {
                try c.set.check(names, of: "\(cert.subject)", by: c.ca)
            }
        }
        if let serverName {
            let names = ConstrainedNames(serverName: serverName)
            for c in constraints { try c.set.check(names, of: "server name \(serverName)", by: c.ca) }
        }
    }

    /// The leaf's key as a verifier of handshake signatures.
    public static func publicKey(of cert: X509Certificate) throws(TLSError) -> any PeerPublicKey {
        if case .rsa(let k) = cert.publicKey.key, k.keySizeInBits < 2048 {
            throw .rejected(.unsupportedAlgorithm, "RSA key of \(k.keySizeInBits) bits")
        }
        return cert.publicKey.key
    }
}

/// The names of one certificate that name constraints apply to: subjectAltName dNSName and
/// iPAddress entries and, for a leaf without SAN DNS names, a subject CN that looks like a
/// hostname or an IP address (as OpenSSL and browsers do).
struct ConstrainedNames {
    var dns: [String] = []
    var ips: [[UInt8]] = []

    init(_ cert: X509Certificate, isLeaf: Bool) throws(TLSError) {
        let sans: SubjectAlternativeNames?
        do { sans = try cert.extensions.subjectAlternativeNames } catch {
            throw .rejected(.malformed, "\(cert.subject) subjectAlternativeName: \(error)")
        }
        for san in sans ?? SubjectAlternativeNames([]) {
            switch san {
            case .dnsName(let name): dns.append(name)
            case .ipAddress(let bytes):
                guard bytes.bytes.count == 4 || bytes.bytes.count == 16 else {
                    throw .rejected(.malformed, "\(cert.subject) has an iPAddress name of \(bytes.bytes.count) bytes")
                }
                ips.append(Array(bytes.bytes))
            default: continue   // forms whose constraints are refused outright (NameConstraintSet)
            }
        }
        guard isLeaf && dns.isEmpty else { return }
        for rdn in cert.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                guard let cn = String(attribute.value) else { continue }
                if let ip = IPAddress.parse(cn) { ips.append(ip) } else if Self.looksLikeHostname(cn) { dns.append(cn) }
            }
        }
    }

    init(serverName: String) {
        let name = NameConstraintSet.normalize(serverName)
        if let ip = IPAddress.parse(name) { ips = [ip] } else { dns = [name] }
    }

    /// LDH labels (underscores tolerated), optionally a leading "*" label, at most 253 characters.
    static func looksLikeHostname(_ s: String) -> Bool {
        let name = s.hasSuffix(".") ? String(s.dropLast()) : s
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for (i, label) in labels.enumerated() {
            if i == 0 && label == "*" && labels.count > 1 { continue }
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0)
                                          || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else { return false }
        }
        return true
    }
}

/// One CA's name constraints, DNS and IP forms (RFC 5280 §4.2.1.10).
struct NameConstraintSet {
    var permittedDNS: [String] = []
    var excludedDNS: [String] = []
    var permittedIP: [(base: [UInt8], mask: [UInt8])] = []
    var excludedIP: [(base: [UInt8], mask: [UInt8])] = []

    /// Nil when the certificate has no nameConstraints extension.
    init?(_ cert: X509Certificate) throws(TLSError) {
        guard let ext = cert.extensions[oid: .X509ExtensionID.nameConstraints] else { return nil }
        let parsed: NameConstraints
        do { parsed = try NameConstraints(ext) } catch {
            throw .rejected(.malformed, "\(cert.subject) nameConstraints: \(error)")
        }
        for (subtrees, permitted) in [(parsed.permittedSubtrees, true), (parsed.excludedSubtrees, false)] {
            for name in subtrees {
                switch name {
                case .dnsName(let domain):
                    if permitted { permittedDNS.append(Self.normalize(domain)) } else { excludedDNS.append(Self.normalize(domain)) }
                case .ipAddress(let octets):
                    let bytes = Array(octets.bytes)
                    guard bytes.count == 8 || bytes.count == 32 else {
                        throw .rejected(.malformed, "\(cert.subject) has an iPAddress name constraint of \(bytes.count) bytes")
                    }
                    let range = (base: Array(bytes[..<(bytes.count / 2)]), mask: Array(bytes[(bytes.count / 2)...]))
                    guard Self.isContiguous(range.mask) else {
                        throw .rejected(.malformed, "\(cert.subject) has an iPAddress name constraint with a non-contiguous mask")
                    }
                    if permitted { permittedIP.append(range) } else { excludedIP.append(range) }
                default:
                    throw .rejected(.nameConstraintViolation,
                                    "\(cert.subject) constrains \(name), a name form Q-SSL does not implement (only DNS and IP)")
                }
            }
        }
    }

    func check(_ names: ConstrainedNames, of what: String, by ca: X509Certificate) throws(TLSError) {
        for raw in names.dns {
            let name = Self.normalize(raw)
            if let c = excludedDNS.first(where: { Self.dnsIntersects(name, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): DNS name \(raw) is in the subtree \(c) excluded by \(ca.subject)")
            }
            if !permittedDNS.isEmpty && !permittedDNS.contains(where: { Self.dnsWithin(name, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): DNS name \(raw) is outside the subtrees permitted by \(ca.subject)")
            }
        }
        for ip in names.ips {
            if excludedIP.contains(where: { Self.ipWithin(ip, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): IP address \(Self.show(ip)) is in a range excluded by \(ca.subject)")
            }
            if !permittedIP.isEmpty && !permittedIP.contains(where: { Self.ipWithin(ip, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): IP address \(Self.show(ip)) is outside the ranges permitted by \(ca.subject)")
            }
        }
    }

    /// Lower case, without a trailing dot: the form every DNS comparison here uses.
    static func normalize(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// Every host `name` stands for lies in the subtree: "example.com" holds itself and its
    /// subdomains, ".example.com" only its subdomains, "" everything. A wildcard name "*.S" is
    /// within when S is within (or, with a leading-dot constraint, when S is the constraint's domain).
    static func dnsWithin(_ name: String, _ constraint: String) -> Bool {
        if constraint.isEmpty { return true }
        if constraint.hasPrefix(".") { return name.hasSuffix(constraint) && name.count > constraint.count }
        return name == constraint || name.hasSuffix("." + constraint)
    }

    /// Some host `name` stands for lies in the (excluded) subtree. A wildcard "*.S" stands for
    /// every one-label child of S, so it also meets a subtree rooted at such a child.
    static func dnsIntersects(_ name: String, _ constraint: String) -> Bool {
        if dnsWithin(name, constraint) { return true }
        guard name.hasPrefix("*.") else { return false }
        let parent = String(name.dropFirst(2))
        let domain = constraint.hasPrefix(".") ? String(constraint.dropFirst()) : constraint
        // S within the domain: every child of S is a proper subdomain of it, excluded by both forms.
        if dnsWithin(parent, domain) { return true }
        // The constraint is itself a child of S, which the wildcard matches ("D" only, not ".D").
        guard !constraint.hasPrefix("."), let dot = constraint.firstIndex(of: ".") else { return false }
        return constraint[constraint.index(after: dot)...] == parent
    }

    static let ipv4MappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]

    static func ipWithin(_ address: [UInt8], _ range: (base: [UInt8], mask: [UInt8])) -> Bool {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it carries: it must
        // not escape an IPv4 constraint, nor an IPv4 address a mapped IPv6 one.
        var ip = address
        if ip.count == 16 && range.base.count == 4 && Array(ip.prefix(12)) == Self.ipv4MappedPrefix {
            ip = Array(ip.suffix(4))
        } else if ip.count == 4 && range.base.count == 16 {
            ip = Self.ipv4MappedPrefix + ip
        }
        guard ip.count == range.base.count else { return false }
        for i in 0..<ip.count where ip[i] & range.mask[i] != range.base[i] & range.mask[i] { return false }
        return true
    }

    static func isContiguous(_ mask: [UInt8]) -> Bool {
        var seenZero = false
        for byte in mask {
            for bit in (0..<8).reversed() {
                let set = byte & (1 << bit) != 0
                if set && seenZero { return false }
                if !set { seenZero = true }
            }
        }
        return true
    }

    static func show(_ ip: [UInt8]) -> String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: ip.count, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}

/// IPv4 and IPv6 literals as bytes.
enum IPAddress {
    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return bytes.map { String($0, radix: 16) }.joined(separator: ":") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    static func parse(_ s: String) -> [UInt8]? {
        let v4 = s.split(separator: ".", omittingEmptySubsequences: false)
        if v4.count == 4 {
            // Decimal octets only, without leading zeros: "010.0.0.1" means 8.0.0.1 to
            // inet_aton, so it must not be read as 10.0.0.1 here.
            guard v4.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 3 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) }
                                  && ($0.utf8.count == 1 || $0.utf8.first != 0x30) }) else { return nil }
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

/// What an unknown revocation status means.
public enum RevocationPolicy: String, Sendable, Hashable {
    /// A certificate whose status cannot be established is accepted (a revoked one never is).
    case softFail = "soft-fail"
    /// A certificate whose status cannot be established is rejected.
    case hardFail = "hard-fail"
}

/// Serial numbers as `openssl x509 -serial` prints them: uppercase hex.
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined() }

/// Fetches an OCSP response over the network (RFC 6960 Appendix A: HTTP POST).
public protocol OCSPFetching: Sendable {
    func fetch(url: String, request: [UInt8], timeout: Duration) async throws -> [UInt8]
}

/// OCSP responses by CertID, until their nextUpdate; bounded.
public final class OCSPResponseCache: Sendable {
    private let entries = Mutex<[OCSPCertID: (der: [UInt8], until: Date)]>([:])
    public static let maxEntries = 4096
    public init() {}

    func response(for id: OCSPCertID, at date: Date) -> [UInt8]? {
        entries.withLock { e in
            guard let hit = e[id] else { return nil }
            if hit.until < date { e[id] = nil; return nil }
            return hit.der
        }
    }

    func store(_ der: [UInt8], for id: OCSPCertID, until: Date) {
        entries.withLock { e in
            if e.count >= Self.maxEntries { e.removeAll() }
            e[id] = (der, until)
        }
    }
}
