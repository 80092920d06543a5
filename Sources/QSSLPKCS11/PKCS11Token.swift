import CPKCS11
import Foundation
import QSSL

/// A logged-in token: a pool of sessions and the threads that sign with its keys.
///
/// ```swift
/// let module = try PKCS11Module.load(path: "/usr/lib/softhsm/libsofthsm2.so")
/// let token = try PKCS11Token.open(module: module, matching: try PKCS11URI("pkcs11:token=web"),
///                                  pin: .file("/etc/qssl/pin"))
/// let key = try token.signingKey(matching: try PKCS11URI("pkcs11:token=web;object=server;type=private"))
/// ```
public final class PKCS11Token: @unchecked Sendable {
    /// Sizes that decide how a token behaves under load.
    public struct Configuration: Sendable {
        /// Sessions kept open (each signs one message at a time).
        public var sessionPoolSize: Int
        /// Threads that make blocking calls to the token: the signing concurrency.
        public var signingThreads: Int
        /// Signatures that may wait for a thread; one more fails fast (internal_error).
        public var signingQueueLimit: Int
        /// How long a handshake waits for the token before it fails with internal_error.
        public var signingTimeout: Duration

        public init(sessionPoolSize: Int = 4, signingThreads: Int = 4, signingQueueLimit: Int = 64, signingTimeout: Duration = .seconds(10)) {
            self.sessionPoolSize = sessionPoolSize
            self.signingThreads = signingThreads
            self.signingQueueLimit = signingQueueLimit
            self.signingTimeout = signingTimeout
        }
    }

    public let module: PKCS11Module
    public let slot: PKCS11Slot
    public let configuration: Configuration
    /// What the token can do (C_GetMechanismList).
    public let mechanisms: [PKCS11MechanismInfo]
    /// Whether C_Login succeeded (private objects are visible only then).
    public let isLoggedIn: Bool
    let sessions: SessionPool
    let executor: SigningExecutor

    /// The token's information, as read when it was opened.
    public var info: PKCS11TokenInfo { slot.token! }  // local invariant: only slots with a token are opened

    /// Opens the one token matching `uri`'s token attributes and logs in with `pin` (or, when
    /// nil, with the URI's `pin-source`; without either, only public objects are visible).
    /// - Throws: `.tokenNotFound` (listing the tokens there are), `.pinUnavailable`, or the
    ///   CKR_ code of C_OpenSession / C_Login (CKR_PIN_INCORRECT, CKR_PIN_LOCKED, …).
    public static func open(
        module: PKCS11Module, matching uri: PKCS11URI, pin: PKCS11PIN?,
        configuration: Configuration = Configuration()
    ) throws(PKCS11Error) -> PKCS11Token {
        guard !uri.hasPINValue else {
            throw PKCS11Error(.pinUnavailable, "the URI carries a pin-value: give the PIN in a file or an environment variable instead")
        }
        // RFC 7512 §2.3: library-* attributes select the module.
        if let wanted = uri.libraryManufacturer, wanted != module.info.manufacturer {
            throw PKCS11Error(.tokenNotFound, "\(uri) asks for library-manufacturer '\(wanted)', the module is by '\(module.info.manufacturer)'")
        }
        if let wanted = uri.libraryDescription, wanted != module.info.libraryDescription {
            throw PKCS11Error(.tokenNotFound, "\(uri) asks for library-description '\(wanted)', the module is '\(module.info.libraryDescription)'")
        }
        let all = try module.slots()
        let slots = all.filter { $0.token?.isInitialized == true }
        let unreadable = all.compactMap(\.tokenError).map { "; \($0)" }.joined()
        let matching = slots.filter { uri.matches(token: $0.token!, slot: $0) }
        guard matching.count == 1 else {
            let known = slots.map { "'\($0.token!.label)' (slot \($0.id))" }.joined(separator: ", ")
            if matching.isEmpty {
                throw PKCS11Error(.tokenNotFound, "no token matches \(uri); the module has \(known.isEmpty ? "no initialized token" : known)\(unreadable)")
            }
            throw PKCS11Error(.tokenNotFound, "\(matching.count) tokens match \(uri): \(known); name one with token= or slot-id=")
        }
        let pinSource = pin ?? uri.pinSource.map(PKCS11PIN.file)
        return try PKCS11Token(module: module, slot: matching[0], pin: pinSource, configuration: configuration)
    }

