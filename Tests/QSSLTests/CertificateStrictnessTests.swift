import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Testing

@testable import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rebuilds a certificate from TBSCertificate elements and signs it again with the issuer's key,
/// so that the structural edit is the only thing wrong with it.
struct CertificateSurgeon {
    let issuer: PKIBuilder.Issuer
    let elements: [[UInt8]]
    let outerAlgorithm: [UInt8]

    init() throws {
        let caKey = try PKIBuilder.Algorithm.ecdsaP256.generateKey()
        issuer = try PKIBuilder.makeCA(subject: "CN=Surgeon CA", key: caKey)
        let leaf = try PKIBuilder.issue(
            subject: "CN=localhost", key: try PKIBuilder.Algorithm.ecdsaP256.generateKey(), by: issuer,
            dnsNames: ["localhost"])
        var tbsElements: [[UInt8]] = []
        var algorithm: [UInt8] = []
        guard case .constructed(let top) = try DER.parse(leaf.der).content else { throw ASN1Error.invalidASN1Object(reason: "test") }
        for (i, node) in top.enumerated() {
            if i == 0, case .constructed(let tbs) = node.content { tbsElements = tbs.map { Array($0.encodedBytes) } }
            if i == 1 { algorithm = Array(node.encodedBytes) }
        }
        elements = tbsElements
        outerAlgorithm = algorithm
    }

    /// Index of each TBSCertificate element in a v3 certificate as PKIBuilder writes it.
    enum Field: Int {
        case version = 0
        case serial, signature, issuer, validity, subject, spki, extensions
    }

    func element(_ f: Field) -> [UInt8] { elements[f.rawValue] }

    func certificate(_ tbsElements: [[UInt8]], outerAlgorithm: [UInt8]? = nil) throws -> [UInt8] {
        let tbs = DERBytes.tlv(0x30, tbsElements.flatMap { $0 })
        let (_, signature) = try issuer.key.signCertificate(tbs)
        return DERBytes.tlv(0x30, tbs + (outerAlgorithm ?? self.outerAlgorithm) + DERBytes.tlv(0x03, [0] + signature))
    }

    func replacing(_ f: Field, with bytes: [UInt8]) throws -> [UInt8] {
        var e = elements
        e[f.rawValue] = bytes
        return try certificate(e)
    }
}

enum DERBytes {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var length: [UInt8]
        if content.count < 0x80 {
            length = [UInt8(content.count)]
        } else {
            var n = content.count
            var bytes: [UInt8] = []
            while n > 0 {
                bytes.insert(UInt8(n & 0xFF), at: 0)
                n >>= 8
            }
            length = [0x80 | UInt8(bytes.count)] + bytes
        }
        return [tag] + length + content
    }
}

@Suite("X.509 hardening: exact RFC 5280 TBSCertificate structure")
struct CertificateStrictnessTests {
    static let surgeon = try! CertificateSurgeon()

    /// The verifier's verdict on a DER certificate issued by the surgeon's CA.
    func verdict(_ der: [UInt8]) -> TLSError? {
        let verifier = X509CertificateVerifier(roots: [Self.surgeon.issuer.certificate])
        do {
            _ = try verifier.verify(chain: [der], role: .server(name: "localhost"))
            return nil
        } catch {
            return error
        }
    }

    @Test("the reassembled, re-signed certificate is accepted (control)")
    func control() throws {
        let s = Self.surgeon
        #expect(verdict(try s.certificate(s.elements)) == nil)
        // issuerUniqueID [1] and subjectUniqueID [2] are allowed in v3, in their place.
        var e = s.elements
        e.insert(contentsOf: [[0x81, 0x02, 0x00, 0x01], [0x82, 0x02, 0x00, 0x02]], at: CertificateSurgeon.Field.extensions.rawValue)
        #expect(verdict(try s.certificate(e)) == nil)
    }

