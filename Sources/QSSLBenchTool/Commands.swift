import ArgumentParser
import Foundation
import QSSLTestSupport
import QSSLWire
import QSSLX509

/// `qssl-bench`: Q-SSL's in-process measurements and P-384 checks. A development tool, not a
/// product of the package (the shipped `qssl` has no benchmarks but `qssl hsm bench`, which
/// measures the operator's own token).
@main
struct QSSLBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qssl-bench",
        abstract: "Q-SSL's in-process benchmarks (client and server in one process, no sockets) and P-384 checks.",
        discussion: "A development tool, not shipped: `swift build -c release --product qssl-bench`. scripts/bench runs `all` and "
            + "`p384` next to OpenSSL and Go; scripts/p384-differential runs `p384-differential` a million rounds. "
            + "Figures are noisy on shared machines: compare within one run.",
        subcommands: [
            AllCommand.self, HandshakesCommand.self, RecordCommand.self, ResumptionCommand.self,
            P384Command.self, P384TimingCommand.self, P384DifferentialCommand.self, TCPEchoCommand.self, TLSEchoCommand.self
        ])
}

// MARK: - Options the subcommands share

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the figures as one JSON object, {\"results\": [...]}, at the end instead of lines.")
    var json = false
}

struct HandshakeOptions: ParsableArguments {
    @Option(help: "Full handshakes per group and per certificate chain (chain verifications: at least 100).")
    var handshakes: Int = 200

    @Option(help: "Comma-separated groups (IANA names) whose TLS 1.3 full handshakes are measured.")
    var groups: String = "SecP384r1MLKEM1024,X25519MLKEM768,x25519"

    /// --groups as groups.
    var namedGroups: [NamedGroup] {
        get throws {
            let names = groups.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValidationError("--groups is empty") }
            return try names.map { name in
                guard let group = NamedGroup(name: name) else { throw ValidationError("unknown group '\(name)' in --groups") }
                return group
            }
        }
    }

    func validate() throws {
        guard handshakes >= 1 else { throw ValidationError("--handshakes must be at least 1") }
        _ = try namedGroups
    }
}

struct RecordOptions: ParsableArguments {
    @Option(help: "Megabytes through the record layer per cipher suite in each of the 3 rounds.")
    var megabytes: Int = 256

    func validate() throws {
        guard megabytes >= 1 else { throw ValidationError("--megabytes must be at least 1") }
    }
}

struct ResumptionOptions: ParsableArguments {
    @Option(help: "Resumed handshakes per kind (and full handshakes to compare them with).")
    var resumptions: Int = 1000

    @Option(
        help: ArgumentHelp(
            "Only the kinds whose name contains this (tls13_full, tls13_psk_dhe_ke, tls13_psk_dhe_ke_x25519, tls13_psk_ke, tls12_full, tls12_ticket, "
                + "tls12_full_no_ticket, tls12_session_id): for profiling one kind."))
    var only: String?

    func validate() throws {
        guard resumptions >= 1 else { throw ValidationError("--resumptions must be at least 1") }
    }
}

struct P384Options: ParsableArguments {
    @Option(help: "Operations per P-384 primitive and implementation.")
    var iterations: Int = 500

    func validate() throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
    }
}

// MARK: - Subcommands

struct AllCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "p384, handshakes, record and resumption in one run, in that order (not the P-384 timing test or differential check).")

    @OptionGroup(title: "Handshakes") var handshakes: HandshakeOptions
    @OptionGroup(title: "Record layer") var record: RecordOptions
    @OptionGroup(title: "Resumption") var resumption: ResumptionOptions
    @OptionGroup(title: "P-384") var p384: P384Options
    @OptionGroup var output: OutputOptions

    func run() throws {
        let bench = Bench(json: output.json)
        let pki = try DemoPKI()
        var results = try bench.p384Figures(iterations: p384.iterations)
        results += try bench.handshakeFigures(pki: pki, handshakes: handshakes.handshakes, groups: handshakes.namedGroups)
        results += try bench.recordLayerFigures(pki: pki, megabytes: record.megabytes)
        results += try bench.resumptionFigures(pki: pki, resumptions: resumption.resumptions)
        try bench.finish(results)
    }
}

struct HandshakesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshakes",
        abstract: "Full handshakes/s: TLS 1.3 per group, TLS 1.2 with the hybrid suite; chain verifications/s per certificate algorithm, "
            + "and TLS 1.3 handshakes with a composite chain next to an ECDSA-P384 one.")

    @OptionGroup var options: HandshakeOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let bench = Bench(json: output.json)
        try bench.finish(try bench.handshakeFigures(pki: try DemoPKI(), handshakes: options.handshakes, groups: options.namedGroups))
    }
}

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record-layer MB/s (16 KiB records, seal + open) per cipher suite, next to swift-crypto's AES.GCM / ChaChaPoly "
            + "and the provider's AEAD in place.")

    @OptionGroup var options: RecordOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let bench = Bench(json: output.json)
        try bench.finish(try bench.recordLayerFigures(pki: try DemoPKI(), megabytes: options.megabytes))
    }
}

struct ResumptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resumption",
        abstract: "Resumed handshakes next to full ones (TLS 1.3 psk_dhe_ke with the hybrid and psk_ke, TLS 1.2 by ticket "
            + "and by session ID) and the bytes a cached session or a ticket costs.")

    @OptionGroup var options: ResumptionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let bench = Bench(json: output.json)
        try bench.finish(try bench.resumptionFigures(pki: try DemoPKI(), resumptions: options.resumptions, only: options.only))
    }
}

struct P384Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p384",
        abstract: "P-384 keygen, ECDH, sign and verify, µs per operation: Q-SSL's own (QSSLP384) next to swift-crypto's.")

    @OptionGroup var options: P384Options
    @OptionGroup var output: OutputOptions

    func run() throws {
        let bench = Bench(json: output.json)
        try bench.finish(try bench.p384Figures(iterations: options.iterations))
    }
}

struct P384TimingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p384-timing",
        abstract: "A dudect-style timing test of the P-384 secret operations; exit status 1 when a constant-time one shows a difference.",
        discussion: "Verification (variable time by design) is the control: it must show a difference, or the samples are too few.")

    @Argument(help: "Measurements per operation.")
    var samples: Int

    func validate() throws {
        guard samples >= 100 else { throw ValidationError("at least 100 samples") }
    }

    func run() throws {
        let results = try P384Timing.run(samples: samples)
        P384Timing.report(results)
        if results.contains(where: { $0.constantTimeExpected && $0.leaks }) { throw ExitCode(1) }
    }
}

struct P384DifferentialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p384-differential",
        abstract: "Q-SSL's P-384 against swift-crypto's on random inputs (keys, ECDH and ECDSA both ways, tampered messages); "
            + "exit status 1 on a disagreement.")

    @Argument(help: "Rounds to run.")
    var rounds: Int

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("at least 1 round") }
    }

    func run() throws {
        let start = ContinuousClock.now
        let failures = P384Differential.run(rounds: rounds) { done in
            print("\(done) rounds agree (\(seconds(since: start)) s)")
        }
        guard failures.isEmpty else {
            print(failures.joined(separator: "\n"))
            throw ExitCode(1)
        }
        print("all \(rounds) rounds agree: public keys, ECDH both ways, ECDSA both ways, tampered messages refused (\(seconds(since: start)) s)")
    }
}
