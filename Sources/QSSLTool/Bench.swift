import ArgumentParser
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure full handshakes per second and record-layer throughput in one process (no sockets).")

    @Option(help: "Handshakes per group.")
    var handshakes: Int = 200

    @Option(help: "Comma-separated groups to measure.")
    var groups: String = "SecP384r1MLKEM1024,X25519MLKEM768,x25519"

    @Option(help: "Megabytes to push through the record layer per cipher suite.")
    var megabytes: Int = 256

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let pki = try DemoPKI()
        var results: [[String: Any]] = []
        for group in try parseGroups(groups) ?? [] {
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.groups = [group]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.versions = [.tls13]
            client.groups = [group]
            client.keyShareGroups = [group]
            _ = try handshake(client: client, server: server)   // warm-up
            let start = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let seconds = milliseconds(ContinuousClock.now - start) / 1000
            let rate = Double(handshakes) / seconds
            results.append(["kind": "handshake", "group": group.description, "handshakes_per_second": rate,
                            "ms_per_handshake_both_sides": 1000 / rate])
            if !json { print(String(format: "%-20@ %8.1f full handshakes/s  (%.2f ms CPU per handshake, client+server) TLS 1.3", group.description as NSString, rate, 1000 / rate)) }
        }
        // The seed's TLS 1.2 hybrid (PROTOCOL.md §3) next to TLS 1.3 with the same group.
        do {
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.versions = [.tls12]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.versions = [.tls12]
            _ = try handshake(client: client, server: server)
            let start = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let rate = Double(handshakes) / (milliseconds(ContinuousClock.now - start) / 1000)
            results.append(["kind": "handshake", "version": "TLSv1.2", "group": "SecP384r1MLKEM1024", "handshakes_per_second": rate,
                            "ms_per_handshake_both_sides": 1000 / rate])
            if !json { print(String(format: "%-20@ %8.1f full handshakes/s  (%.2f ms CPU per handshake, client+server) TLS 1.2 hybrid suite", "SecP384r1MLKEM1024" as NSString, rate, 1000 / rate)) }
        }
        for suite in TLS13CipherSuite.all {
            var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
            server.cipherSuites = [suite]
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
            client.cipherSuites = [suite]
            var (c, s) = try handshake(client: client, server: server)
            let chunk = [UInt8](repeating: 0x5A, count: 1 << 14)
            let total = megabytes << 20
            var moved = 0
            let start = ContinuousClock.now
            while moved < total {
                try c.send(chunk)
                let wire = c.takeOutput()
                for case .applicationData(let d) in try s.receive(wire) { moved += d.count }
            }
            let seconds = milliseconds(ContinuousClock.now - start) / 1000
            let mbps = Double(moved) / 1_048_576 / seconds
            results.append(["kind": "bulk", "cipher_suite": suite.suite.description, "megabytes_per_second": mbps])
            if !json { print(String(format: "%-30@ %8.1f MB/s  (seal + open, 16 KiB records)", suite.suite.description as NSString, mbps)) }
        }
        // Certificate-chain verification (root → leaf) per algorithm, and full TLS 1.3 handshakes
        // with a composite chain next to an ECDSA-P384 chain.
        for algorithm in [PKIBuilder.Algorithm.mldsa65ECDSAP384, .mldsa65, .mldsa87, .ecdsaP384, .ecdsaP256, .rsa3072PSS, .ed25519] {
            let chainPKI = try algorithm == .ecdsaP384 ? pki : DemoPKI(algorithm: algorithm)
            let verifier = chainPKI.verifier
            let chain = [chainPKI.serverCertificate.der]
            let n = max(handshakes, 100)
            let start = ContinuousClock.now
            for _ in 0..<n { _ = try verifier.verify(chain: chain, role: .server(name: "localhost")) }
            let rate = Double(n) / (milliseconds(ContinuousClock.now - start) / 1000)
            results.append(["kind": "chain_verification", "algorithm": algorithm.rawValue, "verifications_per_second": rate])
            if !json { print(String(format: "%-20@ %8.1f chain verifications/s (parse + path + signature)", algorithm.rawValue as NSString, rate)) }
            guard algorithm == .mldsa65ECDSAP384 || algorithm == .ecdsaP384 else { continue }
            let server = ServerConfiguration(provider: .swiftCrypto, certificates: [try chainPKI.serverCertifiedKey])
            var client = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
            client.versions = [.tls13]
            let hsStart = ContinuousClock.now
            for _ in 0..<handshakes { _ = try handshake(client: client, server: server) }
            let hsRate = Double(handshakes) / (milliseconds(ContinuousClock.now - hsStart) / 1000)
            results.append(["kind": "handshake", "version": "TLSv1.3", "group": "SecP384r1MLKEM1024", "certificate": algorithm.rawValue,
                            "handshakes_per_second": hsRate])
            if !json { print(String(format: "%-20@ %8.1f full handshakes/s with a %@ chain (SecP384r1MLKEM1024, TLS 1.3)", algorithm.rawValue as NSString, hsRate, algorithm.rawValue as NSString)) }
        }
        if json { printJSON(["results": results]) }
    }

    private func handshake(client: ClientConfiguration, server: ServerConfiguration) throws -> (TLSConnection, TLSConnection) {
        var c = try TLSConnection.client(configuration: client, serverName: "localhost")
        var s = try TLSConnection.server(configuration: server)
        while !(c.isHandshakeComplete && s.isHandshakeComplete) {
            let a = c.takeOutput()
            if !a.isEmpty { _ = try s.receive(a) }
            let b = s.takeOutput()
            if !b.isEmpty { _ = try c.receive(b) }
            if a.isEmpty && b.isEmpty { throw Failure(message: "handshake stalled", code: 1) }
        }
        return (c, s)
    }
}
