import ArgumentParser
import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import SwiftASN1

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect to a TLS server, report what was negotiated, optionally send data and print the answer.")

    @Argument(help: "HOST:PORT of the server.")
    var address: String

    @Option(help: "Server name for SNI and certificate checking (default: the host).")
    var serverName: String?

    @Option(help: "PEM file of trusted root certificates (default: the system roots).")
    var ca: String?

    @Option(help: "Comma-separated groups to offer, IANA names (e.g. SecP384r1MLKEM1024,x25519).")
    var groups: String?

    @Option(help: "Groups to send key shares for in the first ClientHello (default: the first hybrid and x25519 among --groups).")
    var keyShares: String?

    @Option(help: "TLS versions to offer: 1.3, 1.2 or 1.2,1.3.")
    var tlsVersions: String = "1.2,1.3"

    @Flag(help: "Fail unless the key exchange includes ML-KEM (insufficient_security).")
    var pqRequired = false

    @Flag(help: "Accept only post-quantum certificate chains: ML-DSA or composite signatures and leaf key (bad_certificate otherwise).")
    var pqCertificates = false

    @Option(help: "Comma-separated ALPN protocols to offer.")
    var alpn: String?

    @Option(help: "Text to send after the handshake (\\n is a newline).")
    var send: String?

    @Option(help: "Seconds to wait for data after sending.")
    var wait: Double = 2

    @Option(help: ArgumentHelp("The most bytes of the server's answer kept and shown; a server that sends more is cut off there.", valueName: "BYTES"))
    var maxReceived: Int = 1 << 20

    @Flag(help: "Print JSON instead of text (with --reconnect, one object per connection, one per line).")
    var json = false

    @Option(
        help: ArgumentHelp(
            "After the first connection, connect N more times, resuming the session the previous connections received; reports whether each resumed.",
            valueName: "N"))
    var reconnect: Int = 0

    @Option(help: ArgumentHelp("Write the newest session the server issued to FILE (mode 0600; it holds the session's secret).", valueName: "FILE"))
    var sessionOut: String?

    @Option(help: ArgumentHelp("Offer the session saved in FILE by --session-out on the first connection.", valueName: "FILE"))
    var sessionIn: String?

    @Option(
        help: ArgumentHelp(
            "Seconds to wait after the handshake for a session ticket when one is needed (TLS 1.3 tickets follow the handshake).", valueName: "SECONDS"))
    var ticketWait: Double = 1

    @Flag(help: "Do not ask TLS 1.2 servers for session tickets (RFC 5077): sessions resume by session ID.")
    var noTickets = false

    @Option(help: ArgumentHelp("Client certificate chain (PEM, leaf first), sent when the server asks for one.", valueName: "CHAIN.pem"))
    var cert: String?

    @Option(help: ArgumentHelp("Private key of --cert.", valueName: "KEY.pem"))
    var key: String?

    @Option(
        help: ArgumentHelp(
            "How to check the server certificate's revocation: crl (the --crl files), ocsp (ask the responder in its AIA), staple (what the server staples), none.",
            valueName: "crl|ocsp|staple|none"))
    var revocation: String = "staple"

    @Option(help: ArgumentHelp("CRL files (PEM or DER) to check the chain against; repeatable.", valueName: "FILE"))
    var crl: [String] = []

    @Flag(help: "Refuse a certificate whose revocation status cannot be established (default: soft-fail).")
    var hardFail = false

    @Flag(help: "After handshake_failure, retry once offering every suite and group (never dropping --pq-required).")
    var retryWider = false

    func validate() throws {
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        guard ["crl", "ocsp", "staple", "none"].contains(revocation) else { throw ValidationError("--revocation is crl, ocsp, staple or none") }
        if revocation == "crl" && crl.isEmpty { throw ValidationError("--revocation crl needs --crl FILE") }
        guard reconnect >= 0 else { throw ValidationError("--reconnect must be 0 or more") }
        guard ticketWait >= 0, ticketWait <= 60 else { throw ValidationError("--ticket-wait must be 0 to 60 seconds") }
        guard (1...(1 << 30)).contains(maxReceived) else { throw ValidationError("--max-received must be 1 to 1073741824 bytes") }
    }

    func run() async throws {
        let versions = try parseTLSVersions(tlsVersions)
        let (host, port) = try parseHostPort(address)
        var roots: X509CertificateVerifier
        if let ca {
            roots = try loadVerifier(roots: ca)
        } else {
            roots = try X509CertificateVerifier(roots: systemRoots())
        }
        if pqCertificates { roots.requirePostQuantumChains() }
        // Revocation (seed §6): CRLs given by hand, OCSP fetched from the AIA responder (the
        // handshake pauses for it, the event loop does not), or the server's staple.
        roots.crls = try crl.flatMap { path in try reading(path, what: "CRL file") { try CertificateRevocationList.load(path: path) } }
        roots.revocationPolicy = hardFail ? .hardFail : .softFail
        if revocation == "ocsp" { roots.ocspFetcher = NIOOCSPFetcher() }
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: roots)
        config.requestOCSPStaple = revocation == "staple"
        if let cert, let key {
            config.clientCertificate = try loadCertifiedKey(chain: cert, key: key)
        }
        if let g = try parseGroups(groups) {
            config.groups = g
            config.keyShareGroups = defaultKeyShares(for: g)
        }
        if let k = try parseGroups(keyShares) { config.keyShareGroups = k }
        config.requirePostQuantum = pqRequired
        config.versions = versions
        if let alpn { config.alpnProtocols = alpn.split(separator: ",").map(String.init) }

        config.tls12SessionTickets = !noTickets
        let serverName = self.serverName ?? host
        // Sessions are kept per server address: two servers behind one name (or on one host)
        // never receive each other's tickets.
        let sessionKey = "\(host):\(port)"
        config.sessionStore = InMemoryClientSessionStore(maxSessionsPerKey: 8)
        var offered: TLSSession?
        if let sessionIn {
            let session = try SessionFile.read(sessionIn, now: config.clock.nowMilliseconds())
            if let why = SessionFile.mismatch(session, serverName: serverName, versions: versions, requirePostQuantum: pqRequired) {
                FileHandle.standardError.write(Data("qssl: warning: the session in \(sessionIn) will not be offered: \(why)\n".utf8))
            }
            offered = session
        }

        var newest: TLSSession?
        let needsSession = reconnect > 0 || sessionOut != nil
        for index in 0...reconnect {
            let client: NIOQSSLClient
            do {
                do {
                    client = try await NIOQSSLClient.connect(
                        host: host, port: port, configuration: config, serverName: serverName,
                        session: index == 0 ? offered : nil, sessionKey: sessionKey,
                        maxBufferedBytes: maxReceived)
                } catch  where retryWider && NIOQSSLClient.tlsError(error).map(ClientConfiguration.isRetryable) == true {
                    // Seed §6.2: once, with every suite and group, never below the configured floor.
                    var wide = ClientConfiguration(provider: .swiftCrypto, verifier: roots)
                    wide.versions = config.versions  // the versions and ALPN asked for stay
                    wide.alpnProtocols = config.alpnProtocols
                    config = config.widened(to: wide)
                    FileHandle.standardError.write(Data("qssl: handshake_failure; retrying once with every suite and group\n".utf8))
                    client = try await NIOQSSLClient.connect(
                        host: host, port: port, configuration: config, serverName: serverName,
                        session: nil, sessionKey: sessionKey, maxBufferedBytes: maxReceived)
                }
            } catch {
                report(failure: error, target: hostPort(host, port), connection: reconnect > 0 ? index + 1 : nil)
                throw ExitCode(isVerificationFailure(error) ? 2 : 1)
            }
            var received: [UInt8] = []
            if let send {
                do {
                    try await client.send(Array(send.replacingOccurrences(of: "\\n", with: "\n").utf8))
                } catch {
                    // The server may have refused us after our Finished (TLS 1.3 client
                    // authentication): its alert, if it arrived, says why.
                    let cause = await client.error ?? error
                    report(failure: cause, target: hostPort(host, port), afterHandshake: true, connection: reconnect > 0 ? index + 1 : nil)
                    await client.close()
                    throw ExitCode(isVerificationFailure(cause) ? 2 : 1)
                }
                do {
                    received = try await client.read(idleTimeout: .milliseconds(Int64(wait * 1000)))
                } catch let incomplete as NIOQSSLClient.IncompleteRead {
                    // Possibly truncated by an attacker: say so and fail, whatever arrived.
                    report(
                        failure: incomplete.underlying, target: hostPort(host, port), afterHandshake: true, connection: reconnect > 0 ? index + 1 : nil,
                        note: "\(incomplete.received.count) bytes arrived before the connection failed; the response may be truncated")
                    await client.close()
                    throw ExitCode(1)
                }
            }
            if client.truncated {
                FileHandle.standardError.write(
                    Data(
                        "qssl: the server sent more than --max-received \(maxReceived) bytes; the connection was closed there and only the first \(received.count) are shown\n"
                            .utf8))
            }
            // TLS 1.3 tickets arrive after the handshake: read a moment longer when a session is
            // wanted (a TLS 1.2 session came with the handshake, and this returns at once).
            if needsSession { _ = await client.waitForSession(timeout: .milliseconds(Int64(ticketWait * 1000))) }
            await client.close()
            if let latest = client.issuedSessions.last { newest = latest }
            printResult(client, received: received, index: index)
        }

        if let sessionOut {
            guard let newest else {
                throw Failure(
                    message: "the server issued no session\(reconnect > 0 ? " on any connection" : "") "
                        + "(within --ticket-wait \(ticketWait) s after the handshake); \(sessionOut) not written", code: 1)
            }
            try SessionFile.write(newest, to: sessionOut)
            if !json {
                let kind = newest.state.version == .tls13 ? "TLS 1.3 ticket" : (newest.ticket?.isEmpty == false ? "TLS 1.2 ticket" : "TLS 1.2 session ID")
                print(
                    "Session:           \(kind) saved to \(sessionOut) (valid until \(SessionFile.isoDate(newest.state.createdAt &+ UInt64(newest.state.lifetimeSeconds) * 1000)))"
                )
            }
        }
    }

    /// The first connection in full, as without --reconnect; each reconnection in one line.
    private func printResult(_ client: NIOQSSLClient, received: [UInt8], index: Int) {
        let ms = milliseconds(client.handshakeDuration)
        if json {
            var object = summaryJSON(client.summary, handshakeMilliseconds: ms)
            object["received"] = String(decoding: received, as: UTF8.self)
            if client.truncated { object["truncated"] = true }
            if reconnect > 0 {
                object["connection"] = index + 1
                printJSONLine(object)
            } else {
                printJSON(object)
            }
            return
        }
        let s = client.summary
        if index == 0 {
            print("Connected to \(address)")
            summaryLines(s, handshakeMilliseconds: ms).forEach { print($0) }
        } else {
            print(
                String(
                    format: "Reconnect %d/%d:       %@ — %@ %@ %@, handshake %.2f ms", index, reconnect,
                    s.resumed ? "resumed" : "not resumed (full handshake)", s.version.description, s.cipherSuite.description,
                    s.group.description, ms))
        }
        if !received.isEmpty {
            print("--- received \(received.count) bytes ---")
            print(terminalSafe(String(decoding: received, as: UTF8.self)))
        }
    }

    /// One line on stderr (with --json, an object on stdout): "qssl: cannot connect to
    /// HOST:PORT: connection refused", "qssl: handshake with HOST:PORT failed: <error> [alert …]".
    private func report(failure error: Error, target: String, afterHandshake: Bool = false, connection: Int? = nil, note: String? = nil) {
        let (alert, direction) = alertText(error)
        let text: String
        if isConnectionError(error) {
            text = describe(error, address: target)
        } else {
            text = "\(afterHandshake ? "connection to" : "handshake with") \(target) failed: \(describe(error, address: target))"
        }
        if json {
            var object: [String: Any] = ["error": text, "alert": alert ?? NSNull(), "alert_direction": direction ?? NSNull()]
            if let note { object["note"] = note }
            if let connection {
                object["connection"] = connection
                printJSONLine(object)
            } else {
                printJSON(object)
            }
        } else {
            var line = "\(connection.map { "connection \($0): " } ?? "")\(text)"
            if let alert, let direction { line += " [alert \(alert) \(direction)]" }
            if let note { line += "; \(note)" }
            printFailure(line)
        }
    }
}

