import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLX509

/// A `qssl cert` CA directory's record of what it issued and revoked: DIR/index.tsv, one line
/// per certificate: serial (hex) TAB V|R TAB revocation time (ISO 8601, or -) TAB reason (or -)
/// TAB subject.
struct CAIndex {
    struct Entry {
        var serial: String
        var revoked: Date?
        var reason: CertificateRevocationList.RevocationReason?
        var subject: String
    }
    var entries: [Entry] = []
    let path: String

    init(directory: String) throws {
        path = directory + "/index.tsv"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let iso = ISO8601DateFormatter()
        for line in text.split(separator: "\n") where !line.isEmpty {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 5 else { throw ValidationError("\(path): malformed line \(line)") }
            var revoked: Date?
            if f[1] == "R" {
                // A revocation whose date cannot be read must not silently become "valid".
                guard let at = iso.date(from: f[2]) else { throw ValidationError("\(path): unreadable revocation date in \(line)") }
                revoked = at
            }
            entries.append(
                Entry(
                    serial: Self.normalise(f[0]), revoked: revoked,
                    reason: f[3] == "-" ? nil : CertificateRevocationList.RevocationReason(name: f[3]), subject: f[4]))
        }
    }

    func save() throws {
        let iso = ISO8601DateFormatter()
        let text =
            entries.map { e in
                [
                    e.serial, e.revoked == nil ? "V" : "R", e.revoked.map(iso.string) ?? "-", e.reason.map { "\($0)" } ?? "-",
                    Self.escape(e.subject)
                ].joined(separator: "\t")
            }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Serials in one canonical form whatever way they were written (`openssl x509 -serial`
    /// output, odd length, leading zeros): the magnitude's octets in uppercase hex, no leading
    /// zero octet. Storing and looking up both go through it.
    static func normalise(_ hex: String) -> String {
        var s = hex.uppercased().trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("SERIAL=") { s = String(s.dropFirst(7)) }
        if s.count % 2 == 1 { s = "0" + s }
        var octets: [String] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            octets.append(String(s[i..<j]))
            i = j
        }
        while octets.count > 1 && octets[0] == "00" { octets.removeFirst() }
        return octets.joined()
    }

    /// Tabs and line breaks in a subject would split the index's fields and lines.
    static func escape(_ text: String) -> String {
        String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }

    /// DER INTEGER content bytes for a hex serial.
    static func bytes(_ hex: String) throws -> [UInt8] {
        var s = normalise(hex)
        if s.count % 2 == 1 { s = "0" + s }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { throw ValidationError("serial \(hex) is not hexadecimal") }
            out.append(b)
            i = j
        }
        if let first = out.first, first & 0x80 != 0 { out.insert(0, at: 0) }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String { normalise(bytes.map { String(format: "%02X", $0) }.joined()) }

    mutating func recordIssued(_ cert: X509Certificate) {
        entries.append(Entry(serial: Self.hex(cert.serialNumber), revoked: nil, reason: nil, subject: Self.escape("\(cert.subject)")))
    }

    /// The entry for a serial; if it appears more than once, a revocation wins.
    func entry(serial: [UInt8]) -> Entry? {
        let matches = entries.filter { $0.serial == Self.hex(serial) }
        return matches.first { $0.revoked != nil } ?? matches.first
    }
}

func loadIssuer(_ directory: String) throws -> PKIBuilder.Issuer {
    let chain = try loadCertificates(directory + "/ca.pem", what: "CA certificate")
    let key = try loadPrivateKey(directory + "/ca.key", what: "CA private key")
    return PKIBuilder.Issuer(certificate: chain[0], key: key)
}

extension Cert {
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate the CA issued (recorded in DIR/index.tsv; publish with `qssl cert crl` or `qssl ocsp-responder`).")

        @OptionGroup var directory: CADirectoryOption

        @Argument(help: "Serial number in hex, as `openssl x509 -serial` prints it.")
        var serial: String

        @Option(
            help: "Reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn."
        )
        var reason: String?

