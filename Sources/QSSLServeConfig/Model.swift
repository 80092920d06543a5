// The typed, validated model of `qssl serve --config FILE`: resolved values, defaults applied.

/// The whole configuration file, resolved: built-in defaults applied and `defaults:` merged into
/// every listener.
public struct ServeConfigFile: Sendable, Hashable {
    /// `access-log`: one line per connection as text or as JSON. Default `.text`.
    public var accessLog: AccessLogFormat = .text
    /// `metrics`: HOST:PORT serving Prometheus `/metrics` and `/healthz`. Default `nil` (off).
    public var metrics: NetworkAddress?
    /// `drain-timeout`: on shutdown, how long open connections may finish. Default 30 s (0 to 24 h).
    public var drainTimeout: Duration = .seconds(30)
    /// `threads`: event-loop threads serving every listener (1 to 1024), read at start only.
    /// Default `nil`: one per core.
    public var threads: Int?
    /// The thread counts `threads` (and `qssl serve --threads`) accept.
    public static let threadCounts = 1...1024
    /// `hsm`: the PKCS#11 module for `pkcs11:` certificates and keys. Default `nil`.
    public var hsm: HSMConfig?
    /// `listeners`: at least one.
    public var listeners: [ListenerConfig]

    public init(listeners: [ListenerConfig]) {
        self.listeners = listeners
    }
}

/// `access-log` values.
public enum AccessLogFormat: String, Sendable, Hashable, CaseIterable {
    case text, json
}

/// `hsm:` — a PKCS#11 module holding `pkcs11:` keys (and possibly certificates).
public struct HSMConfig: Sendable, Hashable {
    /// `module`: path of the PKCS#11 shared library. Required.
    public var module: String
    /// `pin-file`: file holding the user PIN. Default `nil` (no login, or the PIN is in the URI).
    public var pinFile: String?
    /// `sign-threads`: threads signing with the token, 1 to 64. Default 1.
    public var signThreads: Int = 1

    public init(module: String) {
        self.module = module
    }
}

/// A TCP address (`HOST:PORT`, IPv6 in brackets) or a Unix socket (`unix:/absolute/path`).
public enum NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name, IPv4 address, or IPv6 address without brackets (may carry a `%zone`).
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    /// As written in a configuration file: `127.0.0.1:443`, `[::1]:443`, `unix:/run/qssl.sock`.
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// `backend`: where decrypted connections go.
public enum Backend: Sendable, Hashable, CustomStringConvertible {
    /// A TCP or Unix-socket server (`HOST:PORT` or `unix:/path`).
    case address(NetworkAddress)
    /// `echo`: echo application data back (for tests).
    case echo
    /// `http`: a built-in HTTP/1 responder (for health checks and tests).
    case http

    public var description: String {
        switch self {
        case .address(let address): address.description
        case .echo: "echo"
        case .http: "http"
        }
    }
}

/// `proxy-protocol`: the PROXY protocol header sent to the backend.
public enum ProxyProtocolVersion: String, Sendable, Hashable, CaseIterable {
    case none, v1, v2
}

/// `accept-proxy-protocol`: a PROXY protocol header expected from a load balancer in front.
public enum AcceptProxyProtocol: String, Sendable, Hashable, CaseIterable {
    /// `false`: none expected (a header is then a TLS error).
    case off
    case v1, v2
    /// `either` (or `true`): version 1 or 2, required.
    case either
}

/// Where a certificate chain or private key comes from.
public enum CredentialSource: Sendable, Hashable, CustomStringConvertible {
    /// A PEM file (path as written: relative paths are relative to the working directory).
    case file(String)
    /// A `pkcs11:` URI (RFC 7512) naming an object in the `hsm:` token; the whole URI is kept.
    case pkcs11(String)

    public var description: String {
        switch self {
        case .file(let path): path
        case .pkcs11(let uri): uri
        }
    }
}

