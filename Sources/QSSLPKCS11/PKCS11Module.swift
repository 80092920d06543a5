import CPKCS11
import Foundation

/// A PKCS#11 module loaded at run time (dlopen) and initialized for multi-threaded use.
///
/// One instance per module file and process: `load(path:)` returns the loaded module when it is
/// loaded already, because a module is initialized once per process (a second C_Initialize
/// answers CKR_CRYPTOKI_ALREADY_INITIALIZED).
///
/// ```swift
/// let module = try PKCS11Module.load(path: "/usr/lib/softhsm/libsofthsm2.so")
/// for slot in try module.slots() { print(slot.id, slot.token?.label ?? "-") }
/// ```
public final class PKCS11Module: @unchecked Sendable {
    /// The path the module was loaded from.
    public let path: String
    /// What the module says about itself.
    public let info: Info
    /// How the function list was obtained: "C_GetInterface" (PKCS#11 3.x) or "C_GetFunctionList".
    public let entryPoint: String

    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let gate = CallGate()
    private let registryKey: String

    /// The module's C_GetInfo.
    public struct Info: Sendable, CustomStringConvertible {
        /// The Cryptoki version the module implements, e.g. "2.40" or "3.0".
        public let cryptokiVersion: String
        public let manufacturer: String
        public let libraryDescription: String
        public let libraryVersion: String
        public var description: String { "\(libraryDescription) \(libraryVersion) by \(manufacturer), Cryptoki \(cryptokiVersion)" }
    }

    private static let registryLock = NSLock()
    nonisolated(unsafe) private static var registry: [String: PKCS11Module] = [:]

    /// Loads and initializes the module at `path` (C_Initialize with CKF_OS_LOCKING_OK), or returns
    /// the instance already loaded from that file.
    /// - Throws: `.moduleNotLoadable` when dlopen fails, `.notAPKCS11Module` without an entry
    ///   point, or the CKR_ code C_Initialize returned.
    public static func load(path: String) throws(PKCS11Error) -> PKCS11Module {
        // The file, not the name: dlopen maps one file once, however it is reached.
        let key = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        registryLock.lock()
        defer { registryLock.unlock() }
        if let loaded = registry[key], !loaded.isFinalized { return loaded }
        let module = try PKCS11Module(path: path, registryKey: key)
        registry[key] = module
        return module
    }