    /// Opens the token with this label.
    public static func open(
        module: PKCS11Module, label: String, pin: PKCS11PIN?,
        configuration: Configuration = Configuration()
    ) throws(PKCS11Error) -> PKCS11Token {
        try open(module: module, matching: PKCS11URI(token: label), pin: pin, configuration: configuration)
    }

    private init(module: PKCS11Module, slot: PKCS11Slot, pin: PKCS11PIN?, configuration: Configuration) throws(PKCS11Error) {
        self.module = module
        self.slot = slot
        self.configuration = configuration
        mechanisms = try module.mechanisms(slot: slot.id)
        sessions = try SessionPool(
            module: module, slot: CK_SLOT_ID(slot.id), capacity: max(1, configuration.sessionPoolSize),
            waitLimit: configuration.signingTimeout)
        executor = SigningExecutor(
            threads: configuration.signingThreads, queueLimit: configuration.signingQueueLimit,
            name: "pkcs11-\(slot.token?.label ?? "\(slot.id)")")
        if let pin {
            var bytes = try pin.read()
            defer { SecretBytes.wipe(&bytes) }
            do {
                try sessions.withSession { f, session throws(PKCS11Error) in
                    let rv = f.C_Login!(session, CKU.user, &bytes, CK_ULONG(bytes.count))
                    // Another token object of this process may have logged in: the login is per
                    // application and token (PKCS#11 2.40 §5.6), so that is success.
                    if rv != CKR.userAlreadyLoggedIn { try check(rv, "C_Login", "token '\(slot.token?.label ?? "")' with \(pin)") }
                }
            } catch {
                sessions.closeAll()
                throw error
            }
            isLoggedIn = true
        } else {
            isLoggedIn = false
        }
    }

    /// Whether the token has a mechanism.
    public func supports(mechanism: UInt) -> Bool { mechanisms.contains { $0.type == mechanism } }

    /// Whether the token signs ML-DSA (PKCS#11 3.2 CKM_ML_DSA): if not, a composite key keeps its
    /// ML-DSA half in software.
    public var supportsMLDSA: Bool { supports(mechanism: UInt(CKM.mldsa)) }

    /// Counters of the signing threads (for benchmarks and monitoring).
    public var signingStatistics: SigningStatistics { executor.statistics }

    /// Closes the sessions and stops the signing threads. Keys of this token fail afterwards.
    public func close() {
        executor.shutdown()
        sessions.closeAll()
    }

    /// Runs `body` with a pooled session (blocking the calling thread while it waits for one).
    func withSession<T>(_ body: (CK_FUNCTION_LIST, CK_SESSION_HANDLE) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        try sessions.withSession(body)
    }

    /// Runs `body` with a new read-write session (key generation, storing certificates).
    func withReadWriteSession<T>(_ body: (CK_FUNCTION_LIST, CK_SESSION_HANDLE) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        try module.call { f throws(PKCS11Error) in
            var session: CK_SESSION_HANDLE = 0
            try check(f.C_OpenSession!(CK_SLOT_ID(slot.id), CKF.serialSession | CKF.rwSession, nil, nil, &session), "C_OpenSession", "read-write")
            defer { _ = f.C_CloseSession!(session) }
            return try body(f, session)
        }
    }
}

