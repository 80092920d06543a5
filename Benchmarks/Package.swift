// swift-tools-version:6.1
// Allocation counts for Q-SSL, kept out of the main package so that CI's build does not grow:
// `Benchmarks/allocations` builds this package in release mode and runs it with the ordo-one
// malloc interposer preloaded (the interposer counts malloc/calloc/realloc/posix_memalign).
import PackageDescription

let package = Package(
    name: "QSSLBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Q-SSL", path: ".."),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1")
    ],
    targets: [
        .executableTarget(
            name: "QSSLAllocations",
            dependencies: [
                .product(name: "QSSL", package: "Q-SSL"),
                .product(name: "QSSLSwiftCrypto", package: "Q-SSL"),
                .product(name: "QSSLX509", package: "Q-SSL"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer")
            ]
        )
    ]
)
