import NIOCore
import NIOEmbedded
@_exported import QSSLTestSupport
import Testing

@testable import QSSLRedis

// The RESP2/RESP3 decoder and encoder: every type, every split, malformed and hostile input.

private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// Decodes all values in `bytes` given in one piece.
private func decodeAll(_ bytes: [UInt8], _ decoder: RESPDecoder = RESPDecoder()) throws -> [RESPValue] {
    var buffer = ByteBuffer(bytes: bytes)
    var values: [RESPValue] = []
    while let value = try decoder.decode(&buffer) { values.append(value) }
    #expect(buffer.readableBytes == 0)
    return values
}

/// Feeds `bytes` to the decoder cut at `cuts`, decoding whatever is complete after each piece,
/// both with and without the hint that skips hopeless re-parses; the two must agree.
private func decodeSplit(_ bytes: [UInt8], cuts: [Int], _ decoder: RESPDecoder = RESPDecoder()) throws -> [RESPValue] {
    var results: [[RESPValue]] = []
    for useHint in [false, true] {
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        var need = RESPDecoder.Need.unknown
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            buffer.writeBytes(bytes[start..<end])
            start = end
            if useHint {
                while let value = try decoder.decode(&buffer, need: &need) { values.append(value) }
            } else {
                while let value = try decoder.decode(&buffer) { values.append(value) }
            }
        }
        #expect(buffer.readableBytes == 0)
        results.append(values)
    }
    #expect(results[0] == results[1])
    return results[1]
}

let wireSamples: [(String, RESPValue)] = [
    // RESP2
    ("+OK\r\n", .simpleString("OK")),
    ("+\r\n", .simpleString("")),
    ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
    (":0\r\n", .integer(0)),
    (":-42\r\n", .integer(-42)),
    (":+7\r\n", .integer(7)),
    (":9223372036854775807\r\n", .integer(.max)),
    (":-9223372036854775808\r\n", .integer(.min)),
    ("$5\r\nhello\r\n", .bulkString(Array("hello".utf8))),
    ("$0\r\n\r\n", .bulkString([])),
    ("$4\r\na\r\nb\r\n", .bulkString(Array("a\r\nb".utf8))),
    ("$-1\r\n", .bulkString(nil)),
    ("*-1\r\n", .array(nil)),
    ("*0\r\n", .array([])),
    ("*3\r\n$3\r\nfoo\r\n:1\r\n*1\r\n+x\r\n", .array([.bulkString(Array("foo".utf8)), .integer(1), .array([.simpleString("x")])])),
    // RESP3
    ("_\r\n", .null),
    ("#t\r\n", .boolean(true)),
    ("#f\r\n", .boolean(false)),
    (",3.25\r\n", .double(3.25)),
    (",-1.5e3\r\n", .double(-1500)),
    (",inf\r\n", .double(.infinity)),
    (",-inf\r\n", .double(-.infinity)),
    (",10\r\n", .double(10)),
    ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
    ("(-12\r\n", .bigNumber("-12")),
    ("!21\r\nSYNTAX invalid syntax\r\n", .error("SYNTAX invalid syntax")),
    ("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", text: Array("Some string".utf8))),
    (
        "%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n",
        .map([
            RESPMapEntry(key: .simpleString("first"), value: .integer(1)),
            RESPMapEntry(key: .bulkString(Array("second".utf8)), value: .boolean(false))
        ])
    ),
    ("%0\r\n", .map([])),
    ("~3\r\n+a\r\n:1\r\n_\r\n", .set([.simpleString("a"), .integer(1), .null])),
    (
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        .push([
            .bulkString(Array("message".utf8)),
            .bulkString(Array("ch".utf8)), .bulkString(Array("hi".utf8))
        ])
    ),
    // Attributes are skipped, at the top level and inside aggregates.
    ("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:42\r\n", .integer(42)),
    ("*2\r\n|1\r\n+ttl\r\n:3600\r\n+a\r\n+b\r\n", .array([.simpleString("a"), .simpleString("b")]))
]

