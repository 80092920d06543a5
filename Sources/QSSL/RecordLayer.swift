import QSSLWire

/// RFC 8446 §5.1: plaintext fragments are at most 2^14 bytes.
let maxPlaintextLength = 1 << 14
/// RFC 8446 §5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256.
let maxCiphertextLength = (1 << 14) + 256
/// Largest handshake message accepted: certificate chains with ML-DSA keys are large, but not
/// this large. Anything bigger is refused before it is buffered.
let maxHandshakeMessageLength = 1 << 18

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
    let iv: [UInt8]
    let framing: Framing
    private(set) var sequence: UInt64 = 0

    init(cipher: any AEADCipher, iv: [UInt8], framing: Framing = .tls13) {
        self.cipher = cipher
        self.iv = iv
        self.framing = framing
    }

    /// The nonce for the next record and its sequence number; advances the sequence.
    mutating func nextNonce() -> (nonce: [UInt8], sequence: UInt64) {
        let seq = sequence
        sequence &+= 1
        if framing == .tls12ExplicitNonce {
            var nonce = iv
            for i in (0..<8).reversed() { nonce.append(UInt8(truncatingIfNeeded: seq >> (8 * UInt64(i)))) }
            return (nonce, seq)
        }
        var nonce = iv
        let n = nonce.count
        for i in 0..<8 { nonce[n - 1 - i] ^= UInt8(truncatingIfNeeded: seq >> (8 * UInt64(i))) }
        return (nonce, seq)
    }

    /// RFC 5246 §6.2.3.3: seq_num ‖ type ‖ version ‖ length.
    static func tls12AAD(sequence: UInt64, type: ContentType, length: Int) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(13)
        for i in (0..<8).reversed() { aad.append(UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i)))) }
        aad += [type.rawValue, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF)]
        return aad
    }
}

/// Frames, protects and deprotects records. Knows nothing of handshake states.
struct RecordLayer {
    var readProtection: RecordProtection?
    var writeProtection: RecordProtection?
    /// Set only for read keys installed while the handshake runs, until the first protected
    /// record arrives under them: a peer that rejects our flight may send its alert in
    /// plaintext before it has switched keys. Never set for application keys or KeyUpdate: an
    /// unprotected alert there would let an on-path attacker forge a clean close (truncation).
    private var acceptsPlaintextAlert = false
    private var inbound: [UInt8] = []
    private var inboundStart = 0
    /// Bytes to send, already framed (and protected).
    var outbound: [UInt8] = []
    /// Whether the first ClientHello is still to be written (legacy_record_version 0x0301).
    var useLegacyRecordVersion = false

    /// - Parameter duringHandshake: true for handshake keys (TLS 1.3) and the keys a TLS 1.2
    ///   ChangeCipherSpec installs before Finished; false for application keys and KeyUpdate.
    mutating func installReadKeys(_ protection: RecordProtection, duringHandshake: Bool) {
        readProtection = protection
        acceptsPlaintextAlert = duringHandshake
    }

    mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if inboundStart > 0 && inboundStart == inbound.count {
            inbound.removeAll(keepingCapacity: true)
            inboundStart = 0
        } else if inboundStart > 65536 {
            inbound.removeFirst(inboundStart)
            inboundStart = 0
        }
        inbound.append(contentsOf: bytes)
    }

    var hasBufferedInput: Bool { inboundStart < inbound.count }
    var bufferedInputCount: Int { inbound.count - inboundStart }

    /// Set by a server that refuses a client's 0-RTT data (RFC 8446 §4.2.10): protected records
    /// that fail to decrypt under the handshake keys (or, after a HelloRetryRequest, unprotected
    /// application_data records) are skipped, up to this many bytes, until one decrypts.
    var earlyDataSkipBudget: Int?
    private var skippedRecord = false

    /// Returns the next complete record's content type and plaintext, or nil if more bytes are needed.
    mutating func readRecord() throws(TLSError) -> (ContentType, [UInt8])? {
        while true {
            skippedRecord = false
            let record = try readOneRecord()
            if !skippedRecord { return record }
        }
    }

    /// Counts a skipped early-data record against the budget.
    private mutating func skipEarlyData(_ length: Int) throws(TLSError) {
        guard let budget = earlyDataSkipBudget else { return }
        let left = budget - 5 - length
        guard left >= 0 else { throw .misbehaved(.sentTooMuchEarlyData, "more than the \(budget) bytes of early data we skip") }
        earlyDataSkipBudget = left
        skippedRecord = true
    }

    private mutating func readOneRecord() throws(TLSError) -> (ContentType, [UInt8])? {
        let available = inbound.count - inboundStart
        guard available >= 5 else { return nil }
        let type = ContentType(rawValue: inbound[inboundStart])
        let length = Int(inbound[inboundStart + 3]) << 8 | Int(inbound[inboundStart + 4])
        // change_cipher_spec (20) … application_data (23), checked without building a list per record.
        guard (ContentType.changeCipherSpec.rawValue...ContentType.applicationData.rawValue).contains(type.rawValue) else {
            throw .misbehaved(.sentRecordWithInvalidContentType, "record type \(type.rawValue)")
        }
        guard inbound[inboundStart + 1] == 0x03 else {
            throw .decode(.invalidValue(field: "TLSPlaintext.legacy_record_version"))
        }
        let limit = readProtection.map { $0.framing == .tls13 ? maxCiphertextLength : maxPlaintextLength + 2048 } ?? maxCiphertextLength
        guard length <= limit else { throw .misbehaved(.sentOversizedRecord, "record of \(length) bytes") }
        guard available >= 5 + length else { return nil }
        let header = Array(inbound[inboundStart..<(inboundStart + 5)])
        let body = inbound[(inboundStart + 5)..<(inboundStart + 5 + length)]
        inboundStart += 5 + length

        // RFC 8446 §5: change_cipher_spec is never protected; the handshake decides whether it is allowed.
        if type == .changeCipherSpec { return (type, Array(body)) }
        guard var protection = readProtection else {
            guard length <= maxPlaintextLength else { throw .misbehaved(.sentOversizedRecord) }
            if type == .applicationData && earlyDataSkipBudget != nil {
                try skipEarlyData(length)
                return nil
            }
            return (type, Array(body))
        }
        if type == .alert && length <= 2 {
            // A plaintext alert (no protected record is this short) under read keys.
            guard acceptsPlaintextAlert, length == 2 else {
                throw .misbehaved(.sentUnexpectedMessage, "unprotected alert record after keys were installed")
            }
            return (type, Array(body))
        }
        if protection.framing != .tls13 {
            let plaintext = try openTLS12(type, body, &protection)
            readProtection = protection
            acceptsPlaintextAlert = false
            return (type, plaintext)
        }
        guard type == .applicationData else {
            throw .misbehaved(.sentUnexpectedMessage, "unprotected \(type) record after keys were installed")
        }
        var plaintext: [UInt8]
        if earlyDataSkipBudget != nil {
            // Trial decryption: a failure does not advance the sequence number.
            do { plaintext = try protection.cipher.open(nonce: protection.nextNonce().nonce, aad: header, ciphertext: body) } catch {
                try skipEarlyData(length)
                return nil
            }
            earlyDataSkipBudget = nil
        } else {
            plaintext = try protection.cipher.open(nonce: protection.nextNonce().nonce, aad: header, ciphertext: body)
        }
        readProtection = protection
        acceptsPlaintextAlert = false
        // RFC 8446 §5.4: strip zero padding; the last non-zero byte is the real content type.
        guard let last = plaintext.lastIndex(where: { $0 != 0 }) else {
            throw .misbehaved(.sentUnexpectedMessage, "protected record without a content type")
        }
        guard last <= maxPlaintextLength else { throw .misbehaved(.sentOversizedRecord, "inner plaintext too long") }
        let innerType = ContentType(rawValue: plaintext[last])
        guard (ContentType.alert.rawValue...ContentType.applicationData.rawValue).contains(innerType.rawValue) else {
            throw .misbehaved(.sentRecordWithInvalidContentType, "inner content type \(innerType.rawValue)")
        }
        plaintext.removeSubrange(last...)   // in place: padding and the content type byte
        return (innerType, plaintext)
    }

    private func openTLS12(_ type: ContentType, _ body: ArraySlice<UInt8>, _ protection: inout RecordProtection) throws(TLSError) -> [UInt8] {
        let overhead = (protection.framing == .tls12ExplicitNonce ? 8 : 0) + 16
        guard body.count >= overhead else { throw TLSError(.decryptFailed) }
        var (nonce, seq) = protection.nextNonce()
        var ciphertext = body
        if protection.framing == .tls12ExplicitNonce {
            nonce = protection.iv + Array(body.prefix(8))
            ciphertext = body.dropFirst(8)
        }
        let aad = RecordProtection.tls12AAD(sequence: seq, type: type, length: body.count - overhead)
        let plaintext = try protection.cipher.open(nonce: nonce, aad: aad, ciphertext: ciphertext)
        guard plaintext.count <= maxPlaintextLength else { throw .misbehaved(.sentOversizedRecord, "plaintext too long") }
        return plaintext
    }

    /// Writes `payload` as one or more records of `type`, protected if write keys are installed.
    mutating func write(_ type: ContentType, _ payload: [UInt8]) throws(TLSError) {
        var offset = 0
        repeat {
            let end = min(offset + maxPlaintextLength, payload.count)
            try writeFragment(type, payload[offset..<end])
            offset = end
        } while offset < payload.count
    }

    /// Test hook: one record of any type and length (empty included), with TLS 1.3 padding.
    mutating func writeRawForTesting(_ type: ContentType, _ payload: [UInt8], padding: Int) throws(TLSError) {
        try writeFragment(type, payload[...], padding: padding)
    }

    private mutating func writeFragment(_ type: ContentType, _ fragment: ArraySlice<UInt8>, padding: Int = 0) throws(TLSError) {
        guard var protection = writeProtection else {
            let version: UInt16 = useLegacyRecordVersion ? 0x0301 : 0x0303
            outbound.append(type.rawValue)
            outbound.append(UInt8(version >> 8)); outbound.append(UInt8(version & 0xFF))
            outbound.append(UInt8(fragment.count >> 8)); outbound.append(UInt8(fragment.count & 0xFF))
            outbound.append(contentsOf: fragment)
            return
        }
        if protection.framing != .tls13 {
            let (nonce, seq) = protection.nextNonce()
            let aad = RecordProtection.tls12AAD(sequence: seq, type: type, length: fragment.count)
            let sealed = try protection.cipher.seal(nonce: nonce, aad: aad, plaintext: fragment)
            writeProtection = protection
            let explicit = protection.framing == .tls12ExplicitNonce ? Array(nonce.suffix(8)) : []
            let length = explicit.count + sealed.count
            outbound += [type.rawValue, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xFF)]
            outbound += explicit
            outbound += sealed
            return
        }
        var inner = [UInt8]()
        inner.reserveCapacity(fragment.count + 1)
        inner.append(contentsOf: fragment)
        inner.append(type.rawValue)
        if padding > 0 { inner.append(contentsOf: repeatElement(0, count: padding)) }
        let length = inner.count + protection.cipher.tagLengthHint
        let header: [UInt8] = [ContentType.applicationData.rawValue, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xFF)]
        let sealed = try protection.cipher.seal(nonce: protection.nextNonce().nonce, aad: header, plaintext: inner[...])
        writeProtection = protection
        outbound.append(contentsOf: header)
        outbound.append(contentsOf: sealed)
    }

    /// One alert record under the current write keys.
    mutating func writeAlert(_ level: AlertLevel, _ description: AlertDescription) throws(TLSError) {
        try write(.alert, [level.rawValue, description.rawValue])
    }

    /// A middlebox-compatibility change_cipher_spec record (RFC 8446 Appendix D.4).
    mutating func writeChangeCipherSpec() {
        outbound.append(contentsOf: [ContentType.changeCipherSpec.rawValue, 0x03, 0x03, 0x00, 0x01, 0x01])
    }

    mutating func takeOutbound() -> [UInt8] {
        defer { outbound.removeAll(keepingCapacity: true) }
        return outbound
    }
}

extension AEADCipher {
    var tagLengthHint: Int { 16 }
}

/// Reassembles handshake messages from handshake records (RFC 8446 §5.1: messages may be
/// coalesced into one record or fragmented across several).
struct HandshakeJoiner {
    private var buffer: [UInt8] = []
    /// Start of the unread bytes: messages are taken by advancing it, and the consumed prefix is
    /// dropped only when everything was read or it has grown large (no quadratic copying).
    private var start = 0

    var isEmpty: Bool { start == buffer.count }

    mutating func append(_ fragment: [UInt8]) {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 1 << 16 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: fragment)
    }

    /// The next complete message with its exact bytes, or nil if more records are needed.
    mutating func next() throws(TLSError) -> HandshakeMessage? {
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard length <= maxHandshakeMessageLength else {
            throw .misbehaved(.sentOversizedHandshakeMessage, "handshake message of \(length) bytes")
        }
        guard buffer.count - start >= 4 + length else { return nil }
        let message = HandshakeMessage(type: HandshakeType(rawValue: buffer[start]), body: Array(buffer[(start + 4)..<(start + 4 + length)]))
        start += 4 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return message
    }
}
