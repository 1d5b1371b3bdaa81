import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// All Matrix tests, one at a time, against one real Synapse started for the suite (see ``SynapseFixture``).
@Suite(.serialized, .synapse) struct MatrixAppTests {}

/// The homeserver and the people on it, shared by every test of the suite.
struct SynapseWorld: Sendable {
    let server: SynapseServer
    let alice: MatrixTestClient    // approver, agent
    let bob: MatrixTestClient      // approver, agent, expert
    let mallory: MatrixTestClient  // nobody
    let user: MatrixTestClient     // an end user who DMs the bot

    @TaskLocal static var current: SynapseWorld?

    /// The suite's homeserver; fails the test with a clear message when the fixture did not run.
    static func require() throws -> SynapseWorld {
        guard let world = current else {
            throw SynapseFailure(description: "no Synapse: Matrix tests must run inside @Suite(.synapse)")
        }
        return world
    }
}

/// Starts one Synapse for the whole suite (installing it into `.test-support/synapse-venv` the first
/// time), registers the people, and stops it afterwards — also when a test fails. If Synapse cannot be
/// installed or started, the suite fails with the reason.
struct SynapseFixture: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await SynapseServer.start()
        var logger = Logger(label: "test.synapse")
        logger.logLevel = .info
        logger.info("\(server.timings) on \(server.baseURL)")
        do {
            let world = SynapseWorld(
                server: server,
                alice: MatrixTestClient(server: server, user: try await server.register("alice")),
                bob: MatrixTestClient(server: server, user: try await server.register("bob")),
                mallory: MatrixTestClient(server: server, user: try await server.register("mallory")),
                user: MatrixTestClient(server: server, user: try await server.register("user")))
            try await SynapseWorld.$current.withValue(world) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        let stopping = ContinuousClock.now
        await server.stop()
        logger.info("Synapse stopped in \(ContinuousClock.now - stopping)")
    }
}

extension Trait where Self == SynapseFixture {
    /// One real Synapse homeserver for the suite.
    static var synapse: Self { Self() }
}

/// A whole chat stack (real SQLite file, workflow, Matrix adapter, router, outbox dispatcher, `/sync`
/// loop) logged in as a fresh bot user on the suite's Synapse, with its own rooms. Restartable on the
/// same database.
final class MatrixHarness: Sendable {
    struct Rooms: Sendable {
        var approvals: String
        var agents: String
    }

    struct Node: Sendable {
        var workflow: Workflow
        var runtime: ChatRuntime
        var group: ServiceGroup
        var task: Task<Void, any Error>
    }

    let world: SynapseWorld
    let bot: MatrixTestUser
    /// The bot's own view (its token) for checks on what it sent.
    let botClient: MatrixTestClient
    let rooms: Rooms
    let directory: TemporaryDirectory
    let clock: ManualClock
    let policyText: String
    private let tuning: Mutex<@Sendable (inout ChatRuntime.Options) -> Void>
    let settings: MatrixSettings
    private let nodes = Mutex<[Node]>([])

    var alice: MatrixTestClient { world.alice }
    var bob: MatrixTestClient { world.bob }
    var mallory: MatrixTestClient { world.mallory }
    var user: MatrixTestClient { world.user }
    var databasePath: String { directory.file("handoff.sqlite") }
    var policyPath: String { directory.file("handoff.yaml") }

    private init(world: SynapseWorld, bot: MatrixTestUser, rooms: Rooms, directory: TemporaryDirectory, policyText: String,
                 settings: MatrixSettings, tune: @escaping @Sendable (inout ChatRuntime.Options) -> Void)
    {
        self.world = world
        self.bot = bot
        self.botClient = MatrixTestClient(server: world.server, user: bot)
        self.rooms = rooms
        self.directory = directory
        self.clock = ManualClock()
        self.policyText = policyText
        self.settings = settings
        self.tuning = Mutex(tune)
    }

    /// Changes the options the next ``boot()`` uses (e.g. a bot that is slower after a restart).
    func retune(_ tune: @escaping @Sendable (inout ChatRuntime.Options) -> Void) { tuning.withLock { $0 = tune } }

