import ArgumentParser
import Foundation
import NIOCore
import NIOQSSL
import QSSL
import QSSLWire
import QSSLX509

/// Parses a comma-separated list of IANA group names.
func parseGroups(_ text: String?) throws -> [NamedGroup]? {
    guard let text else { return nil }
    var groups: [NamedGroup] = []
    for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
        guard let g = NamedGroup(name: name) else {
            throw ValidationError("unknown group '\(name)'; known: \(Defaults.groups.map(\.description).joined(separator: ", ")), MLKEM1024")
        }
        groups.append(g)
    }
    guard !groups.isEmpty else { throw ValidationError("--groups is empty") }
    return groups
}

/// "1.3", "1.2" or "1.2,1.3" to protocol versions, most preferred first.
func parseTLSVersions(_ text: String) throws -> [ProtocolVersion] {
    var versions: [ProtocolVersion] = []
    for v in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
        switch v {
        case "1.3": versions.append(.tls13)
        case "1.2": versions.append(.tls12)
        default: throw ValidationError("unsupported TLS version '\(v)': Q-SSL speaks 1.2 and 1.3")
        }
    }
    guard !versions.isEmpty else { throw ValidationError("--tls-versions is empty") }
    return versions.sorted { $0.rawValue > $1.rawValue }
}

/// HOST:PORT, with [v6]:port accepted.
func parseHostPort(_ text: String, defaultPort: Int = 443) throws -> (host: String, port: Int) {
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (host, defaultPort) }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else { throw ValidationError("bad address \(text)") }
        return (host, port)
    }
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count == 1 { return (text, defaultPort) }
    guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else { throw ValidationError("bad address \(text), expected HOST:PORT") }
    return (String(parts[0]), port)
}

/// Subject names of DER certificates, for display.
func subjects(_ chain: [[UInt8]]) -> [String] {
    chain.map { der in (try? X509Certificate(der: der)).map { "\($0.subject)" } ?? "<unparseable certificate>" }
}

/// The alert an error sent or received, as "sent handshake_failure(40)" or "received …".
func alertText(_ error: Error) -> (name: String?, direction: String?) {
    let tls: TLSError?
    if let e = error as? NIOQSSLError, case .tls(let t) = e { tls = t } else { tls = error as? TLSError }
    guard let tls else { return (nil, nil) }
    if let a = tls.code.receivedAlert { return (a.name ?? "\(a.rawValue)", "received") }
    if let a = tls.alert { return (a.name ?? "\(a.rawValue)", "sent") }
    return (nil, nil)
}

func isVerificationFailure(_ error: Error) -> Bool {
    if let e = error as? NIOQSSLError, case .tls(let t) = e, t.code.certificateRejection != nil { return true }
    return false
}

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

func printJSON(_ object: [String: Any]) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]),
        let text = String(data: data, encoding: .utf8)
    {
        print(text)
    }
}

/// One JSON object on one line (a stream of objects, one per connection).
func printJSONLine(_ object: [String: Any]) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
        fflush(nil)
    }
}

func summaryJSON(_ s: HandshakeSummary, handshakeMilliseconds: Double) -> [String: Any] {
    [
        "version": s.version.description,
        "cipher_suite": s.cipherSuite.description,
        "group": s.group.description,
        "signature_scheme": s.peerSignatureScheme?.description ?? s.localSignatureScheme?.description ?? NSNull(),
        "post_quantum": s.usedPostQuantumKeyExchange,
        "hello_retry_request": s.helloRetryRequest,
        "resumed": s.resumed,
        "peer_certificates": subjects(s.peerCertificates),
        "alpn": s.alpnProtocol ?? NSNull(),
        "handshake_ms": (handshakeMilliseconds * 1000).rounded() / 1000,
        "client_certificate_sent": s.clientCertificateSent,
        "peer_identity": s.peerIdentity.map(identityJSON) ?? NSNull()
    ]
}

/// Who the peer proved to be (the server on a client; the client on a server with mTLS).
func identityJSON(_ i: PeerIdentity) -> [String: Any] {
    [
        "subject": i.subject,
        "subject_alternative_names": i.subjectAlternativeNames,
        "key": i.keyAlgorithm,
        "signature_scheme": i.handshakeSignatureScheme?.description ?? NSNull(),
        "verified_components": i.verifiedSignatureComponents
    ]
}

func identityLine(_ i: PeerIdentity) -> String {
    "\(i.subject) [\(i.keyAlgorithm)\(i.verifiedSignatureComponents.isEmpty ? "" : "; verified " + i.verifiedSignatureComponents.joined(separator: " + "))]"
}

func summaryLines(_ s: HandshakeSummary, handshakeMilliseconds: Double?) -> [String] {
    var lines = [
        "Protocol:          \(s.version)",
        "Cipher suite:      \(s.cipherSuite)",
        "Key exchange:      \(s.group)\(s.usedPostQuantumKeyExchange ? " (post-quantum hybrid)" : " (classical only)")",
        "Signature scheme:  \(s.peerSignatureScheme?.description ?? s.localSignatureScheme?.description ?? "-")",
        "HelloRetryRequest: \(s.helloRetryRequest ? "yes" : "no")",
        "Resumed:           \(s.resumed ? "yes" : "no")"
    ]
    // The ALPN name, names and subjects come from the server: printed without their control
    // characters (an escape sequence in a certificate must not reach the terminal).
    if let alpn = s.alpnProtocol { lines.append("ALPN:              \(sanitizeServerText(alpn))") }
    if s.clientCertificateSent { lines.append("Client cert sent:  yes") }
    if let identity = s.peerIdentity { lines.append("Peer identity:     \(sanitizeServerText(identityLine(identity), limit: 2000))") }
    if let ms = handshakeMilliseconds { lines.append(String(format: "Handshake time:    %.2f ms", ms)) }
    let subs = subjects(s.peerCertificates)
    if !subs.isEmpty {
        lines.append("Peer certificates:")
        for (i, sub) in subs.enumerated() { lines.append("  \(i): \(sanitizeServerText(sub, limit: 2000))") }
    }
    return lines
}

/// An exit with a message on stderr.
struct Failure: Error, CustomStringConvertible {
    let message: String
    let code: Int32
    var description: String { message }
}
