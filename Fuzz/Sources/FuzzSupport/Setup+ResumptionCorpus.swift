import Crypto
import Foundation
import QSSL
import QSSLWire

/// Seeds for resumption beyond the recorded pairs: the session codecs (FuzzSessions), ClientHellos
/// offering early data (which the core has no public way to send), and the extensions that
/// carry PSKs and early-data sizes.
extension CorpusMaker {
    mutating func sessions() {
        let t = "FuzzSessions"
        var n = 0
        var sessions = (FuzzConfigs.tls13 + FuzzConfigs.tls12).compactMap(\.session)
        sessions += issued
        for session in sessions {
            n += 1
            if let state = try? session.state.encoded() { write(t, "state-\(n)", [0] + state) }
            if let bytes = try? session.encoded() { write(t, "session-\(n)", [1] + bytes) }
            if let ticket = session.ticket, !ticket.isEmpty { write(t, "ticket-\(n)", [3] + ticket) }
        }
        for (i, entry) in (FuzzConfigs.tls12.compactMap(\.cachedSession)).enumerated() {
            if let state = try? entry.state.encoded() { write(t, "server-state-\(i)", [0] + state) }
        }
        // A session without peer identity, server name or ALPN, and one with all of them.
        if var bare = sessions.first {
            bare.state.peerIdentity = nil
            bare.state.serverName = nil
            bare.state.alpnProtocol = nil
            bare.ticket = nil
            bare.sessionID = Array(repeating: 7, count: 32)
            if let bytes = try? bare.encoded() { write(t, "session-bare", [1] + bytes) }
            if let state = try? bare.state.encoded() { write(t, "state-bare", [0] + state) }
        }
        if let keys = try? TicketKeySet.encodeKeyFile([FuzzTicketKeys.current, FuzzTicketKeys.previous]) { write(t, "keyfile-2", [2] + keys) }
        if let keys = try? TicketKeySet.encodeKeyFile([FuzzTicketKeys.previous]) { write(t, "keyfile-1", [2] + keys) }
        write(t, "seal-open-tamper", [4, 0, 40] + Array("a session state would be here".utf8))
        write(t, "seal-open-tamper-empty", [4, 0, 3])
    }

    /// FuzzServer13 raw inputs: a recorded ClientHello with early_data added (for the PSK
    /// variants with the binders computed again, over message_hash and the HelloRetryRequest
    /// for the second hello of the HRR variant), then 0-RTT records the server must skip, then
    /// the rest of the recorded flight (whose Finished no longer matches: the server skips it
    /// as early data too, within its budget, or fails). One input exceeds the skip budget.
    mutating func earlyData() {
        for (i, config) in FuzzConfigs.tls13.enumerated() where i == 0 || i == 1 || config.resumes {
            guard let flight = flights[config.name], let first = flight.toServer.first else { continue }
            let psk = config.session?.state.secret.withUnsafeBytes { Array($0) }  // a corpus tool recomputing binders offline
            guard let (hello1, hash1) = Self.addEarlyData(to: first, psk: psk, transcriptBefore: []),
                let (same1, sameHash1) = Self.addEarlyData(to: first, psk: psk, transcriptBefore: [], addExtension: false)
            else { continue }
            // The binder computed here for the unchanged hello must be the client's own.
            if same1 != first { violated("corpus: the binder recomputed for '\(config.name)' differs from the client's") }
            let fake = (0..<2).map { k in [23, 3, 3, 0, 40] + [UInt8](repeating: UInt8(0x30 + k), count: 40) }
            var rest = Array(flight.toServer.dropFirst())
            // After a HelloRetryRequest, the second ClientHello's binder covers message_hash of
            // the first hello and the HelloRetryRequest.
            if let hrr = flight.toClient.first, Self.isHelloRetryRequest(hrr),
                let at = rest.firstIndex(where: { $0.first == ContentType.handshake.rawValue })
            {
                let hrrMessage = Array(hrr.dropFirst(5))
                let prefix = [254, 0, 0, UInt8(hash1.count)] + hash1 + hrrMessage
                let samePrefix = [254, 0, 0, UInt8(sameHash1.count)] + sameHash1 + hrrMessage
                guard let (hello2, _) = Self.addEarlyData(to: rest[at], psk: psk, transcriptBefore: prefix, addExtension: false),
                    let (same2, _) = Self.addEarlyData(to: rest[at], psk: psk, transcriptBefore: samePrefix, addExtension: false)
                else { continue }
                if same2 != rest[at] { violated("corpus: the second binder recomputed for '\(config.name)' differs from the client's") }
                rest[at] = hello2
            }
            let c = UInt8(i << 1) | 1
            write("FuzzServer13", "raw-\(i)-early-data", [c, 0] + hello1 + Array(fake.joined()) + Array(rest.joined()))
            if i == 0 {
                let big = (0..<2).map { _ in [23, 3, 3, 0x40, 0x01] + [UInt8](repeating: 0xEE, count: 0x4001) }
                write("FuzzServer13", "raw-\(i)-early-data-too-much", [c, 0] + hello1 + Array(big.joined()))
            }
        }
    }

