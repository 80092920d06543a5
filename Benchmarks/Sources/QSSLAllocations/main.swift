// Allocations per full handshake (client + server in one process, no sockets) and per 16 KiB
// record (seal + open), counted by the ordo-one malloc interposer. Run through
// `Benchmarks/allocations`, which preloads the interposer; without it every count reads 0.
import MallocInterposerSwift
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import QSSLX509

struct Failure: Error, CustomStringConvertible { let description: String }

func handshake(client: ClientConfiguration, server: ServerConfiguration) throws -> (TLSConnection, TLSConnection) {
    let c = try TLSConnection.client(configuration: client, serverName: "localhost")
    let s = try TLSConnection.server(configuration: server)
    while !(c.isHandshakeComplete && s.isHandshakeComplete) {
        let a = c.takeOutput()
        if !a.isEmpty { _ = try s.receive(a) }
        let b = s.takeOutput()
        if !b.isEmpty { _ = try c.receive(b) }
        if a.isEmpty && b.isEmpty { throw Failure(description: "handshake stalled") }
    }
    let tickets = s.takeOutput()  // TLS 1.3 tickets follow the handshake
    if !tickets.isEmpty { _ = try c.receive(tickets) }
    return (c, s)
}

/// Counts allocations over `count` runs of `body` (after two warm-up runs) and prints them per run.
func count(_ label: String, _ count: Int, _ body: () throws -> Void) rethrows {
    try body()
    try body()
    MallocInterposerSwift.initialize()
    MallocInterposerSwift.hook()
    for _ in 0..<count { try body() }
    MallocInterposerSwift.unhook()
    let stats = MallocInterposerSwift.getStatistics()
    let n = Double(count)
    print(
        label.padding(toLength: 66, withPad: " ", startingAt: 0)
            + String(format: " %9.1f mallocs  %11.0f bytes  (%d runs)", Double(stats.mallocCount) / n, Double(stats.mallocBytesCount) / n, count))
}

let arguments = CommandLine.arguments.dropFirst()
let runs = arguments.first.flatMap { Int($0) } ?? 50
let pki = try DemoPKI()

for group in [NamedGroup.secp384r1MLKEM1024, .x25519] {
    var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
    server.groups = [group]
    var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
    client.sessionStore = nil
    client.versions = [.tls13]
    client.groups = [group]
    client.keyShareGroups = [group]
    try count("TLS 1.3 full handshake, \(group), ECDSA P-384", runs) { _ = try handshake(client: client, server: server) }
}
do {
    var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
    server.versions = [.tls12]
    var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
    client.sessionStore = nil
    client.versions = [.tls12]
    try count("TLS 1.2 full handshake, hybrid suite, ECDSA P-384", runs) { _ = try handshake(client: client, server: server) }
}
for suite in TLS13CipherSuite.all {
    var server = ServerConfiguration(provider: .swiftCrypto, certificates: [try pki.serverCertifiedKey])
    server.cipherSuites = [suite]
    var client = ClientConfiguration(provider: .swiftCrypto, verifier: pki.verifier)
    client.sessionStore = nil
    client.cipherSuites = [suite]
    let (c, s) = try handshake(client: client, server: server)
    let chunk = [UInt8](repeating: 0x5A, count: 1 << 14)
    try count("16 KiB record, send + takeOutput + receive, \(suite.suite)", runs * 20) {
        try c.send(chunk)
        _ = try s.receive(c.takeOutput())
    }
}
