import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import Synchronization

/// One event the workload sent through the fake Slack (a click, a reaction, a command, a thread reply).
struct SentEvent: Sendable {
    /// What the fake Slack keys its deliveries by (`event_id`, or `trigger_id` for clicks and commands).
    var dedupeID: String
    var type: String
    var payload: JSONValue
    /// The key the service dedupes it by (the same function the Slack adapter uses).
    var routerKey: String
    var actor: ActorID
    var entity: EntityRef
    /// Processing it always leaves exactly one audit entry on the entity: a transition or a refusal.
    var audited: Bool
    /// It may decide the entity without being `audited`: a reason replied in a card's thread decides when
    /// its question is still open, and is only talk (no audit entry) when it was answered already, as
    /// when the workload, not seeing the decision through a crash, asks and replies again.
    var mayDecide = false
}

/// An entity the workload created through the HTTP API (as the agent), and what happened to it.
struct Subject: Sendable {
    enum Plan: String, Sendable {
        case click, reaction, slashApprove, slashReject, race, reasonInThread, quick, review, escalation, escalationClaimed
    }

    var ref: EntityRef
    var idempotencyKey: String
    var plan: Plan
    /// Statuses of the agent's attempts to use the execution grant.
    var consumeAnswers: [Int] = []
    var finished = false
    /// Why the flow could not finish (a loss unless the checker finds the entity in its final state).
    var problem: String?
}

/// Everything a run did, for the end-state checks and the summary line.
final class Ledger: Sendable {
    private struct State {
        var events: [String: SentEvent] = [:]
        var subjects: [EntityRef: Subject] = [:]
        var order: [EntityRef] = []
        var faults: [String: Int] = [:]
        var problems: [String] = []
    }

    private let state = Mutex(State())

    func record(_ event: SentEvent) { state.withLock { $0.events[event.dedupeID] = event } }

    func add(_ subject: Subject) {
        state.withLock { s in
            if s.subjects[subject.ref] == nil { s.order.append(subject.ref) }
            s.subjects[subject.ref] = subject
        }
    }

    func update(_ ref: EntityRef, _ body: (inout Subject) -> Void) {
        state.withLock { s in
            if var subject = s.subjects[ref] {
                body(&subject)
                s.subjects[ref] = subject
            }
        }
    }

    /// Something the workload could not do that the service owed it (a create never answered or refused).
    func problem(_ text: String) { state.withLock { $0.problems.append(text) } }
    var problems: [String] { state.withLock { $0.problems } }

    /// Counts an injected fault.
    func fault(_ name: String, count: Int = 1) { state.withLock { $0.faults[name, default: 0] += count } }

    var events: [SentEvent] { state.withLock { Array($0.events.values) } }
    var subjects: [Subject] { state.withLock { s in s.order.compactMap { s.subjects[$0] } } }
    var faults: [String: Int] { state.withLock { $0.faults } }
    var faultCount: Int { faults.values.reduce(0, +) }
}

/// A steady stream of work the way agents and people produce it: approvals created by an agent key over
/// HTTP (with callback URLs) and decided in Slack by clicks, reactions, slash commands and thread
/// replies (sometimes two people at once, sometimes a late click after the decision), with the grant
/// then used by the agent twice at once; review items claimed and submitted from their cards;
/// escalations that time out tier by tier, some claimed and left to lapse; approvals left to expire.
///
/// Every call retries through restarts (idempotency keys on creates); an event is sent again (as a new
/// click) only if Slack gave up delivering it.
final class Workload: Sendable {
    enum Kind: Sendable, CaseIterable {
        case approval, quickApproval, review, escalation
    }

    struct Options: Sendable {
        /// Deliver every event twice (the second as a retry), half of them with our ack ignored so the fake
        /// redelivers it a third time after its ack timeout.
        var duplicateDeliveries = false
        var mix: [Kind] = [.approval, .approval, .approval, .approval, .quickApproval, .review, .review, .escalation, .escalation]
    }

    let rig: ServeRig
    let ledger: Ledger
    let dice: Dice
    let options: Options
    private let counter = Atomic<Int>(0)
    private let tag: String

    init(rig: ServeRig, ledger: Ledger, dice: Dice, options: Options = Options()) {
        self.rig = rig
        self.ledger = ledger
        self.dice = dice
        self.options = options
        tag = String(dice.seed, radix: 36)
    }

