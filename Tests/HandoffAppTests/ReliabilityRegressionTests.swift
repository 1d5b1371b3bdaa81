import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// A chat adapter for router tests: payloads are small JSON objects (`{"key","user","text"}`) read as
/// `/handoff <text>` commands; it can be told to fail transiently, and it records what it sends.
final class ScriptedAdapter: ChatAdapter {
    enum Readiness: Sendable {
        case ready
        /// `prepare` keeps failing transiently (the platform is down).
        case never
        /// `prepare` is refused for good (a revoked token).
        case refused
    }

    struct State {
        var transientFailures: [String: Int] = [:]
        var translations: [String: Int] = [:]
        var privateReplies: [String: [String]] = [:]
    }

    let platform: String
    let readiness: Readiness
    private let state = Mutex(State())

    init(platform: String, readiness: Readiness = .ready) {
        self.platform = platform
        self.readiness = readiness
    }

    /// The next `times` translations of this key fail transiently.
    func failTransiently(_ key: String, times: Int) { state.withLock { $0.transientFailures[key] = times } }
    func translations(of key: String) -> Int { state.withLock { $0.translations[key] ?? 0 } }
    var totalTranslations: Int { state.withLock { $0.translations.values.reduce(0, +) } }
    func privateReplies(to user: String) -> [String] { state.withLock { $0.privateReplies[user] ?? [] } }

    static func payload(key: String, user: String, text: String) -> String {
        JSONValue.object(["key": .string(key), "user": .string(user), "text": .string(text)]).jsonText
    }

    func prepare() async throws {
        switch readiness {
        case .ready: return
        case .never: throw ChatDeliveryError(.transient, "\(platform) is down")
        case .refused: throw ChatDeliveryError(.fatal, "\(platform) refused the token")
        }
    }

    func translate(_ payload: String) throws -> HandoffChatKit.InboundEvent? {
        let json = try JSONValue.parsePayload(payload)
        guard let key = json.member("key")?.asString, let user = json.member("user")?.asString else {
            throw MalformedPayload(description: "no key or user")
        }
        let fail = state.withLock { s -> Bool in
            s.translations[key, default: 0] += 1
            guard let left = s.transientFailures[key], left > 0 else { return false }
            s.transientFailures[key] = left - 1
            return true
        }
        if fail { throw ChatDeliveryError(.transient, "simulated outage") }
        return HandoffChatKit.InboundEvent(platform: platform, dedupeKey: key, actor: PlatformUser(platform: platform, id: user),
                            kind: .command(name: "handoff", text: json.member("text")?.asString ?? "help"),
                            conversation: ConversationRef(platform: platform, channel: "C1", user: user))
    }

    func postCard(_ card: Card, channel: String, thread: String?, nonce: String) async throws(ChatDeliveryError) -> PostedMessage {
        throw ChatDeliveryError(.permanent, "no cards here")
    }

    func updateCard(_ card: Card, channel: String, messageID: String, idempotencyKey: String?) async throws(ChatDeliveryError) {}

    func findCard(nonce: String, channel: String, since: Date) async throws(ChatDeliveryError) -> PostedMessage? { nil }

    func send(_ text: RichText, to conversation: ConversationRef, idempotencyKey: String?) async throws(ChatDeliveryError) {
        record(text, for: conversation.user ?? "")
    }

    func sendPrivately(_ text: RichText, to user: String, channel: String, thread: String?) async throws(ChatDeliveryError) {
        record(text, for: user)
    }

    func render(_ text: RichText) -> String { text.description }

    func acknowledge(channel: String, messageID: String, with reaction: ReactionAction) async throws(ChatDeliveryError) {}

    private func record(_ text: RichText, for user: String) {
        state.withLock { $0.privateReplies[user, default: []].append(text.description) }
    }
}

