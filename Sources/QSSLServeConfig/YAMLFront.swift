// Turns the text into a Yams node tree, reporting YAML syntax errors (and duplicate keys, which
// Yams refuses one mapping at a time) as issues with their line and column.

import Foundation
import Yams

/// A composed document, and how to map its marks back to the original text.
struct YAMLDocument {
    var root: Node
    /// Texts inserted to rename duplicate keys: per line, (column, length) in the composed text.
    var insertions: [Int: [(column: Int, length: Int)]] = [:]

    func loc(_ mark: Mark?, fallback: Loc) -> Loc {
        guard let mark else { return fallback }
        return YAMLFront.original(line: mark.line, column: mark.column, insertions: insertions)
    }
}

enum YAMLFront {
    /// Keys renamed so that Yams accepts a mapping with duplicates: `__qssl_dup_N__key` is the
    /// earlier occurrence of `key`.
    static let duplicatePrefix = "__qssl_dup_"
    static let maximumRenames = 64
    /// Deeper documents are refused before Yams composes them recursively (a real one is ~7 deep).
    static let maximumNestingEstimate = 300

    /// The key without a duplicate marker, and whether it had one.
    static func strippingDuplicateMarker(_ key: String) -> String {
        guard key.hasPrefix(duplicatePrefix) else { return key }
        let rest = key.dropFirst(duplicatePrefix.count)
        guard let end = rest.range(of: "__") else { return key }
        return String(rest[end.upperBound...])
    }

    static func load(_ text: String, sink: IssueSink) -> YAMLDocument? {
        if let loc = excessiveNesting(text) {
            sink.add(loc, "", "nesting is too deep (more than \(maximumNestingEstimate) levels)")
            return nil
        }
        var current = text
        var insertions: [Int: [(column: Int, length: Int)]] = [:]
        var renamed: [(key: String, loc: Loc)] = []
        for attempt in 0...maximumRenames {
            do {
                guard let root = try Yams.compose(yaml: current, .default, .default, .utf8) else {
                    sink.add(Loc(line: 1, column: 1), "", "the configuration is empty; it needs at least listeners:")
                    return nil
                }
                return YAMLDocument(root: root, insertions: insertions)
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                let mark = context.mark
                let loc = original(line: mark.line, column: mark.column, insertions: insertions)
                let key = duplicates.first ?? ""
                guard attempt < maximumRenames, key != "<uncovertable>",
                    let (updated, column) = insertMarker(number: attempt, key: key, line: mark.line, column: mark.column, in: current)
                else {
                    sink.add(loc, "", "duplicate key '\(key)' in this mapping")
                    reportRenamed(renamed, sink: sink)
                    return nil
                }
                let length = duplicatePrefix.count + String(attempt).count + 2
                var onLine = insertions[mark.line] ?? []
                for index in onLine.indices where onLine[index].column >= column { onLine[index].column += length }
                onLine.append((column, length))
                insertions[mark.line] = onLine
                renamed.append((key, loc))
                current = updated
            } catch let error as YamlError {
                reportSyntax(error, text: current, insertions: insertions, sink: sink)
                reportRenamed(renamed, sink: sink)
                return nil
            } catch {
                sink.add(Loc(line: 1, column: 1), "", "YAML: \(error)")
                return nil
            }
        }
        return nil
    }

    private static func reportRenamed(_ renamed: [(key: String, loc: Loc)], sink: IssueSink) {
        for (key, loc) in renamed { sink.add(loc, "", "duplicate key '\(key)' in this mapping") }
    }

