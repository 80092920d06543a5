import QSSLWire

// RecordProtection: one direction's AEAD key, IV and sequence number, and the TLS 1.2 nonce and AAD.

/// One direction's AEAD state: key, IV and the record sequence number.
struct RecordProtection {
    /// How records are framed around the AEAD.
    enum Framing {
        /// RFC 8446 §5.2: outer type application_data, inner content type, nonce = IV ⊕ seq.
        case tls13
        /// RFC 5288: 4-byte salt ‖ 8-byte explicit nonce carried in the record (AES-GCM).
        case tls12ExplicitNonce
        /// RFC 7905: nonce = IV ⊕ seq, nothing extra in the record (ChaCha20-Poly1305).
        case tls12ImplicitNonce
    }

    let cipher: any AEADCipher
    /// The 12-byte IV; for RFC 5288 framing, the 4-byte salt followed by zeros.
    let iv: AEADNonce
    let framing: Framing
    private(set) var sequence: UInt64 = 0

    /// - Parameter iv: 12 bytes, or the 4-byte salt for `.tls12ExplicitNonce` (both come from
    ///   our own key derivation).
    init(cipher: any AEADCipher, iv: [UInt8], framing: Framing = .tls13) {
        let padded = framing == .tls12ExplicitNonce ? iv + [UInt8](repeating: 0, count: 8) : iv
        guard let nonce = AEADNonce(padded) else { preconditionFailure("an IV of \(iv.count) bytes for \(framing)") }  // local invariant
        self.cipher = cipher
        self.iv = nonce
        self.framing = framing
    }

    /// The nonce for the next record and its sequence number; advances the sequence. For RFC
    /// 5288 framing the explicit part is the sequence number.
    mutating func nextNonce() -> (nonce: AEADNonce, sequence: UInt64) {
        let seq = sequence
        sequence &+= 1
        return (framing == .tls12ExplicitNonce ? iv.replacingExplicitPart(with: seq) : iv.xoring(sequence: seq), seq)
    }

    /// RFC 5246 §6.2.3.3: seq_num ‖ type ‖ version ‖ length, built on the stack.
    static func withTLS12AAD<R, E: Error>(
        sequence: UInt64, type: ContentType, length: Int,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        var storage: (UInt64, UInt64) = (0, 0)
        return try withUnsafeMutableBytes(of: &storage) { (aad) throws(E) -> R in
            aad.storeBytes(of: sequence.bigEndian, toByteOffset: 0, as: UInt64.self)
            aad[8] = type.rawValue
            aad[9] = 3
            aad[10] = 3
            aad[11] = UInt8(truncatingIfNeeded: length >> 8)
            aad[12] = UInt8(truncatingIfNeeded: length)
            return try body(UnsafeRawBufferPointer(rebasing: aad[0..<13]))
        }
    }
}
