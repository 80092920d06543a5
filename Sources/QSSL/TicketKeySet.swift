import QSSLWire
import Synchronization

/// One session-ticket key: a public name that tickets carry, and the AES-256-GCM key.
///
/// Valid by construction (16-byte name, 32-byte key), so that a set never holds a key it
/// cannot use. The key bytes are a `SecretBytes`: never printed, zeroised when dropped.
public struct TicketKey: Sendable, Hashable {
    public static let nameLength = 16
    public static let keyLength = 32

    /// Sent in clear at the start of every ticket, so that the server finds the key to open it.
    public let name: [UInt8]
    public let key: SecretBytes
    /// When the key was made (ms since the epoch); rotation and retirement count from here.
    public let createdAt: UInt64

    /// - Throws: `TLSError` (API misuse) for a name that is not 16 bytes or a key that is not 32.
    public init(name: [UInt8], key: SecretBytes, createdAt: UInt64) throws(TLSError) {
        guard name.count == Self.nameLength else { throw .misuse("a ticket key name is \(Self.nameLength) bytes, not \(name.count)") }
        guard key.count == Self.keyLength else { throw .misuse("a ticket key is \(Self.keyLength) bytes, not \(key.count)") }
        self.init(unchecked: name, key: key, createdAt: createdAt)
    }

    private init(unchecked name: [UInt8], key: SecretBytes, createdAt: UInt64) {
        self.name = name
        self.key = key
        self.createdAt = createdAt
    }

    /// A fresh key with a random name, made at `createdAt`.
    public static func generate(primitives: any CryptoPrimitives, createdAt: UInt64) -> TicketKey {
        TicketKey(
            unchecked: primitives.randomBytes(nameLength), key: SecretBytes(primitives.randomBytes(keyLength)),
            createdAt: createdAt)
    }
}

/// The server's ticket keys (PROTOCOL.md §4): one current key that seals, older keys that
/// only open, rotated on a schedule.
///
/// Ticket = key_name (16) ‖ nonce (12) ‖ AES-256-GCM(plaintext) ‖ tag (16), with key_name as
/// the additional data, so that a ticket cannot be moved to another key's name.
///
/// **Rotation.** A set made by `init(primitives:clock:rotationInterval:keyLifetime:)` rotates by
/// itself: when `seal` or `open` finds the current key older than `rotationInterval` it makes a
/// new current key, and keys older than `keyLifetime` are dropped (their tickets no longer
/// open, so the client falls back to a full handshake). With the defaults (12 h, 36 h) a key
/// seals for 12 h and its tickets open for 24 h after that, well over the 1 h ticket lifetime
/// hint. A set loaded from a file shared by several servers (`rotatesAutomatically: false`)
/// never makes keys of its own: servers that rotated independently would seal with keys their
/// peers do not know. The file's owner rotates it (`qssl ticket-keys rotate`) and each server
/// reloads it (`replaceKeys`). Such a set still drops older keys past `keyLifetime`, but keeps
/// its current key whatever its age: it is the only one it may seal with.
///
/// **Nonces.** Random 96-bit nonces are safe for about 2^32 tickets per key (NIST SP 800-38D
/// §8.3); rotation every 12 h keeps a key far below that at any realistic rate.
///
/// Thread-safe: connections on several event loops share one set. The lock covers only the
/// choice of key; sealing and opening run outside it.
public final class TicketKeySet: TicketSealer {
    /// Bytes a ticket adds to its plaintext: name, nonce and tag.
    public static let overhead = TicketKey.nameLength + nonceLength + tagLength
    static let nonceLength = 12
    static let tagLength = 16

    /// Seconds after which the current key is replaced (when rotating automatically).
    public let rotationInterval: UInt32
    /// Seconds after which an older key is dropped.
    public let keyLifetime: UInt32
    /// Whether `seal` and `open` make new keys on schedule.
    public let rotatesAutomatically: Bool
    private let primitives: any CryptoPrimitives
    private let clock: any WallClock
    /// Newest (current) first.
    private let prepared: Mutex<[PreparedKey]>

    /// A key with its AEAD, made once (AES key expansion) rather than per ticket.
    private struct PreparedKey: Sendable {
        let key: TicketKey
        let cipher: Result<any AEADCipher, TLSError>
    }

    /// A set with one fresh key that rotates itself.
    public convenience init(
        primitives: any CryptoPrimitives, clock: any WallClock = SystemClock(),
        rotationInterval: UInt32 = 43_200, keyLifetime: UInt32 = 129_600
    ) {
        self.init(
            keys: [TicketKey.generate(primitives: primitives, createdAt: clock.nowMilliseconds())],
            primitives: primitives, clock: clock, rotationInterval: rotationInterval, keyLifetime: keyLifetime,
            rotatesAutomatically: true)
    }

