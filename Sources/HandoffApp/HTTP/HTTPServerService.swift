import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The HTTP server of `handoff serve`: the JSON API under `/v1`, the web dashboard at `/`, and
/// `/healthz`, `/readyz`, `/metrics`.
///
/// On graceful shutdown the listener closes first (no new connections), long-poll waiters answer at
/// once with the current state, and requests in flight finish before `run()` returns.
package final class HTTPServerService: Service, Sendable {
    package struct Configuration: Sendable {
        /// Off: `serve` runs without the HTTP server.
        package var enabled: Bool = true
        /// `--host`, `HANDOFF_HOST`.
        package var host: String = "127.0.0.1"
        /// `--port`, `HANDOFF_PORT`; 0 picks a free port (see ``HTTPServerService/port()``).
        package var port: Int = 8080
        /// Larger request bodies are refused with 413.
        package var maxBodySize: Int = 1 << 20
        /// The longest `?wait=` a long-poll may hold a request.
        package var maxLongPoll: Duration = .seconds(60)
        /// How `serve` notices other processes' commits for long-polls (see ``CommitWatcher``).
        package var commitWatcher = CommitWatcher.Configuration()
        /// Per-key request rate (429 beyond it).
        package var rateLimit = RateLimiter.Configuration()
        package var dashboard = DashboardConfiguration()

        package init() {}
    }

    package let configuration: Configuration
    let workflow: Workflow
    let responder: RouterResponder<BasicRequestContext>
    let waiters: EntityWaiters
    let decisionMetrics: DecisionMetricsRecorder
    let logger: Logger
    private let bound = BoundPort()
    /// Every registered route as `METHOD /path` (the OpenAPI check compares these with the document).
    package let routes: [String]

    /// - Parameters:
    ///   - commits: the process's watcher for other processes' commits, so long-polls wake on those too.
    ///   - mount: adds routes other components serve on the same port (e.g. Slack's Events API in HTTP mode).
    ///   - readiness: what else `/readyz` asks besides the database (e.g. chat connections that stopped for good).
    package init(workflow: Workflow, configuration: Configuration, logger: Logger = Logger(label: "handoff.http"),
                 commits: CommitWatcher? = nil, mount: (@Sendable (HTTPRouter) -> Void)? = nil,
                 readiness: ReadinessCheck? = nil) async throws
    {
        HandoffMetrics.bootstrap()
        self.configuration = configuration
        self.workflow = workflow
        self.logger = logger
        self.waiters = EntityWaiters(workflow: workflow, commits: commits)
        self.decisionMetrics = DecisionMetricsRecorder(workflow: workflow)
        let router = try await Self.makeRouter(workflow: workflow, configuration: configuration, waiters: waiters, logger: logger,
                                               readiness: readiness)
        mount?(router)
        self.routes = router.routes.map { "\($0.method.rawValue) \($0.path)" }.sorted()
        self.responder = router.buildResponder()
    }

    /// Builds the router with every route; tests read `routes` from it.
    static func makeRouter(workflow: Workflow, configuration: Configuration, waiters: EntityWaiters, logger: Logger,
                           readiness: ReadinessCheck? = nil) async throws -> HTTPRouter
    {
        let router = HTTPRouter(context: BasicRequestContext.self)
        // Metrics outermost, so they count the status the caller finally gets (after error mapping).
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: APIErrorMiddleware(maxBodySize: configuration.maxBodySize))
        let kit = APIToolkit(
            workflow: workflow, authenticator: APIAuthenticator(store: workflow.store, clock: workflow.clock),
            limiter: RateLimiter(configuration: configuration.rateLimit), maxBodySize: configuration.maxBodySize)
        OpsRoutes(workflow: workflow, readiness: readiness).register(on: router)
        APIRoutes(kit: kit, waiters: waiters, maxLongPoll: configuration.maxLongPoll).register(on: router)
        let dashboard = try await Dashboard(workflow: workflow, kit: kit, configuration: configuration.dashboard, logger: logger)
        dashboard.register(on: router)
        return router
    }

    /// Long-poll requests waiting for a commit right now.
    package var waitingRequests: Int { waiters.count }

    /// The port the server listens on, once it does (useful with port 0). Throws when it failed to start.
    package func port() async throws -> Int { try await bound.value() }

    package func run() async throws {
        let app = Application(
            responder: responder,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { [bound, logger, configuration] channel in
                let port = channel.localAddress?.port ?? configuration.port
                bound.set(.success(port))
                logger.info("HTTP API and dashboard listening", metadata: ["address": "http://\(configuration.host):\(port)"])
            },
            logger: logger)
        waiters.start()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.decisionMetrics.run() }
                defer { decisionMetrics.finish() }
                try await withGracefulShutdownHandler {
                    try await app.run()
                } onGracefulShutdown: {
                    self.waiters.shutdown()
                }
            }
        } catch {
            waiters.stop()
            bound.set(.failure(error))
            throw error
        }
        waiters.stop()
        bound.set(.failure(CancellationError()))
        logger.info("HTTP server stopped")
    }
}

/// A value set once (the bound port) that any number of tasks can wait for.
final class BoundPort: Sendable {
    private let state = Mutex<(result: Result<Int, any Error>?, waiters: [CheckedContinuation<Int, any Error>])>((nil, []))

    func set(_ result: Result<Int, any Error>) {
        let waiters = state.withLock { s -> [CheckedContinuation<Int, any Error>] in
            guard s.result == nil else { return [] }
            s.result = result
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    func value() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { s -> Result<Int, any Error>? in
                if let result = s.result { return result }
                s.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// What `/readyz` asks besides the database: the problems that make this process not ready (a chat
/// connection that stopped for good, …), each a sentence an operator can act on; empty when none.
package typealias ReadinessCheck = @Sendable () -> [String]

/// `/healthz` (the process answers), `/readyz` (the database answers and nothing stopped for good) and
/// `/metrics` (Prometheus text).
struct OpsRoutes: Sendable {
    let workflow: Workflow
    var readiness: ReadinessCheck? = nil

    struct Status: Encodable { var status: String }

    func register(on router: HTTPRouter) {
        router.get("/healthz") { _, _ -> Response in
            try Self.json(Status(status: "ok"))
        }
        router.get("/readyz") { _, context -> Response in
            do {
                try await workflow.store.ping()
            } catch {
                context.logger.warning("readiness check failed", metadata: ["error": "\(error)"])
                return APIError.unavailable("the database does not answer", retryAfter: 1).response
            }
            let problems = readiness?() ?? []
            guard problems.isEmpty else {
                return APIError.unavailable("not ready: " + problems.joined(separator: "; ")).response
            }
            return try Self.json(Status(status: "ready"))
        }
        router.get("/metrics") { _, context -> Response in
            do {
                try await HandoffMetrics.refreshGauges(workflow: workflow)
            } catch {
                context.logger.warning("could not refresh database gauges", metadata: ["error": "\(error)"])
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: HandoffMetrics.registry.emitToBuffer())))
        }
    }

    static func json(_ value: some Encodable) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try WireJSON.encoder().encode(value))))
    }
}