    @Test(
        "malformed TBSCertificates are bad_certificate (malformed)",
        arguments: [
            "second extensions block", "trailing junk after extensions", "junk between key and extensions", "empty extensions",
            "inner algorithm with NULL parameters", "outer algorithm with NULL parameters", "serial zero", "serial negative",
            "serial of 21 octets", "v1 with extensions", "explicit v1", "version 4", "duplicate extension",
            "unique identifiers after extensions", "v1 with a unique identifier"
        ])
    func malformed(_ edit: String) throws {
        let s = Self.surgeon
        typealias F = CertificateSurgeon.Field
        var e = s.elements
        var outer: [UInt8]? = nil
        let nullParameters = DERBytes.tlv(0x30, Array(s.element(.signature).dropFirst(2)) + [0x05, 0x00])
        switch edit {
        case "second extensions block": e.append(s.element(.extensions))
        case "trailing junk after extensions": e.append([0x05, 0x00])
        case "junk between key and extensions": e.insert([0x04, 0x01, 0x00], at: F.extensions.rawValue)
        case "empty extensions": e[F.extensions.rawValue] = DERBytes.tlv(0xA3, DERBytes.tlv(0x30, []))
        case "inner algorithm with NULL parameters": e[F.signature.rawValue] = nullParameters
        case "outer algorithm with NULL parameters": outer = nullParameters
        case "serial zero": e[F.serial.rawValue] = [0x02, 0x01, 0x00]
        case "serial negative": e[F.serial.rawValue] = [0x02, 0x01, 0xFF]
        case "serial of 21 octets": e[F.serial.rawValue] = DERBytes.tlv(0x02, [0x01] + [UInt8](repeating: 0x5A, count: 20))
        case "v1 with extensions": e.remove(at: F.version.rawValue)
        case "explicit v1": e[F.version.rawValue] = [0xA0, 0x03, 0x02, 0x01, 0x00]
        case "version 4": e[F.version.rawValue] = [0xA0, 0x03, 0x02, 0x01, 0x03]
        case "duplicate extension":
            // [3] { SEQUENCE { ext, ext, … } }: repeat the first extension.
            let ext = s.element(.extensions)
            guard case .constructed(let wrapper) = try DER.parse(ext).content, let seq = wrapper.first(where: { _ in true }),
                case .constructed(let list) = seq.content, let first = list.first(where: { _ in true })
            else {
                Issue.record("cannot take the extensions apart")
                return
            }
            let all = list.flatMap { Array($0.encodedBytes) } + Array(first.encodedBytes)
            e[F.extensions.rawValue] = DERBytes.tlv(0xA3, DERBytes.tlv(0x30, all))
        case "unique identifiers after extensions": e.append([0x81, 0x02, 0x00, 0x01])
        case "v1 with a unique identifier":
            e.remove(at: F.extensions.rawValue)
            e.remove(at: F.version.rawValue)
            e.append([0x81, 0x02, 0x00, 0x01])
        default:
            Issue.record("unknown edit \(edit)")
            return
        }
        let der = try s.certificate(e, outerAlgorithm: outer)
        #expect(throws: TLSError.rejected(.malformed)) { _ = try X509Certificate(der: der) }
        let error = verdict(der)
        #expect(error == TLSError.rejected(.malformed), "\(String(describing: error))")
        #expect(error?.alert == .badCertificate)
    }

    @Test("serials of 20 octets (21 with the sign octet) and v2 certificates without extensions parse")
    func acceptedEdges() throws {
        let s = Self.surgeon
        typealias F = CertificateSurgeon.Field
        var e = s.elements
        e[F.serial.rawValue] = DERBytes.tlv(0x02, [0x00] + [UInt8](repeating: 0xA5, count: 20))
        let longSerial = try X509Certificate(der: try s.certificate(e))
        #expect(longSerial.serialNumber == [UInt8](repeating: 0xA5, count: 20))
        var v2 = s.elements
        v2.remove(at: F.extensions.rawValue)
        v2[F.version.rawValue] = [0xA0, 0x03, 0x02, 0x01, 0x01]
        v2.append([0x82, 0x02, 0x00, 0x02])
        #expect(throws: Never.self) { _ = try X509Certificate(der: try s.certificate(v2)) }
    }

    @Test("every committed certificate (OpenSSL chains, the composite draft's) still parses")
    func committedCertificatesParse() throws {
        for name in [
            "root", "int-permit", "int-exclude", "int-email", "nc-localhost", "nc-allowed", "nc-cn-only",
            "ex-dns", "ex-ip", "ex-ok", "em-leaf", "crit-unknown", "noncrit-unknown"
        ] {
            #expect(throws: Never.self, "\(name)") { _ = try HardeningChains.certificate(name) }
        }
        let (_, t) = try CompositeVectors.load()
        let text = try #require(t["x5c"])
        let x5c = Array(try #require(Data(base64Encoded: text)))
        #expect(throws: Never.self) { _ = try X509Certificate(der: x5c) }
    }
}
