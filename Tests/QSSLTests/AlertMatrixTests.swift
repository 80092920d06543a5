import Foundation
import QSSLSwiftCrypto
import QSSLWire
import Testing

@testable import QSSL
@testable import QSSLX509

/// PROTOCOL.md §5 as one matrix (issue 11): every row, in both versions and with each side as
/// the detector where the row applies, through a real handshake. The side that detects sends the
/// alert and fails; the other receives it by name; both are closed.
enum AlertRow: String, CaseIterable, Sendable {
    case certificateExpired, certificateRevoked, unknownCA, badCertificate, noCommonCipherSuite,
        finishedMismatch, badCertificateVerify, certificateRequiredAbsent, postQuantumNotMet,
        malformedMessage, illegalValue, recordMAC

    /// The alert PROTOCOL.md §5 names for this row in `version`.
    func alert(_ version: ProtocolVersion) -> AlertDescription {
        switch self {
        case .certificateExpired: return .certificateExpired
        case .certificateRevoked: return .certificateRevoked
        case .unknownCA: return .unknownCA
        case .badCertificate: return .badCertificate
        case .noCommonCipherSuite: return .handshakeFailure
        case .finishedMismatch, .badCertificateVerify: return .decryptError
        case .certificateRequiredAbsent: return version == .tls13 ? .certificateRequired : .handshakeFailure
        case .postQuantumNotMet: return .insufficientSecurity
        case .malformedMessage: return .decodeError
        case .illegalValue: return .illegalParameter
        case .recordMAC: return .badRecordMAC
        }
    }

    /// Which side can detect it (a server does not choose a cipher suite the client lacks, and only
    /// a server requires client certificates).
    var detectors: [Side] {
        switch self {
        case .noCommonCipherSuite, .certificateRequiredAbsent: return [.server]
        default: return [.client, .server]
        }
    }

    enum Side: String, Sendable { case client, server }
}

/// The TLS 1.2 PRF's HMAC that corrupts one label's output (its Finished verify_data).
final class FaultyPRFPrimitives: CryptoPrimitives, @unchecked Sendable {
    let inner = SwiftCryptoPrimitives()
    let label: [UInt8]
    init(label: String) { self.label = Array(label.utf8) }
    func hash(_ a: HashAlgorithm, _ d: [UInt8]) -> [UInt8] { inner.hash(a, d) }
    func makeAEAD(_ a: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try inner.makeAEAD(a, key: key) }
    func randomBytes(_ n: Int) -> [UInt8] { inner.randomBytes(n) }
    func hmac(_ a: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] {
        var out = inner.hmac(a, key: key, data: data)
        if data.starts(with: label) { out[0] ^= 1 }
        return out
    }
}

@Suite("PROTOCOL.md §5 alert matrix: every row, both versions, both detecting sides")
struct AlertMatrixTests {
    static let cases: [(AlertRow, ProtocolVersion, AlertRow.Side)] = AlertRow.allCases.flatMap { row in
        [ProtocolVersion.tls13, .tls12].flatMap { v in row.detectors.map { (row, v, $0) } }
    }

    @Test("the matrix provokes exactly the alerts of PROTOCOL.md §5's table (docs/alerts.md, the design's text)")
    func coversTheTable() throws {
        // The alert codes as the design's table writes them, "certificate_expired (45)": read
        // from the document, not from the code under test.
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/alerts.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var table: Set<UInt8> = []
        for line in text.split(separator: "\n") where line.hasPrefix("| ") && !line.hasPrefix("| situation") {
            let alertColumn = line.split(separator: "|").dropFirst().first ?? ""  // "| situation | alert |"
            var rest = Substring(alertColumn)
            while let open = rest.firstIndex(of: "("), let close = rest[open...].firstIndex(of: ")") {
                if let code = UInt8(rest[rest.index(after: open)..<close]) { table.insert(code) }
                rest = rest[rest.index(after: close)...]
            }
        }
        try #require(table.count >= 10, "the table was read: \(table.sorted())")
        let covered = Set(Self.cases.map { $0.0.alert($0.1).rawValue })
        // handshake_failure is both its own row and 1.2's certificate_required row.
        #expect(covered == table, "provoked \(covered.sorted()), the table names \(table.sorted())")
        #expect(Set(Self.cases.map(\.0)) == Set(AlertRow.allCases), "every row is walked")
    }

