import Foundation
import HandoffCore
import HandoffStore

/// The AI layer's side of the workflow: questions from chat, AI answers routed by confidence, the
/// outcomes reviewers produce (calibration data), database route thresholds, and system-prompt
/// versions that change only through an approval. Every act is one transaction with the workflow
/// entities it creates.
extension Workflow {
    /// The identity the AI layer acts as (audit trail, requester of prompt-change approvals).
    package static let aiActor: ActorID = "handoff:ai"
    /// The action name of a suggested system-prompt change.
    package static let promptChangeAction = "update_system_prompt"
    /// Where the 👍/👎 prompts under auto-sent answers are counted (feedback response rates).
    package static let answerFeedbackChannel = "ai-answers"

    // MARK: Routes and thresholds

    /// Where a route's threshold comes from.
    package enum ThresholdSource: Sendable, Hashable {
        /// `routes.<name>.threshold` in the policy file.
        case policy
        /// `handoff calibrate --apply`, kept in the database; it takes precedence over the policy file.
        case database(RouteThresholdOverride)
    }

    /// A route as routing uses it: the policy's configuration with the database threshold applied.
    package struct EffectiveRoute: Sendable, Hashable {
        package var name: String
        package var config: RouteConfig
        package var source: ThresholdSource
        /// The threshold the policy file sets (what applies again after `calibrate --reset`).
        package var policyThreshold: Double
    }

    package func routeConfig(_ name: String) throws(WorkflowError) -> RouteConfig {
        guard let route = policy.routes[name] else {
            throw .invalid("route", "'\(name)' is not a configured route (configured: \(policy.routes.keys.sorted().joined(separator: ", ")))")
        }
        return route
    }

    /// The route with its effective threshold: a database override (from calibration) wins over the policy file.
    package func effectiveRoute(_ name: String) async throws -> EffectiveRoute {
        var config = try routeConfig(name)
        let policyThreshold = config.threshold
        guard let override = try await store.routeThreshold(name) else {
            return EffectiveRoute(name: name, config: config, source: .policy, policyThreshold: policyThreshold)
        }
        config.threshold = override.threshold
        return EffectiveRoute(name: name, config: config, source: .database(override), policyThreshold: policyThreshold)
    }

    /// Stores a calibrated threshold for a route; routing uses it from the next answer on.
    package func setRouteThreshold(_ route: String, threshold: Double, targetError: Double?, estimatedError: Double?, outcomes: Int?,
                                   by actor: ActorID) async throws -> RouteThresholdOverride
    {
        _ = try routeConfig(route)
        guard threshold.isFinite, (0...1).contains(threshold) else { throw WorkflowError.invalid("threshold", "must be between 0 and 1") }
        var ai = AIChanges()
        let override = RouteThresholdOverride(route: route, threshold: threshold, targetError: targetError, estimatedError: estimatedError,
                                              outcomes: outcomes, appliedBy: actor, appliedAt: clock.now())
        ai.thresholds = [override]
        try await commit(ChangeSet(), ai: ai, now: override.appliedAt)
        logger.notice("route threshold set from calibration", metadata: ["route": "\(route)", "threshold": "\(threshold)", "by": "\(actor)"])
        return override
    }

    /// Removes a route's database threshold; the policy file's applies again.
    package func clearRouteThreshold(_ route: String) async throws {
        var ai = AIChanges()
        ai.clearedThresholds = [route]
        try await commit(ChangeSet(), ai: ai, now: clock.now())
    }

    /// Commits a change set with the AI layer's writes and tells commit listeners.
    func commit(_ changes: ChangeSet, ai: AIChanges, now: Date) async throws {
        if ai.isEmpty { return try await commit(changes, now: now) }
        try await store.commit(changes, ai: ai, now: now)
        notify(changes.inserts.map(\.ref) + changes.updates.map(\.row.ref))
    }

    // MARK: Questions

