import QSSL
import QSSLWire

/// Reads an input front to back; reads past the end give zeros.
public struct InputReader {
    var bytes: [UInt8]
    var index = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var isEmpty: Bool { index >= bytes.count }
    public mutating func byte() -> UInt8 {
        defer { index += 1 }
        return index < bytes.count ? bytes[index] : 0
    }
    public mutating func u16() -> Int { Int(byte()) << 8 | Int(byte()) }
    public mutating func take(_ n: Int) -> [UInt8] {
        let end = min(bytes.count, index + n)
        defer { index = end }
        return index < end ? Array(bytes[index..<end]) : []
    }
    public mutating func rest() -> [UInt8] { take(bytes.count) }
}

public func input(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}

/// A real client and server in one process, with the records between them in two queues.
/// Creating a pair resets the randomness, so everything it does is a function of the script.
public struct Pair {
    public var ends: [Endpoint]
    /// queues[s]: records on their way to side s.
    public var queues: [[[UInt8]]] = [[], []]
    public let config: PairConfig
    /// Every byte reached its receiver unchanged, in order, and nobody closed or failed on purpose.
    public var benign = true
    /// What each side was fed, chunk by chunk (for corpus making).
    public var fed: [[[UInt8]]] = [[], []]
    public var recordFeeds = false

    /// A pair for one input: fresh session stores (`PairConfig.forOneInput`), the variant's
    /// session offered.
    public init(_ config: PairConfig) {
        self.init(prepared: config.forOneInput())
    }

    /// A pair with the configuration exactly as given (the resumption setup brings its own stores).
    init(prepared config: PairConfig) {
        FuzzRandom.reset()
        Tap.reset()
        self.config = config
        let client = try! TLSConnection.client(configuration: config.client, serverName: config.serverName, session: config.session)
        let server = try! TLSConnection.server(configuration: config.server)
        ends = [Endpoint(client, side: .client), Endpoint(server, side: .server)]
        enqueue(ends[0].takeOutput(), to: .server)
    }

    public mutating func enqueue(_ bytes: [UInt8], to side: Side) {
        queues[side.rawValue] += splitRecords(bytes)
    }

    public mutating func deliver(to side: Side) {
        guard !queues[side.rawValue].isEmpty else { return }
        let chunk = queues[side.rawValue].removeFirst()
        if recordFeeds { fed[side.rawValue].append(chunk) }
        let out = ends[side.rawValue].receive(chunk)
        enqueue(out, to: side.other)
    }

    /// Delivers everything in both directions until nothing moves (or `limit` deliveries).
    public mutating func pump(limit: Int = 200) {
        var n = 0
        while n < limit, !queues[0].isEmpty || !queues[1].isEmpty {
            deliver(to: .server)
            deliver(to: .client)
            n += 1
        }
    }

    /// With QSSL_FUZZ_VERBOSE set (when reproducing one input): how each end finished.
    public func report() {
        guard FuzzSetup.verbose else { return }
        for e in ends {
            let state = e.failure.map { "failed: \($0)" } ?? (e.isComplete ? "complete" : "handshaking")
            print("\(e.side) [\(config.name)]: \(state); received \(e.receivedData.count) bytes, sent \(e.sentData.count)")
        }
    }

