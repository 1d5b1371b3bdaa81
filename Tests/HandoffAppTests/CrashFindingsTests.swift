import AsyncHTTPClient
import Foundation
import GRDB
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

extension ChatAppTests {
    /// Regressions for what the crash and fault-injection runs (CrashTests, FaultInjectionTests) found;
    /// each failed before its fix.
    @Suite struct CrashFindings {
        /// A card whose post landed in Slack while its reply was lost (the process was killed between
        /// `chat.postMessage` and recording the message id), as the crash test leaves it.
        static func cardWithLostReply(_ h: ChatHarness) async throws -> (Approval, messageTS: String, cardID: Int64) {
            await h.shutdown()
            let offline = try await HandoffApplication.openWorkflow(databasePath: h.databasePath, policy: try PolicyFile.parse(h.policyText),
                                                                    clock: h.clock)
            let approval = try await offline.requestApproval(ApprovalRequest(action: "migrate", arguments: .object([:]), requester: "key:deploy-bot"))
                .approval
            let postRow = try #require(try await offline.store.outbox(of: approval.ref).first { $0.kind == .postCard })
            let nonce = "handoff-\(postRow.id)-slack"
            let cardID = try await offline.store.beginCard(entity: approval.ref, platform: "slack", destination: "approvals",
                                                           channel: Channels.approvals, threadID: nil, nonce: nonce, at: h.clock.now())
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            var api = SlackWebAPIClient.Configuration()
            api.baseURL = h.fake.apiURL
            let landed = try await SlackWebAPIClient(http: http, configuration: api).postMessage(
                token: Secret(h.fake.configuration.botToken), channel: Channels.approvals, text: "Approval #\(approval.id) needed: migrate",
                metadata: .object(["event_type": .string(SlackAdapter.metadataEventType),
                                   "event_payload": .object(["nonce": .string(nonce), "entity": .string(CardButtonValue.encode(approval.ref))])]))
            try await http.shutdown()
            try await offline.store.close()
            return (approval, landed.messageID, cardID)
        }

        @Test("Crash finding 1: a click on a card whose post reply was lost is applied at once, not dropped as 'not a card'")
        func clickOnACardWhosePostReplyWasLost() async throws {
            let h = try await ChatHarness.start()
            let (approval, ts, cardID) = try await Self.cardWithLostReply(h)
            let postsBefore = await h.fake.calls("chat.postMessage").count
            // No outbox dispatcher on this node: only the act itself can find the card.
            try await h.boot(withDispatcher: false)
            await h.fake.click(user: People.alice, channel: Channels.approvals, messageTS: ts, actionID: "approve", value: "approval:\(approval.id)")
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" }, "the click was applied")
            #expect(await h.inboundSettled())
            let card = try #require(try await h.workflow.store.cards(of: approval.ref).first { $0.id == cardID })
            #expect(card.state == .posted)
            #expect(card.messageID == ts, "the card was adopted with the message the click was on")
            #expect(await h.fake.calls("chat.postMessage").count == postsBefore, "nothing was posted again")
            #expect(await h.fake.ephemerals().isEmpty)
            await h.stop()
        }

        @Test("Crash finding 1 (reactions): ✅ on a card whose post reply was lost is applied too; a reaction on a person's message is still ignored")
        func reactionOnACardWhosePostReplyWasLost() async throws {
            let h = try await ChatHarness.start()
            let (approval, ts, _) = try await Self.cardWithLostReply(h)
            try await h.boot(withDispatcher: false)
            let chatter = await h.fake.postUserMessage(user: People.bob, channel: Channels.approvals, text: "lunch?", alsoAsMessageEvent: false)
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: Channels.approvals, ts: chatter)
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).status == .pending, "a reaction on someone's message is not a vote")
            await h.fake.react(user: People.bob, name: "white_check_mark", channel: Channels.approvals, ts: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            await h.stop()
        }
    }
}

/// Regressions for what the crash and fault runs found below the chat stack: the store and the workflow.
@Suite(.serialized) struct ReliabilityFindings {
    @Test("Crash finding 1 (store): a channel's posting cards are found through the message index, newest first, without a scan or a sort")
    func postingCardsOfAChannelAreIndexed() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-plan-posting")
        defer { directory.remove() }
        let database = PlanRecordingDatabase(try SQLiteDatabase(path: directory.file("handoff.sqlite")))
        let store = try await SQLWorkflowStore(database: database)
        for i in 1...6 {
            let id = try await store.beginCard(entity: EntityRef(kind: .approval, id: Int64(i)), platform: "slack", destination: "approvals",
                                               channel: i % 2 == 0 ? "C0OTHER" : Channels.approvals, threadID: nil, nonce: "n\(i)", at: Date())
            if i == 3 { try await store.cardPosted(id, messageID: "1767225600.000300", threadID: nil, at: Date()) }
        }
        // One left posting two days ago (its outbox row long given up): not looked for any more.
        _ = try await store.beginCard(entity: EntityRef(kind: .approval, id: 7), platform: "slack", destination: "approvals",
                                      channel: Channels.approvals, threadID: nil, nonce: "n7", at: Date().addingTimeInterval(-2 * 86_400))
        var found: [CardRef] = []
        let reads = try await database.recording {
            found = try await store.cardsPosting(platform: "slack", channel: Channels.approvals, since: Date().addingTimeInterval(-86_400), limit: 20)
        }
        #expect(found.map(\.nonce) == ["n5", "n1"], "recent posting ones of that channel, newest first")
        let plan = try await database.plan(try #require(reads.first))
        #expect(PlanRecordingDatabase.fullScans(plan).isEmpty, "\(plan)")
        #expect(plan.contains { $0.contains("card_refs_message") }, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
        try await store.close()
    }

