import CoreMetrics
import Prometheus
import QSSL
import QSSLWire
import Synchronization

/// The proxy's metrics, through swift-metrics, kept in a Prometheus registry that the metrics
/// endpoint renders (`/metrics`). Metric objects are made once per label set and cached.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let openConnections: CoreMetrics.Gauge
    private let handshaking: CoreMetrics.Gauge
    private let handshakeDuration: CoreMetrics.Timer
    private let openCount = Mutex((connections: 0, handshakes: 0))

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["qssl_handshake_duration_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)
        ]
        self.factory = factory
        openConnections = Gauge(label: "qssl_connections_open", factory: factory)
        handshaking = Gauge(label: "qssl_handshakes_in_progress", factory: factory)
        handshakeDuration = CoreMetrics.Timer(label: "qssl_handshake_duration_seconds", factory: factory)
        openConnections.record(0)
        handshaking.record(0)
        count("qssl_backend_connect_failures_total", [], by: 0)
    }

    /// Adds 1 (or `by`) to the counter `name` with these labels.
    public func count(_ name: String, _ labels: [(String, String)], by amount: Int = 1) {
        let key = labels.isEmpty ? name : name + "|" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        let counter = counters.withLock { table -> CoreMetrics.Counter in
            if let c = table[key] { return c }
            let c = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            table[key] = c
            return c
        }
        if amount > 0 { counter.increment(by: amount) }
    }

    public func connectionOpened() { adjust(connections: 1) }
    public func connectionClosed() { adjust(connections: -1) }
    public func handshakeStarted() { adjust(handshakes: 1) }
    public func handshakeEnded() { adjust(handshakes: -1) }

    private func adjust(connections: Int = 0, handshakes: Int = 0) {
        // Recorded under the lock: two loops cannot leave an older value last.
        openCount.withLock { n in
            n.connections += connections
            n.handshakes += handshakes
            if connections != 0 { openConnections.record(n.connections) }
            if handshakes != 0 { handshaking.record(n.handshakes) }
        }
    }

    /// A completed handshake.
    public func handshakeCompleted(_ summary: HandshakeSummary, duration: Duration) {
        count(
            "qssl_handshakes_total",
            [
                ("version", summary.version.description), ("group", summary.group.description),
                ("post_quantum", summary.usedPostQuantumKeyExchange ? "true" : "false"),
                ("resumed", summary.resumed ? "true" : "false")
            ])
        handshakeDuration.recordNanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// A handshake that did not complete, by reason ("alert:bad_certificate sent", "timeout", …).
    public func handshakeFailed(reason: String) {
        count("qssl_handshake_failures_total", [("reason", reason)])
    }

    /// A limit acted: "handshake_timeout", "idle_timeout", "max_lifetime", "max_connections",
    /// "max_handshakes", "handshake_rate".
    public func limitActed(_ limit: String) {
        count("qssl_limit_actions_total", [("limit", limit)])
    }

    public func bytes(fromClient: Int, toClient: Int) {
        if fromClient > 0 { count("qssl_bytes_total", [("direction", "from_client")], by: fromClient) }
        if toClient > 0 { count("qssl_bytes_total", [("direction", "to_client")], by: toClient) }
    }

    public func backendConnectFailed() { count("qssl_backend_connect_failures_total", []) }

    /// The Prometheus text exposition of everything.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}
