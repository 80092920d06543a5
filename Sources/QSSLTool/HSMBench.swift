import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLX509

/// `qssl hsm bench`: the same ECDSA P-384 server key in a token and in memory, in-process and over
/// loopback with concurrent clients, and what a full signing queue does.
struct HSMBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Handshakes per second with the server key in the token next to the same key type in memory.")

    @Option(help: "PKCS#11 module (.so).")
    var module: String

    @Option(help: "Token label.")
    var token: String

    @Option(help: "File whose first line is the user PIN.")
    var pinFile: String?

    @Option(help: "Environment variable holding the user PIN.")
    var pinEnv: String?

    @Option(help: "Label of the ECDSA P-384 key to use (generated when absent).")
    var label: String = "qssl-bench-p384"

    @Option(help: "Handshakes per measurement.")
    var handshakes: Int = 200

    @Option(help: "Concurrent clients over loopback, comma-separated.")
    var concurrency: String = "1,8,32"

    @Option(help: "Signing threads for the token, comma-separated (each measured).")
    var threads: String = "1,4"

    func validate() throws {
        if pinFile == nil && pinEnv == nil { throw ValidationError("give the PIN with --pin-file or --pin-env") }
    }

    func run() async throws {
        let pin: PKCS11PIN = pinFile.map(PKCS11PIN.file) ?? .environment(pinEnv!)
        let module = try PKCS11Module.load(path: module)
        let admin = try PKCS11Token.open(module: module, label: token, pin: pin)
        let hsmKey = try (try? admin.signingKey(matching: PKCS11URI(object: label))) ?? admin.generateKeyPair(.ecdsaP384, label: label)
        guard hsmKey.algorithm == .ecdsaP384 else { throw ValidationError("'\(label)' is \(hsmKey.algorithm), not ECDSA P-384") }
        let ca = try PKIBuilder.makeCA(subject: "CN=Q-SSL HSM bench CA", key: .p384(.init()))
        let hsmCertificate = try PKIBuilder.issue(
            subject: "CN=localhost", subjectPublicKeyInfo: hsmKey.subjectPublicKeyInfo, issuerCertificate: ca.certificate,
            issuerSigner: try CertificateSigner(ca.key), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        let memoryKey = SwiftCryptoSigningKey.p384(.init())
        let memoryCertificate = try PKIBuilder.issue(subject: "CN=localhost", key: memoryKey, by: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        let memory = try CertificateFiles.certifiedKey(chain: [memoryCertificate], key: memoryKey)
        let verifier = X509CertificateVerifier(roots: [ca.certificate])
        func hsm(_ token: PKCS11Token) throws -> CertifiedKey {
            try CertificateFiles.certifiedKey(
                chain: [hsmCertificate], key: try token.signingKey(matching: hsmKey.uri), subjectPublicKeyInfo: hsmKey.subjectPublicKeyInfo)
        }
        print("module: \(module.info)")
        print("key: \(hsmKey) (CKM_ECDSA, SHA-384 on the host) vs ECDSA P-384 in memory (swift-crypto)")

        // 1. One signature, sequentially.
        let message = [UInt8](repeating: 0x20, count: 64) + Array("TLS 1.3, server CertificateVerify".utf8) + [0] + [UInt8](repeating: 7, count: 48)
        let n = max(50, handshakes)
        var start = ContinuousClock.now
        for _ in 0..<n { _ = try memoryKey.sign(message, scheme: .ecdsaSecp384r1SHA384) }
        let memorySign = milliseconds(ContinuousClock.now - start) / Double(n)
        start = ContinuousClock.now
        for _ in 0..<n { _ = try hsmKey.sign(message, scheme: .ecdsaSecp384r1SHA384) }
        let hsmSign = milliseconds(ContinuousClock.now - start) / Double(n)
        start = ContinuousClock.now
        for _ in 0..<n { _ = try await hsmKey.signAsynchronously(message, scheme: .ecdsaSecp384r1SHA384) }
        let hsmAsyncSign = milliseconds(ContinuousClock.now - start) / Double(n)
        print(
            String(
                format: "sign, sequential: memory %.3f ms, token %.3f ms on the caller's thread, %.3f ms through the signing threads", memorySign, hsmSign,
                hsmAsyncSign))

        // Signatures per second through the signing threads, 16 requests at a time: the pool.
        var poolLine = "token signatures/s, 16 concurrent requests:"
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            let opened = try PKCS11Token.open(module: module, label: token, pin: pin, configuration: .init(sessionPoolSize: t, signingThreads: t))
            let key = try opened.signingKey(matching: hsmKey.uri)
            let perTask = max(1, n / 16)
            start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask { for _ in 0..<perTask { _ = try await key.signAsynchronously(message, scheme: .ecdsaSecp384r1SHA384) } }
                }
                try await group.waitForAll()
            }
            poolLine += String(format: " %d thread%@ %.0f;", t, t == 1 ? "" : "s", Double(16 * perTask) / (milliseconds(ContinuousClock.now - start) / 1000))
            opened.close()
        }
        print(poolLine)

        // 2. Full TLS 1.3 handshakes in one process (client + server CPU, no sockets).
        let memoryRate = try await inProcess(server: memory, verifier: verifier, count: handshakes)
        let hsmRate = try await inProcess(server: try hsm(admin), verifier: verifier, count: handshakes)
        print(String(format: "in-process TLS 1.3 handshakes: memory %.1f/s, token %.1f/s (token/memory = %.2f)", memoryRate, hsmRate, hsmRate / memoryRate))

        // 3. Concurrent clients over loopback: the token's signing threads against the event loops.
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        print("loopback TLS 1.3 handshakes/s (\(System.coreCount) cores, clients and server in this process):")
        for c in levels {
            var line = String(format: "  %3d clients: memory %7.1f", c, try await loopback(server: memory, verifier: verifier, clients: c).rate)
            for t in threadCounts {
                let opened = try PKCS11Token.open(
                    module: module, label: token, pin: pin,
                    configuration: .init(sessionPoolSize: t, signingThreads: t, signingQueueLimit: 1024))
                let result = try await loopback(server: try hsm(opened), verifier: verifier, clients: c)
                line += String(format: " | token, %d thread%@ %7.1f", t, t == 1 ? "" : "s", result.rate)
                opened.close()
            }
            print(line)
        }

        // 4. Overload: one signing thread, no queue — handshakes beyond it fail fast.
        let narrow = try PKCS11Token.open(
            module: module, label: token, pin: pin,
            configuration: .init(sessionPoolSize: 1, signingThreads: 1, signingQueueLimit: 0))
        let overload = try await loopback(server: try hsm(narrow), verifier: verifier, clients: 32)
        print(
            String(
                format:
                    "overload (1 signing thread, queue limit 0, 32 clients): %d completed, %d refused with internal_error (median %.2f ms to the alert); %@",
                overload.completed, overload.failed, overload.medianFailureMilliseconds, narrow.signingStatistics.description))
        narrow.close()
        admin.close()
    }

    /// Sequential handshakes driven in this task; a paused server is resumed with `resolve()`.
    private func inProcess(server: CertifiedKey, verifier: X509CertificateVerifier, count: Int) async throws -> Double {
        let serverConfiguration = ServerConfiguration(provider: .swiftCrypto, certificates: [server])
        var clientConfiguration = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        clientConfiguration.versions = [.tls13]
        clientConfiguration.sessionStore = nil  // full handshakes only: a resumption signs nothing
        let start = ContinuousClock.now
        for _ in 0...count {
            let c = try TLSConnection.client(configuration: clientConfiguration, serverName: "localhost")
            let s = try TLSConnection.server(configuration: serverConfiguration)
            while !(c.isHandshakeComplete && s.isHandshakeComplete) {
                let a = c.takeOutput()
                if !a.isEmpty {
                    var events = try s.receive(a)
                    while let decision = events.last?.decision {
                        events = try s.resume(with: await decision.resolve())
                    }
                }
                let b = s.takeOutput()
                if !b.isEmpty { _ = try c.receive(b) }
                if a.isEmpty && b.isEmpty { throw Failure(message: "handshake stalled", code: 1) }
            }
        }
        return Double(count + 1) / (milliseconds(ContinuousClock.now - start) / 1000)
    }

    struct LoopbackResult {
        var rate: Double
        var completed: Int
        var failed: Int
        var medianFailureMilliseconds: Double
    }

    /// `handshakes` handshakes by `clients` concurrent clients against a fresh server.
    private func loopback(server: CertifiedKey, verifier: X509CertificateVerifier, clients: Int) async throws -> LoopbackResult {
        let listener = try await NIOQSSLServer.start(
            host: "127.0.0.1", port: 0, configuration: ServerConfiguration(provider: .swiftCrypto, certificates: [server])
        ) { [] }
        defer { listener.channel.close(promise: nil) }
        var clientConfiguration = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        clientConfiguration.versions = [.tls13]
        clientConfiguration.sessionStore = nil
        let configuration = clientConfiguration
        let port = listener.port
        let total = handshakes
        let counter = BenchCounter()
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    while counter.take(below: total) {
                        let began = ContinuousClock.now
                        do {
                            let client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: configuration, serverName: "localhost")
                            await client.close()
                            counter.succeeded()
                        } catch {
                            counter.failed(after: milliseconds(ContinuousClock.now - began))
                        }
                    }
                }
            }
        }
        let seconds = milliseconds(ContinuousClock.now - start) / 1000
        let (ok, failures) = counter.results
        let sorted = failures.sorted()
        return LoopbackResult(
            rate: Double(ok) / seconds, completed: ok, failed: failures.count,
            medianFailureMilliseconds: sorted.isEmpty ? 0 : sorted[sorted.count / 2])
    }
}

private final class BenchCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = 0
    private var ok = 0
    private var failures: [Double] = []
    func take(below limit: Int) -> Bool {
        lock.withLock {
            guard taken < limit else { return false }
            taken += 1
            return true
        }
    }
    func succeeded() { lock.withLock { ok += 1 } }
    func failed(after ms: Double) { lock.withLock { failures.append(ms) } }
    var results: (Int, [Double]) { lock.withLock { (ok, failures) } }
}
