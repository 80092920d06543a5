import QSSLWire
import Testing

@testable import QSSL

/// Sessions for the resumption tests: every optional field set or not, both versions.
enum SessionSamples {
    static let epoch: UInt64 = 1_700_000_000_000

    static func identity(scheme: SignatureScheme? = .mldsa65) -> PeerIdentity {
        var identity = PeerIdentity(
            verifiedChain: [Array(repeating: 0x30, count: 700), [0x30, 0x82, 0x01], Array(0...255)],
            subject: "CN=server.example, O=Q-SSL, C=KR", subjectAlternativeNames: ["server.example", "192.0.2.1", "ünïcode.example"],
            keyAlgorithm: "ML-DSA-65 + ECDSA P-384 (composite)", certificateSignatureAlgorithm: "ML-DSA-65")
        identity.handshakeSignatureScheme = scheme
        identity.verifiedSignatureComponents = scheme == nil ? [] : ["ML-DSA-65", "ECDSA P-384"]
        return identity
    }

    static func state(
        version: ProtocolVersion = .tls13, createdAt: UInt64 = epoch, issuedAt: UInt64? = nil, lifetime: UInt32 = 7200,
        serverName: String? = "server.example", alpn: String? = "h2", identity: PeerIdentity? = identity(),
        secret: [UInt8] = Array(repeating: 0xA5, count: 48)
    ) -> SessionState {
        SessionState(
            version: version, cipherSuite: version == .tls13 ? .tlsAES256GCMSHA384 : CipherSuite(rawValue: 0xC030),
            group: .x25519MLKEM768, extendedMasterSecret: true, serverName: serverName, alpnProtocol: alpn,
            secret: SecretBytes(secret), createdAt: createdAt, issuedAt: issuedAt ?? createdAt, lifetimeSeconds: lifetime,
            ageAdd: version == .tls13 ? 0xDEAD_BEEF : 0, peerIdentity: identity)
    }

    static var variety: [SessionState] {
        [
            state(),
            state(version: .tls12, serverName: nil, alpn: nil, identity: nil),
            state(identity: identity(scheme: nil)),
            state(serverName: nil, alpn: "http/1.1", identity: nil),
            state(identity: PeerIdentity(verifiedChain: [], subject: "", subjectAlternativeNames: [], keyAlgorithm: "", certificateSignatureAlgorithm: "")),
            state(secret: [7]),
            state(createdAt: .max, issuedAt: .max, lifetime: .max)
        ]
    }
}

@Suite("Session encoding")
struct SessionEncodingTests {
    @Test("every field survives a round trip, with and without each optional", arguments: SessionSamples.variety)
    func roundTrip(state: SessionState) throws {
        let bytes = try state.encoded()
        #expect(bytes.first == SessionState.formatVersion)
        let decoded = try SessionState(decoding: bytes)
        #expect(decoded == state)
        #expect(decoded.peerIdentity == state.peerIdentity)
        #expect(decoded.secret.withUnsafeBytes { Array($0) } == state.secret.withUnsafeBytes { Array($0) })
        #expect(state.encodedCount == bytes.count, "the cache charges encodedCount; it must be the real size")
    }