    private init(path: String, registryKey: String) throws(PKCS11Error) {
        self.path = path
        self.registryKey = registryKey
        guard FileManager.default.fileExists(atPath: path) else {
            throw PKCS11Error(.moduleNotLoadable, "no PKCS#11 module at \(path)")
        }
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = qssl_pkcs11_open_module(path, &message, message.count) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PKCS11Error(.moduleNotLoadable, "cannot load \(path): \(reason)")
        }
        // PKCS#11 3.0 §5.4: prefer C_GetInterface("PKCS 11") — its list starts with the 2.x layout.
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        var entry = "C_GetFunctionList"
        if let symbol = qssl_pkcs11_symbol(handle, "C_GetInterface") {
            let getInterface = unsafeBitCast(symbol, to: CK_C_GetInterface.self)
            var interface: UnsafeMutablePointer<CK_INTERFACE>?
            var name = Array("PKCS 11".utf8) + [0]
            if getInterface(&name, nil, &interface, 0) == CKR.ok, let functionList = interface?.pointee.pFunctionList {
                list = functionList.assumingMemoryBound(to: CK_FUNCTION_LIST.self)
                entry = "C_GetInterface"
            }
        }
        if list == nil {
            guard let symbol = qssl_pkcs11_symbol(handle, "C_GetFunctionList") else {
                throw PKCS11Error(.notAPKCS11Module, "\(path) exports neither C_GetInterface nor C_GetFunctionList")
            }
            let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
            try check(getFunctionList(&list), "C_GetFunctionList", path)
        }
        guard let list, let initialize = list.pointee.C_Initialize, let getInfo = list.pointee.C_GetInfo else {
            throw PKCS11Error(.notAPKCS11Module, "\(path) returned an empty function list")
        }
        // Every function Q-SSL calls must be present: calls below unwrap them.
        let l = list.pointee
        let present: [(String, Bool)] = [
            ("C_Finalize", l.C_Finalize != nil), ("C_GetSlotList", l.C_GetSlotList != nil),
            ("C_GetSlotInfo", l.C_GetSlotInfo != nil), ("C_GetTokenInfo", l.C_GetTokenInfo != nil),
            ("C_GetMechanismList", l.C_GetMechanismList != nil), ("C_GetMechanismInfo", l.C_GetMechanismInfo != nil),
            ("C_OpenSession", l.C_OpenSession != nil), ("C_CloseSession", l.C_CloseSession != nil),
            ("C_Login", l.C_Login != nil), ("C_GetAttributeValue", l.C_GetAttributeValue != nil),
            ("C_FindObjectsInit", l.C_FindObjectsInit != nil), ("C_FindObjects", l.C_FindObjects != nil),
            ("C_FindObjectsFinal", l.C_FindObjectsFinal != nil), ("C_SignInit", l.C_SignInit != nil),
            ("C_Sign", l.C_Sign != nil), ("C_VerifyInit", l.C_VerifyInit != nil), ("C_Verify", l.C_Verify != nil),
            ("C_GenerateKeyPair", l.C_GenerateKeyPair != nil), ("C_CreateObject", l.C_CreateObject != nil),
            ("C_DestroyObject", l.C_DestroyObject != nil), ("C_DeriveKey", l.C_DeriveKey != nil),
            ("C_GetSessionInfo", l.C_GetSessionInfo != nil), ("C_Logout", l.C_Logout != nil)
        ]
        if let missing = present.first(where: { !$0.1 }) {
            throw PKCS11Error(.notAPKCS11Module, "\(path) has no \(missing.0) in its function list")
        }
        functions = list
        entryPoint = entry
        // The module may use the OS's threads and locks: signing runs on several threads at once.
        var arguments = CK_C_INITIALIZE_ARGS(
            CreateMutex: nil, DestroyMutex: nil, LockMutex: nil, UnlockMutex: nil,
            flags: CKF.osLockingOK, pReserved: nil)
        try check(initialize(&arguments), "C_Initialize", path)
        var ckInfo = CK_INFO()
        try check(getInfo(&ckInfo), "C_GetInfo", path)
        info = Info(
            cryptokiVersion: "\(ckInfo.cryptokiVersion.major).\(ckInfo.cryptokiVersion.minor)",
            manufacturer: paddedString(ckInfo.manufacturerID),
            libraryDescription: paddedString(ckInfo.libraryDescription),
            libraryVersion: "\(ckInfo.libraryVersion.major).\(ckInfo.libraryVersion.minor)")
    }

    /// Whether `finalize()` ran (or is running).
    public var isFinalized: Bool { gate.isClosed }

    /// Finalizes the module (C_Finalize) once the calls in flight have returned, waiting at most
    /// `timeout` for them. Every later call, through any token or key of this module, fails with
    /// `.finalized` (CKR_CRYPTOKI_NOT_INITIALIZED) instead of reaching the module.
    /// - Returns: false when calls were still running after `timeout` (C_Finalize is then not called).
    @discardableResult
    public func finalize(timeout: Duration = .seconds(10)) -> Bool {
        Self.registryLock.lock()
        if Self.registry[registryKey] === self { Self.registry[registryKey] = nil }
        Self.registryLock.unlock()
        guard gate.close(waitingAtMost: timeout) else { return false }
        _ = functions.pointee.C_Finalize?(nil)
        return true
    }

    /// Runs `body` with the function list, unless the module was finalized.
    func call<T>(_ body: (CK_FUNCTION_LIST) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        guard gate.enter() else {
            throw PKCS11Error(.finalized, "module \(path) was finalized", returnValue: UInt(CKR.cryptokiNotInitialized))
        }
        defer { gate.leave() }
        return try body(functions.pointee)
    }

    /// The slots, with their tokens (only slots with a token present unless `includeEmpty`).
    public func slots(includeEmpty: Bool = false) throws(PKCS11Error) -> [PKCS11Slot] {
        try call { f throws(PKCS11Error) in
            var count: CK_ULONG = 0
            try check(f.C_GetSlotList!(includeEmpty ? 0 : 1, nil, &count), "C_GetSlotList")
            var ids = [CK_SLOT_ID](repeating: 0, count: Int(count))
            try check(f.C_GetSlotList!(includeEmpty ? 0 : 1, &ids, &count), "C_GetSlotList")
            var slots: [PKCS11Slot] = []
            for id in ids.prefix(Int(count)) {
                var slotInfo = CK_SLOT_INFO()
                try check(f.C_GetSlotInfo!(id, &slotInfo), "C_GetSlotInfo", "slot \(id)")
                var token: PKCS11TokenInfo?
                var tokenError: PKCS11Error?
                if slotInfo.flags & CKF.tokenPresent != 0 {
                    // One unreadable token (removed in between, busy) does not hide the others.
                    var tokenInfo = CK_TOKEN_INFO()
                    let rv = f.C_GetTokenInfo!(id, &tokenInfo)
                    if rv == CKR.ok {
                        token = PKCS11TokenInfo(tokenInfo)
                    } else {
                        tokenError = .call("C_GetTokenInfo", rv, "slot \(id)")
                    }
                }
                slots.append(
                    PKCS11Slot(
                        id: UInt(id), description: paddedString(slotInfo.slotDescription),
                        manufacturer: paddedString(slotInfo.manufacturerID), token: token, tokenError: tokenError))
            }
            return slots
        }
    }

    /// The mechanisms a slot's token supports (C_GetMechanismList, C_GetMechanismInfo).
    public func mechanisms(slot: UInt) throws(PKCS11Error) -> [PKCS11MechanismInfo] {
        try call { f throws(PKCS11Error) in
            var count: CK_ULONG = 0
            try check(f.C_GetMechanismList!(CK_SLOT_ID(slot), nil, &count), "C_GetMechanismList", "slot \(slot)")
            var types = [CK_MECHANISM_TYPE](repeating: 0, count: Int(count))
            try check(f.C_GetMechanismList!(CK_SLOT_ID(slot), &types, &count), "C_GetMechanismList", "slot \(slot)")
            return try types.prefix(Int(count)).map { type throws(PKCS11Error) in
                var info = CK_MECHANISM_INFO()
                try check(f.C_GetMechanismInfo!(CK_SLOT_ID(slot), type, &info), "C_GetMechanismInfo", CKM.name(type))
                return PKCS11MechanismInfo(
                    type: UInt(type), minimumKeySize: UInt(info.ulMinKeySize),
                    maximumKeySize: UInt(info.ulMaxKeySize), flags: UInt(info.flags))
            }
        }
    }
}

