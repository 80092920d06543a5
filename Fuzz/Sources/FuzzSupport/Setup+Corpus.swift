import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

public enum FuzzSetup {
    public static let verbose = ProcessInfo.processInfo.environment["QSSL_FUZZ_VERBOSE"] != nil
    /// QSSL_FUZZ_DETERMINISM: every state-machine input runs twice and must behave the same.
    public static let checkDeterminism = ProcessInfo.processInfo.environment["QSSL_FUZZ_DETERMINISM"] != nil

    /// Called from every target's LLVMFuzzerInitialize. With QSSL_FUZZ_MAKE_CORPUS=DIR set, writes
    /// the generated seed corpora under DIR/<Target>/ and exits instead of fuzzing.
    public static func initialize() {
        if let dir = ProcessInfo.processInfo.environment["QSSL_FUZZ_MAKE_CORPUS"] {
            var maker = CorpusMaker(root: dir)
            maker.makeAll()
            _exit(0)  // not exit(): LeakSanitizer would report swift-crypto's RSA key generation

        }
        selfTest()
    }

    /// Every configuration completes an untampered handshake, and every resumption variant
    /// resumes (else the harness itself is wrong: fuzzing a variant whose session is refused
    /// would only ever see full handshakes).
    static func selfTest() {
        for config in FuzzConfigs.tls13 + FuzzConfigs.tls12 {
            var pair = Pair(config)
            pair.pump()
            guard pair.ends.allSatisfy(\.isComplete) else {
                violated("self-test: configuration '\(config.name)' does not complete: \(pair.ends.map { String(describing: $0.failure) })")
            }
            if config.resumes, !pair.ends.allSatisfy({ $0.summary?.resumed == true }) {
                violated("self-test: configuration '\(config.name)' does not resume its session")
            }
            pair.checkOutcome()
        }
    }
}

/// Seeds made from real in-process handshakes: raw flights and scripts for the state machines,
/// records for FuzzRecords, every message and extension for the decoders, certificates and keys.
struct CorpusMaker {
    let root: String
    var written = Set<[UInt8]>()

    init(root: String) { self.root = root }

    mutating func write(_ target: String, _ name: String, _ bytes: [UInt8]) {
        guard written.insert(Array(target.utf8) + [0] + bytes).inserted else { return }
        let dir = "\(root)/\(target)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data(bytes))
    }

    mutating func makeAll() {
        pairs(FuzzConfigs.tls13, server: "FuzzServer13", client: "FuzzClient13")
        pairs(FuzzConfigs.tls12, server: "FuzzServer12", client: "FuzzClient12")
        x509()
        sessions()
        earlyData()
        ticketExtensions()
    }

