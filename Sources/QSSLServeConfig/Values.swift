// Syntax of the configuration's scalar values: durations, addresses, server names; and suggestions.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

enum Values {
    // MARK: Durations

    /// `10s`, `500ms`, `5m`, `1h`, `1h30m`, or a bare number of seconds, in milliseconds.
    static func milliseconds(_ text: String) -> Result<Int64, ValueError> {
        let s = text.trimmingSpaces()
        guard !s.isEmpty else { return .failure(ValueError("expected a duration such as 10s, 500ms, 5m or 1h, got nothing")) }
        if s.hasPrefix("-") { return .failure(ValueError("must not be negative, got '\(s)'")) }
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let scalars = Array(s.unicodeScalars)
        var i = 0
        var total: Int64 = 0
        var parts = 0
        while i < scalars.count {
            var number: Int64 = 0
            var digits = 0
            while i < scalars.count, let d = decimalValue(scalars[i]) {
                let (m, o1) = number.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(d))
                if o1 || o2 { return .failure(ValueError("duration '\(s)' is too large")) }
                number = a
                digits += 1
                i += 1
            }
            if digits == 0 {
                return .failure(ValueError("expected a duration such as 10s, 500ms, 5m or 1h, got '\(s)'"))
            }
            if i < scalars.count, scalars[i] == "." {
                return .failure(ValueError("fractions are not accepted in '\(s)': use a smaller unit, e.g. 500ms"))
            }
            let unitStart = i
            while i < scalars.count, scalars[i].properties.isAlphabetic { i += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<i])).lowercased()
            parts += 1
            let factor: Int64
            if unit.isEmpty {
                guard parts == 1, i == scalars.count else {
                    return .failure(ValueError("expected a duration such as 10s, 500ms, 5m or 1h, got '\(s)'"))
                }
                factor = 1000
            } else if let match = units.first(where: { $0.0 == unit }) {
                factor = match.1
            } else {
                return .failure(ValueError("unknown unit '\(unit)' in '\(s)': use ms, s, m, h or d"))
            }
            let (product, o1) = number.multipliedReportingOverflow(by: factor)
            let (sum, o2) = total.addingReportingOverflow(product)
            if o1 || o2 { return .failure(ValueError("duration '\(s)' is too large")) }
            total = sum
        }
        return .success(total)
    }

    private static func decimalValue(_ scalar: Unicode.Scalar) -> Int? {
        guard scalar.value >= 0x30, scalar.value <= 0x39 else { return nil }
        return Int(scalar.value - 0x30)
    }

    /// `604800s`, `500ms`: seconds when whole, else milliseconds.
    static func format(milliseconds ms: Int64) -> String {
        ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }

    // MARK: Integers

    /// A decimal integer (`_` allowed between digits).
    static func integer(_ text: String) -> Int? {
        var s = text.trimmingSpaces()
        s.removeAll { $0 == "_" }
        guard !s.isEmpty, s.unicodeScalars.allSatisfy({ $0.isASCII }) else { return nil }
        let body = s.first == "-" || s.first == "+" ? s.dropFirst() : Substring(s)
        guard !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    // MARK: Addresses

    /// `HOST:PORT` (IPv6 in brackets), or `unix:/absolute/path` when `allowUnix`.
    static func address(_ raw: String, allowUnix: Bool) -> Result<NetworkAddress, ValueError> {
        let s = raw.trimmingSpaces()
        if s.hasPrefix("unix:") {
            guard allowUnix else { return .failure(ValueError("must be HOST:PORT, not a Unix socket")) }
            let path = String(s.dropFirst(5))
            guard !path.isEmpty else { return .failure(ValueError("unix: needs a socket path, e.g. unix:/run/qssl/app.sock")) }
            guard path.hasPrefix("/") else { return .failure(ValueError("Unix socket path '\(path)' must be absolute")) }
            guard path.utf8.count <= 107 else { return .failure(ValueError("Unix socket path is \(path.utf8.count) bytes; at most 107 fit in sockaddr_un")) }
            guard !path.utf8.contains(0) else { return .failure(ValueError("Unix socket path contains a NUL byte")) }
            return .success(.unix(path: path))
        }
        let example = allowUnix ? "HOST:PORT (e.g. 0.0.0.0:443, [::]:443) or unix:/path" : "HOST:PORT (e.g. 127.0.0.1:9100)"
        let host: String
        let portText: String
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return .failure(ValueError("missing ']' after the IPv6 address in '\(s)'")) }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.first == ":" else { return .failure(ValueError("expected :PORT after ']' in '\(s)'")) }
            portText = String(rest.dropFirst())
            guard let canonical = ipv6(host) else { return .failure(ValueError("'\(host)' is not an IPv6 address")) }
            return port(portText, in: s).map { .tcp(host: canonical, port: $0) }
        }
        guard let colon = s.lastIndex(of: ":") else { return .failure(ValueError("expected \(example), got '\(s)'")) }
        host = String(s[..<colon])
        portText = String(s[s.index(after: colon)...])
        if host.contains(":") {
            return .failure(ValueError("IPv6 addresses go in brackets, e.g. [::1]:443, got '\(s)'"))
        }
        guard !host.isEmpty else { return .failure(ValueError("missing host in '\(s)': use 0.0.0.0:PORT or [::]:PORT for all addresses")) }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            guard ipv4(host) else { return .failure(ValueError("'\(host)' is not an IPv4 address")) }
        } else if let problem = hostNameProblem(host) {
            return .failure(ValueError("host '\(host)': \(problem)"))
        }
        return port(portText, in: s).map { .tcp(host: host.lowercased(), port: $0) }
    }

    private static func port(_ text: String, in whole: String) -> Result<UInt16, ValueError> {
        guard !text.isEmpty else { return .failure(ValueError("missing port in '\(whole)'")) }
        guard text.count <= 6, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text) else {
            return .failure(ValueError("port '\(text)' is not a number from 1 to 65535"))
        }
        guard (1...65_535).contains(value) else { return .failure(ValueError("port must be 1 to 65535, not \(value)")) }
        return .success(UInt16(value))
    }

    static func ipv4(_ s: String) -> Bool {
        var bytes = in_addr()
        return s.withCString { inet_pton(AF_INET, $0, &bytes) } == 1
    }

    /// The canonical text of an IPv6 address (zone kept), or nil when it is not one.
    static func ipv6(_ s: String) -> String? {
        var address = s
        var zone = ""
        if let percent = s.firstIndex(of: "%") {
            address = String(s[..<percent])
            zone = String(s[percent...])
            guard zone.count > 1, zone.dropFirst().allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                return nil
            }
        }
        guard !address.utf8.contains(0) else { return nil }
        var bytes = in6_addr()
        guard address.withCString({ inet_pton(AF_INET6, $0, &bytes) }) == 1 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        guard inet_ntop(AF_INET6, &bytes, &buffer, socklen_t(INET6_ADDRSTRLEN)) != nil else { return nil }
        let text = buffer.withUnsafeBufferPointer { pointer in
            String(decoding: pointer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text + zone
    }

    /// Why `name` is not a DNS host name (letters, digits, hyphens; labels of 1 to 63), or nil.
    static func hostNameProblem(_ name: String) -> String? {
        guard name.utf8.count <= 253 else { return "longer than 253 characters" }
        if name.hasSuffix(".") { return "remove the trailing dot" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            if label.isEmpty { return "has an empty label" }
            if label.utf8.count > 63 { return "label '\(label)' is longer than 63 characters" }
            if !label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                return "label '\(label)' may hold only letters, digits and hyphens"
            }
            if label.hasPrefix("-") || label.hasSuffix("-") { return "label '\(label)' starts or ends with a hyphen" }
        }
        return nil
    }

    /// Why `name` is not a valid `server-names` pattern, or nil: DNS labels, an optional leading `*.`.
    static func serverNameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "is empty" }
        var rest = Substring(name)
        if rest.hasPrefix("*.") {
            rest = rest.dropFirst(2)
            guard !rest.isEmpty else { return "'*.' needs a domain after it" }
        }
        if rest.contains("*") { return "a wildcard must be the whole leftmost label, as in *.example.com" }
        if let problem = hostNameProblem(String(rest)) { return problem }
        if let last = rest.split(separator: ".").last, last.allSatisfy({ $0.isNumber }) {
            return "looks like an IP address; clients never send IP addresses in SNI"
        }
        return nil
    }

    // MARK: Suggestions

    /// The candidate closest to `word` when it is close enough to be a likely typo.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let normalized = kebab(word)
        if let exact = candidates.first(where: { $0.lowercased() == normalized }) { return exact }
        let source = Array(normalized.unicodeScalars.prefix(64))
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(source, Array(candidate.lowercased().unicodeScalars))
            if d < (best?.1 ?? Int.max) { best = (candidate, d) }
        }
        guard let (candidate, d) = best else { return nil }
        let allowed = max(2, min(source.count, candidate.count) / 3)
        return d <= allowed ? candidate : nil
    }

    /// `maxHandshakes`, `max_handshakes` → `max-handshakes`.
    static func kebab(_ word: String) -> String {
        var out = ""
        var previousLower = false
        for ch in word {
            if ch.isUppercase && previousLower { out.append("-") }
            out.append(ch == "_" ? "-" : Character(ch.lowercased()))
            previousLower = ch.isLowercase || ch.isNumber
        }
        return out
    }

    private static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// Why a value is wrong (the message part of a `ConfigIssue`).
struct ValueError: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
