import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

/// An X.509 certificate revocation list (RFC 5280 §5), parsed by Q-SSL so that CRLs signed with
/// ML-DSA and composite keys verify like any other.
///
/// Scope: complete CRLs for the certificates their issuer signed. Delta CRLs, indirect CRLs and
/// CRLs whose issuing distribution point limits them to some certificates are refused when
/// loaded, with the reason, rather than half-honoured.
public struct CertificateRevocationList: Sendable, Hashable {
    public let der: [UInt8]
    let tbs: ArraySlice<UInt8>
    let signatureAlgorithm: ASN1ObjectIdentifier
    let signature: [UInt8]
    public let issuer: DistinguishedName
    public let thisUpdate: Date
    public let nextUpdate: Date?
    /// Revoked serial numbers (DER INTEGER contents, as in certificates) and their reasons.
    public let revoked: [[UInt8]: RevocationReason?]
    /// The cRLNumber extension, if present (big-endian bytes).
    public let number: [UInt8]?

    public static func == (a: CertificateRevocationList, b: CertificateRevocationList) -> Bool { a.der == b.der }
    public func hash(into h: inout Hasher) { h.combine(der) }

    /// Why a CRL cannot be used; loading fails with it.
    public struct LoadError: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "unusable CRL: \(reason)" }
    }

    /// RFC 5280 §5.3.1 CRLReason.
    public enum RevocationReason: Int, Sendable, Hashable, CaseIterable {
        case unspecified = 0
        case keyCompromise = 1
        case cACompromise = 2
        case affiliationChanged = 3
        case superseded = 4
        case
            cessationOfOperation = 5
        case certificateHold = 6
        case removeFromCRL = 8
        case privilegeWithdrawn = 9
        case aACompromise = 10

        public init?(name: String) {
            guard let r = Self.allCases.first(where: { "\($0)".lowercased() == name.lowercased() }) else { return nil }
            self = r
        }
    }

    static let cRLNumber = ASN1ObjectIdentifier("2.5.29.20")
    static let deltaCRLIndicator = ASN1ObjectIdentifier("2.5.29.27")
    static let issuingDistributionPoint = ASN1ObjectIdentifier("2.5.29.28")
    static let authorityKeyIdentifier = ASN1ObjectIdentifier("2.5.29.35")
    static let reasonCode = ASN1ObjectIdentifier("2.5.29.21")
    static let certificateIssuer = ASN1ObjectIdentifier("2.5.29.29")
    static let invalidityDate = ASN1ObjectIdentifier("2.5.29.24")

    /// Parses a DER CertificateList exactly; anything this verifier would not honour fully is a
    /// `LoadError` naming it.
    public init(der: [UInt8]) throws {
        self.der = der
        var parsed: (ArraySlice<UInt8>, ASN1ObjectIdentifier, ASN1ObjectIdentifier, [UInt8])?
        do {
            try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                guard let tbsNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no TBSCertList") }
                guard let algorithmNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no signatureAlgorithm") }
                let (outer, _) = try X509PublicKey.algorithmIdentifier(algorithmNode)
                let bits = try ASN1BitString(derEncoded: &nodes)
                guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing fields in CertificateList") }
                parsed = (tbsNode.encodedBytes, outer, outer, Array(bits.bytes))
            }
        } catch {
            throw LoadError(reason: "malformed CertificateList: \(error)")
        }
        guard let (tbs, outer, _, signature) = parsed else { throw LoadError(reason: "empty") }
        self.tbs = tbs
        self.signatureAlgorithm = outer
        self.signature = signature

        var issuer: DistinguishedName?
        var thisUpdate: Date?
        var nextUpdate: Date?
        var revoked: [[UInt8]: RevocationReason?] = [:]
        var number: [UInt8]?
        var innerAlgorithm: ASN1ObjectIdentifier?
        do {
            try DER.sequence(try DER.parse(tbs), identifier: .sequence) { nodes in
                var node = nodes.next()
                // version Version OPTIONAL — v2 (1) when extensions are present.
                if let n = node, n.identifier == .integer {
                    let version = try Int(derEncoded: n)
                    guard version == 1 else { throw ASN1Error.invalidASN1Object(reason: "CRL version \(version + 1)") }
                    node = nodes.next()
                }
                guard let algorithmNode = node else { throw ASN1Error.invalidASN1Object(reason: "no signature") }
                innerAlgorithm = try X509PublicKey.algorithmIdentifier(algorithmNode).0
                guard let issuerNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no issuer") }
                issuer = try DistinguishedName(derEncoded: issuerNode)
                guard let thisNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no thisUpdate") }
                thisUpdate = try X509Time.date(thisNode)
                node = nodes.next()
                if let n = node, n.identifier == UTCTime.defaultIdentifier || n.identifier == GeneralizedTime.defaultIdentifier {
                    nextUpdate = try X509Time.date(n)
                    node = nodes.next()
                }
                if let n = node, n.identifier == .sequence {
                    try DER.sequence(n, identifier: .sequence) { entries in
                        while let entry = entries.next() {
                            try DER.sequence(entry, identifier: .sequence) { fields in
                                guard let serialNode = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "revoked entry without serial") }
                                let serial = try X509Certificate.TBSFields.serialNumber(serialNode)
                                guard let dateNode = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "revoked entry without date") }
                                _ = try X509Time.date(dateNode)
                                var reason: RevocationReason?
                                if let extNode = fields.next() {
                                    for ext in try Self.extensions(extNode) {
                                        switch ext.oid {
                                        case Self.reasonCode:
                                            reason = RevocationReason(rawValue: try Int(derEncoded: ext.value, withIdentifier: .enumerated))
                                        case Self.certificateIssuer:
                                            throw ASN1Error.invalidASN1Object(reason: "indirect CRL entries (certificateIssuer) are not supported")
                                        case Self.invalidityDate:
                                            break
                                        default:
                                            if ext.critical { throw ASN1Error.invalidASN1Object(reason: "unknown critical CRL entry extension \(ext.oid)") }
                                        }
                                    }
                                }
                                guard fields.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing fields in a revoked entry") }
                                revoked[serial] = reason
                            }
                        }
                    }
                    node = nodes.next()
                }
                if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    let inner = try DER.explicitlyTagged(n, tagNumber: 0, tagClass: .contextSpecific) { $0 }
                    for ext in try Self.extensions(inner) {
                        switch ext.oid {
                        case Self.cRLNumber:
                            number = Array(try ArraySlice<UInt8>(derEncoded: ext.value))
                        case Self.deltaCRLIndicator:
                            throw ASN1Error.invalidASN1Object(reason: "delta CRLs are not supported; load the complete CRL")
                        case Self.issuingDistributionPoint:
                            throw ASN1Error.invalidASN1Object(reason: "CRLs scoped by an issuing distribution point are not supported")
                        case Self.authorityKeyIdentifier:
                            break
                        default:
                            if ext.critical { throw ASN1Error.invalidASN1Object(reason: "unknown critical CRL extension \(ext.oid)") }
                        }
                    }
                    node = nodes.next()
                }
                guard node == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in TBSCertList") }
            }
        } catch {
            throw LoadError(reason: "\(error)")
        }
        // RFC 5280 §5.1.1.2: the inner and outer algorithms must match.
        guard innerAlgorithm == outer else { throw LoadError(reason: "signature algorithm fields differ") }
        guard let issuer, let thisUpdate else { throw LoadError(reason: "incomplete TBSCertList") }
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.revoked = revoked
        self.number = number
    }

    struct RawExtension {
        let oid: ASN1ObjectIdentifier
        let critical: Bool
        let value: ASN1Node
    }

    /// Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension; duplicates are refused.
    static func extensions(_ node: ASN1Node) throws -> [RawExtension] {
        var out: [RawExtension] = []
        try DER.sequence(node, identifier: .sequence) { items in
            while let item = items.next() {
                try DER.sequence(item, identifier: .sequence) { f in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &f)
                    var next = f.next()
                    var critical = false
                    if let n = next, n.identifier == .boolean {
                        critical = try Bool(derEncoded: n)
                        guard critical else { throw ASN1Error.invalidASN1Object(reason: "critical FALSE encoded explicitly (DER)") }
                        next = f.next()
                    }
                    guard let octets = next else { throw ASN1Error.invalidASN1Object(reason: "extension without value") }
                    let bytes = try ASN1OctetString(derEncoded: octets)
                    guard f.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing fields in an extension") }
                    guard !out.contains(where: { $0.oid == oid }) else { throw ASN1Error.invalidASN1Object(reason: "duplicate extension \(oid)") }
                    out.append(RawExtension(oid: oid, critical: critical, value: try DER.parse(bytes.bytes)))
                }
            }
        }
        return out
    }

    /// Whether `issuer`'s key signed this CRL (and the CRL names it as issuer).
    public func isSigned(by issuer: X509Certificate) -> Bool {
        self.issuer == issuer.subject && issuer.publicKey.verifies(signature, over: tbs, algorithm: signatureAlgorithm)
    }

    public func isRevoked(serial: [UInt8]) -> Bool { revoked[serial] != nil }

    /// The largest CRL file `load` reads (a large public CA's CRL is tens of megabytes).
    public static let maximumFileSize = 256 << 20

    /// Loads every CRL of a file: PEM (`X509 CRL` blocks) or one DER CRL. The file is read as
    /// certificate files are: a FIFO without a writer never blocks, and at most `maximumFileSize`.
    public static func load(path: String, maximumSize: Int = maximumFileSize) throws -> [CertificateRevocationList] {
        let data = try CertificateFiles.readFile(atPath: path, what: "CRL file", maximumSize: maximumSize)
        if let text = String(bytes: data, encoding: .utf8), text.contains("-----BEGIN") {
            let documents = try PEMDocument.parseMultiple(pemString: text)
            let crls = try documents.filter { $0.discriminator == "X509 CRL" }.map { try CertificateRevocationList(der: $0.derBytes) }
            guard !crls.isEmpty else { throw LoadError(reason: "\(path) has no X509 CRL block") }
            return crls
        }
        return [try CertificateRevocationList(der: data)]
    }

    public var pem: String { PEMDocument(type: "X509 CRL", derBytes: der).pemString + "\n" }
}

