import ArgumentParser
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

struct Trace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Trace a real handshake with a server: messages, sizes, records, TCP segments, round trips and the client's work, as text, Mermaid, HTML or JSON.",
        discussion: """
            The handshake is recorded from the client's side. The client sees reads, not TCP segments:
            segment boundaries are computed from the MSS (the socket's, or 1460 on loopback; --mss).
            The timing model (text and HTML) adds one handshake of each kind the server speaks (TLS 1.3,
            TLS 1.2, resumption) unless --no-compare, and prices them at each --rtt beside the seed's §1.2 figures.
            Exit codes: 0 traced; 1 the handshake or connection failed (the trace up to the failure is still
            written); 2 certificate verification failed; 64 usage error.
            """)

    @Argument(help: "HOST:PORT of the server.")
    var address: String

    @Option(help: "Server name for SNI and certificate checking (default: the host).")
    var serverName: String?

    @Option(help: "PEM file of trusted root certificates (default: the system roots).")
    var ca: String?

    @Option(help: "Comma-separated groups to offer, IANA names.")
    var groups: String?

    @Option(help: "Groups to send key shares for in the first ClientHello (one the server does not prefer draws a HelloRetryRequest).")
    var keyShares: String?

    @Option(help: "TLS versions to offer: 1.3, 1.2 or 1.2,1.3.")
    var tlsVersions: String = "1.2,1.3"

    @Option(help: ArgumentHelp("Client certificate chain (PEM, leaf first), sent when the server asks for one.", valueName: "CHAIN.pem"))
    var cert: String?

    @Option(help: ArgumentHelp("Private key of --cert.", valueName: "KEY.pem"))
    var key: String?

    @Option(help: ArgumentHelp("Offer the session saved in FILE by `qssl connect --session-out`.", valueName: "FILE"))
    var sessionIn: String?

    @Option(help: ArgumentHelp("Round-trip time for the timing model, in milliseconds (repeatable; default 10 and 50).", valueName: "MS"))
    var rtt: [Double] = []

    @Option(help: ArgumentHelp("MSS for the segment computation (default: the socket's; 1460 on loopback).", valueName: "BYTES"))
    var mss: Int?

    @Option(help: ArgumentHelp("Output format: text, mermaid, html or json.", valueName: "FORMAT"))
    var format: String = "text"

    @Option(
        help: ArgumentHelp(
            "Write the output to FILE instead of standard output (- for standard output). A new file is created; an existing regular file is replaced; anything else (a symbolic link, a directory, a device, a FIFO) is refused.",
            valueName: "FILE"))
    var out: String?

    @Flag(help: "Trace only the one handshake: no companion handshakes for the timing model.")
    var noCompare = false

    @Option(help: ArgumentHelp("Seconds to wait for the connection and each server flight.", valueName: "SECONDS"))
    var timeout: Double = 10

    func validate() throws {
        guard ["text", "mermaid", "html", "json"].contains(format) else { throw ValidationError("--format is text, mermaid, html or json") }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        for r in rtt where !(0...10_000).contains(r) { throw ValidationError("--rtt must be 0 to 10000 ms") }
        if let mss, !(88...65535).contains(mss) { throw ValidationError("--mss must be 88 to 65535") }
        guard timeout > 0, timeout <= 300 else { throw ValidationError("--timeout must be 0 to 300 seconds") }
    }

    func run() async throws {
        // A server that closes early must not kill the trace with SIGPIPE (the recorder also
        // writes with MSG_NOSIGNAL); a write that fails is reported as the trace's failure.
        signal(SIGPIPE, SIG_IGN)
        // Refused before any handshake: an --out that is not a regular file.
        if let out, out != "-" { _ = try TraceOutput.check(out) }
        let versions = try parseTLSVersions(tlsVersions)
        let (host, port) = try parseHostPort(address)
        let verifier: X509CertificateVerifier = if let ca { try loadVerifier(roots: ca) } else { try X509CertificateVerifier(roots: systemRoots()) }
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: verifier)
        if let cert, let key { config.clientCertificate = try loadCertifiedKey(chain: cert, key: key) }
        if let g = try parseGroups(groups) {
            config.groups = g
            config.keyShareGroups = defaultKeyShares(for: g)
        }
        if let k = try parseGroups(keyShares) { config.keyShareGroups = k }
        config.versions = versions
        let serverName = self.serverName ?? host
        var offered: TLSSession?
        if let sessionIn { offered = try SessionFile.read(sessionIn, now: config.clock.nowMilliseconds()) }

        func recorder(_ label: String, versions: [ProtocolVersion], session: TLSSession?) -> TraceRecorder {
            var c = config
            c.versions = versions
            c.sessionStore = InMemoryClientSessionStore()  // fresh: a full handshake stays full
            return TraceRecorder(
                host: host, port: port, serverName: serverName, configuration: c, session: session, label: label, mss: mss,
                timeout: timeout)
        }

        var primary = recorder(offered == nil ? "traced handshake" : "traced handshake (session offered)", versions: versions, session: offered)
        let traced = await primary.run()
        var runs = [traced]
        // The timing model's companions: one handshake of each kind the traced one is not.
        if !noCompare && traced.succeeded && (format == "text" || format == "html" || format == "json") {
            var sessions: [String: TLSSession] = [:]
            if let s = primary.sessions.last { sessions[traced.version ?? ""] = s }
            for (label, version) in [("TLS 1.3 full", ProtocolVersion.tls13), ("TLS 1.2 full", .tls12)] {
                if traced.version == version.description && !traced.resumed { continue }
                var r = recorder(label, versions: [version], session: nil)
                let run = await r.run()
                runs.append(run)
                if let s = r.sessions.last { sessions[version.description] = s }
            }
            if !traced.resumed, let pair = [ProtocolVersion.tls13, .tls12].compactMap({ v in sessions[v.description].map { (v, $0) } }).first {
                let (v, s) = pair
                var r = recorder("resumption (\(v))", versions: [v], session: s)
                runs.append(await r.run())
            }
        }
        let model = TraceTimingModel.build(runs: runs, rtts: rtt.isEmpty ? [10, 50] : rtt)

        let output: String
        switch format {
        case "mermaid": output = TraceRender.mermaid(traced)
        case "json": output = TraceRender.json(traced: traced, companions: Array(runs.dropFirst()), model: model)
        case "html": output = TraceHTML.report(traced: traced, model: model)
        default: output = TraceRender.text(traced, model: model)
        }
        if let out, out != "-" {
            try TraceOutput.write(output, to: out)
        } else {
            print(output, terminator: output.hasSuffix("\n") ? "" : "\n")
        }
        if let failure = traced.failure {
            var line = "\(failure.stage): \(failure.message)"
            if let a = failure.alertSent { line += " [alert \(a) sent]" }
            if let a = failure.alertReceived { line += " [alert \(a) received]" }
            printFailure(line)
            throw ExitCode(failure.exitCode)
        }
    }
}

