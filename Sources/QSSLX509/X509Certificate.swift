import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import X509

/// An X.509 certificate parsed by Q-SSL itself (RFC 5280 §4.1), so that ML-DSA and composite
/// keys and signatures, which swift-certificates cannot parse, are first-class. Extension
/// values reuse swift-certificates' public types.
public struct X509Certificate: Sendable, Hashable {
    public let der: [UInt8]
    let tbs: ArraySlice<UInt8>
    public let signatureAlgorithm: ASN1ObjectIdentifier
    let signature: [UInt8]
    public let serialNumber: [UInt8]
    public let issuer: DistinguishedName
    public let subject: DistinguishedName
    public let notBefore: Date
    public let notAfter: Date
    public let publicKey: X509PublicKey
    public let extensions: Certificate.Extensions

    public static func == (a: X509Certificate, b: X509Certificate) -> Bool { a.der == b.der }
    public func hash(into h: inout Hasher) { h.combine(der) }

    /// Parses DER exactly as RFC 5280 §4.1 lays the structure out; any structural problem is
    /// `bad_certificate` with the reason.
    public init(der: [UInt8]) throws(TLSError) {
        self.der = der
        do {
            // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
            let root = try DER.parse(der)
            var parsed: (ArraySlice<UInt8>, ASN1ObjectIdentifier, ArraySlice<UInt8>, [UInt8])!
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbsNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no TBSCertificate") }
                guard let algorithmNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no signatureAlgorithm") }
                let (oid, _) = try X509PublicKey.algorithmIdentifier(algorithmNode)
                let bits = try ASN1BitString(derEncoded: &nodes)
                parsed = (tbsNode.encodedBytes, oid, algorithmNode.encodedBytes, Array(bits.bytes))
            }
            let outerAlgorithm: ArraySlice<UInt8>
            (tbs, signatureAlgorithm, outerAlgorithm, signature) = parsed
            let fields = try TBSFields(tbs)
            // RFC 5280 §4.1.1.2: the two AlgorithmIdentifiers must be identical, parameters included.
            guard fields.innerAlgorithm == outerAlgorithm else {
                throw ASN1Error.invalidASN1Object(reason: "the signature AlgorithmIdentifiers of the certificate and the TBSCertificate differ")
            }
            serialNumber = fields.serial
            issuer = fields.issuer
            subject = fields.subject
            notBefore = fields.notBefore
            notAfter = fields.notAfter
            publicKey = try X509PublicKey(spki: fields.spki)
            extensions = try Certificate.Extensions(fields.extensions)  // rejects duplicate OIDs
        } catch let error as TLSError {
            throw error
        } catch {
            throw .rejected(.malformed, "certificate does not parse: \(error)")
        }
    }

    /// TBSCertificate ::= SEQUENCE {
    ///     version         [0]  EXPLICIT Version DEFAULT v1,
    ///     serialNumber         CertificateSerialNumber,
    ///     signature            AlgorithmIdentifier,
    ///     issuer               Name,
    ///     validity             Validity,
    ///     subject              Name,
    ///     subjectPublicKeyInfo SubjectPublicKeyInfo,
    ///     issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,  -- v2 or v3
    ///     subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,  -- v2 or v3
    ///     extensions      [3]  EXPLICIT Extensions OPTIONAL }       -- v3
    /// Each element in its place, each at most once, nothing else.
    struct TBSFields {
        var serial: [UInt8]
        var innerAlgorithm: ArraySlice<UInt8>
        var issuer: DistinguishedName
        var notBefore: Date
        var notAfter: Date
        var subject: DistinguishedName
        var spki: ASN1Node
        var extensions: [Certificate.Extension]

        init(_ tbs: ArraySlice<UInt8>) throws {
            var result: TBSFields!
            try DER.sequence(try DER.parse(tbs), identifier: .sequence) { nodes in
                var node = nodes.next()
                // Version ::= INTEGER { v1(0), v2(1), v3(2) }; DER omits the default, so an explicit v1 is invalid.
                var version = 0
                if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    version = try DER.explicitlyTagged(n, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    guard version == 1 || version == 2 else {
                        throw ASN1Error.invalidASN1Object(
                            reason: version == 0 ? "v1 encoded explicitly (DER omits the default)" : "unknown certificate version \(version)")
                    }
                    node = nodes.next()
                }
                // CertificateSerialNumber ::= INTEGER, positive, at most 20 octets (RFC 5280 §4.1.2.2).
                guard let serialNode = node else { throw ASN1Error.invalidASN1Object(reason: "no serialNumber") }
                let serial = try TBSFields.serialNumber(serialNode)
                guard let algorithmNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no signature AlgorithmIdentifier") }
                _ = try X509PublicKey.algorithmIdentifier(algorithmNode)
                let issuer = try DistinguishedName(derEncoded: &nodes)
                guard let validity = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no validity") }
                let (nb, na) = try DER.sequence(validity, identifier: .sequence) { v in
                    guard let a = v.next(), let b = v.next() else { throw ASN1Error.invalidASN1Object(reason: "validity") }
                    return (try X509Time.date(a), try X509Time.date(b))
                }
                let subject = try DistinguishedName(derEncoded: &nodes)
                guard let spki = nodes.next(), spki.identifier == .sequence else {
                    throw ASN1Error.invalidASN1Object(reason: "no subjectPublicKeyInfo")
                }
                node = nodes.next()
                for tag in [1, 2] {
                    guard let n = node, n.identifier == ASN1Identifier(tagWithNumber: UInt(tag), tagClass: .contextSpecific) else { continue }
                    guard version >= 1 else { throw ASN1Error.invalidASN1Object(reason: "unique identifiers in a v1 certificate") }
                    _ = try ASN1BitString(derEncoded: n, withIdentifier: n.identifier)
                    node = nodes.next()
                }
                var extensions: [Certificate.Extension] = []
                if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) {
                    guard version == 2 else { throw ASN1Error.invalidASN1Object(reason: "extensions in a v\(version + 1) certificate") }
                    extensions = try DER.explicitlyTagged(n, tagNumber: 3, tagClass: .contextSpecific) { seq in
                        try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: seq)
                    }
                    // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
                    guard !extensions.isEmpty else { throw ASN1Error.invalidASN1Object(reason: "empty extensions") }
                    node = nodes.next()
                }
                if let n = node { throw ASN1Error.invalidASN1Object(reason: "unexpected element \(n.identifier) in TBSCertificate") }
                result = TBSFields(
                    serial: serial, innerAlgorithm: algorithmNode.encodedBytes, issuer: issuer, notBefore: nb, notAfter: na,
                    subject: subject, spki: spki, extensions: extensions)
            }
            self = result
        }

        init(
            serial: [UInt8], innerAlgorithm: ArraySlice<UInt8>, issuer: DistinguishedName, notBefore: Date, notAfter: Date,
            subject: DistinguishedName, spki: ASN1Node, extensions: [Certificate.Extension]
        ) {
            self.serial = serial
            self.innerAlgorithm = innerAlgorithm
            self.issuer = issuer
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.subject = subject
            self.spki = spki
            self.extensions = extensions
        }

        /// The serial's magnitude, big-endian without the sign octet.
        static func serialNumber(_ node: ASN1Node) throws -> [UInt8] {
            guard node.identifier == .integer, case .primitive(let content) = node.content, let first = content.first else {
                throw ASN1Error.invalidASN1Object(reason: "serialNumber is not an INTEGER")
            }
            guard first & 0x80 == 0 else { throw ASN1Error.invalidASN1Object(reason: "negative serialNumber") }
            let magnitude = try ArraySlice<UInt8>(derEncoded: node)  // checks the minimal encoding
            guard magnitude.contains(where: { $0 != 0 }) else { throw ASN1Error.invalidASN1Object(reason: "serialNumber is zero") }
            guard magnitude.count <= 20 else { throw ASN1Error.invalidASN1Object(reason: "serialNumber longer than 20 octets") }
            return Array(magnitude)
        }
    }

    /// Whether `issuer`'s key signed this certificate.
    public func isSigned(by issuer: X509Certificate) -> Bool {
        issuer.publicKey.verifies(signature, over: tbs, algorithm: signatureAlgorithm)
    }

    public var signatureAlgorithmName: String { X509OID.name(signatureAlgorithm) }

    /// The TLS scheme naming this certificate's signature algorithm (signature_algorithms_cert).
    public var signatureScheme: SignatureScheme? {
        switch signatureAlgorithm {
        case X509OID.ecdsaWithSHA256: return .ecdsaSecp256r1SHA256
        case X509OID.ecdsaWithSHA384: return .ecdsaSecp384r1SHA384
        case X509OID.ed25519: return .ed25519
        case X509OID.sha256WithRSAEncryption: return .rsaPKCS1SHA256
        case X509OID.sha384WithRSAEncryption: return .rsaPKCS1SHA384
        case X509OID.sha512WithRSAEncryption: return .rsaPKCS1SHA512
        case X509OID.mldsa44: return .mldsa44
        case X509OID.mldsa65: return .mldsa65
        case X509OID.mldsa87: return .mldsa87
        case X509OID.mldsa65ECDSAP384SHA512: return .qsslMLDSA65ECDSASecp384r1SHA512
        default: return nil
        }
    }
}

