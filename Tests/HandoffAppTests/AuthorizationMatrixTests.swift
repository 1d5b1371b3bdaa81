import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// Who may do what: every act × every kind of actor, over the HTTP API and in chat (the fake Slack),
/// against one table. A refusal changes nothing in the store, is a typed 403 over HTTP, and in chat a
/// private explanation with the card left as it was.
enum AuthorizationMatrix {
    /// What a cell expects.
    enum Outcome: String, Sendable {
        /// The act takes effect.
        case allow
        /// The core refuses it (403 `not_allowed`; in chat a private 🚫 explanation).
        case deny
        /// The key's scope does not reach the route (403 `forbidden`); keys have no chat identity.
        case scope
    }

    /// The acts (rows).
    enum Act: String, CaseIterable, Sendable {
        case approve = "decide: approve"
        case reject = "decide: reject"
        case revise = "decide: revise"
        case claimReview = "claim review item"
        case escalate = "escalate (raise a tier)"
        case claimEscalation = "claim escalation (agent tier)"
        case claimExpertEscalation = "claim escalation (expert tier)"
        case resolve = "resolve escalation"
        case label = "label"
        case rate = "rate feedback"
    }

    /// The actors (columns). People are a reviewer-scope key over HTTP and a Slack user in chat; the
    /// requester (`bob`) asked for every entity and is an approver, so only a requester rule can
    /// refuse him an approval. The agent key's name is in every group, so its refusals are its scope.
    enum Actor: String, CaseIterable, Sendable {
        case approver, requester
        case nonMember = "non-member"
        case reviewer
        case agent = "agent (tier 1)"
        case expert = "expert (other tier)"
        case adminKey = "admin key"
        case agentKey = "agent key"

        /// The key's name and scope over HTTP.
        var key: (name: String, scope: APIKeyScope) {
            switch self {
            case .approver: ("alice", .reviewer)
            case .requester: ("bob", .reviewer)
            case .nonMember: ("mallory", .reviewer)
            case .reviewer: ("carol", .reviewer)
            case .agent: ("dave", .reviewer)
            case .expert: ("erin", .reviewer)
            case .adminKey: ("root", .admin)
            case .agentKey: ("agent-bot", .agent)
            }
        }

        /// The Slack user in chat; nil for keys, which only exist over HTTP.
        var slackUser: String? {
            switch self {
            case .approver: "U0ALICE"
            case .requester: "U0BOB"
            case .nonMember: "U0MALLORY"
            case .reviewer: "U0CAROL"
            case .agent: "U0DAVE"
            case .expert: "U0ERIN"
            case .adminKey, .agentKey: nil
            }
        }
    }

    private static let A = Outcome.allow, D = Outcome.deny, S = Outcome.scope

    /// The matrix. Columns in `Actor.allCases` order:
    ///                      approver requester non-member reviewer agent expert admin-key agent-key
    static let table: [(Act, [Outcome])] = [
        (.approve,               [A, D, D, D, D, D, A, S]),
        (.reject,                [A, D, D, D, D, D, A, S]),
        (.revise,                [A, D, D, D, D, D, A, S]),
        (.claimReview,           [D, D, D, A, D, D, A, S]),
        (.escalate,              [D, A, D, D, A, D, A, S]),  // the requester may push their own escalation up
        (.claimEscalation,       [D, D, D, D, A, D, A, S]),
        (.claimExpertEscalation, [D, D, D, D, D, A, A, S]),
        (.resolve,               [D, D, D, D, A, D, A, S]),
        (.label,                 [D, D, D, A, D, D, A, S]),
        (.rate,                  [D, D, D, A, D, D, A, S]),  // feedback asks the reviewer (its respondent)
    ]

    static func expected(_ act: Act, _ actor: Actor) -> Outcome {
        let row = table.first { $0.0 == act }!.1
        return row[Actor.allCases.firstIndex(of: actor)!]
    }

