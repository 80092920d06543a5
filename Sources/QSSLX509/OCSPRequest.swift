import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

// OCSP requests (RFC 6960 §4.1) and where a certificate's status is asked.

/// RFC 6960 §4.1: a request for one certificate, with a nonce.
public struct OCSPRequest: Sendable {
    public var certID: OCSPCertID
    public var nonce: [UInt8]?

    public init(certID: OCSPCertID, nonce: [UInt8]?) {
        self.certID = certID
        self.nonce = nonce
    }

    public func der() throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { r in
            try r.appendConstructedNode(identifier: .sequence) { tbs in
                try tbs.appendConstructedNode(identifier: .sequence) { list in
                    try list.appendConstructedNode(identifier: .sequence) { one in try certID.serialize(&one) }
                }
                if let nonce {
                    try tbs.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { x in
                        try x.appendConstructedNode(identifier: .sequence) { exts in
                            try CRLWriter.writeExtension(&exts, OCSPOID.nonce) { v in try v.serialize(ASN1OctetString(contentBytes: nonce[...])) }
                        }
                    }
                }
            }
        }
        return s.serializedBytes
    }

    /// Parses a request (the responder's side): its first CertID and nonce.
    public init(der: [UInt8]) throws {
        var certID: OCSPCertID?
        var nonce: [UInt8]?
        do {
            try DER.sequence(try DER.parse(der), identifier: .sequence) { r in
                guard let tbs = r.next() else { throw ASN1Error.invalidASN1Object(reason: "no TBSRequest") }
                try DER.sequence(tbs, identifier: .sequence) { t in
                    var node = t.next()
                    if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) { node = t.next() }
                    if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) { node = t.next() }
                    guard let list = node else { throw ASN1Error.invalidASN1Object(reason: "no requestList") }
                    try DER.sequence(list, identifier: .sequence) { items in
                        guard let first = items.next() else { throw ASN1Error.invalidASN1Object(reason: "empty requestList") }
                        try DER.sequence(first, identifier: .sequence) { one in
                            guard let id = one.next() else { throw ASN1Error.invalidASN1Object(reason: "Request without CertID") }
                            certID = try OCSPCertID.parse(id)
                            _ = one.next()
                        }
                        while items.next() != nil {}
                    }
                    if let extNode = t.next() {
                        let inner = try DER.explicitlyTagged(extNode, tagNumber: 2, tagClass: .contextSpecific) { $0 }
                        for ext in try CertificateRevocationList.extensions(inner) where ext.oid == OCSPOID.nonce {
                            nonce = Array(try ASN1OctetString(derEncoded: ext.value).bytes)
                        }
                    }
                }
            }
        } catch {
            throw OCSPError("malformed request: \(error)")
        }
        guard let certID else { throw OCSPError("malformed request") }
        // RFC 8954 §2.1: a nonce is 1 to 32 octets; a responder does not sign back anything longer.
        if let nonce, nonce.isEmpty || nonce.count > 32 { throw OCSPError("nonce of \(nonce.count) octets (1 to 32 allowed)") }
        self.certID = certID
        self.nonce = nonce
    }
}

extension X509Certificate {
    /// The first OCSP responder URI of the authority information access extension (RFC 5280
    /// §4.2.2.1), where this certificate's status is asked.
    public var ocspResponderURL: String? {
        guard let aia = try? extensions.authorityInformationAccess else { return nil }
        for description in aia where description.method == .ocspServer {
            if case .uniformResourceIdentifier(let url) = description.location { return url }
        }
        return nil
    }
}
