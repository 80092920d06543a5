// TEMPORARY (replaced by the `stores` branch before merge): minimal stand-ins so the state
// machines build and can be tested while the real stores are written.
import QSSLWire
import Synchronization

extension SessionState {
    public func encoded() throws(EncodeError) -> [UInt8] {
        var w = ByteWriter()
        w.write(Self.formatVersion)
        w.write(version.rawValue); w.write(cipherSuite.rawValue); w.write(group.rawValue)
        w.write(UInt8(extendedMasterSecret ? 1 : 0))
        w.writeOpaque(.uint16(allowEmpty: true), Array((serverName ?? "").utf8))
        w.writeOpaque(.uint8(allowEmpty: true), Array((alpnProtocol ?? "").utf8))
        w.writeOpaque(.uint8(allowEmpty: false), secret.bytes)
        w.write(createdAt); w.write(issuedAt); w.write(lifetimeSeconds); w.write(ageAdd)
        return try w.finish()
    }
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var r = ByteReader(bytes)
        guard try r.readUInt8() == Self.formatVersion else { throw .illegalValue(field: "SessionState.version") }
        let v = ProtocolVersion(rawValue: try r.readUInt16())
        let cs = CipherSuite(rawValue: try r.readUInt16())
        let g = NamedGroup(rawValue: try r.readUInt16())
        let ems = try r.readUInt8() == 1
        let sni = String(decoding: try r.readOpaque(.uint16(allowEmpty: true), "sni"), as: UTF8.self)
        let alpn = String(decoding: try r.readOpaque(.uint8(allowEmpty: true), "alpn"), as: UTF8.self)
        let secret = try r.readOpaque(.uint8(allowEmpty: false), "secret")
        let c = try r.readUInt64(), i = try r.readUInt64(), l = try r.readUInt32(), a = try r.readUInt32()
        try r.finish("SessionState")
        self.init(version: v, cipherSuite: cs, group: g, extendedMasterSecret: ems, serverName: sni.isEmpty ? nil : sni,
                  alpnProtocol: alpn.isEmpty ? nil : alpn, secret: SecretBytes(secret), createdAt: c, issuedAt: i,
                  lifetimeSeconds: l, ageAdd: a, peerIdentity: nil)
    }
}

public final class InMemorySessionCache: ServerSessionCache {
    private let entries = Mutex<[[UInt8]: SessionState]>([:])
    public init() {}
    public func lookUp(sessionID: [UInt8]) -> SessionState? { entries.withLock { $0[sessionID] } }
    public func save(_ state: SessionState, sessionID: [UInt8]) { entries.withLock { $0[sessionID] = state } }
    public func remove(sessionID: [UInt8]) { _ = entries.withLock { $0.removeValue(forKey: sessionID) } }
}

public final class InMemoryClientSessionStore: ClientSessionStore {
    private let sessions = Mutex<[String: [TLSSession]]>([:])
    public init() {}
    public func takeSession(for key: String) -> TLSSession? {
        sessions.withLock { s in
            guard let last = s[key]?.last else { return nil }
            if last.state.version == .tls13 { s[key]?.removeLast() }
            return last
        }
    }
    public func save(_ session: TLSSession, for key: String) { sessions.withLock { $0[key, default: []].append(session) } }
    public func removeSessions(for key: String) { _ = sessions.withLock { $0.removeValue(forKey: key) } }
}

public final class TicketKeySet: TicketSealer {
    let primitives: any CryptoPrimitives
    let name: [UInt8]
    let key: [UInt8]
    public init(primitives: any CryptoPrimitives) {
        self.primitives = primitives
        name = primitives.randomBytes(16)
        key = primitives.randomBytes(32)
    }
    public func seal(_ plaintext: [UInt8]) throws(TLSError) -> [UInt8] {
        let nonce = primitives.randomBytes(12)
        return name + nonce + (try primitives.makeAEAD(.aes256GCM, key: key).seal(nonce: nonce, aad: name, plaintext: plaintext[...]))
    }
    public func open(_ ticket: [UInt8]) -> (plaintext: [UInt8], byCurrentKey: Bool)? {
        guard ticket.count >= 44, Array(ticket[0..<16]) == name,
              let aead = try? primitives.makeAEAD(.aes256GCM, key: key),
              let p = try? aead.open(nonce: Array(ticket[16..<28]), aad: name, ciphertext: ticket[28...]) else { return nil }
        return (p, true)
    }
}