    /// Records a question a user asked (a DM or a mention) for the AI layer, with the chat event's key in
    /// the same transaction (a redelivery records nothing and throws `duplicate`).
    package func ask(_ draft: AIQuestionDraft, event: EventKey? = nil) async throws -> AIQuestion {
        guard draft.query.nilIfBlank != nil else { throw WorkflowError.invalid("question", "is empty") }
        guard draft.query.count <= ReviewMachine.maxTextLength else {
            throw WorkflowError.invalid("question", "is longer than \(ReviewMachine.maxTextLength) characters")
        }
        if let route = draft.route { _ = try routeConfig(route) }
        do {
            return try await store.insertQuestion(draft, eventKey: event, now: clock.now())
        } catch StoreError.duplicate {
            throw WorkflowError.duplicate("this question was already recorded")
        }
    }

    /// What the AI layer produced for one question, ready to route.
    package struct AnswerDraft: Sendable {
        package var text: String?
        package var confidence: ConfidenceInput
        /// The raw confidence when one was measured.
        package var measured: Double?
        package var estimator: String
        package var provider: String?
        package var model: String?
        package var promptVersion: Int?
        /// Past corrections the prompt carried as examples.
        package var examples: [CorrectionID]
        /// What the estimator saw (JSON).
        package var details: JSONValue

        package init(text: String?, confidence: ConfidenceInput, measured: Double?, estimator: String, provider: String? = nil, model: String? = nil,
                     promptVersion: Int? = nil, examples: [CorrectionID] = [], details: JSONValue = .object([:]))
        {
            self.text = text
            self.confidence = confidence
            self.measured = measured
            self.estimator = estimator
            self.provider = provider
            self.model = model
            self.promptVersion = promptVersion
            self.examples = examples
            self.details = details
        }
    }

    /// How a question was routed.
    package struct QuestionResult: Sendable {
        package var decision: RoutingDecision
        package var answer: AIAnswerRecord
        package var reviewItem: ReviewItem?
        package var escalation: Escalation?
        package var feedback: FeedbackRequest?
    }

    /// Routes an AI answer to a question, in one transaction with the question's completion and the answer
    /// record. Confident → the answer goes to the asker with a 👍/👎 prompt; unsure → a review item (query,
    /// draft, confidence, reason, origin) in the route's queue, and the asker is told a person will answer;
    /// a request for a person or confidence under the floor → an escalation.
    package func completeQuestion(_ question: AIQuestion, route routeName: String, draft: AnswerDraft) async throws -> QuestionResult {
        let route = try await effectiveRoute(routeName)
        var confidence = draft.confidence
        if draft.text?.nilIfBlank == nil, case .score = confidence { confidence = .unavailable(reason: "the AI gave no answer") }
        if draft.text?.nilIfBlank == nil, case .selfRating = confidence { confidence = .unavailable(reason: "the AI gave no answer") }
        let decision = Router.route(answer: draft.text, confidence: confidence, userMessage: question.query, route: route.config,
                                    escalation: policy.escalation)
        let now = clock.now()
        let origin = question.origin
        var record = AIAnswerRecord(
            questionID: question.id, route: routeName, query: question.query, answer: draft.text, confidence: draft.measured,
            estimator: draft.estimator, decision: decision.name, reason: decision.reason, provider: draft.provider, model: draft.model,
            promptVersion: draft.promptVersion, examples: draft.examples, details: draft.details.canonicalText, origin: origin, createdAt: now)
        var cs = ChangeSet()
        var result = QuestionResult(decision: decision, answer: record)
        switch decision {
        case .autoSend:
            if let origin, let text = draft.text {
                let id = FeedbackID(try await nextID(.feedback))
                var t = try FeedbackMachine.request(
                    id: id,
                    input: FeedbackRequestInput(kind: .choice(options: ["👍", "👎"]), prompt: "Was this answer helpful?",
                                                channel: Self.answerFeedbackChannel, respondent: question.asker, origin: origin),
                    config: policy.feedback, by: Self.aiActor, now: now)
                // The 👍/👎 card goes into the asker's conversation, right under the answer.
                t.effects = t.effects.map { if case .postCard = $0 { .postCard(destination: origin) } else { $0 } }
                cs = try changeSet(t, expectedVersion: nil, now: now)
                cs.outbox.insert(notice(text, about: t.entity.ref, origin: origin), at: 0)
                record.feedback = id
                result.feedback = t.entity
            }
        case .review(let c, let reason):
            let queue = try queueConfig(route.config.queue)
            let id = ReviewItemID(try await nextID(.reviewItem))
            var context: [String: JSONValue] = ["estimator": .string(draft.estimator)]
            if !draft.examples.isEmpty { context["examples_in_prompt"] = .array(draft.examples.map { .string("correction #\($0)") }) }
            let title = origin == nil
                ? "AI answer to check"
                : draft.text == nil
                    ? "A user's question (no AI draft): claim it and reply in this thread with the answer"
                    : "A user's question: approve the AI draft, or claim it and reply in this thread with the corrected answer"
            let request = ReviewItemRequest(
                queue: route.config.queue, priority: route.config.priority,
                content: ReviewContent(title: title, query: question.query, answer: draft.text, confidence: c, reason: reason,
                                       context: .object(context)),
                origin: origin, route: routeName)
            let t = try ReviewMachine.enqueue(id: id, request: request, queue: queue, by: Self.aiActor, now: now)
            cs = try changeSet(t, expectedVersion: nil, now: now)
            if let origin {
                cs.outbox.insert(notice("Thanks for your question. A person will check the answer and reply here.", about: t.entity.ref, origin: origin),
                                 at: 0)
            }
            record.reviewItem = id
            result.reviewItem = t.entity
        case .escalate(let c, let reason):
            let trigger: EscalationTrigger
            if let phrase = PhraseMatcher(phrases: policy.escalation.phrases).matches(question.query) {
                trigger = .userAsked(phrase: phrase)
            } else if let text = draft.text, let phrase = PhraseMatcher(phrases: policy.escalation.cannotHelpPhrases).matches(text) {
                trigger = .cannotHelp(phrase: phrase)
            } else if let c {
                trigger = .lowConfidence(c)
            } else {
                trigger = .manual(reason)
            }
            let id = EscalationID(try await nextID(.escalation))
            let t = try EscalationMachine.open(
                id: id, request: EscalationRequest(query: question.query, context: draft.text.map { "AI draft: \($0)" }, trigger: trigger,
                                                   requester: question.asker, origin: origin),
                config: policy.escalation, by: Self.aiActor, now: now)
            cs = try changeSet(t, expectedVersion: nil, now: now)
            record.escalation = id
            result.escalation = t.entity
        }
        var ai = AIChanges()
        ai.answers = [record]
        ai.answeredQuestions = [question.id]
        do {
            try await commit(cs, ai: ai, now: now)
        } catch StoreError.conflict {
            throw WorkflowError(code: .conflict, message: "question #\(question.id) was already answered")
        }
        result.answer = record
        return result
    }

