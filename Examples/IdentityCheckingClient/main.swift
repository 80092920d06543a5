// A client that connects over hybrid TLS and checks who answered before it sends anything:
// the verified chain, the name in the certificate, and that both halves of a composite
// (ML-DSA-65 + ECDSA P-384) handshake signature verified.
//
//     swift run IdentityCheckingClient 8443 api.example.test example-root.pem

import Foundation
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8443 : 8443
let name = arguments.count > 2 ? arguments[2] : "api.example.test"
let rootFile = arguments.count > 3 ? arguments[3] : "example-root.pem"

var configuration = ClientConfiguration(
    provider: .swiftCrypto, verifier: try X509CertificateVerifier(rootsPEM: String(contentsOfFile: rootFile, encoding: .utf8)))
configuration.requirePostQuantum = true  // no classical-only key exchange
configuration.alpnProtocols = ["echo"]
let client: NIOQSSLClient
do {
    client = try await NIOQSSLClient.connect(host: "127.0.0.1", port: port, configuration: configuration, serverName: name)
} catch {
    print("handshake failed: \(error)")  // e.g. "received alert unrecognized_name(112)" for a name the server lacks
    exit(1)
}

guard let identity = client.summary.peerIdentity else { fatalError("a verified server always has an identity") }
print("connected with \(client.summary.group) to \(identity.subject)")
print("  names: \(identity.subjectAlternativeNames.joined(separator: ", "))")
print("  key: \(identity.keyAlgorithm); chain of \(identity.verifiedChain.count) certificates")
print("  handshake signature: \(identity.handshakeSignatureScheme.map { "\($0)" } ?? "-"), verified: \(identity.verifiedSignatureComponents)")
guard identity.subjectAlternativeNames.contains("DNS:\(name)"),
    identity.verifiedSignatureComponents == ["ML-DSA-65", "ECDSA-P384"]
else {
    print("refusing: not the hybrid identity we expected")
    await client.close()
    exit(1)
}
try await client.send(Array("hello".utf8))
print("echoed: \(String(decoding: try await client.read(expectedBytes: 5), as: UTF8.self))")
await client.close()
