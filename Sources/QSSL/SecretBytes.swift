import Synchronization

/// Secret material — traffic secrets, master secrets, PSKs, private-key bytes — in one type
/// that is never printed or logged, compares in constant time, and is zeroised when its last
/// copy is dropped.
///
/// Derivations hand the bytes to the crypto provider for the length of one call
/// (`withUnsafeBytes` / `bytes`); what the state machines keep between messages is always a
/// `SecretBytes`.
public struct SecretBytes: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private final class Storage: @unchecked Sendable {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        deinit {
            bytes.withUnsafeMutableBytes { buffer in
                zeroise(buffer)
                #if DEBUG
                SecretBytes.wipeObserver.withLock { $0 }?(UnsafeRawBufferPointer(buffer))
                #endif
            }
        }
    }
    #if DEBUG
    /// Debug builds only: called with the storage just wiped by the last copy's release, so a
    /// test can see what is left in memory then (nothing).
    static let wipeObserver = Mutex<(@Sendable (UnsafeRawBufferPointer) -> Void)?>(nil)
    #endif
    private let storage: Storage

    public init(_ bytes: [UInt8]) { storage = Storage(bytes) }

    public var count: Int { storage.bytes.count }
    public var isEmpty: Bool { storage.bytes.isEmpty }

    /// A copy of the bytes for one call into a crypto primitive. Do not keep it.
    public var bytes: [UInt8] { storage.bytes }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.bytes.withUnsafeBytes(body)
    }

    /// Constant time in the contents (lengths are public).
    public static func == (a: SecretBytes, b: SecretBytes) -> Bool { constantTimeEquals(a.storage.bytes, b.storage.bytes) }
    /// Hashes the length only: a hash of secret bytes would leak them.
    public func hash(into hasher: inout Hasher) { hasher.combine(count) }

    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count]) }
}

extension SecretBytes {
    /// Zeroes a plain array that held secret bytes (a file read, a PIN, an encoded session),
    /// in a way the optimiser keeps, and empties it.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { zeroise($0) }
        bytes.removeAll()
    }
}

/// Overwrites memory with zeros in a way the optimiser does not remove (an opaque call).
@inline(never)
func zeroise(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    base.initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count)
    zeroiseBarrier(base)
}

/// Keeps the zeroing stores alive: the pointer escapes into a function the optimiser must
/// assume reads it.
@inline(never) @_optimize(none)
func zeroiseBarrier(_ pointer: UnsafeMutableRawPointer) { _ = pointer.load(as: UInt8.self) }
