import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Hummingbird
import NIOCore

/// The JSON API under `/v1`: every capability of the workflow. Bodies and answers use the views of
/// `HandoffWorkflow/Views.swift` with snake_case keys; the acting identity always comes from the key.
struct APIRoutes: Sendable {
    let kit: APIToolkit
    let waiters: EntityWaiters
    let maxLongPoll: Duration

    var workflow: Workflow { kit.workflow }

    func register(on router: HTTPRouter) {
        registerApprovals(router)
        registerReviews(router)
        registerRoutingAndEscalations(router)
        registerFeedbackAndCorrections(router)
        registerLabeling(router)
    }

    // MARK: Approvals

    struct CreateApproval: Decodable {
        var action: String
        var arguments: JSONValue?
        var summary: String?
        var policy: String?
        var callbackUrl: String?
        var state: JSONValue?
    }

    struct Decide: Decodable {
        var verdict: String
        var comment: String?
        var reason: String?
        var argumentsHash: String?
    }

    struct Cancel: Decodable { var reason: String? }

    struct Consume: Decodable {
        var arguments: JSONValue?
        var argumentsHash: String?
    }

    struct Outcome: Decodable {
        var result: String
        var message: String?
    }

    func registerApprovals(_ router: HTTPRouter) {
        kit.route(router, .post, "/v1/approvals", .agent) { request, _, principal in
            let body = try await kit.body(CreateApproval.self, request)
            let key = try kit.idempotencyKey(request, principal)
            let (approval, created) = try await workflow.requestApproval(
                ApprovalRequest(action: body.action, arguments: body.arguments ?? .object([:]), summary: body.summary,
                                requester: principal.actor.id, callerState: body.state, callbackURL: body.callbackUrl,
                                policyName: body.policy ?? "default"),
                idempotencyKey: key)
            return try kit.created(ApprovalView(approval), new: created)
        }
        kit.route(router, .get, "/v1/approvals", .anyKey) { request, _, _ in
            let limit = try request.intQuery("limit", default: 50, range: 1...200)
            let list = try await workflow.approvals(status: request.query("status"), limit: limit, before: try request.idQuery("before"))
            return try kit.json(Page(items: list.map(ApprovalView.init), next: list.count == limit ? list.last?.id.rawValue : nil))
        }
        kit.route(router, .get, "/v1/approvals/{id}", .anyKey) { request, context, _ in
            let id: ApprovalID = try context.id(.approval)
            let wait = try request.doubleQuery("wait", default: 0, range: 0...86_400)
            guard wait > 0 else { return try kit.json(ApprovalView(try await workflow.approval(id))) }
            // Long-poll: answer as soon as a commit decides it, or with the pending state at the deadline.
            let timeout = min(Duration.milliseconds(Int64(wait * 1000)), maxLongPoll)
            let approval = try await waiters.wait(
                for: EntityRef(kind: .approval, id: id.rawValue), timeout: timeout,
                load: { try await workflow.approval(id) }, isFinal: { !$0.status.isPending })
            return try kit.json(ApprovalView(approval))
        }
        kit.route(router, .post, "/v1/approvals/{id}/decision", .reviewer) { request, context, principal in
            let id: ApprovalID = try context.id(.approval)
            let body = try await kit.body(Decide.self, request)
            guard let verdict = Verdict(word: body.verdict) else {
                throw APIError.invalid("verdict", "verdict must be approve, reject or revise, not '\(body.verdict)'")
            }
            let approval = try await workflow.decide(id, verdict: verdict, comment: body.comment ?? body.reason, by: principal.actor,
                                                     argumentsHash: body.argumentsHash)
            return try kit.json(ApprovalView(approval))
        }
        kit.route(router, .post, "/v1/approvals/{id}/cancel", .agent) { request, context, principal in
            let id: ApprovalID = try context.id(.approval)
            let body = try await kit.body(Cancel.self, request, emptyIsObject: true)
            return try kit.json(ApprovalView(try await workflow.cancelApproval(id, by: principal.actor, reason: body.reason)))
        }
        kit.route(router, .post, "/v1/approvals/{id}/consume", .agent) { request, context, principal in
            let id: ApprovalID = try context.id(.approval)
            let body = try await kit.body(Consume.self, request)
            let approval: Approval
            switch (body.arguments, body.argumentsHash) {
            case (let arguments?, _): approval = try await workflow.consume(id, arguments: arguments, by: principal.actor)
            case (nil, let hash?): approval = try await workflow.consume(id, argumentsHash: hash, by: principal.actor)
            case (nil, nil): throw APIError.invalid("arguments", "arguments (the exact arguments about to run) is required")
            }
            return try kit.json(ApprovalView(approval))
        }
        kit.route(router, .post, "/v1/approvals/{id}/outcome", .agent) { request, context, principal in
            let id: ApprovalID = try context.id(.approval)
            let body = try await kit.body(Outcome.self, request)
            let outcome: Execution.Outcome
            switch body.result {
            case "succeeded": outcome = .succeeded
            case "failed": outcome = .failed(message: body.message ?? "")
            default: throw APIError.invalid("result", "result must be succeeded or failed, not '\(body.result)'")
            }
            return try kit.json(ApprovalView(try await workflow.reportOutcome(id, outcome: outcome, by: principal.actor)))
        }
    }