/// A router with scripted adapters on a real SQLite file, run as a service.
struct RouterRig {
    let directory: TemporaryDirectory
    let workflow: Workflow
    let router: ChatRouter
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(adapters: [ScriptedAdapter], configure: (inout ChatRouter.Configuration) -> Void = { _ in }) async throws -> RouterRig {
        let directory = try TemporaryDirectory(prefix: "handoff-router")
        var logger = Logger(label: "test.router")
        logger.logLevel = .critical
        let workflow = try await HandoffApplication.openWorkflow(databasePath: directory.file("handoff.sqlite"), policy: WorkflowPolicy(),
                                                                 logger: logger)
        var configuration = ChatRouter.Configuration()
        configuration.pollInterval = .milliseconds(20)
        configure(&configuration)
        let router = ChatRouter(workflow: workflow, adapters: adapters, chat: ChatConfiguration(), configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [router], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        return RouterRig(directory: directory, workflow: workflow, router: router, group: group, task: task)
    }

    func record(_ adapter: ScriptedAdapter, key: String, user: String = "U1", text: String = "help") async throws {
        _ = try await workflow.store.recordInbound(platform: adapter.platform, eventKey: key,
                                                   payload: ScriptedAdapter.payload(key: key, user: user, text: text), at: Date())
    }

    func row(_ key: String) async throws -> SQLRow? {
        let database = try #require((workflow.store as? SQLWorkflowStore)?.database)
        return try await database.read("SELECT status, attempts, next_attempt_at, last_error FROM inbound_events WHERE event_key = ?",
                                       [.text(key)]).first
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? await workflow.store.close()
        directory.remove()
    }
}

/// Regression tests for the defects review found in the chat runtime (each failed before its fix).
@Suite(.serialized) struct ReliabilityRegressionTests {
    @Test("Defect 1: events of a platform that is not ready, and events backing off, neither starve newer events nor make the router spin")
    func notReadyAndBackedOffRowsDoNotStarveOthers() async throws {
        let ready = ScriptedAdapter(platform: "test")
        let down = ScriptedAdapter(platform: "down", readiness: .never)
        let rig = try await RouterRig.start(adapters: [ready, down]) { c in
            c.batch = 100
            c.retryDelay = .seconds(30)  // a failed row stays backed off for the whole test
        }
        // More rows than a batch, all for the platform that is down, ahead of the ready platform's rows.
        for i in 0..<150 { try await rig.record(down, key: "down-\(i)") }
        ready.failTransiently("slow", times: 1)
        try await rig.record(ready, key: "slow")
        for i in 0..<3 { try await rig.record(ready, key: "new-\(i)", user: "U\(i)") }
        #expect(await eventually(timeout: .seconds(5)) { rig.router.processed == 3 }, "the newer events were processed")
        #expect(await eventually { rig.router.retried == 1 })
        // The failed row backs off in the database: it is not re-read, and nothing else is due.
        let translated = ready.totalTranslations
        #expect(try await rig.router.processPending() == false, "nothing due: not a full batch")
        #expect(!(await eventually(timeout: .milliseconds(400)) { ready.totalTranslations > translated }), "no spinning on waiting rows")
        #expect(ready.translations(of: "slow") == 1)
        #expect(down.totalTranslations == 0, "rows of a platform that is not ready are never read")
        let slow = try #require(try await rig.row("slow"))
        #expect(slow["status"].string == "pending")
        #expect((slow["next_attempt_at"].int ?? 0) > Date().millisecondsSince1970 + 10_000, "the backoff is persisted")
        #expect(try await rig.workflow.store.pendingInbound(platform: "down", limit: 1000).count == 150, "kept, waiting for the platform")
        await rig.stop()
    }

    @Test("Defect 2: an acknowledged event is retried through any number of transient failures; only an unreadable payload is set aside")
    func transientFailuresAreRetriedUntilTheySucceed() async throws {
        let adapter = ScriptedAdapter(platform: "test")
        let rig = try await RouterRig.start(adapters: [adapter]) { c in
            c.retryDelay = .milliseconds(1)
            c.maxRetryDelay = .milliseconds(10)
            c.warnAfterAttempts = 3
        }
        adapter.failTransiently("stubborn", times: 12)
        try await rig.record(adapter, key: "stubborn", user: "U7")
        _ = try await rig.workflow.store.recordInbound(platform: "test", eventKey: "garbage", payload: "{not json", at: Date())
        #expect(await eventually(timeout: .seconds(10)) { adapter.privateReplies(to: "U7").count == 1 }, "answered in the end")
        #expect(await eventually { (try? await rig.row("stubborn"))??["status"].string == "done" })
        #expect(try await rig.row("stubborn")?["attempts"].int == 13)
        let failed = try await rig.workflow.store.failedInbound(limit: 10)
        #expect(failed.map(\.event.eventKey) == ["garbage"], "only the payload nobody can read is failed")
        #expect(failed.first?.error.contains("unreadable") == true)
        await rig.stop()
    }

