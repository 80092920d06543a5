import Logging
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLProxyProtocol
import QSSLWire
import QSSLX509
import X509

// ProxyConnection: the backend side (connecting, the PROXY header, bytes and closes from the backend).

extension ProxyConnection {
    // MARK: - Backend side

    func connectBackend(_ summary: HandshakeSummary) {
        backendConnecting = true
        let bootstrap = ClientBootstrap(group: channel.eventLoop)
            .connectTimeout(TimeAmount(limits.backendConnectTimeout))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: .init(low: limits.writeBufferHighWater / 2, high: limits.writeBufferHighWater))
            .channelInitializer { [self] backendChannel in
                backendChannel.eventLoop.makeCompletedFuture {
                    try backendChannel.pipeline.syncOperations.addHandler(BackendHandler(connection: self))
                }
            }
        let connecting: EventLoopFuture<Channel>
        switch runtime.settings.backend {
        case .tcp(let host, let port): connecting = bootstrap.connect(host: host, port: port)
        case .unix(let path): connecting = bootstrap.connect(unixDomainSocketPath: path)
        case .echo, .http: return
        }
        connecting.whenComplete { [self] result in
            backendConnecting = false
            switch result {
            case .failure(let error):
                runtime.metrics?.backendConnectFailed()
                end("backend:connect to \(runtime.settings.backend) failed: \(describeNetworkError(error))")
                runtime.logger.warning(
                    "backend unavailable",
                    metadata: [
                        "backend": .string("\(runtime.settings.backend)"),
                        "error": .string(describeNetworkError(error)),
                        "client": .string(record.client)
                    ])
                closeAll()
            case .success(let backendChannel):
                guard !finished else {
                    backendChannel.close(promise: nil)
                    return
                }
                backend = backendChannel
                if let version = runtime.settings.proxyProtocol {
                    do {
                        let header = try proxyHeader(summary, withTLVs: version == .v2).encode(version == .v1 ? .v1 : .v2)
                        backendChannel.write(backendChannel.allocator.buffer(bytes: header), promise: nil)
                    } catch {
                        end("backend:cannot write the PROXY header: \(error)")
                        closeAll()
                        return
                    }
                }
                for buffer in toBackend { backendChannel.write(buffer, promise: nil) }
                toBackend = []
                toBackendBytes = 0
                backendChannel.flush()
                if clientInputClosed {
                    backendChannel.close(mode: .output, promise: nil)
                } else if backendChannel.isWritable {
                    setReading(true)
                }
            }
        }
    }

    func fromBackend(_ buffer: ByteBuffer) {
        lastActivity = .now()
        writeToClient(buffer, flush: false)
    }

    /// The backend finished sending: the client gets close_notify (and our TCP FIN), and may
    /// still send until it closes too.
    func backendClosedInput() {
        backendReadComplete()  // what came before the EOF goes first
        backendInputClosed = true
        guard let front, !clientOutputClosed else { return }
        clientOutputClosed = true
        if clientInputClosed {
            closeAll()
        } else {
            front.close(mode: .output, promise: nil)
        }
    }

    func backendWritabilityChanged(_ writable: Bool) {
        guard !clientInputClosed else { return }
        setReading(writable)
    }

    func backendError(_ error: Error) {
        end("backend:\(describeNetworkError(error))")
    }

    func backendInactive() {
        backend = nil
        if !backendInputClosed && !clientInputClosed {
            // Gone without an orderly EOF (reset): the client is told with close_notify.
            end("backend:connection lost")
        }
        closeAll()
    }
}