    /// Gives up on a question that cannot be routed at all: it ends as failed, with the reason.
    package func failQuestion(_ id: Int64, error: String) async throws {
        try await store.questionAttemptFailed(id, error: error, retryAt: nil)
    }

    func notice(_ text: String, about entity: EntityRef, origin: String) -> OutboxDraft {
        let payload = NotifyPayload(audience: .origin, text: text, origin: origin)
        return OutboxDraft(kind: .notify, entity: entity, payload: (try? WireJSON.string(payload)) ?? "{}")
    }

    // MARK: Outcomes (called from `submit`, in its transaction)

    /// What completing a review of a routed answer adds: the outcome calibration learns from (approved
    /// as is, corrected, rejected) and, for a question asked in chat, the approved or corrected answer
    /// sent back to the asker's conversation.
    func reviewOutcome(of item: ReviewItem, into cs: inout ChangeSet, now: Date) async throws -> AIChanges {
        var ai = AIChanges()
        guard case .completed(let verdict, _) = item.status, let last = item.reviews.last else { return ai }
        let answer = try await store.aiAnswer(reviewItem: item.id)
        let corrected = item.reviews.last { $0.correctedAnswer?.nilIfBlank != nil }?.correctedAnswer
        let draft = item.content.answer?.nilIfBlank
        let outcome: AIOutcomeVerdict = corrected != nil ? .corrected : verdict == .approved ? .approved : .rejected
        // Calibration needs a raw confidence that was measured: the AI answer's own record, else (answers
        // routed through the API) the confidence the caller gave.
        let confidence = answer.map { $0.confidence } ?? item.content.confidence
        if let route = item.route, draft != nil, let confidence {
            // An answer that went out and came back with a 👎 was not picked by its confidence: keep it out of calibration.
            let source: AIOutcomeSource = answer?.decision == "auto_send" ? .flagged : .review
            ai.outcomes.append(AIOutcome(reviewItem: item.id, route: route, confidence: confidence, verdict: outcome,
                                         estimator: answer?.estimator ?? "caller", answerID: answer?.id, judgedBy: last.reviewer, judgedAt: now,
                                         source: source))
        }
        if answer != nil, let origin = item.origin {
            let text: String
            if let corrected {
                text = "A person answered your question:\n\n\(corrected)"
            } else if verdict == .approved, let draft {
                text = "A person checked the answer to your question:\n\n\(draft)"
            } else {
                text = "A person looked at your question but could not confirm an answer. If you still need help, say \"talk to a human\"."
            }
            cs.outbox.append(notice(text, about: item.ref, origin: origin))
        }
        return ai
    }

