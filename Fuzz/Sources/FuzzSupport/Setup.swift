import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

/// The fixed PKI, parsed once per process.
public enum FuzzPKI {
    public static let root = try! CertificateFiles.certificates(fromPEM: Fixtures.rootPEM)[0]
    public static let leaf = try! CertificateFiles.certificates(fromPEM: Fixtures.leafPEM)[0]
    public static let key = try! CertificateFiles.privateKey(fromPEM: Fixtures.leafKeyPEM)
    public static let certifiedKey = try! CertificateFiles.certifiedKey(chain: [leaf], key: key)
    /// Verifies against the fixed root at a fixed time (a day into the leaf's validity).
    public static let verifier: X509CertificateVerifier = {
        var v = X509CertificateVerifier(roots: [root])
        let t = leaf.notBefore.addingTimeInterval(86400)
        v.now = { t }
        return v
    }()
}

/// The one time every configuration sees (session lifetimes, ticket ages, key rotation): a day
/// into the leaf's validity, like the verifier. A real clock would make an input behave
/// differently from one run to the next (a ticket expires, a key rotates).
public struct FixedClock: WallClock {
    public let milliseconds: UInt64
    public init(_ milliseconds: UInt64) { self.milliseconds = milliseconds }
    public func nowMilliseconds() -> UInt64 { milliseconds }
}

public enum FuzzClock {
    public static let now = UInt64(FuzzPKI.leaf.notBefore.addingTimeInterval(86400).timeIntervalSince1970) * 1000
    public static let fixed = FixedClock(now)
}

/// swift-crypto's primitives with FuzzRandom's server stream, without the record tap: ticket
/// keys must not show up among the records `Tap` counts (Endpoint classifies what it reads by
/// the number of seals), nor take an armed plaintext mutation meant for a record.
public struct FuzzTicketPrimitives: CryptoPrimitives {
    let real = SwiftCryptoPrimitives()
    public init() {}
    public func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { real.hash(algorithm, data) }
    public func hmac(_ algorithm: HashAlgorithm, key: SecretBytes, data: [UInt8]) -> [UInt8] { real.hmac(algorithm, key: key, data: data) }
    public func makeAEAD(_ algorithm: AEADAlgorithm, key: SecretBytes) throws(TLSError) -> any AEADCipher { try real.makeAEAD(algorithm, key: key) }
    public func randomBytes(_ count: Int) -> [UInt8] { FuzzRandom.bytes(count, .server) }
}

/// The servers' session-ticket keys: fixed bytes, made at the fixed time, never rotated (a set
/// that rotates would draw new keys from the fuzz randomness in the middle of some input; with
/// the fixed clock it never would, and `rotatesAutomatically: false` says so). Opening and
/// sealing do not change the set, so sharing it across inputs keeps every input reproducible.
public enum FuzzTicketKeys {
    public static let current = try! TicketKey(
        name: Array("QSSL-fuzz-key-1.".utf8), key: SecretBytes((0..<32).map { UInt8($0) }),
        createdAt: FuzzClock.now)
    /// An hour older: its tickets still open, as `byCurrentKey: false` (TLS 1.2 renews them).
    public static let previous = try! TicketKey(
        name: Array("QSSL-fuzz-key-0.".utf8), key: SecretBytes((0..<32).map { UInt8(0xA0 ^ $0) }),
        createdAt: FuzzClock.now - 3_600_000)
    /// What every fuzz server seals and opens with.
    public static let shared = set([current, previous])

    public static func set(_ keys: [TicketKey]) -> TicketKeySet {
        TicketKeySet(keys: keys, primitives: FuzzTicketPrimitives(), clock: FuzzClock.fixed, rotatesAutomatically: false)
    }
}

/// A client and a server configuration that can talk to each other (or, in some variants,
/// deliberately go through HelloRetryRequest, a downgrade check, ALPN, …). A resumption variant
/// also holds the session its client offers on every input.
public struct PairConfig {
    public var client: ClientConfiguration
    public var server: ServerConfiguration
    public var serverName: String?
    public var name: String
    /// Offered explicitly by the client of every pair (`TLSConnection.client(…, session:)`).
    public var session: TLSSession?
    /// Whether each pair's client keeps the sessions it is issued (a fresh in-memory store per
    /// input): TLS 1.3 NewSessionTicket and TLS 1.2 session keeping then run to the end and
    /// report `sessionIssued`. Without a store the client ignores tickets.
    public var clientKeepsSessions = false
    /// A TLS 1.2 session-ID entry each pair's server cache starts with.
    public var cachedSession: CachedSession?

    public struct CachedSession {
        public var state: SessionState
        public var sessionID: [UInt8]
    }

    /// Whether the client offers a session the server can resume: every untampered run of such
    /// a variant must resume.
    public var resumes: Bool { session != nil }

