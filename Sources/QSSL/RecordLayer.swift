import QSSLWire

// RecordLayer: framing, protecting and opening records.

/// RFC 8446 §5.1: plaintext fragments are at most 2^14 bytes.
let maxPlaintextLength = 1 << 14
/// RFC 8446 §5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256.
let maxCiphertextLength = (1 << 14) + 256

/// Frames, protects and deprotects records. Knows nothing of handshake states.
///
/// Records are sealed in place in `outbound` (header, then the plaintext copied in and encrypted
/// over itself, then the tag) and opened from `inbound` straight into the array handed to the
/// caller: no per-record array for the nonce, the additional data or the ciphertext.
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

    /// Gives back the storage the handshake's flights left in the buffers, when they are empty:
    /// an idle connection then holds no handshake-sized arrays (a hybrid share or a PQ
    /// certificate chain is several KB).
    mutating func releaseIdleStorage() {
        if inboundStart >= inbound.count {
            inbound = []
            inboundStart = 0
        }
        if outbound.isEmpty { outbound = [] }
    }

    /// - Parameter duringHandshake: true for handshake keys (TLS 1.3) and the keys a TLS 1.2
    ///   ChangeCipherSpec installs before Finished; false for application keys and KeyUpdate.
    mutating func installReadKeys(_ protection: RecordProtection, duringHandshake: Bool) {
        readProtection = protection
        acceptsPlaintextAlert = duringHandshake
    }

    /// The caller's bytes, read in place for the length of one `receive` when nothing was
    /// buffered before them (`lend`); what is left when the loan ends is copied into `inbound`.
    private var lent: UnsafeRawBufferPointer?
    private var lentStart = 0

    /// Reads `bytes` in place until `endLoan()`: whole records are opened straight from the
    /// caller's buffer instead of being copied into `inbound` first. Only when nothing is buffered.
    mutating func lend(_ bytes: UnsafeRawBufferPointer) {
        guard lent == nil, !hasBufferedInput else { return feed(bytes) }
        inbound.removeAll(keepingCapacity: true)
        inboundStart = 0
        lent = bytes
        lentStart = 0
    }

    /// Ends the loan: the bytes not yet read are copied into `inbound`. Must be called before
    /// the lent buffer goes away.
    mutating func endLoan() {
        guard let bytes = lent else { return }
        lent = nil
        inbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[lentStart...]))
        lentStart = 0
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

    var hasBufferedInput: Bool { bufferedInputCount > 0 }
    var bufferedInputCount: Int { inbound.count - inboundStart + (lent.map { $0.count - lentStart } ?? 0) }

    /// The unread input: the lent bytes, or `inbound`; offsets are into that buffer.
    private var inputStart: Int { lent == nil ? inboundStart : lentStart }
    private var inputCount: Int { lent?.count ?? inbound.count }
    private func inputByte(_ i: Int) -> UInt8 { lent?[i] ?? inbound[i] }
    private func withInput<R>(_ body: (UnsafeRawBufferPointer) throws(TLSError) -> R) throws(TLSError) -> R {
        if let lent { return try body(lent) }
        return try inbound.withBytes(body)
    }
    private func inputBytes(_ range: Range<Int>) -> [UInt8] {
        if let lent { return Array(lent[range]) }
        return Array(inbound[range])
    }
    private mutating func consumeInput(_ count: Int) {
        if lent == nil { inboundStart += count } else { lentStart += count }
    }

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
        let start = inputStart
        let available = inputCount - start
        guard available >= 5 else { return nil }
        let type = ContentType(rawValue: inputByte(start))
        let length = Int(inputByte(start + 3)) << 8 | Int(inputByte(start + 4))
        // change_cipher_spec (20) … application_data (23), checked without building a list per record.
        guard (ContentType.changeCipherSpec.rawValue...ContentType.applicationData.rawValue).contains(type.rawValue) else {
            throw .misbehaved(.sentRecordWithInvalidContentType, "record type \(type.rawValue)")
        }
        guard inputByte(start + 1) == 0x03 else {
            throw .decode(.invalidValue(field: "TLSPlaintext.legacy_record_version"))
        }
        let limit = readProtection.map { $0.framing == .tls13 ? maxCiphertextLength : maxPlaintextLength + 2048 } ?? maxCiphertextLength
        guard length <= limit else { throw .misbehaved(.sentOversizedRecord, "record of \(length) bytes") }
        guard available >= 5 + length else { return nil }
        let body = (start + 5)..<(start + 5 + length)
        consumeInput(5 + length)

        // RFC 8446 §5: change_cipher_spec is never protected; the handshake decides whether it is allowed.
        if type == .changeCipherSpec { return (type, inputBytes(body)) }
        guard var protection = readProtection else {
            guard length <= maxPlaintextLength else { throw .misbehaved(.sentOversizedRecord) }
            if type == .applicationData && earlyDataSkipBudget != nil {
                try skipEarlyData(length)
                return nil
            }
            return (type, inputBytes(body))
        }
        if type == .alert && length <= 2 {
            // A plaintext alert (no protected record is this short) under read keys.
            guard acceptsPlaintextAlert, length == 2 else {
                throw .misbehaved(.sentUnexpectedMessage, "unprotected alert record after keys were installed")
            }
            return (type, inputBytes(body))
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
        // RFC 8446 §5.2: the additional data is the record header itself, read where it lies.
        let header = start..<(start + 5)
        var plaintext: [UInt8]
        if earlyDataSkipBudget != nil {
            // Trial decryption: a failure does not advance the sequence number.
            do { plaintext = try open(body, nonce: protection.nextNonce().nonce, aadRange: header, protection.cipher) } catch {
                try skipEarlyData(length)
                return nil
            }
            earlyDataSkipBudget = nil
        } else {
            plaintext = try open(body, nonce: protection.nextNonce().nonce, aadRange: header, protection.cipher)
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
        plaintext.removeSubrange(last...)  // in place: padding and the content type byte
        return (innerType, plaintext)
    }

    private func openTLS12(_ type: ContentType, _ body: Range<Int>, _ protection: inout RecordProtection) throws(TLSError) -> [UInt8] {
        let explicit = protection.framing == .tls12ExplicitNonce ? 8 : 0
        guard body.count >= explicit + aeadTagLength else { throw TLSError(.decryptFailed) }
        var (nonce, seq) = protection.nextNonce()
        if explicit > 0 {
            // RFC 5288 §3: the record carries the nonce's last 8 bytes.
            let carried = try withInput { $0.loadUnaligned(fromByteOffset: body.lowerBound, as: UInt64.self) }
            nonce = protection.iv.replacingExplicitPart(with: UInt64(bigEndian: carried))
        }
        let ciphertext = (body.lowerBound + explicit)..<body.upperBound
        let plaintext = try RecordProtection.withTLS12AAD(sequence: seq, type: type, length: ciphertext.count - aeadTagLength) { (aad) throws(TLSError) in
            try open(ciphertext, nonce: nonce, aad: aad, protection.cipher)
        }
        guard plaintext.count <= maxPlaintextLength else { throw .misbehaved(.sentOversizedRecord, "plaintext too long") }
        return plaintext
    }

    /// Opens `ciphertext` (ciphertext ‖ tag) of the input with the additional data at `aadRange` of the input.
    private func open(_ ciphertext: Range<Int>, nonce: AEADNonce, aadRange: Range<Int>, _ cipher: any AEADCipher) throws(TLSError) -> [UInt8] {
        try withInput { (buffer) throws(TLSError) in
            try open(ciphertext, nonce: nonce, aad: UnsafeRawBufferPointer(rebasing: buffer[aadRange]), cipher)
        }
    }

    /// Authenticates and decrypts `ciphertext` of the input (ciphertext ‖ tag) straight into the
    /// array returned. When authentication fails nothing is returned and the array is wiped
    /// (the provider wipes it too): unauthenticated plaintext never leaves this function.
    private func open(_ ciphertext: Range<Int>, nonce: AEADNonce, aad: UnsafeRawBufferPointer, _ cipher: any AEADCipher) throws(TLSError) -> [UInt8] {
        guard ciphertext.count >= aeadTagLength else { throw TLSError(.decryptFailed) }
        let count = ciphertext.count - aeadTagLength
        var failed = false
        var plaintext = try withInput { buffer in
            [UInt8](unsafeUninitializedCapacity: count) { output, initialized in
                let output = UnsafeMutableRawBufferPointer(output)
                do {
                    try cipher.open(nonce: nonce, aad: aad, ciphertext: UnsafeRawBufferPointer(rebasing: buffer[ciphertext]), into: output)
                } catch {
                    output.initializeMemory(as: UInt8.self, repeating: 0)
                    failed = true
                }
                initialized = count
            }
        }
        if failed {
            plaintext.withUnsafeMutableBytes { zeroise($0) }
            throw TLSError(.decryptFailed)
        }
        return plaintext
    }

    /// Writes `payload` as one or more records of `type`, protected if write keys are installed.
    mutating func write(_ type: ContentType, _ payload: [UInt8]) throws(TLSError) {
        try payload.withBytes { (payload) throws(TLSError) in try write(type, payload) }
    }

    /// Writes `payload` as one or more records of `type`, protected if write keys are installed.
    mutating func write(_ type: ContentType, _ payload: UnsafeRawBufferPointer) throws(TLSError) {
        var offset = 0
        repeat {
            let end = min(offset + maxPlaintextLength, payload.count)
            try writeFragment(type, UnsafeRawBufferPointer(rebasing: payload[offset..<end]))
            offset = end
        } while offset < payload.count
    }

    /// Test hook: one record of any type and length (empty included), with TLS 1.3 padding.
    mutating func writeRawForTesting(_ type: ContentType, _ payload: [UInt8], padding: Int) throws(TLSError) {
        try payload.withBytes { (payload) throws(TLSError) in try writeFragment(type, payload, padding: padding) }
    }

    private mutating func writeFragment(_ type: ContentType, _ fragment: UnsafeRawBufferPointer, padding: Int = 0) throws(TLSError) {
        guard var protection = writeProtection else {
            let version: UInt16 = useLegacyRecordVersion ? 0x0301 : 0x0303
            appendHeader(type, version: version, length: fragment.count)
            outbound.append(contentsOf: fragment)
            return
        }
        let (nonce, seq) = protection.nextNonce()
        let recordStart = outbound.count
        if protection.framing == .tls13 {
            // RFC 8446 §5.2: TLSInnerPlaintext = content ‖ type ‖ zeros, under an application_data header.
            let inner = fragment.count + 1 + padding
            outbound.reserveCapacity(recordStart + 5 + inner + aeadTagLength)
            appendHeader(.applicationData, version: 0x0303, length: inner + aeadTagLength)
            outbound.append(contentsOf: fragment)
            outbound.append(type.rawValue)
            outbound.append(contentsOf: repeatElement(0, count: padding + aeadTagLength))
            try sealInPlace(recordStart, aad: recordStart..<(recordStart + 5), bodyStart: recordStart + 5, plaintextCount: inner, protection.cipher, nonce)
        } else {
            // RFC 5288 §3: the explicit nonce (our sequence number) precedes the ciphertext.
            let explicit = protection.framing == .tls12ExplicitNonce ? 8 : 0
            outbound.reserveCapacity(recordStart + 5 + explicit + fragment.count + aeadTagLength)
            appendHeader(type, version: 0x0303, length: explicit + fragment.count + aeadTagLength)
            if explicit > 0 { withUnsafeBytes(of: seq.bigEndian) { outbound.append(contentsOf: $0) } }
            outbound.append(contentsOf: fragment)
            outbound.append(contentsOf: repeatElement(0, count: aeadTagLength))
            try RecordProtection.withTLS12AAD(sequence: seq, type: type, length: fragment.count) { (aad) throws(TLSError) in
                try sealInPlace(recordStart, aad: aad, bodyStart: recordStart + 5 + explicit, plaintextCount: fragment.count, protection.cipher, nonce)
            }
        }
        writeProtection = protection
    }

    /// Encrypts the `plaintextCount` bytes at `outbound[bodyStart...]` over themselves and writes
    /// the tag after them. On failure the record begun at `recordStart` is wiped and removed.
    private mutating func sealInPlace(
        _ recordStart: Int, aad: Range<Int>, bodyStart: Int, plaintextCount: Int,
        _ cipher: any AEADCipher, _ nonce: AEADNonce
    ) throws(TLSError) {
        do {
            try outbound.withMutableBytes { (buffer) throws(TLSError) in
                try Self.seal(buffer, aad: UnsafeRawBufferPointer(rebasing: buffer[aad]), bodyStart: bodyStart, plaintextCount: plaintextCount, cipher, nonce)
            }
        } catch {
            dropRecord(from: recordStart)
            throw error
        }
    }

    private mutating func sealInPlace(
        _ recordStart: Int, aad: UnsafeRawBufferPointer, bodyStart: Int, plaintextCount: Int,
        _ cipher: any AEADCipher, _ nonce: AEADNonce
    ) throws(TLSError) {
        do {
            try outbound.withMutableBytes { (buffer) throws(TLSError) in
                try Self.seal(buffer, aad: aad, bodyStart: bodyStart, plaintextCount: plaintextCount, cipher, nonce)
            }
        } catch {
            dropRecord(from: recordStart)
            throw error
        }
    }

    private static func seal(
        _ buffer: UnsafeMutableRawBufferPointer, aad: UnsafeRawBufferPointer, bodyStart: Int, plaintextCount: Int,
        _ cipher: any AEADCipher, _ nonce: AEADNonce
    ) throws(TLSError) {
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[bodyStart..<(bodyStart + plaintextCount + aeadTagLength)])
        try cipher.seal(nonce: nonce, aad: aad, plaintext: UnsafeRawBufferPointer(rebasing: body[0..<plaintextCount]), into: body)
    }

    /// Removes a record that failed to seal, wiping the plaintext copied into it first.
    private mutating func dropRecord(from start: Int) {
        outbound.withUnsafeMutableBytes { zeroise(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        outbound.removeSubrange(start...)
    }

    private mutating func appendHeader(_ type: ContentType, version: UInt16, length: Int) {
        outbound.append(type.rawValue)
        outbound.append(UInt8(version >> 8))
        outbound.append(UInt8(version & 0xFF))
        outbound.append(UInt8(truncatingIfNeeded: length >> 8))
        outbound.append(UInt8(truncatingIfNeeded: length))
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

    /// Lends the framed bytes to `body`, then empties `outbound`, keeping its storage.
    mutating func drainOutbound<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        defer { outbound.removeAll(keepingCapacity: true) }
        return try outbound.withUnsafeBytes(body)
    }
}
