import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

/// A peer program running beside the test, with its output collected.
final class PeerProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var output = ""
    let commandLine: String

    init(_ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        // The test process blocks SIGTERM and friends in its signal mask, and a spawned child
        // inherits that mask: `terminate()` would do nothing and the peer would outlive the test
        // run. Start every peer through perl (Essential in Debian) with an empty signal mask,
        // default handlers and a process group of its own, so that it and its children can be
        // ended as one.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        process.arguments = ["-e", Self.cleanExec, executable] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let input = Pipe()
        process.standardInput = input
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            // End of file: stop watching (an empty read would otherwise repeat at once).
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            guard let self else { return }
            self.lock.lock()
            self.output += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        // s_client reads stdin: keep it open (with -ign_eof it would not matter) until we terminate.
        keepInput = input
    }
    private var keepInput: Pipe?

    /// Runs a command to completion and returns its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) -> String {
        guard let p = try? PeerProcess(executable, arguments) else { return "" }
        // Its standard input at end of file: a command that reads it (s_client, after its
        // handshake) ends instead of waiting out the timeout.
        try? p.keepInput?.fileHandleForWriting.close()
        p.keepInput = nil
        return p.finish(timeout: 60)
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return output
    }

    /// Waits until the output contains `marker`; throws with the output so far after `timeout`.
    func waitFor(_ marker: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if text.contains(marker) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw PeerError("timed out waiting for '\(marker)' from \(commandLine):\n\(text)")
    }

    /// Waits for the process to exit (terminating it after `timeout`) and returns its output.
    @discardableResult
    func finish(timeout: Double = 30) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        terminate()
        Thread.sleep(forTimeInterval: 0.05)
        return text
    }

    func terminate() {
        if process.isRunning {
            let pid = process.processIdentifier
            // The group first (the peer and anything it started), then the process itself in
            // case it has not reached setpgid yet; SIGKILL if SIGTERM is not enough.
            kill(-pid, SIGTERM)
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(2)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if process.isRunning {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
            }
            process.waitUntilExit()
        }
        try? keepInput?.fileHandleForWriting.close()
    }

    /// Perl that clears the signal mask, restores default dispositions, makes a new process group
    /// and execs its arguments.
    static let cleanExec = """
        use POSIX; POSIX::sigprocmask(POSIX::SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!";
        $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP PIPE QUIT USR1 USR2);
        POSIX::setpgid(0, 0); exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!";
        """

    deinit { terminate() }
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum Peers {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var python: String {
        ProcessInfo.processInfo.environment["QSSL_PEER_PYTHON"] ?? packageRoot + "/.venv-peers/bin/python"
    }
    static func script(_ name: String) -> String { packageRoot + "/Tests/QSSLInteropTests/Peers/" + name }

    static func executable(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        throw PeerError("\(name) is not installed: run scripts/install-peers (scripts/test does)")
    }

    static func requirePython() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw PeerError("\(python) missing: run scripts/install-peers (scripts/test does)")
        }
        return python
    }

    /// A port that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw PeerError("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits until something accepts TCP connections on the port.
    static func waitForListener(port: Int, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw PeerError("nothing listens on port \(port)")
    }
}

/// Certificates on disk for the peers: an ECDSA P-384 and an RSA-3072 (signing with RSA-PSS) server.
struct InteropPKI: Sendable {
    let directory: String
    let ecdsa: DemoPKI
    let rsa: DemoPKI

    static let shared: InteropPKI = {
        do { return try InteropPKI() } catch { fatalError("cannot create the interop PKI: \(error)") }
    }()

    init() throws {
        directory = NSTemporaryDirectory() + "qssl-interop-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        ecdsa = try DemoPKI(algorithm: .ecdsaP384)
        rsa = try DemoPKI(algorithm: .rsa3072PSS)
        for (name, pki) in [("ecdsa", ecdsa), ("rsa", rsa)] {
            try CertificateFiles.pem([pki.serverCertificate]).write(toFile: path("\(name).pem"), atomically: true, encoding: .utf8)
            try CertificateFiles.pkcs8PEM(pki.serverKey).write(toFile: path("\(name).key"), atomically: true, encoding: .utf8)
            try CertificateFiles.pem([pki.ca.certificate]).write(toFile: path("\(name)-ca.pem"), atomically: true, encoding: .utf8)
        }
    }

    func path(_ name: String) -> String { directory + "/" + name }
    func pki(_ name: String) -> DemoPKI { name == "rsa" ? rsa : ecdsa }
}

/// Echoes what it reads: the application behind the in-process Q-SSL server.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Records what the server's connections ended with.
final class ServerOutcomes: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let lock = NSLock()
    private var _summaries: [HandshakeSummary] = []
    private var _errors: [Error] = []

    var summaries: [HandshakeSummary] { lock.withLock { _summaries } }
    var errors: [Error] { lock.withLock { _errors } }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let s = (event as? QSSLUserEvent)?.handshakeSummary { lock.withLock { _summaries.append(s) } }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? NIOQSSLError, case .uncleanShutdown = e { return }
        lock.withLock { _errors.append(error) }
    }
}

/// Starts an in-process Q-SSL echo server.
func startQSSLServer(pki: String = "ecdsa", configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> (NIOQSSLServer, ServerOutcomes) {
    var config = ServerConfiguration(provider: .swiftCrypto, certificates: [try InteropPKI.shared.pki(pki).serverCertifiedKey])
    configure(&config)
    let outcomes = ServerOutcomes()
    let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: 0, configuration: config) { [EchoHandler(), outcomes] }
    return (server, outcomes)
}

func qsslClientConfig(
    pki: String = "ecdsa", groups: [NamedGroup]? = nil, keyShares: [NamedGroup]? = nil,
    configure: (inout ClientConfiguration) -> Void = { _ in }
) -> ClientConfiguration {
    var config = ClientConfiguration(provider: .swiftCrypto, verifier: InteropPKI.shared.pki(pki).verifier)
    if let groups { config.groups = groups }
    if let keyShares { config.keyShareGroups = keyShares }
    configure(&config)
    return config
}

/// The TLS error inside whatever the NIO client threw.
func tlsError(_ error: Error) -> TLSError? {
    if let e = error as? NIOQSSLError, case .tls(let t) = e { return t }
    return error as? TLSError
}
