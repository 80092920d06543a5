import QSSL
import QSSLWire
import QSSLX509
import Testing

@Suite("The subjectPublicKeyInfo the core reads from a certificate's DER")
struct CertificateFieldsTests {
    @Test("it is the field the X.509 parser reads, for every key type the demo PKI issues", arguments: PKIBuilder.Algorithm.allCases.filter { $0 != .mldsa44 })  // ML-DSA-44: verification only
    func sameAsTheParser(algorithm: PKIBuilder.Algorithm) throws {
        let pki = try DemoPKI(algorithm: algorithm)
        for certificate in [pki.serverCertificate, pki.ca.certificate] {
            #expect(Array(try CertificateFields.subjectPublicKeyInfo(certificate.der)) == certificate.publicKey.spki)
        }
    }

    @Test("a cut, a wrong tag or a length not in DER's minimal form is an error, never a crash or a wrong field")
    func malformed() throws {
        let der = try DemoPKI(algorithm: .ecdsaP256).serverCertificate.der
        let spki = Array(try CertificateFields.subjectPublicKeyInfo(der))
        // Every cut before the end of the subjectPublicKeyInfo fails; cuts after it only shorten
        // the outer SEQUENCE, whose length then no longer fits.
        for length in 0..<der.count {
            #expect(throws: DecodeError.self) { _ = try CertificateFields.subjectPublicKeyInfo(Array(der.prefix(length))) }
        }
        var wrongTag = der
        wrongTag[0] = 0x31
        #expect(throws: DecodeError.self) { _ = try CertificateFields.subjectPublicKeyInfo(wrongTag) }
        // The certificate's length in a long form one byte longer than needed.
        #expect(der[1] == 0x82)
        let padded = [0x30, 0x83, 0x00] + der[2...]
        #expect(throws: DecodeError.self) { _ = try CertificateFields.subjectPublicKeyInfo(Array(padded)) }
        // Trailing bytes after the certificate are not its concern, and change nothing.
        #expect(Array(try CertificateFields.subjectPublicKeyInfo(der + [0, 0])) == spki)
        // A length of five bytes, and the indefinite form, are refused.
        #expect(throws: DecodeError.self) { _ = try CertificateFields.subjectPublicKeyInfo([0x30, 0x85, 0, 0, 0, 0, 1, 0]) }
        #expect(throws: DecodeError.self) { _ = try CertificateFields.subjectPublicKeyInfo([0x30, 0x80, 0, 0]) }
    }

    @Test("a CertificatePublicKey made from a subjectPublicKeyInfo verifies that key's signatures and states those bytes; garbage is refused")
    func keyFromItsBytes() throws {
        let pki = try DemoPKI(algorithm: .ecdsaP384)
        let spki = pki.serverCertificate.publicKey.spki
        let key = try CertificatePublicKey(subjectPublicKeyInfo: spki)
        #expect(key.subjectPublicKeyInfo == spki)
        let message = Array("the CertificateVerify content".utf8)
        let signature = try pki.serverKey.sign(message, scheme: .ecdsaSecp384r1SHA384)
        try key.verify(signature: signature, scheme: .ecdsaSecp384r1SHA384, message: message)
        #expect(throws: TLSError.self) { try key.verify(signature: signature, scheme: .ecdsaSecp384r1SHA384, message: message + [0]) }
        #expect(throws: TLSError.self) { _ = try CertificatePublicKey(subjectPublicKeyInfo: Array(spki.dropLast())) }
        #expect(throws: TLSError.self) { _ = try CertificatePublicKey(subjectPublicKeyInfo: [0x30, 0x00]) }
    }
}