    @Test("a state cut short at any length is refused")
    func truncated() throws {
        let bytes = try SessionSamples.state().encoded()
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self, "length \(length)") { try SessionState(decoding: Array(bytes.prefix(length))) }
        }
    }

    @Test("another format version is refused (1: sessions from before the trust binding)", arguments: [0 as UInt8, 1, 3, 0xFF])
    func otherVersion(version: UInt8) throws {
        var bytes = try SessionSamples.state().encoded()
        bytes[0] = version
        #expect(throws: DecodeError.self) { try SessionState(decoding: bytes) }
    }

    @Test("a byte after the state is refused")
    func trailing() throws {
        let bytes = try SessionSamples.state().encoded()
        #expect(throws: DecodeError.self) { try SessionState(decoding: bytes + [0]) }
    }

    @Test("a presence or boolean flag other than 0 or 1 is refused")
    func flags() throws {
        var bytes = try SessionSamples.state(serverName: nil, alpn: nil, identity: nil).encoded()
        // format, version, suite, group (7 bytes), then the EMS flag and the three option flags.
        for offset in [7, 8, 9] {
            var bad = bytes
            bad[offset] = 2
            #expect(throws: DecodeError.self, "offset \(offset)") { try SessionState(decoding: bad) }
        }
        bytes[bytes.count - 1] = 0x80  // the peer identity flag is last
        #expect(throws: DecodeError.self) { try SessionState(decoding: bytes) }
    }

    @Test("a server name that is not UTF-8 is refused")
    func notUTF8() throws {
        var bytes = try SessionSamples.state(serverName: "ab", alpn: nil, identity: nil).encoded()
        // flag at 8, length at 9–10, name at 11–12.
        bytes[11] = 0xC3
        bytes[12] = 0x28
        #expect(throws: DecodeError.self) { try SessionState(decoding: bytes) }
    }

    @Test("a length that runs past the end is refused, never trusted")
    func lengthPastEnd() throws {
        var bytes = try SessionSamples.state(serverName: "ab", alpn: nil, identity: nil).encoded()
        bytes[9] = 0xFF
        #expect(throws: DecodeError.self) { try SessionState(decoding: bytes) }
    }

    @Test(
        "any single corrupted byte is refused with a DecodeError or decodes to a state that encodes back to exactly those bytes (no second reading of one state)"
    )
    func corruptedBytes() throws {
        let bytes = try SessionSamples.state().encoded()
        var refused = 0
        var decoded = 0
        for position in bytes.indices {
            for value: UInt8 in [0x00, 0x01, 0x7F, 0xFF, bytes[position] ^ 0x01] where value != bytes[position] {
                var bad = bytes
                bad[position] = value
                do {
                    let state = try SessionState(decoding: bad)
                    decoded += 1
                    #expect(try state.encoded() == bad, "byte \(position) = \(value) decoded but does not encode back")
                } catch is DecodeError {
                    refused += 1
                } catch {
                    Issue.record("byte \(position) = \(value): \(error) is not a DecodeError")
                }
            }
        }
        // Both outcomes occur: lengths and tags are checked, opaque contents are carried.
        #expect(refused > 0 && decoded > 0, "refused \(refused), decoded \(decoded)")
    }

    @Test("a state that could not come back is not encoded: empty secret, empty server name or ALPN")
    func unencodable() {
        #expect(throws: EncodeError.self) { try SessionSamples.state(secret: []).encoded() }
        #expect(throws: EncodeError.self) { try SessionSamples.state(serverName: "").encoded() }
        #expect(throws: EncodeError.self) { try SessionSamples.state(alpn: "").encoded() }
        #expect(throws: EncodeError.self) { try SessionSamples.state(secret: Array(repeating: 1, count: 256)).encoded() }
    }

    @Test("a client session survives a round trip with a ticket, a session ID or both")
    func sessionRoundTrip() throws {
        let sessions = [
            TLSSession(state: SessionSamples.state(), ticket: Array(repeating: 9, count: 300), sessionID: [], receivedAt: 42),
            TLSSession(state: SessionSamples.state(version: .tls12, identity: nil), ticket: nil, sessionID: Array(repeating: 3, count: 32), receivedAt: .max),
            TLSSession(state: SessionSamples.state(version: .tls12), ticket: [], sessionID: [1], receivedAt: 0)
        ]
        for session in sessions {
            let bytes = try session.encoded()
            #expect(Array(bytes.prefix(8)) == Array("QSSLSESS".utf8))
            #expect(try TLSSession(decoding: bytes) == session)
        }
    }

    @Test("a malformed client session is refused: cut short, wrong magic or version, trailing byte, long session ID")
    func sessionMalformed() throws {
        let session = TLSSession(state: SessionSamples.state(version: .tls12), ticket: [1, 2, 3], sessionID: [5, 5], receivedAt: 7)
        let bytes = try session.encoded()
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self, "length \(length)") { try TLSSession(decoding: Array(bytes.prefix(length))) }
        }
        for (position, value) in [(0, UInt8(ascii: "X")), (8, 0), (8, 2)] {
            var bad = bytes
            bad[position] = value
            #expect(throws: DecodeError.self) { try TLSSession(decoding: bad) }
        }
        #expect(throws: DecodeError.self) { try TLSSession(decoding: bytes + [0]) }
        // The session ID sits before the final uint64: make it 33 bytes long.
        var long = Array(bytes.dropLast(8 + 3))
        long += [33] + Array(repeating: 5, count: 33) + Array(repeating: 0, count: 8)
        #expect(throws: DecodeError.self) { try TLSSession(decoding: long) }
        #expect(throws: EncodeError.self) {
            try TLSSession(state: session.state, ticket: nil, sessionID: Array(repeating: 1, count: 33), receivedAt: 0).encoded()
        }
        for position in bytes.indices {
            var bad = bytes
            bad[position] ^= 0xFF
            _ = try? TLSSession(decoding: bad)
        }
    }
}