    /// Looks at the 👍/👎 of auto-sent answers whose prompt closed: a 👎 puts the answer in front of a person
    /// (a review item in the route's queue, answered back in the user's conversation); a 👍 or no answer
    /// just closes it. Returns the review items opened.
    @discardableResult
    package func followUpAnswerFeedback(limit: Int = 50) async throws -> [ReviewItem] {
        var opened: [ReviewItem] = []
        for answer in try await store.answersWithClosedFeedback(limit: limit) {
            guard let answerID = answer.id, let feedbackID = answer.feedback, let feedback = try await store.feedback(feedbackID)?.value else { continue }
            let now = clock.now()
            var cs = ChangeSet()
            var ai = AIChanges()
            var item: ReviewItem?
            if case .answered(let response, let by, _) = feedback.status, response.display == "👎", let text = answer.answer,
               let route = try? await effectiveRoute(answer.route), let queue = try? queueConfig(route.config.queue)
            {
                let id = ReviewItemID(try await nextID(.reviewItem))
                let request = ReviewItemRequest(
                    queue: route.config.queue, priority: route.config.priority,
                    content: ReviewContent(
                        title: "The user said this AI answer did not help (👎): approve it, or claim it and reply in this thread with a better answer",
                        query: answer.query, answer: text, confidence: answer.confidence, reason: "the user rated the answer 👎 (@\(by))"),
                    origin: answer.origin, route: answer.route)
                let t = try ReviewMachine.enqueue(id: id, request: request, queue: queue, by: Self.aiActor, now: now)
                cs = try changeSet(t, expectedVersion: nil, now: now)
                if let origin = answer.origin {
                    cs.outbox.insert(notice("Thanks for telling us. A person will look at the answer and reply here.", about: t.entity.ref, origin: origin),
                                     at: 0)
                }
                item = t.entity
            }
            ai.followUps = [(answerID, item?.id)]
            guard try await commitUnlessRaced(cs, ai: ai, now: now) else { continue }
            if let item { opened.append(item) }
        }
        return opened
    }

    /// A route's judged answers per 0.001 confidence bin (optionally of one estimator only).
    package func outcomeCounts(route: String, estimator: String? = nil) async throws -> [OutcomeCount] {
        try await store.outcomeCounts(route: route, estimator: estimator)
    }

    // MARK: System prompts

    /// The route's active system prompt version from the database, if one was approved.
    package func activePrompt(route: String) async throws -> PromptVersion? {
        try await store.activePrompt(route: route)
    }