    static func policy(rooms: Rooms, extra: String = "") -> String {
        """
        groups:
          approvers: [matrix:@alice:localhost, matrix:@bob:localhost]
          agents: [matrix:@alice:localhost, matrix:@bob:localhost]
          experts: [matrix:@bob:localhost]
          reviewers: [matrix:@bob:localhost]
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 1h, on_expiry: reject }
          quorum2: { deciders: [approvers], quorum: 2, expires_after: 1h }
        escalation:
          tiers:
            - { name: ai }
            - { name: agent, group: agents, sla: 30m, ack_timeout: 2h, channel: agents }
            - { name: expert, group: experts, sla: 4h, ack_timeout: 8h, channel: agents }
        chat:
          channels:
            approvals: { matrix: "\(rooms.approvals)" }
            agents: { matrix: "\(rooms.agents)" }
            default: { matrix: "\(rooms.approvals)" }
        \(extra)
        """
    }

    /// A fresh bot user and database; alice makes the approvals room (with bob and mallory) and the
    /// agents room (with bob) in `roomVersion`, and invites the bot, which joins on its own.
    static func start(roomVersion: String = "11", policyExtra: String = "", accessTokenOnly: Bool = false, homeserverURL: String? = nil,
                      allowedInviters: [String] = [], world explicitWorld: SynapseWorld? = nil,
                      tune: @escaping @Sendable (inout ChatRuntime.Options) -> Void = { _ in }) async throws -> MatrixHarness
    {
        let world = try explicitWorld ?? SynapseWorld.require()
        let bot = try await world.server.register("handoffbot-\(UUID().uuidString.prefix(8).lowercased())")
        let approvals = try await world.alice.createRoom(version: roomVersion, name: "approvals",
                                                         invite: [world.bob.userID, world.mallory.userID])
        try await world.bob.join(approvals)
        try await world.mallory.join(approvals)
        let agents = try await world.alice.createRoom(version: roomVersion, name: "agents", invite: [world.bob.userID])
        try await world.bob.join(agents)
        let rooms = Rooms(approvals: approvals, agents: agents)
        let directory = try TemporaryDirectory(prefix: "handoff-matrix")
        let policy = Self.policy(rooms: rooms, extra: policyExtra)
        try policy.write(toFile: directory.file("handoff.yaml"), atomically: true, encoding: .utf8)
        var settings = MatrixSettings(homeserver: homeserverURL ?? world.server.baseURL, user: bot.userID,
                                      password: accessTokenOnly ? nil : bot.password,
                                      accessToken: accessTokenOnly ? bot.accessToken : nil)
        settings.deviceID = "HANDOFF1"
        settings.allowedInviters = allowedInviters
        let harness = MatrixHarness(world: world, bot: bot, rooms: rooms, directory: directory, policyText: policy, settings: settings,
                                    tune: tune)
        try await harness.boot()
        for room in [approvals, agents] {
            try await world.alice.invite(bot.userID, to: room)
        }
        for room in [approvals, agents] {
            let joined = await eventually(timeout: .seconds(20)) { (try? await world.alice.membership(of: bot.userID, in: room)) == "join" }
            #expect(joined, "the bot did not join \(room)")
        }
        return harness
    }

    var node: Node { nodes.withLock { $0[0] } }
    var workflow: Workflow { node.workflow }
    var runtime: ChatRuntime { node.runtime }
    var sync: MatrixSyncService { node.runtime.matrixSync! }
    var adapter: MatrixAdapter { node.runtime.matrix! }

