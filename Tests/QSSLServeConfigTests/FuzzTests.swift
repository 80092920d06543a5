@_exported import QSSLTestSupport
import Testing

@testable import QSSLServeConfig

@Suite struct FuzzTests {
    static let fragments = [
        ":", "-", " ", "  ", "\n", "\t", "[", "]", "{", "}", ",", "\"", "'", "#", "&a", "*a", "!!str ", "? ", "|", ">",
        "---", "...", "%YAML 1.2\n", "\r\n", "\u{85}", "\u{2028}", "\u{FEFF}", "\u{0}", "\u{1}", "é", "🦊",
        "listeners:", "- listen: ", "[::1]:1", "unix:/x", "0", "-1", "99999999999999999999", "1.5s", "10ms", "true",
        "null", "~", "pkcs11:", "*.", "limits:", "max-handshakes: ", "defaults:", "certificates:", "cert: /c", "key: /k",
        "server-names: [a.b, a.b]", "__qssl_dup_0__", "<<: *a"
    ]

    /// Mutates the sample (and a minimal file) at random: no input may trap, and every failure
    /// has at least one issue with a sensible position.
    @Test func mutatedConfigsNeverTrap() {
        var rng = SplitMix64(seed: 0x5153_534C)
        let seeds = [Array(ServeConfigFile.sampleYAML.unicodeScalars), Array(minimalYAML.unicodeScalars)]
        var failures = 0
        for round in 0..<1500 {
            var text = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0...text.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0 where at < text.count: text.remove(at: at)
                case 1: text.insert(contentsOf: Self.fragments.randomElement(using: &rng)?.unicodeScalars ?? "".unicodeScalars, at: at)
                case 2 where at < text.count:
                    text[at] = Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))
                case 3:
                    // Duplicate a random line range (duplicate keys, repeated listeners).
                    let end = min(text.count, at + Int.random(in: 0...80, using: &rng))
                    text.insert(contentsOf: Array(text[at..<end]), at: end)
                default:
                    let end = min(text.count, at + Int.random(in: 0...40, using: &rng))
                    text.removeSubrange(at..<end)
                }
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: text)
            let yaml = String(view)
            let lineCount = yaml.unicodeScalars.filter { $0 == "\n" || $0 == "\r" || $0 == "\u{85}" || $0 == "\u{2028}" || $0 == "\u{2029}" }.count + 2
            if case .failure(let errors) = ServeConfigFile.parse(yaml: yaml, checkFiles: round % 7 == 0) {
                failures += 1
                #expect(!errors.issues.isEmpty)
                for issue in errors.issues where issue.line != 0 {
                    #expect(issue.line >= 1 && issue.line <= lineCount && issue.column >= 1, "\(issue) in round \(round):\n\(yaml)")
                }
                _ = errors.description
            }
        }
        #expect(failures > 100)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let length = Int.random(in: 0...300, using: &rng)
            let scalars = (0..<length).map { _ in Unicode.Scalar(UInt8.random(in: 0...127, using: &rng)) }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars)
            if case .success = ServeConfigFile.parse(yaml: String(view)) {
                Issue.record("random bytes parsed as a configuration")
            }
        }
    }

    @Test func hugeAliasFanOutStaysBounded() {
        // Many references to one anchored listener: duplicate addresses, reported once per listener.
        let refs = Array(repeating: "*l", count: 2000).joined(separator: ", ")
        let yaml = "x: &l {listen: \"127.0.0.1:1\", backend: echo, certificates: [{cert: /c, key: /k}]}\nlisteners: [\(refs)]\n"
        guard case .failure(let errors) = ServeConfigFile.parse(yaml: yaml) else {
            Issue.record("expected errors")
            return
        }
        #expect(errors.issues.count <= IssueSink.limit + 1)
    }
}
