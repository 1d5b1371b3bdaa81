import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffSlack
import HandoffStore
import HandoffWorkflow
import Logging
import ServiceLifecycle

/// Slack settings from the environment: `SLACK_APP_TOKEN` + `SLACK_BOT_TOKEN` for Socket Mode (the
/// default, no public URL needed), or `SLACK_BOT_TOKEN` + `SLACK_SIGNING_SECRET` for the Events API
/// over HTTP. Tokens are ``HandoffChatKit/Secret``s and never print.
package struct SlackSettings: Sendable, CustomStringConvertible {
    package enum Mode: String, Sendable {
        case socket, http
    }

    package var appToken: HandoffChatKit.Secret?
    package var botToken: HandoffChatKit.Secret?
    package var signingSecret: HandoffChatKit.Secret?
    /// `SLACK_API_URL`: the Web API base (a proxy, or a fake in tests). Default `https://slack.com/api/`.
    package var apiURL: String?
    /// `SLACK_MODE=http` forces the Events API even when an app token is set.
    package var forceHTTP = false

    package init(appToken: String? = nil, botToken: String? = nil, signingSecret: String? = nil, apiURL: String? = nil) {
        self.appToken = appToken.flatMap { $0.isEmpty ? nil : HandoffChatKit.Secret($0) }
        self.botToken = botToken.flatMap { $0.isEmpty ? nil : HandoffChatKit.Secret($0) }
        self.signingSecret = signingSecret.flatMap { $0.isEmpty ? nil : HandoffChatKit.Secret($0) }
        self.apiURL = apiURL
    }

    package static func fromEnvironment(_ env: [String: String]) -> SlackSettings {
        var s = SlackSettings(appToken: env["SLACK_APP_TOKEN"], botToken: env["SLACK_BOT_TOKEN"],
                              signingSecret: env["SLACK_SIGNING_SECRET"], apiURL: env["SLACK_API_URL"].flatMap { $0.isEmpty ? nil : $0 })
        s.forceHTTP = env["SLACK_MODE"]?.lowercased() == "http"
        return s
    }

    /// Which mode the settings enable, or why none.
    package var mode: Result<Mode, NotConfigured> {
        guard botToken != nil else {
            return .failure(NotConfigured(description: "Slack is not connected: SLACK_BOT_TOKEN is not set. Set SLACK_APP_TOKEN and SLACK_BOT_TOKEN for Socket Mode (or SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for the Events API over HTTP); see README, \"Connect to Slack\"."))
        }
        if appToken != nil && !forceHTTP { return .success(.socket) }
        if signingSecret != nil { return .success(.http) }
        return .failure(NotConfigured(description: "Slack is not connected: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (Events API over HTTP) is."))
    }

    package struct NotConfigured: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package var description: String {
        "SlackSettings(app: \(appToken?.description ?? "-"), bot: \(botToken?.description ?? "-"), signing: \(signingSecret == nil ? "-" : "(redacted)"))"
    }
}

