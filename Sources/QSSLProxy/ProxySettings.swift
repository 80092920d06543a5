import NIOCore
import QSSL
import QSSLProxyProtocol
import Synchronization

/// Where a listener sends the plaintext of its TLS connections.
public enum BackendTarget: Sendable, Hashable, CustomStringConvertible {
    /// A TCP service.
    case tcp(host: String, port: Int)
    /// A Unix-domain stream socket.
    case unix(path: String)
    /// Built in: echoes what the client sends.
    case echo
    /// Built in: answers each HTTP request with a small page describing the connection.
    case http

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        case .echo: return "echo"
        case .http: return "http"
        }
    }
}

/// What happens to a connection that would exceed `ProxyLimits.maxHandshakes`.
public enum HandshakeOverflowPolicy: String, Sendable, Hashable {
    /// It waits (not read) until a handshake slot frees, within its handshake timeout.
    case wait
    /// It is closed at once.
    case refuse
}

/// The limits a listener enforces. Each is logged and counted when it acts.
public struct ProxyLimits: Sendable, Hashable {
    /// From accept to handshake completed (the PROXY header included).
    public var handshakeTimeout: Duration = .seconds(10)
    /// A connection with no data either way for this long is closed; nil: never.
    public var idleTimeout: Duration? = .seconds(300)
    /// A connection open this long is closed; nil: no limit.
    public var maxLifetime: Duration?
    /// Open connections (handshaking or not); further ones wait in the kernel's accept queue.
    public var maxConnections = 10_000
    /// Handshakes in progress at once: the CPU a flood can take.
    public var maxHandshakes = 256
    public var handshakeOverflow: HandshakeOverflowPolicy = .wait
    /// Handshakes per second from one client address; nil: unlimited.
    public var handshakeRatePerSource: Int?
    /// The built-in HTTP backend's largest request head.
    public var maxRequestBytes = 64 * 1024
    /// How long a backend connection may take to open.
    public var backendConnectTimeout: Duration = .seconds(5)
    /// How much of one side's data the proxy holds while the other side is not taking it.
    /// Reading stops above it (back-pressure), so a slow side never makes the proxy buffer more.
    public var writeBufferHighWater = 256 * 1024

    public init() {}
}

/// An address to listen on.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// The TLS configuration new connections start with; replaced as a whole by a reload, while open
/// connections keep the one they started with.
public final class TLSConfigurationBox: Sendable {
    private let current: Mutex<ServerConfiguration>
    public init(_ configuration: ServerConfiguration) { current = Mutex(configuration) }
    public var configuration: ServerConfiguration {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
}

/// One listener: its addresses, TLS configuration, backend and limits.
public struct ListenerSettings: Sendable {
    /// For logs and metrics.
    public var name: String
    public var addresses: [ListenAddress]
    public var tls: TLSConfigurationBox
    public var backend: BackendTarget
    /// Sends a PROXY header of this version to the backend first.
    public var proxyProtocol: ProxyHeaderVersionSetting?
    /// Each client connection starts with a PROXY header (v1 or v2) from a load balancer.
    public var acceptProxyProtocol = false
    /// Which versions that header may be in.
    public var acceptedProxyVersions: ProxyHeaderParser.AcceptedVersions = .either
    /// The load balancers whose PROXY headers are believed (empty: any peer): a connection from
    /// elsewhere is closed at accept, so that nobody else can claim a client address.
    public var trustedProxySources: [AddressPrefix] = []
    public var limits = ProxyLimits()

    public init(name: String, addresses: [ListenAddress], tls: TLSConfigurationBox, backend: BackendTarget) {
        self.name = name
        self.addresses = addresses
        self.tls = tls
        self.backend = backend
    }
}

/// PROXY protocol version sent to backends.
public enum ProxyHeaderVersionSetting: String, Sendable, Hashable {
    case v1, v2
}

/// An IP address prefix ("10.0.0.0/8", "2001:db8::/32", or one address).
public struct AddressPrefix: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let length: Int

    /// Parses "ADDRESS[/LENGTH]"; nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first else { return nil }
        if let v4 = IPv4Address(first) { bytes = v4.bytes } else if let v6 = IPv6Address(first) { bytes = v6.bytes } else { return nil }
        let maximum = bytes.count * 8
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...maximum).contains(n) else { return nil }
            length = n
        } else {
            length = maximum
        }
    }

    public var description: String {
        let address = bytes.count == 4 ? IPv4Address(bytes: bytes)?.description : IPv6Address(bytes: bytes)?.description
        return "\(address ?? "?")/\(length)"
    }

    /// Whether `address` (4 or 16 bytes) is in the prefix. An IPv4-mapped IPv6 address matches
    /// IPv4 prefixes.
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        if bytes.count == 4 && address.count == 16 && address.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            candidate = Array(address.suffix(4))
        }
        guard candidate.count == bytes.count else { return false }
        var remaining = length
        for i in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if candidate[i] & mask != bytes[i] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
