import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

// OCSP (RFC 6960): responses and their verification (requests are in OCSPRequest.swift, a
// responder's signing in OCSPResponseWriter.swift). Q-SSL parses these itself (swift-certificates
// keeps its OCSP types internal) so that responses signed with ML-DSA or composite keys verify
// like any other.

public enum OCSPOID {
    public static let basicResponse = ASN1ObjectIdentifier("1.3.6.1.5.5.7.48.1.1")
    public static let nonce = ASN1ObjectIdentifier("1.3.6.1.5.5.7.48.1.2")
    public static let sha1 = ASN1ObjectIdentifier("1.3.14.3.2.26")
    public static let sha256 = ASN1ObjectIdentifier("2.16.840.1.101.3.4.2.1")
    /// id-kp-OCSPSigning: a delegated responder's EKU.
    public static let ocspSigning = ASN1ObjectIdentifier("1.3.6.1.5.5.7.3.9")
}

/// RFC 6960 §4.1.1 CertID: which certificate a request or response is about.
public struct OCSPCertID: Sendable, Hashable {
    public var hashAlgorithm: ASN1ObjectIdentifier
    public var issuerNameHash: [UInt8]
    public var issuerKeyHash: [UInt8]
    public var serialNumber: [UInt8]

    /// The CertID of `certificate` issued by `issuer`, with SHA-1 (what OpenSSL and most responders use).
    public init(certificate: X509Certificate, issuer: X509Certificate, hash: ASN1ObjectIdentifier = OCSPOID.sha1) throws {
        hashAlgorithm = hash
        guard let name = issuer.subjectDER else { throw OCSPError("the issuer's name does not encode") }
        let keyBits = try OCSPCertID.subjectPublicKeyBits(issuer)
        issuerNameHash = try Self.digest(hash, name)
        issuerKeyHash = try Self.digest(hash, keyBits)
        serialNumber = certificate.serialNumber
    }

    init(hashAlgorithm: ASN1ObjectIdentifier, issuerNameHash: [UInt8], issuerKeyHash: [UInt8], serialNumber: [UInt8]) {
        self.hashAlgorithm = hashAlgorithm
        self.issuerNameHash = issuerNameHash
        self.issuerKeyHash = issuerKeyHash
        self.serialNumber = serialNumber
    }

    static func digest(_ oid: ASN1ObjectIdentifier, _ data: [UInt8]) throws -> [UInt8] {
        switch oid {
        case OCSPOID.sha1: return Array(Insecure.SHA1.hash(data: data))
        case OCSPOID.sha256: return Array(SHA256.hash(data: data))
        default: throw OCSPError("CertID hash algorithm \(oid) is not supported")
        }
    }

    /// The subjectPublicKey BIT STRING's contents (RFC 6960: issuerKeyHash is over them).
    static func subjectPublicKeyBits(_ cert: X509Certificate) throws -> [UInt8] {
        var bits: [UInt8] = []
        try DER.sequence(try DER.parse(cert.publicKey.spki), identifier: .sequence) { nodes in
            _ = nodes.next()
            bits = Array(try ASN1BitString(derEncoded: &nodes).bytes)
        }
        return bits
    }

    static func parse(_ node: ASN1Node) throws -> OCSPCertID {
        try DER.sequence(node, identifier: .sequence) { f in
            guard let algorithm = f.next() else { throw ASN1Error.invalidASN1Object(reason: "CertID without hashAlgorithm") }
            let (oid, _) = try X509PublicKey.algorithmIdentifier(algorithm)
            let nameHash = try ASN1OctetString(derEncoded: &f)
            let keyHash = try ASN1OctetString(derEncoded: &f)
            guard let serialNode = f.next() else { throw ASN1Error.invalidASN1Object(reason: "CertID without serialNumber") }
            let serial = try X509Certificate.TBSFields.serialNumber(serialNode)
            return OCSPCertID(hashAlgorithm: oid, issuerNameHash: Array(nameHash.bytes), issuerKeyHash: Array(keyHash.bytes), serialNumber: serial)
        }
    }

