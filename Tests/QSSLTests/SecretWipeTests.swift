import QSSLSwiftCrypto
import Synchronization
import Testing

@testable import QSSL

/// What the provider hands back is a `SecretBytes` whose own storage is wiped when it goes: the
/// debug wipe observer must see the very buffer the secret was read from (same address, so not
/// a copy made on the way out while the original stays in memory), all zero.
extension SecretBytesTests {
    /// Makes a secret with `make`, drops it, and checks the wipe of its storage.
    static func expectWipedOnRelease(
        _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ make: () throws -> SecretBytes
    ) rethrows {
        let watched = Mutex<(address: Int, count: Int)?>(nil)
        let seen = Mutex<[[UInt8]]>([])
        SecretBytes.wipeObserver.withLock {
            $0 = { buffer in
                guard let w = watched.withLock({ $0 }), Int(bitPattern: buffer.baseAddress) == w.address, buffer.count == w.count else { return }
                seen.withLock { $0.append(Array(buffer)) }
            }
        }
        defer { SecretBytes.wipeObserver.withLock { $0 = nil } }
        var count = 0
        do {
            let secret = try make()
            count = secret.count
            let (address, nonZero) = secret.withUnsafeBytes { (Int(bitPattern: $0.baseAddress), $0.contains { $0 != 0 }) }
            #expect(nonZero, "\(what): a real secret, not zeros to begin with", sourceLocation: sourceLocation)
            watched.withLock { $0 = (address, count) }
            #expect(seen.withLock { $0.isEmpty }, "\(what): not wiped while it lives", sourceLocation: sourceLocation)
        }
        let wipes = seen.withLock { $0 }
        #expect(!wipes.isEmpty, "\(what): its storage was never wiped", sourceLocation: sourceLocation)
        #expect(wipes.allSatisfy { $0 == [UInt8](repeating: 0, count: count) }, "\(what): \(wipes)", sourceLocation: sourceLocation)
    }

    @Test("HKDF-Extract, HKDF-Expand and P_hash results (swift-crypto and the defaults over hmac) are wiped in place when dropped")
    func derivationsWipe() {
        for p in [SwiftCryptoPrimitives() as any CryptoPrimitives, HMACOnlyPrimitives()] {
            let key = SecretBytes((0..<48).map { UInt8($0 | 0x40) })
            Self.expectWipedOnRelease("extract \(type(of: p))") { p.hkdfExtract(.sha384, salt: key, inputKeyMaterial: key) }
            Self.expectWipedOnRelease("extract without salt \(type(of: p))") { p.hkdfExtract(.sha256, salt: nil, inputKeyMaterial: key) }
            Self.expectWipedOnRelease("expand \(type(of: p))") { p.hkdfExpand(.sha256, pseudoRandomKey: key, info: [1, 2, 3], length: 91) }
            Self.expectWipedOnRelease("P_hash \(type(of: p))") { p.tls12PHash(.sha384, secret: key, labelAndSeed: [9, 9], length: 104) }
        }
        let hkdf = HKDF(primitives: SwiftCryptoPrimitives(), hash: .sha256)
        Self.expectWipedOnRelease("traffic key") { TrafficKeys(secret: SecretBytes([UInt8](repeating: 7, count: 32)), hkdf: hkdf, aead: .aes256GCM).key }
        let prf = TLS12PRF(primitives: SwiftCryptoPrimitives(), hash: .sha256)
        Self.expectWipedOnRelease("TLS 1.2 master secret") {
            prf.masterSecret(preMasterSecret: SecretBytes([5, 6, 7]), sessionHash: [1], clientRandom: [], serverRandom: [])
        }
    }

    @Test("key-exchange shared secrets, both sides and every kind of group, are wiped in place when dropped")
    func sharedSecretsWipe() throws {
        for group in SwiftCryptoGroups.all {
            let (share, pending) = try group.generateClientShare()
            var answer: [UInt8] = []
            try Self.expectWipedOnRelease("\(group.group) server") {
                let (serverShare, secret) = try group.respond(toClientShare: share)
                answer = serverShare
                return secret
            }
            try Self.expectWipedOnRelease("\(group.group) client") { try pending.complete(serverShare: answer) }
        }
        Self.expectWipedOnRelease("TLS 1.2 hybrid pre-master secret") {
            tls12PreMasterSecret(SecretBytes([1, 2, 3]), hybrid: true, primitives: SwiftCryptoPrimitives())
        }
    }

    @Test("a secret filled in place is wiped in place, also when filling it fails half way")
    func filledInPlace() {
        struct Stop: Error {}
        Self.expectWipedOnRelease("filled") { SecretBytes(count: 40) { $0.copyBytes(from: (1...40).map { UInt8($0) }) } }
        Self.expectWipedOnRelease("copied") { [UInt8](repeating: 3, count: 33).withUnsafeBytes { SecretBytes(copying: $0) } }
        Self.expectWipedOnRelease("cut from a key block") { SecretBytes((1...64).map { UInt8($0) }).extracting(10..<42) }

        // Half written, then a failure: the observer must still see that storage zeroed.
        let address = Mutex<Int?>(nil)
        let seen = Mutex<[[UInt8]]>([])
        SecretBytes.wipeObserver.withLock {
            $0 = { buffer in if Int(bitPattern: buffer.baseAddress) == address.withLock({ $0 }) { seen.withLock { $0.append(Array(buffer)) } } }
        }
        defer { SecretBytes.wipeObserver.withLock { $0 = nil } }
        #expect(throws: Stop.self) {
            _ = try SecretBytes(count: 24) { (buffer) throws(Stop) in
                buffer.copyBytes(from: [UInt8](repeating: 0xEE, count: 12))
                address.withLock { $0 = Int(bitPattern: buffer.baseAddress) }
                throw Stop()
            }
        }
        let wipes = seen.withLock { $0 }
        #expect(!wipes.isEmpty && wipes.allSatisfy { $0 == [UInt8](repeating: 0, count: 24) }, "\(wipes)")
    }
}