    /// Starts the stack on the database and waits until the bot syncs.
    @discardableResult
    func boot() async throws -> Node {
        let policy = try PolicyFile.parse(policyText)
        var logger = Logger(label: "test.matrix")
        logger.logLevel = .warning
        let workflow = try await HandoffApplication.openWorkflow(databasePath: databasePath, policy: policy, clock: clock, logger: logger)
        var configuration = HandoffConfiguration()
        configuration.databasePath = databasePath
        configuration.policyPath = policyPath
        var options = ChatRuntime.Options()
        options.templatesDirectory = PackagePaths.cardTemplates
        options.router.pollInterval = .milliseconds(50)
        options.dispatcher.pollInterval = .milliseconds(50)
        options.matrixSync.syncTimeout = .seconds(10)
        options.matrixSync.initialBackoff = .milliseconds(100)
        options.matrixSync.maxBackoff = .seconds(2)
        tuning.withLock { $0 }(&options)
        let runtime = try ChatRuntime.build(configuration: configuration, slack: SlackSettings(), matrix: settings, workflow: workflow,
                                            options: options, logger: logger)
        let group = ServiceGroup(configuration: .init(services: runtime.services, gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        let node = Node(workflow: workflow, runtime: runtime, group: group, task: task)
        nodes.withLock { $0.append(node) }
        let ready = await eventually(timeout: .seconds(30)) {
            (node.runtime.router?.isReady("matrix") ?? false) && (node.runtime.matrixSync?.completedSyncs ?? 0) > 0
        }
        #expect(ready, "the Matrix stack did not come up (sync status: \(String(describing: node.runtime.matrixSync?.status)))")
        return node
    }

    /// Stops every node's services (graceful shutdown) and closes their databases.
    func shutdown() async {
        let all = nodes.withLock { n -> [Node] in
            defer { n = [] }
            return n
        }
        for node in all.reversed() {
            await shutDown(node.group, running: node.task, within: .seconds(20))
            try? await node.workflow.store.close()
        }
    }

    /// Changes the database while the bot is down (a crash's leftovers, a first start).
    func offline(_ body: (SQLWorkflowStore) async throws -> Void) async throws {
        let store = try await SQLWorkflowStore(database: SQLiteDatabase(path: databasePath))
        do {
            try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    var syncTokenKey: String { MatrixStateKeys.syncToken(user: bot.userID) }

    func restart() async throws {
        await shutdown()
        try await boot()
    }

    /// Stops the stack and removes its files (the homeserver stays up for the next test).
    func stop() async {
        await shutdown()
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
    func card(of entity: EntityRef, timeout: Duration = .seconds(20)) async throws -> CardRef {
        var found: CardRef?
        _ = await eventually(timeout: timeout) {
            found = (try? await workflow.store.cards(of: entity))?.last { $0.state == .posted && $0.platform == "matrix" }
            return found != nil
        }
        return try #require(found, "no Matrix card was posted for \(entity)")
    }

    /// Waits until the bot's seeded reactions are on the card (as people see them).
    func seeded(_ card: CardRef, _ keys: Set<String>) async -> Bool {
        await eventually(timeout: .seconds(20)) {
            Set((try? await alice.reactionKeys(on: card.messageID ?? "", in: card.channel, by: bot.userID)) ?? []) == keys
        }
    }

    /// The card's current text as people see it: the latest edit's new content, else the original.
    func cardText(_ card: CardRef) async throws -> (body: String, html: String) {
        let id = try #require(card.messageID)
        if let edit = try await alice.latestEdit(of: id, in: card.channel) {
            return (edit.member("body")?.asString ?? "", edit.member("formatted_body")?.asString ?? "")
        }
        let original = try await alice.event(id, in: card.channel)
        return (original.member(path: "content", "body")?.asString ?? "", original.member(path: "content", "formatted_body")?.asString ?? "")
    }

    /// How many times the bot edited the card.
    func edits(of card: CardRef) async throws -> Int {
        try await alice.relations(of: card.messageID ?? "", in: card.channel, relType: "m.replace", eventType: "m.room.message")
            .filter { $0.member("sender")?.asString == bot.userID }.count
    }

    /// The raw inbound row of a Matrix event: `pending`, `done`, `failed`, or nil when never recorded.
    func inboundStatus(_ eventID: String) async throws -> String? {
        let store = try #require(workflow.store as? SQLWorkflowStore)
        return try await store.database.read(
            "SELECT status FROM inbound_events WHERE platform = 'matrix' AND event_key = ?", [.text("event:\(eventID)")]).first?["status"].string
    }

    /// Waits until the bot has recorded and processed an event.
    func handled(_ eventID: String, timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(timeout: timeout) { (try? await inboundStatus(eventID)) == "done" }
    }

    /// Waits until every recorded inbound event was processed.
    func inboundSettled(timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(timeout: timeout) {
            guard let pending = try? await workflow.store.pendingInbound(platform: nil, limit: 1) else { return false }
            return pending.isEmpty
        }
    }

    /// Messages the bot sent a person in their direct room (the person accepts the bot's invite first).
    func privateMessages(to person: MatrixTestClient) async throws -> [String] {
        try await person.acceptInvites()
        let key = MatrixStateKeys.directRoom(bot: bot.userID, user: person.userID)
        guard let room = try await workflow.store.value(forKey: key) else { return [] }
        return try await person.messages(in: room, from: bot.userID).compactMap { $0.member(path: "content", "body")?.asString }
    }

    func approval(_ id: ApprovalID) async throws -> Approval { try await workflow.approval(id) }

    /// Waits until the entity's chat outbox rows are all delivered (or failed).
    func outboxSettled(_ entity: EntityRef, timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(timeout: timeout) {
            let rows = (try? await workflow.store.outbox(of: entity)) ?? []
            return rows.allSatisfy { $0.kind == .webhook || $0.status != .pending }
        }
    }
}
