import QSSLProxyProtocol
@_exported import QSSLTestSupport
import Testing

func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8).filter { $0 != UInt8(ascii: " ") }
    var out: [UInt8] = []
    var i = 0
    while i + 1 < digits.count {
        out.append(UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16)!)
        i += 2
    }
    return out
}

func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The error `parse` throws for `input`, or nil if it did not throw.
func rejection(_ input: [UInt8], _ parser: ProxyHeaderParser = ProxyHeaderParser()) -> ProxyProtocolError? {
    do {
        _ = try parser.parse(input)
        return nil
    } catch {
        return error
    }
}

/// Parses `input`, requiring a complete header.
func parseComplete(
    _ input: [UInt8], _ parser: ProxyHeaderParser = ProxyHeaderParser(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (ProxyHeader, ProxyHeader.Version, Int) {
    guard case .header(let h, let v, let n) = try parser.parse(input) else {
        Issue.record("expected a complete header", sourceLocation: sourceLocation)
        throw ProxyProtocolError(.malformedV1, "incomplete")
    }
    return (h, v, n)
}

let v2Signature = bytes("0d0a0d0a000d0a515549540a")

/// A v2 header with the given version/command byte, family byte and body.
func v2(_ verCmd: UInt8 = 0x21, _ family: UInt8, _ body: [UInt8]) -> [UInt8] {
    v2Signature + [verCmd, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
}

let tcp4Addresses = bytes("c0000201 c6336407 c822 01bb")  // 192.0.2.1:51234 -> 198.51.100.7:443

let sampleTCP4 = ProxyHeader.Transport.tcp4(
    source: IPv4Address(192, 0, 2, 1), sourcePort: 51234,
    destination: IPv4Address(198, 51, 100, 7), destinationPort: 443)
let sampleTCP6 = ProxyHeader.Transport.tcp6(
    source: IPv6Address("2001:db8::1")!, sourcePort: 40000,
    destination: IPv6Address("2001:db8:0:1::443")!, destinationPort: 8443)

/// The `ProxyProtocolError` that `body` throws, or nil if it returns.
func thrown<T>(_ body: () throws -> T) -> ProxyProtocolError? {
    do {
        _ = try body()
        return nil
    } catch let e as ProxyProtocolError {
        return e
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}
