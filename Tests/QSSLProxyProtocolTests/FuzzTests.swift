import QSSLProxyProtocol
import Testing

/// Random, truncated and mutated inputs: the parser must never trap, and what it says must be
/// consistent (a header's `consumed` is within the input; a complete header stays the same when
/// more bytes follow; any prefix of an accepted header is `.needMoreData`).
@Suite("Fuzz: never trap, stay consistent")
struct FuzzTests {
    static func seeds() throws -> [[UInt8]] {
        let ssl = try ProxyTLV.ssl(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", clientCertificate: .presented(verified: true), commonName: "c")
        let qssl = try ProxyTLV.qssl(.init(groupCodePoint: 0x11EC, groupName: "X25519MLKEM768", postQuantum: true, resumed: true))
        return [
            try ProxyHeader(transport: sampleTCP4).encodeV1(),
            try ProxyHeader(transport: sampleTCP6).encodeV1(),
            ascii("PROXY UNKNOWN\r\n"),
            try ProxyHeader(transport: sampleTCP4, tlvs: [ssl, qssl]).encodeV2(addingChecksum: true),
            try ProxyHeader(transport: sampleTCP6, tlvs: [.authority("example.com"), .noop(count: 2)]).encodeV2(),
            try ProxyHeader(transport: .unix(source: ascii("/a"), destination: ascii("/b")), tlvs: [ssl]).encodeV2(),
            try ProxyHeader.local(tlvs: [qssl]).encodeV2(addingChecksum: true),
            try ProxyHeader(transport: .unspecified, tlvs: [ProxyTLV(type: 0xE5, value: [1, 2, 3])]).encodeV2()
        ]
    }

    /// Parses `input` and checks the invariants; returns whether a header came out.
    @discardableResult
    static func check(_ input: [UInt8], _ parser: ProxyHeaderParser) -> Bool {
        let result: ProxyHeaderParser.ParseResult
        do {
            result = try parser.parse(input)
        } catch {
            #expect(!error.message.isEmpty)
            return false
        }
        guard case .header(let header, let version, let consumed) = result else { return false }
        #expect(consumed > 0 && consumed <= input.count)
        // The same header, whatever follows it.
        #expect((try? parser.parse(Array(input[..<consumed]) + [0x16, 0x03])) == result)
        // Whatever parsed re-encodes and parses back to the same header (v2 always; v1 without TLVs).
        if let again = try? header.encode(version) {
            if case .header(let h2, _, _)? = try? parser.parse(again) {
                // (A checksum that was not verified is recomputed on re-encoding.)
                func comparable(_ h: ProxyHeader) -> ProxyHeader {
                    var h = h
                    if !parser.verifiesChecksum { h.tlvs.removeAll { $0.type == ProxyTLV.crc32cType } }
                    return h
                }
                if version == .v2 || header.command == .proxy { #expect(comparable(h2) == comparable(header)) }
            } else {
                Issue.record("re-encoded header does not parse: \(again)")
            }
        }
        return true
    }

    @Test("truncations of valid headers are needMoreData; the full header parses")
    func truncations() throws {
        let parser = ProxyHeaderParser()
        for seed in try Self.seeds() {
            for n in 0..<seed.count { #expect((try? parser.parse(seed[..<n])) == .needMoreData) }
            #expect(Self.check(seed, parser))
        }
    }

    @Test("mutated valid headers never trap", arguments: [UInt64(1), 2, 3, 4])
    func mutations(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let seeds = try Self.seeds()
        let parsers = [
            ProxyHeaderParser(), ProxyHeaderParser(accepting: .v1), ProxyHeaderParser(accepting: .v2, maximumHeaderLength: 64),
            ProxyHeaderParser(verifiesChecksum: false)
        ]
        for _ in 0..<3000 {
            var input = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0:  // flip bits
                    let i = Int.random(in: 0..<input.count, using: &rng)
                    input[i] ^= UInt8.random(in: 1...255, using: &rng)
                case 1:  // truncate
                    input = Array(input.prefix(Int.random(in: 0...input.count, using: &rng)))
                case 2:  // insert random bytes
                    let at = Int.random(in: 0...input.count, using: &rng)
                    input.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
                case 3:  // delete a range
                    guard !input.isEmpty else { break }
                    let a = Int.random(in: 0..<input.count, using: &rng)
                    input.removeSubrange(a..<min(input.count, a + Int.random(in: 1...6, using: &rng)))
                case 4:  // set a length-looking byte to an extreme
                    guard input.count > 15 else { break }
                    input[Int.random(in: 13..<input.count, using: &rng)] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &rng)]
                default:  // interesting bytes for v1
                    guard !input.isEmpty else { break }
                    input[Int.random(in: 0..<input.count, using: &rng)] = ascii(" \r\n:.0P9fF")[Int.random(in: 0..<10, using: &rng)]
                }
                if input.isEmpty { break }
            }
            for p in parsers { Self.check(input, p) }
        }
    }

    @Test("random bytes never trap, and byte-at-a-time agrees with all-at-once")
    func randomBytes() {
        var rng = SplitMix64(seed: 99)
        let parser = ProxyHeaderParser()
        for i in 0..<3000 {
            // Start with a signature often, so the random part reaches the deeper code.
            var input: [UInt8] =
                switch i % 3 {
                case 0: v2Signature + [0x21, UInt8.random(in: 0...0x40, using: &rng), 0, UInt8.random(in: 0...80, using: &rng)]
                case 1: ascii("PROXY ")
                default: []
                }
            input += (0..<Int.random(in: 0..<120, using: &rng)).map { _ in
                i % 3 == 1 ? ascii("TCP46UNKOW .:0123456789abcdef\r\n")[Int.random(in: 0..<31, using: &rng)] : UInt8.random(in: 0...255, using: &rng)
            }
            Self.check(input, parser)
            // Incremental feeding gives the same outcome as parsing everything at once.
            let whole = Result { () throws(ProxyProtocolError) in try parser.parse(input) }
            var feeder = ProxyHeaderParser()
            var fed: Result<ProxyHeaderParser.ParseResult, ProxyProtocolError> = .success(.needMoreData)
            for (n, b) in input.enumerated() {
                do {
                    if case .header(let h, let v, let rest) = try feeder.feed([b]) {
                        fed = .success(.header(h, version: v, consumed: n + 1 - rest.count))
                        break
                    }
                } catch {
                    fed = .failure(error)
                    break
                }
            }
            // Errors may be worded differently (fewer bytes were seen) but are of the same kind.
            switch (fed, whole) {
            case (.failure(let a), .failure(let b)): #expect(a.kind == b.kind, "\(a) / \(b): input \(input)")
            default: #expect(fed == whole, "input \(input)")
            }
        }
    }

    @Test("every 1- and 2-byte input is handled")
    func shortInputs() {
        let parser = ProxyHeaderParser()
        for a in 0...255 {
            Self.check([UInt8(a)], parser)
            for b in stride(from: 0, through: 255, by: 5) { Self.check([UInt8(a), UInt8(b)], parser) }
        }
    }

    @Test("typed TLV decoders never trap on random values")
    func tlvDecoders() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<5000 {
            let value = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let info = try? ProxyTLV.SSLInfo(decoding: value) { #expect((try? ProxyTLV.SSLInfo(decoding: info.encode())) == info) }
            if let info = try? ProxyTLV.QSSLInfo(decoding: value) { #expect((try? ProxyTLV.QSSLInfo(decoding: info.encode())) == info) }
            _ = IPv6Address(String(decoding: value, as: UTF8.self))
            _ = IPv4Address(String(decoding: value, as: UTF8.self))
        }
    }
}