extension TraceTimingModel {
    /// The seed's three kinds, each priced from the measured handshake of that kind.
    static func build(runs: [TraceRun], rtts: [Double]) -> TraceTimingModel {
        let ok = runs.filter(\.succeeded)
        func kind(_ label: String, seed: Double, note: String, _ match: (TraceRun) -> Bool, runLabel: String, missing: String) -> Kind {
            guard let r = ok.first(where: match) else {
                // The failed run of this kind, by the label its recorder was given.
                let failed = runs.first(where: { !$0.succeeded && $0.label.lowercased().hasPrefix(runLabel.lowercased()) })?.failure?.message
                return Kind(
                    label: label, seedMilliseconds: seed, seedNote: note, run: nil, unavailable: failed ?? missing, roundTrips: 0, extraRoundTrips: 0,
                    clientCPU: 0, serverTime: 0, largestServerFlight: 0)
            }
            let serverFlights = r.flights.filter { $0.direction == .serverToClient }
            // A HelloRetryRequest costs a round trip the seed's 1-RTT figure does not have: said.
            let (label, note) =
                r.helloRetryRequest
                ? (label + " +HRR", note + "; this handshake took \(r.handshakeRoundTrips) round trips (HelloRetryRequest)") : (label, note)
            return Kind(
                label: label, seedMilliseconds: seed, seedNote: note, run: r.label, unavailable: nil, roundTrips: r.handshakeRoundTrips,
                extraRoundTrips: r.flights.map(\.extraRoundTrips).reduce(0, +), clientCPU: r.clientCPUMilliseconds, serverTime: r.serverMilliseconds,
                largestServerFlight: serverFlights.map(\.wireBytes).max() ?? 0)
        }
        let kinds = [
            kind(
                "TLS 1.2 full", seed: 93, note: "~43 ms network + ~50 ms PQC (§1.2)", { $0.version == "TLSv1.2" && !$0.resumed }, runLabel: "TLS 1.2 full",
                missing: "not traced"),
            kind("TLS 1.3 full", seed: 70, note: "1-RTT (§2.1)", { $0.version == "TLSv1.3" && !$0.resumed }, runLabel: "TLS 1.3 full", missing: "not traced"),
            kind(
                "Resumption", seed: 15, note: "session ID or ticket (§3–4)", { $0.resumed }, runLabel: "resumption", missing: "no session was issued to resume")
        ]
        /// What post-quantum work the measured handshake did: the statement must not claim ML-KEM
        /// or ML-DSA work a handshake did not do.
        func work(_ kind: Kind) -> String {
            guard let r = runs.first(where: { $0.label == kind.run }) else { return "" }
            let pqKEM = (r.group ?? "").uppercased().contains("MLKEM") || (r.group ?? "").uppercased().contains("KYBER")
            let pqSig = (r.signatureScheme ?? "").uppercased().contains("MLDSA") || (r.signatureScheme ?? "").uppercased().contains("ML-DSA")
            var parts: [String] = []
            parts.append(
                pqKEM ? "key shares, ML-KEM and ECDH (\(r.group ?? ""))" : "key shares and key exchange (\(r.group ?? "none"): no ML-KEM in this handshake)")
            parts.append(
                pqSig
                    ? "ML-DSA signature checks"
                    : (r.resumed ? "no certificate (resumed)" : "signature checks (\(r.signatureScheme ?? "none"): no ML-DSA in this handshake)"))
            parts.append("key schedule")
            return parts.joined(separator: ", ")
        }
        var statement = "The seed budgets ~50 ms of \"PQC computation\" in a TLS 1.2 handshake (its HSM doing ECDHE, Kyber and Dilithium). "
        if let t12 = kinds.first(where: { $0.label == "TLS 1.2 full" && $0.run != nil }) {
            let measured = t12.clientCPU + t12.serverTime
            statement += String(
                format: "Measured here for TLS 1.2: %.2f ms in all — %.2f ms of client CPU (%@) "
                    + "and %.2f ms of server time (its processing, seen from the client) — %@ of the seed's figure. ",
                measured, t12.clientCPU, work(t12), t12.serverTime, String(format: "%.0f%%", measured / 50 * 100))
        } else if let t13 = kinds.first(where: { $0.run != nil }) {
            let measured = t13.clientCPU + t13.serverTime
            statement += String(
                format: "Measured here (%@): %.2f ms of client CPU (%@) and %.2f ms of server time, %.1f%% of the seed's figure. ",
                t13.label, t13.clientCPU, work(t13), t13.serverTime, measured / 50 * 100)
        }
        #if DEBUG
            statement += "This qssl is a debug build: its CPU times are several times a release build's (swift build -c release). "
        #endif
        statement +=
            "Beyond a few milliseconds of RTT the round trips (and any flight past the initial window) cost more than the computation; "
            + "an HSM's signing latency, where one is used, comes on top of the server time shown."
        return TraceTimingModel(rtts: rtts, kinds: kinds, pqcStatement: statement)
    }
}