/// A slot and the token in it.
public struct PKCS11Slot: Sendable {
    public let id: UInt
    public let description: String
    public let manufacturer: String
    /// Nil when no token is present, or when it could not be read (`tokenError`).
    public let token: PKCS11TokenInfo?
    /// Why a present token could not be read.
    public let tokenError: PKCS11Error?
}

/// A token's C_GetTokenInfo.
public struct PKCS11TokenInfo: Sendable {
    public let label: String
    public let manufacturer: String
    public let model: String
    public let serialNumber: String
    let flags: UInt
    public let sessionCount: UInt
    public let maxSessionCount: UInt

    init(_ info: CK_TOKEN_INFO) {
        label = paddedString(info.label)
        manufacturer = paddedString(info.manufacturerID)
        model = paddedString(info.model)
        serialNumber = paddedString(info.serialNumber)
        flags = UInt(info.flags)
        sessionCount = UInt(info.ulSessionCount)
        maxSessionCount = UInt(info.ulMaxSessionCount)
    }

    public var isInitialized: Bool { flags & UInt(CKF.tokenInitialized) != 0 }
    public var requiresLogin: Bool { flags & UInt(CKF.loginRequired) != 0 }
    public var isUserPINInitialized: Bool { flags & UInt(CKF.userPINInitialized) != 0 }
    public var isUserPINLocked: Bool { flags & UInt(CKF.userPINLocked) != 0 }
    public var hasProtectedAuthenticationPath: Bool { flags & UInt(CKF.protectedAuthenticationPath) != 0 }
}

/// A mechanism of a token, with what it may be used for.
public struct PKCS11MechanismInfo: Sendable, Hashable, CustomStringConvertible {
    /// The CKM_ value.
    public let type: UInt
    public let minimumKeySize: UInt
    public let maximumKeySize: UInt
    let flags: UInt

    /// The spec name, e.g. "CKM_ECDSA".
    public var name: String { CKM.name(CK_MECHANISM_TYPE(type)) }
    public var canSign: Bool { flags & UInt(CKF.sign) != 0 }
    public var canVerify: Bool { flags & UInt(CKF.verify) != 0 }
    public var canDerive: Bool { flags & UInt(CKF.derive) != 0 }
    public var canGenerateKeyPair: Bool { flags & UInt(CKF.generateKeyPair) != 0 }
    public var isHardware: Bool { flags & UInt(CKF.hw) != 0 }
    public var description: String { name }
}

/// Counts the calls in flight so that finalizing waits for them, and refuses calls afterwards.
final class CallGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var inFlight = 0
    private var closed = false

    var isClosed: Bool { condition.withLock { closed } }

    func enter() -> Bool {
        condition.withLock {
            guard !closed else { return false }
            inFlight += 1
            return true
        }
    }

    func leave() {
        condition.withLock {
            inFlight -= 1
            if inFlight == 0 { condition.broadcast() }
        }
    }

    /// Refuses new calls and waits for the running ones; false if they outlast `timeout`.
    func close(waitingAtMost timeout: Duration) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        closed = true
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        while inFlight > 0 {
            if !condition.wait(until: deadline) { return inFlight == 0 }
        }
        return true
    }
}

/// A blank-padded fixed-size PKCS#11 string (a C array imported as a tuple).
func paddedString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        var bytes = Array(raw)
        while let last = bytes.last, last == 0x20 || last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
