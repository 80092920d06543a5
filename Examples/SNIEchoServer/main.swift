// A NIO echo server that picks its certificate by SNI and signs its handshakes in a background
// task, as it would with a key in an HSM. Run it, then the client example:
//
//     swift run SNIEchoServer 8443 example-root.pem &
//     swift run IdentityCheckingClient 8443 api.example.test example-root.pem
//
// The server makes a fresh hybrid PKI and writes its root to the given file for the client.

import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

/// A key whose signatures must not be made on the event loop (an HSM or a remote signer):
/// the handshake pauses, NIOQSSL runs `signAsynchronously` off the loop and resumes.
struct BackgroundSigningKey: SigningKey {
    let key: SwiftCryptoSigningKey
    var supportedSchemes: [SignatureScheme] { key.supportedSchemes }
    var isSynchronous: Bool { false }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] { try key.sign(message, scheme: scheme) }
    func signAsynchronously(_ message: [UInt8], scheme: SignatureScheme) async throws(TLSError) -> [UInt8] {
        // Stand-in for the round trip to a signing device.
        try? await Task.sleep(for: .milliseconds(2))
        return try key.sign(message, scheme: scheme)
    }
}

/// One configuration per served name, chosen from the ClientHello's server_name.
struct NameSelector: ServerConfigurationSelector {
    let byName: [String: ServerConfiguration]
    func select(for hello: ClientHelloSummary) throws(TLSError) -> ServerConfiguration {
        guard let name = hello.serverName, let configuration = byName[name] else {
            throw .incompatible(.unrecognizedServerName, hello.serverName ?? "no server_name")
        }
        return configuration
    }
}

final class Echo: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
}

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8443 : 8443
let rootFile = arguments.count > 2 ? arguments[2] : "example-root.pem"
let pki = try ExamplePKI.make()
try CertificateFiles.pem([pki.root.certificate]).write(toFile: rootFile, atomically: true, encoding: .utf8)
var byName: [String: ServerConfiguration] = [:]
for (name, leaf) in pki.leaves {
    var configuration = ServerConfiguration(
        provider: .swiftCrypto,
        certificates: [
            CertifiedKey(chain: [leaf.certificate.der, pki.root.certificate.der], key: BackgroundSigningKey(key: leaf.key))
        ])
    configuration.alpnProtocols = ["echo"]
    byName[name] = configuration
}
var configuration = byName.values.first!
configuration.configurationSelector = NameSelector(byName: byName)
let server = try await NIOQSSLServer.start(host: "127.0.0.1", port: port, configuration: configuration) { [Echo()] }
print("echo server on \(server.localAddress) for \(byName.keys.sorted().joined(separator: ", "))")
try await server.channel.closeFuture.get()
