// Diagnostics of the qssl serve configuration file: every problem carries its line and column.

/// One problem in a configuration file, at a line and column (both from 1; 0 when the problem
/// concerns the whole file, e.g. it could not be read).
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// Line, from 1 (0: the whole file).
    public var line: Int
    /// Column in Unicode scalars, from 1 (0: the whole line or file).
    public var column: Int
    /// Where in the model, e.g. `listeners[1].limits.max-handshakes`; empty for YAML syntax errors.
    public var path: String
    /// What is wrong, e.g. `must be 1 to 1000000, not 0`.
    public var message: String

    public init(line: Int, column: Int, path: String, message: String) {
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `12:5: listeners[0].limits.max-handshakes: must be 1 to 1000000, not 0`.
    public var description: String { render(file: nil) }

    /// `FILE:LINE:COLUMN: PATH: MESSAGE`, leaving out what is unknown.
    public func render(file: String?) -> String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if line > 0 {
            parts.append(String(line))
            if column > 0 { parts.append(String(column)) }
        }
        let prefix = parts.joined(separator: ":")
        let body = path.isEmpty ? message : "\(path): \(message)"
        return prefix.isEmpty ? body : "\(prefix): \(body)"
    }
}

/// All the problems found in one configuration file, in the order of their position.
public struct ConfigErrors: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file name the issues are reported against (the `path:` given to `parse`).
    public var file: String
    /// At least one issue, sorted by line and column.
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    /// One line per issue: `/etc/qssl/serve.yaml:12:5: listeners[0].limits.max-handshakes: must be 1 to 1000000, not 0`.
    public var description: String {
        issues.map { $0.render(file: file) }.joined(separator: "\n")
    }
}

/// A position in the file (line and column from 1).
struct Loc: Sendable, Hashable {
    var line: Int
    var column: Int
    static let file = Loc(line: 0, column: 0)
}

/// A value read from the file, with where it was written.
struct Located<T> {
    var value: T
    var loc: Loc
    var path: String
    /// True when a listener got this value from `defaults:`.
    var fromDefaults = false

    func map<U>(_ transform: (T) -> U) -> Located<U> {
        Located<U>(value: transform(value), loc: loc, path: path, fromDefaults: fromDefaults)
    }

    var inherited: Located<T> {
        var copy = self
        copy.fromDefaults = true
        return copy
    }
}

extension Located: Sendable where T: Sendable {}

/// Collects issues; stops storing after `limit` of them (the rest are counted).
final class IssueSink {
    static let limit = 250
    private(set) var issues: [ConfigIssue] = []
    private var seen = Set<ConfigIssue>()
    private var dropped = 0

    var isEmpty: Bool { issues.isEmpty }
    var count: Int { issues.count + dropped }

    func add(_ loc: Loc, _ path: String, _ message: String) {
        let issue = ConfigIssue(line: loc.line, column: loc.column, path: path, message: message)
        guard !seen.contains(issue) else { return }
        guard issues.count < Self.limit else {
            dropped += 1
            return
        }
        seen.insert(issue)
        issues.append(issue)
    }

    func add<T>(_ value: Located<T>, _ message: String) {
        add(value.loc, value.path, message)
    }

    /// Issues sorted by position (stable), with a last line counting those not stored.
    func sorted() -> [ConfigIssue] {
        var result = issues.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
        if dropped > 0 {
            result.append(ConfigIssue(line: 0, column: 0, path: "", message: "\(dropped) more issue(s) not shown"))
        }
        return result
    }
}