/// Builds and signs v2 CRLs (`qssl cert crl`).
public enum CRLWriter {
    public struct Entry: Sendable {
        public var serial: [UInt8]
        public var revocationDate: Date
        public var reason: CertificateRevocationList.RevocationReason?
        public init(serial: [UInt8], revocationDate: Date, reason: CertificateRevocationList.RevocationReason?) {
            self.serial = serial
            self.revocationDate = revocationDate
            self.reason = reason
        }
    }

    public static func issue(
        by issuer: PKIBuilder.Issuer, entries: [Entry], number: UInt64, thisUpdate: Date = Date(),
        nextUpdate: Date
    ) throws -> CertificateRevocationList {
        let algorithm = issuer.key.certificateSignatureAlgorithm
        var t = DER.Serializer()
        try t.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(1)  // v2
            try CertificateWriter.writeAlgorithm(&s, algorithm)
            try s.serialize(issuer.certificate.subject)
            try CertificateWriter.writeTime(&s, thisUpdate)
            try CertificateWriter.writeTime(&s, nextUpdate)
            if !entries.isEmpty {
                try s.appendConstructedNode(identifier: .sequence) { list in
                    for entry in entries {
                        try list.appendConstructedNode(identifier: .sequence) { e in
                            try e.serialize(ArraySlice(entry.serial))
                            try CertificateWriter.writeTime(&e, entry.revocationDate)
                            if let reason = entry.reason {
                                try e.appendConstructedNode(identifier: .sequence) { exts in
                                    try writeExtension(&exts, CertificateRevocationList.reasonCode) { v in
                                        v.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(reason.rawValue)) }  // 0…10: one octet
                                    }
                                }
                            }
                        }
                    }
                }
            }
            try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { ctx in
                try ctx.appendConstructedNode(identifier: .sequence) { exts in
                    try writeExtension(&exts, CertificateRevocationList.cRLNumber) { v in try v.serialize(Int(number)) }
                    let aki = try PKIBuilder.keyIdentifierBytes(issuer.certificate.publicKey.spki)
                    try writeExtension(&exts, CertificateRevocationList.authorityKeyIdentifier) { v in
                        try v.appendConstructedNode(identifier: .sequence) { seq in
                            seq.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { $0.append(contentsOf: aki) }
                        }
                    }
                }
            }
        }
        let tbs = t.serializedBytes
        let (oid, signature) = try issuer.key.signCertificate(tbs)
        guard oid == algorithm else { throw CertificateRevocationList.LoadError(reason: "the key changed algorithm while signing") }
        var c = DER.Serializer()
        try c.appendConstructedNode(identifier: .sequence) { s in
            s.serializeRawBytes(tbs)
            try CertificateWriter.writeAlgorithm(&s, algorithm)
            try s.serialize(ASN1BitString(bytes: signature[...]))
        }
        return try CertificateRevocationList(der: c.serializedBytes)
    }

    static func writeExtension(_ s: inout DER.Serializer, _ oid: ASN1ObjectIdentifier, value: (inout DER.Serializer) throws -> Void) throws {
        try s.appendConstructedNode(identifier: .sequence) { e in
            try e.serialize(oid)
            var inner = DER.Serializer()
            try value(&inner)
            try e.serialize(ASN1OctetString(contentBytes: inner.serializedBytes[...]))
        }
    }
}
