// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Q-SSL",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QSSLWire", targets: ["QSSLWire"]),
        .library(name: "QSSL", targets: ["QSSL"]),
        .library(name: "QSSLSwiftCrypto", targets: ["QSSLSwiftCrypto"]),
        .library(name: "QSSLP384", targets: ["QSSLP384"]),
        .library(name: "QSSLX509", targets: ["QSSLX509"]),
        .library(name: "NIOQSSL", targets: ["NIOQSSL"]),
        .library(name: "QSSLPKCS11", targets: ["QSSLPKCS11"]),
        .library(name: "QSSLProxyProtocol", targets: ["QSSLProxyProtocol"]),
        .library(name: "QSSLRedis", targets: ["QSSLRedis"]),
        .library(name: "QSSLFleet", targets: ["QSSLFleet"]),
        .executable(name: "qssl", targets: ["QSSLTool"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Tests only: swift-nio-ssl (BoringSSL) as an in-process interop peer.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6")
    ],
    targets: [
        // TLS presentation language, code points and messages. No dependencies at all.
        .target(name: "QSSLWire"),
        // The sans-I/O protocol core and the provider protocols it is written against.
        // Imports neither NIO, Foundation nor any crypto implementation.
        // CQSSLConstantTime only for its optimisation barrier (constant-time comparison).
        .target(name: "QSSL", dependencies: ["QSSLWire", "CQSSLConstantTime"]),
        // An optimisation barrier for secret-derived masks, the x86-64 Montgomery multiplication
        // (mulx/adcx/adox) and the valgrind hooks of the constant-time validation.
        .target(name: "CQSSLConstantTime"),
        // Q-SSL's own constant-time P-384 (ECDH, ECDSA); swift-crypto only for SHA-384/HMAC.
        .target(
            name: "QSSLP384",
            dependencies: ["CQSSLConstantTime", "CQSSLBoringAEAD", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Q-SSL's declarations of the few BoringSSL AEAD calls inside swift-crypto that let the
        // record layer seal and open in place (see its header).
        .target(name: "CQSSLBoringAEAD"),
        // The default crypto provider on swift-crypto (and QSSLP384 for P-384).
        .target(
            name: "QSSLSwiftCrypto",
            dependencies: [
                "QSSL", "QSSLP384", "CQSSLBoringAEAD",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto")
            ]
        ),
        // Certificates, private keys and chain verification on swift-certificates.
        .target(
            name: "QSSLX509",
            dependencies: [
                "QSSL", "QSSLSwiftCrypto", "QSSLP384",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto")
            ]
        ),
        // Q-SSL's own minimal PKCS#11 declarations and the dlopen calls (no vendored headers).
        .target(name: "CPKCS11", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // Keys in an HSM over PKCS#11: module loading, login, session pool, signing threads.
        .target(
            name: "QSSLPKCS11",
            dependencies: [
                "CPKCS11", "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLP384", "QSSLX509",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1")
            ]
        ),
        // SwiftNIO adapter: a ChannelHandler that carries the core over a Channel, and OCSP over
        // HTTP (fetching for the verifier, answering for `qssl ocsp-responder`).
        .target(
            name: "NIOQSSL",
            dependencies: [
                "QSSL", "QSSLX509",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio")
            ]
        ),
        // The PROXY protocol (v1 text, v2 binary with TLVs): what `qssl serve` sends to its
        // backends and accepts from a load balancer. No dependencies.
        .target(name: "QSSLProxyProtocol"),
        // The TLS-terminating proxy behind `qssl serve`: listeners, backends with back-pressure
        // and half-close, PROXY protocol, limits, reload, drain, access log and metrics.
        .target(
            name: "QSSLProxy",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLX509", "NIOQSSL", "QSSLProxyProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus")
            ]
        ),
        // The `qssl serve` configuration file (YAML): a typed model with every error's line.
        .target(name: "QSSLServeConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // A small Redis client on SwiftNIO (RESP3/RESP2, pool, pipelining, Redis Cluster).
        .target(
            name: "QSSLRedis",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ]
        ),
        // A fleet of servers sharing resumption through Redis: the session-ID cache and the
        // ticket keys, sealed under a fleet key and bound to the service.
        .target(
            name: "QSSLFleet",
            dependencies: [
                "QSSL", "QSSLRedis", "QSSLX509", "QSSLSwiftCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log")
            ]
        ),
        .executableTarget(
            name: "QSSLTool",
            dependencies: [
                "QSSL", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL", "QSSLPKCS11", "QSSLProxy", "QSSLServeConfig",
                "QSSLProxyProtocol", "QSSLFleet", "QSSLRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1")
            ]
        ),
        // `qssl-bench` (not a product: `swift build --product qssl-bench`, scripts/bench): in-process
        // handshakes, record layer, resumption and P-384 figures, the P-384 timing test and the
        // differential check. The target's name is the executable's.
        .executableTarget(
            name: "qssl-bench",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "QSSLP384", "QSSLTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),  // the raw primitives next to Q-SSL's
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "NIOQSSL",  // tls-echo: the adapter without the proxy layer
                .product(name: "NIOCore", package: "swift-nio"),  // tcp-echo: the transport's floor
                .product(name: "NIOPosix", package: "swift-nio")
            ],
            path: "Sources/QSSLBenchTool"
        ),
        // The constant-time validation's driver (scripts/ct-check, under valgrind): a dev tool,
        // not a product; the target's name is the executable's.
        .executableTarget(name: "qssl-ct-check", dependencies: ["QSSLP384", "CQSSLConstantTime"], path: "Sources/QSSLConstantTimeCheck"),
        // Library examples (README): built with everything else, so they cannot rot.
        .executableTarget(
            name: "SNIEchoServer",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio")
            ],
            path: "Examples/SNIEchoServer"
        ),
        .executableTarget(
            name: "IdentityCheckingClient",
            dependencies: ["QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL"],
            path: "Examples/IdentityCheckingClient"
        ),
        // What the tests share (not a product): the in-memory pair driver, a deterministic
        // generator, the test PKI, the Redis fixture, the P-384 differential check (with qssl-bench).
        .target(
            name: "QSSLTestSupport",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "QSSLRedis", "QSSLP384",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio")
            ]
        ),
        .testTarget(name: "QSSLWireTests", dependencies: ["QSSLWire"]),
        .testTarget(name: "QSSLProxyProtocolTests", dependencies: ["QSSLProxyProtocol", "QSSLTestSupport"]),
        .testTarget(name: "QSSLServeConfigTests", dependencies: ["QSSLServeConfig", "QSSLTestSupport"]),
        .testTarget(
            name: "QSSLRedisTests",
            dependencies: [
                "QSSLRedis", "QSSLTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio")
            ]
        ),
        // Against real redis-server processes (one node and a three-master cluster) and three
        // `qssl serve` processes (OpenSSL s_client resuming across them).
        .testTarget(
            name: "QSSLFleetTests",
            dependencies: [
                "QSSLFleet", "QSSL", "QSSLWire", "QSSLRedis", "QSSLSwiftCrypto", "QSSLTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio")
            ]
        ),
        .testTarget(
            name: "QSSLP384Tests",
            dependencies: ["QSSLP384", "CQSSLConstantTime", "QSSLTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources")]
        ),
        .testTarget(
            name: "QSSLTests",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "QSSLTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates")
            ],
            resources: [.copy("Resources")]
        ),
        .testTarget(
            name: "NIOQSSLTests",
            dependencies: [
                "QSSL", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL", "QSSLProxy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio")
            ]
        ),
        .testTarget(
            name: "QSSLInteropTests",
            dependencies: [
                "QSSL", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto")
            ],
            exclude: ["Peers"]
        ),
        // Against SoftHSM2 (scripts/softhsm-setup makes the token; skipped without softhsm2).
        .testTarget(
            name: "QSSLPKCS11Tests",
            dependencies: [
                "QSSL", "QSSLWire", "QSSLSwiftCrypto", "QSSLX509", "NIOQSSL", "QSSLPKCS11",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1")
            ]
        )
    ]
)
