import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLPKCS11
import QSSLSwiftCrypto
import QSSLX509
import Testing

/// One SoftHSM2 token for the whole test process, made by scripts/softhsm-setup in a temporary
/// directory, with the keys and certificates the tests share. Tests skip (with the reason) only
/// when softhsm2 is not installed.
enum SoftHSM {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static let modulePath: String? = [
        "/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"
    ].first { FileManager.default.fileExists(atPath: $0) }

    static var isAvailable: Bool {
        modulePath != nil && ["/usr/bin/softhsm2-util", "/usr/local/bin/softhsm2-util"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static let skipReason: Comment = "softhsm2 is not installed: apt-get install softhsm2 (scripts/install-peers does)"

    static let environmentLock = NSLock()
    static let label = "qssl-test"
    /// A second token nobody logs in to: a wrong PIN is checked there (a token this process is
    /// logged in to answers C_Login with CKR_USER_ALREADY_LOGGED_IN whatever the PIN).
    static let pinTestLabel = "qssl-pin-test"

    /// A token directory of its own for the `qssl` processes, with keys made by
    /// `scripts/softhsm-setup --keys` (`qssl hsm keygen`): SoftHSM's file store is not safe
    /// against one process reading a token while another writes it.
    static var cli: CLIFixture {
        get throws {
            switch cliResult {
            case .success(let f): return f
            case .failure(let e): throw e
            }
        }
    }
    private static let cliResult: Result<CLIFixture, Error> = Result { try CLIFixture() }

    struct CLIFixture: Sendable {
        let directory: String
        let pinFile: String
        let environment: [String: String]

        init() throws {
            let shared = try SoftHSM.shared
            directory = shared.directory + "/cli-token"
            let qssl = packageRoot + "/.build/debug/qssl"
            guard FileManager.default.isExecutableFile(atPath: qssl) else { throw FixtureError("build qssl first (swift build --build-tests)") }
            for arguments in [[directory, "--label", SoftHSM.label, "--keys"], [directory, "--label", SoftHSM.pinTestLabel]] {
                let output = try runBlocking(packageRoot + "/scripts/softhsm-setup", arguments, environment: ["QSSL": qssl])
                guard output.status == 0 else { throw FixtureError("scripts/softhsm-setup failed: \(output.text)") }
            }
            pinFile = directory + "/pin"
            environment = ["SOFTHSM2_CONF": directory + "/softhsm2.conf"]
        }
    }

    static var shared: Fixture {
        get throws {
            switch sharedResult {
            case .success(let f): return f
            case .failure(let e): throw e
            }
        }
    }
    private static let sharedResult: Result<Fixture, Error> = Result { try Fixture() }

    struct Fixture: @unchecked Sendable {
        let directory: String
        let pinFile: String
        let module: PKCS11Module
        let token: PKCS11Token
        let p384: PKCS11SigningKey
        let p256: PKCS11SigningKey
        let rsa: PKCS11SigningKey
        let ca: PKIBuilder.Issuer
        let caFile: String

        init() throws {
            directory = NSTemporaryDirectory() + "qssl-softhsm-\(getpid())"
            // Token directories of earlier runs whose process is gone.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
            where name.hasPrefix("qssl-softhsm-") {
                if let pid = Int32(name.dropFirst("qssl-softhsm-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                    try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + name)
                }
            }
            for label in [SoftHSM.label, SoftHSM.pinTestLabel] {
                let output = try runBlocking(packageRoot + "/scripts/softhsm-setup", [directory, "--label", label])
                guard output.status == 0 else { throw FixtureError("scripts/softhsm-setup failed: \(output.text)") }
            }
            pinFile = directory + "/pin"
            // SoftHSM reads its configuration when the module is initialized: before any test loads it.
            setenv("SOFTHSM2_CONF", directory + "/softhsm2.conf", 1)
            module = try PKCS11Module.load(path: modulePath!)
            token = try PKCS11Token.open(module: module, label: SoftHSM.label, pin: .file(pinFile))
            let token = token
            func key(_ algorithm: PKCS11KeyAlgorithm, _ label: String) throws -> PKCS11SigningKey {
                try (try? token.signingKey(matching: PKCS11URI(object: label))) ?? token.generateKeyPair(algorithm, label: label)
            }
            p384 = try key(.ecdsaP384, "server-p384")
            p256 = try key(.ecdsaP256, "server-p256")
            rsa = try key(.rsa(bits: 3072), "server-rsa")
            ca = try PKIBuilder.makeCA(subject: "CN=Q-SSL PKCS#11 test CA", key: .p384(.init()))
            caFile = directory + "/ca.pem"
            try CertificateFiles.pem([ca.certificate]).write(toFile: caFile, atomically: true, encoding: .utf8)
        }

        /// A localhost certificate for a key's public half, from the test CA.
        func certificate(for spki: [UInt8]) throws -> X509Certificate {
            try PKIBuilder.issue(
                subject: "CN=localhost", subjectPublicKeyInfo: spki, issuerCertificate: ca.certificate,
                issuerSigner: try CertificateSigner(ca.key), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        }

        func certifiedKey(_ key: PKCS11SigningKey) throws -> CertifiedKey {
            try CertificateFiles.certifiedKey(chain: [try certificate(for: key.subjectPublicKeyInfo)], key: key, subjectPublicKeyInfo: key.subjectPublicKeyInfo)
        }

        var verifier: X509CertificateVerifier { X509CertificateVerifier(roots: [ca.certificate]) }

        /// A private copy of the module with a token directory of its own, logged in, with a
        /// P-384 key "server-p384": dlopen loads the copy as a separate library with its own
        /// state, so a test may finalize it without disturbing the shared module (and SoftHSM's
        /// file store is not safe against two instances using one token directory).
        func privateModule(_ name: String) throws -> (PKCS11Module, PKCS11Token, PKCS11SigningKey) {
            let dir = directory + "/" + name
            let output = try runBlocking(packageRoot + "/scripts/softhsm-setup", [dir, "--label", SoftHSM.label])
            guard output.status == 0 else { throw FixtureError("scripts/softhsm-setup failed: \(output.text)") }
            let path = dir + "/libsofthsm2.so"
            if !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.copyItem(atPath: URL(fileURLWithPath: modulePath!).resolvingSymlinksInPath().path, toPath: path)
            }
            // SoftHSM reads SOFTHSM2_CONF in C_Initialize: point it at the private directory for
            // that one call.
            let module = try SoftHSM.environmentLock.withLock {
                let shared = directory + "/softhsm2.conf"
                setenv("SOFTHSM2_CONF", dir + "/softhsm2.conf", 1)
                defer { setenv("SOFTHSM2_CONF", shared, 1) }
                return try PKCS11Module.load(path: path)
            }
            let token = try PKCS11Token.open(module: module, label: SoftHSM.label, pin: .file(dir + "/pin"))
            let key = try token.generateKeyPair(.ecdsaP384, label: "server-p384")
            return (module, token, key)
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs a program to completion (SIGKILL after `timeout`) with stdin closed or fed `input`,
/// waiting without holding a thread of the cooperative pool (the handshakes under test need it).
func run(_ executable: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:], timeout: Double = 60) async throws -> (
    status: Int32, text: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let output = Pipe()
    let stdin = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = stdin
    let collected = OutputCollector()
    output.fileHandleForReading.readabilityHandler = { handle in collected.append(handle.availableData) }
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    output.fileHandleForReading.readabilityHandler = nil
    collected.append(output.fileHandleForReading.readDataToEndOfFile())
    return (process.terminationStatus, collected.text)
}

/// A long-running program (`qssl serve`), ended with SIGKILL (the test process blocks SIGTERM,
/// and children inherit that mask).
final class Background: @unchecked Sendable {
    let process = Process()
    private let collected = OutputCollector()

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = Pipe()
        output.fileHandleForReading.readabilityHandler = { [collected] handle in collected.append(handle.availableData) }
        try process.run()
    }

    var text: String { collected.text }

    func waitFor(_ marker: String, timeout: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if text.contains(marker) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("no '\(marker)' from \(process.arguments?.joined(separator: " ") ?? ""):\n\(text)")
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.withLock { data.append(d) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

/// Records what a server's connections ended with.
final class Outcomes: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let lock = NSLock()
    private var _summaries: [HandshakeSummary] = []
    private var _errors: [Error] = []
    var summaries: [HandshakeSummary] { lock.withLock { _summaries } }
    var errors: [Error] { lock.withLock { _errors } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let s = (event as? QSSLUserEvent)?.handshakeSummary { lock.withLock { _summaries.append(s) } }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NIOQSSLError, case .uncleanShutdown = e { return }
        lock.withLock { _errors.append(error) }
    }
}

/// An echo server whose certificate key is `key`.
func startServer(_ certifiedKey: CertifiedKey, configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> (NIOQSSLServer, Outcomes) {
    var configuration = ServerConfiguration(provider: .swiftCrypto, certificates: [certifiedKey])
    configure(&configuration)
    let outcomes = Outcomes()
    let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: configuration) { [outcomes] }
    return (server, outcomes)
}

/// The TLS error inside what the NIO client threw.
func tlsError(_ error: Error) -> TLSError? {
    if let e = error as? NIOQSSLError, case .tls(let t) = e { return t }
    return error as? TLSError
}

var opensslPath: String? { ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) } }

/// `run` for the one place that cannot await (the fixture's initializer, once per process).
func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, text: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