    @Test("Crash finding 2: a timer whose round fails because another process holds the database lock stays due and fires right after, not a minute later")
    func timerThroughALockedDatabase() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-locked-timer")
        defer { directory.remove() }
        var configuration = SQLiteDatabase.Configuration()
        configuration.busyTimeout = 0.5
        let store = try await SQLWorkflowStore(database: SQLiteDatabase(path: directory.file("handoff.sqlite"), configuration: configuration))
        let clock = ManualClock()
        let workflow = Workflow(store: store, clock: clock, configuration: Workflow.Configuration(policy: try PolicyFile.parse(ServeRig.policy)))
        let approval = try await workflow.requestApproval(ApprovalRequest(action: "deploy", arguments: .object([:]), requester: "key:deploy-bot"))
            .approval
        clock.advance(by: 2 * 3600)
        let due = try #require(try await store.timers(of: approval.ref).first).dueAt
        // Another process holds the write lock for 4 s: the round waits out its 0.5 s busy timeout and fails.
        // Before the fix the failure was swallowed and the timer pushed a minute out (when that write got
        // through: in the database-locked fault run an escalation's ack timeout fired 60 s late).
        let locker = try await DatabaseLocker.hold(directory.file("handoff.sqlite"), for: 4)
        await #expect(throws: (any Error).self, "the round reports the busy database") { try await workflow.fireDueTimers() }
        #expect(await eventually(timeout: .seconds(15)) { !locker.isRunning })
        #expect(try await store.timers(of: approval.ref).map(\.dueAt) == [due], "the timer stays due; it is not pushed back")
        #expect(try await workflow.fireDueTimers() == 1)
        #expect(try await workflow.approval(approval.id).status.name == "expired")
        try await store.close()
    }

    @Test("Fault finding 4: an agent's retry with the same Idempotency-Key while its first request is still in flight gets the same entity, not 409")
    func concurrentRetriesWithOneIdempotencyKey() async throws {
        try await withTestApp { app in
            let agent = try await app.key("erin-bot", .agent)
            let creates: [(path: String, body: String)] = [
                ("/v1/approvals", #"{"action":"deploy","arguments":{"v":1}}"#),
                ("/v1/review-items", #"{"queue":"default","title":"Refund answer","query":"How long?","answer":"14 days"}"#),
                ("/v1/escalations", #"{"query":"Where is my refund?"}"#),
                ("/v1/feedback", #"{"kind":"rating","prompt":"Was this helpful?"}"#),
                ("/v1/corrections", #"{"query":"How long?","original":"14 days","corrected":"5 days"}"#),
                ("/v1/label-tasks", #"{"dataset":"sentiment","type":"choice","options":["positive","negative"],"content":"Great!"}"#),
            ]
            for create in creates {
                // Eight copies at once, as an agent's retries after client-side timeouts arrive while the first still waits.
                let answers = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                    for _ in 0..<8 {
                        group.addTask { try await app.post(create.path, key: agent, create.body, headers: [("Idempotency-Key", "once\(create.path)")]) }
                    }
                    var all: [TestResponse] = []
                    for try await answer in group { all.append(answer) }
                    return all
                }
                #expect(answers.allSatisfy { (200..<300).contains($0.status) }, "\(create.path): \(answers.map { "\($0.status) \($0.text.prefix(120))" })")
                #expect(Set(answers.compactMap { $0.json["id"]?.int }).count == 1, "\(create.path): one entity for one key")
            }
        }
    }

    @Test("Crash finding 3: a busy database (another process holding the lock) is 503 with Retry-After for API callers, not 500")
    func busyDatabaseIsServiceUnavailable() {
        let busy = APIError.from(DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked"), maxBodySize: 1 << 20)
        #expect(busy.status == .serviceUnavailable)
        #expect(busy.retryAfter == 1)
        let locked = APIError.from(DatabaseError(resultCode: .SQLITE_LOCKED, message: "database table is locked"), maxBodySize: 1 << 20)
        #expect(locked.status == .serviceUnavailable)
        #expect(APIError.from(DatabaseError(resultCode: .SQLITE_CORRUPT, message: "malformed"), maxBodySize: 1 << 20).status == .internalServerError)
        #expect(StoreError.isTransient(StoreError.unavailable("gone")))
        #expect(!StoreError.isTransient(StoreError.conflict("approval #1")))
    }
}