/// One certificate chain and its key.
public struct CertificatePair: Sendable, Hashable {
    /// `cert`: PEM chain, leaf first, or a `pkcs11:` URI. Required.
    public var cert: CredentialSource
    /// `key`: PEM private key or a `pkcs11:` URI. Required.
    public var key: CredentialSource
    /// `server-names`: names (lower-cased; `*.example.com` wildcards) this pair answers for.
    /// Default `[]`: a default pair, chosen by the client's signature algorithms when several.
    public var serverNames: [String] = []
    /// Line of this entry in the file (0 when not from a file), for messages at run time.
    public var line: Int = 0

    public init(cert: CredentialSource, key: CredentialSource, serverNames: [String] = [], line: Int = 0) {
        self.cert = cert
        self.key = key
        self.serverNames = serverNames
        self.line = line
    }
}

/// `unknown-server-name`: what to do with an SNI name no certificate claims.
public enum UnknownServerNamePolicy: String, Sendable, Hashable, CaseIterable {
    /// `default`: answer with a default pair (one without `server-names`, else the first).
    case useDefault = "default"
    /// `reject`: send an `unrecognized_name` alert.
    case reject
}

/// `tls-versions` values.
public enum TLSVersion: String, Sendable, Hashable, CaseIterable {
    case tls13 = "1.3"
    case tls12 = "1.2"
}

/// `client-auth` values.
public enum ClientAuthMode: String, Sendable, Hashable, CaseIterable {
    case none, optional, required
}

/// `ticket-keys`: where session-ticket keys come from.
public enum TicketKeySource: Sendable, Hashable {
    /// Key absent: keys in memory, rotated (the default).
    case rotating
    /// `none`: issue and accept no session tickets.
    case disabled
    /// A key file shared with other servers (`qssl ticket-keys generate`).
    case file(String)
}

/// `limits.handshake-overflow`: what to do when `max-handshakes` are in progress.
public enum HandshakeOverflow: String, Sendable, Hashable, CaseIterable {
    /// Accepted connections wait for a handshake slot (within `handshake-timeout`).
    case wait
    /// Close new connections at once.
    case refuse
}

/// `limits:` of one listener.
public struct Limits: Sendable, Hashable {
    /// `handshake-timeout`: time to finish the handshake (and any PROXY header). Default 10 s (1 ms to 1 h).
    public var handshakeTimeout: Duration = .seconds(10)
    /// `idle-timeout`: close after this long without data either way. Default 300 s; `0` = none (`nil`); at most 30 days.
    public var idleTimeout: Duration? = .seconds(300)
    /// `max-lifetime`: close a connection this long after it was accepted. Default `0` = none (`nil`); at most 365 days.
    public var maxLifetime: Duration?
    /// `max-connections`: open connections at once. Default 10000 (1 to 10000000).
    public var maxConnections = 10_000
    /// `max-handshakes`: concurrent handshakes. Default 256 (1 to 1000000).
    public var maxHandshakes = 256
    /// `handshake-overflow`: `wait` (default) or `refuse` when `max-handshakes` are in progress.
    public var handshakeOverflow: HandshakeOverflow = .wait
    /// `handshake-rate-per-source`: new handshakes per second per client address.
    /// Default `0` = unlimited (`nil`); at most 1000000.
    public var handshakeRatePerSource: Int?
    /// `max-request-bytes`: largest request the built-in `http` backend reads. Default 65536 (1024 to 1073741824).
    public var maxRequestBytes = 65_536

    public init() {}
}

/// One listener (`listeners[i]`), with `defaults:` and the built-in defaults applied.
public struct ListenerConfig: Sendable, Hashable {
    /// The group names accepted in `groups`, in their canonical (IANA) spelling.
    public static let supportedGroups = [
        "SecP384r1MLKEM1024", "X25519MLKEM768", "SecP256r1MLKEM768", "MLKEM1024", "x25519", "secp384r1", "secp256r1"
    ]
    /// The default `groups`: hybrids first (strongest first), then classical (as Q-SSL's defaults).
    public static let defaultGroups = [
        "SecP384r1MLKEM1024", "X25519MLKEM768", "SecP256r1MLKEM768", "x25519", "secp384r1", "secp256r1"
    ]

