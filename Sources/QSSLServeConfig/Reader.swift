// Typed reads of YAML nodes, each failure reported at the node's line and column.

import Yams

/// A `key: value` pair of a mapping, with positions and the model path of the value.
struct Entry {
    var key: String
    var keyLoc: Loc
    var value: Node
    var valueLoc: Loc
    var path: String
}

struct Reader {
    let document: YAMLDocument
    let sink: IssueSink

    func loc(_ node: Node, _ fallback: Loc) -> Loc {
        document.loc(node.mark, fallback: fallback)
    }

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    static func index(_ path: String, _ i: Int) -> String { "\(path)[\(i)]" }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            let text = scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "…" : scalar.string
            return "'\(text)'"
        }
    }

    /// The entries of a mapping with keys among `allowed`; unknown and duplicate keys are reported
    /// (with `hint(key)` or a close known key as a suggestion). A null value reads as empty.
    func mapping(
        _ node: Node, at fallback: Loc, path: String, allowed: [String],
        hint: (String) -> String? = { _ in nil }
    ) -> [String: Entry]? {
        if Self.isNull(node) { return [:] }
        guard case .mapping(let mapping) = node else {
            sink.add(loc(node, fallback), path, "expected a mapping (key: value), got \(Self.describe(node))")
            return nil
        }
        let mapLoc = loc(node, fallback)
        var entries: [String: Entry] = [:]
        for (keyNode, value) in mapping {
            let keyLoc = loc(keyNode, mapLoc)
            guard case .scalar(let scalar) = keyNode else {
                sink.add(keyLoc, path, "keys must be plain strings, got \(Self.describe(keyNode))")
                continue
            }
            let key = YAMLFront.strippingDuplicateMarker(scalar.string)
            let keyPath = Self.child(path, key)
            if let first = entries[key] {
                sink.add(keyLoc, keyPath, "duplicate key (first at line \(first.keyLoc.line))")
                continue
            }
            guard allowed.contains(key) else {
                var message = "unknown key '\(key)'"
                if let extra = hint(key) {
                    message += "; \(extra)"
                } else if let close = Values.suggestion(for: key, among: allowed) {
                    message += "; did you mean '\(close)'?"
                }
                sink.add(keyLoc, keyPath, message)
                continue
            }
            entries[key] = Entry(key: key, keyLoc: keyLoc, value: value, valueLoc: loc(value, keyLoc), path: keyPath)
        }
        return entries
    }

    private func located<T>(_ value: T, _ entry: Entry) -> Located<T> {
        Located(value: value, loc: entry.valueLoc, path: entry.path)
    }

    /// A non-empty string (numbers and booleans read as their text).
    func string(_ entry: Entry, what: String = "a string") -> Located<String>? {
        guard case .scalar(let scalar) = entry.value, !Self.isNull(entry.value) else {
            sink.add(entry.valueLoc, entry.path, "expected \(what), got \(Self.describe(entry.value))")
            return nil
        }
        guard !scalar.string.isEmpty else {
            sink.add(entry.valueLoc, entry.path, "must not be empty")
            return nil
        }
        return located(scalar.string, entry)
    }

    /// The items of a list, or of a single scalar when `singleAllowed`, as entries with index paths.
    func items(_ entry: Entry, singleAllowed: Bool, what: String) -> [Entry]? {
        switch entry.value {
        case .sequence(let sequence):
            return sequence.enumerated().map { i, node in
                let loc = loc(node, entry.valueLoc)
                return Entry(key: entry.key, keyLoc: loc, value: node, valueLoc: loc, path: Self.index(entry.path, i))
            }
        case .scalar where singleAllowed && !Self.isNull(entry.value):
            return [entry]
        default:
            sink.add(entry.valueLoc, entry.path, "expected \(what), got \(Self.describe(entry.value))")
            return nil
        }
    }

    /// Strings of a list (or a single string when `singleAllowed`); nil if any is wrong.
    func strings(_ entry: Entry, singleAllowed: Bool, nonEmpty: Bool = true) -> Located<[Located<String>]>? {
        let what = singleAllowed ? "a string or a list of strings" : "a list of strings"
        guard let items = items(entry, singleAllowed: singleAllowed, what: what) else { return nil }
        if nonEmpty && items.isEmpty {
            sink.add(entry.valueLoc, entry.path, "must list at least one value")
            return nil
        }
        var values: [Located<String>] = []
        var ok = true
        for item in items {
            if let value = string(item) { values.append(value) } else { ok = false }
        }
        return ok ? located(values, entry) : nil
    }

    func integer(_ entry: Entry, range: ClosedRange<Int>, note: String = "") -> Located<Int>? {
        guard case .scalar(let scalar) = entry.value, let value = Values.integer(scalar.string) else {
            sink.add(entry.valueLoc, entry.path, "expected an integer, got \(Self.describe(entry.value))")
            return nil
        }
        guard range.contains(value) else {
            sink.add(entry.valueLoc, entry.path, "must be \(range.lowerBound) to \(range.upperBound)\(note), not \(value)")
            return nil
        }
        return located(value, entry)
    }

    func bool(_ entry: Entry) -> Located<Bool>? {
        if case .scalar(let scalar) = entry.value {
            switch scalar.string.lowercased() {
            case "true": return located(true, entry)
            case "false": return located(false, entry)
            default: break
            }
        }
        sink.add(entry.valueLoc, entry.path, "expected true or false, got \(Self.describe(entry.value))")
        return nil
    }

    /// A duration in milliseconds within `range`; `zeroMeans` documents a 0 outside the range.
    func duration(_ entry: Entry, range: ClosedRange<Int64>, zeroAllowed: Bool = false) -> Located<Int64>? {
        guard case .scalar(let scalar) = entry.value, !Self.isNull(entry.value) else {
            sink.add(entry.valueLoc, entry.path, "expected a duration such as 10s, 500ms, 5m or 1h, got \(Self.describe(entry.value))")
            return nil
        }
        switch Values.milliseconds(scalar.string) {
        case .failure(let error):
            sink.add(entry.valueLoc, entry.path, error.message)
            return nil
        case .success(let ms):
            if ms == 0 && zeroAllowed { return located(0, entry) }
            guard range.contains(ms) else {
                let zero = zeroAllowed ? " (or 0 for none)" : ""
                sink.add(
                    entry.valueLoc, entry.path,
                    "must be \(Values.format(milliseconds: range.lowerBound)) to \(Values.format(milliseconds: range.upperBound))\(zero), not \(scalar.string.trimmingSpaces())"
                )
                return nil
            }
            return located(ms, entry)
        }
    }

    /// One of an enum's raw values (case-insensitive); `aliases` maps other spellings.
    func choice<E: RawRepresentable & CaseIterable>(_ entry: Entry, _: E.Type, aliases: [String: E] = [:]) -> Located<E>?
    where E.RawValue == String {
        let names = E.allCases.map(\.rawValue) + aliases.keys.sorted()
        if case .scalar(let scalar) = entry.value, !Self.isNull(entry.value) {
            let text = scalar.string.trimmingSpaces().lowercased()
            if let value = E(rawValue: text) ?? aliases[text] { return located(value, entry) }
        }
        var message = "must be one of \(names.joined(separator: ", ")); got \(Self.describe(entry.value))"
        if case .scalar(let scalar) = entry.value, let close = Values.suggestion(for: scalar.string, among: names) {
            message += "; did you mean '\(close)'?"
        }
        sink.add(entry.valueLoc, entry.path, message)
        return nil
    }

    /// A file path: not empty, no NUL, no `~`.
    func path(_ entry: Entry) -> Located<String>? {
        string(entry, what: "a file path").flatMap { checkPath($0) }
    }

    func checkPath(_ value: Located<String>) -> Located<String>? {
        if value.value.hasPrefix("~") {
            sink.add(value, "'~' is not expanded; write the full path")
            return nil
        }
        if value.value.utf8.contains(0) {
            sink.add(value, "path contains a NUL character")
            return nil
        }
        return value
    }
}
