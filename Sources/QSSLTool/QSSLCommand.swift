import ArgumentParser
import QSSL

@main
struct QSSLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qssl",
        abstract: "Q-SSL: quantum-safe TLS with hybrid ML-KEM key exchange.",
        discussion: """
            Exit codes: 0 success; 1 handshake or connection failed (the alert is printed);
            2 certificate verification failed; 64 usage error.
            """,
        version: QSSLVersion.summary,
        subcommands: [Demo.self, Serve.self, Connect.self, Cert.self, OCSPResponderCommand.self, TicketKeys.self, Bench.self, HSM.self])
}
