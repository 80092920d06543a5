import ArgumentParser
import QSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
        subcommands: [
            Demo.self, Serve.self, CheckConfig.self, Connect.self, Trace.self, Cert.self, OCSPResponderCommand.self, TicketKeys.self, FleetKeyCommand.self,
            HSM.self
        ])

    /// ArgumentParser's main, except that a failure of a command's `run` is one line on stderr,
    /// `qssl: <what failed on which file or address, and why>` (see ErrorText.swift), with the
    /// documented exit code. Parsing, --help, --version and usage errors (ValidationError) take
    /// ArgumentParser's own path.
    static func main() async {
        openStandardDescriptors()
        var command: ParsableCommand
        do {
            command = try await asyncParseAsRoot(nil)
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error
            where error is ExitCode || error is CleanExit || error is ValidationError
            || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
        {
            // ArgumentParser's own (--help, --version and the like come back from the built-in
            // commands' run as its internal errors): printed its way.
            exit(withError: error)
        } catch {
            printFailure(describe(error))
            exit(withError: ExitCode(failureExitCode(for: error)))
        }
    }
}

/// Standard input, output and error closed at start (`qssl serve >&-`, a daemonizer) are opened on
/// /dev/null: otherwise the next file opened or connection accepted takes descriptor 1, and log
/// lines (other clients' addresses and names) would be written into it.
func openStandardDescriptors() {
    for fd in Int32(0)...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
        let opened = open("/dev/null", O_RDWR)
        if opened >= 0 && opened != fd {
            _ = dup2(opened, fd)
            close(opened)
        }
    }
}