    private static func reportSyntax(_ error: YamlError, text: String, insertions: [Int: [(column: Int, length: Int)]], sink: IssueSink) {
        func at(_ mark: Mark) -> Loc { original(line: mark.line, column: mark.column, insertions: insertions) }
        func contextText(_ context: YamlError.Context?) -> String {
            guard let context else { return "" }
            return " (\(context.text) at line \(at(context.mark).line))"
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            sink.add(at(mark), "", "YAML syntax error: \(problem)\(contextText(context))")
        case .composer(let context, let problem, let mark, _):
            if context?.text.contains("single document") == true {
                sink.add(at(mark), "", "YAML: only one document is allowed (found a second one)")
            } else {
                sink.add(at(mark), "", "YAML: \(problem)")
            }
        case .reader(let problem, let offset, let value, _):
            let loc = offset.map { lineAndColumn(scalarOffset: $0, in: text) }.map { original(line: $0.line, column: $0.column, insertions: insertions) }
            let what = value >= 0 ? String(format: " (U+%04X)", value) : ""
            sink.add(loc ?? Loc(line: 1, column: 1), "", "YAML: \(problem)\(what)")
        default:
            sink.add(Loc(line: 1, column: 1), "", "YAML: \(error)")
        }
    }

    // MARK: Positions

    /// The original column of a column in the text with markers inserted.
    static func original(line: Int, column: Int, insertions: [Int: [(column: Int, length: Int)]]) -> Loc {
        var col = column
        for insertion in insertions[line] ?? [] where insertion.column < column { col -= insertion.length }
        return Loc(line: line, column: max(col, 1))
    }

    /// Unicode scalars split into lines the way libyaml counts them (CR LF, CR, LF, NEL, LS, PS).
    private static func isBreak(_ s: Unicode.Scalar) -> Bool {
        s == "\n" || s == "\r" || s == "\u{85}" || s == "\u{2028}" || s == "\u{2029}"
    }

    static func lineAndColumn(scalarOffset: Int, in text: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var index = 0
        var previousCR = false
        for scalar in text.unicodeScalars {
            if index >= scalarOffset { break }
            index += 1
            if scalar == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = scalar == "\r"
            if isBreak(scalar) {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }

    /// The text with `__qssl_dup_N__` inserted at the start of the key at (line, column), and the
    /// column where it went; nil when the key is not where expected.
    private static func insertMarker(number: Int, key: String, line: Int, column: Int, in text: String) -> (String, Int)? {
        var scalars = Array(text.unicodeScalars)
        var index = 0
        var currentLine = 1
        while currentLine < line && index < scalars.count {
            let s = scalars[index]
            index += 1
            if s == "\r", index < scalars.count, scalars[index] == "\n" { index += 1 }
            if isBreak(s) { currentLine += 1 }
        }
        guard currentLine == line else { return nil }
        index += column - 1
        guard column >= 1, index < scalars.count else { return nil }
        let marker = Array("\(duplicatePrefix)\(number)__".unicodeScalars)
        var insertColumn = column
        if scalars[index] == "\"" || scalars[index] == "'" {
            index += 1
            insertColumn += 1
        } else {
            guard scalars[index...].starts(with: key.unicodeScalars) else { return nil }
        }
        scalars.insert(contentsOf: marker, at: index)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return (String(view), insertColumn)
    }

    /// Where a cheap upper bound of the nesting depth passes `maximumNestingEstimate`: flow
    /// brackets open so far, plus twice the indentation, plus the block indicators on the line.
    static func excessiveNesting(_ text: String) -> Loc? {
        var flow = 0
        var line = 1
        var column = 0
        var indent = 0
        var compact = 0
        var atIndent = true
        var inComment = false
        var previous: Unicode.Scalar = "\n"
        for scalar in text.unicodeScalars {
            if isBreak(scalar) {
                if !(scalar == "\n" && previous == "\r") { line += 1 }
                column = 0
                indent = 0
                compact = 0
                atIndent = true
                inComment = false
                previous = scalar
                continue
            }
            column += 1
            if atIndent && scalar == " " { indent += 1 } else { atIndent = false }
            if !inComment {
                switch scalar {
                case "#" where previous == " " || previous == "\t" || column == 1: inComment = true
                case "[", "{": flow += 1
                case "]", "}": flow = max(0, flow - 1)
                case " " where previous == "-" || previous == ":" || previous == "?": compact += 1
                default: break
                }
            }
            previous = scalar
            if flow + 2 * indent + compact > maximumNestingEstimate { return Loc(line: line, column: column) }
        }
        return nil
    }
}
