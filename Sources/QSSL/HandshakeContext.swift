import QSSLWire

/// What a handshake step may touch besides its own state: the record layer (to send messages
/// and install keys), the trace, and the clock. Steps never write records directly.
struct HandshakeContext {
    var records = RecordLayer()
    var joiner = HandshakeJoiner()
    var trace: [HandshakeTraceEntry] = []
    /// Fixed once the server configuration is chosen (before anything was derived with it).
    var primitives: any CryptoPrimitives
    let started = ContinuousClock.now
    let recordTrace: Bool
    private var pendingHandshake: [UInt8] = []
    /// Replies the peer's post-handshake messages caused since this end last sent application
    /// data (see `TrafficState.handlePostHandshake`): a peer that never reads cannot make them
    /// pile up by slipping a byte of data between its requests.
    var repliesSinceDataSent = PeerCausedReplies()
    /// This end sent (or queued) close_notify: nothing more is sent in reply to the peer.
    var closeNotifySent = false

    /// Writes an application data record: the one place that does, so that the replies counted
    /// in `repliesSinceDataSent` start again whenever this end's data goes out.
    mutating func writeApplicationData(_ data: UnsafeRawBufferPointer) throws(TLSError) {
        try records.write(.applicationData, data)
        repliesSinceDataSent = PeerCausedReplies()
    }

    mutating func writeApplicationData(_ data: [UInt8]) throws(TLSError) {
        try records.write(.applicationData, data)
        repliesSinceDataSent = PeerCausedReplies()
    }
    #if DEBUG
        /// How many times a ClientHello's extensions were decoded (`ReceivedClientHello`): once per
        /// ClientHello received, whatever path the handshake takes.
        var clientHelloExtensionDecodes = 0
    #endif

    init(primitives: any CryptoPrimitives, recordTrace: Bool) {
        self.primitives = primitives
        self.recordTrace = recordTrace
    }

    /// Queues a handshake message and appends it to the transcript. Messages queued together are
    /// coalesced into as few records as possible when the flight is flushed.
    mutating func send(_ message: HandshakeMessage, transcript: inout Transcript) {
        transcript.append(message)
        let length = message.body.count
        pendingHandshake.append(message.type.rawValue)
        pendingHandshake.append(UInt8(truncatingIfNeeded: length >> 16))
        pendingHandshake.append(UInt8(truncatingIfNeeded: length >> 8))
        pendingHandshake.append(UInt8(truncatingIfNeeded: length))
        pendingHandshake.append(contentsOf: message.body)
        note(.sent, "\(message.type)", length + 4)
    }

    /// Encodes and queues a handshake message (see `send(_:transcript:)` above).
    mutating func send<M: HandshakeBody>(_ body: M, transcript: inout Transcript) throws(TLSError) {
        send(try encoding { () throws(EncodeError) in try HandshakeMessage(body) }, transcript: &transcript)
    }

    /// Writes queued handshake messages into records under the current write keys.
    mutating func flush() throws(TLSError) {
        guard !pendingHandshake.isEmpty else { return }
        defer { pendingHandshake.removeAll(keepingCapacity: true) }
        try records.write(.handshake, pendingHandshake)
    }

    mutating func sendChangeCipherSpec() throws(TLSError) {
        try flush()
        records.writeChangeCipherSpec()
        note(.sent, "ChangeCipherSpec", 1)
    }

    mutating func installWriteKeys(secret: SecretBytes, suite: TLS13CipherSuite) throws(TLSError) {
        try flush()
        let hkdf = HKDF(primitives: primitives, hash: suite.hash)
        let keys = TrafficKeys(secret: secret, hkdf: hkdf, aead: suite.aead)
        records.writeProtection = RecordProtection(cipher: try primitives.makeAEAD(suite.aead, key: keys.key), iv: keys.iv)
        records.useLegacyRecordVersion = false
    }

    /// RFC 8446 §5.1: "Handshake messages MUST NOT span key changes."
    /// `duringHandshake`: handshake keys (a plaintext alert may still precede the first
    /// protected record), not application keys or KeyUpdate.
    mutating func installReadKeys(secret: SecretBytes, suite: TLS13CipherSuite, duringHandshake: Bool) throws(TLSError) {
        guard joiner.isEmpty else { throw .misbehaved(.sentHandshakeMessageSpanningKeyChange) }
        let hkdf = HKDF(primitives: primitives, hash: suite.hash)
        let keys = TrafficKeys(secret: secret, hkdf: hkdf, aead: suite.aead)
        records.installReadKeys(
            RecordProtection(cipher: try primitives.makeAEAD(suite.aead, key: keys.key), iv: keys.iv),
            duringHandshake: duringHandshake)
    }

    /// TLS 1.2: keys take effect at ChangeCipherSpec, per direction (RFC 5246 §7.1).
    mutating func installTLS12WriteKeys(key: SecretBytes, iv: [UInt8], suite: TLS12CipherSuite) throws(TLSError) {
        try flush()
        records.writeProtection = RecordProtection(
            cipher: try primitives.makeAEAD(suite.aead, key: key), iv: iv,
            framing: suite.aead == .chaCha20Poly1305 ? .tls12ImplicitNonce : .tls12ExplicitNonce)
    }