        func run() throws {
            let bytes = try CAIndex.bytes(serial)
            // RFC 5280 §4.1.2.2: positive, at most 20 octets.
            guard bytes.contains(where: { $0 != 0 }), bytes.count <= 21 else {
                throw ValidationError("serial \(serial) is not a certificate serial (positive, at most 20 octets)")
            }
            let why = try reason.map { r in
                guard let v = CertificateRevocationList.RevocationReason(name: r) else { throw ValidationError("unknown --reason \(r)") }
                return v
            }
            let ca = directory.ca
            var index = try CAIndex(directory: ca)
            let key = CAIndex.normalise(serial)
            if let i = index.entries.firstIndex(where: { $0.serial == key }) {
                guard index.entries[i].revoked == nil else { throw ValidationError("serial \(key) is already revoked") }
                index.entries[i].revoked = Date()
                index.entries[i].reason = why
            } else {
                index.entries.append(.init(serial: key, revoked: Date(), reason: why, subject: "(not issued through this index)"))
            }
            try index.save()
            print("revoked serial \(key)\(why.map { " (\($0))" } ?? ""); publish with `qssl cert crl --ca \(ca) --out FILE`")
        }
    }

    struct CRL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl", abstract: "Write the CA's CRL (PEM) listing every certificate revoked in DIR/index.tsv.")

        @OptionGroup var directory: CADirectoryOption

        @Option(help: "Output file.")
        var out: String

        @Option(help: "Days until nextUpdate.")
        var days: Int = 7

        func run() throws {
            guard days > 0 else { throw ValidationError("--days must be positive") }
            let ca = directory.ca
            let issuer = try loadIssuer(ca)
            let index = try CAIndex(directory: ca)
            let entries = try index.entries.compactMap { e -> CRLWriter.Entry? in
                guard let at = e.revoked else { return nil }
                return CRLWriter.Entry(serial: try CAIndex.bytes(e.serial), revocationDate: at, reason: e.reason)
            }
            let numberPath = ca + "/crlnumber"
            let number = (UInt64((try? String(contentsOfFile: numberPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0) + 1
            let crl = try CRLWriter.issue(by: issuer, entries: entries, number: number, nextUpdate: Date().addingTimeInterval(Double(days) * 86400))
            try crl.pem.write(toFile: out, atomically: true, encoding: .utf8)
            try "\(number)\n".write(toFile: numberPath, atomically: true, encoding: .utf8)
            print("wrote \(out): CRL number \(number), \(entries.count) revoked, next update in \(days) days")
        }
    }
}

struct OCSPResponderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocsp-responder",
        abstract: "Answer OCSP requests (RFC 6960, HTTP POST/GET) for the certificates a `qssl cert` CA issued and revoked.")

    @Option(help: "CA directory made by `qssl cert ca` (its index.tsv says what is issued and revoked).")
    var ca: String