/// Everything chat adds to the service graph, for every platform whose settings are present: the
/// adapters (Slack and/or Matrix), one event router, one chat outbox dispatcher, and each platform's
/// connection service (the Slack socket in Socket Mode, the Matrix `/sync` loop); in Slack HTTP mode,
/// the Events API handlers to mount.
package struct ChatRuntime: Sendable {
    package struct Options: Sendable {
        /// `templates/cards` (see ``HandoffChatKit/CardTemplates/defaultDirectory(environment:)``).
        package var templatesDirectory: String?
        package var router = ChatRouter.Configuration()
        package var dispatcher = OutboxDispatcher.Configuration()
        package var api = SlackWebAPIClient.Configuration()
        /// Socket Mode tuning (timeouts, pings, backoff); the app token is filled in from the settings.
        package var socket: (@Sendable (inout SlackSocketModeClient.Configuration) -> Void)?
        /// Matrix client tuning (timeouts, rate-limit waits); the homeserver and credentials come from the settings.
        package var matrixClient: (@Sendable (inout MatrixClient.Configuration) -> Void)?
        /// The Matrix `/sync` loop; the configured rooms and the invite allow-list are filled in from the
        /// policy and the settings.
        package var matrixSync = MatrixSyncService.Configuration()
        /// The Matrix adapter; the reaction map comes from the policy.
        package var matrixAdapter = MatrixAdapter.Configuration()
        /// The chat section of the policy; read from the policy file when nil.
        package var chat: ChatConfiguration?

        package init() {}
    }

    /// Long-lived services, in start order (they stop in reverse: connections first, HTTP client last).
    package let services: [any Service]
    package let router: ChatRouter?
    package let slack: SlackAdapter?
    package let socketMode: SlackSocketModeClient?
    /// Set in HTTP mode: mount it at `/slack/events` and `/slack/interactivity` (see ``mountSlackRoutes``).
    package let slackEvents: SlackEventsEndpoint?
    package let matrix: MatrixAdapter?
    package let matrixSync: MatrixSyncService?
    package let deliverer: ChatDeliverer?
    package let dispatcher: OutboxDispatcher?

    /// Why chat makes this process not ready: a connection that stopped for good (Slack `link_disabled`
    /// or a refused token, Matrix token loss without a password) or an adapter whose credentials were
    /// refused. Empty while everything runs or retries (edge case A22: exits or reports unhealthy).
    package func readinessProblems() -> [String] {
        var problems: [String] = []
        if case .stopped(let reason)? = socketMode?.status, reason != .shutdown {
            problems.append("Slack Socket Mode stopped: \(reason)")
        }
        if case .stopped(.fatal(let why))? = matrixSync?.status {
            problems.append("Matrix sync stopped: \(why)")
        }
        for (platform, why) in (router?.unusablePlatforms ?? [:]).sorted(by: { $0.key < $1.key }) {
            problems.append("\(platform) is not usable: \(why)")
        }
        return problems
    }

    package static let disabled = ChatRuntime(services: [], router: nil, slack: nil, socketMode: nil, slackEvents: nil, matrix: nil,
                                              matrixSync: nil, deliverer: nil, dispatcher: nil)

    /// Builds the chat services for the configured platforms; logs clearly (per platform) what is not
    /// connected and why, and adds nothing when no platform is.
    package static func build(configuration: HandoffConfiguration, slack settings: SlackSettings, matrix matrixSettings: MatrixSettings = MatrixSettings(),
                              workflow: Workflow, options: Options = Options(), logger: Logger = Logger(label: "handoff.chat")) throws -> ChatRuntime
    {
        var slackMode: SlackSettings.Mode?
        switch settings.mode {
        case .success(let m): slackMode = m
        case .failure(let why): logger.notice("\(why.description)")
        }
        var matrixClientConfiguration: MatrixClient.Configuration?
        switch matrixSettings.client {
        case .success(let c): matrixClientConfiguration = c
        case .failure(let why): logger.notice("\(why.description)")
        }
        guard slackMode != nil || matrixClientConfiguration != nil else { return .disabled }

        let chat = try options.chat ?? ChatConfiguration.load(path: configuration.chatPolicyPath)
        let templates = try CardTemplates.load(directory: options.templatesDirectory ?? CardTemplates.defaultDirectory())
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var adapters: [any ChatAdapter] = []

        var slackAdapter: SlackAdapter?
        var slackAPI: SlackWebAPIClient?
        if slackMode != nil, let botToken = settings.botToken {
            if chat.channel(for: "approvals", platform: SlackInbound.platform) == nil {
                logger.warning("no Slack channel is configured for approvals: add chat.channels.approvals.slack (or chat.channels.default.slack) to the policy file, or cards cannot be posted")
            }
            var api = options.api
            if let url = settings.apiURL { api.baseURL = url }
            let client = SlackWebAPIClient(http: http, configuration: api, logger: Logger(label: "handoff.slack.api"))
            var adapterConfiguration = SlackAdapter.Configuration(botToken: botToken)
            adapterConfiguration.reactions = chat.reactions
            let adapter = SlackAdapter(api: client, renderer: BlockKitRenderer(templates: templates), configuration: adapterConfiguration,
                                       logger: Logger(label: "handoff.slack"))
            adapters.append(adapter)
            slackAdapter = adapter
            slackAPI = client
        }

        var matrixAdapter: MatrixAdapter?
        var matrixClient: MatrixClient?
        if var clientConfiguration = matrixClientConfiguration {
            if chat.channel(for: "approvals", platform: MatrixStoredEvent.platform) == nil {
                logger.warning("no Matrix room is configured for approvals: add chat.channels.approvals.matrix: \"!room:server\" (or chat.channels.default.matrix) to the policy file, or cards cannot be posted")
            }
            options.matrixClient?(&clientConfiguration)
            let client = MatrixClient(http: http, configuration: clientConfiguration, logger: Logger(label: "handoff.matrix.api"))
            var adapterConfiguration = options.matrixAdapter
            adapterConfiguration.reactions = chat.reactions
            let adapter = MatrixAdapter(client: client, renderer: MatrixRenderer(templates: templates), state: StoreMatrixState(workflow: workflow),
                                        configuration: adapterConfiguration, logger: Logger(label: "handoff.matrix"))
            adapters.append(adapter)
            matrixAdapter = adapter
            matrixClient = client
        }

        let router = ChatRouter(workflow: workflow, adapters: adapters, chat: chat, configuration: options.router,
                                logger: Logger(label: "handoff.chat.router"))
        let deliverer = ChatDeliverer(workflow: workflow, adapters: adapters, chat: chat, logger: Logger(label: "handoff.chat.outbox"))
        let dispatcher = OutboxDispatcher(workflow: workflow, deliverers: [deliverer], configuration: options.dispatcher,
                                          logger: Logger(label: "handoff.chat.outbox"))
        var services: [any Service] = [HTTPClientService(client: http), router, dispatcher]
        var socket: SlackSocketModeClient?
        var events: SlackEventsEndpoint?
        switch slackMode {
        case .socket?:
            if let appToken = settings.appToken, let slackAPI {
                var socketConfiguration = SlackSocketModeClient.Configuration(appToken: appToken)
                options.socket?(&socketConfiguration)
                let client = SlackSocketModeClient(api: slackAPI, sink: router, configuration: socketConfiguration,
                                                   logger: Logger(label: "handoff.slack.socket"))
                services.append(client)
                socket = client
                logger.info("Slack: Socket Mode (SLACK_APP_TOKEN and SLACK_BOT_TOKEN are set)")
            }
        case .http?:
            if let secret = settings.signingSecret {
                events = SlackEventsEndpoint(configuration: .init(signingSecret: secret), sink: router, logger: Logger(label: "handoff.slack.http"))
                logger.info("Slack: Events API over HTTP; Slack must reach POST /slack/events and /slack/interactivity")
            }
        case nil:
            break
        }
        var sync: MatrixSyncService?
        if let matrixClient {
            var syncConfiguration = options.matrixSync
            syncConfiguration.knownRooms.formUnion(chat.channels.values.compactMap { $0[MatrixStoredEvent.platform] })
            if !matrixSettings.allowedInviters.isEmpty { syncConfiguration.invites.allowedInviters = matrixSettings.allowedInviters }
            syncConfiguration.invites.allowedRooms.formUnion(matrixSettings.allowedRooms)
            let service = MatrixSyncService(client: matrixClient, sink: router, state: StoreMatrixState(workflow: workflow),
                                            configuration: syncConfiguration, logger: Logger(label: "handoff.matrix.sync"))
            services.append(service)
            sync = service
            logger.info("Matrix: syncing as \(matrixSettings.user ?? "the access token's user") on \(matrixSettings.homeserver ?? "-")")
        }
        return ChatRuntime(services: services, router: router, slack: slackAdapter, socketMode: socket, slackEvents: events,
                           matrix: matrixAdapter, matrixSync: sync, deliverer: deliverer, dispatcher: dispatcher)
    }
}

/// Keeps the shared HTTP client alive while the chat services run and shuts it down after them
/// (it is first in the list, so it stops last).
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

extension HandoffConfiguration {
    /// The policy file the chat section is read from: the configured one, else `./handoff.yaml` if present.
    package var chatPolicyPath: String? {
        if let policyPath { return policyPath }
        return FileManager.default.fileExists(atPath: "handoff.yaml") ? "handoff.yaml" : nil
    }
}
