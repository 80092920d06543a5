import QSSLWire

// TLSConnection: creation, state, and the public API (receive, send, pauses, close, key updates).

/// A TLS connection, client or server, with no I/O of its own: feed it the bytes read from the
/// peer, send what `takeOutput()` returns, and act on the events.
///
/// ```swift
/// let connection = try TLSConnection.client(configuration: config, serverName: "example.com")
/// send(connection.takeOutput())                      // ClientHello
/// for event in try connection.receive(bytesFromPeer) { … }
/// send(connection.takeOutput())
/// ```
///
/// When `receive` throws, the connection has failed for good; `takeOutput()` then still holds
/// the alert to send before closing the transport.
///
/// A connection is a class, not a value: a copy of its state would reuse record sequence
/// numbers, and so AEAD nonces. It is not `Sendable`; use it from one thread (or event loop)
/// at a time.
public final class TLSConnection {
    /// The state. Every assignment refreshes the flags below, which the driver and the
    /// per-record paths consult instead of matching the enum: a match may copy it (retaining
    /// every reference in its payload, configuration included) unless the optimiser removes
    /// the copy. A transition moves it out with `takePhase()`, which never copies.
    var phase: ConnectionPhase {
        _read { yield storedPhase }
        set {
            refreshPhaseFlags(newValue)
            storedPhase = newValue
        }
    }
    private var storedPhase: ConnectionPhase
    /// Whether `phase` is `.traffic`, `.paused` or `.failed`, kept beside it.
    private(set) var isInTraffic = false
    private(set) var isPaused = false
    private(set) var isFailed = false
    /// A server: the handshake messages its state accepts now, so that anything else is refused
    /// at its header (a peer cannot make a state buffer a message it would never take).
    private var serverExpectedMessages: HandshakeTypeSet?

    /// Moves the state out for a transition, leaving `.transitioning`: no copy, no retains.
    func takePhase() -> ConnectionPhase {
        var taken = ConnectionPhase.transitioning
        swap(&taken, &storedPhase)
        refreshPhaseFlags(.transitioning)
        return taken
    }

    private func refreshPhaseFlags(_ phase: ConnectionPhase) {
        let flags = phase.flags(server: !isClient)
        isInTraffic = flags.traffic
        isPaused = flags.paused
        isFailed = flags.failed
        serverExpectedMessages = flags.serverExpected
    }
    var context: HandshakeContext
    var bufferedApplicationData: [[UInt8]] = []
    var receivedFirstClientHello: Bool
    var consecutiveIgnoredRecords = 0
    /// Bytes held unprocessed while paused: a whole flight and some early data fit. A client
    /// waits (verifying the server, signing) with the rest of the server's flight and tickets
    /// in: 1 MiB. A server waits before it has authenticated anyone (configuration selection,
    /// session look-up, client verification): what a client can legitimately have sent by then
    /// is its Certificate, CertificateVerify and Finished (at most 64 + 8 KiB + records) or
    /// skipped early data (16 KiB), so 128 KiB.
    static let maxBufferedWhilePaused = 1 << 20
    static let maxBufferedWhilePausedServer = 128 * 1024
    private var maxBufferedWhilePaused: Int { isClient ? Self.maxBufferedWhilePaused : Self.maxBufferedWhilePausedServer }
    var postHandshakeMessagesSinceData = 0
    var renegotiationRequestsSinceData = 0
    static let maxPostHandshakeMessagesBetweenData = 32
    /// Each refusal costs a sealed warning: a few are answered, then the peer is cut off (a
    /// stream of 4-byte HelloRequests must not become a stream of 31-byte alerts).
    static let maxRefusedRenegotiations = 3
    /// Post-handshake CertificateRequests a client answers between its own application data.
    static let maxPostHandshakeAuthAnswers = 8
    /// TLS 1.2 warning alerts received and ignored (the last few), for tests and diagnostics.
    var receivedWarnings: [AlertDescription] = [] {
        didSet { if receivedWarnings.count > 8 { receivedWarnings.removeFirst() } }
    }
    public internal(set) var summary: HandshakeSummary?
    public private(set) var sentCloseNotify = false {
        didSet { context.closeNotifySent = sentCloseNotify }
    }
    public internal(set) var receivedCloseNotify = false
    public let isClient: Bool

