import QSSLSwiftCrypto
import QSSLWire
import QSSLX509
import Testing

@testable import QSSL

/// The findings of the outside security review (issue 7), each provoked the way an attacker
/// would: an on-path proxy rewriting, dropping or injecting records, or a fake server.
@Suite("Security review: hostile peers")
struct SecurityReviewTests {
    static func established(tls12: Bool) throws -> PairOutcome {
        // No tickets: the post-handshake counts below are about the messages the tests send.
        let o = try runPair(client: clientConfig { if tls12 { $0.versions = [.tls12] } }, server: try serverConfig { $0.tls13TicketCount = 0 })
        try #require(o.client.isHandshakeComplete && o.server.isHandshakeComplete)
        return o
    }

    static let forgedCloseNotify: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00]

    /// Delivers `victim`'s alert to `peer` and returns what `peer` learnt.
    static func alertSeenBy(_ peer: TLSConnection, from victim: TLSConnection) -> AlertDescription? {
        do { _ = try peer.receive(victim.takeOutput()) } catch { return error.alertSentOrReceived }
        return nil
    }

    @Test(
        "a plaintext close_notify injected after the peer's first record was dropped is unexpected_message, never a clean close",
        arguments: [(victimIsClient: true, tls12: false), (false, false), (true, true), (false, true)])
    func forgedClose(victimIsClient: Bool, tls12: Bool) throws {
        let o = try Self.established(tls12: tls12)
        let (sender, victim) = victimIsClient ? (o.server, o.client) : (o.client, o.server)
        try sender.send(Array("hello".utf8))
        _ = sender.takeOutput()  // the attacker drops it
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try victim.receive(Self.forgedCloseNotify) }
        #expect(!victim.receivedCloseNotify)
        #expect(Self.alertSeenBy(sender, from: victim) == .unexpectedMessage)
    }

    @Test("the same after a KeyUpdate (new read keys, no protected record yet)", arguments: [true, false])
    func forgedCloseAfterKeyUpdate(victimIsClient: Bool) throws {
        let o = try Self.established(tls12: false)
        let (sender, victim) = victimIsClient ? (o.server, o.client) : (o.client, o.server)
        try sender.updateKeys(requestPeerUpdate: false)
        #expect(try victim.receive(sender.takeOutput()) == [.peerKeyUpdate])
        try sender.send(Array("after the update".utf8))
        _ = sender.takeOutput()
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try victim.receive(Self.forgedCloseNotify) }
        #expect(!victim.receivedCloseNotify)
        #expect(Self.alertSeenBy(sender, from: victim) == .unexpectedMessage)
    }

    @Test("a plaintext alert from a server rejecting the client's flight is still surfaced during the handshake")
    func plaintextAlertDuringHandshake() throws {
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig())
        _ = try server.receive(client.takeOutput())
        let flight = server.takeOutput()
        // The client has the server's flight up to and including its ServerHello only: it has
        // handshake read keys and no protected record under them yet.
        let serverHelloRecord = Array(flight.prefix(5 + (Int(flight[3]) << 8 | Int(flight[4]))))
        _ = try client.receive(serverHelloRecord)
        #expect(throws: TLSError(.alertReceived(.handshakeFailure))) { try client.receive([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]) }
    }

    /// The client's ClientHello, from its first record.
    static func clientHello(_ wire: [UInt8]) throws -> ClientHello {
        let length = Int(wire[3]) << 8 | Int(wire[4])
        return try HandshakeMessage(type: .clientHello, body: Array(wire[9..<(5 + length)])).decode(as: ClientHello.self)
    }

    /// Frames a handshake message into plaintext records of at most 2^14 bytes.
    static func records(_ message: HandshakeMessage, type: UInt8 = 0x16) -> [UInt8] {
        let bytes = message.encoded
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let chunk = bytes[i..<min(i + 16384, bytes.count)]
            out += [type, 0x03, 0x03, UInt8(chunk.count >> 8), UInt8(chunk.count & 0xFF)] + chunk
            i += chunk.count
        }
        return out
    }

    @Test("a HelloRetryRequest whose cookie cannot fit ClientHello2 is illegal_parameter, not a crash")
    func hugeCookie() throws {
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let hello = try Self.clientHello(client.takeOutput())
        var ext = ExtensionList()
        ext.append(.supportedVersions, [0x03, 0x04])
        ext.append(.cookie, try ExtensionBody.encodeCookie(Array(repeating: 0xAB, count: 65_000)))
        let hrr = ServerHello(
            random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: hello.legacySessionID,
            cipherSuite: .tlsAES256GCMSHA384, extensions: ext)
        #expect(throws: TLSError(.peerMisbehaved(.sentCookieTooLargeToEcho))) { try client.receive(Self.records(try HandshakeMessage(hrr))) }
        #expect(client.failure?.alert == .illegalParameter)
        // The alert is the only output: a plaintext fatal illegal_parameter.
        #expect(client.takeOutput().suffix(2) == [0x02, 47])
    }

    @Test("vectors too long for their length prefix are errors, not traps")
    func encoderOverflowThrows() throws {
        #expect(throws: EncodeError.self) { try ExtensionBody.encodeALPN([String(repeating: "a", count: 300)]) }
        #expect(throws: EncodeError.self) { try ExtensionBody.encodeCookie(Array(repeating: 1, count: 70_000)) }
        var w = ByteWriter()
        w.writeOpaque(.uint8(allowEmpty: false), Array(repeating: 0, count: 256))
        #expect(throws: EncodeError.self) { try w.finish() }
        let cert = CertificateMessage(certificates: [Array(repeating: 0, count: 1 << 24)])
        #expect(throws: EncodeError.self) { try HandshakeMessage(cert) }
        // A client configured with an ALPN name too long for its prefix fails cleanly.
        #expect(throws: TLSError.self) {
            try TLSConnection.client(configuration: clientConfig { $0.alpnProtocols = [String(repeating: "x", count: 256)] }, serverName: "localhost")
        }
    }

    @Test("a client without a server name is refused unless name checks are explicitly skipped")
    func serverNameRequired() throws {
        #expect(throws: TLSError.self) { try TLSConnection.client(configuration: clientConfig(), serverName: nil) }
        #expect(throws: TLSError.self) { try TLSConnection.client(configuration: clientConfig(), serverName: "") }
        let o = try runPair(client: clientConfig { $0.dangerouslySkipServerNameVerification = true }, server: try serverConfig(), serverName: nil)
        #expect(o.client.isHandshakeComplete)
        // With a name, the name is checked.
        let wrong = try runPair(client: clientConfig(), server: try serverConfig(), serverName: "other.example")
        #expect(wrong.clientError?.alert == .badCertificate)
    }

    @Test("renegotiation requests are refused a few times, then the peer is cut off")
    func renegotiationFlood() throws {
        let o = try Self.established(tls12: true)
        for i in 1...TLSConnection.maxRefusedRenegotiations {
            try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .helloRequest, body: []))
            #expect(try o.client.receive(o.server.takeOutput()).isEmpty, "request \(i)")
            #expect(!o.client.takeOutput().isEmpty, "no_renegotiation \(i)")
        }
        try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .helloRequest, body: []))
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.client.receive(o.server.takeOutput()) }
    }

    @Test("endless TLS 1.2 warning alerts or empty records end the connection", arguments: [true, false])
    func ignoredRecordFlood(warnings: Bool) throws {
        let o = try Self.established(tls12: warnings)
        for _ in 0..<TLSConnection.maxConsecutiveIgnoredRecords {
            try o.server.sendRawRecordForTesting(warnings ? .alert : .applicationData, warnings ? [1, 100] : [])
        }
        #expect(try o.client.receive(o.server.takeOutput()) == [])
        try o.server.sendRawRecordForTesting(warnings ? .alert : .applicationData, warnings ? [1, 100] : [])
        #expect(throws: TLSError(.peerMisbehaved(.sentTooManyEmptyRecordsOrWarnings))) { try o.client.receive(o.server.takeOutput()) }
        #expect(Self.alertSeenBy(o.server, from: o.client) == .unexpectedMessage)
    }

    @Test("data between ignored records resets the count")
    func ignoredRecordsWithData() throws {
        let o = try Self.established(tls12: false)
        for _ in 0..<(3 * TLSConnection.maxConsecutiveIgnoredRecords) {
            try o.server.sendRawRecordForTesting(.applicationData, [])
            try o.server.sendRawRecordForTesting(.applicationData, [7])
        }
        #expect(try o.client.receive(o.server.takeOutput()).count == 3 * TLSConnection.maxConsecutiveIgnoredRecords)
    }

    @Test(
        "no alert, CCS or application data between the fragments of a handshake message",
        arguments: [[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00], [0x14, 0x03, 0x03, 0x00, 0x01, 0x01], [0x17, 0x03, 0x03, 0x00, 0x01, 0x41]] as [[UInt8]])
    func interleaving(intruder: [UInt8]) throws {
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig())
        let wire = client.takeOutput()
        let length = Int(wire[3]) << 8 | Int(wire[4])
        let body = Array(wire[5..<(5 + length)])
        let half = body.count / 2
        let split =
            [0x16, 0x03, 0x01, UInt8(half >> 8), UInt8(half & 0xFF)] + body[..<half] + intruder
            + [0x16, 0x03, 0x01, UInt8((body.count - half) >> 8), UInt8((body.count - half) & 0xFF)] + body[half...]
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try server.receive(split) }
        #expect(server.failure?.alert == .unexpectedMessage)
        #expect(!server.receivedCloseNotify)
    }

    @Test("finding 11 / conformance: KeyUpdate with request_update other than 0 or 1 → illegal_parameter on both sides")
    func keyUpdateBadValue() throws {
        let o = try Self.established(tls12: false)
        try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .keyUpdate, body: [2]))
        #expect(throws: TLSError.self) { try o.client.receive(o.server.takeOutput()) }
        #expect(o.client.failure?.alert == .illegalParameter)
        #expect(Self.alertSeenBy(o.server, from: o.client) == .illegalParameter)
    }

    /// Rewrites the handshake message of `type` inside a plaintext flight (records may coalesce
    /// several messages), reframing the flight.
    static func rewritePlaintextMessage(_ wire: [UInt8], type: HandshakeType, _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var handshake: [UInt8] = []
        var rest: [UInt8] = []
        var i = 0
        while i + 5 <= wire.count {
            let length = Int(wire[i + 3]) << 8 | Int(wire[i + 4])
            if wire[i] == 0x16 && rest.isEmpty { handshake += wire[(i + 5)..<(i + 5 + length)] } else { rest += wire[i..<(i + 5 + length)] }
            i += 5 + length
        }
        var messages: [HandshakeMessage] = []
        var j = 0
        while j < handshake.count {
            let length = Int(handshake[j + 1]) << 16 | Int(handshake[j + 2]) << 8 | Int(handshake[j + 3])
            var m = HandshakeMessage(type: HandshakeType(rawValue: handshake[j]), body: Array(handshake[(j + 4)..<(j + 4 + length)]))
            if m.type == type { change(&m.body) }
            messages.append(m)
            j += 4 + length
        }
        return messages.flatMap { records($0) } + rest
    }

    @Test("a ServerKeyExchange curve_type other than named_curve → illegal_parameter on both sides")
    func serverKeyExchangeCurveType() throws {
        var first = true
        let o = try runPair(client: clientConfig { $0.versions = [.tls12] }, server: try serverConfig()) { toServer, bytes in
            guard !toServer, first else { return bytes }
            first = false
            return Self.rewritePlaintextMessage(bytes, type: .serverKeyExchange) { $0[0] = 1 }
        }
        #expect(o.clientError?.alert == .illegalParameter)
        #expect(o.serverError?.code == .alertReceived(.illegalParameter))
    }

    @Test(
        "conformance: a zero-length alert record → unexpected_message (application keys, with and without padding; plaintext)",
        arguments: [(tls12: false, padding: 0), (false, 5), (true, 0)])
    func zeroLengthAlert(tls12: Bool, padding: Int) throws {
        let o = try Self.established(tls12: tls12)
        try o.server.sendRawRecordForTesting(.alert, [], padding: padding)
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.client.receive(o.server.takeOutput()) }
        #expect(Self.alertSeenBy(o.server, from: o.client) == .unexpectedMessage)
        // In plaintext, before any keys.
        let server = try TLSConnection.server(configuration: try serverConfig())
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try server.receive([0x15, 0x03, 0x03, 0x00, 0x00]) }
    }

    @Test("conformance: a Finished of the wrong length is decode_error before any MAC comparison")
    func finishedLength() throws {
        let expected = Array(repeating: UInt8(1), count: 48)
        for received in [[], expected + [0], Array(expected.prefix(32))] {
            #expect(throws: TLSError.decode(.lengthOutOfRange(field: "Finished.verify_data", length: received.count))) {
                try FinishedVerified(expected: expected, received: received)
            }
        }
        #expect(throws: TLSError(.peerMisbehaved(.sentWrongFinished))) { try FinishedVerified(expected: expected, received: Array(repeating: 2, count: 48)) }
        #expect(TLSError.decode(.lengthOutOfRange(field: "x", length: 0)).alert == .decodeError)
    }

    @Test(
        "conformance: a ClientHello with legacy_version SSL 3.0 or lower → protocol_version, even offering TLS 1.3",
        arguments: [0x0300, 0x0200, 0x0000] as [UInt16])
    func oldLegacyVersion(version: UInt16) throws {
        try expectServerAlert(.protocolVersion) { $0.legacyVersion = ProtocolVersion(rawValue: version) }
    }

    @Test("review 2: KeyUpdates asking for an update are answered a bounded number of times without application data")
    func keyUpdateFlood() throws {
        let o = try Self.established(tls12: false)
        for _ in 0..<TLSConnection.maxPostHandshakeMessagesBetweenData {
            try o.server.updateKeys(requestPeerUpdate: true)
        }
        #expect(try o.client.receive(o.server.takeOutput()).count == TLSConnection.maxPostHandshakeMessagesBetweenData)
        _ = try o.server.receive(o.client.takeOutput())  // the client's answers
        try o.server.send([1])
        #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData([1])], "data resets the count")
        for _ in 0...TLSConnection.maxPostHandshakeMessagesBetweenData { try o.server.updateKeys(requestPeerUpdate: true) }
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.client.receive(o.server.takeOutput()) }
    }

    @Test("review 3: renegotiation requests far apart, with data between them, do not end the connection")
    func renegotiationWithData() throws {
        let o = try Self.established(tls12: true)
        for i in 0..<(2 * TLSConnection.maxRefusedRenegotiations) {
            try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .helloRequest, body: []))
            try o.server.send([UInt8(i)])
            #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData([UInt8(i)])])
        }
    }

    @Test("review 4: close_notify before the handshake completed is a failed handshake, not a clean close")
    func closeNotifyDuringHandshake() throws {
        let server = try TLSConnection.server(configuration: try serverConfig())
        #expect(throws: TLSError(.alertReceived(.closeNotify))) { try server.receive(Self.forgedCloseNotify) }
        #expect(!server.receivedCloseNotify)
        #expect(server.failure != nil)
    }

    @Test("review 10: a plaintext alert after the first protected handshake record is refused")
    func plaintextAlertAfterProtectedHandshakeRecord() throws {
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig())
        _ = try server.receive(client.takeOutput())
        // The server's flight: ServerHello, (CCS,) then protected records. Deliver up to and
        // including the first protected record (EncryptedExtensions).
        let flight = server.takeOutput()
        var i = 0
        var delivered: [UInt8] = []
        while i < flight.count {
            let length = Int(flight[i + 3]) << 8 | Int(flight[i + 4])
            delivered += flight[i..<(i + 5 + length)]
            let protected = flight[i] == 0x17
            i += 5 + length
            if protected { break }
        }
        _ = try client.receive(delivered)
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try client.receive([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]) }
    }

    @Test("review 8: compatibility CCS records are ignored, but not without end")
    func ccsFlood() throws {
        let server = try TLSConnection.server(configuration: try serverConfig())
        let client = try TLSConnection.client(configuration: clientConfig(), serverName: "localhost")
        _ = try server.receive(client.takeOutput())
        _ = server.takeOutput()
        let ccs: [UInt8] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
        #expect(throws: TLSError(.peerMisbehaved(.sentTooManyEmptyRecordsOrWarnings))) {
            try server.receive(Array((0...TLSConnection.maxConsecutiveIgnoredRecords).map { _ in ccs }.joined()))
        }
    }

    @Test(
        "fuzzer find: data sent before the handshake completed goes out before a close_notify asked for meanwhile",
        arguments: [false, true])
    func dataBeforeCloseNotify(tls12: Bool) throws {
        let client = try TLSConnection.client(configuration: clientConfig { if tls12 { $0.versions = [.tls12] } }, serverName: "localhost")
        let server = try TLSConnection.server(configuration: try serverConfig())
        try client.send([0x41])
        client.close()
        var serverEvents: [TLSEvent] = []
        for _ in 0..<4 {
            serverEvents += try server.receive(client.takeOutput())
            _ = try? client.receive(server.takeOutput())
        }
        let data = serverEvents.firstIndex(of: .applicationData([0x41]))
        let close = serverEvents.firstIndex(of: .closeNotify)
        #expect(data != nil && close != nil && data! < close!, "\(serverEvents)")
    }

    @Test("updateKeys on TLS 1.2 is misuse that leaves the connection usable; on a failed connection it answers the failure")
    func updateKeysMisuse() throws {
        let o = try Self.established(tls12: true)
        #expect(throws: TLSError.misuse("KeyUpdate exists only in TLS 1.3")) { try o.client.updateKeys(requestPeerUpdate: false) }
        #expect(o.client.failure == nil)
        try o.client.send([1])
        #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData([1])])
        let server = try TLSConnection.server(configuration: try serverConfig())
        _ = try? server.receive([0x63, 0x03, 0x03, 0x00, 0x01, 0x00])
        #expect(throws: TLSError(.peerMisbehaved(.sentRecordWithInvalidContentType))) { try server.updateKeys(requestPeerUpdate: false) }
    }
}

