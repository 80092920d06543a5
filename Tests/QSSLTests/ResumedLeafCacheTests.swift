import Foundation
import Testing

@testable import QSSL
@testable import QSSLX509

@Suite("A resumed session's leaf is parsed once, and still checked against the clock every time")
struct ResumedLeafCacheTests {
    @Test("checking a session's peer again reads the leaf's validity from the cache; a copy with a later clock still refuses it as expired")
    func validityIsCachedNotTheVerdict() throws {
        let server = try serverConfig()
        let client = clientConfig { $0.versions = [.tls13] }
        let first = try runPair(client: client, server: server)
        let identity = try #require(first.clientEvents.lazy.compactMap(\.handshakeSummary).first?.peerIdentity)

        var verifier = X509CertificateVerifier(roots: sharedPKI.verifier.roots)
        verifier.now = { Date() }
        #expect(verifier.resumedLeaves.count == 0)
        try verifier.checkResumedPeer(identity, role: .server(name: "localhost"))
        try verifier.checkResumedPeer(identity, role: .server(name: "localhost"))
        #expect(verifier.resumedLeaves.count == 1, "one entry for one leaf, however often it is checked")

        // A copy shares the cache; the verdict is not cached: the clock decides each time.
        var later = verifier
        later.now = { Date.distantFuture }
        do throws(TLSError) {
            try later.checkResumedPeer(identity, role: .server(name: "localhost"))
            Issue.record("an expired leaf was admitted")
        } catch {
            #expect(error.code.certificateRejection == .expired, "\(error)")
        }
        var earlier = verifier
        earlier.now = { Date.distantPast }
        do throws(TLSError) {
            try earlier.checkResumedPeer(identity, role: .server(name: "localhost"))
            Issue.record("a leaf not yet valid was admitted")
        } catch {
            #expect(error.code.certificateRejection == .notYetValid, "\(error)")
        }
        #expect(verifier.resumedLeaves.count == 1)
    }

    @Test("the cache is bounded: when full it starts again, and a DER that does not parse is refused and not kept")
    func bounded() throws {
        let cache = ResumedLeafCache(capacity: 2)
        let certificates = [sharedPKI.verifier.roots[0].der, ClientPKI.otherCA.certificate.der, ClientPKI.ecdsa.chain[0]]
        _ = try cache.validity(of: certificates[0])
        _ = try cache.validity(of: certificates[1])
        #expect(cache.count == 2)
        #expect(throws: (any Error).self) { try cache.validity(of: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        #expect(cache.count == 2, "a failed parse is not kept")
        _ = try cache.validity(of: certificates[2])
        #expect(cache.count == 1, "full: it started again with the new entry")
        _ = try cache.validity(of: certificates[2])
        #expect(cache.count == 1)
    }
}