    /// A set of given keys (loaded from a file, say). The newest is current; of two keys with
    /// one name the newer is kept. With no keys, a set that rotates makes one on first use, and
    /// one that does not cannot seal (`seal` throws) until `replaceKeys` gives it some.
    public init(
        keys: [TicketKey], primitives: any CryptoPrimitives, clock: any WallClock = SystemClock(),
        rotationInterval: UInt32 = 43_200, keyLifetime: UInt32 = 129_600, rotatesAutomatically: Bool
    ) {
        self.primitives = primitives
        self.clock = clock
        self.rotationInterval = rotationInterval
        self.keyLifetime = keyLifetime
        self.rotatesAutomatically = rotatesAutomatically
        prepared = Mutex(Self.prepare(keys, primitives: primitives))
    }

    /// The keys in force now (the schedule applied), current first.
    public var keys: [TicketKey] {
        let now = clock.nowMilliseconds()
        return prepared.withLock { keys in
            rotateIfDue(&keys, now: now)
            return keys.map(\.key)
        }
    }

    /// Replaces every key (a reloaded file). Tickets of keys no longer present stop opening.
    public func replaceKeys(_ keys: [TicketKey]) {
        let fresh = Self.prepare(keys, primitives: primitives)
        prepared.withLock { $0 = fresh }
    }

    /// Makes a new current key now and drops keys past `keyLifetime`, whatever the schedule.
    public func rotate() {
        let now = clock.nowMilliseconds()
        let fresh = Self.prepared(TicketKey.generate(primitives: primitives, createdAt: now), primitives: primitives)
        prepared.withLock { keys in
            keys.insert(fresh, at: 0)
            dropRetired(&keys, now: now)
        }
    }

    /// Seals `plaintext` under the current key.
    /// - Throws: `TLSError` when there is no key or the AEAD fails.
    public func seal(_ plaintext: SecretBytes) throws(TLSError) -> [UInt8] {
        let now = clock.nowMilliseconds()
        let current = prepared.withLock { keys -> PreparedKey? in
            rotateIfDue(&keys, now: now)
            return keys.first
        }
        guard let current else { throw .misuse("no ticket key to seal with") }
        let nonce = primitives.randomBytes(Self.nonceLength)
        guard nonce.count == Self.nonceLength else { throw .crypto("random nonce of \(nonce.count) bytes") }
        let sealed = try current.cipher.get().seal(nonce: nonce, aad: current.key.name, plaintext: plaintext.storage.bytes[...])
        var ticket: [UInt8] = []
        ticket.reserveCapacity(TicketKey.nameLength + nonce.count + sealed.count)
        ticket += current.key.name
        ticket += nonce
        ticket += sealed
        return ticket
    }

    /// Opens a ticket; nil when it is too short, its key is unknown or retired, or its tag
    /// fails (the caller then runs a full handshake). Never throws, never traps.
    public func open(_ ticket: [UInt8]) -> (plaintext: SecretBytes, byCurrentKey: Bool)? {
        guard ticket.count >= Self.overhead else { return nil }
        let nameEnd = TicketKey.nameLength
        let nonceEnd = nameEnd + Self.nonceLength
        let name = Array(ticket[..<nameEnd])
        let now = clock.nowMilliseconds()
        let found = prepared.withLock { keys -> (PreparedKey, Bool)? in
            rotateIfDue(&keys, now: now)
            guard let i = keys.firstIndex(where: { $0.key.name == name }) else { return nil }
            return (keys[i], i == 0)
        }
        guard let (entry, isCurrent) = found, let cipher = try? entry.cipher.get() else { return nil }
        guard let plaintext = try? cipher.open(nonce: Array(ticket[nameEnd..<nonceEnd]), aad: name, ciphertext: ticket[nonceEnd...]) else {
            return nil
        }
        return (SecretBytes(plaintext), isCurrent)
    }

    // MARK: - Schedule (under the lock)

    private func rotateIfDue(_ keys: inout [PreparedKey], now: UInt64) {
        if rotatesAutomatically, keys.first.map({ age($0.key, now) >= UInt64(rotationInterval) * 1000 }) ?? true {
            keys.insert(Self.prepared(TicketKey.generate(primitives: primitives, createdAt: now), primitives: primitives), at: 0)
        }
        dropRetired(&keys, now: now)
    }

