import Crypto
import Foundation
import QSSL
import QSSLWire
import Synchronization
import X509

// MARK: - Resumption: the policy a session was verified under

extension X509CertificateVerifier {
    /// The canonical bytes of what decides which chains this verifier accepts: the trust anchors
    /// (as a set), the handshake schemes, the algorithm policies, the revocation mode, which CAs
    /// publish the CRLs it holds, and whether it asks OCSP responders. Not the clock, and not the
    /// CRLs' contents: a new CRL does not end every session; a resumed session's leaf is looked
    /// up in the CRLs in force instead (`checkResumedPeer`).
    var policyBytes: [UInt8] {
        var out = Array("QSSL X509CertificateVerifier policy 1".utf8)
        func field(_ tag: UInt8, _ bytes: [UInt8]) {
            out.append(tag)
            let n = UInt32(bytes.count)
            out += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            out += bytes
        }
        for root in roots.map({ Array(SHA256.hash(data: $0.der)) }).sorted(by: { $0.lexicographicallyPrecedes($1) }) { field(1, root) }
        field(2, supportedSchemes.flatMap { [UInt8($0.rawValue >> 8), UInt8($0.rawValue & 0xFF)] })
        func schemeSet(_ set: Set<SignatureScheme>?) -> [UInt8] {
            guard let set else { return [0] }
            return [1] + set.map(\.rawValue).sorted().flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        }
        field(3, schemeSet(allowedCertificateSignatures))
        field(4, schemeSet(allowedKeySchemes))
        field(5, Array(revocationPolicy.rawValue.utf8))
        let crlIssuers = Set(crls.map { crl in Array(SHA256.hash(data: X509Certificate.derName(crl.issuer) ?? [])) })
        for issuer in crlIssuers.sorted(by: { $0.lexicographicallyPrecedes($1) }) { field(6, issuer) }
        field(7, [ocspFetcher == nil ? 0 : 1])
        return out
    }

    mutating func updateDigest() {
        trustPolicyDigest = Array(SHA256.hash(data: policyBytes))
    }

    /// A resumed session's peer, checked again now: every certificate of its verified path below
    /// the anchor (`PeerIdentity.pathReferences`) must still be within its validity period and
    /// must not be listed in a current CRL of its issuer; under hard-fail, each must have a
    /// current CRL from its issuer (OCSP answers are not kept with a session, so a policy that
    /// relies on them alone gets a full handshake). The CRLs' signatures were checked when they
    /// were used on a full handshake; here a listing only turns the resumption into a full
    /// handshake, which checks everything, so it can cost a handshake but never admit a peer.
    public func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) {
        guard let der = identity.verifiedChain.first else { throw .rejected(.malformed, "the session keeps no certificate") }
        let leaf: ResumedLeafCache.Validity
        do { leaf = try resumedLeaves.validity(of: der) } catch { throw .rejected(.malformed, "the session's certificate: \(error)") }
        let date = now()
        if date < leaf.notBefore { throw .rejected(.notYetValid, "\(leaf.subject) is not valid before \(leaf.notBefore)") }
        if date > leaf.notAfter { throw .rejected(.expired, "\(leaf.subject) expired at \(leaf.notAfter)") }
        guard !identity.pathReferences.isEmpty else { throw .rejected(.malformed, "the session does not name its certificate path") }
        let seconds = Int64(date.timeIntervalSince1970)
        let crlIssuers = crls.map { X509Certificate.derName($0.issuer) }
        for reference in identity.pathReferences {
            if seconds > reference.notAfter {
                throw .rejected(.expired, "a certificate of the session's path (serial \(hex(reference.serialNumber))) has expired")
            }
            var current = false
            for (crl, issuer) in zip(crls, crlIssuers) where issuer == reference.issuer {
                guard crl.thisUpdate <= date, crl.nextUpdate.map({ date <= $0 }) ?? true else { continue }
                current = true
                if crl.isRevoked(serial: reference.serialNumber) {
                    throw .rejected(.revoked, "serial \(hex(reference.serialNumber)) of the session's path is revoked by \(crl.issuer)'s CRL")
                }
            }
            if !current && revocationPolicy == .hardFail {
                throw .rejected(.other("revocation status unknown"), "no current CRL for a certificate of the session's path (hard-fail)")
            }
        }
    }
}

/// The validity period of the leaves of resumed sessions, by DER: without it a session's leaf
/// is parsed again on every resumption (and on every offer a client weighs), the largest part
/// of a client's resumption. Shared by copies of a verifier; a certificate's validity never
/// changes, so an entry never goes stale. Bounded: when full it starts again empty.
final class ResumedLeafCache: Sendable {
    struct Validity: Sendable {
        let notBefore: Date
        let notAfter: Date
        let subject: DistinguishedName
    }

    let capacity: Int
    private let entries = Mutex<[[UInt8]: Validity]>([:])

    init(capacity: Int = 256) {
        self.capacity = capacity
    }

    /// The leaf's validity: from the cache, or parsed (and kept) the first time.
    func validity(of der: [UInt8]) throws -> Validity {
        if let known = entries.withLock({ $0[der] }) { return known }
        let leaf = try X509Certificate(der: der)
        let validity = Validity(notBefore: leaf.notBefore, notAfter: leaf.notAfter, subject: leaf.subject)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[der] = validity
        }
        return validity
    }

    var count: Int { entries.withLock { $0.count } }
}
