import QSSL
import QSSLSwiftCrypto
import QSSLWire
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Session-ticket keys shared by several servers through one file (PROTOCOL.md §4).
///
/// One process owns the file and rotates it (`qssl ticket-keys rotate`, from cron or a
/// timer); every server loads it into a `TicketKeySet` that does not rotate on its own, and
/// calls `reloadIfChanged()` now and then. The file holds the keys themselves, so it is
/// written 0600 and a file that group or others may read or write is refused: whoever can read
/// it can decrypt every session ticket sealed with it (and the session secrets inside).
///
/// Reading follows symbolic links (secret volumes in container platforms are links to the
/// current version) but checks the mode of the file actually opened.
public final class TicketKeyFile: Sendable {
    /// The path the keys are read from.
    public let path: String
    /// The keys for `ServerConfiguration`'s ticket sealer; `reloadIfChanged()` replaces them.
    public let keySet: TicketKeySet
    /// The file the current keys came from.
    private let loaded: Mutex<FileIdentity>

    /// Loads the keys at `path` into a set that does not rotate by itself.
    /// - Parameters:
    ///   - keyLifetime: seconds after which an older key stops opening tickets; at least the
    ///     `--keep-hours` of whatever rotates the file, or that setting is cut short.
    /// - Throws: `TicketKeyFileError` when the file cannot be read, is group/world accessible,
    ///   or is not a valid key file.
    public init(
        path: String, primitives: any CryptoPrimitives = SwiftCryptoPrimitives(), clock: any WallClock = SystemClock(),
        keyLifetime: UInt32 = 129_600
    ) throws(TicketKeyFileError) {
        let (keys, identity) = try Self.load(atPath: path)
        self.path = path
        keySet = TicketKeySet(keys: keys, primitives: primitives, clock: clock, keyLifetime: keyLifetime, rotatesAutomatically: false)
        loaded = Mutex(identity)
    }

    /// Reloads the keys when the file changed (another inode, size, modification or status
    /// change time) since they were loaded. Cheap when nothing changed: one `stat`.
    /// - Returns: whether the keys were replaced.
    /// - Throws: `TicketKeyFileError` when the changed file cannot be used; the set keeps the
    ///   keys it had, so tickets go on working, and the next call tries again.
    @discardableResult
    public func reloadIfChanged() throws(TicketKeyFileError) -> Bool {
        // Reloads are serialised under the lock; connections never take it (they use the set's).
        try loaded.withLock { identity throws(TicketKeyFileError) -> Bool in
            var info = stat()
            guard stat(path, &info) == 0 else { throw Self.failure(path, "stat") }
            guard FileIdentity(info) != identity else { return false }
            let (keys, fresh) = try Self.load(atPath: path)
            keySet.replaceKeys(keys)
            identity = fresh
            return true
        }
    }

    /// The keys in the file at `path`, after checking it is a regular file that only its owner
    /// can access.
    public static func readKeys(atPath path: String) throws(TicketKeyFileError) -> [TicketKey] {
        try load(atPath: path).keys
    }

    /// Writes `keys` to `path`: mode 0600 from the first byte, complete or not at all (a
    /// temporary file renamed over the old one, so a server reloading meanwhile reads the old
    /// file or the new, never half of one). A symbolic link at `path` is refused.
    public static func writeKeys(_ keys: [TicketKey], toPath path: String) throws(TicketKeyFileError) {
        var bytes: [UInt8]
        do { bytes = try TicketKeySet.encodeKeyFile(keys) } catch { throw TicketKeyFileError(path: path, reason: "\(error)") }
        defer { SecretBytes.wipe(&bytes) }
        do { try CertificateFiles.writeSecretFile(bytes, toPath: path) } catch let e as CertificateFiles.WriteError {
            throw TicketKeyFileError(path: path, reason: e.reason)
        } catch {
            throw TicketKeyFileError(path: path, reason: "\(error)")
        }
    }

    /// `keys` with a new current key made at `now`, less the keys older than `keepSeconds`
    /// (the new key always stays): what a rotation writes back.
    public static func rotated(
        _ keys: [TicketKey], now: UInt64, keepSeconds: UInt64,
        primitives: any CryptoPrimitives = SwiftCryptoPrimitives()
    ) -> [TicketKey] {
        let fresh = TicketKey.generate(primitives: primitives, createdAt: now)
        let limit = keepSeconds.multipliedReportingOverflow(by: 1000)
        // A key dated in the future (a clock that ran ahead) would stay the sealing key until
        // that date: a rotation drops it.
        let kept = keys.filter { key in
            guard key.createdAt <= now else { return false }
            guard !limit.overflow else { return true }
            return now - key.createdAt < limit.partialValue
        }
        return [fresh] + kept.filter { $0.name != fresh.name }
    }

    // MARK: - Reading

    /// The most a key file may hold: 65535 keys of 56 bytes and the header fit in 4 MiB.
    static let maximumFileSize = 4 << 20

    private static func load(atPath path: String) throws(TicketKeyFileError) -> (keys: [TicketKey], identity: FileIdentity) {
        var (bytes, info): ([UInt8], stat)
        do {
            (bytes, info) = try CertificateFiles.readSecretFile(atPath: path, holding: "ticket keys", maximumSize: maximumFileSize)
        } catch {
            throw TicketKeyFileError(path: path, reason: error.reason)
        }
        defer { SecretBytes.wipe(&bytes) }
        do {
            return (try TicketKeySet.decodeKeyFile(bytes), FileIdentity(info))
        } catch {
            throw TicketKeyFileError(path: path, reason: "not a valid ticket key file: \(error)")
        }
    }

    private static func failure(_ path: String, _ what: String, _ code: Int32 = errno) -> TicketKeyFileError {
        TicketKeyFileError(path: path, reason: "\(what): \(String(cString: strerror(code)))")
    }
}

/// Why a ticket key file could not be read or written.
public struct TicketKeyFileError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "ticket key file \(path): \(reason)" }
}

/// What tells one version of a file from the next without reading it. A rewrite by rename
/// changes the inode; an edit in place changes the size or the times (ctime also catches a
/// chmod, so a file made private again is retried).
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: timespec
    var changed: timespec

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        #if canImport(Darwin)
            modified = info.st_mtimespec
            changed = info.st_ctimespec
        #else
            modified = info.st_mtim
            changed = info.st_ctim
        #endif
    }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}