    /// Scripts for both state-machine targets (see PairScript for the operations); `p` is the
    /// op-14 byte with which the victim's peer sends data.
    static func scripts(peerSends p: UInt8, tls13: Bool) -> [(String, [UInt8])] {
        var all: [(String, [UInt8])] = [
            ("pump", [0xF2]),
            ("stepwise", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
            ("split-coalesce", [0x0A, 0x00, 0x03, 0x0F, 0x02, 0x0A, 0x00, 0x20, 0xF2]),
            ("data-keyupdate-close", [0xF2, 0x0E, 4, 1, 2, 3, 4, 0x1E, 4, 5, 6, 7, 8, 0x2D, 0xF2, 0x3D, 0xF2, 0x0E, 3, 9, 9, 9, 0x0C, 0xF2, 0x1C, 0xF2]),
            ("data-before-finished", [0x0E, 2, 0x41, 0x42, 0x1E, 2, 0x43, 0x44, 0xF2]),
            ("seal-mutation", [0x0B, 0, 0, 5, 0x80, 0xF2]),
            ("seal-mutation-later", [0x0B, 2, 0, 9, 0x01, 0xF2]),
            ("flip-first", [0x03, 0x00, 0x30, 0x01, 0xF2]),
            ("truncate", [0x05, 0x00, 0x40, 0x00, 0xF2]),
            ("drop-dup-swap", [0x02, 0x07, 0x02, 0x06, 0x09, 0xF2]),
            ("inject-ccs", [0x08, 6, 20, 3, 3, 0, 1, 1, 0xF2]),
            ("inject-alert", [0x02, 0x08, 7, 21, 3, 3, 0, 2, 1, 0, 0xF2])
        ]
        if tls13 {
            // The peer's application data, retyped before sealing: post-handshake messages.
            let keyUpdate: [UInt8] = [24, 0, 0, 1, 1]
            let ticket: [UInt8] = [4, 0, 0, 14, 0, 0, 0, 60, 1, 2, 3, 4, 0, 0, 1, 0x41, 0, 0]
            let hello: [UInt8] = [1, 0, 0, 0]
            all += [
                ("post-handshake-keyupdate", [0xF2, 0x0B, 0x08, 0, 0, 22, p, UInt8(keyUpdate.count)] + keyUpdate + [0xF2]),
                ("post-handshake-ticket", [0xF2, 0x0B, 0x08, 0, 0, 22, p, UInt8(ticket.count)] + ticket + [0xF2]),
                ("post-handshake-hello", [0xF2, 0x0B, 0x08, 0, 0, 22, p, UInt8(hello.count)] + hello + [0xF2]),
                ("post-handshake-alert", [0xF2, 0x0B, 0x08, 0, 0, 21, p, 2, 2, 40, 0xF2])
            ]
        }
        return all
    }

    mutating func pairs(_ configs: [PairConfig], server: String, client: String) {
        for (i, config) in configs.enumerated() {
            Tap.captureAll = true
            var pair = Pair(config)
            pair.recordFeeds = true
            pair.pump()
            pair.enqueue(pair.ends[0].send(Array("GET / HTTP/1.0\r\n\r\n".utf8)), to: .server)
            pair.enqueue(pair.ends[1].send(Array("HTTP/1.0 200 OK\r\n\r\nhello".utf8)), to: .client)
            pair.pump()
            Tap.captureAll = false
            let toServer = Array(pair.fed[1].joined())
            let toClient = Array(pair.fed[0].joined())
            let c = UInt8(i << 1)
            write(server, "raw-\(i)", [c | 1, 0] + toServer)
            write(client, "raw-\(i)", [c | 1, 0] + toClient)
            write(server, "raw-\(i)-chunk7", [c | 1, 7] + toServer)
            let tls13 = server.hasSuffix("13")
            for (name, ops) in Self.scripts(peerSends: 0x0E, tls13: tls13) { write(server, "script-\(i)-\(name)", [c] + ops) }
            for (name, ops) in Self.scripts(peerSends: 0x1E, tls13: tls13) {
                // A client's first mutation needs the server's answer queued (op 1 first).
                let first: [UInt8] = name == "flip-first" || name == "truncate" ? [0x01] : []
                write(client, "script-\(i)-\(name)", [c] + first + ops)
            }
            if config.resumes {
                for (name, ops) in Self.resumptionScripts(toServer: pair.fed[1], toClient: pair.fed[0], session: config.session!, victim: .server) {
                    write(server, "script-\(i)-\(name)", [c] + ops)
                }
                for (name, ops) in Self.resumptionScripts(toServer: pair.fed[1], toClient: pair.fed[0], session: config.session!, victim: .client) {
                    write(client, "script-\(i)-\(name)", [c] + ops)
                }
            }
            // FuzzRecords numbers its configurations on its own (FuzzConfigs.records).
            let tag = "\(tls13 ? "13" : "12")-\(i)"
            if let r = FuzzConfigs.records.firstIndex(where: { $0.name == config.name }).map(UInt8.init) {
                write("FuzzRecords", "server-\(r)", [r] + toServer)
                write("FuzzRecords", "client-\(r)", [r | 0x10] + toClient)
                write("FuzzRecords", "server-\(r)-hello-chunk1", [r | 0x20] + (pair.fed[1].first ?? []))
            }
            messages(plaintext: pair.fed[1], sealed: Tap.captured[0], tag: "c\(tag)")
            messages(plaintext: pair.fed[0], sealed: Tap.captured[1], tag: "s\(tag)")
            flights[config.name] = (toServer: pair.fed[1], toClient: pair.fed[0])
            for session in pair.ends[0].issuedSessions { issued.append(session) }
        }
    }

    /// Each configuration's recorded flights, record by record (for the early-data seeds).
    var flights: [String: (toServer: [[UInt8]], toClient: [[UInt8]])] = [:]
    /// Sessions the recorded pairs were issued (for the FuzzSessions seeds).
    var issued: [TLSSession] = []

    /// Scripts aimed at the resumption itself, with offsets found in the recorded flights: a
    /// changed ticket, ticket age or binder on the way to a server; a changed selected identity
    /// or session ID echo on the way to a client.
    static func resumptionScripts(toServer: [[UInt8]], toClient: [[UInt8]], session: TLSSession, victim: Side) -> [(String, [UInt8])] {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func flip(_ offset: Int) -> [UInt8] { [0x03] + u16(offset) + [0x01, 0xF2] }
        func set(_ offset: Int, _ value: UInt8) -> [UInt8] { [0x04] + u16(offset) + [value, 0xF2] }
        var all: [(String, [UInt8])] = []
        if victim == .server, let hello = toServer.first {
            if let ticket = session.ticket, let at = firstIndex(of: ticket, in: hello) {
                all.append(("flip-ticket", flip(at + ticket.count / 2)))
                all.append(("flip-ticket-name", flip(at + 3)))
                if session.state.version == .tls13 {
                    all.append(("ticket-age-skew", flip(at + ticket.count)))  // the obfuscated age's top byte
                }
            }
            if !session.sessionID.isEmpty, let at = firstIndex(of: session.sessionID, in: hello) {
                all.append(("flip-session-id", flip(at + 7)))
            }
            if session.state.version == .tls13 {
                all.append(("flip-binder", flip(hello.count - 5)))
                // The binder's length byte (the PSK is as long as the binder: one hash).
                all.append(("binder-length", set(hello.count - session.state.secret.count - 1, UInt8(session.state.secret.count - 16))))
            }
        }
        // Scripts start with the client's first flight queued to the server: a client's
        // mutations wait for the server's answer (op 1 delivers the hello).
        if victim == .client, let serverHello = toClient.first {
            // pre_shared_key (41), 2 bytes: selected_identity 0.
            if session.state.version == .tls13, let at = firstIndex(of: [0, 41, 0, 2, 0, 0], in: serverHello) {
                all.append(("selected-identity-1", [0x01] + set(at + 5, 1)))
                all.append(("selected-identity-256", [0x01] + set(at + 4, 1)))
            }
            if session.state.version == .tls12 {
                all.append(("flip-session-id-echo", [0x01] + flip(5 + 4 + 2 + 32 + 1 + 3)))
                all.append(("flip-server-random", [0x01] + flip(5 + 4 + 2 + 5)))
            }
        }
        return all
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// Handshake messages of one direction: plaintext handshake records until the first
    /// ChangeCipherSpec, then what the sender sealed.
    mutating func messages(plaintext: [[UInt8]], sealed: [(type: UInt8, content: [UInt8])], tag: String) {
        var stream: [UInt8] = []
        for record in plaintext {
            if record.first == ContentType.changeCipherSpec.rawValue { break }
            if record.first == ContentType.handshake.rawValue { stream += record.dropFirst(5) }
        }
        for s in sealed where s.type == ContentType.handshake.rawValue { stream += s.content }
        write("FuzzHandshakeMessages", "\(tag)-stream", [15] + stream)
        var r = ByteReader(stream)
        var n = 0
        while let type = try? r.readUInt8(), let length = try? r.readUInt24(), let body = try? r.readBytes(count: Int(length)) {
            n += 1
            let t = HandshakeType(rawValue: type)
            for s in MessageDecoders.selectors(for: t) { write("FuzzHandshakeMessages", "\(tag)-\(n)-\(t)-\(s)", [UInt8(s)] + body) }
            var ext: ExtensionList?
            if t == .clientHello { ext = try? HandshakeMessage(type: t, body: Array(body)).decode(as: ClientHello.self).extensions }
            if t == .serverHello { ext = try? HandshakeMessage(type: t, body: Array(body)).decode(as: ServerHello.self).extensions }
            if t == .encryptedExtensions { ext = try? HandshakeMessage(type: t, body: Array(body)).decode(as: EncryptedExtensions.self).extensions }
            if let ext {
                if let all = ExtensionDecoders.encode(ext) { write("FuzzExtensions", "\(tag)-\(n)-list", [11] + all) }
                for e in ext.items {
                    for s in ExtensionDecoders.selectors(for: e.type) { write("FuzzExtensions", "\(tag)-\(n)-\(e.type)-\(s)", [UInt8(s)] + e.data) }
                }
            }
        }
    }

    mutating func x509() {
        let t = "FuzzX509"
        func u16(_ b: [UInt8]) -> [UInt8] { [UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b }
        let leaf = FuzzPKI.leaf.der
        let root = FuzzPKI.root.der
        write(t, "der-leaf", [0] + leaf)
        write(t, "der-root", [0] + root)
        write(t, "chain-leaf-root", [1] + u16(leaf) + u16(root))
        write(t, "chain-leaf", [1] + u16(leaf))
        write(t, "intermediates-root", [2] + u16(root))
        for (i, name) in ["localhost", "LOCALHOST.", "127.0.0.1", "::1", "[::ffff:7f00:1]", "*.localhost", "a.localhost"].enumerated() {
            write(t, "name-\(i)", [3] + Array(name.utf8))
        }
        write(t, "pem-chain", [4] + Array((Fixtures.leafPEM + "\n" + Fixtures.rootPEM).utf8))
        write(t, "pem-key-ed25519", [5] + Array(Fixtures.leafKeyPEM.utf8))
        for alg in PKIBuilder.Algorithm.allCases where alg != .mldsa44 {
            guard let pki = try? DemoPKI(algorithm: alg) else { continue }
            let der = pki.serverCertificate.der
            write(t, "der-\(alg.rawValue)", [0] + der)
            guard let keyPEM = try? CertificateFiles.pkcs8PEM(pki.serverKey) else { continue }
            write(t, "pem-key-\(alg.rawValue)", [5] + Array(keyPEM.utf8))
            if let doc = pkcs8DER(keyPEM) { write(t, "pkcs8-\(alg.rawValue)", [6] + doc) }
            if der.count < 2000 {
                let ca = pki.ca.certificate.der
                write(t, "chain-\(alg.rawValue)", [1] + u16(der) + u16(ca))
                write(t, "pem-chain-\(alg.rawValue)", [4] + Array(CertificateFiles.pem([pki.serverCertificate, pki.ca.certificate]).utf8))
            }
            switch pki.serverKey {
            case .p256(let k): write(t, "sec1-p256", [7, 0] + Array(k.derRepresentation))
            case .p384(let k): write(t, "sec1-p384", [7, 0] + Array(k.derRepresentation))
            case .rsa(let k): write(t, "pkcs1-rsa", [7, 1] + Array(k.derRepresentation))
            default: break
            }
        }
    }

    func pkcs8DER(_ pem: String) -> [UInt8]? {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Data(base64Encoded: body).map { Array($0) }
    }
}