    // MARK: Review queues

    struct Enqueue: Decodable {
        var queue: String?
        var priority: String?
        var title: String?
        var query: String?
        var answer: String?
        var confidence: Double?
        var reason: String?
        var context: JSONValue?
        var origin: String?
        var callbackUrl: String?
    }

    struct Submit: Decodable {
        var verdict: String
        var feedback: String?
        var correctedAnswer: String?
    }

    struct Submitted: Encodable {
        var item: ReviewItemView
        var correction: CorrectionView?
    }

    struct Claimed: Encodable { var item: ReviewItemView? }

    struct Stats: Encodable {
        var queues: [QueueStats]
        var reviewers: [ReviewerStats]
    }

    func registerReviews(_ router: HTTPRouter) {
        kit.route(router, .post, "/v1/review-items", .agent) { request, _, principal in
            let body = try await kit.body(Enqueue.self, request)
            let priority = try body.priority.map { raw -> Priority in
                guard let p = Priority(rawValue: raw) else { throw APIError.invalid("priority", "priority must be critical, high, medium or low") }
                return p
            } ?? .medium
            let (item, created) = try await workflow.enqueue(
                ReviewItemRequest(queue: body.queue ?? "default", priority: priority,
                                  content: ReviewContent(title: body.title, query: body.query, answer: body.answer,
                                                         confidence: body.confidence, reason: body.reason, context: body.context),
                                  origin: body.origin, callbackURL: body.callbackUrl),
                by: principal.actor.id, idempotencyKey: try kit.idempotencyKey(request, principal))
            return try kit.created(ReviewItemView(item), new: created)
        }
        kit.route(router, .get, "/v1/review-items", .anyKey) { request, _, _ in
            let limit = try request.intQuery("limit", default: 50, range: 1...200)
            let items = try await workflow.reviewItems(queue: request.query("queue"), status: request.query("status"), limit: limit,
                                                       before: try request.idQuery("before"))
            return try kit.json(Page(items: items.map(ReviewItemView.init), next: items.count == limit ? items.last?.id.rawValue : nil))
        }
        kit.route(router, .get, "/v1/review-items/{id}", .anyKey) { _, context, _ in
            try kit.json(ReviewItemView(try await workflow.reviewItem(try context.id(.reviewItem))))
        }
        kit.route(router, .post, "/v1/review-items/{id}/claim", .reviewer) { _, context, principal in
            try kit.json(ReviewItemView(try await workflow.claim(try context.id(.reviewItem), by: principal.actor)))
        }
        kit.route(router, .post, "/v1/review-items/{id}/release", .reviewer) { _, context, principal in
            try kit.json(ReviewItemView(try await workflow.release(try context.id(.reviewItem), by: principal.actor)))
        }
        kit.route(router, .post, "/v1/review-items/{id}/submit", .reviewer) { request, context, principal in
            let id: ReviewItemID = try context.id(.reviewItem)
            let body = try await kit.body(Submit.self, request)
            guard let verdict = ReviewVerdict(word: body.verdict) else {
                throw APIError.invalid("verdict", "verdict must be approved, rejected or revision_needed, not '\(body.verdict)'")
            }
            let (item, correction) = try await workflow.submit(id, verdict: verdict, feedback: body.feedback,
                                                              correctedAnswer: body.correctedAnswer, by: principal.actor)
            return try kit.json(Submitted(item: ReviewItemView(item), correction: correction.map { CorrectionView($0) }))
        }
        kit.route(router, .post, "/v1/queues/{queue}/claim", .reviewer) { _, context, principal in
            let item = try await workflow.claimNext(queue: try context.text("queue"), by: principal.actor)
            return try kit.json(Claimed(item: item.map(ReviewItemView.init)))
        }
        kit.route(router, .get, "/v1/queues/stats", .anyKey) { request, _, _ in
            let queue = request.query("queue")
            let queues: [QueueStats]
            if let queue {
                queues = [try await workflow.queueStats(queue: queue)]
            } else {
                queues = try await workflow.allQueueStats()
            }
            return try kit.json(Stats(queues: queues, reviewers: try await workflow.reviewerStats(queue: queue)))
        }
    }