    /// Groups list each person's Slack and key identity; the agent key is in every group.
    static let policy = """
        groups:
          approvers: [slack:U0ALICE, key:alice, slack:U0BOB, key:bob, key:agent-bot]
          reviewers: [slack:U0CAROL, key:carol, key:agent-bot]
          labelers: [slack:U0CAROL, key:carol, key:agent-bot]
          agents: [slack:U0DAVE, key:dave, key:agent-bot]
          experts: [slack:U0ERIN, key:erin, key:agent-bot]
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 1h }
        queues:
          default: { reviewers: [reviewers], channel: reviews, lease: 15m, sla: 4h }
        routes:
          default: { threshold: 0.8, queue: default }
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

    /// A fresh entity for one cell, asked for by `requester` (and, for feedback, asking `respondent`).
    static func fixture(_ act: Act, workflow: Workflow, requester: String, respondent: String) async throws -> EntityRef {
        let by = ActorID(requester)
        switch act {
        case .approve, .reject, .revise:
            return try await workflow.requestApproval(ApprovalRequest(
                action: "deploy", arguments: .object(["service": .string("api")]), summary: "Deploy api", requester: by)).approval.ref
        case .claimReview:
            return try await workflow.enqueue(ReviewItemRequest(content: ReviewContent(query: "Refund window?", answer: "30 days")), by: by).item.ref
        case .escalate, .claimEscalation, .resolve, .claimExpertEscalation:
            return try await workflow.escalate(EscalationRequest(
                query: "Where is my parcel?", trigger: .manual("asked for a person"), requester: by,
                tier: act == .claimExpertEscalation ? "expert" : "agent"), by: by).ref
        case .label:
            return try await workflow.createLabelTask(LabelTaskInput(
                dataset: "sentiment", type: .choice(options: ["positive", "negative"]), content: "I love it"), by: by).ref
        case .rate:
            return try await workflow.requestFeedback(FeedbackRequestInput(
                kind: .rating, prompt: "Was this helpful?", channel: "default", respondent: ActorID(respondent)), by: by).ref
        }
    }

    /// The state an allowed act leaves its entity in.
    static func stateAfterAllow(_ act: Act) -> String {
        switch act {
        case .approve: "approved"
        case .reject: "rejected"
        case .revise: "needs_revision"
        case .claimReview: "claimed"
        case .escalate: "open@expert"
        case .claimEscalation: "claimed@agent"
        case .claimExpertEscalation: "claimed@expert"
        case .resolve: "resolved@agent"
        case .label: "complete:1"
        case .rate: "answered"
        }
    }

    /// Everything the store holds about an entity: its row (as JSON) and version, audit trail, outbox
    /// rows, timers and labels.
    struct Snapshot: Equatable, CustomStringConvertible {
        var state: String
        var row: String
        var version: Int64
        var audit: [AuditEvent]
        var outbox: [String]
        var timers: [String]
        var labels: Int

        var description: String { "\(state) v\(version), \(audit.count) audit, \(outbox.count) outbox, \(timers.count) timers, \(labels) labels" }
    }

    static func snapshot(_ ref: EntityRef, store: any WorkflowStore) async throws -> Snapshot {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let state: String, row: String, version: Int64
        var labels = 0
        switch ref.kind {
        case .approval:
            let v = try #require(try await store.approval(ApprovalID(ref.id)))
            (state, row, version) = (v.value.status.name, try json(v.value), v.version)
        case .reviewItem:
            let v = try #require(try await store.reviewItem(ReviewItemID(ref.id)))
            (state, row, version) = (v.value.status.name, try json(v.value), v.version)
        case .escalation:
            let v = try #require(try await store.escalation(EscalationID(ref.id)))
            (state, row, version) = ("\(v.value.status.name)@\(v.value.tierName)", try json(v.value), v.version)
        case .labelTask:
            let v = try #require(try await store.labelTask(LabelTaskID(ref.id)))
            (state, row, version) = ("\(v.value.status.rawValue):\(v.value.labelCount)", try json(v.value), v.version)
            labels = try await store.labels(task: LabelTaskID(ref.id)).count
        case .feedback:
            let v = try #require(try await store.feedback(FeedbackID(ref.id)))
            (state, row, version) = (v.value.status.name, try json(v.value), v.version)
        case .correction, .label:
            throw TestFailure("no acts on \(ref.kind)")
        }
        let outbox = try await store.outbox(of: ref).map { "\($0.id):\($0.kind)" }
        let timers = try await store.timers(of: ref).map { "\($0.kind)@\($0.dueAt.timeIntervalSince1970)" }
        return Snapshot(state: state, row: row, version: version, audit: try await store.audit(of: ref), outbox: outbox, timers: timers,
                        labels: labels)
    }

    /// The table is complete and consistent: one row per act, one column per actor.
    static func checkTable() {
        #expect(table.map(\.0) == Act.allCases, "one row per act, in order")
        for (act, row) in table {
            #expect(row.count == Actor.allCases.count, "\(act.rawValue): one cell per actor")
            #expect(row.last == .scope, "\(act.rawValue): agent keys cannot reach any act of people")
            #expect(row.contains(.allow) && row.contains(.deny), "\(act.rawValue): someone may, someone may not")
        }
    }
}

@Suite struct AuthorizationMatrixHTTPTests {
    typealias M = AuthorizationMatrix

    /// The request that performs an act over HTTP.
    static func request(_ act: M.Act, on ref: EntityRef) -> (path: String, body: String) {
        switch act {
        case .approve: ("/v1/approvals/\(ref.id)/decision", #"{"verdict":"approve"}"#)
        case .reject: ("/v1/approvals/\(ref.id)/decision", #"{"verdict":"reject","reason":"too risky"}"#)
        case .revise: ("/v1/approvals/\(ref.id)/decision", #"{"verdict":"revise","comment":"smaller batch"}"#)
        case .claimReview: ("/v1/review-items/\(ref.id)/claim", "{}")
        case .escalate: ("/v1/escalations/\(ref.id)/raise", "{}")
        case .claimEscalation, .claimExpertEscalation: ("/v1/escalations/\(ref.id)/claim", "{}")
        case .resolve: ("/v1/escalations/\(ref.id)/resolve", #"{"resolution":"It ships tomorrow."}"#)
        case .label: ("/v1/label-tasks/\(ref.id)/labels", #"{"value":"positive"}"#)
        case .rate: ("/v1/feedback/\(ref.id)/response", #"{"value":4}"#)
        }
    }

    @Test func everyActByEveryActorOverHTTP() async throws {
        M.checkTable()
        try await withTestApp(policy: M.policy) { app in
            var keys: [M.Actor: String] = [:]
            for actor in M.Actor.allCases { keys[actor] = try await app.key(actor.key.name, actor.key.scope) }
            let store = app.workflow.store
            var cells = 0, allowed = 0, denied = 0
            for act in M.Act.allCases {
                for actor in M.Actor.allCases {
                    let expected = M.expected(act, actor)
                    let ref = try await M.fixture(act, workflow: app.workflow, requester: "key:bob", respondent: "key:carol")
                    let before = try await M.snapshot(ref, store: store)
                    let (path, body) = Self.request(act, on: ref)
                    let response = try await app.post(path, key: keys[actor], body)
                    let after = try await M.snapshot(ref, store: store)
                    let cell = "\(act.rawValue) × \(actor.rawValue)"
                    switch expected {
                    case .allow:
                        #expect(response.status == 200 || response.status == 201, "\(cell): allowed, got \(response.status) \(response.text)")
                        #expect(after.state == M.stateAfterAllow(act), "\(cell): \(before.state) → \(after.state)")
                        #expect(after.audit.count > before.audit.count, "\(cell): the act is audited")
                        allowed += 1
                    case .deny, .scope:
                        expectError(response, 403, expected == .deny ? "not_allowed" : "forbidden")
                        if actor == .requester, [.approve, .reject, .revise].contains(act) {
                            #expect(response.errorMessage?.contains("requester cannot decide") == true, "\(cell): the requester rule says so")
                        }
                        #expect(after == before, "\(cell): a refusal changes nothing (\(before) → \(after))")
                        denied += 1
                    }
                    cells += 1
                }
            }
            #expect(cells == M.Act.allCases.count * M.Actor.allCases.count)
            print("Authorization matrix over HTTP: \(M.Act.allCases.count) acts × \(M.Actor.allCases.count) actors = \(cells) cells checked (\(allowed) allowed, \(denied) refused with nothing changed)")
        }
    }
}

extension ChatAppTests {
    @Suite struct AuthorizationMatrixChatTests {
        typealias M = AuthorizationMatrix

        /// A private reply for `user` that was not there before: an ephemeral, or the text of a slash
        /// command's ack (Slack shows it only to the person, `response_type: ephemeral`).
        static func privateReply(_ h: ChatHarness, user: String, ephemeralsBefore: Int, slashEnvelope: String?) async -> String? {
            var found: String?
            _ = await eventually {
                let ephemerals = await h.fake.ephemerals(for: user)
                if ephemerals.count > ephemeralsBefore {
                    found = ephemerals[ephemeralsBefore].text
                    return true
                }
                if let slashEnvelope, let payload = await h.fake.ack(for: slashEnvelope)?.payload,
                   payload.member("response_type")?.asString == "ephemeral", let text = payload.member("text")?.asString,
                   text != ChatRouter.holdingReply
                {
                    found = text
                    return true
                }
                return false
            }
            return found
        }

        @Test("Authorization matrix in chat: every act by every person; a refusal is private, changes nothing, leaves the card")
        func everyActByEveryPersonInChat() async throws {
            M.checkTable()
            let h = try await ChatHarness.start(policy: M.policy)
            let store = h.workflow.store
            var cells = 0, allowed = 0, denied = 0
            for act in M.Act.allCases {
                for actor in M.Actor.allCases {
                    guard let user = actor.slackUser else { continue }
                    let expected = M.expected(act, actor)
                    let cell = "\(act.rawValue) × \(actor.rawValue)"
                    let ref = try await M.fixture(act, workflow: h.workflow, requester: "slack:U0BOB", respondent: "slack:U0CAROL")
                    let card: CardRef? = act == .label ? nil : try await h.card(of: ref)
                    #expect(await h.outboxSettled(ref))
                    let editsBefore = card != nil ? await h.message(card!)?.edits : nil
                    let postsBefore = await h.fake.calls("chat.postMessage").count
                    let before = try await M.snapshot(ref, store: store)
                    let ephemeralsBefore = await h.fake.ephemerals(for: user).count
                    var slash: String?
                    let ts = card?.messageID ?? ""
                    let channel = card?.channel ?? Channels.fallback
                    let value = CardButtonValue.encode(ref)
                    switch act {
                    case .approve, .claimReview, .escalate, .claimExpertEscalation:
                        let id = act == .approve ? "approve" : act == .escalate ? "escalate" : "claim"
                        await h.fake.click(user: user, channel: channel, messageTS: ts, actionID: id, value: value)
                    case .reject:
                        slash = await h.fake.slash(user: user, channel: channel, text: "reject \(ref.id) too risky")
                    case .revise:
                        await h.fake.postUserMessage(user: user, channel: channel, text: "revise smaller batch please", threadTS: ts)
                    case .claimEscalation:
                        await h.fake.react(user: user, name: "raised_hand", channel: channel, ts: ts)
                    case .resolve:
                        slash = await h.fake.slash(user: user, channel: channel, text: "resolve \(ref.id) It ships tomorrow.")
                    case .label:
                        slash = await h.fake.slash(user: user, channel: channel, text: "label \(ref.id) positive")
                    case .rate:
                        await h.fake.click(user: user, channel: channel, messageTS: ts, actionID: "answer:4", value: value)
                    }
                    switch expected {
                    case .allow:
                        let applied = await eventually { (try? await M.snapshot(ref, store: store))?.state == M.stateAfterAllow(act) }
                        let state = (try? await M.snapshot(ref, store: store))?.state ?? "?"
                        #expect(applied, "\(cell): allowed, but the state is \(state)")
                        if let card {
                            #expect(await eventually { (await h.message(card)?.edits ?? 0) > (editsBefore ?? 0) }, "\(cell): the card shows the act")
                        }
                        allowed += 1
                    case .deny:
                        let reply = await Self.privateReply(h, user: user, ephemeralsBefore: ephemeralsBefore, slashEnvelope: slash)
                        #expect(reply?.hasPrefix("🚫") == true, "\(cell): a private explanation, got \(reply ?? "nothing")")
                        if actor == .requester, [.approve, .reject, .revise].contains(act) {
                            #expect(reply?.contains("requester cannot decide") == true, "\(cell): the requester rule says so")
                        }
                        #expect(await h.inboundSettled())
                        #expect(await h.outboxSettled(ref))
                        let after = try await M.snapshot(ref, store: store)
                        #expect(after.row == before.row && after.version == before.version, "\(cell): the entity did not change")
                        #expect(after.outbox == before.outbox && after.timers == before.timers && after.labels == before.labels,
                                "\(cell): no outbox row, timer or label (\(before) → \(after))")
                        // The only trace is the refusal itself, audited with the state it left alone.
                        let added = Array(after.audit.dropFirst(before.audit.count))
                        #expect(Array(after.audit.prefix(before.audit.count)) == before.audit, "\(cell): the audit trail is kept")
                        #expect(added.count == 1 && added.allSatisfy {
                            $0.actor.rawValue == "slack:\(user)" && $0.from == before.state.split(whereSeparator: { $0 == "@" || $0 == ":" }).first.map(String.init)
                                && $0.from == $0.to && ($0.detail ?? "").hasPrefix("refused in chat")
                        }, "\(cell): one refusal note, no transition: \(added)")
                        if let card { #expect(await h.message(card)?.edits == editsBefore, "\(cell): the card did not change") }
                        #expect(await h.fake.calls("chat.postMessage").count == postsBefore, "\(cell): nothing was posted in the channel")
                        denied += 1
                    case .scope:
                        Issue.record("\(cell): keys have no chat identity")
                    }
                    cells += 1
                }
            }
            let people = M.Actor.allCases.filter { $0.slackUser != nil }.count
            #expect(cells == M.Act.allCases.count * people)
            print("Authorization matrix in chat (fake Slack): \(M.Act.allCases.count) acts × \(people) people = \(cells) cells checked (\(allowed) allowed, \(denied) refused privately with nothing changed)")
            await h.stop()
        }
    }
}