    /// Checks that hold at the end of any run.
    public func checkOutcome() {
        let c = ends[0]
        let s = ends[1]
        if let a = c.summary, let b = s.summary {
            require(
                a.version == b.version && a.cipherSuite == b.cipherSuite && a.group == b.group && a.alpnProtocol == b.alpnProtocol,
                "the two ends completed with different parameters: \(a) vs \(b)")
            require(a.resumed == b.resumed, "one end resumed and the other did not: client \(a.resumed), server \(b.resumed)")
            require(
                a.helloRetryRequest == b.helloRetryRequest,
                "the ends disagree on HelloRetryRequest: client \(a.helloRetryRequest), server \(b.helloRetryRequest)")
        }
        if let a = c.summary, a.resumed {
            // Only the offered session can be resumed, and a resumption neither adds nor drops
            // who the server proved to be on the full handshake.
            guard let offered = config.session else { violated("the client resumed without offering a session") }
            // RFC 8446 §4.2.11 lets TLS 1.3 resume under another suite of the same hash.
            require(
                a.version == offered.state.version && (a.version == .tls13 || a.cipherSuite == offered.state.cipherSuite),
                "resumed \(a.version) \(a.cipherSuite), the session was \(offered.state.version) \(offered.state.cipherSuite)")
            require(a.peerIdentity == offered.state.peerIdentity, "the resumed connection's peer identity is not the session's")
        }
        for side in [Side.client, .server] {
            let receiver = ends[side.rawValue]
            let sender = ends[side.other.rawValue]
            if !Tap.mutatedSeals[side.other.rawValue] {
                require(
                    sender.sentData.starts(with: receiver.receivedData),
                    "\(side) received application data its peer never sent (\(receiver.receivedData.count) bytes)")
            }
        }
        // The core cuts off a peer that sends only KeyUpdates, renegotiation requests, empty
        // records or warnings (without application data between them): a script of those is
        // hostile even when no byte was tampered with.
        let floodLimit = [c.failure, s.failure].contains { f in
            guard let f else { return false }
            return f.code == .peerMisbehaved(.sentTooManyEmptyRecordsOrWarnings)
                || (f.code == .peerMisbehaved(.sentUnexpectedMessage) && (f.detail ?? "").contains("without application data"))
                || f.code.receivedAlert == .unexpectedMessage
        }
        if benign && !floodLimit {
            require(
                c.failure == nil && s.failure == nil,
                "an untampered run failed: client \(String(describing: c.failure)), server \(String(describing: s.failure))")
            require(c.isComplete && s.isComplete, "an untampered run did not complete the handshake")
            require(c.receivedData == s.sentData && s.receivedData == c.sentData, "an untampered run lost application data")
            if config.resumes {
                require(c.summary?.resumed == true && s.summary?.resumed == true, "an untampered run did not resume the offered session")
            }
            if config.clientKeepsSessions, let version = c.summary?.version {
                // TLS 1.3: one session per NewSessionTicket, tls13TicketCount after a full
                // handshake and one after a resumption (at most the count); TLS 1.2: the session, once.
                let resumed = c.summary?.resumed == true
                let expected = version == .tls13 ? (resumed ? min(1, config.server.tls13TicketCount) : config.server.tls13TicketCount) : 1
                require(c.issuedSessions.count == expected, "an untampered run issued \(c.issuedSessions.count) sessions, expected \(expected)")
            }
        }
    }
}

/// The script interpreter of the state-machine targets. The first byte picks the mode and the
/// configuration; the rest is a sequence of operations on the records flowing to the `victim`
/// (mutations) or in either direction (deliveries, API calls). See Fuzz/README.md.
public enum PairScript {
    public static func run(_ bytes: [UInt8], configs: [PairConfig], victim: Side) {
        deterministic { runOnce(bytes, configs: configs, victim: victim) }
    }

    /// With QSSL_FUZZ_DETERMINISM set: runs the input a second time in the same process and
    /// requires the same bytes and the same ends. State shared across inputs (configurations,
    /// ticket keys, a session store) would show up here.
    static func deterministic(_ body: () -> Pair) {
        let first = body()
        guard FuzzSetup.checkDeterminism else { return }
        let second = body()
        require(first.fed == second.fed, "nondeterministic: the same input fed different bytes the second time")
        require(
            zip(first.ends, second.ends).allSatisfy { $0.failure == $1.failure && $0.summary == $1.summary && $0.issuedSessions == $1.issuedSessions },
            "nondeterministic: the same input ended differently the second time")
    }