    static func isHelloRetryRequest(_ record: [UInt8]) -> Bool {
        record.count > 5 + 4 + 2 + 32 && record[5] == 2 && Array(record[(5 + 4 + 2)..<(5 + 4 + 2 + 32)]) == ServerHello.helloRetryRequestRandom
    }

    /// The ClientHello record with early_data before pre_shared_key (if `addExtension`) and its
    /// binder computed again after `transcriptBefore`; also returns the hash of the new
    /// ClientHello message (SHA-384 for 48-byte binders, else SHA-256).
    static func addEarlyData(to record: [UInt8], psk: [UInt8]?, transcriptBefore: [UInt8], addExtension: Bool = true) -> ([UInt8], [UInt8])? {
        guard record.count > 9, record[0] == ContentType.handshake.rawValue, record[5] == HandshakeType.clientHello.rawValue else { return nil }
        let message = HandshakeMessage(type: .clientHello, body: Array(record.dropFirst(9)))
        guard var hello = try? message.decode(as: ClientHello.self) else { return nil }
        var items = hello.extensions.items
        let pskIndex = items.firstIndex { $0.type == .preSharedKey }
        if addExtension { items.insert(Extension(type: .earlyData, data: []), at: pskIndex ?? items.count) }
        hello.extensions = ExtensionList(items)
        var hashLength = 32
        if let psk, let index = items.firstIndex(where: { $0.type == .preSharedKey }), var offered = try? OfferedPSKs(decoding: items[index].data) {
            hashLength = offered.binders[0].count
            guard let bindersLength = try? offered.encodedBinders().count, let encoded = try? HandshakeMessage(hello).encoded else { return nil }
            offered.binders[0] = Self.binder(psk: psk, hashLength: hashLength, transcript: transcriptBefore + encoded.dropLast(bindersLength))
            guard let data = try? offered.encoded() else { return nil }
            items[index] = Extension(type: .preSharedKey, data: data)
            hello.extensions = ExtensionList(items)
        }
        guard let encoded = try? HandshakeMessage(hello).encoded else { return nil }
        let out = Array(record.prefix(3)) + [UInt8(encoded.count >> 8), UInt8(encoded.count & 0xFF)] + encoded
        let hash = hashLength == 48 ? Array(SHA384.hash(data: encoded)) : Array(SHA256.hash(data: encoded))
        return (out, hash)
    }

    /// RFC 8446 §4.2.11.2 and §7.1: HMAC(finished_key(binder_key), Hash(transcript)).
    static func binder(psk: [UInt8], hashLength: Int, transcript: [UInt8]) -> [UInt8] {
        hashLength == 48 ? binder(SHA384.self, psk: psk, transcript: transcript) : binder(SHA256.self, psk: psk, transcript: transcript)
    }

    static func binder<H: HashFunction>(_: H.Type, psk: [UInt8], transcript: [UInt8]) -> [UInt8] {
        let length = H.Digest.byteCount
        func expandLabel(_ secret: [UInt8], _ label: String, _ context: [UInt8]) -> [UInt8] {
            let full = Array("tls13 \(label)".utf8)
            let info = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)] + full + [UInt8(context.count)] + context
            return HKDF<H>.expand(pseudoRandomKey: SymmetricKey(data: secret), info: info, outputByteCount: length).withUnsafeBytes { Array($0) }
        }
        let early = Array(HKDF<H>.extract(inputKeyMaterial: SymmetricKey(data: psk), salt: [UInt8](repeating: 0, count: length)))
        let binderKey = expandLabel(early, "res binder", Array(H.hash(data: [UInt8]())))
        let finishedKey = expandLabel(binderKey, "finished", [])
        return Array(HMAC<H>.authenticationCode(for: Array(H.hash(data: transcript)), using: SymmetricKey(data: finishedKey)))
    }

    /// Extensions that no recorded flight holds: early_data in a NewSessionTicket (and such a
    /// ticket for the message decoders), pre_shared_key with several identities, psk_ke.
    mutating func ticketExtensions() {
        write("FuzzExtensions", "early_data-max-size", [18, 0, 0, 0x40, 0])
        write("FuzzExtensions", "psk-modes-both", [10, 2, 1, 0])
        write("FuzzExtensions", "psk-selected-1", [17, 0, 1])
        let two = OfferedPSKs(
            identities: [PSKIdentity(identity: [1, 2, 3], obfuscatedTicketAge: 7), PSKIdentity(identity: [4], obfuscatedTicketAge: 0)],
            binders: [[UInt8](repeating: 0xB1, count: 32), [UInt8](repeating: 0xB2, count: 48)])
        if let data = try? two.encoded() { write("FuzzExtensions", "pre_shared_key-two", [16] + data) }
        let ticket = NewSessionTicket(
            lifetime: 3600, ageAdd: 0x0102_0304, nonce: [0], ticket: [9, 9, 9],
            extensions: ExtensionList([Extension(type: .earlyData, data: [0, 0, 0x40, 0])]))
        if let m = try? HandshakeMessage(ticket) { write("FuzzHandshakeMessages", "nst13-early-data", [7] + m.body) }
        let ticket12 = TLS12NewSessionTicket(lifetimeHint: 0, ticket: [])
        if let m = try? HandshakeMessage(ticket12) { write("FuzzHandshakeMessages", "nst12-empty", [16] + m.body) }
    }
}
