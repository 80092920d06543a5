import Logging
import NIOCore
import Synchronization
import Testing

@testable import QSSL
import QSSLWire
@testable import QSSLProxy

@Suite("Access log: the record's own line")
struct AccessLogRecordLineTests {
    /// Lines a LineLogHandler wrote.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func sink(_ line: String) { lines.withLock { $0.append(line) } }
    }

    static func records() -> [AccessLogRecord] {
        var bare = AccessLogRecord(listener: "public", client: "192.0.2.7:51000")
        bare.end = "timeout:handshake"
        var full = AccessLogRecord(listener: "api", client: "[2001:db8::1]:443")
        full.serverName = "shop.example"
        full.summary = HandshakeSummary(
            version: .tls13, cipherSuite: .tlsAES256GCMSHA384, group: .secp384r1MLKEM1024, peerSignatureScheme: nil, localSignatureScheme: nil,
            helloRetryRequest: false, resumed: true, peerCertificates: [], alpnProtocol: "h2", serverName: "shop.example")
        full.bytesFromClient = 1234
        full.bytesToClient = 98765
        full.duration = .milliseconds(1500)
        full.end = "alert:bad_record_mac \"sent\"\nforged=1"
        return [bare, full]
    }

    @Test("the record's line is the one the general log path writes for its metadata, in both formats, keys in order")
    func sameLineAsTheGeneralPath() {
        for format in [LogFormat.text, .json] {
            for record in Self.records() {
                #expect(record.sortedEntries.map(\.key) == record.sortedEntries.map(\.key).sorted())
                let direct = Lines()
                LineLogHandler(format: format, sink: { direct.sink($0) }).logAccess("connection", record)
                let general = Lines()
                Logger(label: "test") { _ in LineLogHandler(format: format, sink: { general.sink($0) }) }
                    .info("connection", metadata: record.metadata)
                #expect(direct.all.count == 1)
                #expect(direct.all == general.all)
                #expect(direct.all.first.map { !$0.utf8.contains(0x0A) } == true)
            }
        }
    }

    @Test("with metadata of the handler's own, the record's line carries it too")
    func handlerMetadataIsKept() {
        let lines = Lines()
        var handler = LineLogHandler(format: .text, sink: { lines.sink($0) })
        handler[metadataKey: "node"] = "n1"
        handler.logAccess("connection", Self.records()[0])
        #expect(lines.all.count == 1)
        #expect(lines.all.first?.contains(" node=n1 ") == true)
    }

    @Test("client addresses are written as the access log always wrote them: a.b.c.d:port, [v6]:port")
    func addresses() throws {
        for (ip, port, text) in [
            ("192.0.2.7", 51000, "192.0.2.7:51000"), ("0.0.0.0", 0, "0.0.0.0:0"), ("255.255.255.255", 65535, "255.255.255.255:65535"),
            ("10.0.0.1", 443, "10.0.0.1:443"), ("2001:db8::1", 443, "[2001:db8::1]:443"), ("::1", 8443, "[::1]:8443")
        ] {
            #expect(describe(try SocketAddress(ipAddress: ip, port: port)) == text)
        }
        #expect(describe(nil) == "?")
    }
}