    /// Proposes a new system prompt for a route. Nothing changes until the approval is approved and
    /// applied (``applyApprovedPrompts()``): the approval (action `update_system_prompt`, arguments
    /// route, version and the full prompt) and the proposed version are created together.
    package func proposePrompt(route: String, prompt: String, reason: String?, by actor: ActorID, policyName: String = "default",
                               idempotencyKey: EventKey? = nil) async throws -> (version: PromptVersion, approval: Approval)
    {
        _ = try routeConfig(route)
        let text = prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw WorkflowError.invalid("prompt", "is empty") }
        guard text.count <= ReviewMachine.maxTextLength else { throw WorkflowError.invalid("prompt", "is longer than \(ReviewMachine.maxTextLength) characters") }
        let policy = try approvalPolicy(named: policyName)
        let version = try await store.nextPromptVersion(route: route)
        let now = clock.now()
        let id = ApprovalID(try await nextID(.approval))
        let summary = "Change the system prompt of route \(route) to version \(version)" + (reason.map { " — \($0)" } ?? "") + " (suggested via \(actor))"
        let request = ApprovalRequest(action: Self.promptChangeAction, arguments: Self.promptArguments(route: route, version: version, prompt: text),
                                      summary: String(summary.prefix(1000)), requester: Self.aiActor, policyName: policyName)
        let t = try ApprovalMachine.create(id: id, request: request, policy: policy, now: now)
        var ai = AIChanges()
        ai.newPrompts = [PromptVersionDraft(route: route, version: version, prompt: text, status: .proposed, approval: id, reason: reason,
                                            createdBy: actor, createdAt: now)]
        do {
            try await commit(try changeSet(t, expectedVersion: nil, event: idempotencyKey, now: now), ai: ai, now: now)
        } catch StoreError.conflict {
            throw WorkflowError(code: .conflict, message: "another prompt version \(version) of route \(route) was proposed at the same time; try again")
        }
        guard let stored = try await store.prompt(approval: id) else { throw StoreError.corrupt("prompt version of approval #\(id) missing") }
        return (stored, t.entity)
    }

    /// Commits; false when another worker (a second process, the service) changed the rows first.
    private func commitUnlessRaced(_ cs: ChangeSet, ai: AIChanges, now: Date) async throws -> Bool {
        do {
            try await commit(cs, ai: ai, now: now)
            return true
        } catch StoreError.conflict {
            return false
        }
    }

    /// The exact arguments a prompt-change approval is bound to.
    package static func promptArguments(route: String, version: Int, prompt: String) -> JSONValue {
        .object(["route": .string(route), "version": .int(Int64(version)), "prompt": .string(prompt)])
    }

    /// What applying proposed prompts did.
    package struct PromptApplication: Sendable, Hashable {
        package var activated: [PromptVersion] = []
        package var rejected: [PromptVersion] = []

        package init() {}
    }

    /// Applies decided prompt-change approvals: an approved one is consumed (its execution grant, bound to
    /// the exact arguments) and its version becomes the route's active prompt in the same transaction; a
    /// rejected, expired or cancelled one marks its version rejected. Pending ones wait.
    @discardableResult
    package func applyApprovedPrompts(limit: Int = 50) async throws -> PromptApplication {
        var out = PromptApplication()
        for proposed in try await store.proposedPrompts(limit: limit) {
            guard let approvalID = proposed.approval, let current = try await store.approval(approvalID) else { continue }
            let approval = current.value
            let now = clock.now()
            var ai = AIChanges()
            var cs = ChangeSet()
            switch approval.status {
            case .pending:
                continue
            case .approved:
                let expected = Self.promptArguments(route: proposed.route, version: proposed.version, prompt: proposed.prompt)
                guard expected.canonicalHash == approval.argumentsHash else {
                    ai.promptTransitions = [(proposed.id, .proposed, .rejected)]
                    guard try await commitUnlessRaced(cs, ai: ai, now: now) else { continue }
                    logger.error("a prompt-change approval's arguments differ from its prompt version; not applied",
                                 metadata: ["approval": "\(approvalID)", "route": "\(proposed.route)"])
                    out.rejected.append(proposed)
                    continue
                }
                if case .unused = approval.execution {
                    let t = try ApprovalMachine.consume(approval, argumentsHash: expected.canonicalHash, by: Actor(Self.aiActor), now: now)
                    cs = try changeSet(t, expectedVersion: current.version, now: now)
                }
                if let active = try await store.activePrompt(route: proposed.route) {
                    ai.promptTransitions.append((active.id, .active, .superseded))
                }
                ai.promptTransitions.append((proposed.id, .proposed, .active))
                guard try await commitUnlessRaced(cs, ai: ai, now: now) else { continue }
                logger.notice("system prompt changed after approval",
                              metadata: ["route": "\(proposed.route)", "version": "\(proposed.version)", "approval": "\(approvalID)"])
                var activated = proposed
                activated.status = .active
                activated.activatedAt = now
                out.activated.append(activated)
            case .rejected, .needsRevision, .expired, .cancelled:
                ai.promptTransitions = [(proposed.id, .proposed, .rejected)]
                guard try await commitUnlessRaced(cs, ai: ai, now: now) else { continue }
                var rejected = proposed
                rejected.status = .rejected
                out.rejected.append(rejected)
            }
        }
        return out
    }
}