    var fake: FakeSlack { rig.fake }

    // MARK: Running

    /// Starts flows (one every `spacing`, at most `concurrency` at once) until `count` were started or
    /// `keepGoing` says stop, then waits for all of them; each gives up at `deadline`.
    func run(count: Int?, concurrency: Int, spacing: ClosedRange<Double>, deadline: ContinuousClock.Instant,
             keepGoing: @escaping @Sendable () -> Bool = { true }) async
    {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            var started = 0
            while keepGoing(), count.map({ started < $0 }) ?? true, ContinuousClock.now < deadline {
                if running >= concurrency {
                    await group.next()
                    running -= 1
                }
                let kind = dice.pick(options.mix)
                let n = counter.add(1, ordering: .relaxed).newValue
                group.addTask { await self.flow(kind, n, deadline: deadline) }
                running += 1
                started += 1
                try? await Task.sleep(for: dice.seconds(spacing))
            }
            await group.waitForAll()
        }
    }

    func flow(_ kind: Kind, _ n: Int, deadline: ContinuousClock.Instant) async {
        switch kind {
        case .approval: await approvalFlow(n, deadline: deadline)
        case .quickApproval: await quickApprovalFlow(n, deadline: deadline)
        case .review: await reviewFlow(n, deadline: deadline)
        case .escalation: await escalationFlow(n, deadline: deadline)
        }
    }

    // MARK: Flows

    func approvalFlow(_ n: Int, deadline: ContinuousClock.Instant) async {
        let arguments = #"{"service":"api","build":\#(n)}"#
        let body = #"{"action":"deploy","arguments":\#(arguments),"summary":"Deploy build \#(n)","callback_url":"\#(rig.receiver.url("approvals"))","state":{"n":\#(n)}}"#
        let plan = dice.pick([Subject.Plan.click, .reaction, .slashApprove, .slashReject, .race, .reasonInThread])
        guard let ref = await create("/v1/approvals", body, kind: .approval, key: "approval-\(tag)-\(n)", plan: plan, deadline: deadline) else { return }
        guard let card = await card(of: ref, in: Channels.approvals, deadline: deadline) else { return fail(ref, "no card was posted") }
        let id = ref.id
        let decided: @Sendable () async -> Bool = { [self] in await state("/v1/approvals/\(id)")?["status"]?.string.map { $0 != "pending" } ?? false }
        switch plan {
        case .click:
            await drive(deadline: deadline, until: decided) { await self.click(People.alice, card, "approve", ref) }
        case .reaction:
            await drive(deadline: deadline, until: decided) { await self.react(People.bob, "white_check_mark", card, ref) }
        case .slashApprove:
            await drive(deadline: deadline, until: decided) { await self.slash(People.alice, Channels.approvals, "approve \(id) ship it", ref) }
        case .slashReject:
            await drive(deadline: deadline, until: decided) { await self.slash(People.bob, Channels.approvals, "reject \(id) not this week", ref) }
        case .race:
            // Two approvers at once, opposite verdicts: exactly one decision; the other hears "already decided".
            async let approve = self.click(People.alice, card, "approve", ref)
            async let reject = self.slash(People.bob, Channels.approvals, "reject \(id) too risky", ref)
            _ = await (approve, reject)
        case .reasonInThread:
            // ❌ asks for the reason in the card's thread; the reply there rejects with it (state kept in the database).
            while ContinuousClock.now < deadline, !(await decided()) {
                _ = await react(People.bob, "x", card, ref, audited: false)
                let prompted = await eventually(timeout: .seconds(20), poll: .milliseconds(200)) {
                    await self.fake.messages(in: Channels.approvals).contains {
                        $0.threadTS == card.ts && $0.botID != nil && $0.text.contains("approval #\(id)")
                    }
                }
                guard prompted else { continue }
                await drive(deadline: deadline, until: decided) { await self.threadReply(People.bob, card, "the numbers look off", ref, isReason: true) }
            }
        default:
            break
        }
        guard let final = await waitUntil(deadline: deadline, { $0["status"]?.string != "pending" }, path: "/v1/approvals/\(id)?wait=5") else {
            return fail(ref, "was never decided")
        }
        if dice.chance(0.3) {
            // A late click after the decision: refused privately, nothing changes.
            _ = await click(dice.pick([People.alice, People.bob]), card, dice.pick(["approve", "reject"]), ref)
        }
        if final["status"]?.string == "approved" {
            // The agent uses the grant from two workers at once (and retries through restarts): at most one may succeed.
            let consume = #"{"arguments":\#(arguments)}"#
            async let first = rig.call(.POST, "/v1/approvals/\(id)/consume", json: consume, until: deadline)
            async let second = rig.call(.POST, "/v1/approvals/\(id)/consume", json: consume, until: deadline)
            let answers = await [first, second].map { $0?.status ?? 0 }
            ledger.update(ref) { $0.consumeAnswers = answers }
            if answers.contains(200) {
                _ = await rig.call(.POST, "/v1/approvals/\(id)/outcome", json: #"{"result":"succeeded"}"#, until: deadline)
            }
        }
        ledger.update(ref) { $0.finished = true }
    }

    func quickApprovalFlow(_ n: Int, deadline: ContinuousClock.Instant) async {
        let body = #"{"action":"restart","arguments":{"n":\#(n)},"policy":"quick","callback_url":"\#(rig.receiver.url("approvals"))"}"#
        guard let ref = await create("/v1/approvals", body, kind: .approval, key: "quick-\(tag)-\(n)", plan: .quick, deadline: deadline) else { return }
        guard await waitUntil(deadline: deadline, { $0["status"]?.string != "pending" }, path: "/v1/approvals/\(ref.id)?wait=5") != nil else {
            return fail(ref, "never expired")
        }
        // The grant of an expired approval cannot be used.
        let answer = await rig.call(.POST, "/v1/approvals/\(ref.id)/consume", json: #"{"arguments":{"n":\#(n)}}"#, until: deadline)
        ledger.update(ref) {
            $0.consumeAnswers = [answer?.status ?? 0]
            $0.finished = true
        }
    }

    func reviewFlow(_ n: Int, deadline: ContinuousClock.Instant) async {
        let body = #"{"queue":"default","title":"Refund answer \#(n)","query":"How long do refunds take?","answer":"14 days","confidence":0.42,"callback_url":"\#(rig.receiver.url("reviews"))"}"#
        guard let ref = await create("/v1/review-items", body, kind: .reviewItem, key: "review-\(tag)-\(n)", plan: .review, deadline: deadline) else { return }
        guard let card = await card(of: ref, in: Channels.reviews, deadline: deadline) else { return fail(ref, "no card was posted") }
        let path = "/v1/review-items/\(ref.id)"
        let claimed: @Sendable () async -> Bool = { [self] in await state(path)?["status"]?.string.map { $0 != "pending" } ?? false }
        let byReaction = dice.chance(0.5)
        await drive(deadline: deadline, until: claimed) {
            byReaction ? await self.react(People.carol, "raised_hand", card, ref) : await self.click(People.carol, card, "claim", ref)
        }
        let completed: @Sendable () async -> Bool = { [self] in await state(path)?["status"]?.string == "completed" }
        let byButton = dice.chance(0.5)
        await drive(deadline: deadline, until: completed) {
            byButton ? await self.click(People.carol, card, "approve", ref) : await self.threadReply(People.carol, card, "approve looks right", ref)
        }
        guard await waitUntil(deadline: deadline, { $0["status"]?.string == "completed" }, path: path) != nil else {
            return fail(ref, "was never completed")
        }
        ledger.update(ref) { $0.finished = true }
    }

    func escalationFlow(_ n: Int, deadline: ContinuousClock.Instant) async {
        let claim = dice.chance(0.5)
        let body = #"{"query":"Customer \#(n) asks why their refund is late","reason":"the AI was unsure"}"#
        guard let ref = await create("/v1/escalations", body, kind: .escalation, key: "escalation-\(tag)-\(n)",
                                     plan: claim ? .escalationClaimed : .escalation, deadline: deadline)
        else { return }
        guard let card = await card(of: ref, in: Channels.agents, deadline: deadline) else { return fail(ref, "no card was posted") }
        if claim {
            // Dave claims it and never answers: the ack timeout re-opens it (or the SLA moved it first and he is refused).
            _ = await click(People.dave, card, "claim", ref)
        }
        guard await waitUntil(deadline: deadline, { $0["breached"]?.bool == true }, path: "/v1/escalations/\(ref.id)") != nil else {
            return fail(ref, "never timed out to a breach at the top tier")
        }
        guard await self.card(of: ref, in: Channels.experts, deadline: deadline) != nil else { return fail(ref, "no expert card was posted") }
        ledger.update(ref) { $0.finished = true }
    }

    // MARK: HTTP

    private func create(_ path: String, _ body: String, kind: EntityKind, key: String, plan: Subject.Plan,
                        deadline: ContinuousClock.Instant) async -> EntityRef?
    {
        // A timeout longer than the database's busy timeout (5 s), so a create that waited on a locked
        // database gets the service's answer (503, or the entity) rather than a client-side timeout.
        guard let answer = await rig.call(.POST, path, json: body, idempotencyKey: key, timeout: .seconds(12), until: deadline) else {
            ledger.problem("\(path) (\(key)) never got an answer")
            return nil
        }
        guard (200..<300).contains(answer.status), let id = answer.json["id"]?.int else {
            ledger.problem("\(path) (\(key)) was refused: \(answer.status) \(answer.text.prefix(200))")
            return nil
        }
        let ref = EntityRef(kind: kind, id: id)
        ledger.add(Subject(ref: ref, idempotencyKey: key, plan: plan))
        return ref
    }

    /// The entity as the API shows it now (nil while the service is unreachable).
    func state(_ path: String) async -> JSONValue? {
        guard let answer = try? await rig.request(.GET, path, timeout: .seconds(3)), answer.status == 200 else { return nil }
        return answer.json
    }

    /// Polls (long-polls where the path asks) until `done` holds.
    private func waitUntil(deadline: ContinuousClock.Instant, _ done: (JSONValue) -> Bool, path: String) async -> JSONValue? {
        while ContinuousClock.now < deadline {
            if let answer = try? await rig.request(.GET, path, timeout: .seconds(10)), answer.status == 200, done(answer.json) {
                return answer.json
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return nil
    }

    private func fail(_ ref: EntityRef, _ why: String) {
        ledger.update(ref) { $0.problem = why }
    }

    // MARK: Slack

    /// The entity's card as the fake holds it (the bot's message whose metadata names the entity).
    func card(of ref: EntityRef, in channel: String, deadline: ContinuousClock.Instant) async -> FakeSlack.Message? {
        var found: FakeSlack.Message?
        let value = CardButtonValue.encode(ref)
        _ = await eventually(timeout: deadline - ContinuousClock.now, poll: .milliseconds(200)) {
            found = await self.fake.messages(in: channel).first {
                $0.botID != nil && $0.metadata?.member(path: "event_payload", "entity")?.asString == value
            }
            return found != nil
        }
        return found
    }

    /// Sends an event, then waits for its effect; sends a new one (a person trying again) only when the
    /// fake gave up delivering the last one without an ack.
    private func drive(deadline: ContinuousClock.Instant, until done: @escaping @Sendable () async -> Bool,
                       _ send: @escaping @Sendable () async -> SentEvent) async
    {
        var last = await send()
        while ContinuousClock.now < deadline {
            if await done() { return }
            if await abandoned(last) { last = await send() }
            try? await Task.sleep(for: .milliseconds(300))
        }
    }

    /// Slack gave up on every delivery of the event and none was acked.
    private func abandoned(_ event: SentEvent) async -> Bool {
        let sent = await fake.sentEnvelopes().filter { $0.dedupeID == event.dedupeID }.map(\.envelopeID)
        guard !sent.isEmpty else { return false }
        let acked = Set(await fake.acks().map(\.envelopeID))
        let given = Set(await fake.abandonedEnvelopes())
        return sent.allSatisfy { given.contains($0) } && !sent.contains { acked.contains($0) }
    }

    private func nextTS() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(Int(Date().timeIntervalSince1970)).\(String(format: "%06d", (n * 100) % 1_000_000))"
    }

    func click(_ user: String, _ card: FakeSlack.Message, _ actionID: String, _ entity: EntityRef) async -> SentEvent {
        let trigger = "trig-\(tag)-\(counter.add(1, ordering: .relaxed).newValue)"
        let payload = FakeSlackPayloads.blockAction(user: user, channel: card.channel, messageTS: card.ts, actionID: actionID,
                                                    value: CardButtonValue.encode(entity), actionTS: nextTS(), triggerID: trigger)
        return await send(type: "interactive", payload: payload, dedupeID: trigger, actor: user, entity: entity, audited: true)
    }

    func react(_ user: String, _ name: String, _ card: FakeSlack.Message, _ entity: EntityRef, audited: Bool = true) async -> SentEvent {
        let eventID = "Ev\(tag)R\(counter.add(1, ordering: .relaxed).newValue)"
        let event = FakeSlackPayloads.reaction(user: user, reaction: name, channel: card.channel, ts: card.ts, eventTS: nextTS())
        let payload = FakeSlackPayloads.eventCallback(event, eventID: eventID)
        return await send(type: "events_api", payload: payload, dedupeID: eventID, actor: user, entity: entity, audited: audited)
    }

    func slash(_ user: String, _ channel: String, _ text: String, _ entity: EntityRef) async -> SentEvent {
        let trigger = "trig-\(tag)-\(counter.add(1, ordering: .relaxed).newValue)"
        let payload = FakeSlackPayloads.slashCommand(user: user, channel: channel, text: text, triggerID: trigger)
        return await send(type: "slash_commands", payload: payload, dedupeID: trigger, actor: user, entity: entity, audited: true)
    }

    /// A reply in the card's thread: a command (always audited), or with `isReason` the reason a prompt asked for.
    func threadReply(_ user: String, _ card: FakeSlack.Message, _ text: String, _ entity: EntityRef, isReason: Bool = false) async -> SentEvent {
        let ts = await fake.postUserMessage(user: user, channel: card.channel, text: text, threadTS: card.ts, alsoAsMessageEvent: false)
        let eventID = "Ev\(tag)M\(counter.add(1, ordering: .relaxed).newValue)"
        let payload = FakeSlackPayloads.eventCallback(FakeSlackPayloads.message(user: user, channel: card.channel, text: text, ts: ts,
                                                                                threadTS: card.ts), eventID: eventID)
        return await send(type: "events_api", payload: payload, dedupeID: eventID, actor: user, entity: entity, audited: !isReason, mayDecide: isReason)
    }

    private func send(type: String, payload: JSONValue, dedupeID: String, actor user: String, entity: EntityRef, audited: Bool,
                      mayDecide: Bool = false) async -> SentEvent {
        let event = SentEvent(dedupeID: dedupeID, type: type, payload: payload, routerKey: SlackInbound.key(type: type, payload: payload) ?? "",
                              actor: ActorID("slack:\(user)"), entity: entity, audited: audited, mayDecide: mayDecide)
        ledger.record(event)
        if options.duplicateDeliveries {
            // Redelivered right behind itself (a new envelope for the same event, as after a reconnect), and
            // sometimes our ack is "lost" so the fake redelivers it once more after its ack timeout.
            let ignoreFirstAck = dice.chance(0.5)
            await fake.deliver(type: type, payload: payload, ignoreAck: ignoreFirstAck)
            await fake.deliver(type: type, payload: payload, retryAttempt: 1, retryReason: "timeout")
            ledger.fault("duplicated deliveries", count: ignoreFirstAck ? 2 : 1)
        } else {
            await fake.deliver(type: type, payload: payload)
        }
        return event
    }

    /// An approver clicks Approve on a card the workload made (pending or already decided), from outside
    /// any flow: for faults that must hit an event in flight (a stall, a locked database). Returns false
    /// when there is no such card yet.
    @discardableResult
    func clickSomeApprovalCard() async -> Bool {
        let plans: Set<Subject.Plan> = [.click, .reaction, .slashApprove, .slashReject, .race]
        let candidates = ledger.subjects.filter { $0.ref.kind == .approval && plans.contains($0.plan) }
        guard !candidates.isEmpty else { return false }
        let ref = dice.pick(candidates).ref
        let value = CardButtonValue.encode(ref)
        guard let card = await fake.messages(in: Channels.approvals).first(where: {
            $0.botID != nil && $0.metadata?.member(path: "event_payload", "entity")?.asString == value
        }) else { return false }
        _ = await click(dice.pick([People.alice, People.bob]), card, "approve", ref)
        return true
    }

    /// Delivers an event the workload sent before once more, as Slack's last retry would (minutes later,
    /// possibly after a restart): it must change nothing.
    func replay(_ event: SentEvent) async {
        await fake.deliver(type: event.type, payload: event.payload, retryAttempt: 3, retryReason: "timeout")
        ledger.fault("replayed deliveries")
    }
}