    /// Creates a client and queues its ClientHello.
    /// - Parameter serverName: sent as SNI (unless an IP literal) and checked against the certificate.
    ///   Required: without a name the server's certificate could be any valid certificate of
    ///   any name. Pass nil only with `ClientConfiguration.dangerouslySkipServerNameVerification`.
    /// - Parameter session: a session to offer; by default one is taken from the configuration's
    ///   session store under `sessionKey` (the server name unless given).
    public static func client(
        configuration: ClientConfiguration, serverName: String?, session: TLSSession? = nil,
        sessionKey: String? = nil, recordTrace: Bool = false
    ) throws(TLSError) -> TLSConnection {
        try configuration.validate()
        let serverName = serverName.flatMap { $0.isEmpty ? nil : $0 }
        if serverName == nil && !configuration.dangerouslySkipServerNameVerification {
            throw .misuse(
                "a server name is required to verify the server's certificate "
                    + "(set ClientConfiguration.dangerouslySkipServerNameVerification to accept a certificate for any name)")
        }
        var context = HandshakeContext(primitives: configuration.provider.primitives, recordTrace: recordTrace)
        // Sessions carry the client identity they were made with: a configuration with other
        // client certificates (a copy sharing the store) must not resume them.
        // Nor one with another trust policy: a stricter verifier never resumes a session that a
        // looser one accepted.
        let key = configuration.sessionStoreKey(for: sessionKey ?? serverName ?? "")
        let offered = session ?? configuration.sessionStore?.takeSession(for: key)
        let state = try ExpectServerHello.start(
            config: configuration, serverName: serverName, session: offered, sessionKey: key,
            context: &context)
        return TLSConnection(phase: .client(.expectServerHello(state)), context: context, isClient: true)
    }

    /// Creates a server waiting for a ClientHello.
    public static func server(configuration: ServerConfiguration, recordTrace: Bool = false) throws(TLSError) -> TLSConnection {
        try configuration.validate()
        let context = HandshakeContext(primitives: configuration.provider.primitives, recordTrace: recordTrace)
        return TLSConnection(phase: .server(.expectClientHello(ExpectClientHello(config: configuration))), context: context, isClient: false)
    }

    /// Test hook for known-answer replays (RFC 8448): a client whose ClientHello and key
    /// shares were fixed by the caller and already sent.
    static func replayingClient(_ state: ExpectServerHello, context: HandshakeContext) -> TLSConnection {
        TLSConnection(phase: .client(.expectServerHello(state)), context: context, isClient: true)
    }

    private init(phase: ConnectionPhase, context: HandshakeContext, isClient: Bool) {
        self.storedPhase = phase
        self.context = context
        self.isClient = isClient
        self.receivedFirstClientHello = isClient
        refreshPhaseFlags(phase)
    }

    public var isHandshakeComplete: Bool { summary != nil }
    public var isHandshaking: Bool {
        switch phase {
        case .client, .server, .client12, .server12, .paused, .transitioning: return true
        case .traffic, .failed: return false
        }
    }
    /// The error that failed the connection, if it has failed.
    public var failure: TLSError? {
        if case .failed(let e) = phase { return e }
        return nil
    }
    /// Who the peer proved to be (its verified chain and handshake signature), once the
    /// handshake completed; nil for a client that was not asked to authenticate.
    public var peerIdentity: PeerIdentity? { summary?.peerIdentity }
    /// Handshake messages sent and received, with sizes and times (when `recordTrace` was set).
    public var trace: [HandshakeTraceEntry] { context.trace }
    /// Gives back the buffer storage the handshake left behind (call it once the output was
    /// taken after the handshake completed): idle connections then hold only their keys and
    /// state. The NIO handler calls it for you.
    public func releaseIdleStorage() {
        context.records.releaseIdleStorage()
        context.joiner.releaseIdleStorage()
    }

