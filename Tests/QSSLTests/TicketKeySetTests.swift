import QSSLSwiftCrypto
import QSSLWire
import Testing

@testable import QSSL

@Suite("Ticket keys")
struct TicketKeySetTests {
    static let primitives = CryptoProvider.swiftCrypto.primitives
    static let hour: UInt64 = 3600

    static func key(_ byte: UInt8, createdAt: UInt64 = SessionSamples.epoch) -> TicketKey {
        try! TicketKey(name: Array(repeating: byte, count: 16), key: SecretBytes(Array(repeating: byte &+ 1, count: 32)), createdAt: createdAt)
    }

    @Test("a sealed ticket opens to its plaintext, by the current key, in the documented layout")
    func roundTrip() throws {
        let set = TicketKeySet(primitives: Self.primitives, clock: FakeClock())
        let plaintext = SecretBytes(try SessionSamples.state().encoded())
        let ticket = try set.seal(plaintext)
        #expect(ticket.count == plaintext.count + 16 + 12 + 16)
        #expect(Array(ticket.prefix(16)) == set.keys[0].name)
        let opened = try #require(set.open(ticket))
        #expect(opened.plaintext == plaintext && opened.byCurrentKey)
        #expect(try set.seal(plaintext) != ticket, "a fresh nonce every time")
        #expect(set.open(try set.seal(SecretBytes([])))?.plaintext == SecretBytes([]))
    }