    /// Drops every key but the current one that is `keyLifetime` old.
    private func dropRetired(_ keys: inout [PreparedKey], now: UInt64) {
        guard keys.count > 1 else { return }
        let limit = UInt64(keyLifetime) * 1000
        if keys.dropFirst().contains(where: { age($0.key, now) >= limit }) {
            keys = [keys[0]] + keys.dropFirst().filter { age($0.key, now) < limit }
        }
    }

    /// A key from a machine whose clock runs ahead is as new as can be, not negatively old.
    private func age(_ key: TicketKey, _ now: UInt64) -> UInt64 { now >= key.createdAt ? now - key.createdAt : 0 }

    private static func prepared(_ key: TicketKey, primitives: any CryptoPrimitives) -> PreparedKey {
        PreparedKey(key: key, cipher: Result { () throws(TLSError) in try primitives.makeAEAD(.aes256GCM, key: key.key) })
    }

    /// Newest first (in the given order among equals), one key per name.
    private static func prepare(_ keys: [TicketKey], primitives: any CryptoPrimitives) -> [PreparedKey] {
        let ordered = keys.enumerated().sorted { a, b in
            a.element.createdAt != b.element.createdAt ? a.element.createdAt > b.element.createdAt : a.offset < b.offset
        }
        var seen = Set<[UInt8]>()
        return ordered.compactMap { seen.insert($0.element.name).inserted ? prepared($0.element, primitives: primitives) : nil }
    }
}

// MARK: - Key file

extension TicketKeySet {
    /// The first bytes of a ticket key file.
    public static let keyFileMagic: [UInt8] = Array("QSSLTKEY".utf8)
    public static let keyFileVersion: UInt8 = 1

    /// A ticket key file, for servers that share keys:
    ///
    ///     opaque magic[8] = "QSSLTKEY"; uint8 version = 1; uint16 count (≥ 1);
    ///     count × { opaque name[16]; opaque key[32]; uint64 created_at_ms }
    ///
    /// The bytes hold the keys: write them readable by the owner only.
    /// - Throws: `EncodeError` for no keys, more than 65535, or two with one name (files
    ///   that `decodeKeyFile` would refuse).
    public static func encodeKeyFile(_ keys: [TicketKey]) throws(EncodeError) -> [UInt8] {
        guard (1...0xFFFF).contains(keys.count) else { throw EncodeError(field: "ticket key count (1 to 65535)", length: keys.count, maximum: 0xFFFF) }
        guard Set(keys.map(\.name)).count == keys.count else {
            throw EncodeError(field: "ticket key names (two keys share one)", length: keys.count, maximum: Set(keys.map(\.name)).count)
        }
        var w = ByteWriter(capacity: keyFileMagic.count + 3 + keys.count * 56)
        w.write(bytes: keyFileMagic)
        w.write(keyFileVersion)
        w.write(UInt16(keys.count))
        for key in keys {
            w.write(bytes: key.name)
            key.key.withUnsafeBytes { w.write(bytes: $0) }
            w.write(key.createdAt)
        }
        return try w.finish()
    }

    /// Reads a ticket key file written by `encodeKeyFile`.
    /// - Throws: `DecodeError` for a wrong magic or version, no keys, a duplicate name,
    ///   truncation or bytes left over.
    public static func decodeKeyFile(_ bytes: [UInt8]) throws(DecodeError) -> [TicketKey] {
        var r = ByteReader(bytes)
        guard try r.readBytes(count: keyFileMagic.count, "ticket key file magic").elementsEqual(keyFileMagic) else {
            throw .invalidValue(field: "ticket key file magic (not a Q-SSL ticket key file)")
        }
        let version = try r.readUInt8("ticket key file version")
        guard version == keyFileVersion else { throw .invalidValue(field: "ticket key file version \(version) (expected \(keyFileVersion))") }
        let count = Int(try r.readUInt16("ticket key count"))
        guard count > 0 else { throw .illegalEmptyList("ticket key file") }
        var keys: [TicketKey] = []
        var names = Set<[UInt8]>()
        for _ in 0..<count {
            let name = Array(try r.readBytes(count: TicketKey.nameLength, "ticket key name"))
            let secret = SecretBytes(Array(try r.readBytes(count: TicketKey.keyLength, "ticket key")))
            let createdAt = try r.readUInt64("ticket key created_at")
            guard names.insert(name).inserted else { throw .illegalValue(field: "ticket key file (duplicate key name)") }
            guard let key = try? TicketKey(name: name, key: secret, createdAt: createdAt) else { throw .invalidValue(field: "ticket key") }
            keys.append(key)
        }
        try r.finish("ticket key file")
        return keys
    }
}
