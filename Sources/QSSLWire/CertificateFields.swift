// The one X.509 field the protocol core reads from a certificate's DER itself, without an X.509
// library: the subjectPublicKeyInfo, to check that a verifier's answer carries the key of the
// certificate the peer sent.

/// Fields read from a certificate's DER (RFC 5280 §4.1) with a bare DER walker.
public enum CertificateFields {
    /// The DER of the certificate's subjectPublicKeyInfo (tag and length included): the seventh
    /// element of tbsCertificate, after the optional [0] version, serialNumber, signature,
    /// issuer, validity and subject. Only the outer structure is checked (definite lengths, the
    /// expected tags); the rest is the X.509 verifier's to judge.
    public static func subjectPublicKeyInfo(_ certificate: [UInt8]) throws(DecodeError) -> ArraySlice<UInt8> {
        var outer = ByteReader(certificate)
        var cert = try element(&outer, tag: 0x30, "Certificate")
        var tbs = try element(&cert, tag: 0x30, "tbsCertificate")
        if tbs.bytes.first == 0xA0 { _ = try element(&tbs, tag: 0xA0, "version") }
        _ = try element(&tbs, tag: 0x02, "serialNumber")
        for field in ["signature", "issuer", "validity", "subject"] { _ = try element(&tbs, tag: 0x30, field) }
        let start = tbs.bytes.startIndex
        _ = try element(&tbs, tag: 0x30, "subjectPublicKeyInfo")
        return certificate[start..<tbs.bytes.startIndex]
    }

    /// Reads one DER element with `tag` and returns a reader over its contents.
    private static func element(_ reader: inout ByteReader, tag: UInt8, _ field: String) throws(DecodeError) -> ByteReader {
        guard try reader.readUInt8(field) == tag else { throw .invalidValue(field: "\(field): unexpected tag") }
        let first = try reader.readUInt8(field)
        var length = Int(first)
        if first & 0x80 != 0 {
            // Long form: 1 to 4 length bytes (DER: no indefinite length, none longer than needed).
            let count = Int(first & 0x7F)
            guard (1...4).contains(count) else { throw .invalidValue(field: "\(field): length") }
            length = 0
            for byte in try reader.readBytes(count: count, field) { length = length << 8 | Int(byte) }
            guard length >= 0x80, length >> (8 * (count - 1)) != 0 else { throw .invalidValue(field: "\(field): length not minimal") }
        }
        return ByteReader(try reader.readBytes(count: length, field))
    }
}