    /// The configuration for one input: stores that live only as long as the pair, so nothing
    /// one input does (a session cached, removed or replaced) reaches the next one. The
    /// session-ID cache starts with the variant's entry, if any.
    public func forOneInput() -> PairConfig {
        var c = self
        let cache = InMemorySessionCache(clock: FuzzClock.fixed)
        if let entry = cachedSession { cache.save(entry.state, sessionID: entry.sessionID) }
        c.server.sessionCache = cache
        c.client.sessionStore = clientKeepsSessions ? InMemoryClientSessionStore(clock: FuzzClock.fixed) : nil
        return c
    }
}

/// A server session cache that remembers what it was asked to save (to find the TLS 1.2
/// session ID and state of a setup handshake).
final class RecordingSessionCache: ServerSessionCache, @unchecked Sendable {
    let inner = InMemorySessionCache(clock: FuzzClock.fixed)
    var saved: [PairConfig.CachedSession] = []
    func lookUp(sessionID: [UInt8]) -> SessionState? { inner.lookUp(sessionID: sessionID) }
    func save(_ state: SessionState, sessionID: [UInt8]) {
        saved.append(PairConfig.CachedSession(state: state, sessionID: sessionID))
        inner.save(state, sessionID: sessionID)
    }
    func remove(sessionID: [UInt8]) { inner.remove(sessionID: sessionID) }
}

public enum FuzzConfigs {
    static func base(_ name: String) -> PairConfig {
        var client = ClientConfiguration(provider: .fuzz(.client), verifier: FuzzPKI.verifier)
        client.groups = [.x25519, .secp256r1]
        client.keyShareGroups = [.x25519]
        client.clock = FuzzClock.fixed
        // Sessions are offered explicitly (PairConfig.session): the default in-memory store,
        // shared by every input, would offer one input's sessions to the next.
        client.sessionStore = nil
        var server = ServerConfiguration(provider: .fuzz(.server), certificates: [FuzzPKI.certifiedKey])
        server.groups = [.x25519, .secp256r1]
        server.clock = FuzzClock.fixed
        server.ticketKeys = FuzzTicketKeys.shared
        // Replaced by a fresh one for every input (PairConfig.forOneInput).
        server.sessionCache = InMemorySessionCache(clock: FuzzClock.fixed)
        return PairConfig(client: client, server: server, serverName: "localhost", name: name)
    }

    /// TLS 1.3 variants without resumption (the client also offers TLS 1.2 unless noted).
    static let plain13: [PairConfig] = {
        var all: [PairConfig] = []
        var c = base("1.3 default")
        c.server.versions = [.tls13]
        all.append(c)
        var hrr = c
        hrr.name = "1.3 HelloRetryRequest to secp256r1"
        hrr.server.groups = [.secp256r1]
        all.append(hrr)
        var chacha = c
        chacha.name = "1.3 ChaCha20 + ALPN"
        chacha.server.cipherSuites = [.chaCha20Poly1305SHA256]
        chacha.client.alpnProtocols = ["h2", "http/1.1"]
        chacha.server.alpnProtocols = ["http/1.1"]
        all.append(chacha)
        // An IP literal: no SNI is sent (a nil name is refused by newer cores).
        var plain = c
        plain.name = "1.3 AES-128, no middlebox compatibility, no SNI (127.0.0.1)"
        plain.server.cipherSuites = [.aes128GCMSHA256]
        plain.client.middleboxCompatibility = false
        plain.serverName = "127.0.0.1"
        all.append(plain)
        var both = base("1.3 both versions on both sides")
        both.client.keyShareGroups = [.secp256r1, .x25519]
        all.append(both)
        var p256 = c
        p256.name = "1.3 secp256r1 only client"
        p256.client.groups = [.secp256r1]
        p256.client.keyShareGroups = [.secp256r1]
        p256.client.versions = [.tls13]
        all.append(p256)
        var hrrALPN = hrr
        hrrALPN.name = "1.3 HelloRetryRequest + ChaCha20 + ALPN, no middlebox compatibility"
        hrrALPN.server.cipherSuites = [.chaCha20Poly1305SHA256, .aes256GCMSHA384]
        hrrALPN.client.alpnProtocols = ["h2"]
        hrrALPN.server.alpnProtocols = ["h2"]
        hrrALPN.client.middleboxCompatibility = false
        all.append(hrrALPN)
        var ip = c
        ip.name = "1.3 server name LOCALHOST."
        ip.serverName = "LOCALHOST."
        all.append(ip)
        return all
    }()

    /// TLS 1.3 resumption variants: each offers a ticket from a full handshake made at setup.
    static let resumption13: [PairConfig] = {
        var c = plain13[0]
        c.clientKeepsSessions = true
        var ticket = c
        ticket.name = "1.3 resumption: ticket PSK (psk_dhe_ke)"
        var hrr = plain13[1]
        hrr.name = "1.3 resumption across HelloRetryRequest (binder over both hellos)"
        hrr.clientKeepsSessions = true
        var pskKE = c
        pskKE.name = "1.3 resumption: psk_ke, allowed on both sides, ALPN"
        pskKE.client.offerPSKWithoutKeyExchange = true
        pskKE.server.acceptPSKWithoutKeyExchange = true
        pskKE.client.alpnProtocols = ["h2"]
        pskKE.server.alpnProtocols = ["h2"]
        return [ticket, hrr, pskKE].map { Resumption.prime($0) }
    }()

