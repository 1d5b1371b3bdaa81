// swift-tools-version:6.2
import PackageDescription

/// The same settings on every target: Swift 6 language mode (the tools-version default) with
/// strict concurrency, and upcoming features that keep the code explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "handoff",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "handoff", targets: ["handoff"]),
        .executable(name: "handoff-bench", targets: ["handoff-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Pure domain: entities, policies, state machines. No I/O, injected clock and ids.
        .target(
            name: "HandoffCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Persistence: the WorkflowStore protocol, SQLite (GRDB) and PostgreSQL backends.
        .target(
            name: "HandoffStore",
            dependencies: [
                "HandoffCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the WAL hook that moves checkpoints off the commit path (SQLiteDatabase.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Orchestration: load, apply a core transition, commit one change set; timers; policy file.
        .target(
            name: "HandoffWorkflow",
            dependencies: [
                "HandoffCore", "HandoffStore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Chat runtime, platform-neutral: inbound events, cards, the command grammar, reactions. No networking.
        .target(
            name: "HandoffChatKit",
            dependencies: [
                "HandoffCore",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Slack adapter: Socket Mode, Events API over HTTP, Web API, Block Kit.
        .target(
            name: "HandoffSlack",
            dependencies: [
                "HandoffChatKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Matrix adapter: client-server API, /sync long-poll service, HTML cards seeded with reactions.
        .target(
            name: "HandoffMatrix",
            dependencies: [
                "HandoffChatKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // LLM providers (Anthropic Messages, OpenAI-compatible chat completions), confidence estimators, calibration.
        .target(
            name: "HandoffAI",
            dependencies: [
                "HandoffCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Wiring: services, HTTP API, dashboard, scheduler, outbox dispatcher, event router.
        .target(
            name: "HandoffApp",
            dependencies: [
                "HandoffCore", "HandoffStore", "HandoffWorkflow", "HandoffChatKit", "HandoffSlack", "HandoffMatrix", "HandoffAI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "handoff",
            dependencies: [
                "HandoffApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The benchmark (issue 9): the real service graph against the test support's fakes.
        .executableTarget(
            name: "handoff-bench",
            dependencies: [
                "HandoffApp", "HandoffCore", "HandoffStore", "HandoffWorkflow", "HandoffChatKit", "HandoffTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fakes and helpers every test (and the benchmark) needs.
        .target(
            name: "HandoffTesting",
            dependencies: [
                "HandoffCore", "HandoffStore", "HandoffWorkflow",
                // JSON access for the Matrix test client (the neutral ChatKit, no networking).
                "HandoffChatKit",
                // The fake Slack (FakeSlack*.swift): a Hummingbird server with WebSocket upgrade on loopback.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // A real Synapse homeserver and a client for the test humans (Synapse*.swift, MatrixTestClient.swift).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffCoreTests",
            dependencies: ["HandoffCore", "HandoffTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffAppTests",
            dependencies: ["HandoffApp", "HandoffTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffChatKitTests",
            dependencies: ["HandoffChatKit", "HandoffTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffSlackTests",
            dependencies: ["HandoffSlack", "HandoffChatKit", "HandoffTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffMatrixTests",
            dependencies: [
                "HandoffMatrix", "HandoffChatKit", "HandoffTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffAITests",
            dependencies: [
                "HandoffAI", "HandoffCore", "HandoffTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HandoffStoreTests",
            dependencies: ["HandoffCore", "HandoffStore", "HandoffWorkflow", "HandoffTesting"],
            swiftSettings: swiftSettings
        ),
    ]
)