    @Test("flipping any bit of a ticket, name, nonce, ciphertext or tag, makes it fail to open")
    func tampering() throws {
        let set = TicketKeySet(primitives: Self.primitives, clock: FakeClock())
        let ticket = try set.seal(SecretBytes(Array("resumption state".utf8)))
        for position in ticket.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var bad = ticket
                bad[position] ^= bit
                #expect(set.open(bad) == nil, "byte \(position) bit \(bit)")
            }
        }
    }

    @Test("a ticket cut short at any length, or lengthened, opens to nothing")
    func truncated() throws {
        let set = TicketKeySet(primitives: Self.primitives, clock: FakeClock())
        let ticket = try set.seal(SecretBytes([1, 2, 3]))
        for length in 0..<ticket.count { #expect(set.open(Array(ticket.prefix(length))) == nil, "length \(length)") }
        #expect(set.open(ticket + [0]) == nil)
    }

    @Test("a ticket of a key the set does not know opens to nothing")
    func unknownKey() throws {
        let ours = TicketKeySet(primitives: Self.primitives, clock: FakeClock())
        let theirs = TicketKeySet(primitives: Self.primitives, clock: FakeClock())
        #expect(ours.open(try theirs.seal(SecretBytes([1, 2, 3]))) == nil)
        // Same name, other key bytes: the tag fails.
        let a = TicketKeySet(keys: [Self.key(1)], primitives: Self.primitives, clock: FakeClock(), rotatesAutomatically: false)
        let b = TicketKeySet(
            keys: [try TicketKey(name: Self.key(1).name, key: SecretBytes(Array(repeating: 9, count: 32)), createdAt: 0)],
            primitives: Self.primitives, clock: FakeClock(), rotatesAutomatically: false)
        #expect(b.open(try a.seal(SecretBytes([1]))) == nil)
    }

    @Test("after 12 h a new key seals and the old one still opens (not by the current key); after 36 h it is gone")
    func schedule() throws {
        let clock = FakeClock()
        let set = TicketKeySet(primitives: Self.primitives, clock: clock)
        let first = try set.seal(SecretBytes([1]))
        clock.advance(seconds: 12 * Self.hour - 1)
        #expect(set.open(first)?.byCurrentKey == true)
        clock.advance(seconds: 1)
        let opened = try #require(set.open(first))
        #expect(opened.plaintext == SecretBytes([1]) && !opened.byCurrentKey)
        #expect(set.keys.count == 2)
        let second = try set.seal(SecretBytes([2]))
        #expect(Array(second.prefix(16)) != Array(first.prefix(16)))
        #expect(set.open(second)?.byCurrentKey == true)
        clock.advance(seconds: 24 * Self.hour)  // the first key is 36 h old
        #expect(set.open(first) == nil)
        #expect(set.open(second)?.byCurrentKey == false)
        #expect(set.keys.count == 2)
    }

    @Test("a set loaded from a shared file never makes keys of its own, and keeps its current key however old")
    func noAutomaticRotation() throws {
        let clock = FakeClock()
        let set = TicketKeySet(
            keys: [Self.key(1), Self.key(2, createdAt: SessionSamples.epoch - 40 * Self.hour * 1000)],
            primitives: Self.primitives, clock: clock, rotatesAutomatically: false)
        #expect(set.keys.map(\.name) == [Self.key(1).name], "the older key is past the 36 h lifetime")
        let ticket = try set.seal(SecretBytes([5]))
        clock.advance(seconds: 100 * Self.hour)
        #expect(set.open(ticket)?.byCurrentKey == true)
        #expect(set.keys.count == 1)
    }

    @Test("the newest key is current whatever the order given; of two keys with one name the newer stays")
    func ordering() throws {
        let older = Self.key(1, createdAt: SessionSamples.epoch - 1000)
        let newer = Self.key(2)
        let clash = try TicketKey(name: newer.name, key: SecretBytes(Array(repeating: 0, count: 32)), createdAt: SessionSamples.epoch - 5)
        let set = TicketKeySet(keys: [older, clash, newer], primitives: Self.primitives, clock: FakeClock(), rotatesAutomatically: false)
        #expect(set.keys == [newer, older])
        let olderSet = TicketKeySet(keys: [older], primitives: Self.primitives, clock: FakeClock(), rotatesAutomatically: false)
        #expect(set.open(try olderSet.seal(SecretBytes([3])))?.byCurrentKey == false)
    }

    @Test("replaceKeys and rotate: tickets of a dropped key stop opening, of a kept one go on")
    func replaceAndRotate() throws {
        let clock = FakeClock()
        let set = TicketKeySet(keys: [Self.key(1)], primitives: Self.primitives, clock: clock, rotatesAutomatically: false)
        let ticket = try set.seal(SecretBytes([1]))
        set.rotate()
        #expect(set.keys.count == 2 && set.keys[1] == Self.key(1))
        #expect(set.open(ticket)?.byCurrentKey == false)
        set.replaceKeys([Self.key(2)])
        #expect(set.open(ticket) == nil)
        set.replaceKeys([])
        #expect(throws: TLSError.self) { try set.seal(SecretBytes([1])) }
        #expect(set.open(ticket) == nil)
    }

    @Test("a rotating set with no keys makes one on first use")
    func emptyRotating() throws {
        let set = TicketKeySet(keys: [], primitives: Self.primitives, clock: FakeClock(), rotatesAutomatically: true)
        let ticket = try set.seal(SecretBytes([9]))
        #expect(set.open(ticket)?.plaintext == SecretBytes([9]))
        #expect(set.keys.count == 1)
    }

    @Test("a ticket key must have a 16-byte name and a 32-byte key")
    func keyLengths() {
        #expect(throws: TLSError.self) { try TicketKey(name: [1], key: SecretBytes(Array(repeating: 0, count: 32)), createdAt: 0) }
        #expect(throws: TLSError.self) { try TicketKey(name: Array(repeating: 0, count: 16), key: SecretBytes([1]), createdAt: 0) }
    }

    @Test("sealing and opening from many tasks across a rotation all succeed")
    func concurrent() async throws {
        let clock = FakeClock()
        let set = TicketKeySet(primitives: Self.primitives, clock: clock, rotationInterval: 1, keyLifetime: 3600)
        let failures = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var failures = 0
                    for i in 0..<200 {
                        if i % 50 == 0 && task == 0 { clock.advance(seconds: 1) }
                        let plaintext = SecretBytes([UInt8(task), UInt8(i)])
                        guard let ticket = try? set.seal(plaintext), set.open(ticket)?.plaintext == plaintext else {
                            failures += 1
                            continue
                        }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(set.keys.count > 1)
    }

    @Test("a key file round-trips every key with its name, bytes and age")
    func keyFileRoundTrip() throws {
        let keys = [Self.key(1), Self.key(2, createdAt: 0), Self.key(3, createdAt: .max)]
        let bytes = try TicketKeySet.encodeKeyFile(keys)
        #expect(Array(bytes.prefix(8)) == Array("QSSLTKEY".utf8))
        #expect(bytes.count == 8 + 1 + 2 + 3 * 56)
        let decoded = try TicketKeySet.decodeKeyFile(bytes)
        #expect(decoded == keys)
        #expect(decoded.map { $0.key.withUnsafeBytes { Array($0) } } == keys.map { $0.key.withUnsafeBytes { Array($0) } })
    }

    @Test("a malformed key file is refused: cut short, wrong magic or version, no keys, a duplicate name, a trailing byte")
    func keyFileMalformed() throws {
        let bytes = try TicketKeySet.encodeKeyFile([Self.key(1), Self.key(2)])
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self, "length \(length)") { try TicketKeySet.decodeKeyFile(Array(bytes.prefix(length))) }
        }
        for (position, value) in [(0, UInt8(ascii: "q")), (8, 0), (8, 2)] {
            var bad = bytes
            bad[position] = value
            #expect(throws: DecodeError.self) { try TicketKeySet.decodeKeyFile(bad) }
        }
        #expect(throws: DecodeError.self) { try TicketKeySet.decodeKeyFile(bytes + [0]) }
        #expect(throws: DecodeError.self) { try TicketKeySet.decodeKeyFile(Array(bytes.prefix(9)) + [0, 0]) }
        var duplicate = bytes
        duplicate.replaceSubrange(11 + 56..<11 + 56 + 16, with: Self.key(1).name)
        #expect(throws: DecodeError.self) { try TicketKeySet.decodeKeyFile(duplicate) }
        var miscounted = bytes
        miscounted[10] = 3
        #expect(throws: DecodeError.self) { try TicketKeySet.decodeKeyFile(miscounted) }
        #expect(throws: EncodeError.self) { try TicketKeySet.encodeKeyFile([]) }
        #expect(throws: EncodeError.self) { try TicketKeySet.encodeKeyFile([Self.key(1), Self.key(1, createdAt: 5)]) }
    }
}