/// Open sessions handed to one caller at a time.
final class SessionPool: @unchecked Sendable {
    private let module: PKCS11Module
    private let slot: CK_SLOT_ID
    private let capacity: Int
    private let waitLimit: Duration
    private let condition = NSCondition()
    private var idle: [CK_SESSION_HANDLE] = []
    private var openCount = 0
    private var closed = false

    init(module: PKCS11Module, slot: CK_SLOT_ID, capacity: Int, waitLimit: Duration) throws(PKCS11Error) {
        self.module = module
        self.slot = slot
        self.capacity = capacity
        self.waitLimit = waitLimit
        // All sessions now: a token that cannot open them says so at start, not mid-handshake.
        for _ in 0..<capacity {
            do { idle.append(try openSession()) } catch {
                closeAll()
                throw error
            }
            openCount += 1
        }
    }

    private func openSession() throws(PKCS11Error) -> CK_SESSION_HANDLE {
        try module.call { f throws(PKCS11Error) in
            var session: CK_SESSION_HANDLE = 0
            try check(f.C_OpenSession!(slot, CKF.serialSession, nil, nil, &session), "C_OpenSession", "slot \(slot)")
            return session
        }
    }

    func withSession<T>(_ body: (CK_FUNCTION_LIST, CK_SESSION_HANDLE) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let session = try acquire()
        do {
            let result = try module.call { f throws(PKCS11Error) in try body(f, session) }
            release(session, broken: false)
            return result
        } catch {
            release(session, broken: Self.endsSession(error))
            throw error
        }
    }

    /// Errors after which the session is gone (the token was removed, the module finalized).
    static func endsSession(_ error: PKCS11Error) -> Bool {
        guard let rv = error.returnValue.map(CK_RV.init) else { return error.reason == .finalized }
        return [
            CKR.sessionHandleInvalid, CKR.sessionClosed, CKR.deviceRemoved, CKR.tokenNotPresent,
            CKR.cryptokiNotInitialized, CKR.deviceError,
            // An operation left active (a C_Sign that failed part-way): every later C_SignInit
            // on this session would fail.
            CKR.operationActive
        ].contains(rv)
    }

    private func acquire() throws(PKCS11Error) -> CK_SESSION_HANDLE {
        let deadline = Date().addingTimeInterval(Double(waitLimit.components.seconds) + Double(waitLimit.components.attoseconds) / 1e18)
        condition.lock()
        while true {
            if closed {
                condition.unlock()
                throw PKCS11Error(.finalized, "the token was closed", returnValue: UInt(CKR.sessionClosed))
            }
            if let session = idle.popLast() {
                condition.unlock()
                return session
            }
            if openCount < capacity {
                // Replaces a session that broke.
                openCount += 1
                condition.unlock()
                do { return try openSession() } catch {
                    condition.withLock { openCount -= 1 }
                    throw error
                }
            }
            if !condition.wait(until: deadline) {
                condition.unlock()
                throw PKCS11Error(.signingTimedOut, "no free session within \(waitLimit) (pool of \(capacity))")
            }
        }
    }

    private func release(_ session: CK_SESSION_HANDLE, broken: Bool) {
        let pooled = condition.withLock { () -> Bool in
            guard !broken && !closed else { return false }
            idle.append(session)
            condition.signal()
            return true
        }
        if pooled { return }
        // A broken session (or one returned after closeAll) is closed, outside the lock: a token
        // slow to close must not hold up every other signer. Its slot is given back only after:
        // a replacement opened first could be handed the same handle number by the token (and
        // this close would end it), or exceed a token's session cap.
        _ = try? module.call { f in f.C_CloseSession!(session) }
        condition.withLock {
            openCount -= 1
            condition.signal()
        }
    }

    func closeAll() {
        condition.lock()
        closed = true
        let sessions = idle
        idle = []
        openCount -= sessions.count
        condition.broadcast()
        condition.unlock()
        for session in sessions { _ = try? module.call { f in f.C_CloseSession!(session) } }
    }
}
