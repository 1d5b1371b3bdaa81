import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// All chat integration tests, one at a time: each drives a whole stack (real SQLite file, workflow,
/// Slack adapter, router, outbox dispatcher, Socket Mode client) against the fake Slack.
@Suite(.serialized) struct ChatAppTests {}

/// The people in the test policy.
enum People {
    static let alice = "U0ALICE"      // approver
    static let bob = "U0BOB"          // approver
    static let carol = "U0CAROL"      // reviewer
    static let dave = "U0DAVE"        // agent
    static let erin = "U0ERIN"        // expert
    static let mallory = "U0MALLORY"  // nobody
    static let user = "U0USER"        // an end user
}

enum Channels {
    static let approvals = "C0APPROVALS"
    static let reviews = "C0REVIEWS"
    static let agents = "C0AGENTS"
    static let experts = "C0EXPERTS"
    static let fallback = "C0HANDOFF"
}

/// A whole chat stack against the fake Slack, restartable on the same database.
final class ChatHarness: Sendable {
    static let defaultPolicy = """
        groups:
          approvers: [slack:U0ALICE, slack:U0BOB]
          reviewers: [slack:U0CAROL]
          labelers: [slack:U0CAROL, slack:U0DAVE]
          agents: [slack:U0DAVE]
          experts: [slack:U0ERIN]
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 1h, on_expiry: reject }
          quorum2: { deciders: [approvers], quorum: 2, expires_after: 1h }
          lenient: { deciders: [approvers], expires_after: 1h, default_reject_reason: "Rejected from chat without a reason" }
        queues:
          default: { reviewers: [reviewers], channel: reviews, lease: 15m, sla: 4h }
        escalation:
          tiers:
            - { name: ai }
            - { name: agent, group: agents, sla: 30m, ack_timeout: 2h, channel: agents }
            - { name: expert, group: experts, sla: 4h, ack_timeout: 8h, channel: experts }
        chat:
          channels:
            approvals: { slack: C0APPROVALS }
            reviews: { slack: C0REVIEWS }
            agents: { slack: C0AGENTS }
            experts: { slack: C0EXPERTS }
            default: { slack: C0HANDOFF }
        """

    struct Node: Sendable {
        var workflow: Workflow
        var runtime: ChatRuntime
        var group: ServiceGroup
        var task: Task<Void, any Error>
    }

    let directory: TemporaryDirectory
    let fake: FakeSlack
    let clock: ManualClock
    let policyText: String
    let mode: SlackSettings.Mode
    private let nodes = Mutex<[Node]>([])

    var databasePath: String { directory.file("handoff.sqlite") }
    var policyPath: String { directory.file("handoff.yaml") }

    private init(directory: TemporaryDirectory, fake: FakeSlack, clock: ManualClock, policyText: String, mode: SlackSettings.Mode) {
        self.directory = directory
        self.fake = fake
        self.clock = clock
        self.policyText = policyText
        self.mode = mode
    }

    static func start(policy: String = defaultPolicy, fake fakeConfiguration: FakeSlack.Configuration = FakeSlack.Configuration(),
                      mode: SlackSettings.Mode = .socket) async throws -> ChatHarness
    {
        let directory = try TemporaryDirectory(prefix: "handoff-chat")
        try policy.write(toFile: directory.file("handoff.yaml"), atomically: true, encoding: .utf8)
        let fake = try await FakeSlack.start(fakeConfiguration)
        let harness = ChatHarness(directory: directory, fake: fake, clock: ManualClock(), policyText: policy, mode: mode)
        try await harness.boot()
        return harness
    }

    /// The first (or only) node.
    var node: Node { nodes.withLock { $0[0] } }
    var workflow: Workflow { node.workflow }
    var runtime: ChatRuntime { node.runtime }