enum X509Time {
    /// Time ::= UTCTime | GeneralizedTime (RFC 5280 §4.1.2.5).
    static func date(_ node: ASN1Node) throws -> Date {
        if node.identifier == UTCTime.defaultIdentifier {
            let t = try UTCTime(derEncoded: node)
            return date(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
        }
        let t = try GeneralizedTime(derEncoded: node)
        return date(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
    }

    /// The civil calendar fields (proleptic Gregorian, UTC) of a date, the inverse of `date(…)`.
    static func components(_ date: Date) -> (year: Int, month: Int, day: Int, hours: Int, minutes: Int, seconds: Int) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        var days = seconds / 86400
        var rem = seconds % 86400
        if rem < 0 {
            rem += 86400
            days -= 1
        }
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Days from the civil calendar (proleptic Gregorian, UTC) without Calendar's overhead.
    static func date(_ y: Int, _ m: Int, _ d: Int, _ h: Int, _ min: Int, _ s: Int) -> Date {
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + h * 3600 + min * 60 + s))
    }
}

/// Builds and signs v3 certificates for any Q-SSL key, PQ and composite included.
enum CertificateWriter {
    static func issue(
        serial: [UInt8], issuer: DistinguishedName, subject: DistinguishedName, notBefore: Date, notAfter: Date,
        subjectKey: SwiftCryptoSigningKey, extensions: Certificate.Extensions, issuerKey: SwiftCryptoSigningKey
    ) throws -> X509Certificate {
        try issue(
            serial: serial, issuer: issuer, subject: subject, notBefore: notBefore, notAfter: notAfter,
            subjectPublicKeyInfo: try subjectKey.subjectPublicKeyInfo(), extensions: extensions, signer: try CertificateSigner(issuerKey))
    }