@Suite struct RESPCodecTests {
    @Test func everyTypeDecodes() throws {
        for (wire, expected) in wireSamples {
            let values = try decodeAll(Array(wire.utf8))
            #expect(values == [expected], "\(wire.debugDescription)")
        }
        let nan = try decodeAll(Array(",nan\r\n".utf8))
        guard case .double(let d) = nan.first else {
            Issue.record("nan: \(nan)")
            return
        }
        #expect(d.isNaN)
    }

    @Test func everySplitOfEveryInputDecodes() throws {
        for (wire, expected) in wireSamples {
            let bytes = Array(wire.utf8)
            for cut in 0...bytes.count {
                #expect(try decodeSplit(bytes, cuts: [cut]) == [expected], "\(wire.debugDescription) cut at \(cut)")
            }
            #expect(try decodeSplit(bytes, cuts: Array(0..<bytes.count)) == [expected], "byte by byte")
        }
        // All samples back to back, byte by byte: values come out in order, nothing left over.
        let all = wireSamples.flatMap { Array($0.0.utf8) }
        #expect(try decodeSplit(all, cuts: Array(0..<all.count)) == wireSamples.map(\.1))
        #expect(try decodeSplit(all, cuts: [all.count / 3, 2 * all.count / 3]) == wireSamples.map(\.1))
    }

    @Test func incompleteInputConsumesNothing() throws {
        let decoder = RESPDecoder()
        for partial in ["", "+OK", "+OK\r", "$5\r\nhel", "$5\r\nhello\r", "*2\r\n:1\r\n", "%1\r\n+a\r\n", "|1\r\n+a\r\n+b\r\n"] {
            var input = buffer(partial)
            #expect(try decoder.decode(&input) == nil, "\(partial.debugDescription)")
            #expect(input.readableBytes == partial.utf8.count)
        }
    }

    @Test(arguments: [
        "?x\r\n", "x\r\n", "\r\n", ":abc\r\n", ":\r\n", ":99999999999999999999\r\n", ":1.5\r\n", "$abc\r\n", "$-2\r\n",
        "$\r\n", "$+3\r\nabc\r\n", "$3\r\nabcd\r\n", "$3\r\nab\r\n\r\n", "*-2\r\n", "*x\r\n", "%-1\r\n", "~-1\r\n", ">-1\r\n",
        "#x\r\n", "#\r\n", "#tt\r\n", "_x\r\n", ",abc\r\n", ",\r\n", ",1 2\r\n", "(12a\r\n", "(\r\n", "(-\r\n", "+ok\rX",
        "+ok\n", "=3\r\nabc\r\n", "=5\r\ntxtab\r\n", "*1\r\n?\r\n", "$99999999999999999999999\r\n"
    ])
    func malformedInputIsRejected(_ wire: String) {
        var input = buffer(wire)
        #expect(throws: RESPDecodingError.self, "\(wire.debugDescription)") { _ = try RESPDecoder().decode(&input) }
    }