    /// Starts a node: opens the database (a replica when one is already running) and runs the chat services.
    @discardableResult
    func boot(withDispatcher: Bool = true) async throws -> Node {
        let policy = try PolicyFile.parse(policyText)
        var logger = Logger(label: "test.chat")
        logger.logLevel = .warning
        let workflow = try await HandoffApplication.openWorkflow(databasePath: databasePath, policy: policy, clock: clock, logger: logger)
        var configuration = HandoffConfiguration()
        configuration.databasePath = databasePath
        configuration.policyPath = policyPath
        let settings = SlackSettings(appToken: mode == .socket ? fake.configuration.appToken : nil, botToken: fake.configuration.botToken,
                                     signingSecret: fake.configuration.signingSecret, apiURL: fake.apiURL)
        var options = ChatRuntime.Options()
        options.templatesDirectory = PackagePaths.cardTemplates
        options.router.pollInterval = .milliseconds(50)
        options.dispatcher.pollInterval = .milliseconds(50)
        options.socket = { c in
            c.lifecycle.initialBackoff = .milliseconds(50)
            c.lifecycle.maxBackoff = .seconds(1)
            c.lifecycle.tooManyWebsocketsBackoff = .milliseconds(500)
        }
        let runtime = try ChatRuntime.build(configuration: configuration, slack: settings, workflow: workflow, options: options, logger: logger)
        // A replica without its own dispatcher: the store does not lease outbox rows to one process.
        let services = withDispatcher ? runtime.services : runtime.services.filter { !($0 is OutboxDispatcher) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        let node = Node(workflow: workflow, runtime: runtime, group: group, task: task)
        nodes.withLock { $0.append(node) }
        let ready = await eventually {
            let routerReady = node.runtime.router?.isReady("slack") ?? false
            guard mode == .socket else { return routerReady }
            return routerReady && node.runtime.socketMode?.status == .connected
        }
        #expect(ready, "the chat stack did not come up")
        return node
    }

    /// Stops every node's services (graceful shutdown) and closes their databases.
    func shutdown() async {
        let all = nodes.withLock { n -> [Node] in
            defer { n = [] }
            return n
        }
        for node in all.reversed() {
            await shutDown(node.group, running: node.task, within: .seconds(15))
            try? await node.workflow.store.close()
        }
    }

    /// A restart: everything stops, then starts again on the same database.
    func restart() async throws {
        await shutdown()
        try await boot()
    }

    func stop() async {
        await shutdown()
        await fake.stop()
        directory.remove()
    }

    // MARK: Helpers

    func requestApproval(_ action: String = "deploy", requester: String = "key:deploy-bot", policy: String = "default",
                         summary: String? = "Deploy api 1.4.2") async throws -> Approval
    {
        try await workflow.requestApproval(ApprovalRequest(
            action: action, arguments: .object(["service": .string("api"), "version": .string("1.4.2")]), summary: summary,
            requester: ActorID(requester), policyName: policy)).approval
    }

    /// The posted card of an entity (waits for the outbox to post it).
    func card(of entity: EntityRef, destination: String? = nil, timeout: Duration = .seconds(10)) async throws -> CardRef {
        var found: CardRef?
        _ = await eventually(timeout: timeout) {
            found = (try? await workflow.store.cards(of: entity))?.last { $0.state == .posted && (destination == nil || $0.destination == destination) }
            return found != nil
        }
        return try #require(found, "no card was posted for \(entity)")
    }

    func message(_ card: CardRef) async -> FakeSlack.Message? {
        await fake.message(channel: card.channel, ts: card.messageID ?? "")
    }

    /// Waits until the entity's chat outbox rows are all delivered (or failed).
    func outboxSettled(_ entity: EntityRef, timeout: Duration = .seconds(10)) async -> Bool {
        await eventually(timeout: timeout) {
            let rows = (try? await workflow.store.outbox(of: entity)) ?? []
            return rows.allSatisfy { $0.kind == .webhook || $0.status != .pending }
        }
    }

    /// Waits until every recorded inbound event was processed.
    func inboundSettled(timeout: Duration = .seconds(10)) async -> Bool {
        await eventually(timeout: timeout) {
            guard let pending = try? await workflow.store.pendingInbound(platform: nil, limit: 1) else { return false }
            return pending.isEmpty
        }
    }

    func approval(_ id: ApprovalID) async throws -> Approval { try await workflow.approval(id) }

    /// Private replies a person got (ephemeral in channels; DMs count too).
    func privateReplies(to user: String) async -> [String] {
        let ephemeral = await fake.ephemerals(for: user).map(\.text)
        let dm = await fake.messages(in: FakeSlack.dmChannel(for: user)).filter { $0.botID != nil }.map(\.text)
        return ephemeral + dm
    }
}