    func serialize(_ s: inout DER.Serializer) throws {
        try s.appendConstructedNode(identifier: .sequence) { c in
            try c.appendConstructedNode(identifier: .sequence) { a in
                try a.serialize(hashAlgorithm)
                try a.serialize(ASN1Null())
            }
            try c.serialize(ASN1OctetString(contentBytes: issuerNameHash[...]))
            try c.serialize(ASN1OctetString(contentBytes: issuerKeyHash[...]))
            try c.serialize(ArraySlice(serialNumber))
        }
    }
}

public struct OCSPError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "OCSP: \(reason)" }
}

/// A certificate's status in a response.
///
/// Closed on purpose: RFC 6960 §4.2.1's CertStatus is a CHOICE of exactly these three, so a
/// switch over them is meant to be exhaustive.
public enum OCSPCertStatus: Sendable, Hashable {
    case good
    case revoked(at: Date, reason: CertificateRevocationList.RevocationReason?)
    case unknown
}

/// RFC 6960 §4.2.1: an OCSPResponse with its BasicOCSPResponse.
public struct OCSPResponse: Sendable {
    public let der: [UInt8]
    /// 0 successful, 1 malformedRequest, 2 internalError, 3 tryLater, 5 sigRequired, 6 unauthorized.
    public let status: Int
    public let basic: Basic?

    public struct Single: Sendable, Hashable {
        public let certID: OCSPCertID
        public let status: OCSPCertStatus
        public let thisUpdate: Date
        public let nextUpdate: Date?
    }

    public struct Basic: Sendable {
        let tbs: ArraySlice<UInt8>
        let signatureAlgorithm: ASN1ObjectIdentifier
        let signature: [UInt8]
        public let certificates: [X509Certificate]
        public let responderName: [UInt8]?
        public let responderKeyHash: [UInt8]?
        public let producedAt: Date
        public let responses: [Single]
        public let nonce: [UInt8]?
    }

    public init(der: [UInt8]) throws {
        self.der = der
        var status = 0
        var basicBytes: [UInt8]?
        do {
            try DER.sequence(try DER.parse(der), identifier: .sequence) { f in
                guard let statusNode = f.next() else { throw ASN1Error.invalidASN1Object(reason: "no responseStatus") }
                status = try Int(derEncoded: statusNode, withIdentifier: .enumerated)
                if let bytesNode = f.next() {
                    try DER.explicitlyTagged(bytesNode, tagNumber: 0, tagClass: .contextSpecific) { inner in
                        try DER.sequence(inner, identifier: .sequence) { rb in
                            let type = try ASN1ObjectIdentifier(derEncoded: &rb)
                            guard type == OCSPOID.basicResponse else { throw ASN1Error.invalidASN1Object(reason: "response type \(type)") }
                            basicBytes = Array(try ASN1OctetString(derEncoded: &rb).bytes)
                            guard rb.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing ResponseBytes fields") }
                        }
                    }
                }
                guard f.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing OCSPResponse fields") }
            }
            self.status = status
            self.basic = try basicBytes.map(Self.parseBasic)
        } catch let error as OCSPError {
            throw error
        } catch {
            throw OCSPError("malformed response: \(error)")
        }
        if status == 0 && basic == nil { throw OCSPError("a successful response without a BasicOCSPResponse") }
    }