    @Test func hugeDeclaredLengthsAreRejectedFromTheHeaderAlone() {
        for header in [
            "$2147483648\r\n", "$1048577\r\n", "*1000000000\r\n", "%600000\r\n", "~9223372036854775807\r\n",
            "!2147483648\r\n", "=2147483648\r\n", ">400000\r\n"
        ] {
            var input = buffer(header)
            #expect(throws: RESPDecodingError.replyTooLarge(limit: 1 << 20), "\(header)") {
                _ = try RESPDecoder().decode(&input)
            }
        }
    }

    @Test func repliesBeyondTheSizeLimitAreRejected() throws {
        let decoder = RESPDecoder(maximumReplySize: 1024)
        // A line that never ends.
        var line = buffer("+" + String(repeating: "a", count: 2000))
        #expect(throws: RESPDecodingError.replyTooLarge(limit: 1024)) { _ = try decoder.decode(&line) }
        // A bulk string longer than the limit.
        var bulk = buffer("$2000\r\n")
        #expect(throws: RESPDecodingError.replyTooLarge(limit: 1024)) { _ = try decoder.decode(&bulk) }
        // Many small elements adding up to more than the limit.
        let element = "$20\r\n" + String(repeating: "x", count: 20) + "\r\n"
        var aggregate = buffer("*100\r\n" + String(repeating: element, count: 100))
        #expect(throws: RESPDecodingError.replyTooLarge(limit: 1024)) { _ = try decoder.decode(&aggregate) }
        // Just under the limit is fine, and a second reply behind it does not count against it.
        let fits = "$1000\r\n" + String(repeating: "y", count: 1000) + "\r\n"
        var two = buffer(fits + fits)
        #expect(try decoder.decode(&two)?.bytes?.count == 1000)
        #expect(try decoder.decode(&two)?.bytes?.count == 1000)
    }

    @Test func aLongReplyArrivingInSmallPiecesIsDecodedInLinearTime() throws {
        // 1 MiB in 1 KiB reads: without the hint each read would re-scan everything before it.
        let decoder = RESPDecoder(maximumReplySize: 2 << 20)
        let text = String(repeating: "a", count: 1 << 20)
        for wire in ["+" + text + "\r\n", "$\(text.utf8.count)\r\n" + text + "\r\n"] {
            let bytes = Array(wire.utf8)
            var buffer = ByteBuffer()
            var need = RESPDecoder.Need.unknown
            var value: RESPValue?
            let start = ContinuousClock.now
            for offset in stride(from: 0, to: bytes.count, by: 1024) {
                buffer.writeBytes(bytes[offset..<min(offset + 1024, bytes.count)])
                if let v = try decoder.decode(&buffer, need: &need) { value = v }
            }
            #expect(value?.bytes?.count == 1 << 20)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
        // And a line that never ends is rejected once it passes the limit.
        var buffer = ByteBuffer(string: "+")
        var need = RESPDecoder.Need.unknown
        #expect(throws: RESPDecodingError.replyTooLarge(limit: 1 << 20)) {
            for _ in 0..<2000 {
                buffer.writeString(String(repeating: "b", count: 1024))
                _ = try RESPDecoder().decode(&buffer, need: &need)
            }
        }
    }

    @Test func aLargeArrayDrippedOneBytePerReadIsScannedInLinearWorkAndParsedOnce() throws {
        // A hostile server sending a 20,000-element array (with nested maps, attributes and
        // blobs) one byte per read: each byte is examined a bounded number of times.
        let decoder = RESPDecoder(maximumReplySize: 1 << 20)
        var wire = "*20000\r\n"
        for i in 0..<20000 {
            switch i % 4 {
            case 0: wire += ":\(i)\r\n"
            case 1: wire += "$3\r\nabc\r\n"
            case 2: wire += "%1\r\n+k\r\n*2\r\n_\r\n#t\r\n"
            default: wire += "|1\r\n+a\r\n+b\r\n,1.5\r\n"
            }
        }
        let bytes = Array(wire.utf8)
        var buffer = ByteBuffer()
        var need = RESPDecoder.Need.unknown
        var value: RESPValue?
        for byte in bytes {
            buffer.writeInteger(byte)
            if let v = try decoder.decode(&buffer, need: &need) {
                #expect(value == nil, "one value")
                value = v
            }
        }
        #expect(value?.elements?.count == 20000)
        #expect(buffer.readableBytes == 0)
        #expect(need.work <= 2 * bytes.count, "examined \(need.work) bytes for \(bytes.count)")
    }

    @Test func zeroPaddedNineteenDigitLengthsAreScannedAsTheParserReadsThem() throws {
        // The scan and the parse must agree on every header: here 19 digits with leading zeros.
        let wire = Array("*0000000000000000002\r\n$0000000000000000003\r\nabc\r\n:7\r\n".utf8)
        var buffer = ByteBuffer()
        var need = RESPDecoder.Need.unknown
        var values: [RESPValue] = []
        for byte in wire {
            buffer.writeInteger(byte)
            if let v = try RESPDecoder().decode(&buffer, need: &need) { values.append(v) }
        }
        #expect(values == [.array([.bulkString(Array("abc".utf8)), .integer(7)])])
        #expect(need.work <= 2 * wire.count)
    }

    @Test func nestingIsLimited() throws {
        let decoder = RESPDecoder(maximumReplySize: 1 << 20, maximumNestingDepth: 32)
        var ok = buffer(String(repeating: "*1\r\n", count: 32) + ":1\r\n")
        #expect(try decoder.decode(&ok) != nil)
        var deep = buffer(String(repeating: "*1\r\n", count: 33) + ":1\r\n")
        #expect(throws: RESPDecodingError.nestingTooDeep(limit: 32)) { _ = try decoder.decode(&deep) }
        // Very deep input (and chains of attributes) fail early rather than exhausting the stack.
        for unit in ["*1\r\n", "%1\r\n", "~1\r\n", ">1\r\n", "|0\r\n", "%1\r\n+k\r\n"] {
            var hostile = buffer(String(repeating: unit, count: 100_000))
            #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(&hostile) }
        }
        #expect(RESPDecoder(maximumNestingDepth: 1_000_000).maximumNestingDepth == RESPDecoder.nestingDepthCap)
    }

    @Test func randomAndMutatedInputNeverTraps() throws {
        var generator = SplitMix64(seed: 0x5EED)
        let decoder = RESPDecoder(maximumReplySize: 4096, maximumNestingDepth: 8)
        let valid = wireSamples.map { Array($0.0.utf8) }
        for round in 0..<5000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in
                    Array("+-:$*_#,(!=%~>|\r\n0123456789-tf".utf8).randomElement(using: &generator)!
                }
            } else {
                bytes = valid.randomElement(using: &generator)!
                for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            var input = ByteBuffer(bytes: bytes)
            do { while try decoder.decode(&input) != nil {} } catch {}
        }
    }

    @Test func encodesCommandsAsArraysOfBulkStrings() throws {
        var again = ByteBuffer()
        RESPEncoder.encode(RedisCommand("SET", "k", [0, 255, 13, 10] as [UInt8], "PX", 100), into: &again)
        let expected: [UInt8] =
            Array("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n".utf8) + [0, 255, 13, 10]
            + Array("\r\n$2\r\nPX\r\n$3\r\n100\r\n".utf8)
        #expect(Array(again.readableBytesView) == expected)
        #expect(
            try RESPDecoder().decode(&again)
                == .array([
                    .bulkString(Array("SET".utf8)), .bulkString(Array("k".utf8)), .bulkString([0, 255, 13, 10]),
                    .bulkString(Array("PX".utf8)), .bulkString(Array("100".utf8))
                ]))
    }

    @Test func valuesWrittenByWriteDecodeToThemselves() throws {
        for (_, value) in wireSamples {
            var out = ByteBuffer()
            value.write(to: &out)
            #expect(try RESPDecoder().decode(&out) == value)
        }
    }

    @Test func commandKeys() {
        #expect(RedisCommand("GET", "a").key == Array("a".utf8))
        #expect(RedisCommand("PING").key == nil)
        #expect(RedisCommand("cluster", "info").key == nil)
        #expect(RedisCommand("EVAL", "s", 0, key: Array("k".utf8)).key == Array("k".utf8))
        #expect(RedisCommand("SET", "secret-key", "secret-value").description == "SET secret-key")
    }

    @Test func messageDecoderInAPipeline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPMessageDecoder()))
        for byte in Array("*2\r\n$1\r\na\r\n:5\r\n+OK\r\n".utf8) {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try channel.readInbound(as: RESPValue.self) == .array([.bulkString([UInt8(ascii: "a")]), .integer(5)]))
        #expect(try channel.readInbound(as: RESPValue.self) == .simpleString("OK"))
        #expect(throws: RESPDecodingError.self) { try channel.writeInbound(ByteBuffer(string: "$2147483648\r\n")) }
        _ = try? channel.finish()
    }
}
