// A traced connection (`recordTrace`, as `qssl trace` and the timing tests use) keeps a bounded
// trace whatever the peer sends after the handshake.

import QSSL
import QSSLTestSupport
import Testing

@Suite("Handshake trace: bounded after the handshake")
struct TraceBoundTests {
    @Test("a peer alternating application data and KeyUpdate cannot make a traced server's trace grow without end")
    func keyUpdatesDoNotGrowTheTrace() throws {
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig(), recordTrace: true)
        var clientEvents: [TLSEvent] = []
        var serverEvents: [TLSEvent] = []
        for _ in 0..<10 {
            let toServer = client.takeOutput()
            if !toServer.isEmpty {
                serverEvents += try server.receive(toServer)
                try resumeWhilePaused(server, &serverEvents)
            }
            let toClient = server.takeOutput()
            if !toClient.isEmpty {
                clientEvents += try client.receive(toClient)
                try resumeWhilePaused(client, &clientEvents)
            }
            if toServer.isEmpty && toClient.isEmpty { break }
        }
        #expect(server.isHandshakeComplete && client.isHandshakeComplete)
        let afterHandshake = server.trace.count
        #expect(afterHandshake > 0)
        // Data resets the post-handshake message budget, so the server keeps answering.
        for round in 0..<1500 {
            try client.send([UInt8(truncatingIfNeeded: round)])
            try client.updateKeys(requestPeerUpdate: false)
            _ = try server.receive(client.takeOutput())
        }
        #expect(server.trace.count <= 1024, "the trace grew to \(server.trace.count) entries")
        // The first post-handshake messages are still traced.
        #expect(server.trace.count > afterHandshake)
    }
}
