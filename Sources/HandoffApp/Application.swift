import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import ServiceLifecycle

/// The assembled service graph of `handoff serve`. Tests build the same graph with their own configuration.
package struct HandoffApplication: Sendable {
    package let workflow: Workflow
    package let services: [any Service]
    package let logger: Logger
    /// The HTTP API and dashboard server, when enabled (tests ask it for the bound port).
    package var httpServer: HTTPServerService? = nil
    /// Chat (Slack, Matrix): the event router, connections and, in Slack HTTP mode, the Events API handlers to mount.
    package var chat: ChatRuntime = .disabled
    /// The AI layer: provider (when configured) and answering service.
    package var ai: AIRuntime? = nil

    /// Opens the store (creating and migrating the SQLite file), loads the policy and assembles the services.
    package static func build(configuration: HandoffConfiguration, clock: any WorkflowClock = SystemClock(),
                              logger: Logger = Logger(label: "handoff")) async throws -> HandoffApplication
    {
        let (policy, source) = try configuration.loadPolicy()
        logger.info("policy loaded", metadata: ["source": "\(source)"])
        let workflow = try await openWorkflow(databasePath: configuration.databasePath, database: configuration.database, policy: policy,
                                              clock: clock, logger: logger)
        var scheduler = SchedulerService.Configuration()
        scheduler.interval = configuration.schedulerInterval
        var services: [any Service] = [
            SchedulerService(workflow: workflow, configuration: scheduler, logger: Logger(label: "handoff.scheduler")),
        ]
        // Webhooks (through the outbox), then the HTTP server last: services stop in reverse order, so
        // the server stops taking requests first and webhooks already in flight still finish.
        services.append(try await WebhookService(workflow: workflow, configuration: configuration.webhooks))
        // Chat (Slack and/or Matrix adapters, event router, card outbox, socket, sync loop); adds nothing and says why when nothing is set.
        let chat = try ChatRuntime.build(configuration: configuration, slack: configuration.slack, matrix: configuration.matrix,
                                         workflow: workflow, logger: Logger(label: "handoff.chat"))
        services += chat.services
        // The AI layer: answers questions asked in chat and applies approved prompt changes; without a
        // provider it says so once and questions go to people.
        let ai = try AIRuntime.build(options: configuration.ai, policyPath: configuration.chatPolicyPath, workflow: workflow,
                                     logger: Logger(label: "handoff.ai"))
        services += ai.services
        var httpServer: HTTPServerService?
        if configuration.http.enabled {
            // One watcher per process for commits other processes make (CLI decisions, a second serve),
            // so long-polls wake on those too; it stops after the server.
            let commits = CommitWatcher(store: workflow.store, configuration: configuration.http.commitWatcher,
                                        logger: Logger(label: "handoff.commit-watcher"))
            services.append(commits)
            let server = try await HTTPServerService(workflow: workflow, configuration: configuration.http, commits: commits,
                                                     mount: { [maxBodySize = configuration.http.maxBodySize] router in
                                                         chat.mountSlackRoutes(on: router, maxBodySize: maxBodySize)
                                                     },
                                                     readiness: { chat.readinessProblems() })
            services.append(server)
            httpServer = server
        }
        return HandoffApplication(workflow: workflow, services: services, logger: logger, httpServer: httpServer, chat: chat, ai: ai)
    }

    package static func openWorkflow(databasePath: String, database settings: SQLiteDatabase.Configuration = SQLiteDatabase.Configuration(),
                                     policy: WorkflowPolicy, clock: any WorkflowClock = SystemClock(),
                                     logger: Logger = Logger(label: "handoff")) async throws -> Workflow
    {
        let database = try SQLiteDatabase(path: databasePath, configuration: settings)
        let store = try await SQLWorkflowStore(database: database)
        logger.info("database ready", metadata: ["path": "\(databasePath)"])
        return Workflow(store: store, clock: clock, configuration: Workflow.Configuration(policy: policy),
                        logger: Logger(label: "handoff.workflow"))
    }

    /// Runs every service until SIGINT/SIGTERM, then shuts them down in reverse order and closes the store.
    package func run() async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            try? await workflow.store.close()
            throw error
        }
        try await workflow.store.close()
        logger.info("stopped cleanly")
    }
}