    @discardableResult
    static func runOnce(_ bytes: [UInt8], configs: [PairConfig], victim: Side) -> Pair {
        var r = InputReader(bytes)
        let head = r.byte()
        let config = configs[Int(head >> 1) % configs.count]
        if head & 1 == 1 {
            return runRawOnce(config: config, victim: victim, chunk: Int(r.byte()), bytes: r.rest())
        }
        var pair = Pair(config)
        pair.recordFeeds = FuzzSetup.checkDeterminism
        let v = victim.rawValue
        let peer = victim.other
        var ops = 0
        var keyUpdates = 0
        while !r.isEmpty, ops < 256 {
            ops += 1
            let op = r.byte()
            switch op & 0x0F {
            case 0: pair.deliver(to: victim)
            case 1: pair.deliver(to: peer)
            case 2: pair.pump(limit: Int(op >> 4) + 1)
            case 3, 4, 5:  // flip a byte, set a byte, truncate: the next record to the victim
                let offset = r.u16()
                let value = r.byte()
                guard var chunk = pair.queues[v].first, !chunk.isEmpty else { continue }
                switch op & 0x0F {
                case 3: chunk[offset % chunk.count] ^= value == 0 ? 0x01 : value
                case 4: chunk[offset % chunk.count] = value
                default: chunk = Array(chunk.prefix(offset % chunk.count))
                }
                pair.queues[v][0] = chunk
                pair.benign = false
            case 6:
                if !pair.queues[v].isEmpty {
                    pair.queues[v].removeFirst()
                    pair.benign = false
                }
            case 7:
                if let first = pair.queues[v].first {
                    pair.queues[v].insert(first, at: 0)
                    pair.benign = false
                }
            case 8:  // inject raw bytes (they may hold several records, or a part of one)
                let n = Int(r.byte())
                pair.queues[v].insert(r.take(n), at: 0)
                pair.benign = false
            case 9:
                if pair.queues[v].count >= 2 {
                    pair.queues[v].swapAt(0, 1)
                    pair.benign = false
                }
            case 10:  // split the next record in two deliveries (TCP may do that)
                let at = r.u16()
                if let first = pair.queues[v].first, first.count >= 2 {
                    let k = 1 + at % (first.count - 1)
                    pair.queues[v].replaceSubrange(0..<1, with: [Array(first[..<k]), Array(first[k...])])
                }
            case 11:  // change the plaintext of a record the peer will seal, before it is encrypted
                let how = r.byte()
                let offset = r.u16()
                let value = r.byte()
                // Bit 3 of `how`: TLS 1.3 content type := value (then offset is unused).
                Tap.armed[peer.rawValue] = Tap.Mutation(
                    skip: Int(how & 7), offset: offset, xor: value,
                    retype: how & 8 != 0 ? value : nil)
                pair.benign = false
            case 12:
                let side = Side(rawValue: Int(op >> 4) & 1)!
                pair.enqueue(pair.ends[side.rawValue].close(), to: side.other)
                pair.benign = false
            case 13:
                let side = Side(rawValue: Int(op >> 4) & 1)!
                let wasFailed = pair.ends[side.rawValue].failure != nil
                pair.enqueue(pair.ends[side.rawValue].updateKeys(request: op & 0x20 != 0), to: side.other)
                if !wasFailed && pair.ends[side.rawValue].failure != nil { pair.benign = false }
                // Cores may bound post-handshake messages without application data (a DoS limit).
                keyUpdates += 1
                if keyUpdates > 8 { pair.benign = false }
            case 14:
                let side = Side(rawValue: Int(op >> 4) & 1)!
                // Data from the script: with op 11's retype it becomes any post-handshake message.
                let data = r.take(Int(r.byte()))
                pair.enqueue(pair.ends[side.rawValue].send(data), to: side.other)
            default:  // 15: two records to the victim in one receive call
                if pair.queues[v].count >= 2 {
                    let second = pair.queues[v].remove(at: 1)
                    pair.queues[v][0] += second
                }
            }
        }
        pair.pump()
        pair.checkOutcome()
        pair.report()
        return pair
    }

    /// A fresh victim (made exactly as in a pair, so recorded flights replay) fed raw bytes,
    /// `chunk` bytes per call (0: all at once).
    public static func runRaw(config: PairConfig, victim: Side, chunk: Int, bytes: [UInt8]) {
        deterministic { runRawOnce(config: config, victim: victim, chunk: chunk, bytes: bytes) }
    }

    static func runRawOnce(config: PairConfig, victim: Side, chunk: Int, bytes: [UInt8]) -> Pair {
        var pair = Pair(config)
        pair.recordFeeds = FuzzSetup.checkDeterminism
        var end = pair.ends[victim.rawValue]
        var i = 0
        repeat {
            let n = chunk == 0 ? bytes.count : chunk
            let out = end.receive(Array(bytes[i..<min(bytes.count, i + n)]))
            if pair.recordFeeds { pair.fed[victim.other.rawValue].append(out) }  // what the victim answered
            i += n
        } while i < bytes.count
        pair.ends[victim.rawValue] = end
        pair.report()
        return pair
    }
}