    /// `name`: for logs and metrics; unique when given. Default `nil`.
    public var name: String?
    /// Line of this listener in the file (0 when not from a file).
    public var line = 0
    /// `listen`: one address or a list. Required.
    public var listen: [NetworkAddress]
    /// `backend`: required.
    public var backend: Backend
    /// `backend-connect-timeout`: default 5 s (1 ms to 5 min).
    public var backendConnectTimeout: Duration = .seconds(5)
    /// `proxy-protocol`: header sent to the backend. Default `.none`.
    public var proxyProtocol: ProxyProtocolVersion = .none
    /// `accept-proxy-protocol`: header expected from a load balancer. Default `.off` (`false`).
    public var acceptProxyProtocol: AcceptProxyProtocol = .off
    /// `certificates`: at least one (here or in `defaults:`).
    public var certificates: [CertificatePair]
    /// `unknown-server-name`: default `.useDefault` (`default`).
    public var unknownServerName: UnknownServerNamePolicy = .useDefault
    /// `tls-versions`: default `[.tls13, .tls12]`.
    public var tlsVersions: [TLSVersion] = [.tls13, .tls12]
    /// `groups`: canonical names in preference order. Default `ListenerConfig.defaultGroups`.
    public var groups: [String] = ListenerConfig.defaultGroups
    /// `pq-required`: refuse handshakes without an ML-KEM group. Default `false`.
    public var pqRequired = false
    /// `alpn`: protocols in preference order. Default `[]` (no ALPN).
    public var alpn: [String] = []
    /// `client-auth`: default `.none`.
    public var clientAuth: ClientAuthMode = .none
    /// `client-ca`: trusted roots for client certificates; required unless `client-auth` is `none`. Default `nil`.
    public var clientCA: String?
    /// `crl`: CRL files checked against client certificates (a path or a list). Default `[]`.
    public var crl: [String] = []
    /// `ticket-keys`: default `.rotating` (key absent); `none` → `.disabled`.
    public var ticketKeys: TicketKeySource = .rotating
    /// `session-timeout`: session and ticket lifetime. Default 3600 s (1 s to 604800 s).
    public var sessionTimeout: Duration = .seconds(3600)
    /// `session-cache`: keep a TLS 1.2 session-ID cache. Default `true`.
    public var sessionCache = true
    /// `tls13-tickets`: NewSessionTicket messages after a full TLS 1.3 handshake, 0 to 16 (one after
    /// a resumption). Default 2.
    public var tls13Tickets = 2
    /// `staple`: staple OCSP responses. Default `false`.
    public var staple = false
    /// `session-store`: share the TLS 1.2 session-ID cache and the ticket keys with a fleet
    /// through Redis (`redis://HOST:PORT[/DB]`, `rediss://…`, `redis+cluster://H:P,H:P`). Default `nil`.
    public var sessionStore: String?
    /// `fleet-key`: the fleet key file (`qssl fleet-key generate`); required with `session-store`.
    public var fleetKey: String?
    /// `service-name`: what sessions and tickets are bound to. Default `nil`: derived from the
    /// certificates' public keys.
    public var serviceName: String?
    /// `session-store-timeout`: the longest a handshake waits for Redis. Default 50 ms (1 ms to 10 s).
    public var sessionStoreTimeout: Duration = .milliseconds(50)
    /// `ticket-rotation`: a new fleet ticket key every so often. Default 1 h (1 s to 7 days).
    public var ticketRotation: Duration = .seconds(3600)
    /// `ticket-distribution`: how long a fleet ticket key exists before any node seals with it.
    /// Default 60 s (1 s to 1 day; shorter than `ticket-rotation`).
    public var ticketDistribution: Duration = .seconds(60)
    /// `limits:` — see `Limits` for each default.
    public var limits = Limits()

    public init(listen: [NetworkAddress], backend: Backend, certificates: [CertificatePair]) {
        self.listen = listen
        self.backend = backend
        self.certificates = certificates
    }
}
