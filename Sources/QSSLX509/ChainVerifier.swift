import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

// X509CertificateVerifier: chain verification against trust anchors (path building in ChainVerifier+PathBuilding.swift).

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
        .rsaPSSRSAESHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA512
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
    /// The validity of resumed sessions' leaves, parsed once each (shared by copies).
    let resumedLeaves = ResumedLeafCache()

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
                    throw .rejected(
                        .other("signature algorithm not allowed by policy"),
                        "\(cert.subject) is signed with \(cert.signatureAlgorithmName), which the policy does not allow")
                }
            }
            if let allowed = allowedKeySchemes, depth == 0,
                !cert.publicKey.key.supportedSchemes.contains(where: allowed.contains)
            {
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
        var identity = PeerIdentity(
            verifiedChain: path.map(\.der), subject: "\(leaf.subject)", subjectAlternativeNames: names,
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
        let suffix = pattern.dropFirst(1)  // ".example.com"
        guard host.hasSuffix(suffix) else { return false }
        let label = host.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".")
    }

    /// The extensions this verifier acts on. A critical extension outside this list means the
    /// issuer relies on a rule we would silently ignore, so the certificate is refused (RFC 5280 §4.2).
    static let processedExtensions: Set<ASN1ObjectIdentifier> = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.nameConstraints,
        .X509ExtensionID.authorityKeyIdentifier, .X509ExtensionID.subjectKeyIdentifier
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

    /// The leaf's key as a verifier of handshake signatures, stating the subjectPublicKeyInfo it
    /// came from (the handshake checks it against the certificate the peer sent).
    public static func publicKey(of cert: X509Certificate) throws(TLSError) -> any PeerPublicKey {
        if case .rsa(let k) = cert.publicKey.key, k.keySizeInBits < 2048 {
            throw .rejected(.unsupportedAlgorithm, "RSA key of \(k.keySizeInBits) bits")
        }
        return CertificatePublicKey(cert.publicKey)
    }
}
