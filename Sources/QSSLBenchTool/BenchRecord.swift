import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLX509

/// Record-layer throughput next to the raw cipher, in the same run: 16 KiB records sealed by
/// one TLSConnection and opened by its peer, against swift-crypto's public AES.GCM / ChaChaPoly
/// seal + open of the same 16 KiB buffer (and the provider's AEAD called directly, in place,
/// without framing: the floor the record layer can reach).
extension Bench {
    func recordLayerFigures(pki: DemoPKI, megabytes: Int) throws -> [[String: Any]] {
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 14)
        let total = megabytes << 20
        let rounds = 3
        var best: [String: Double] = [:]
        func keep(_ key: String, _ value: Double) { best[key] = max(best[key] ?? 0, value) }

        let pairs13 = try TLS13CipherSuite.all.map { suite in
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.cipherSuites = [suite]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.sessionStore = nil
            client.versions = [.tls13]
            client.cipherSuites = [suite]
            return (
                label: "TLS 1.3 \(suite.suite)", suite: suite.suite.description, aead: suite.aead,
                pair: try handshake(client: client, server: server)
            )
        }
        let pairs12 = try [TLS12CipherSuite.ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256].map { suite in
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.versions = [.tls12]
            server.tls12CipherSuites = [suite]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.sessionStore = nil
            client.versions = [.tls12]
            client.tls12CipherSuites = [suite]
            return (
                label: "TLS 1.2 \(suite.suite)", suite: suite.suite.description, aead: suite.aead,
                pair: try handshake(client: client, server: server)
            )
        }
        // Rounds interleave every row, and each row keeps its best round: on a shared 2-core
        // machine the slowest rounds measure the neighbours, not the code.
        for _ in 0..<rounds {
            keep("raw-aes", try rawSwiftCrypto(AES.GCM.self, chunk: chunk, total: total))
            keep("raw-chacha", try rawSwiftCrypto(ChaChaPoly.self, chunk: chunk, total: total))
            keep("provider-aes", try providerInPlace(.aes256GCM, chunk: chunk, total: total))
            keep("provider-chacha", try providerInPlace(.chaCha20Poly1305, chunk: chunk, total: total))
            for row in pairs13 + pairs12 { keep(row.label, try recordLayer(row.pair, chunk: chunk, total: total)) }
        }

