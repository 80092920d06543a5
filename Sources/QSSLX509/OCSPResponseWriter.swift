import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import X509

// OCSP response signing (a CA's responder).

/// Signs OCSP responses as a CA (the responder of `qssl ocsp-responder`).
public enum OCSPResponseWriter {
    /// A response without a body: malformedRequest (1), internalError (2), tryLater (3), unauthorized (6).
    public static func error(_ status: Int) -> [UInt8] {
        var s = DER.Serializer()
        s.appendConstructedNode(identifier: .sequence) { r in
            r.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(status)) }
        }
        return s.serializedBytes
    }

    /// A successful response for one certificate, signed by `signer` (the CA, or a delegated
    /// responder whose certificate goes in `including`).
    public static func response(
        certID: OCSPCertID, status: OCSPCertStatus, signer: PKIBuilder.Issuer, nonce: [UInt8]?,
        thisUpdate: Date = Date(), nextUpdate: Date, including certificates: [X509Certificate] = []
    ) throws -> [UInt8] {
        let algorithm = signer.key.certificateSignatureAlgorithm
        var t = DER.Serializer()
        try t.appendConstructedNode(identifier: .sequence) { d in
            let keyHash = try PKIBuilder.keyIdentifierBytes(signer.certificate.publicKey.spki)
            try d.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { try $0.serialize(ASN1OctetString(contentBytes: keyHash[...])) }
            try d.serialize(GeneralizedTime(thisUpdate))
            try d.appendConstructedNode(identifier: .sequence) { list in
                try list.appendConstructedNode(identifier: .sequence) { one in
                    try certID.serialize(&one)
                    switch status {
                    case .good: one.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { _ in }
                    case .unknown: one.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)) { _ in }
                    case .revoked(let at, let reason):
                        try one.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { r in
                            try r.serialize(GeneralizedTime(at))
                            if let reason {
                                try r.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { e in
                                    e.appendPrimitiveNode(identifier: .enumerated) { $0.append(UInt8(reason.rawValue)) }
                                }
                            }
                        }
                    }
                    try one.serialize(GeneralizedTime(thisUpdate))
                    try one.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { try $0.serialize(GeneralizedTime(nextUpdate)) }
                }
            }
            if let nonce {
                try d.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { x in
                    try x.appendConstructedNode(identifier: .sequence) { exts in
                        try CRLWriter.writeExtension(&exts, OCSPOID.nonce) { v in try v.serialize(ASN1OctetString(contentBytes: nonce[...])) }
                    }
                }
            }
        }
        let tbs = t.serializedBytes
        let (_, signature) = try signer.key.signCertificate(tbs)
        var basic = DER.Serializer()
        try basic.appendConstructedNode(identifier: .sequence) { b in
            b.serializeRawBytes(tbs)
            try CertificateWriter.writeAlgorithm(&b, algorithm)
            try b.serialize(ASN1BitString(bytes: signature[...]))
            if !certificates.isEmpty {
                try b.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { x in
                    try x.appendConstructedNode(identifier: .sequence) { list in
                        for c in certificates { list.serializeRawBytes(c.der) }
                    }
                }
            }
        }
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { r in
            r.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }
            try r.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { x in
                try x.appendConstructedNode(identifier: .sequence) { rb in
                    try rb.serialize(OCSPOID.basicResponse)
                    try rb.serialize(ASN1OctetString(contentBytes: basic.serializedBytes[...]))
                }
            }
        }
        return s.serializedBytes
    }
}

extension GeneralizedTime {
    init(_ date: Date) throws {
        let t = X509Time.components(date)
        try self.init(year: t.year, month: t.month, day: t.day, hours: t.hours, minutes: t.minutes, seconds: t.seconds, fractionalSeconds: 0)
    }
}
