import Foundation
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging

/// A chat event (HandoffStore has its own `InboundEvent`, the raw row).
package typealias ChatEvent = HandoffChatKit.InboundEvent

/// Something to say after handling an event.
package enum ChatReply: Hashable, Sendable {
    /// Only the person who acted sees it (Slack ephemeral; a plain message in a DM).
    case privately(RichText)
    /// Everyone in the conversation (the card's thread, the DM) sees it.
    case inConversation(RichText)
    /// React on the person's own message to show it was handled.
    case acknowledge(ReactionAction)
}

/// Turns one chat event into workflow calls. Decides nothing itself: who may do what, and whether
/// the state allows it, is the core's answer; this maps words, buttons and reactions to acts, resolves
/// cards to entities, and phrases the outcome. Every path leaves the event's key in the inbox — with
/// the effect when there is one — so a redelivery does nothing.
package struct ChatActions: Sendable {
    let workflow: Workflow
    let chat: ChatConfiguration
    let logger: Logger

    package init(workflow: Workflow, chat: ChatConfiguration, logger: Logger = Logger(label: "handoff.chat")) {
        self.workflow = workflow
        self.chat = chat
        self.logger = logger
    }

    var store: any WorkflowStore { workflow.store }

    /// Handles an event; returns what to say. Throws only for failures worth retrying (the store).
    package func handle(_ event: ChatEvent) async throws -> [ChatReply] {
        let key = EventKey(source: event.platform, key: event.dedupeKey)
        var entity: EntityRef?
        do {
            switch event.kind {
            case .command(_, let text):
                return try await command(text, implied: nil, event: event, key: key, entity: &entity)
            case .action(let id, let value):
                guard let card = try await resolveCard(event) else { return [] }
                entity = card.entity
                if let claimed = CardButtonValue.decode(value), claimed != card.entity {
                    logger.warning("a button's value does not match its card; ignored", metadata: ["value": "\(value)", "card": "\(card.entity)"])
                    return []
                }
                return try await button(id, on: card, event: event, key: key)
            case .reactionAdded(let name), .reactionRemoved(let name):
                guard let action = chat.reactions.action(for: name) else { return [] }
                guard let card = try await resolveCard(event) else { return [] }
                entity = card.entity
                if case .reactionRemoved = event.kind {
                    return try await reactionRemoved(action, on: card, event: event, key: key)
                }
                return try await reaction(action, on: card, event: event, key: key)
            case .message(let text, let addressed):
                return try await message(text, addressedToBot: addressed, event: event, key: key, entity: &entity)
            }
        } catch let error as WorkflowError {
            if error.code == .duplicate { return [] }
            return try await refused(error, entity: entity, event: event, key: key)
        } catch let error as CommandError {
            do {
                try await markHandled(key)
            } catch let duplicate as WorkflowError where duplicate.code == .duplicate {
                return []
            }
            return [.privately(RichText([.text("🤔 ")]) + RichText.plain(error.message(prefix: commandPrefix(event))))]
        }
    }

    private func commandPrefix(_ event: ChatEvent) -> String {
        if case .command(let name, _) = event.kind { return "/\(name) " }
        return ""
    }

    // MARK: Cards

    /// The card the event refers to, from `card_refs` (state read from the database, never memory).
    private func resolveCard(_ event: ChatEvent) async throws -> CardRef? {
        guard let ref = event.card else { return nil }
        let card = try await store.card(platform: event.platform, channel: ref.channel, messageID: ref.messageID)
        if card == nil { logger.debug("event on a message that is not a card; ignored", metadata: ["key": "\(event.dedupeKey)"]) }
        return card
    }

    // MARK: Buttons and reactions

    private func button(_ actionID: String, on card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        let actor = event.actor.actor
        switch (actionID, card.entity.kind) {
        case ("approve", .approval):
            _ = try await workflow.decide(ApprovalID(card.entity.id), verdict: .approve, comment: nil, by: actor, event: key)
            return []
        case ("reject", .approval), ("revise", .approval):
            return try await askOrDecide(actionID == "reject" ? .reject : .revise, approval: ApprovalID(card.entity.id), card: card, event: event, key: key)
        case ("approve", .reviewItem):
            _ = try await workflow.submit(ReviewItemID(card.entity.id), verdict: .approved, feedback: nil, correctedAnswer: nil, by: actor, event: key)
            return []
        case ("reject", .reviewItem), ("revise", .reviewItem):
            return try await askForReviewFeedback(actionID == "reject" ? .reject : .revise, item: ReviewItemID(card.entity.id), card: card, event: event, key: key)
        case ("claim", .escalation):
            _ = try await workflow.claimEscalation(EscalationID(card.entity.id), by: actor, event: key)
            return []
        case ("claim", .reviewItem):
            _ = try await workflow.claim(ReviewItemID(card.entity.id), by: actor, event: key)
            return []
        case ("escalate", .escalation):
            _ = try await workflow.raiseEscalation(EscalationID(card.entity.id), reason: nil, by: actor, event: key)
            return []
        case (let id, .feedback) where id.hasPrefix("answer:"):
            let feedback = try await workflow.feedback(FeedbackID(card.entity.id))
            guard let answer = Self.answer(index: id, feedback: feedback) else { return [] }
            _ = try await workflow.respond(feedback.id, value: answer, by: actor, event: key)
            return []
        case (let id, .labelTask) where id.hasPrefix("answer:"):
            let task = try await workflow.labelTask(LabelTaskID(card.entity.id))
            guard let value = Self.answer(index: id, task: task) else { return [] }
            _ = try await workflow.addLabel(task.id, text: value, by: actor, event: key)
            return []
        default:
            logger.info("a button nothing handles", metadata: ["action": "\(actionID)", "entity": "\(card.entity)"])
            return []
        }
    }

    static func answer(index actionID: String, feedback: FeedbackRequest) -> String? {
        guard let n = Int(actionID.dropFirst("answer:".count)) else { return nil }
        switch feedback.kind {
        case .rating: return (1...5).contains(n) ? String(n) : nil
        case .choice(let options): return options.indices.contains(n - 1) ? options[n - 1] : nil
        case .text: return nil
        }
    }

    static func answer(index actionID: String, task: LabelTask) -> String? {
        guard let n = Int(actionID.dropFirst("answer:".count)) else { return nil }
        switch task.type {
        case .choice(let options): return options.indices.contains(n - 1) ? options[n - 1] : nil
        case .rating(let lo, let hi):
            // Checked arithmetic: the index comes from the click's action_id, whatever a payload says.
            guard let low = Int(exactly: lo), let high = Int(exactly: hi), n >= 1, n - 1 <= high - low else { return nil }
            return String(low + n - 1)
        default: return nil
        }
    }

    private func reaction(_ action: ReactionAction, on card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        let actor = event.actor.actor
        switch (action, card.entity.kind) {
        case (.approve, .approval):
            _ = try await workflow.decide(ApprovalID(card.entity.id), verdict: .approve, comment: nil, by: actor, event: key)
        case (.reject, .approval), (.revise, .approval):
            return try await askOrDecide(action == .reject ? .reject : .revise, approval: ApprovalID(card.entity.id), card: card, event: event, key: key)
        case (.approve, .reviewItem):
            _ = try await workflow.submit(ReviewItemID(card.entity.id), verdict: .approved, feedback: nil, correctedAnswer: nil, by: actor, event: key)
        case (.reject, .reviewItem), (.revise, .reviewItem):
            return try await askForReviewFeedback(action == .reject ? .reject : .revise, item: ReviewItemID(card.entity.id), card: card, event: event, key: key)
        case (.claim, .escalation):
            _ = try await workflow.claimEscalation(EscalationID(card.entity.id), by: actor, event: key)
        case (.claim, .reviewItem):
            _ = try await workflow.claim(ReviewItemID(card.entity.id), by: actor, event: key)
        case (.escalate, .escalation):
            _ = try await workflow.raiseEscalation(EscalationID(card.entity.id), reason: nil, by: actor, event: key)
        case (.feedbackPositive, .feedback), (.feedbackNegative, .feedback):
            let feedback = try await workflow.feedback(FeedbackID(card.entity.id))
            let positive = action == .feedbackPositive
            let value: String
            switch feedback.kind {
            case .rating: value = positive ? "5" : "1"
            case .text: value = positive ? "👍" : "👎"
            case .choice(let options):
                let wanted = positive ? ["yes", "helpful", "good", "👍"] : ["no", "not helpful", "bad", "👎"]
                guard let match = options.first(where: { wanted.contains($0.lowercased()) }) else {
                    try await markHandled(key)
                    return [.privately(RichText([.text("Feedback #\(feedback.id) asks for one of: \(options.joined(separator: ", ")). Use the buttons or "),
                                                 .command("rate \(feedback.id) <choice>"), .text(".")]))]
                }
                value = match
            }
            _ = try await workflow.respond(feedback.id, value: value, by: actor, event: key)
        default:
            // A mapped emoji that means nothing on this kind of card (🔁 on an escalation): ignore it.
            return []
        }
        return []
    }

    private func reactionRemoved(_ action: ReactionAction, on card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        guard action == .approve, card.entity.kind == .approval else { return [] }
        do {
            _ = try await workflow.withdrawVote(ApprovalID(card.entity.id), by: event.actor.actor, event: key)
        } catch let error as WorkflowError where error.code == .wrongState || error.code == .notAllowed {
            // Removing a reaction that was not a vote (or after the decision) changes nothing; say nothing.
            try await markHandled(key)
        }
        return []
    }

    /// ❌ / 🔁 / the Reject button: decide with the policy's default reason where configured, else ask
    /// for the reason in the card's thread and take the person's next reply there as the reason.
    private func askOrDecide(_ verdict: Verdict, approval id: ApprovalID, card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        let actor = event.actor.actor
        let approval = try await workflow.approval(id)
        if verdict == .reject, approval.policy.defaultRejectReason?.nilIfBlank != nil {
            _ = try await workflow.decide(id, verdict: .reject, comment: nil, by: actor, event: key, allowDefaultReason: true)
            return []
        }
        if let refusal = try await workflow.decisionRefusal(id, by: actor) { throw refusal }
        try await setAwaiting(card: card, user: event.actor.id, value: "approval:\(id.rawValue):\(verdict.rawValue)")
        try await markHandled(key)
        let what = verdict == .reject ? "why you are rejecting" : "what should change"
        return [.inConversation(RichText([.user(event.actor.actorID), .text(" — reply in this thread with \(what) (approval #\(id)).")]))]
    }

    private func askForReviewFeedback(_ verdict: Verdict, item id: ReviewItemID, card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        let item = try await workflow.reviewItem(id)
        guard item.leaseHolder == event.actor.actorID else {
            throw WorkflowError.notAllowed("claim review item #\(id) before reviewing it (✋ or the Claim button)")
        }
        try await setAwaiting(card: card, user: event.actor.id, value: "review_item:\(id.rawValue):\(verdict.rawValue)")
        try await markHandled(key)
        return [.inConversation(RichText([.user(event.actor.actorID), .text(" — reply in this thread with your feedback (review item #\(id)).")]))]
    }

    // MARK: Messages

    private func message(_ text: String, addressedToBot: Bool, event: ChatEvent, key: EventKey, entity: inout EntityRef?) async throws -> [ChatReply] {
        if let card = try await resolveCard(event) {
            entity = card.entity
            // Asked for a reason (after ❌ or 🔁), the person's next reply is the reason, whatever word it
            // starts with ("changes the schema…" is a reason, not the `changes` command); only the
            // command's typed name (`/handoff …`, `!handoff …`) makes it a command instead.
            if !CommandParser.startsWithCommandName(text), let pending = try await awaiting(card: card, user: event.actor.id) {
                return try await completeAwaiting(pending, reason: text, card: card, event: event, key: key)
            }
            if CommandParser.startsWithCommand(text) {
                var replies = try await command(text, implied: card.entity, event: event, key: key, entity: &entity)
                if !replies.contains(where: { if case .privately = $0 { true } else { false } }) { replies.append(.acknowledge(.approve)) }
                return replies
            }
            // The lease holder's reply on an AI answer's review card is the corrected answer (ChatAnswering.swift).
            if let replies = try await ChatAnswering(workflow: workflow).correction(text, on: card, event: event, key: key) { return replies }
            // People talking in a card's thread: seen, and nothing to do (the key says it was handled).
            try await markHandled(key)
            return []
        }
        guard addressedToBot else { return [] }
        if CommandParser.startsWithCommand(text) {
            return try await command(text, implied: nil, event: event, key: key, entity: &entity)
        }
        if let phrase = PhraseMatcher(phrases: workflow.policy.escalation.phrases).matches(text) {
            let e = try await workflow.escalate(
                EscalationRequest(query: text, trigger: .userAsked(phrase: phrase), requester: event.actor.actorID,
                                  origin: origin(of: event).encoded),
                by: event.actor.actorID, event: key)
            entity = e.ref
            return []  // the workflow's notice tells the user someone will answer
        }
        // Anything else is a question for the AI layer, answered in this conversation (ChatAnswering.swift).
        if let replies = try await ChatAnswering(workflow: workflow).question(text, origin: origin(of: event), event: event, key: key) { return replies }
        try await markHandled(key)
        return [.privately(RichText([.text("I can take commands ("), .code("help"), .text(" lists them), or say \"I want to talk to a person\" and someone will answer you here.")]))]
    }

    /// Where answers to this person go: their DM, or the thread under their mention.
    private func origin(of event: ChatEvent) -> ConversationRef {
        if event.isDirect || event.kind.isMessage { return event.conversation }
        return ConversationRef(platform: event.platform, channel: nil, user: event.actor.id)
    }

    private func completeAwaiting(_ pending: String, reason: String, card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        let parts = pending.split(separator: ":")
        guard parts.count == 3, let id = Int64(parts[1]), let verdict = Verdict(rawValue: String(parts[2])) else { return [] }
        let actor = event.actor.actor
        do {
            switch parts[0] {
            case "approval":
                _ = try await workflow.decide(ApprovalID(id), verdict: verdict, comment: reason, by: actor, event: key)
            case "review_item":
                let v: ReviewVerdict = verdict == .reject ? .rejected : verdict == .revise ? .revisionNeeded : .approved
                _ = try await workflow.submit(ReviewItemID(id), verdict: v, feedback: reason, correctedAnswer: nil, by: actor, event: key)
            default:
                try await setAwaiting(card: card, user: event.actor.id, value: "")
                try await markHandled(key)
                return []
            }
        } catch let refusal as WorkflowError where [.notFound, .notAllowed, .wrongState].contains(refusal.code) {
            // Refused for good (decided meanwhile, expired, …): the question is over, so the person's later
            // messages in the thread are not taken as the reason again; they are told why, privately. (An
            // invalid reason, such as one too long, leaves the question open for another try.)
            try await setAwaiting(card: card, user: event.actor.id, value: "")
            throw refusal
        }
        try await setAwaiting(card: card, user: event.actor.id, value: "")
        return [.acknowledge(.approve)]
    }

    // MARK: Commands

    private func command(_ text: String, implied: EntityRef?, event: ChatEvent, key: EventKey, entity: inout EntityRef?) async throws -> [ChatReply] {
        let parsed = try CommandParser.parse(text, impliedID: implied?.id)
        let actor = event.actor.actor
        let slash = "/\(Command.slashName)"
        switch parsed {
        case .help:
            try await markHandled(key)
            return [.privately(Command.helpRichText())]
        case .queue:
            try await markHandled(key)
            return [.privately(try await queueSummary())]
        case .decide(let verdict, let id, let text):
            let target = try target(id, implied: implied, kinds: [.approval, .reviewItem], default: .approval, command: parsed.command)
            entity = target
            if target.kind == .reviewItem {
                let v: ReviewVerdict = verdict == .reject ? .rejected : verdict == .revise ? .revisionNeeded : .approved
                let (item, _) = try await workflow.submit(ReviewItemID(target.id), verdict: v, feedback: text, correctedAnswer: nil, by: actor, event: key)
                return [ChatReply.privately(.plain("Review of item #\(item.id) recorded: \(v.rawValue.replacingOccurrences(of: "_", with: " ")).")).withoutThreadNoise(implied)]
                    .compactMap { $0 }
            }
            let approval = try await workflow.decide(ApprovalID(target.id), verdict: verdict, comment: text, by: actor, event: key)
            let word: String
            switch approval.status {
            case .pending: word = "counted your approval (\(approval.votes.count) of \(approval.policy.quorum))"
            case .approved: word = "approved"
            case .rejected: word = "rejected"
            case .needsRevision: word = "sent back for revision"
            default: word = approval.status.name
            }
            return [ChatReply.privately(.plain("Approval #\(approval.id) \(word).")).withoutThreadNoise(implied)].compactMap { $0 }
        case .claim(let target):
            return try await claim(target, implied: implied, actor: actor, key: key, entity: &entity)
        case .escalate(let reason):
            if let implied, implied.kind == .escalation {
                entity = implied
                let e = try await workflow.raiseEscalation(EscalationID(implied.id), reason: reason, by: actor, event: key)
                return [.privately(.plain("Escalation #\(e.id) moved to the \(e.tierName) tier."))]
            }
            let query = reason ?? "(asked for a person with \(slash) escalate)"
            let trigger: EscalationTrigger = reason.map { .manual($0) } ?? .userAsked(phrase: "\(slash) escalate")
            let e = try await workflow.escalate(
                EscalationRequest(query: query, trigger: trigger, requester: actor.id, origin: origin(of: event).encoded),
                by: actor.id, event: key)
            entity = e.ref
            return [.privately(.plain("Escalation #\(e.id) opened: someone from the \(e.tierName) team will answer you."))]
        case .resolve(let id, let resolution):
            let target = try target(id, implied: implied, kinds: [.escalation], default: .escalation, command: .resolve)
            entity = target
            let e = try await workflow.resolveEscalation(EscalationID(target.id), resolution: resolution, by: actor, event: key)
            return [.privately(.plain("Escalation #\(e.id) resolved" + (e.origin == nil ? "." : "; the user gets your answer.")))]
        case .label(let task, let value):
            let target = try target(task, implied: implied, kinds: [.labelTask], default: .labelTask, command: .label)
            entity = target
            let (t, label) = try await workflow.addLabel(LabelTaskID(target.id), text: value, by: actor, event: key)
            return [.privately(.plain("Labeled task #\(t.id): \(label.value.display) (\(t.labelCount) of \(t.overlap))."))]
        case .rate(let id, let value):
            let target = try target(id, implied: implied, kinds: [.feedback], default: .feedback, command: .rate)
            entity = target
            let f = try await workflow.respond(FeedbackID(target.id), value: value, by: actor, event: key)
            var answer = value
            if case .answered(let response, _, _) = f.status { answer = response.display }
            return [.privately(.plain("Thanks — feedback #\(f.id) recorded: \(answer)."))]
        }
    }

    /// The entity a command acts on: its id (of the command's default kind), else the card's.
    private func target(_ id: Int64?, implied: EntityRef?, kinds: Set<EntityKind>, default kind: EntityKind, command: Command) throws -> EntityRef {
        if let implied, kinds.contains(implied.kind), id == nil || id == implied.id { return implied }
        if let id { return EntityRef(kind: kind, id: id) }
        throw CommandError(command: command, problem: "\(command.rawValue) needs an id here (or reply in the thread of its card)")
    }

    private func claim(_ target: ClaimTarget, implied: EntityRef?, actor: Actor, key: EventKey, entity: inout EntityRef?) async throws -> [ChatReply] {
        switch target {
        case .escalation(let id):
            entity = EntityRef(kind: .escalation, id: id)
            let e = try await workflow.claimEscalation(EscalationID(id), by: actor, event: key)
            return [.privately(claimed(e))]
        case .queue(let name):
            guard let item = try await workflow.claimNext(queue: name, by: actor, event: key) else {
                try await markHandled(key)
                return [.privately(.plain("Queue \(name) has nothing for you to claim."))]
            }
            entity = item.ref
            return [.privately(claimed(item))]
        case .next:
            if let implied {
                entity = implied
                switch implied.kind {
                case .escalation:
                    return [.privately(claimed(try await workflow.claimEscalation(EscalationID(implied.id), by: actor, event: key)))]
                case .reviewItem:
                    return [.privately(claimed(try await workflow.claim(ReviewItemID(implied.id), by: actor, event: key)))]
                default:
                    break
                }
            }
            if let e = try await workflow.nextOpenEscalation(for: actor) {
                entity = e.ref
                return [.privately(claimed(try await workflow.claimEscalation(e.id, by: actor, event: key)))]
            }
            for (name, queue) in workflow.policy.queues.sorted(by: { $0.key < $1.key })
            where queue.reviewers.isEmpty || workflow.policy.directory.mayActFor(actor, anyOf: queue.reviewers) {
                if let item = try await workflow.claimNext(queue: name, by: actor, event: key) {
                    entity = item.ref
                    return [.privately(claimed(item))]
                }
            }
            try await markHandled(key)
            return [.privately(.plain("Nothing is waiting for you right now."))]
        }
    }

    private func claimed(_ e: Escalation) -> RichText {
        RichText([.text("✋ You claimed escalation #\(e.id): “"), .text(String(e.query.prefix(300))), .text("”. Answer with "),
                  .command("resolve \(e.id) <answer>"), .text(" or reply "), .code("resolve <answer>"), .text(" in its thread.")])
    }

    private func claimed(_ item: ReviewItem) -> RichText {
        RichText([.text("✋ You claimed review item #\(item.id) (\(item.queue), \(item.priority.rawValue)). Reply in its thread with "),
                  .code("approve"), .text(", "), .code("reject <feedback>"), .text(" or "), .code("revise <feedback>"), .text(".")])
    }

    private func queueSummary() async throws -> RichText {
        var lines: [String] = []
        let pending = try await workflow.approvals(status: "pending", limit: 100)
        lines.append("Approvals pending: \(pending.count == 100 ? "100+" : String(pending.count))")
        for stats in try await workflow.allQueueCounts() {
            lines.append("Queue \(stats.queue): \(stats.pending) waiting, \(stats.claimed) claimed, \(stats.slaBreaches) past SLA")
        }
        let open = try await workflow.escalations(status: "open", limit: 100)
        lines.append("Escalations open: \(open.count == 100 ? "100+" : String(open.count))")
        return .plain(lines.joined(separator: "\n"))
    }

    // MARK: Refusals, dedupe, pending reasons

    /// A refused act: nothing changed. Record the attempt in the audit trail (with the event key, so a
    /// redelivery stays quiet) and explain privately.
    private func refused(_ error: WorkflowError, entity: EntityRef?, event: ChatEvent, key: EventKey) async throws -> [ChatReply] {
        var changes = ChangeSet(eventKey: key)
        if let entity, error.code != .notFound, let state = try await stateName(of: entity) {
            changes.eventKey?.entity = entity
            changes.audit.append(AuditEvent(at: workflow.clock.now(), actor: event.actor.actorID, entity: entity, from: state, to: state,
                                            detail: "refused in chat: \(error.message)"))
        }
        do {
            try await store.commit(changes, now: workflow.clock.now())
        } catch StoreError.duplicate {
            return []
        }
        logger.info("refused a chat act", metadata: ["actor": "\(event.actor.actorID)", "why": "\(error.message)"])
        return [.privately(RichText([.text("🚫 ")]) + RichText.mentioning(error.message.prefix(1).uppercased() + error.message.dropFirst()))]
    }

    /// Records the event key alone (for events whose only effect is a reply), so a redelivery is quiet.
    private func markHandled(_ key: EventKey) async throws {
        do {
            try await store.commit(ChangeSet(eventKey: key), now: workflow.clock.now())
        } catch StoreError.duplicate {
            throw WorkflowError.duplicate("this event was already handled")
        }
    }

    private func stateName(of entity: EntityRef) async throws -> String? {
        switch entity.kind {
        case .approval: try await store.approval(ApprovalID(entity.id))?.value.status.name
        case .reviewItem: try await store.reviewItem(ReviewItemID(entity.id))?.value.status.name
        case .escalation: try await store.escalation(EscalationID(entity.id))?.value.status.name
        case .feedback: try await store.feedback(FeedbackID(entity.id))?.value.status.name
        case .labelTask: try await store.labelTask(LabelTaskID(entity.id))?.value.status.rawValue
        case .correction, .label: nil
        }
    }

    private func awaitingKey(card: CardRef, user: String) -> String {
        "chat.await:\(card.platform):\(card.channel):\(card.messageID ?? ""):\(user)"
    }

    private func setAwaiting(card: CardRef, user: String, value: String) async throws {
        try await store.setValue(value, forKey: awaitingKey(card: card, user: user), at: workflow.clock.now())
    }

    private func awaiting(card: CardRef, user: String) async throws -> String? {
        try await store.value(forKey: awaitingKey(card: card, user: user))?.nilIfEmpty
    }
}

extension ChatEvent.Kind {
    var isMessage: Bool {
        if case .message = self { return true }
        return false
    }
}

extension ChatReply {
    /// Thread replies that succeeded get a ✅ reaction instead of a private confirmation.
    func withoutThreadNoise(_ implied: EntityRef?) -> ChatReply? {
        implied == nil ? self : nil
    }
}
