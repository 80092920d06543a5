import Testing

@testable import QSSLServeConfig

/// The issues of a configuration (none when it parses).
func issues(_ yaml: String, checkFiles: Bool = false) -> [ConfigIssue] {
    switch ServeConfigFile.parse(yaml: yaml, path: "t.yaml", checkFiles: checkFiles) {
    case .success: return []
    case .failure(let errors): return errors.issues
    }
}

/// The parsed configuration; records a failure (with every issue) when it does not parse.
func parsed(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ServeConfigFile? {
    switch ServeConfigFile.parse(yaml: yaml, path: "t.yaml") {
    case .success(let config): return config
    case .failure(let errors):
        Issue.record("unexpected errors:\n\(errors)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Expects an issue at line:column with this path whose message contains `text`.
func expectIssue(
    _ found: [ConfigIssue], line: Int, column: Int? = nil, path: String, _ text: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let match = found.contains {
        $0.line == line && (column == nil || $0.column == column) && $0.path == path && $0.message.contains(text)
    }
    #expect(
        match, "no issue \(line):\(column.map(String.init) ?? "*") \(path): …\(text)… in:\n\(found.map(\.description).joined(separator: "\n"))",
        sourceLocation: sourceLocation)
}

/// A valid listener body, indented for a `listeners:` list item.
let minimalYAML = """
    listeners:
      - listen: 127.0.0.1:8443
        backend: echo
        certificates:
          - cert: /c.pem
            key: /k.pem
    """
