// The fleet key and everything derived from it (the key schedule), and the service identity.

import Crypto
import Foundation
import QSSL
import QSSLX509

/// The key-encryption key that every node of a fleet holds (`qssl fleet-key generate`). Nothing
/// goes into Redis in the clear: session states and ticket keys are sealed under keys derived
/// from it, so whoever controls Redis but not this key can delete or replay values, never read
/// or forge them.
///
/// File: `"QSSLFKEY"` ‖ version 1 ‖ 32 random bytes, mode 0600 (refused when group or others
/// may access it, like a ticket-key file).
///
/// Key schedule (HKDF-SHA-256, PRK = HKDF-Extract(salt "qssl-fleet-v1", fleet key)):
/// - `fleet id` (8 bytes, hex in every Redis key): fleets with different keys sharing one Redis
///   never see each other's values;
/// - `session-index` (32): HMAC key that turns (service, session ID) into a Redis key, so that
///   Redis holds no session ID and each service has its own key space;
/// - `session-seal` ‖ service id (32): the AES-256-GCM key of one service's cached sessions;
/// - `ticket-key-wrap` (32): the AES-256-GCM key that wraps ticket keys in Redis.
public struct FleetKey: Sendable {
    public static let fileMagic: [UInt8] = Array("QSSLFKEY".utf8)
    public static let fileVersion: UInt8 = 1
    public static let keyLength = 32

    private let prk: SymmetricKey
    /// 16 hex digits naming the fleet in Redis keys (derived; reveals nothing of the key).
    public let fleetID: String
    let sessionIndexKey: SymmetricKey
    let ticketWrapKey: SymmetricKey

    /// A fleet key from its 32 bytes.
    public init(bytes: [UInt8]) throws(FleetError) {
        guard bytes.count == Self.keyLength else { throw .invalidFleetKey("a fleet key is \(Self.keyLength) bytes, not \(bytes.count)") }
        let extracted = SymmetricKey(data: HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: bytes), salt: Array("qssl-fleet-v1".utf8)))
        let expand = { (label: String, count: Int) -> SymmetricKey in
            HKDF<SHA256>.expand(pseudoRandomKey: extracted, info: Array(label.utf8), outputByteCount: count)
        }
        prk = extracted
        fleetID = hex(expand("fleet id", 8).bytes)
        sessionIndexKey = expand("session-index", 32)
        ticketWrapKey = expand("ticket-key-wrap", 32)
    }

    /// The AES-256-GCM key for `service`'s cached sessions.
    func sessionSealKey(for service: ServiceIdentity) -> SymmetricKey {
        HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Array("session-seal".utf8) + service.id, outputByteCount: 32)
    }

    /// A fresh key, as `qssl fleet-key generate` writes it.
    public static func generateBytes() -> [UInt8] {
        SymmetricKey(size: .bits256).bytes
    }

    /// The file's bytes for `key` (32 bytes).
    public static func encodeFile(_ key: [UInt8]) -> [UInt8] {
        fileMagic + [fileVersion] + key
    }

    /// Reads a fleet key file, after checking that it is a regular file only its owner can access.
    public static func load(path: String) throws(FleetError) -> FleetKey {
        var bytes: [UInt8]
        do {
            (bytes, _) = try CertificateFiles.readSecretFile(atPath: path, holding: "a fleet key", maximumSize: 4096)
        } catch {
            throw .invalidFleetKey("\(path): \(error.reason)")
        }
        defer { SecretBytes.wipe(&bytes) }
        guard bytes.count == fileMagic.count + 1 + keyLength, bytes.starts(with: fileMagic) else {
            throw .invalidFleetKey("\(path): not a fleet key file (make one with `qssl fleet-key generate --out FILE`)")
        }
        guard bytes[fileMagic.count] == fileVersion else {
            throw .invalidFleetKey("\(path): fleet key file version \(bytes[fileMagic.count]), expected \(fileVersion)")
        }
        return try FleetKey(bytes: Array(bytes[(fileMagic.count + 1)...]))
    }

    /// Writes a new fleet key file (0600, complete or not at all; a symbolic link is refused).
    public static func write(_ key: [UInt8], toPath path: String) throws(FleetError) {
        var bytes = encodeFile(key)
        defer { SecretBytes.wipe(&bytes) }
        do { try CertificateFiles.writeSecretFile(bytes, toPath: path) } catch {
            throw .invalidFleetKey("\(error)")
        }
    }
}

/// Which service a session or ticket belongs to: the configured service name (or one derived
/// from the certificates). Sessions and tickets of one service never resume at another, even
/// in one fleet with one Redis (the h2o GHSA-5v5r-rghf-rm6q pitfall). The SNI name is the
/// other half of the binding: it is inside every sealed session state and the core resumes
/// only under the same name.
public struct ServiceIdentity: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    /// SHA-256("qssl-fleet-service-v1" ‖ uint16 length ‖ name): what keys and AEAD data bind.
    public let id: [UInt8]

    public init(name: String) throws(FleetError) {
        let utf8 = Array(name.utf8)
        guard (1...255).contains(utf8.count), utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalidServiceName("a service name is 1 to 255 printable ASCII characters without spaces: '\(name)'")
        }
        self.name = name
        id = Array(SHA256.hash(data: Array("qssl-fleet-service-v1".utf8) + [UInt8(utf8.count >> 8), UInt8(utf8.count & 0xFF)] + utf8))
    }

    /// The default service name of a listener: `spki-` and 16 hex digits of SHA-256 over the
    /// sorted subjectPublicKeyInfo of its leaf certificates, so that servers with other keys are
    /// other services, and a certificate renewed with the same key stays the same service.
    public static func defaultName(leafSPKIs: [[UInt8]]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("qssl-fleet-default-service-v1".utf8))
        for spki in Set(leafSPKIs).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            hasher.update(data: [UInt8(spki.count >> 24 & 0xFF), UInt8(spki.count >> 16 & 0xFF), UInt8(spki.count >> 8 & 0xFF), UInt8(spki.count & 0xFF)])
            hasher.update(data: spki)
        }
        return "spki-" + hex(Array(hasher.finalize()).prefix(8))
    }

    public var description: String { name }
}

/// Every error of this module.
public enum FleetError: Error, Sendable, CustomStringConvertible {
    case invalidFleetKey(String)
    case invalidServiceName(String)
    case invalidConfiguration(String)
    case redis(String)

    public var description: String {
        switch self {
        case .invalidFleetKey(let why): return "fleet key: \(why)"
        case .invalidServiceName(let why): return "service name: \(why)"
        case .invalidConfiguration(let why): return "fleet configuration: \(why)"
        case .redis(let why): return "Redis: \(why)"
        }
    }
}

extension SymmetricKey {
    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

extension Array where Element == UInt8 {
    mutating func appendUInt64(_ v: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) } }
    mutating func appendUInt32(_ v: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) } }
    /// A length-prefixed field (uint16 length), for unambiguous associated data.
    mutating func appendField(_ bytes: [UInt8]) {
        append(UInt8(bytes.count >> 8 & 0xFF))
        append(UInt8(bytes.count & 0xFF))
        append(contentsOf: bytes)
    }
}

extension ArraySlice where Element == UInt8 {
    func readUInt64(at offset: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(self[startIndex + offset + i]) }
        return v
    }
}
