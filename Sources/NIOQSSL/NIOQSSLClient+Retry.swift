import NIOCore
import NIOPosix
import QSSL

extension NIOQSSLClient {
    /// Connects; if the handshake fails for want of a common suite, group or scheme, connects
    /// once more with `configuration.widened(to: wider)` (seed §6.2), which keeps every security
    /// floor of `configuration`. Returns whether the retry was needed.
    public static func connect(
        host: String, port: Int, configuration: ClientConfiguration, serverName: String?,
        retryingWith wider: ClientConfiguration, timeout: TimeAmount = .seconds(10),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> (client: NIOQSSLClient, retried: Bool) {
        do {
            return (try await connect(host: host, port: port, configuration: configuration, serverName: serverName, timeout: timeout, group: group), false)
        } catch {
            guard let tls = Self.tlsError(error), ClientConfiguration.isRetryable(tls) else { throw error }
            let retry = configuration.widened(to: wider)
            return (try await connect(host: host, port: port, configuration: retry, serverName: serverName, timeout: timeout, group: group), true)
        }
    }

    /// The TLS error behind an error a connection threw, if it is one.
    public static func tlsError(_ error: Error) -> TLSError? {
        if let e = error as? TLSError { return e }
        if case .tls(let e)? = error as? NIOQSSLError { return e }
        return nil
    }
}
