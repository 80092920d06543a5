/// The one place that defines Q-SSL's version and the versions of the packages it is built on.
public enum QSSLVersion {
    /// Q-SSL's own version (semantic versioning).
    public static let version = "0.3.0"

    /// The dependency versions this release is built and tested with: the lower bounds of
    /// Package.swift, checked against the resolved graph by the unit tests.
    public static let dependencies: [(package: String, version: String)] = [
        ("swift-crypto", "4.5.2"),
        ("swift-certificates", "1.21.1"),
        ("swift-asn1", "1.7.4"),
        ("swift-nio", "2.101.3"),
        ("swift-argument-parser", "1.8.2")
    ]

    /// One line for `qssl --version`.
    public static var summary: String {
        "qssl \(version) (crypto: swift-crypto \(dependencies[0].version) with BoringSSL; X.509: Q-SSL's own on swift-asn1 \(dependencies[2].version); "
            + dependencies.map { "\($0.package) \($0.version)" }.joined(separator: ", ") + ")"
    }
}