    @Option(help: "HOST:PORT to listen on.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "Minutes until each response's nextUpdate.")
    var validity: Int = 60

    @Option(help: ArgumentHelp("Seconds a client has from connecting to a complete request (slow clients are closed then).", valueName: "SECONDS"))
    var requestTimeout: Double = 10

    @Option(help: ArgumentHelp("Connections open at once; more are closed at accept.", valueName: "N"))
    var maxConnections: Int = 1024

    func validate() throws {
        guard requestTimeout > 0, requestTimeout <= 3600 else { throw ValidationError("--request-timeout must be more than 0 and at most 3600 seconds") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1 to 1000000") }
    }

    func run() async throws {
        let issuer = try loadIssuer(ca)
        let (host, port) = try parseHostPort(listen, defaultPort: 8080)
        let directory = ca
        let minutes = validity
        let channel = try await OCSPHTTPResponder.start(
            host: host, port: port, requestTimeout: .milliseconds(Int64(requestTimeout * 1000)),
            maxConnections: maxConnections
        ) { body in
            guard let request = try? OCSPRequest(der: body) else { return OCSPResponseWriter.error(1) }
            // Only questions about this CA's certificates: the CertID must name it.
            guard let mine = try? OCSPCertID(certificate: issuer.certificate, issuer: issuer.certificate, hash: request.certID.hashAlgorithm),
                mine.issuerNameHash == request.certID.issuerNameHash, mine.issuerKeyHash == request.certID.issuerKeyHash
            else {
                return OCSPResponseWriter.error(6)  // unauthorized
            }
            // The index is re-read for each request: `qssl cert revoke` takes effect at once.
            guard let index = try? CAIndex(directory: directory) else { return OCSPResponseWriter.error(2) }
            let status: OCSPCertStatus
            if let entry = index.entry(serial: request.certID.serialNumber) {
                status = entry.revoked.map { .revoked(at: $0, reason: entry.reason) } ?? .good
            } else {
                status = .unknown
            }
            return
                (try? OCSPResponseWriter.response(
                    certID: request.certID, status: status, signer: issuer, nonce: request.nonce,
                    nextUpdate: Date().addingTimeInterval(Double(minutes) * 60))) ?? OCSPResponseWriter.error(2)
        }
        print("OCSP responder for \(issuer.certificate.subject) on http://\(host):\(channel.localAddress?.port ?? port)/")
        fflush(nil)
        try await channel.closeFuture.get()
    }
}

/// `qssl serve --staple`: fetches the leaf's OCSP response from its AIA responder and keeps the
/// staple fresh (again at half its remaining validity, at least every minute when it failed).
struct StapleRefresher: Sendable {
    let chain: [X509Certificate]
    let staple: OCSPStaple
    let log: @Sendable (LogLine) -> Void

    /// One fetch: on success the staple holds the response. Returns the status and when the
    /// response is good until (its nextUpdate, if it says).
    func fetchOnce(timeout: Duration = .seconds(5)) async throws -> (status: String, url: String, nextUpdate: Date?) {
        guard chain.count > 1 else { throw OCSPError("the chain has no issuer certificate; nothing to staple") }
        let leaf = chain[0]
        let issuer = chain[1]
        guard let url = leaf.ocspResponderURL else { throw OCSPError("the certificate names no OCSP responder (AIA)") }
        let id = try OCSPCertID(certificate: leaf, issuer: issuer)
        let der = try await NIOOCSPFetcher().fetch(url: url, request: try OCSPRequest(certID: id, nonce: nil).der(), timeout: timeout)
        let response = try OCSPResponse(der: der)
        let status = try response.status(of: leaf, issuer: issuer, at: Date())
        staple.update(der)
        return ("\(status)", "\(url)", response.basic?.responses.first { $0.certID == id }?.nextUpdate)
    }

    /// Refreshes the staple until cancelled (again at half its remaining validity, every minute
    /// after a failure). `fetched`: the first fetch was already made (before a reload took the
    /// certificate into use), and this is when its response is good until.
    func run(fetched: Date?? = nil) async {
        guard chain.count > 1 else {
            log(LogLine(text: "staple: the chain has no issuer certificate; nothing to staple", json: "{\"event\":\"staple\",\"error\":\"no issuer\"}"))
            return
        }
        var stapleExpires: Date?
        if let fetched {
            stapleExpires = fetched ?? Date().addingTimeInterval(86400)
            try? await Task.sleep(for: .seconds(Self.wait(until: fetched)))
        }
        while !Task.isCancelled {
            var wait: TimeInterval = 60
            do {
                let (status, url, next) = try await fetchOnce()
                stapleExpires = next ?? Date().addingTimeInterval(86400)
                wait = Self.wait(until: next)
                log(LogLine(text: "staple: \(status) from \(url), refreshed in \(Int(wait)) s", json: "{\"event\":\"staple\",\"status\":\"\(status)\"}"))
            } catch {
                // An expired staple would fail every client (bad_certificate_status_response):
                // stapling stops until a fresh response arrives.
                if let expires = stapleExpires, expires < Date() {
                    staple.update(nil)
                    stapleExpires = nil
                }
                log(LogLine(text: "staple: \(error); retrying in 60 s", json: "{\"event\":\"staple\",\"error\":\"\(error)\"}"))
            }
            try? await Task.sleep(for: .seconds(wait))
        }
    }

    /// Half the time left of a response good until `next` (at least a minute); a minute without one.
    static func wait(until next: Date?) -> TimeInterval {
        guard let next else { return 60 }
        return max(60, next.timeIntervalSinceNow / 2)
    }
}