/// The first hybrid and the first classical group of a list, as the default key shares.
func defaultKeyShares(for groups: [NamedGroup]) -> [NamedGroup] {
    var shares: [NamedGroup] = []
    if let pq = groups.first(where: \.isPostQuantum) { shares.append(pq) }
    if let classical = groups.first(where: { !$0.isPostQuantum }) { shares.append(classical) }
    return shares
}

/// The system's trusted roots (Debian's bundle), if present.
func systemRoots() throws -> [X509Certificate] {
    for path in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"] where FileManager.default.fileExists(atPath: path) {
        let pem = try readTextFile(path, what: "system CA bundle")
        // One unparseable root must not cost the others.
        return (try PEMDocument.parseMultiple(pemString: pem)).compactMap { try? X509Certificate(der: $0.derBytes) }
    }
    return []
}

/// What a server sent, for standard output: as is into a pipe or file (it may be the data the
/// caller wants), but on a terminal with control characters other than newline and tab shown
/// as `\u{…}` escapes, so that no escape sequence from the server reaches the terminal.
func terminalSafe(_ text: String, isTerminal: Bool = isatty(STDOUT_FILENO) != 0) -> String {
    guard isTerminal else { return text }
    var out = ""
    let scalars = Array(text.unicodeScalars)
    for (i, u) in scalars.enumerated() {
        let v = u.value
        // CR only as the first half of CRLF (an HTTP answer's line ends); alone it could return
        // the cursor and overwrite what was printed.
        let lineEnd = v == 0x0D && i + 1 < scalars.count && scalars[i + 1].value == 0x0A
        if (v < 0x20 && v != 0x0A && v != 0x09 && !lineEnd) || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v)
            || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F || v == 0x061C
        {
            out += "\\u{\(String(v, radix: 16))}"
        } else {
            out.unicodeScalars.append(u)
        }
    }
    return out
}
