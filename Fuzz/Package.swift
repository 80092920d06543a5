// swift-tools-version:5.4
// libFuzzer targets for Q-SSL. Tools version 5.4 on purpose: with 5.5 and later SwiftPM links
// executables with a renamed `<target>_main` entry point and `-sanitize=fuzzer` fails to link.
// Build and run with Fuzz/run (see Fuzz/README.md).
import PackageDescription

let qssl: [Target.Dependency] = [
    .product(name: "QSSLWire", package: "Q-SSL"),
    .product(name: "QSSL", package: "Q-SSL"),
    .product(name: "QSSLSwiftCrypto", package: "Q-SSL"),
    .product(name: "QSSLX509", package: "Q-SSL"),
    .product(name: "QSSLP384", package: "Q-SSL")
]

/// One executable per fuzz target; Fuzz/run runs them all.
let fuzzTargets = [
    "FuzzRecords", "FuzzHandshakeMessages", "FuzzExtensions", "FuzzX509",
    "FuzzServer13", "FuzzClient13", "FuzzServer12", "FuzzClient12", "FuzzSessions",
    "FuzzP384"
]

let package = Package(
    name: "QSSLFuzz",
    dependencies: [
        .package(name: "Q-SSL", path: ".."),
        .package(name: "swift-crypto", url: "https://github.com/apple/swift-crypto.git", from: "4.5.2")
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: qssl + [.product(name: "Crypto", package: "swift-crypto")])
    ] + fuzzTargets.map { .executableTarget(name: $0, dependencies: ["FuzzSupport"]) }
)
