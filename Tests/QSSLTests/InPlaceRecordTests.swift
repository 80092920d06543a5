import Crypto
import QSSLSwiftCrypto
import QSSLWire
import Testing

@testable import QSSL

/// The record layer seals in place in its outgoing buffer and opens from its incoming buffer
/// straight into the plaintext it returns. These tests drive a writer and a reader RecordLayer
/// sharing keys, check the wire format against swift-crypto's public API (independent of the
/// in-place code), and attack the reader with tampered, short, long and odd records.
@Suite("Record layer: in-place seal and open")
struct InPlaceRecordTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case tls13AES256, tls13ChaCha, tls12AES256, tls12ChaCha
        var aead: AEADAlgorithm { self == .tls13AES256 || self == .tls12AES256 ? .aes256GCM : .chaCha20Poly1305 }
        var framing: RecordProtection.Framing {
            switch self {
            case .tls13AES256, .tls13ChaCha: return .tls13
            case .tls12AES256: return .tls12ExplicitNonce
            case .tls12ChaCha: return .tls12ImplicitNonce
            }
        }
        var key: [UInt8] { (0..<32).map { UInt8($0 &* 7 &+ 1) } }
        var iv: [UInt8] { (0..<(framing == .tls12ExplicitNonce ? 4 : 12)).map { UInt8(0xA0 &+ $0) } }
        /// Record bytes before the ciphertext (the RFC 5288 explicit nonce).
        var explicitNonceLength: Int { framing == .tls12ExplicitNonce ? 8 : 0 }
        var testDescription: String { rawValue }
    }

    static func layers(_ kind: Kind) throws -> (writer: RecordLayer, reader: RecordLayer) {
        let primitives = SwiftCryptoPrimitives()
        var writer = RecordLayer()
        writer.writeProtection = RecordProtection(cipher: try primitives.makeAEAD(kind.aead, key: SecretBytes(kind.key)), iv: kind.iv, framing: kind.framing)
        var reader = RecordLayer()
        reader.installReadKeys(
            RecordProtection(cipher: try primitives.makeAEAD(kind.aead, key: SecretBytes(kind.key)), iv: kind.iv, framing: kind.framing),
            duringHandshake: false)
        return (writer, reader)
    }

    /// Feeds `wire` and reads every record out of it.
    static func readAll(_ reader: inout RecordLayer, _ wire: [UInt8]) throws(TLSError) -> [(ContentType, [UInt8])] {
        reader.feed(wire)
        var records: [(ContentType, [UInt8])] = []
        while let record = try reader.readRecord() { records.append(record) }
        return records
    }

    @Test(
        "sequence numbers advance over many records of every size class; zero-length records come out empty",
        arguments: Kind.allCases)
    func manyRecords(kind: Kind) throws {
        var (writer, reader) = try Self.layers(kind)
        let sizes = [0, 1, 15, 16, 17, 255, 4096, maxPlaintextLength - 1, maxPlaintextLength]
        var sent: [[UInt8]] = []
        for i in 0..<600 {
            let payload = (0..<sizes[i % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            sent.append(payload)
            try writer.writeRawForTesting(.applicationData, payload, padding: 0)
            if i % 7 == 0 {  // deliver in uneven batches, some records split across feeds
                let wire = writer.takeOutbound()
                let cut = wire.count / 3
                var got = try Self.readAll(&reader, Array(wire[..<cut]))
                got += try Self.readAll(&reader, Array(wire[cut...]))
                #expect(got.map(\.1) == sent)
                #expect(got.allSatisfy { $0.0 == .applicationData })
                sent = []
            }
        }
        let got = try Self.readAll(&reader, writer.takeOutbound())
        #expect(got.map(\.1) == sent)
        #expect(writer.writeProtection?.sequence == 600)
        #expect(reader.readProtection?.sequence == 600)
    }

    @Test(
        "the wire format is RFC 8446 §5.2 / RFC 5288 / RFC 7905: swift-crypto's public API opens what we seal, and we open what it seals",
        arguments: Kind.allCases)
    func wireFormat(kind: Kind) throws {
        var (writer, reader) = try Self.layers(kind)
        let payload = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        for sequence in UInt64(0)..<3 {
            try writer.write(.handshake, payload)
            let record = writer.takeOutbound()
            let body = Array(record.dropFirst(5))
            var nonce: [UInt8]
            let aad: [UInt8]
            if kind.framing == .tls13 {
                #expect(Array(record.prefix(3)) == [23, 3, 3])
                nonce = RFC8448Tests.nonce(kind.iv, sequence)
                aad = Array(record.prefix(5))
            } else {
                #expect(Array(record.prefix(3)) == [22, 3, 3])
                if kind.framing == .tls12ExplicitNonce {
                    let explicit = Array(body.prefix(8))
                    #expect(explicit == withUnsafeBytes(of: sequence.bigEndian) { Array($0) }, "RFC 5288: the explicit nonce is our sequence number")
                    nonce = kind.iv + explicit
                } else {
                    nonce = RFC8448Tests.nonce(kind.iv, sequence)
                }
                aad = withUnsafeBytes(of: sequence.bigEndian) { Array($0) } + [22, 3, 3, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
            }
            let sealed = Array(body.dropFirst(kind.explicitNonceLength))
            let opened = try Self.publicOpen(kind.aead, key: kind.key, nonce: nonce, aad: aad, sealed: sealed)
            #expect(opened == (kind.framing == .tls13 ? payload + [22] : payload))

            // And the other way: a record sealed by swift-crypto's public API opens here.
            let inner = kind.framing == .tls13 ? payload + [22] : payload
            var header: [UInt8] = [kind.framing == .tls13 ? 23 : 22, 3, 3, 0, 0]
            let length = kind.explicitNonceLength + inner.count + 16
            header[3] = UInt8(length >> 8)
            header[4] = UInt8(length & 0xFF)
            let theirs = try Self.publicSeal(kind.aead, key: kind.key, nonce: nonce, aad: kind.framing == .tls13 ? header : aad, plaintext: inner)
            let wire = header + (kind.explicitNonceLength > 0 ? Array(nonce.suffix(8)) : []) + theirs
            let got = try Self.readAll(&reader, wire)
            #expect(got.count == 1 && got.first?.0 == .handshake && got.first?.1 == payload)
        }
    }

    @Test("RFC 8448 §3: the record layer seals the server's encrypted flight exactly as swift-crypto does with the RFC's keys, and opens it")
    func rfc8448ServerFlight() throws {
        let rfc = try RFC8448Trace()
        let key = try rfc("{server} derive write traffic keys for handshake data", "key expanded")
        let iv = try rfc("{server} derive write traffic keys for handshake data", "iv expanded")
        let flight = try RFC8448Tests().serverFlight
        let primitives = SwiftCryptoPrimitives()
        var writer = RecordLayer()
        writer.writeProtection = RecordProtection(cipher: try primitives.makeAEAD(.aes128GCM, key: SecretBytes(key)), iv: iv)
        try writer.write(.handshake, flight)
        let record = writer.takeOutbound()
        #expect(record == (try RFC8448Tests.protect(flight + [22], key: key, iv: iv, sequence: 0)))
        var reader = RecordLayer()
        reader.installReadKeys(RecordProtection(cipher: try primitives.makeAEAD(.aes128GCM, key: SecretBytes(key)), iv: iv), duringHandshake: true)
        let got = try Self.readAll(&reader, record)
        #expect(got.count == 1 && got.first?.0 == .handshake && got.first?.1 == flight)
    }

    @Test(
        "a flipped bit anywhere in the header, explicit nonce, ciphertext or tag → decrypt failure, and nothing is returned",
        arguments: Kind.allCases)
    func tampering(kind: Kind) throws {
        var (writer, _) = try Self.layers(kind)
        try writer.write(.applicationData, Array("attack at dawn".utf8))
        let record = writer.takeOutbound()
        // TLS 1.3 authenticates the header as it is on the wire (byte 1 must stay 3 or the
        // record is refused before decryption; the length bytes would only reframe). TLS 1.2's
        // additional data has the record's type and length but a fixed version 3,3, as before.
        var positions = Array(5..<record.count)
        positions.append(kind.framing == .tls13 ? 2 : 0)
        for position in positions {
            var (_, reader) = try Self.layers(kind)
            var bad = record
            bad[position] ^= 0x01
            reader.feed(bad)
            #expect(throws: TLSError(.decryptFailed), "byte \(position) flipped") { _ = try reader.readRecord() }
        }
        // The untouched record still opens under fresh keys.
        var (_, reader) = try Self.layers(kind)
        #expect(try Self.readAll(&reader, record).first?.1 == Array("attack at dawn".utf8))
    }

    @Test(
        "records too short for the tag (and explicit nonce) are decrypt failures, never reads out of bounds",
        arguments: Kind.allCases)
    func shortRecords(kind: Kind) throws {
        let minimum = kind.explicitNonceLength + 16
        for length in 0..<minimum {
            var (_, reader) = try Self.layers(kind)
            reader.feed([23, 3, 3, 0, UInt8(length)] + [UInt8](repeating: 0x42, count: length))
            #expect(throws: TLSError(.decryptFailed), "length \(length)") { _ = try reader.readRecord() }
        }
        // A header announcing more than has arrived: wait, do not read past the buffer.
        var (writer, reader) = try Self.layers(kind)
        try writer.write(.applicationData, [1, 2, 3])
        let record = writer.takeOutbound()
        for cut in 0..<record.count {
            var (_, fresh) = try Self.layers(kind)
            fresh.feed(Array(record.prefix(cut)))
            #expect(try fresh.readRecord() == nil, "cut at \(cut)")
        }
        #expect(try Self.readAll(&reader, record).first?.1 == [1, 2, 3])
    }

    @Test("TLS 1.3: inner plaintext of exactly 2^14 bytes and a record of exactly 2^14 + 256 are accepted; one byte more is record_overflow")
    func tls13Limits() throws {
        let kind = Kind.tls13AES256
        // 2^14 content bytes + type + 239 bytes of padding + 16 tag = 2^14 + 256 on the wire.
        var (writer, reader) = try Self.layers(kind)
        let full = [UInt8](repeating: 0x61, count: maxPlaintextLength)
        try writer.writeRawForTesting(.applicationData, full, padding: 239)
        let record = writer.takeOutbound()
        #expect(record.count == 5 + maxCiphertextLength)
        #expect(try Self.readAll(&reader, record).first?.1 == full)
        // One more byte of padding: the header is over the limit.
        try writer.writeRawForTesting(.applicationData, full, padding: 240)
        reader.feed(writer.takeOutbound())
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) { _ = try reader.readRecord() }
        // 2^14 + 1 content bytes (within the ciphertext limit): the inner plaintext is too long.
        var (writer2, reader2) = try Self.layers(kind)
        try writer2.writeRawForTesting(.applicationData, full + [0x62], padding: 0)
        reader2.feed(writer2.takeOutbound())
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) { _ = try reader2.readRecord() }
    }

    @Test(
        "TLS 1.2: plaintext of exactly 2^14 bytes is accepted, 2^14 + 1 is record_overflow, a header over 2^14 + 2048 is refused unread",
        arguments: [Kind.tls12AES256, .tls12ChaCha])
    func tls12Limits(kind: Kind) throws {
        var (writer, reader) = try Self.layers(kind)
        let full = [UInt8](repeating: 0x61, count: maxPlaintextLength)
        try writer.writeRawForTesting(.applicationData, full, padding: 0)
        #expect(try Self.readAll(&reader, writer.takeOutbound()).first?.1 == full)
        try writer.writeRawForTesting(.applicationData, full + [0x62], padding: 0)
        reader.feed(writer.takeOutbound())
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) { _ = try reader.readRecord() }
        var (_, fresh) = try Self.layers(kind)
        let length = maxPlaintextLength + 2049
        fresh.feed([23, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF)])
        #expect(throws: TLSError(.peerMisbehaved(.sentOversizedRecord))) { _ = try fresh.readRecord() }
    }

    @Test("TLS 1.3: an authenticated record of padding only, or of nothing at all, → unexpected_message")
    func paddingOnly() throws {
        for inner in [[UInt8](), [0], [UInt8](repeating: 0, count: 300)] {
            let kind = Kind.tls13AES256
            var (_, reader) = try Self.layers(kind)
            let length = inner.count + 16
            let header: [UInt8] = [23, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF)]
            let sealed = try Self.publicSeal(kind.aead, key: kind.key, nonce: RFC8448Tests.nonce(kind.iv, 0), aad: header, plaintext: inner)
            reader.feed(header + sealed)
            #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage)), "\(inner.count) zero bytes") { _ = try reader.readRecord() }
        }
        // Padding after a real content type is removed.
        var (writer, reader) = try Self.layers(.tls13AES256)
        try writer.writeRawForTesting(.handshake, [1, 0, 0, 0], padding: 100)
        let got = try Self.readAll(&reader, writer.takeOutbound())
        #expect(got.first?.0 == .handshake && got.first?.1 == [1, 0, 0, 0])
    }

    @Test(
        "the provider's in-place open leaves no plaintext behind when the tag fails (separate and aliased output)",
        arguments: [AEADAlgorithm.aes128GCM, .aes256GCM, .chaCha20Poly1305])
    func providerWipesOnFailure(aead: AEADAlgorithm) throws {
        let cipher = try SwiftCryptoPrimitives().makeAEAD(aead, key: SecretBytes([UInt8](repeating: 9, count: aead.keyLength)))
        let nonce = try #require(AEADNonce([UInt8](repeating: 1, count: 12)))
        let plaintext = [UInt8](repeating: 0x77, count: 100)
        var sealed = try cipher.seal(nonce: nonce.bytes, aad: [5], plaintext: plaintext[...])
        sealed[sealed.count - 1] ^= 1
        var output = [UInt8](repeating: 0xEE, count: 100)
        let failedSeparately = sealed.withUnsafeBytes { s in
            output.withUnsafeMutableBytes { o in
                [UInt8(5)].withUnsafeBytes { a in (try? cipher.open(nonce: nonce, aad: a, ciphertext: s, into: o)) == nil }
            }
        }
        #expect(failedSeparately)
        #expect(output.allSatisfy { $0 == 0 })
        // In place: the output is the ciphertext's own bytes.
        var buffer = sealed
        let failedInPlace = buffer.withUnsafeMutableBytes { b in
            [UInt8(5)].withUnsafeBytes { a in
                (try? cipher.open(nonce: nonce, aad: a, ciphertext: UnsafeRawBufferPointer(b), into: UnsafeMutableRawBufferPointer(rebasing: b[0..<100])))
                    == nil
            }
        }
        #expect(failedInPlace)
        #expect(buffer.prefix(100).allSatisfy { $0 == 0 })
        // Sealing in place gives the same bytes as sealing from a separate buffer.
        sealed[sealed.count - 1] ^= 1
        var inPlace = plaintext + [UInt8](repeating: 0, count: 16)
        try inPlace.withUnsafeMutableBytes { b in
            try [UInt8(5)].withUnsafeBytes { a in
                try cipher.seal(nonce: nonce, aad: a, plaintext: UnsafeRawBufferPointer(rebasing: b[0..<100]), into: b)
            }
        }
        #expect(inPlace == sealed)
    }

    @Test("over connections: a tampered header or ciphertext → bad_record_mac and no application data; records keep flowing across automatic key updates")
    func connections() throws {
        for position in [2, 6, 20] {
            let o = try runPair(client: clientConfig(), server: serverConfig())
            try o.client.send(Array(repeating: 0x33, count: 64))
            var wire = o.client.takeOutput()
            wire[position] ^= 0x04
            var events: [TLSEvent] = []
            #expect(throws: TLSError(.decryptFailed)) { events = try o.server.receive(wire) }
            #expect(events.isEmpty)
            #expect(throws: TLSError(.alertReceived(.badRecordMAC))) { _ = try o.client.receive(o.server.takeOutput()) }
        }
        let o = try runPair(client: clientConfig(), server: serverConfig())
        o.client.automaticKeyUpdateRecords = 5
        var received: [[UInt8]] = []
        for i in 0..<40 {
            try o.client.send([UInt8(i)] + [UInt8](repeating: 0, count: i * 100))
            for d in try o.server.receive(o.client.takeOutput()).compactMap(\.applicationData) { received.append(d) }
        }
        #expect(received.count == 40)
        #expect(received.enumerated().allSatisfy { $0.element.first == UInt8($0.offset) && $0.element.count == 1 + $0.offset * 100 })
    }

    @Test("records read in place from the caller's buffer: any split of the wire, the unread tail kept for the next receive")
    func readInPlaceAcrossSplits() throws {
        let o = try runPair(client: clientConfig(), server: serverConfig())
        let messages = [[UInt8](repeating: 1, count: 10), [UInt8](repeating: 2, count: 3000), [], [UInt8](repeating: 3, count: maxPlaintextLength)]
        var wire: [UInt8] = []
        var expected: [[UInt8]] = []
        for round in 0..<12 {
            for m in messages where !m.isEmpty {
                try o.client.send(m + [UInt8(round)])
                expected.append(m + [UInt8(round)])
            }
        }
        wire = o.client.takeOutput()
        var received: [[UInt8]] = []
        var offset = 0
        var step = 1
        while offset < wire.count {
            let end = min(wire.count, offset + step)
            // Alternate arrays (contiguous: read in place) and a non-contiguous collection (copied in).
            let piece = wire[offset..<end]
            let events = step % 2 == 0 ? try o.server.receive(piece) : try o.server.receive(piece.lazy.map { $0 })
            for d in events.compactMap(\.applicationData) { received.append(d) }
            offset = end
            step = step * 3 + 1
        }
        // The 2^14-byte message plus its round byte spans two records: compare the byte streams.
        let same = received.flatMap { $0 } == expected.flatMap { $0 }
        #expect(same)
        #expect(received.count == expected.count + 12)
    }

    @Test("a send from a raw buffer is the same as a send from an array, and large sends are split into 2^14-byte records")
    func sendFromBuffer() throws {
        let o = try runPair(client: clientConfig(), server: serverConfig())
        let data = (0..<(3 * maxPlaintextLength + 5)).map { UInt8(truncatingIfNeeded: $0) }
        try data.withUnsafeBytes { try o.client.send($0) }
        let events = try o.server.receive(o.client.takeOutput())
        let pieces = events.compactMap(\.applicationData)
        #expect(pieces.map(\.count) == [maxPlaintextLength, maxPlaintextLength, maxPlaintextLength, 5])
        #expect(pieces.flatMap { $0 } == data)
    }

    static func publicSeal(_ aead: AEADAlgorithm, key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        if aead == .chaCha20Poly1305 {
            let box = try ChaChaPoly.seal(plaintext, using: SymmetricKey(data: key), nonce: ChaChaPoly.Nonce(data: nonce), authenticating: aad)
            return Array(box.ciphertext) + Array(box.tag)
        }
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
        return Array(box.ciphertext) + Array(box.tag)
    }

    static func publicOpen(_ aead: AEADAlgorithm, key: [UInt8], nonce: [UInt8], aad: [UInt8], sealed: [UInt8]) throws -> [UInt8] {
        let ciphertext = sealed.dropLast(16)
        let tag = sealed.suffix(16)
        if aead == .chaCha20Poly1305 {
            let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
            return Array(try ChaChaPoly.open(box, using: SymmetricKey(data: key), authenticating: aad))
        }
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
        return Array(try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: aad))
    }
}