@Suite("Replies a peer's post-handshake messages cause are bounded by this end's own data")
struct PeerCausedReplyTests {
    /// Whether `victim` queued anything (a reply) since its output was last taken.
    private static func replied(_ victim: TLSConnection) -> Bool { !victim.takeOutput().isEmpty }

    @Test("KeyUpdates asking for an update, each batch followed by a byte of data, are answered once until this end sends data")
    func keyUpdateRequestsWithDataBetween() throws {
        let o = try SecurityReviewTests.established(tls12: false)
        for batch in 0..<4 {
            for _ in 0..<5 { try o.server.updateKeys(requestPeerUpdate: true) }
            try o.server.send([UInt8(batch)])
            let events = try o.client.receive(o.server.takeOutput())
            #expect(events.last == .applicationData([UInt8(batch)]))
            let reply = o.client.takeOutput()
            #expect(!reply.isEmpty == (batch == 0), "batch \(batch): one KeyUpdate answers them all until the client sends data")
            #expect(try o.server.receive(reply) == (batch == 0 ? [.peerKeyUpdate] : []))
        }
        // The server's read keys follow the one answer; the client's data after it reads fine.
        try o.client.send([9])
        #expect(try o.server.receive(o.client.takeOutput()).contains(.applicationData([9])))
        // Having sent data, the client answers the next request again.
        try o.server.updateKeys(requestPeerUpdate: true)
        _ = try o.client.receive(o.server.takeOutput())
        try o.client.send([10])
        #expect(try o.server.receive(o.client.takeOutput()) == [.peerKeyUpdate, .applicationData([10])])
    }

