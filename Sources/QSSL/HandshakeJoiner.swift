import QSSLWire

// Handshake messages from records: reassembly, and the largest message of each type a side accepts.

/// Largest handshake message accepted: certificate chains with ML-DSA keys are large, but not
/// this large. Anything bigger is refused before it is buffered.
let maxHandshakeMessageLength = 1 << 18

/// The largest handshake message of each type a side accepts, so that a peer cannot make a
/// connection hold more than the step needs before anything is authenticated (every byte of an
/// incomplete message is buffered). The bound is checked as soon as a message's 4-byte header
/// is in, before its body is buffered.
///
/// A server receives:
/// - ClientHello: 16 KiB, one record's plaintext. The largest a real client sends is about 2 KB
///   (browsers) to 4 KB; a Q-SSL client offering a share for every hybrid group (5,698 bytes of
///   key shares) and a ticket of ours (at most `maxIssuedTicketLength`, 8 KiB, with a composite
///   client certificate inside) stays below 15 KB.
/// - Certificate: 64 KiB. A client chain of three ML-DSA-87 certificates is about 23 KB.
/// - CertificateVerify: 8 KiB (ML-DSA-87: 4,627 bytes; composite: at most 3,413).
/// - ClientKeyExchange: 4 KiB (the hybrid SecP384r1MLKEM1024 share: 1,665 bytes).
/// - Finished: 64 bytes (48 for SHA-384); KeyUpdate and EndOfEarlyData: a few bytes.
/// - anything else is refused by the state it arrives in; it may be 16 KiB until then.
///
/// A client receives what the server it chose sends: the server's Certificate (and TLS 1.2
/// CertificateStatus) up to 256 KiB, CertificateRequest up to 128 KiB (certificate_authorities),
/// the rest up to 64 KiB plus headers (a NewSessionTicket carries a ticket of up to 65,535 bytes).
func maxHandshakeMessageLength(_ type: HandshakeType, receivedByClient: Bool) -> Int {
    if receivedByClient {
        switch type {
        case .certificate, .certificateStatus: return maxHandshakeMessageLength
        case .certificateRequest: return 1 << 17
        case .finished: return 64
        default: return (1 << 16) + 1024
        }
    }
    switch type {
    case .clientHello: return 16 * 1024
    case .certificate: return 64 * 1024
    case .certificateVerify: return 8 * 1024
    case .clientKeyExchange: return 4 * 1024
    case .finished: return 64
    case .keyUpdate, .endOfEarlyData: return 16
    default: return 16 * 1024
    }
}

/// Reassembles handshake messages from handshake records (RFC 8446 §5.1: messages may be
/// coalesced into one record or fragmented across several).
struct HandshakeJoiner {
    private var buffer: [UInt8] = []

    /// Gives back the storage of the handshake's messages once all were read.
    mutating func releaseIdleStorage() {
        if start == buffer.count {
            buffer = []
            start = 0
        }
    }
    /// Start of the unread bytes: messages are taken by advancing it, and the consumed prefix is
    /// dropped only when everything was read or it has grown large (no quadratic copying).
    private var start = 0

    var isEmpty: Bool { start == buffer.count }

    mutating func append(_ fragment: [UInt8]) {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 1 << 16 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: fragment)
    }

    /// The next complete message with its exact bytes, or nil if more records are needed.
    /// - Parameter receivedByClient: which side reads, for `maxHandshakeMessageLength(_:receivedByClient:)`.
    /// - Parameter expected: the types the state accepts now, when known: any other type is
    ///   refused as soon as its header is in (unexpected_message), before its body is buffered.
    mutating func next(receivedByClient: Bool, expected: HandshakeTypeSet? = nil) throws(TLSError) -> HandshakeMessage? {
        guard buffer.count - start >= 4 else { return nil }
        let type = HandshakeType(rawValue: buffer[start])
        if let expected, !expected.contains(type) {
            throw .misbehaved(.sentUnexpectedMessage, "\(type) where \(expected.names.joined(separator: " or ")) was expected")
        }
        let length = Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        let maximum = maxHandshakeMessageLength(type, receivedByClient: receivedByClient)
        guard length <= maximum else {
            throw .misbehaved(.sentOversizedHandshakeMessage, "\(type) of \(length) bytes (at most \(maximum) accepted)")
        }
        guard buffer.count - start >= 4 + length else { return nil }
        let message = HandshakeMessage(type: HandshakeType(rawValue: buffer[start]), body: Array(buffer[(start + 4)..<(start + 4 + length)]))
        start += 4 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return message
    }
}

/// A few handshake message types, as a bit mask: what a state accepts, checked for every
/// message and computed on every pass of the driver, so it allocates nothing. The types a
/// state may expect are all below 64; any other is never in the set.
struct HandshakeTypeSet: ExpressibleByArrayLiteral {
    private let bits: UInt64

    init(arrayLiteral types: HandshakeType...) {
        var bits: UInt64 = 0
        for type in types {
            precondition(type.rawValue < 64, "handshake type \(type) cannot be expected")  // local invariant: the literals below
            bits |= 1 << type.rawValue
        }
        self.bits = bits
    }

    func contains(_ type: HandshakeType) -> Bool { type.rawValue < 64 && bits & (1 << type.rawValue) != 0 }

    /// The types' names, sorted (for the error that names what was expected).
    var names: [String] { (0..<64).filter { bits & (1 << $0) != 0 }.map { "\(HandshakeType(rawValue: UInt8($0)))" }.sorted() }
}
