// FleetTicketSealer: tickets sealed per service under the fleet's rotating keys.

import Crypto
import QSSL
import QSSLRedis
import Synchronization

/// A `TicketSealer` on the fleet's keys for one service.
///
/// Each master key T gives the service its own ticket key and key name: HKDF-SHA-256(T, salt
/// "qssl-fleet-ticket-v1", info "seal"/"name" ‖ service id). A ticket of another service finds
/// no key here (another name) and would not open if it did (another key, and the service id is
/// in the associated data): a full handshake.
///
/// Ticket = name (16) ‖ nonce (12) ‖ AES-256-GCM(state) ‖ tag (16), AAD = name ‖ service id.
public final class FleetTicketSealer: TicketSealer {
    public let keys: FleetTicketKeyStore
    public let service: ServiceIdentity
    private let derived = Mutex<(generation: UInt64, byName: [[UInt8]: Derived], byFingerprint: [[UInt8]: Derived])?>(nil)

    struct Derived: Sendable {
        let name: [UInt8]
        let key: SymmetricKey
        let fingerprint: [UInt8]
    }

    init(keys: FleetTicketKeyStore, service: ServiceIdentity) {
        self.keys = keys
        self.service = service
    }

    static func derive(_ held: FleetTicketKeyStore.Held, service: ServiceIdentity) -> Derived {
        let ikm = held.material.withUnsafeBytes { SymmetricKey(data: $0) }
        let salt = Array("qssl-fleet-ticket-v1".utf8)
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Array("seal".utf8) + service.id, outputByteCount: 32)
        let name = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: Array("name".utf8) + service.id, outputByteCount: 16)
        return Derived(name: name.bytes, key: key, fingerprint: held.fingerprint)
    }

    /// The derived keys for the store's current generation, and the one that seals now.
    private func current() -> (byName: [[UInt8]: Derived], sealing: Derived?) {
        let (generation, held, sealingFingerprint) = keys.snapshot(now: keys.store.clock.nowMilliseconds())
        let table = derived.withLock { cached -> (byName: [[UInt8]: Derived], byFingerprint: [[UInt8]: Derived]) in
            if let cached, cached.generation == generation { return (cached.byName, cached.byFingerprint) }
            var byName: [[UInt8]: Derived] = [:]
            var byFingerprint: [[UInt8]: Derived] = [:]
            for h in held {
                let d = Self.derive(h, service: service)
                byName[d.name] = d
                byFingerprint[d.fingerprint] = d
            }
            cached = (generation, byName, byFingerprint)
            return (byName, byFingerprint)
        }
        return (table.byName, sealingFingerprint.flatMap { table.byFingerprint[$0] })
    }

    public func seal(_ plaintext: SecretBytes) throws(TLSError) -> [UInt8] {
        guard let key = current().sealing else { throw .misuse("no fleet ticket key is ready to seal with") }
        do {
            let box = try plaintext.withUnsafeBytes { bytes in try AES.GCM.seal(bytes, using: key.key, authenticating: key.name + service.id) }
            return key.name + Array(box.nonce) + box.ciphertext + box.tag
        } catch {
            throw .crypto("sealing a ticket: \(error)")
        }
    }

    public func open(_ ticket: [UInt8]) -> (plaintext: SecretBytes, byCurrentKey: Bool)? {
        guard ticket.count >= 16 + 12 + 16 else { return nil }
        let (byName, sealing) = current()
        guard let key = byName[Array(ticket[..<16])],
            let nonce = try? AES.GCM.Nonce(data: ticket[16..<28]),
            let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: ticket[28..<(ticket.count - 16)], tag: ticket[(ticket.count - 16)...]),
            var plaintext = try? AES.GCM.open(box, using: key.key, authenticating: key.name + service.id)
        else { return nil }
        // Copied once into the secret's own storage; swift-crypto's Data that held it is zeroed
        // (this binding is its only owner, so in place).
        defer { plaintext.resetBytes(in: plaintext.startIndex..<plaintext.endIndex) }
        return (plaintext.withUnsafeBytes { SecretBytes(copying: $0) }, key.fingerprint == sealing?.fingerprint)
    }
}