    @Test("after this end's close_notify, a KeyUpdate asking for an update or a renegotiation gets no answer", arguments: [true, false])
    func nothingAfterCloseNotify(tls12: Bool) throws {
        let o = try SecurityReviewTests.established(tls12: tls12)
        o.client.close()
        _ = try o.server.receive(o.client.takeOutput())
        if tls12 {
            try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .helloRequest, body: []))
        } else {
            try o.server.updateKeys(requestPeerUpdate: true)
        }
        try o.server.send([7])
        #expect(try o.client.receive(o.server.takeOutput()).contains(.applicationData([7])), "the server's data still reads")
        #expect(o.client.takeOutput().isEmpty, "an answer after close_notify")
    }

    @Test("a renegotiating client that slips data between its ClientHellos is refused a few times, then cut off")
    func renegotiationWithDataFromThePeerOnly() throws {
        let o = try SecurityReviewTests.established(tls12: true)
        let hello = HandshakeMessage(type: .clientHello, body: Array(repeating: 0, count: 40))
        for i in 0..<TLSConnection.maxRefusedRenegotiations {
            try o.client.sendRawHandshakeForTesting(hello)
            try o.client.send([UInt8(i)])
            #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData([UInt8(i)])])
            #expect(Self.replied(o.server), "no_renegotiation \(i)")
        }
        try o.client.sendRawHandshakeForTesting(hello)
        #expect(throws: TLSError(.peerMisbehaved(.sentUnexpectedMessage))) { try o.server.receive(o.client.takeOutput()) }
    }

    @Test("with data both ways between them, renegotiation requests are refused every time")
    func renegotiationWithDataBothWays() throws {
        let o = try SecurityReviewTests.established(tls12: true)
        let hello = HandshakeMessage(type: .clientHello, body: Array(repeating: 0, count: 40))
        for i in 0..<(2 * TLSConnection.maxRefusedRenegotiations) {
            try o.client.sendRawHandshakeForTesting(hello)
            try o.client.send([UInt8(i)])
            #expect(try o.server.receive(o.client.takeOutput()) == [.applicationData([UInt8(i)])])
            try o.server.send([UInt8(i)])
            #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData([UInt8(i)])], "refusal \(i)")
        }
    }

    @Test("HelloRequests beyond the refusals, with data between them, are ignored by a client")
    func helloRequestsIgnored() throws {
        let o = try SecurityReviewTests.established(tls12: true)
        for i in 0..<(2 * TLSConnection.maxRefusedRenegotiations) {
            try o.server.sendRawHandshakeForTesting(HandshakeMessage(type: .helloRequest, body: []))
            try o.server.send([UInt8(i)])
            #expect(try o.client.receive(o.server.takeOutput()) == [.applicationData([UInt8(i)])])
            #expect(Self.replied(o.client) == (i < TLSConnection.maxRefusedRenegotiations), "request \(i)")
        }
    }
}