    // MARK: Routing and escalations

    struct RouteBody: Decodable {
        var route: String?
        var query: String?
        var answer: String?
        var confidence: Double?
        var selfRating: String?
        var userMessage: String?
        var origin: String?
        var callbackUrl: String?
    }

    struct Routed: Encodable {
        var decision: String
        var confidence: Double?
        var reason: String?
        var reviewItem: ReviewItemView?
        var escalation: EscalationView?
    }

    struct CreateEscalation: Decodable {
        var query: String
        var context: String?
        var reason: String?
        var tier: String?
        var requester: String?
        var origin: String?
    }

    struct Resolve: Decodable { var resolution: String }
    struct Raise: Decodable { var reason: String? }

    func registerRoutingAndEscalations(_ router: HTTPRouter) {
        kit.route(router, .post, "/v1/route", .agent) { request, _, principal in
            let body = try await kit.body(RouteBody.self, request)
            let confidence: ConfidenceInput
            switch (body.confidence, body.selfRating) {
            case (let c?, nil): confidence = .score(c)
            case (nil, let text?): confidence = .selfRating(text)
            case (nil, nil): confidence = .unavailable(reason: "no confidence given")
            case (.some, .some): throw APIError.invalid("confidence", "give either confidence or self_rating, not both")
            }
            let key = try kit.idempotencyKey(request, principal)
            let replayed = try await kit.wasApplied(key)
            let result = try await workflow.route(
                body.route ?? "default", query: body.query, answer: body.answer, confidence: confidence, userMessage: body.userMessage,
                origin: body.origin, callbackURL: body.callbackUrl, by: principal.actor.id, idempotencyKey: key)
            return try kit.json(Routed(decision: result.decision.name, confidence: result.decision.confidence, reason: result.decision.reason,
                                       reviewItem: result.reviewItem.map(ReviewItemView.init),
                                       escalation: result.escalation.map(EscalationView.init)),
                                replayed: replayed)
        }
        kit.route(router, .post, "/v1/escalations", .agent) { request, _, principal in
            let body = try await kit.body(CreateEscalation.self, request)
            let key = try kit.idempotencyKey(request, principal)
            let replayed = try await kit.wasApplied(key)
            let escalation = try await workflow.escalate(
                EscalationRequest(query: body.query, context: body.context, trigger: .manual(body.reason?.nilIfBlank ?? "escalated through the API"),
                                  requester: body.requester.map { ActorID($0) }, origin: body.origin, tier: body.tier),
                by: principal.actor.id, event: key)
            return try kit.created(EscalationView(escalation), new: !replayed)
        }
        kit.route(router, .get, "/v1/escalations", .anyKey) { request, _, _ in
            let limit = try request.intQuery("limit", default: 50, range: 1...200)
            let list = try await workflow.escalations(status: request.query("status"), limit: limit, before: try request.idQuery("before"))
            return try kit.json(Page(items: list.map(EscalationView.init), next: list.count == limit ? list.last?.id.rawValue : nil))
        }
        kit.route(router, .get, "/v1/escalations/{id}", .anyKey) { _, context, _ in
            try kit.json(EscalationView(try await workflow.escalation(try context.id(.escalation))))
        }
        kit.route(router, .post, "/v1/escalations/{id}/claim", .reviewer) { _, context, principal in
            try kit.json(EscalationView(try await workflow.claimEscalation(try context.id(.escalation), by: principal.actor)))
        }
        kit.route(router, .post, "/v1/escalations/{id}/resolve", .reviewer) { request, context, principal in
            let id: EscalationID = try context.id(.escalation)
            let body = try await kit.body(Resolve.self, request)
            return try kit.json(EscalationView(try await workflow.resolveEscalation(id, resolution: body.resolution, by: principal.actor)))
        }
        kit.route(router, .post, "/v1/escalations/{id}/raise", .reviewer) { request, context, principal in
            let id: EscalationID = try context.id(.escalation)
            let body = try await kit.body(Raise.self, request, emptyIsObject: true)
            return try kit.json(EscalationView(try await workflow.raiseEscalation(id, reason: body.reason, by: principal.actor)))
        }
    }
}