    @Test("row", arguments: cases)
    func row(_ row: AlertRow, _ version: ProtocolVersion, _ detector: AlertRow.Side) throws {
        let alert = row.alert(version)
        let o = try Self.provoke(row, version, detector)
        let (detecting, other) = detector == .client ? (o.clientError, o.serverError) : (o.serverError, o.clientError)
        let detectingConnection = detector == .client ? o.client : o.server
        let otherConnection = detector == .client ? o.server : o.client
        #expect(detecting?.alert == alert, "\(row) \(version) \(detector): sent \(String(describing: detecting))")
        #expect(other?.code == .alertReceived(alert), "\(row) \(version) \(detector): received \(String(describing: other))")
        #expect(detecting?.description.isEmpty == false, "the error says why")
        #expect(detectingConnection.failure != nil && otherConnection.failure != nil, "both connections are closed")
        #expect(!detectingConnection.isHandshaking || detectingConnection.failure != nil)
    }

    // MARK: - Provoking each row

    static func client(_ v: ProtocolVersion, _ configure: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
        clientConfig {
            $0.versions = [v]
            configure(&$0)
        }
    }

    static func server(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
        try serverConfig {
            $0.tls13TicketCount = 0
            configure(&$0)
        }
    }

    /// A server certificate (for the client to reject) or a client certificate (for the server).
    static func leaf(
        client: Bool, by ca: PKIBuilder.Issuer = sharedPKI.ca, notAfter: Date = Date().addingTimeInterval(86400),
        corruptSignature: Bool = false
    ) throws -> CertifiedKey {
        let key = try PKIBuilder.Algorithm.ecdsaP384.generateKey()
        let cert = try PKIBuilder.issue(
            subject: client ? "CN=matrix client" : "CN=localhost", key: key, by: ca, dnsNames: client ? [] : ["localhost"],
            client: client, notBefore: notAfter.addingTimeInterval(-2 * 86400), notAfter: notAfter)
        var der = cert.der
        if corruptSignature { der[der.count - 5] ^= 0x01 }
        var certified = CertifiedKey(chain: [der], key: key)
        certified.issuerNames = nil  // always offered, so that the server's verifier decides
        return certified
    }

    static func withCertificate(
        _ v: ProtocolVersion, detector: AlertRow.Side, _ certificate: CertifiedKey,
        crls: [CertificateRevocationList] = []
    ) throws -> PairOutcome {
        var verifier = sharedPKI.verifier
        verifier.crls = crls
        if detector == .client {
            var c = client(v)
            c.verifier = verifier
            return try runPair(client: c, server: try server { $0.certificates = [certificate] })
        }
        return try runPair(
            client: client(v) { $0.clientCertificate = certificate },
            server: try server {
                $0.clientAuthentication = .required
                $0.clientCertificateVerifier = verifier
            })
    }

