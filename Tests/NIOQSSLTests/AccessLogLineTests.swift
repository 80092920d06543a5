import Logging
import QSSLProxy
import Testing

@Suite("Access log lines")
struct AccessLogLineTests {
    @Test(
        "text lines: keys in order; a value with a space, quote or control character is quoted and escaped, so a peer's or Redis's text cannot start a line of its own"
    )
    func textQuoting() {
        let metadata: Logger.Metadata = [
            "sni": "shop.example", "empty": "", "spaced": "a b", "injected": "x\nfake_event key=1", "quote": "say \"hi\"", "bell": "\u{7}"
        ]
        let line = LineLogHandler.line(message: "connection", metadata: metadata, format: .text)
        #expect(line == #"connection bell="\u0007" empty="" injected="x\nfake_event key=1" quote="say \"hi\"" sni=shop.example spaced="a b""#)
        #expect(!line.utf8.contains(0x0A))
        // The message too, and Unicode line separators.
        let forged = LineLogHandler.line(message: "fleet: redis said x\nconnection end=ok", metadata: ["sep": "a\u{2028}b"], format: .text)
        #expect(forged == #""fleet: redis said x\nconnection end=ok" sep="a\u2028b""#)
        #expect(!forged.utf8.contains(0x0A))
    }

    @Test("JSON lines keep numbers and booleans as such and escape strings")
    func json() {
        let line = LineLogHandler.line(message: "end", metadata: ["n": .stringConvertible(3), "ok": .stringConvertible(true), "s": "a\"b"], format: .json)
        #expect(line == #"{"event":"end","n":3,"ok":true,"s":"a\"b"}"#)
        // Line separators a peer's text may carry are escaped too.
        let separated = LineLogHandler.line(message: "end", metadata: ["s": "a\u{2028}b\u{85}c\u{2029}"], format: .json)
        #expect(separated == #"{"event":"end","s":"a\u2028b\u0085c\u2029"}"#)
    }
}
