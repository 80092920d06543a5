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

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        let versions = try parseTLSVersions(tlsVersions)
        let (host, port) = try parseHostPort(address)
        var roots: X509CertificateVerifier
        if let ca {
            roots = try X509CertificateVerifier(rootsPEM: String(contentsOfFile: ca, encoding: .utf8))
        } else {
            roots = try X509CertificateVerifier(roots: systemRoots())
        }
        if pqCertificates { roots.requirePostQuantumChains() }
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: roots)
        if let g = try parseGroups(groups) {
            config.groups = g
            config.keyShareGroups = defaultKeyShares(for: g)
        }
        if let k = try parseGroups(keyShares) { config.keyShareGroups = k }
        config.requirePostQuantum = pqRequired
        config.versions = versions
        if let alpn { config.alpnProtocols = alpn.split(separator: ",").map(String.init) }

        let client: NIOQSSLClient
        do {
            client = try await NIOQSSLClient.connect(host: host, port: port, configuration: config, serverName: serverName ?? host)
        } catch {
            report(failure: error)
            throw ExitCode(isVerificationFailure(error) ? 2 : 1)
        }
        var received: [UInt8] = []
        if let send {
            try await client.send(Array(send.replacingOccurrences(of: "\\n", with: "\n").utf8))
            do {
                received = try await client.read(idleTimeout: .milliseconds(Int64(wait * 1000)))
            } catch let incomplete as NIOQSSLClient.IncompleteRead {
                // Possibly truncated by an attacker: say so and fail, whatever arrived.
                report(failure: incomplete.underlying, what: "connection failed")
                FileHandle.standardError.write(Data("qssl: \(incomplete.received.count) bytes arrived before the connection failed; the response may be truncated\n".utf8))
                await client.close()
                throw ExitCode(1)
            }
        }
        await client.close()
        let ms = milliseconds(client.handshakeDuration)
        if json {
            var object = summaryJSON(client.summary, handshakeMilliseconds: ms)
            object["received"] = String(decoding: received, as: UTF8.self)
            printJSON(object)
        } else {
            print("Connected to \(address)")
            summaryLines(client.summary, handshakeMilliseconds: ms).forEach { print($0) }
            if !received.isEmpty {
                print("--- received \(received.count) bytes ---")
                print(String(decoding: received, as: UTF8.self))
            }
        }
    }

    private func report(failure error: Error, what: String = "handshake failed") {
        let (alert, direction) = alertText(error)
        if json {
            printJSON(["error": "\(error)", "alert": alert ?? NSNull(), "alert_direction": direction ?? NSNull()])
        } else {
            var line = "\(what): \(error)"
            if let alert, let direction { line += " [alert \(alert) \(direction)]" }
            FileHandle.standardError.write(Data((line + "\n").utf8))
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
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        // One unparseable root must not cost the others.
        return (try PEMDocument.parseMultiple(pemString: pem)).compactMap { try? X509Certificate(der: $0.derBytes) }
    }
    return []
}

