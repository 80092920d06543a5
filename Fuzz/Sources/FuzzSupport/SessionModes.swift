import QSSL
import QSSLWire

/// The resumption codecs of QSSL, by selector (FuzzSessions' first byte): the bytes a session
/// file, a ticket key file or a ticket (once opened) may hold, which can come back from anywhere.
/// What decodes must encode to the same bytes and decode to the same value.
public enum SessionModes {
    public static let names = [
        "SessionState", "TLSSession", "ticket key file", "ticket (fuzz keys)", "seal, open, tamper"
    ]

    public static func run(_ selector: Int, _ bytes: [UInt8]) {
        FuzzRandom.reset()  // ticket nonces
        switch selector % names.count {
        case 0:
            if let state = try? SessionState(decoding: bytes) { sessionState(state, bytes) }
        case 1:
            if let session = try? TLSSession(decoding: bytes) { tlsSession(session, bytes) }
        case 2:
            if let keys = try? TicketKeySet.decodeKeyFile(bytes) { keyFile(keys, bytes) }
        case 3:
            ticket(bytes)
        default:
            var r = InputReader(bytes)
            let position = r.u16()
            sealOpenTamper(r.rest(), position: position)
        }
    }

    static func sessionState(_ state: SessionState, _ bytes: [UInt8]) {
        guard let encoded = try? state.encoded() else { violated("SessionState: a decoded state does not encode") }
        require(encoded == bytes, "SessionState: encode(decode(b)) != b")
        require((try? SessionState(decoding: encoded)) == state, "SessionState: decode(encode(x)) != x")
        // What a server does with it: seal it into a ticket that opens to the same bytes.
        guard let sealed = try? FuzzTicketKeys.shared.seal(SecretBytes(encoded)) else { violated("SessionState: sealing failed") }
        guard let opened = FuzzTicketKeys.shared.open(sealed) else { violated("SessionState: a fresh ticket does not open") }
        require(opened.plaintext == SecretBytes(encoded) && opened.byCurrentKey, "SessionState: a fresh ticket opens to other bytes or an old key")
    }

    static func tlsSession(_ session: TLSSession, _ bytes: [UInt8]) {
        guard let encoded = try? session.encoded() else { violated("TLSSession: a decoded session does not encode") }
        require(encoded == bytes, "TLSSession: encode(decode(b)) != b")
        require((try? TLSSession(decoding: encoded)) == session, "TLSSession: decode(encode(x)) != x")
        require(session.sessionID.count <= 32, "TLSSession: session ID of \(session.sessionID.count) bytes")
        if let state = try? session.state.encoded() { sessionState(session.state, state) } else { violated("TLSSession: its state does not encode") }
    }

    static func keyFile(_ keys: [TicketKey], _ bytes: [UInt8]) {
        require(!keys.isEmpty && Set(keys.map(\.name)).count == keys.count, "ticket key file: no keys, or two with one name")
        guard let encoded = try? TicketKeySet.encodeKeyFile(keys) else { violated("ticket key file: decoded keys do not encode") }
        require(encoded == bytes, "ticket key file: encode(decode(b)) != b")
        require((try? TicketKeySet.decodeKeyFile(encoded)) == keys, "ticket key file: decode(encode(x)) != x")
        // A server loading the file: the newest key (the first of the newest, on a tie) seals,
        // and what it seals opens by the current key.
        let set = TicketKeySet(keys: keys, primitives: FuzzTicketPrimitives(), clock: FuzzClock.fixed, rotatesAutomatically: false)
        let newest = keys.enumerated().min { a, b in
            a.element.createdAt != b.element.createdAt ? a.element.createdAt > b.element.createdAt : a.offset < b.offset
        }!.element
        let inForce = set.keys
        require(inForce.first == newest, "ticket key file: the current key is not the newest")
        require(inForce.allSatisfy { keys.contains($0) }, "ticket key file: the set holds a key the file does not")
        let plaintext: [UInt8] = [1, 2, 3]
        guard let sealed = try? set.seal(SecretBytes(plaintext)) else { violated("ticket key file: the set cannot seal") }
        require(Array(sealed.prefix(TicketKey.nameLength)) == newest.name, "ticket key file: sealed under another key's name")
        require(sealed.count == plaintext.count + TicketKeySet.overhead, "ticket key file: a ticket of \(sealed.count) bytes")
        guard let opened = set.open(sealed) else { violated("ticket key file: a fresh ticket does not open") }
        require(opened.plaintext == SecretBytes(plaintext) && opened.byCurrentKey, "ticket key file: a fresh ticket opens wrong")
    }

    /// Arbitrary bytes as a ticket to the fuzz servers' keys: most do not open; one that does
    /// names one of the keys and holds what was sealed (a state, in the seeds).
    static func ticket(_ bytes: [UInt8]) {
        guard let opened = FuzzTicketKeys.shared.open(bytes) else { return }
        let name = Array(bytes.prefix(TicketKey.nameLength))
        require(name == FuzzTicketKeys.current.name || name == FuzzTicketKeys.previous.name, "ticket: opened under an unknown key name")
        require(opened.byCurrentKey == (name == FuzzTicketKeys.current.name), "ticket: byCurrentKey is wrong")
        require(bytes.count == opened.plaintext.count + TicketKeySet.overhead, "ticket: \(bytes.count) bytes opened to \(opened.plaintext.count)")
        if let state = try? SessionState(decoding: opened.plaintext) { sessionState(state, opened.plaintext.withUnsafeBytes { Array($0) }) }
    }

    /// open(seal(p)) == p by the current key; any changed byte makes the ticket not open.
    static func sealOpenTamper(_ plaintext: [UInt8], position: Int) {
        let keys = FuzzTicketKeys.shared
        guard let sealed = try? keys.seal(SecretBytes(plaintext)) else { violated("seal failed") }
        guard let opened = keys.open(sealed) else { violated("a fresh ticket does not open") }
        require(opened.plaintext == SecretBytes(plaintext) && opened.byCurrentKey, "a fresh ticket opens to other bytes or an old key")
        var tampered = sealed
        tampered[position % tampered.count] ^= 0x01
        require(keys.open(tampered) == nil, "a ticket with byte \(position % tampered.count) changed still opens")
        require(keys.open(Array(sealed.dropLast())) == nil, "a truncated ticket opens")
    }
}