    /// A thread CPU clock (nanoseconds) for the computations in the trace (`qssl trace` sets it).
    public var traceCPUClock: (@Sendable () -> Int64)? {
        get { context.traceCPUClock }
        set { context.traceCPUClock = newValue }
    }
    /// A client: the version and cipher suite the server's ServerHello chose, once it was
    /// accepted (not a HelloRetryRequest); nil before.
    public private(set) var negotiatedVersion: ProtocolVersion?
    public private(set) var negotiatedCipherSuite: CipherSuite?
    /// When `recordTrace` was set: each record received from the peer as it was opened, in
    /// order — its (inner) content type and plaintext length, padding and AEAD overhead
    /// excluded. Bounded: the first `maxTracedRecords`.
    public internal(set) var tracedReceivedRecords: [(contentType: UInt8, plaintextLength: Int)] = []
    static let maxTracedRecords = 1024
    /// Post-handshake messages traced (the first `maxTracedPostHandshakeMessages` only).
    var tracedPostHandshakeMessages = 0
    static let maxTracedPostHandshakeMessages = 64

    func noteNegotiated(_ message: HandshakeMessage) {
        guard negotiatedVersion == nil, let hello = try? message.require(ServerHello.self), !hello.isHelloRetryRequest else { return }
        var version = ProtocolVersion.tls12
        if let ext = hello.extensions[.supportedVersions], ext.count == 2 { version = ProtocolVersion(rawValue: UInt16(ext[0]) << 8 | UInt16(ext[1])) }
        negotiatedVersion = version
        negotiatedCipherSuite = hello.cipherSuite
    }

    var isTLS12: Bool {
        switch phase {
        case .client12, .server12: return true
        case .traffic(let t): return t.tls13 == nil
        default: return false
        }
    }

    /// Bytes to send to the peer. Call after every other method.
    public func takeOutput() -> [UInt8] { context.records.takeOutbound() }