    static func provoke(_ row: AlertRow, _ v: ProtocolVersion, _ d: AlertRow.Side) throws -> PairOutcome {
        let isClient = d == .server  // the certificate being judged belongs to the other side
        switch row {
        case .certificateExpired:
            return try withCertificate(v, detector: d, try leaf(client: isClient, notAfter: Date().addingTimeInterval(-3600)))
        case .certificateRevoked:
            let certified = try leaf(client: isClient)
            let serial = try X509Certificate(der: certified.chain[0]).serialNumber
            let crl = try CRLWriter.issue(
                by: sharedPKI.ca, entries: [.init(serial: serial, revocationDate: Date(), reason: .keyCompromise)],
                number: 1, nextUpdate: Date().addingTimeInterval(3600))
            return try withCertificate(v, detector: d, certified, crls: [crl])
        case .unknownCA:
            let other = try PKIBuilder.makeCA(subject: "CN=Matrix Other CA", key: PKIBuilder.Algorithm.ecdsaP384.generateKey())
            return try withCertificate(v, detector: d, try leaf(client: isClient, by: other))
        case .badCertificate:
            return try withCertificate(v, detector: d, try leaf(client: isClient, corruptSignature: true))
        case .noCommonCipherSuite:
            return v == .tls13
                ? try runPair(client: client(v) { $0.cipherSuites = [.chaCha20Poly1305SHA256] }, server: try server { $0.cipherSuites = [.aes256GCMSHA384] })
                : try runPair(
                    client: client(v) { $0.tls12CipherSuites = [.ecdheECDSAWithChaCha20Poly1305SHA256] },
                    server: try server { $0.tls12CipherSuites = [.ecdheECDSAWithAES256GCMSHA384] })
        case .finishedMismatch:
            if v == .tls13 {
                // SHA-256 suite and a P-384 exchange: FaultyFinishedPrimitives' shape (see AuthenticationTests).
                if d == .client {
                    var s = try server { $0.cipherSuites = [.aes128GCMSHA256] }
                    s.provider.primitives = FaultyFinishedPrimitives(corruptCall: 1)
                    return try runPair(client: AuthenticationTests.p384Client(), server: s)
                }
                var c = AuthenticationTests.p384Client(FaultyFinishedPrimitives(corruptCall: 2))
                c.versions = [.tls13]
                return try runPair(client: c, server: try server())
            }
            // The server computes one Finished label wrongly: its own (client detects) or the client's (server detects).
            var s = try server()
            s.provider.primitives = FaultyPRFPrimitives(label: d == .client ? "server finished" : "client finished")
            return try runPair(client: client(v), server: s)
        case .badCertificateVerify:
            if d == .client {
                let bad = CertifiedKey(chain: try sharedPKI.serverCertifiedKey.chain, key: CorruptingKey(inner: sharedPKI.serverKey))
                return try runPair(client: client(v), server: try server { $0.certificates = [bad] })
            }
            var certified = try leaf(client: true)
            certified.key = HalfCorruptingKey(inner: certified.key, offset: -3)
            return try withCertificate(v, detector: .server, certified)
        case .certificateRequiredAbsent:
            return try runPair(
                client: client(v),
                server: try server {
                    $0.clientAuthentication = .required
                    $0.clientCertificateVerifier = sharedPKI.verifier
                })
        case .postQuantumNotMet:
            if d == .server {
                return try runPair(
                    client: client(v) {
                        $0.groups = [.x25519, .secp384r1]
                        $0.keyShareGroups = [.x25519]
                        $0.tls12CipherSuites = TLS12CipherSuite.all.filter { !$0.isHybrid }
                    },
                    server: try server { $0.requirePostQuantum = true })
            }
            return try runPair(
                client: client(v) { $0.requirePostQuantum = true },
                server: try server {
                    $0.groups = [.x25519, .secp384r1]
                    $0.tls12CipherSuites = TLS12CipherSuite.all.filter { !$0.isHybrid }
                })
        case .malformedMessage:
            return try tamperFirst(v, toServer: d == .server) { message in Array(message.dropLast(3)) }
        case .illegalValue:
            if d == .server {
                var first = true
                return try runPair(client: client(v), server: try server()) { toServer, bytes in
                    guard toServer, first else { return bytes }
                    first = false
                    return rewriteFirstMessage(bytes, as: ClientHello.self) { $0.legacyCompressionMethods = [1] }
                }
            }
            var first = true
            return try runPair(client: client(v), server: try server()) { toServer, bytes in
                guard !toServer, first else { return bytes }
                first = false
                return rewriteFirstMessage(bytes, as: ServerHello.self) { $0.legacyCompressionMethod = 1 }
            }
        case .recordMAC:
            var o = try runPair(client: client(v), server: try server())
            let (sender, receiver) = d == .server ? (o.client, o.server) : (o.server, o.client)
            try sender.send([1, 2, 3])
            var wire = sender.takeOutput()
            wire[wire.count - 1] ^= 0x80
            do { _ = try receiver.receive(wire) } catch {
                if d == .server { o.serverError = error } else { o.clientError = error }
            }
            do { _ = try sender.receive(receiver.takeOutput()) } catch {
                if d == .server { o.clientError = error } else { o.serverError = error }
            }
            return o
        }
    }

    /// Cuts the first handshake message of the first flight in one direction: the ClientHello (the
    /// server detects) or the ServerHello (the client detects).
    static func tamperFirst(_ v: ProtocolVersion, toServer: Bool, _ change: @escaping ([UInt8]) -> [UInt8]) throws -> PairOutcome {
        var first = true
        return try runPair(client: client(v), server: try server()) { direction, bytes in
            guard direction == toServer, first else { return bytes }
            first = false
            let length = Int(bytes[3]) << 8 | Int(bytes[4])
            let record = Array(bytes[5..<(5 + length)])
            let bodyLength = Int(record[1]) << 16 | Int(record[2]) << 8 | Int(record[3])
            let body = change(Array(record[4..<(4 + bodyLength)]))
            let message = [record[0], UInt8(body.count >> 16), UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)] + body
            let rest = Array(record[(4 + bodyLength)...])
            let payload = message + rest
            return Array(bytes[0..<3]) + [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload + Array(bytes[(5 + length)...])
        }
    }
}