    @Test("Defect 3: commands beyond the in-hand limit are never dropped: each gets its answer once, in the ack or privately")
    func commandRepliesAreNeverLostUnderLoad() async throws {
        let adapter = ScriptedAdapter(platform: "test")
        let rig = try await RouterRig.start(adapters: [adapter]) { c in c.maxInlineCommands = 2 }
        let users = (1...40).map { "U\($0)" }
        let acceptances = try await withThrowingTaskGroup(of: (String, Acceptance).self) { group in
            for user in users {
                group.addTask {
                    let raw = RawInbound(platform: "test", key: "cmd-\(user)", payload: ScriptedAdapter.payload(key: "cmd-\(user)", user: user, text: "help"),
                                         replyDeadline: .seconds(2))
                    return (user, try await rig.router.accept(raw))
                }
            }
            var out: [String: Acceptance] = [:]
            for try await (user, acceptance) in group { out[user] = acceptance }
            return out
        }
        var inAck = 0
        var later = 0
        for user in users {
            let acceptance = try #require(acceptances[user])
            if case .reply(let text) = acceptance, text != ChatRouter.holdingReply {
                inAck += 1
                #expect(text.contains("Commands"))
                #expect(!(await eventually(timeout: .milliseconds(50)) { !adapter.privateReplies(to: user).isEmpty }), "not answered twice")
            } else {
                later += 1
                #expect(await eventually(timeout: .seconds(10)) { adapter.privateReplies(to: user).count == 1 }, "\(user)'s answer follows privately")
            }
        }
        #expect(inAck + later == users.count)
        #expect(later > 0, "the limit was reached, so some answers followed the ack")
        #expect(await eventually { (try? await rig.workflow.store.pendingInbound(platform: nil, limit: 1))?.isEmpty == true })
        for user in users { #expect(adapter.privateReplies(to: user).count <= 1, "\(user) answered at most once privately") }
        await rig.stop()
    }

    @Test("Defect 4: Slack read methods go form-encoded (Slack ignores JSON there) and a lost card is found past the first history page")
    func readMethodsAreFormEncodedAndHistoryIsPaged() async throws {
        var fakeConfiguration = FakeSlack.Configuration()
        fakeConfiguration.historyPageSize = 5
        let h = try await ChatHarness.start(fake: fakeConfiguration)
        // The fake answers like Slack: a JSON body to a read method is ignored.
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var request = HTTPClientRequest(url: h.fake.apiURL + "conversations.history")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(h.fake.configuration.botToken)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"channel":"C0APPROVALS"}"#))
        let answer = String(buffer: try await http.execute(request, timeout: .seconds(5)).body.collect(upTo: 1 << 16))
        #expect(answer.contains("invalid_arguments"), "\(answer)")
        var api = SlackWebAPIClient.Configuration()
        api.baseURL = h.fake.apiURL
        let client = SlackWebAPIClient(http: http, configuration: api)
        let alice = try await client.userInfo(token: Secret(h.fake.configuration.botToken), user: People.alice)
        #expect(alice.member("name")?.asString == "alice", "users.info works form-encoded")

        // A card whose post landed but whose reply was lost, with a dozen newer messages after it.
        await h.shutdown()
        let offline = try await HandoffApplication.openWorkflow(databasePath: h.databasePath, policy: try PolicyFile.parse(h.policyText), clock: h.clock)
        let approval = try await offline.requestApproval(ApprovalRequest(action: "migrate", arguments: .object([:]), requester: "key:deploy-bot"))
            .approval
        let postRow = try #require(try await offline.store.outbox(of: approval.ref).first { $0.kind == .postCard })
        let nonce = "handoff-\(postRow.id)-slack"
        let cardID = try await offline.store.beginCard(entity: approval.ref, platform: "slack", destination: "approvals", channel: Channels.approvals,
                                                       threadID: nil, nonce: nonce, at: h.clock.now())
        let landed = try await client.postMessage(
            token: Secret(h.fake.configuration.botToken), channel: Channels.approvals, text: "Approval #\(approval.id) needed: migrate",
            metadata: .object(["event_type": .string(SlackAdapter.metadataEventType), "event_payload": .object(["nonce": .string(nonce)])]))
        for i in 0..<12 {
            await h.fake.postUserMessage(user: People.bob, channel: Channels.approvals, text: "chatter \(i)", alsoAsMessageEvent: false)
        }
        try await http.shutdown()
        try await offline.store.close()
        let postsBefore = await h.fake.calls("chat.postMessage").count
        let historyBefore = await h.fake.calls("conversations.history").count

        try await h.boot()
        #expect(await h.outboxSettled(approval.ref))
        let reconciled = try #require(try await h.workflow.store.cards(of: approval.ref).first { $0.id == cardID })
        #expect(reconciled.state == .posted)
        #expect(reconciled.messageID == landed.messageID, "found on a later page")
        #expect(await h.fake.calls("chat.postMessage").count == postsBefore, "not posted twice")
        let history = await h.fake.calls("conversations.history").dropFirst(historyBefore)
        #expect(history.count >= 3, "followed next_cursor over several pages")
        #expect(history.allSatisfy { $0.contentType.contains("x-www-form-urlencoded") && $0.error == nil })
        #expect(await h.fake.calls("users.info").allSatisfy { $0.contentType.contains("x-www-form-urlencoded") })
        await h.stop()
    }