    static func issue(
        serial: [UInt8], issuer: DistinguishedName, subject: DistinguishedName, notBefore: Date, notAfter: Date,
        subjectPublicKeyInfo: [UInt8], extensions: Certificate.Extensions, signer: CertificateSigner
    ) throws -> X509Certificate {
        let algorithm = signer.algorithm
        var t = DER.Serializer()
        try t.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(2, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
            try s.serialize(ArraySlice(serial))
            try writeAlgorithm(&s, algorithm)
            try s.serialize(issuer)
            try s.appendConstructedNode(identifier: .sequence) { v in
                try writeTime(&v, notBefore)
                try writeTime(&v, notAfter)
            }
            try s.serialize(subject)
            s.serializeRawBytes(subjectPublicKeyInfo)
            try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific)) { e in
                try e.serializeSequenceOf(extensions)
            }
        }
        let tbs = t.serializedBytes
        let signature = try signer.sign(tbs)
        var c = DER.Serializer()
        try c.appendConstructedNode(identifier: .sequence) { s in
            s.serializeRawBytes(tbs)
            try writeAlgorithm(&s, algorithm)
            try s.serialize(ASN1BitString(bytes: signature[...]))
        }
        return try X509Certificate(der: c.serializedBytes)
    }

    /// RFC 5280 §4.1.1.2; RSA PKCS#1 v1.5 carries NULL parameters, the others none.
    static func writeAlgorithm(_ s: inout DER.Serializer, _ oid: ASN1ObjectIdentifier) throws {
        try s.appendConstructedNode(identifier: .sequence) { a in
            try a.serialize(oid)
            if [X509OID.sha256WithRSAEncryption, X509OID.sha384WithRSAEncryption, X509OID.sha512WithRSAEncryption].contains(oid) {
                try a.serialize(ASN1Null())
            }
        }
    }

    /// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after.
    static func writeTime(_ s: inout DER.Serializer, _ date: Date) throws {
        let t = X509Time.components(date)
        if t.year >= 1950 && t.year < 2050 {
            try s.serialize(UTCTime(year: t.year, month: t.month, day: t.day, hours: t.hours, minutes: t.minutes, seconds: t.seconds))
        } else {
            try s.serialize(GeneralizedTime(date))
        }
    }
}

extension X509Certificate {
    /// DER of a distinguished name, as TLS certificate_authorities lists carry it.
    static func derName(_ name: DistinguishedName) -> [UInt8]? {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(name)) != nil else { return nil }
        return serializer.serializedBytes
    }
    /// The subject's DER encoding.
    public var subjectDER: [UInt8]? { Self.derName(subject) }
    /// The issuer's DER encoding.
    public var issuerDER: [UInt8]? { Self.derName(issuer) }
}

extension X509CertificateVerifier {
    /// The trust anchors' subjects: the certificate_authorities a server sends when it asks for
    /// client certificates (RFC 8446 §4.2.4, RFC 5246 §7.4.4).
    public var acceptableIssuerNames: [[UInt8]] { roots.compactMap(\.subjectDER) }
}
