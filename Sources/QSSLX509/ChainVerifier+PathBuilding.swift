import Foundation
import QSSL
import X509

// MARK: - Path building: from the leaf through the presented certificates to a trust anchor

extension X509CertificateVerifier {
    /// At most this many certificates below the trust anchor, the leaf included.
    static let maxPathLength = 10
    /// At most this many candidate issuers tried in one build (each a signature check unless
    /// the same pair was checked before): a peer sending many certificates with one name, or a
    /// mesh of cross-signatures, costs this much work and then fails.
    static let maxIssuerCandidates = 64

    /// Leaf first, then issuers, ending with a trust anchor. A depth-first search that backtracks
    /// over candidate issuers (RFC 4158, simplified), so that a cross-signed copy of an
    /// intermediate, a stale copy, or a same-named certificate with another key, sent first, does
    /// not hide a valid path. Only whether a path exists is decided here: the checks that follow
    /// (validity, basicConstraints, name constraints…) report why the path found is refused.
    func buildPath(leaf: X509Certificate, presented: [X509Certificate], at date: Date) throws(TLSError) -> [X509Certificate] {
        if roots.contains(leaf) { return [leaf] }
        var search = PathSearch(leaf: leaf, presented: presented, anchors: roots, date: date)
        guard let path = try search.extend([0]) else { throw search.failure }
        return path.map { search.nodes[$0].cert }
    }
}

/// One build: the certificates as numbered nodes (the leaf 0, the presented ones, the trust
/// anchors), the signature checks made so far, and why the branches tried failed.
struct PathSearch {
    struct Node {
        let cert: X509Certificate
        let isAnchor: Bool
        /// Its validity period covers the verification time.
        let isCurrent: Bool
        /// subjectKeyIdentifier and authorityKeyIdentifier, parsed once per build.
        let keyID: ArraySlice<UInt8>?
        let authorityKeyID: ArraySlice<UInt8>?

        init(_ cert: X509Certificate, anchor: Bool, date: Date) {
            self.cert = cert
            isAnchor = anchor
            isCurrent = cert.notBefore <= date && date <= cert.notAfter
            keyID = (try? cert.extensions.subjectKeyIdentifier)??.keyIdentifier
            authorityKeyID = (try? cert.extensions.authorityKeyIdentifier)??.keyIdentifier
        }

        /// RFC 5280 §4.2.1.1: the issuer's name matches and, when both carry key identifiers,
        /// the authority key identifier names this key. A name match with another key is a
        /// different CA (unknown_ca), not a bad signature.
        func mayHaveIssued(_ subject: Node) -> Bool {
            guard cert.subject == subject.cert.issuer else { return false }
            guard let aki = subject.authorityKeyID, let keyID else { return true }
            return aki == keyID
        }
    }

    struct Edge: Hashable {
        let issuer: Int
        let subject: Int
    }

    let nodes: [Node]
    private var tried = 0
    private var signatures: [Edge: Bool] = [:]
    /// The first certificate for which no candidate issuer was left (or the path was too long).
    private var deadEnd: X509Certificate?
    /// The first certificate that no candidate issuer's signature verified on.
    private var unsigned: X509Certificate?

    init(leaf: X509Certificate, presented: [X509Certificate], anchors: [X509Certificate], date: Date) {
        // An anchor that no certificate names as its issuer cannot be on a path.
        let issuers = Set(([leaf] + presented).map(\.issuer))
        nodes =
            [Node(leaf, anchor: false, date: date)] + presented.map { Node($0, anchor: false, date: date) }
            + anchors.filter { issuers.contains($0.subject) }.map { Node($0, anchor: true, date: date) }
    }

    /// Extends `path` (node numbers, leaf first) to a trust anchor; nil when no extension exists.
    mutating func extend(_ path: [Int]) throws(TLSError) -> [Int]? {
        let current = path[path.count - 1]
        var candidates = issuerCandidates(of: current, excluding: path)
        // A full path can still end at an anchor, but grows no further.
        if path.count >= X509CertificateVerifier.maxPathLength { candidates.removeAll { !nodes[$0].isAnchor } }
        var signed = false
        for issuer in candidates {
            guard try verifies(issuer, current) else { continue }
            if nodes[issuer].isAnchor { return path + [issuer] }
            signed = true
            if let found = try extend(path + [issuer]) { return found }
        }
        if candidates.isEmpty {
            deadEnd = deadEnd ?? nodes[current].cert
        } else if !signed {
            unsigned = unsigned ?? nodes[current].cert
        }
        return nil
    }

    /// The nodes that may have issued `subject` (name and key identifiers match), in the order
    /// to try them: trust anchors first, and certificates valid now before the others. A node
    /// with the subject and key of one already on the path is left out: it could only lead back
    /// where the path has been, and the path from it could start at its first occurrence instead.
    func issuerCandidates(of subject: Int, excluding path: [Int]) -> [Int] {
        let matching = nodes.indices.filter { i in
            let c = nodes[i].cert
            return nodes[i].mayHaveIssued(nodes[subject])
                && !path.contains { nodes[$0].cert.subject == c.subject && nodes[$0].cert.publicKey.spki == c.publicKey.spki }
        }
        func rank(_ i: Int) -> Int { (nodes[i].isAnchor ? 0 : 2) + (nodes[i].isCurrent ? 0 : 1) }
        return (0..<4).flatMap { r in matching.filter { rank($0) == r } }
    }

    /// Whether `issuer`'s key signed `subject`, each pair checked once per build; every call
    /// counts against the work bound.
    mutating func verifies(_ issuer: Int, _ subject: Int) throws(TLSError) -> Bool {
        tried += 1
        guard tried <= X509CertificateVerifier.maxIssuerCandidates else {
            throw .rejected(
                .other("path building limit exceeded"),
                "gave up on \(nodes[0].cert.subject) after \(X509CertificateVerifier.maxIssuerCandidates) candidate issuers (\(nodes.count) certificates)")
        }
        let edge = Edge(issuer: issuer, subject: subject)
        if let known = signatures[edge] { return known }
        let result = nodes[subject].cert.isSigned(by: nodes[issuer].cert)
        signatures[edge] = result
        return result
    }

    /// Why no path exists: a bad signature when every branch ended at signatures that did not
    /// verify, an unknown issuer otherwise.
    var failure: TLSError {
        if deadEnd == nil, let cert = unsigned {
            return .rejected(.badSignature, "the \(cert.signatureAlgorithmName) signature on \(cert.subject) does not verify")
        }
        return .rejected(.unknownIssuer, "no trusted root for issuer \((deadEnd ?? nodes[0].cert).issuer)")
    }
}