    @Test("Defect 5: /readyz answers 503 with the reason once Slack says link_disabled; 200 before")
    func readinessReportsAStoppedSlackConnection() async throws {
        let h = try await ChatHarness.start()
        let runtime = h.runtime
        try await withReadinessServer(workflow: h.workflow, readiness: { runtime.readinessProblems() }) { get in
            #expect(try await get().status == 200)
            await h.fake.sendDisconnect(reason: "link_disabled")
            #expect(await eventually { (try? await get().status) == 503 })
            let body = try await get().body
            #expect(body.contains("link_disabled"), "\(body)")
        }
        await h.stop()
    }

    @Test("Defect 5: a refused Slack token, a refused app token and a lost Matrix token each make /readyz say why")
    func readinessReportsRefusedCredentials() async throws {
        let fake = try await FakeSlack.start()
        let matrix = try await RefusingHomeserver.start()
        let directory = try TemporaryDirectory(prefix: "handoff-readiness")
        var logger = Logger(label: "test.readiness")
        logger.logLevel = .critical
        try ChatHarness.defaultPolicy.write(toFile: directory.file("handoff.yaml"), atomically: true, encoding: .utf8)
        let workflow = try await HandoffApplication.openWorkflow(databasePath: directory.file("handoff.sqlite"),
                                                                 policy: try PolicyFile.load(path: directory.file("handoff.yaml")), logger: logger)
        var configuration = HandoffConfiguration()
        configuration.databasePath = directory.file("handoff.sqlite")
        configuration.policyPath = directory.file("handoff.yaml")
        var options = ChatRuntime.Options()
        options.templatesDirectory = PackagePaths.cardTemplates
        let slack = SlackSettings(appToken: "xapp-1-A111-revoked", botToken: "xoxb-revoked", apiURL: fake.apiURL)
        let runtime = try ChatRuntime.build(configuration: configuration, slack: slack,
                                            matrix: MatrixSettings(homeserver: matrix.url, accessToken: "syt_revoked"),
                                            workflow: workflow, options: options, logger: logger)
        let group = ServiceGroup(configuration: .init(services: runtime.services, gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        try await withReadinessServer(workflow: workflow, readiness: { runtime.readinessProblems() }) { get in
            #expect(await eventually(timeout: .seconds(15)) { runtime.readinessProblems().count >= 3 }, "\(runtime.readinessProblems())")
            let response = try await get()
            #expect(response.status == 503)
            #expect(response.body.contains("Slack Socket Mode stopped"), "\(response.body)")
            #expect(response.body.contains("SLACK_BOT_TOKEN"), "\(response.body)")
            #expect(response.body.contains("Matrix"), "\(response.body)")
            for secret in ["xoxb-revoked", "xapp-1-A111-revoked", "syt_revoked"] {
                #expect(!response.body.contains(secret), "no credential in the answer")
            }
        }
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? await workflow.store.close()
        await matrix.stop()
        await fake.stop()
        directory.remove()
    }
}

/// Runs an HTTP server with only the ops routes' readiness wired to `readiness`, and hands `body` a GET /readyz.
func withReadinessServer(workflow: Workflow, readiness: @escaping ReadinessCheck,
                         _ body: (_ get: @Sendable () async throws -> (status: Int, body: String)) async throws -> Void) async throws
{
    var configuration = HTTPServerService.Configuration()
    configuration.port = 0
    var logger = Logger(label: "test.readyz")
    logger.logLevel = .critical
    let server = try await HTTPServerService(workflow: workflow, configuration: configuration, logger: logger, readiness: readiness)
    let group = ServiceGroup(configuration: .init(services: [server], gracefulShutdownSignals: [], logger: logger))
    let task = Task { try await group.run() }
    let port = try await server.port()
    let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
    let get: @Sendable () async throws -> (status: Int, body: String) = {
        let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(5))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 16)))
    }
    do {
        try await body(get)
    } catch {
        try? await http.shutdown()
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        throw error
    }
    try await http.shutdown()
    await group.triggerGracefulShutdown()
    _ = try? await task.value
}

/// A homeserver that refuses every access token (401 `M_UNKNOWN_TOKEN`), as after the bot's token was revoked.
struct RefusingHomeserver {
    let url: String
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start() async throws -> RefusingHomeserver {
        var logger = Logger(label: "test.refusing-homeserver")
        logger.logLevel = .critical
        let router = Router()
        let refuse: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            Response(status: .unauthorized, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}"#)))
        }
        router.get("/**", use: refuse)
        router.post("/**", use: refuse)
        router.put("/**", use: refuse)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports {
            port = p
            break
        }
        return RefusingHomeserver(url: "http://127.0.0.1:\(port)", group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