    mutating func installTLS12ReadKeys(key: SecretBytes, iv: [UInt8], suite: TLS12CipherSuite) throws(TLSError) {
        guard joiner.isEmpty else { throw .misbehaved(.sentHandshakeMessageSpanningKeyChange) }
        records.installReadKeys(
            RecordProtection(
                cipher: try primitives.makeAEAD(suite.aead, key: key), iv: iv,
                framing: suite.aead == .chaCha20Poly1305 ? .tls12ImplicitNonce : .tls12ExplicitNonce),
            duringHandshake: true)
    }

    /// Thread CPU time in nanoseconds, for the computations of a trace (set by `qssl trace`).
    var traceCPUClock: (@Sendable () -> Int64)?

    /// Runs a step of work and, when tracing, records it as a computation (failed or not).
    mutating func measure<T>(_ step: @autoclosure () -> String, _ body: () throws(TLSError) -> T) throws(TLSError) -> T {
        guard recordTrace else { return try body() }
        let mark = traceMark()
        do {
            let result = try body()
            noteComputation(step(), since: mark)
            return result
        } catch {
            noteComputation(step() + " (failed)", since: mark)
            throw error
        }
    }

    /// The trace keeps its first entries only: a handshake makes a few dozen, and a peer that
    /// keeps a traced connection busy with post-handshake messages cannot make it grow for ever.
    static let maxTraceEntries = 1024

    /// A computation's start, for `noteComputation`; nil unless tracing.
    func traceMark() -> (instant: ContinuousClock.Instant, cpu: Int64?)? {
        guard recordTrace else { return nil }
        return (ContinuousClock.now, traceCPUClock?())
    }

    mutating func noteComputation(_ step: String, since mark: (instant: ContinuousClock.Instant, cpu: Int64?)?) {
        guard let mark else { return }
        let now = ContinuousClock.now
        func ns(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000 }
        var entry = HandshakeTraceEntry(direction: .received, message: step, length: 0, elapsedNanoseconds: ns(mark.instant - started), instant: mark.instant)
        entry.isComputation = true
        entry.durationNanoseconds = ns(now - mark.instant)
        if let cpu = mark.cpu, let end = traceCPUClock?() { entry.cpuNanoseconds = end - cpu }
        guard trace.count < Self.maxTraceEntries else { return }
        trace.append(entry)
    }

    mutating func note(_ direction: HandshakeTraceEntry.Direction, _ message: String, _ length: Int) {
        guard recordTrace else { return }
        let now = ContinuousClock.now
        let d = now - started
        let ns = d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
        guard trace.count < Self.maxTraceEntries else { return }
        trace.append(HandshakeTraceEntry(direction: direction, message: message, length: length, elapsedNanoseconds: ns, instant: now))
    }
}

/// RFC 8446 §4.4.3: the content covered by a CertificateVerify signature.
func certificateVerifyContent(server: Bool, transcriptHash: [UInt8]) -> [UInt8] {
    var content = [UInt8](repeating: 0x20, count: 64)
    content.append(contentsOf: Array((server ? "TLS 1.3, server CertificateVerify" : "TLS 1.3, client CertificateVerify").utf8))
    content.append(0)
    content.append(contentsOf: transcriptHash)
    return content
}

extension HandshakeMessage {
    /// Decodes the body as `M` if the type matches; otherwise the peer sent the wrong message.
    func require<M: HandshakeBody>(_ type: M.Type) throws(TLSError) -> M {
        guard self.type == M.handshakeType else {
            throw .misbehaved(.sentUnexpectedMessage, "expected \(M.handshakeType), got \(self.type)")
        }
        do {
            return try decode(as: M.self)
        } catch {
            throw .decode(error)
        }
    }
}

/// Runs a wire encoder. A vector that does not fit its length prefix fails the connection with
/// internal_error instead of trapping; where a peer's data could cause it (a HelloRetryRequest
/// cookie), the handshake checks first and answers with the peer's alert.
func encoding<T>(_ body: () throws(EncodeError) -> T) throws(TLSError) -> T {
    do { return try body() } catch { throw TLSError(.encodeFailure(error), error.description) }
}

/// Two bytes, big-endian.
func bigEndianBytes(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

/// Wraps a decode of an extension body so failures become TLS errors.
func decodeExtension<T>(_ body: () throws(DecodeError) -> T) throws(TLSError) -> T {
    do { return try body() } catch { throw .decode(error) }
}

/// What a peer's post-handshake messages made this end send since it last sent application data.
struct PeerCausedReplies {
    /// A KeyUpdate answering update_requested is queued: RFC 8446 §4.6.3 asks for one before this
    /// end's next application data record, so further requests until then need none (BoringSSL
    /// coalesces them the same way).
    var keyUpdateAnswered = false
    /// no_renegotiation warnings sent.
    var renegotiationsRefused = 0
    /// Post-handshake CertificateRequests answered (a certificate and a signature each).
    var certificateRequestsAnswered = 0
}