    /// TLS 1.3 variants; the resumption ones last (seeds name configurations by index).
    public static let tls13: [PairConfig] = plain13 + resumption13

    /// TLS 1.2 variants without resumption (both sides TLS 1.2 only unless noted).
    static let plain12: [PairConfig] = {
        var all: [PairConfig] = []
        var c = base("1.2 default")
        c.client.versions = [.tls12]
        c.server.versions = [.tls12]
        all.append(c)
        var aes128 = c
        aes128.name = "1.2 ECDHE-ECDSA-AES128-GCM, secp256r1"
        aes128.server.tls12CipherSuites = [.ecdheECDSAWithAES128GCMSHA256]
        aes128.server.groups = [.secp256r1]
        all.append(aes128)
        var chacha = c
        chacha.name = "1.2 ECDHE-ECDSA-CHACHA20-POLY1305 + ALPN"
        chacha.server.tls12CipherSuites = [.ecdheECDSAWithChaCha20Poly1305SHA256]
        chacha.client.alpnProtocols = ["h2", "http/1.1"]
        chacha.server.alpnProtocols = ["http/1.1"]
        all.append(chacha)
        var downgrade = c
        downgrade.name = "1.2 server, client offering 1.3 and 1.2"
        downgrade.client.versions = [.tls13, .tls12]
        all.append(downgrade)
        var sentinel = c
        sentinel.name = "1.2 client, server offering 1.3 and 1.2, no SNI (127.0.0.1)"
        sentinel.server.versions = [.tls13, .tls12]
        sentinel.serverName = "127.0.0.1"
        all.append(sentinel)
        return all
    }()

    /// TLS 1.2 resumption variants: abbreviated handshakes from a ticket (current key), a
    /// ticket of the previous key (renewed with a NewSessionTicket in the abbreviated
    /// handshake), and a session ID in the server's cache.
    static let resumption12: [PairConfig] = {
        var c = plain12[0]
        c.clientKeepsSessions = true
        var ticket = c
        ticket.name = "1.2 resumption: RFC 5077 ticket"
        var renewed = plain12[2]
        renewed.name = "1.2 resumption: ticket of the previous key, renewed; ChaCha20 + ALPN"
        renewed.clientKeepsSessions = true
        var id = c
        id.name = "1.2 resumption: session ID (no tickets)"
        id.client.tls12SessionTickets = false
        return [
            Resumption.prime(ticket), Resumption.prime(renewed, setupKeys: FuzzTicketKeys.set([FuzzTicketKeys.previous])),
            Resumption.prime(id)
        ]
    }()

    /// TLS 1.2 variants; the resumption ones last.
    public static let tls12: [PairConfig] = plain12 + resumption12

    /// FuzzRecords' configurations (4 bits): the plain ones in their old numbering (TLS 1.3,
    /// then TLS 1.2, as Fuzz/capture-openssl numbers them), then three resumption variants.
    public static let records: [PairConfig] = plain13 + plain12 + [resumption13[0], resumption13[2], resumption12[1]]
}

/// Setup of the resumption variants: one full handshake in-process, whose issued session the
/// variant's client then offers on every input.
enum Resumption {
    static func prime(_ variant: PairConfig, setupKeys: TicketKeySet? = nil) -> PairConfig {
        var setup = variant.forOneInput()
        setup.session = nil
        setup.cachedSession = nil
        setup.client.sessionStore = InMemoryClientSessionStore(clock: FuzzClock.fixed)
        let cache = RecordingSessionCache()
        setup.server.sessionCache = cache
        if let setupKeys { setup.server.ticketKeys = setupKeys }
        var pair = Pair(prepared: setup)
        // The setup server draws from a later part of its random stream than the server of any
        // input: else a TLS 1.2 server that falls back to a full handshake (a ticket that does
        // not open, a cache miss) would pick the very session ID the client offers, which the
        // client takes for an abbreviated handshake. Real IDs are random and never collide.
        _ = FuzzRandom.bytes(4096, .server)
        pair.pump()
        let client = pair.ends[0]
        guard pair.ends.allSatisfy(\.isComplete), let session = client.issuedSessions.first else {
            violated("setup of '\(variant.name)': no session (\(pair.ends.map { String(describing: $0.failure) }), \(client.issuedSessions.count) issued)")
        }
        var primed = variant
        primed.session = session
        if session.ticket == nil {
            guard let entry = cache.saved.last, entry.sessionID == session.sessionID else {
                violated("setup of '\(variant.name)': the server cached no session under the client's ID")
            }
            primed.cachedSession = entry
        }
        return primed
    }
}
