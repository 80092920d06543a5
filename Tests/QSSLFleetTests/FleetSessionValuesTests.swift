// The session cache's keys and values, computed with precomputed hash states and one AEAD key
// schedule per service, against the same formulas computed plainly with swift-crypto.

import Crypto
import Foundation
import QSSL
import Testing

@testable import QSSLFleet

@Suite("Fleet session keys and values")
struct FleetSessionValuesTests {
    func hexString(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("the Redis key is HMAC-SHA-256(session-index key, service id ‖ len ‖ session ID), truncated, for every ID length")
    func redisKeyIsTheHMAC() throws {
        for _ in 0..<8 {
            let key = try randomKey()
            let service = try ServiceIdentity(name: "svc-\(UInt32.random(in: 0...UInt32.max))")
            let values = FleetSessionValues(key: key, service: service)
            for length in 1...32 {
                let id = (0..<length).map { _ in UInt8.random(in: 0...255) }
                let mac = HMAC<SHA256>.authenticationCode(for: service.id + [UInt8(length)] + id, using: key.sessionIndexKey)
                let expected = "qssl:\(key.fleetID):s:" + hexString(Array(mac).prefix(16))
                #expect(String(decoding: values.redisKey(id), as: UTF8.self) == expected)
            }
        }
    }

    @Test("a value sealed plainly with AES.GCM opens; any changed byte, another session ID or another service does not")
    func valuesOpenOnlyAsSealed() throws {
        let key = try randomKey()
        let service = try ServiceIdentity(name: "shop")
        let other = try ServiceIdentity(name: "api")
        let values = FleetSessionValues(key: key, service: service)
        let id = randomID()
        let plaintext = (0..<90).map { _ in UInt8.random(in: 0...255) }
        let redisKey = values.redisKey(id)
        var ad = Array("qssl-fleet-session-v1".utf8)
        ad.appendField(Array(key.fleetID.utf8))
        ad.appendField(service.id)
        ad.appendField(redisKey)
        ad.appendField(id)
        let box = try AES.GCM.seal(plaintext, using: key.sessionSealKey(for: service), authenticating: ad)
        let value = FleetSessionValues.valuePrefix + Array(box.nonce) + box.ciphertext + box.tag
        #expect(values.open(value, sessionID: id, key: redisKey).plaintext == plaintext)
        // And what `seal` makes opens the same way.
        let sealed = try #require(values.seal(plaintext, sessionID: id))
        #expect(values.open(sealed, sessionID: id, key: redisKey).plaintext == plaintext)

        for index in FleetSessionValues.valuePrefix.count..<value.count {
            var changed = value
            changed[index] ^= 0x01
            let opened = values.open(changed, sessionID: id, key: redisKey)
            #expect(opened.plaintext == nil && !opened.malformed, "byte \(index)")
        }
        #expect(values.open(value, sessionID: randomID(), key: redisKey).plaintext == nil)
        #expect(FleetSessionValues(key: key, service: other).open(value, sessionID: id, key: redisKey).plaintext == nil)
        #expect(FleetSessionValues(key: try randomKey(), service: service).open(value, sessionID: id, key: redisKey).plaintext == nil)
        var badPrefix = value
        badPrefix[0] ^= 0x01
        #expect(values.open(badPrefix, sessionID: id, key: redisKey).malformed)
        #expect(values.open(Array(value.prefix(20)), sessionID: id, key: redisKey).malformed)
    }
}

@Suite("Fleet ticket keys: answers taken in the order their reads started")
struct TicketKeyRefreshOrderTests {
    @Test("a read that started before an answer already taken (the start-up read overtaken by the poller) is dropped")
    func staleReadDropped() throws {
        // Nothing listens on port 1: the store is only constructed, never used.
        let store = try FleetStore(url: "redis://127.0.0.1:1", key: try randomKey(), settings: FleetSettings())
        let keys = try FleetTicketKeyStore(store: store, schedule: TicketKeySchedule())
        let now = store.clock.nowMilliseconds()
        let e = keys.epoch(at: now)
        let older = keys.fresh(epoch: e, now: now)
        let newer = keys.fresh(epoch: e, now: now)
        keys.merge([newer], now: now, refresh: 2)
        keys.merge([older], now: now, refresh: 1)
        let held = keys.snapshot(now: now).keys
        #expect(held.map(\.fingerprint) == [newer.fingerprint], "the stale read's key was taken")
        #expect(held.allSatisfy { $0.current })
        // A read that failed (nothing read) takes no number: an earlier read answering after it
        // still counts.
        keys.merge([], now: now, refresh: nil)
        // A newer read is taken as usual.
        keys.merge([older], now: now, refresh: 3)
        #expect(keys.snapshot(now: now).keys.first { $0.current }?.fingerprint == older.fingerprint)
    }
}