    static func parseBasic(_ bytes: [UInt8]) throws -> Basic {
        var result: Basic?
        try DER.sequence(try DER.parse(bytes), identifier: .sequence) { f in
            guard let tbsNode = f.next(), let algorithmNode = f.next() else { throw ASN1Error.invalidASN1Object(reason: "short BasicOCSPResponse") }
            let (algorithm, _) = try X509PublicKey.algorithmIdentifier(algorithmNode)
            let signature = Array(try ASN1BitString(derEncoded: &f).bytes)
            var certificates: [X509Certificate] = []
            if let certsNode = f.next() {
                try DER.explicitlyTagged(certsNode, tagNumber: 0, tagClass: .contextSpecific) { inner in
                    try DER.sequence(inner, identifier: .sequence) { list in
                        while let c = list.next() {
                            do { certificates.append(try X509Certificate(der: Array(c.encodedBytes))) } catch {
                                throw ASN1Error.invalidASN1Object(reason: "a responder certificate: \(error)")
                            }
                        }
                    }
                }
            }
            guard f.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing BasicOCSPResponse fields") }

            var name: [UInt8]?
            var keyHash: [UInt8]?
            var producedAt = Date.distantPast
            var responses: [Single] = []
            var nonce: [UInt8]?
            try DER.sequence(tbsNode, identifier: .sequence) { d in
                var node = d.next()
                if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    let version = try DER.explicitlyTagged(n, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    guard version == 0 else { throw ASN1Error.invalidASN1Object(reason: "ResponseData version \(version)") }
                    node = d.next()
                }
                guard let responder = node else { throw ASN1Error.invalidASN1Object(reason: "no responderID") }
                if responder.identifier == ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) {
                    name = try DER.explicitlyTagged(responder, tagNumber: 1, tagClass: .contextSpecific) { Array($0.encodedBytes) }
                } else {
                    keyHash = try DER.explicitlyTagged(responder, tagNumber: 2, tagClass: .contextSpecific) { Array(try ASN1OctetString(derEncoded: $0).bytes) }
                }
                guard let produced = d.next() else { throw ASN1Error.invalidASN1Object(reason: "no producedAt") }
                producedAt = try X509Time.date(produced)
                guard let list = d.next() else { throw ASN1Error.invalidASN1Object(reason: "no responses") }
                try DER.sequence(list, identifier: .sequence) { items in
                    while let item = items.next() { responses.append(try parseSingle(item)) }
                }
                if let extNode = d.next() {
                    let inner = try DER.explicitlyTagged(extNode, tagNumber: 1, tagClass: .contextSpecific) { $0 }
                    for ext in try CertificateRevocationList.extensions(inner) {
                        if ext.oid == OCSPOID.nonce {
                            nonce = Array(try ASN1OctetString(derEncoded: ext.value).bytes)
                        } else if ext.critical {
                            throw ASN1Error.invalidASN1Object(reason: "unknown critical response extension \(ext.oid)")
                        }
                    }
                }
                guard d.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing ResponseData fields") }
            }
            result = Basic(
                tbs: tbsNode.encodedBytes, signatureAlgorithm: algorithm, signature: signature, certificates: certificates,
                responderName: name, responderKeyHash: keyHash, producedAt: producedAt, responses: responses, nonce: nonce)
        }
        guard let result else { throw ASN1Error.invalidASN1Object(reason: "empty BasicOCSPResponse") }
        return result
    }

    static func parseSingle(_ node: ASN1Node) throws -> Single {
        try DER.sequence(node, identifier: .sequence) { f in
            guard let idNode = f.next(), let statusNode = f.next(), let thisNode = f.next() else {
                throw ASN1Error.invalidASN1Object(reason: "short SingleResponse")
            }
            let certID = try OCSPCertID.parse(idNode)
            let status: OCSPCertStatus
            switch statusNode.identifier {
            case ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific): status = .good
            case ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific): status = .unknown
            case ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific):
                status = try DER.sequence(statusNode, identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { r in
                    guard let timeNode = r.next() else { throw ASN1Error.invalidASN1Object(reason: "RevokedInfo without time") }
                    let time = try X509Time.date(timeNode)
                    var reason: CertificateRevocationList.RevocationReason?
                    if let reasonNode = r.next() {
                        let value = try DER.explicitlyTagged(reasonNode, tagNumber: 0, tagClass: .contextSpecific) {
                            try Int(derEncoded: $0, withIdentifier: .enumerated)
                        }
                        reason = .init(rawValue: value)
                    }
                    return .revoked(at: time, reason: reason)
                }
            default: throw ASN1Error.invalidASN1Object(reason: "unknown CertStatus")
            }
            let thisUpdate = try X509Time.date(thisNode)
            var nextUpdate: Date?
            var node = f.next()
            if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                nextUpdate = try DER.explicitlyTagged(n, tagNumber: 0, tagClass: .contextSpecific) { try X509Time.date($0) }
                node = f.next()
            }
            if let n = node {
                let inner = try DER.explicitlyTagged(n, tagNumber: 1, tagClass: .contextSpecific) { $0 }
                for ext in try CertificateRevocationList.extensions(inner) where ext.critical {
                    throw ASN1Error.invalidASN1Object(reason: "unknown critical single extension \(ext.oid)")
                }
                node = f.next()
            }
            guard node == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing SingleResponse fields") }
            return Single(certID: certID, status: status, thisUpdate: thisUpdate, nextUpdate: nextUpdate)
        }
    }

    /// RFC 6960 §3.2 and §4.2.2.2: the status of `certificate`, after checking that the response
    /// was signed by its issuer or by a responder the issuer delegated (id-kp-OCSPSigning), is
    /// about it, and is fresh at `now` (with `skew` of clock tolerance); `nonce` must be echoed
    /// when given.
    public func status(
        of certificate: X509Certificate, issuer: X509Certificate, at now: Date, skew: TimeInterval = 300,
        nonce: [UInt8]? = nil
    ) throws -> OCSPCertStatus {
        guard status == 0, let basic else { throw OCSPError("the responder answered with status \(status)") }
        // The signer: the issuer itself, or a certificate in the response that the issuer signed for OCSP.
        var signer: X509Certificate?
        if issuer.publicKey.verifies(basic.signature, over: basic.tbs, algorithm: basic.signatureAlgorithm) {
            signer = issuer
        } else {
            for candidate in basic.certificates where candidate.isSigned(by: issuer) && Self.isDelegatedResponder(candidate, at: now) {
                if candidate.publicKey.verifies(basic.signature, over: basic.tbs, algorithm: basic.signatureAlgorithm) {
                    signer = candidate
                    break
                }
            }
        }
        guard signer != nil else { throw OCSPError("the response is not signed by the issuer or a responder it delegated") }
        if let nonce, basic.nonce != nonce { throw OCSPError("the response does not echo our nonce") }
        let wanted = try OCSPCertID(certificate: certificate, issuer: issuer)
        for single in basic.responses {
            let id = single.certID
            guard id.serialNumber == certificate.serialNumber else { continue }
            let expected = id.hashAlgorithm == wanted.hashAlgorithm ? wanted : try OCSPCertID(certificate: certificate, issuer: issuer, hash: id.hashAlgorithm)
            guard id == expected else { continue }
            guard single.thisUpdate <= now.addingTimeInterval(skew) else { throw OCSPError("the response is from the future (\(single.thisUpdate))") }
            if let next = single.nextUpdate {
                guard now <= next.addingTimeInterval(skew) else { throw OCSPError("the response expired at \(next)") }
            } else {
                // No nextUpdate: newer information is always available; accept only a recent one.
                guard now.timeIntervalSince(single.thisUpdate) <= 86400 else { throw OCSPError("a response without nextUpdate older than a day") }
            }
            return single.status
        }
        throw OCSPError("the response says nothing about serial \(hex(certificate.serialNumber))")
    }

    static func isDelegatedResponder(_ cert: X509Certificate, at now: Date) -> Bool {
        guard now >= cert.notBefore && now <= cert.notAfter else { return false }
        guard let eku = try? cert.extensions.extendedKeyUsage else { return false }
        // RFC 5280 §4.2.1.3: a key that signs anything but certificates and CRLs needs
        // digitalSignature in its keyUsage, when it has one.
        switch Result(catching: { try cert.extensions.keyUsage }) {
        case .success(let usage?) where !usage.digitalSignature: return false
        case .failure: return false
        default: break
        }
        return eku.contains(ExtendedKeyUsage.Usage(oid: OCSPOID.ocspSigning))
    }
}