        var results: [[String: Any]] = []
        let raw: [AEADAlgorithm: Double] = [.aes256GCM: best["raw-aes"]!, .aes128GCM: best["raw-aes"]!, .chaCha20Poly1305: best["raw-chacha"]!]
        if !json {
            print("-- record layer, 16 KiB records, seal + open (MB/s, best of \(rounds) interleaved rounds of \(total >> 20) MB)")
            func row(_ label: String, _ mbps: Double, _ note: String = "") {
                print(label.padding(toLength: 62, withPad: " ", startingAt: 0) + String(format: " %8.1f MB/s", mbps) + note)
            }
            row("raw swift-crypto AES.GCM (AES-256) seal + open", best["raw-aes"]!)
            row("raw swift-crypto ChaChaPoly seal + open", best["raw-chacha"]!)
            row("provider AEAD in place, AES-256-GCM (no framing)", best["provider-aes"]!)
            row("provider AEAD in place, ChaCha20-Poly1305 (no framing)", best["provider-chacha"]!)
        }
        results.append(["kind": "aead_raw", "api": "swift-crypto AES.GCM", "algorithm": "AES-256-GCM", "megabytes_per_second": best["raw-aes"]!])
        results.append(["kind": "aead_raw", "api": "swift-crypto ChaChaPoly", "algorithm": "ChaCha20-Poly1305", "megabytes_per_second": best["raw-chacha"]!])
        results.append(["kind": "aead_in_place", "algorithm": "AES-256-GCM", "megabytes_per_second": best["provider-aes"]!])
        results.append(["kind": "aead_in_place", "algorithm": "ChaCha20-Poly1305", "megabytes_per_second": best["provider-chacha"]!])
        for row in pairs13 + pairs12 {
            let mbps = best[row.label]!
            let versus = raw[row.aead]!
            results.append([
                "kind": "bulk", "records": row.label, "cipher_suite": row.suite, "aead": row.aead.description, "megabytes_per_second": mbps,
                "raw_megabytes_per_second": versus, "ratio_to_raw": mbps / versus
            ])
            if !json {
                let rawName = row.aead == .chaCha20Poly1305 ? "raw ChaChaPoly" : "raw AES-256-GCM"
                print(
                    "record layer, \(row.label)".padding(toLength: 62, withPad: " ", startingAt: 0)
                        + String(format: " %8.1f MB/s  = %3.0f%% of ", mbps, mbps / versus * 100) + rawName)
            }
        }
        return results
    }

    /// MB/s of plaintext through `send`, `takeOutput` and the peer's `receive`.
    private func recordLayer(_ pair: (TLSConnection, TLSConnection), chunk: [UInt8], total: Int) throws -> Double {
        let (c, s) = pair
        var moved = 0
        let start = ContinuousClock.now
        while moved < total {
            try c.send(chunk)
            for event in try s.receive(c.takeOutput()) { moved += event.applicationData?.count ?? 0 }
        }
        return Double(moved) / 1_048_576 / seconds(since: start)
    }

    /// swift-crypto's public API, as an application would call it: seal, then open the box.
    private func rawSwiftCrypto<Cipher: RawAEAD>(_: Cipher.Type, chunk: [UInt8], total: Int) throws -> Double {
        let key = SymmetricKey(size: .bits256)
        var nonce = [UInt8](repeating: 0, count: 12)
        let aad: [UInt8] = [23, 3, 3, 0x40, 0x11]
        var moved = 0
        let start = ContinuousClock.now
        var sequence: UInt64 = 0
        while moved < total {
            sequence += 1
            withUnsafeBytes(of: sequence.bigEndian) { nonce.replaceSubrange(4..<12, with: $0) }
            moved += try Cipher.sealThenOpen(chunk, key: key, nonce: nonce, aad: aad)
        }
        return Double(moved) / 1_048_576 / seconds(since: start)
    }

    /// The provider's AEAD through its in-place API: seal into a buffer, open it back.
    private func providerInPlace(_ algorithm: AEADAlgorithm, chunk: [UInt8], total: Int) throws -> Double {
        let cipher = try SwiftCryptoPrimitives().makeAEAD(algorithm, key: SecretBytes([UInt8](repeating: 7, count: algorithm.keyLength)))
        var sealed = [UInt8](repeating: 0, count: chunk.count + aeadTagLength)
        var opened = [UInt8](repeating: 0, count: chunk.count)
        let aad: [UInt8] = [23, 3, 3, 0x40, 0x11]
        var moved = 0
        var sequence: UInt64 = 0
        let start = ContinuousClock.now
        while moved < total {
            sequence += 1
            var bytes = [UInt8](repeating: 0, count: 4)
            withUnsafeBytes(of: sequence.bigEndian) { bytes += $0 }
            guard let nonce = AEADNonce(bytes) else { throw BenchError("nonce") }
            try aad.withUnsafeBytes { a in
                try chunk.withUnsafeBytes { p in
                    try sealed.withUnsafeMutableBytes { s in try cipher.seal(nonce: nonce, aad: a, plaintext: p, into: s) }
                }
                try sealed.withUnsafeBytes { s in
                    try opened.withUnsafeMutableBytes { o in try cipher.open(nonce: nonce, aad: a, ciphertext: s, into: o) }
                }
            }
            moved += chunk.count
        }
        return Double(moved) / 1_048_576 / seconds(since: start)
    }
}

/// AES.GCM and ChaChaPoly share their API shape but no protocol.
protocol RawAEAD {
    static func sealThenOpen(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], aad: [UInt8]) throws -> Int
}

extension AES.GCM: RawAEAD {
    static func sealThenOpen(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], aad: [UInt8]) throws -> Int {
        let box = try AES.GCM.seal(plaintext, using: key, nonce: try AES.GCM.Nonce(data: nonce), authenticating: aad)
        return try AES.GCM.open(box, using: key, authenticating: aad).count
    }
}

extension ChaChaPoly: RawAEAD {
    static func sealThenOpen(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], aad: [UInt8]) throws -> Int {
        let box = try ChaChaPoly.seal(plaintext, using: key, nonce: try ChaChaPoly.Nonce(data: nonce), authenticating: aad)
        return try ChaChaPoly.open(box, using: key, authenticating: aad).count
    }
}