    /// Hands the bytes to send to `body` (copy them out: the buffer is reused) and empties the
    /// output. Unlike `takeOutput()` no array changes hands, so the connection keeps its output
    /// buffer instead of allocating a new one for every flight or record.
    public func takeOutput<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try context.records.drainOutbound(body)
    }

    /// Feeds bytes read from the peer and returns what happened.
    public func receive<C: Collection>(_ bytes: C) throws(TLSError) -> [TLSEvent] where C.Element == UInt8 {
        if isFailed, case .failed(let error) = phase { throw error }
        // After the peer's close_notify nothing more is read: do not buffer what follows.
        guard !receivedCloseNotify else { return [] }
        // While a decision is pending nothing is processed, so what arrives is only buffered:
        // bounded, or a peer could make us hold any amount during a slow OCSP fetch.
        if isPaused && context.records.bufferedInputCount + bytes.count > maxBufferedWhilePaused {
            let error = TLSError.misbehaved(.sentTooMuchWhileWaiting, "more than \(maxBufferedWhilePaused) bytes while a decision was pending")
            fail(with: error)
            throw error
        }
        var events: [TLSEvent] = []
        var failure: TLSError?
        // Contiguous bytes (an array, a NIO ByteBuffer's view) are read in place when nothing
        // is buffered before them: records are opened straight from the caller's buffer, and
        // only an incomplete tail is copied in.
        let readInPlace: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            context.records.lend(UnsafeRawBufferPointer(buffer))
            defer { context.records.endLoan() }
            do throws(TLSError) { try drive(into: &events) } catch { failure = error }
        }
        if readInPlace == nil {
            context.records.feed(bytes)
            do throws(TLSError) { try drive(into: &events) } catch { failure = error }
        }
        if let failure {
            fail(with: failure)
            throw failure
        }
        return events
    }

    /// Handles buffered handshake messages and records until more bytes are needed, the
    /// handshake pauses for a decision, or the peer closed.
    private func drive(into events: inout [TLSEvent]) throws(TLSError) {
        while !receivedCloseNotify && !isPaused {
            if let message = try context.joiner.next(receivedByClient: isClient, expected: isClient ? nil : serverExpectedMessages) {
                try handle(message, into: &events)
                continue
            }
            guard let (type, payload) = try context.records.readRecord() else { break }
            try process(type, payload, into: &events)
        }
        try context.flush()
    }

    /// The decision the handshake waits for, if it is paused.
    public var pendingDecision: PendingDecision? {
        if case .paused(let p) = phase { return p.decision }
        return nil
    }

    /// Answers the pending decision and goes on with the handshake, processing whatever arrived
    /// meanwhile. A `.failure` answer fails the connection with that error's alert.
    public func resume(with answer: DecisionAnswer) throws(TLSError) -> [TLSEvent] {
        if case .failed(let error) = phase { throw error }
        guard case .paused(let paused) = phase else { throw .misuse("no decision is pending") }
        // A mismatched answer is refused here, while the connection is still paused.
        let accepted = try paused.accept(answer)
        var events: [TLSEvent] = []
        do {
            phase = .transitioning
            phase = try accepted.run(&context)
            try afterTransition(into: &events)
            try drive(into: &events)
        } catch {
            fail(with: error)
            throw error
        }
        return events
    }

    /// Resumes a handshake paused for a signature (`resume(with: .signature(signature))`).
    public func provideSignature(_ signature: [UInt8]) throws(TLSError) -> [TLSEvent] {
        guard pendingDecision?.signatureRequest != nil || failure != nil else { throw .misuse("no signature was requested") }
        return try resume(with: .signature(signature))
    }

    /// Queues application data. Before the handshake completes it is buffered and sent right after.
    public func send(_ data: [UInt8]) throws(TLSError) {
        try data.withBytes { (data) throws(TLSError) in try send(data) }
    }

    /// Queues application data read straight from the caller's buffer (a NIO `ByteBuffer`'s
    /// readable bytes, say): it is copied once, into the record it is sealed in.
    public func send(_ data: UnsafeRawBufferPointer) throws(TLSError) {
        if isInTraffic && !sentCloseNotify {
            do {
                try context.writeApplicationData(data)
                try updateKeysIfWornOut()
            } catch {
                fail(with: error)
                throw error
            }
            return
        }
        if isFailed, case .failed(let error) = phase { throw error }
        guard !sentCloseNotify else { throw .misuse("send after close") }
        guard case .traffic = phase else {
            bufferedApplicationData.append(Array(data))
            return
        }
        do {
            try context.writeApplicationData(data)
            try updateKeysIfWornOut()
        } catch {
            fail(with: error)
            throw error
        }
    }

    /// RFC 8446 §5.5: AES-GCM keys may protect about 2^24.5 full records; we update our
    /// sending keys well before that, without asking the peer to.
    var automaticKeyUpdateRecords: UInt64 = 1 << 23

    private func updateKeysIfWornOut() throws(TLSError) {
        guard let sequence = context.records.writeProtection?.sequence, sequence >= automaticKeyUpdateRecords,
            case .traffic(var traffic) = phase, traffic.tls13 != nil
        else { return }
        try traffic.sendKeyUpdate(request: false, context: &context)
        phase = .traffic(traffic)
    }

    /// Test hook: writes a handshake message as is under the current keys.
    func sendRawHandshakeForTesting(_ message: HandshakeMessage) throws(TLSError) {
        try context.records.write(.handshake, message.encoded)
    }

    /// Test hook: writes one record of any type as is under the current keys.
    func sendRawRecordForTesting(_ type: ContentType, _ payload: [UInt8], padding: Int = 0) throws(TLSError) {
        try context.records.writeRawForTesting(type, payload, padding: padding)
    }

    /// Sends close_notify (RFC 8446 §6.1). Reading may continue until the peer's close_notify.
    ///
    /// Closing while a decision is pending cancels the handshake: user_canceled, then
    /// close_notify; a later `resume` answers `closed`.
    public func close() {
        guard !sentCloseNotify else { return }
        sentCloseNotify = true
        if case .failed = phase { return }
        if case .paused = phase {
            try? context.records.writeAlert(.warning, .userCanceled)
            try? context.records.writeAlert(.warning, .closeNotify)
            phase = .failed(TLSError(.closed, "closed while a decision was pending"))
            return
        }
        // Data queued before the handshake completed goes out first: close_notify must be the
        // last thing we send (RFC 8446 §6.1), so it waits for the handshake with that data.
        guard bufferedApplicationData.isEmpty || isHandshakeComplete else {
            closeAfterBufferedData = true
            return
        }
        try? context.records.writeAlert(.warning, .closeNotify)
    }
    /// close() was called with application data still waiting for the handshake.
    var closeAfterBufferedData = false

    /// A TLS 1.3 server asks the client for a certificate after the handshake (RFC 8446 §4.6.2);
    /// the answer arrives as `.clientAuthenticated`. The client must have offered
    /// post_handshake_auth and a `clientCertificateVerifier` must be configured.
    public func requestClientCertificate() throws(TLSError) {
        if case .failed(let error) = phase { throw error }
        guard case .traffic(var traffic) = phase else { throw .misuse("a certificate can be requested only after the handshake") }
        guard !sentCloseNotify else { throw .misuse("request after close") }
        do {
            try traffic.requestClientCertificate(context: &context)
            phase = .traffic(traffic)
        } catch  where error.code.isAPIMisuse {
            throw error
        } catch {
            fail(with: error)
            throw error
        }
    }

    /// Updates our sending keys, optionally asking the peer to update its own (RFC 8446 §4.6.3).
    public func updateKeys(requestPeerUpdate: Bool) throws(TLSError) {
        if case .failed(let error) = phase { throw error }
        guard case .traffic(var traffic) = phase else { throw .misuse("key update before the handshake completed") }
        // A caller bug, not a reason to fail the connection.
        guard traffic.tls13 != nil else { throw .misuse("KeyUpdate exists only in TLS 1.3") }
        do {
            try traffic.sendKeyUpdate(request: requestPeerUpdate, context: &context)
            phase = .traffic(traffic)
        } catch {
            fail(with: error)
            throw error
        }
    }
}

extension ConnectionPhase {
    /// What the connection keeps beside its phase, computed once per assignment.
    func flags(server: Bool) -> (traffic: Bool, paused: Bool, failed: Bool, serverExpected: HandshakeTypeSet?) {
        switch self {
        case .traffic:
            // After the handshake: KeyUpdate and post-handshake authentication (TLS 1.3), or a
            // renegotiating ClientHello (TLS 1.2), which is refused by its handler.
            return (true, false, false, server ? [.keyUpdate, .certificate, .certificateVerify, .finished, .clientHello] : nil)
        case .paused: return (false, true, false, nil)
        case .failed: return (false, false, true, nil)
        case .server(.expectClientHello), .server(.expectClientHelloAfterRetry): return (false, false, false, [.clientHello])
        case .server(.expectCertificate), .server12(.expectCertificate): return (false, false, false, [.certificate])
        case .server(.expectCertificateVerify), .server12(.expectCertificateVerify): return (false, false, false, [.certificateVerify])
        case .server(.expectFinished), .server12(.finishing): return (false, false, false, [.finished])
        case .server12(.expectClientKeyExchange): return (false, false, false, [.clientKeyExchange])
        default: return (false, false, false, nil)
        }
    }
}