/// `--out`: never written through a symbolic link, never into a device, FIFO or directory. A
/// new file is created exclusively (0644); an existing regular file is replaced by a temporary
/// file in the same directory renamed over it.
enum TraceOutput {
    enum Kind { case missing, regular(mode: mode_t) }

    static func check(_ path: String) throws -> Kind {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return .missing }
            throw Failure(message: "cannot write \(path): \(ioReason(errno))", code: 1)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular(mode: st.st_mode & 0o777)
        case S_IFLNK: throw Failure(message: "cannot write \(path): it is a symbolic link (refused; give the real path)", code: 1)
        case S_IFDIR: throw Failure(message: "cannot write \(path): it is a directory", code: 1)
        default: throw Failure(message: "cannot write \(path): not a regular file (a device, FIFO or socket; use - for standard output)", code: 1)
        }
    }

    static func write(_ text: String, to path: String) throws {
        let bytes = Array(text.utf8)
        func writeAll(_ fd: Int32) -> Int32? {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return nil
        }
        switch try check(path) {
        case .missing:
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw Failure(message: "cannot write \(path): \(ioReason(errno))", code: 1) }
            let failed = writeAll(fd)
            let closed = close(fd) == 0 ? nil : errno
            if let e = failed ?? closed {
                unlink(path)
                throw Failure(message: "cannot write \(path): \(ioReason(e))", code: 1)
            }
        case .regular(let mode):
            let url = URL(fileURLWithPath: path)
            let directory = url.deletingLastPathComponent().path
            var template = Array((directory + "/." + url.lastPathComponent + ".qssl-trace.XXXXXX").utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw Failure(message: "cannot write \(path): cannot create a temporary file in \(directory): \(ioReason(errno))", code: 1) }
            let temp = String(cString: template)
            _ = fchmod(fd, mode)
            let failed = writeAll(fd) ?? (fsync(fd) == 0 ? nil : errno)
            let closed = close(fd) == 0 ? nil : errno
            if let e = failed ?? closed {
                unlink(temp)
                throw Failure(message: "cannot write \(path): \(ioReason(e))", code: 1)
            }
            if rename(temp, path) != 0 {
                let e = errno
                unlink(temp)
                throw Failure(message: "cannot write \(path): \(ioReason(e))", code: 1)
            }
        }
    }
}
