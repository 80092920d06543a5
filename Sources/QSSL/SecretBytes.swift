import Synchronization

/// Secret material — key-exchange outputs, HKDF keys, traffic secrets, master secrets, PSKs,
/// HMAC and AEAD keys — in one type that is never printed or logged, compares in constant time,
/// and is zeroised when its last copy is dropped.
///
/// The bytes are reached only inside a call (`withUnsafeBytes`): a crypto provider reads them
/// for the length of one operation, and whoever must write a secret out (a session encoding, a
/// key file) does so inside the closure. There is no property that hands out an array, so a
/// secret never lives on in a plain `[UInt8]` that nobody wipes.
public struct SecretBytes: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    // Usable from inlinable code: the two scoped accessors below are specialized in their
    // callers (the crypto provider, in another module) instead of going through generic
    // Result and closure thunks on every HKDF step.
    @usableFromInline final class Storage: @unchecked Sendable {
        // Owned by this object alone (lent for one call at most, never kept elsewhere), so the
        // wipe below reaches the very buffer the secret was written to, not a copy of it.
        @usableFromInline var bytes: [UInt8]
        @usableFromInline init(_ bytes: [UInt8]) { self.bytes = bytes }
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
        /// test can see what is left in memory then (nothing), and where.
        static let wipeObserver = Mutex<(@Sendable (UnsafeRawBufferPointer) -> Void)?>(nil)
    #endif
    @usableFromInline let storage: Storage

    /// Takes `bytes` over: pass an array nothing else keeps (a fresh primitive's output), so
    /// that the buffer wiped on release is the only one that held the secret.
    public init(_ bytes: [UInt8]) { storage = Storage(bytes) }

    /// `count` bytes written by `initialize` straight into the secret's own storage (zero
    /// before it runs). If it throws, what it wrote is wiped with the storage.
    @inlinable
    public init<E: Error>(count: Int, initializingWith initialize: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        storage = Storage([UInt8](repeating: 0, count: count))
        // Array's closures rethrow untyped errors: the typed one is carried out in a Result.
        let result: Result<Void, E> = storage.bytes.withUnsafeMutableBytes { buffer in
            do throws(E) { return .success(try initialize(buffer)) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// A copy of `bytes` (memory the caller owns and wipes, or a value that wipes itself).
    public init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { $0.copyMemory(from: bytes) }
    }

    /// `count` zero bytes: the all-zero input key material of RFC 8446 §7.1.
    public init(zeros count: Int) { storage = Storage([UInt8](repeating: 0, count: count)) }

    /// The concatenation of `parts` (a hybrid key exchange's shared secrets), in one copy.
    public init(concatenating parts: [SecretBytes]) {
        self = .concatenating(parts, prefix: parts.reduce(0) { $0 + $1.count })
    }

    public var count: Int { storage.bytes.count }
    public var isEmpty: Bool { storage.bytes.isEmpty }

    /// Calls `body` with the bytes. Do not let them escape the closure.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = storage.bytes.withUnsafeBytes { buffer in
            do throws(E) { return .success(try body(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The bytes `range` as a secret of their own (a key cut from a key block).
    public func extracting(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside a secret of \(count) bytes")
        return withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// The bytes as an array for one call into an array-taking primitive (the provider's
    /// `hmac`), without a copy: the array shares this secret's storage, which is wiped when the
    /// secret goes. Module-internal; the callee must not keep the array.
    func withArray<R>(_ body: ([UInt8]) throws -> R) rethrows -> R { try body(storage.bytes) }

    /// Constant time in the contents (lengths are public).
    public static func == (a: SecretBytes, b: SecretBytes) -> Bool { constantTimeEquals(a.storage.bytes, b.storage.bytes) }
    /// Hashes the length only: a hash of secret bytes would leak them.
    public func hash(into hasher: inout Hasher) { hasher.combine(count) }

    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count]) }
}

extension SecretBytes {
    /// The first `length` bytes of the concatenation of `parts`, in one copy.
    static func concatenating(_ parts: [SecretBytes], prefix length: Int) -> SecretBytes {
        SecretBytes(count: length) { out in
            var offset = 0
            for part in parts where offset < length {
                let n = min(part.count, length - offset)
                part.withUnsafeBytes {
                    UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + n)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<n]))
                }
                offset += n
            }
        }
    }

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
