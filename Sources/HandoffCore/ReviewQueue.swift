import Foundation

package enum Priority: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    case critical, high, medium, low

    /// Sort rank: lower is served first.
    package var rank: Int {
        switch self {
        case .critical: 0
        case .high: 1
        case .medium: 2
        case .low: 3
        }
    }

    package init?(rank: Int) {
        guard let p = Self.allCases.first(where: { $0.rank == rank }) else { return nil }
        self = p
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

package enum ReviewVerdict: String, Hashable, Sendable, Codable, CaseIterable {
    case approved
    case rejected
    case revisionNeeded = "revision_needed"

    package init?(word: String) {
        switch word.lowercased() {
        case "approved", "approve", "ok": self = .approved
        case "rejected", "reject": self = .rejected
        case "revision_needed", "revision-needed", "revise", "revision": self = .revisionNeeded
        default: return nil
        }
    }

    /// When several reviews disagree the most common verdict wins; ties go to the more cautious one.
    var caution: Int {
        switch self {
        case .rejected: 2
        case .revisionNeeded: 1
        case .approved: 0
        }
    }
}

/// What a reviewer is asked to look at.
package struct ReviewContent: Hashable, Sendable, Codable {
    package var title: String?
    /// The user's question, when the item came from routing.
    package var query: String?
    /// The AI's draft answer.
    package var answer: String?
    package var confidence: Double?
    /// Why it came to a person (e.g. "confidence 0.41 below threshold 0.80").
    package var reason: String?
    /// Anything else the caller wants shown.
    package var context: JSONValue?

    package init(title: String? = nil, query: String? = nil, answer: String? = nil, confidence: Double? = nil,
                 reason: String? = nil, context: JSONValue? = nil)
    {
        self.title = title
        self.query = query
        self.answer = answer
        self.confidence = confidence
        self.reason = reason
        self.context = context
    }
}

/// One submitted review.
package struct Review: Hashable, Sendable, Codable {
    package var reviewer: ActorID
    package var claimedAt: Date
    package var submittedAt: Date
    package var verdict: ReviewVerdict
    package var feedback: String?
    package var correctedAnswer: String?
    /// How long the item waited in the queue before this reviewer claimed it.
    package var waitedSeconds: Double
    /// How long the reviewer took from claim to submit.
    package var decideSeconds: Double
    /// Submitted at or after the item's SLA deadline (nil in reviews stored before deadlines were kept).
    package var afterSLA: Bool? = nil
}

package enum ReviewStatus: Hashable, Sendable, Codable {
    case pending
    case claimed(by: ActorID, at: Date, leaseUntil: Date)
    case completed(verdict: ReviewVerdict, at: Date)

    package var name: String {
        switch self {
        case .pending: "pending"
        case .claimed: "claimed"
        case .completed: "completed"
        }
    }

    package static let allNames = ["pending", "claimed", "completed"]
}

package struct ReviewItem: Hashable, Sendable, Codable {
    package var id: ReviewItemID
    package var queue: String
    package var priority: Priority
    package var content: ReviewContent
    package var createdAt: Date
    /// When it last became claimable (creation, a lapsed lease, a partial review): time to claim counts from here.
    package var pendingSince: Date
    package var reviewsRequired: Int
    package var reviews: [Review]
    package var status: ReviewStatus
    package var slaBreached: Bool
    /// The routed answer or conversation it came from, to deliver the outcome back.
    package var origin: String?
    package var route: String?
    package var callbackURL: String?
    /// When its SLA runs out (creation + the queue's SLA); nil in items stored before deadlines were kept.
    package var slaDueAt: Date? = nil

    package var ref: EntityRef { EntityRef(kind: .reviewItem, id: id.rawValue) }

    package var leaseHolder: ActorID? {
        if case .claimed(let by, _, _) = status { return by }
        return nil
    }
}

/// An item to enqueue.
package struct ReviewItemRequest: Hashable, Sendable, Codable {
    package var queue: String
    package var priority: Priority
    package var content: ReviewContent
    package var origin: String?
    package var route: String?
    package var callbackURL: String?

    package init(queue: String = "default", priority: Priority = .medium, content: ReviewContent,
                 origin: String? = nil, route: String? = nil, callbackURL: String? = nil)
    {
        self.queue = queue
        self.priority = priority
        self.content = content
        self.origin = origin
        self.route = route
        self.callbackURL = callbackURL
    }
}

package enum ReviewMachine {
    package static let maxTextLength = 20_000

    package static func enqueue(
        id: ReviewItemID, request: ReviewItemRequest, queue: QueueConfig, by actor: ActorID, now: Date
    ) throws(WorkflowError) -> Transition<ReviewItem> {
        let c = request.content
        guard c.title?.nilIfBlank != nil || c.query?.nilIfBlank != nil || c.answer?.nilIfBlank != nil || c.context != nil else {
            throw .invalid("content", "needs at least one of title, query, answer or context")
        }
        for (field, value) in [("title", c.title), ("query", c.query), ("answer", c.answer), ("reason", c.reason)] {
            if let value, value.count > maxTextLength {
                throw .invalid(field, "is longer than \(maxTextLength) characters")
            }
        }
        if let confidence = c.confidence, !(0...1).contains(confidence) {
            throw .invalid("confidence", "must be between 0 and 1")
        }
        let item = ReviewItem(
            id: id, queue: request.queue, priority: request.priority, content: c, createdAt: now, pendingSince: now,
            reviewsRequired: queue.reviewsRequired, reviews: [], status: .pending, slaBreached: false,
            origin: request.origin, route: request.route, callbackURL: request.callbackURL, slaDueAt: now + queue.sla)
        return Transition(
            entity: item,
            audit: [AuditEvent(at: now, actor: actor, entity: item.ref, from: nil, to: "pending",
                               detail: "queued in \(request.queue) at \(request.priority.rawValue) priority")],
            effects: [.schedule(.sla, at: now + queue.sla), .postCard(destination: queue.channel)])
    }

    /// Why this reviewer may not claim the item, or nil.
    package static func claimRefusal(_ item: ReviewItem, by actor: Actor, queue: QueueConfig, directory: Directory) -> WorkflowError? {
        if !directory.mayActFor(actor, anyOf: queue.reviewers) {
            return .notAllowed("you are not a reviewer for queue \(item.queue)")
        }
        switch item.status {
        case .pending: break
        case .claimed(let by, _, _):
            return by == actor.id
                ? .wrongState("you already hold review item #\(item.id)")
                : .wrongState("review item #\(item.id) is claimed by @\(by)")
        case .completed(let verdict, _):
            return .wrongState("review item #\(item.id) is already completed (\(verdict.rawValue))")
        }
        if item.reviews.contains(where: { $0.reviewer == actor.id }) {
            return .notAllowed("you already reviewed item #\(item.id); it needs a different reviewer")
        }
        return nil
    }

    package static func claim(
        _ item: ReviewItem, by actor: Actor, queue: QueueConfig, directory: Directory, now: Date
    ) throws(WorkflowError) -> Transition<ReviewItem> {
        if let refusal = claimRefusal(item, by: actor, queue: queue, directory: directory) { throw refusal }
        var next = item
        let leaseUntil = now + queue.lease
        next.status = .claimed(by: actor.id, at: now, leaseUntil: leaseUntil)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: item.ref, from: "pending", to: "claimed",
                               detail: "lease until \(leaseUntil.millisecondsSince1970)")],
            effects: [.schedule(.lease, at: leaseUntil), .updateCards])
    }

    package static func submit(
        _ item: ReviewItem, verdict: ReviewVerdict, feedback rawFeedback: String?, correctedAnswer rawCorrection: String?,
        by actor: Actor, now: Date
    ) throws(WorkflowError) -> Transition<ReviewItem> {
        guard case .claimed(let holder, let claimedAt, let leaseUntil) = item.status else {
            if case .completed(let v, _) = item.status {
                throw .wrongState("review item #\(item.id) is already completed (\(v.rawValue))")
            }
            throw .wrongState("review item #\(item.id) is not claimed; claim it before submitting")
        }
        guard holder == actor.id else {
            throw .notAllowed("review item #\(item.id) is claimed by @\(holder), not you")
        }
        // A lapsed lease has returned the item to the queue, whether or not its timer has fired yet: the
        // same submit gets the same answer however late the scheduler runs.
        guard now < leaseUntil else {
            throw .wrongState("your claim on review item #\(item.id) lapsed at \(leaseUntil.millisecondsSince1970 / 1000) (unix time); claim it again to submit")
        }
        let feedback = rawFeedback?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        let correction = rawCorrection?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        for (field, value) in [("feedback", feedback), ("corrected_answer", correction)] {
            if let value, value.count > maxTextLength { throw .invalid(field, "is longer than \(maxTextLength) characters") }
        }
        if verdict != .approved && feedback == nil && correction == nil {
            throw .invalid("feedback", "is required when the verdict is \(verdict.rawValue) (say what is wrong)")
        }
        let afterSLA = item.slaDueAt.map { now >= $0 }
        let review = Review(
            reviewer: actor.id, claimedAt: claimedAt, submittedAt: now, verdict: verdict, feedback: feedback,
            correctedAnswer: correction, waitedSeconds: claimedAt.timeIntervalSince(item.pendingSince),
            decideSeconds: now.timeIntervalSince(claimedAt), afterSLA: afterSLA)
        var next = item
        next.reviews.append(review)
        if next.reviews.count >= item.reviewsRequired {
            let final = finalVerdict(next.reviews.map(\.verdict))
            next.status = .completed(verdict: final, at: now)
            // Completed after its deadline is a breach, even when the SLA timer never got to fire (the
            // scheduler down, or only the CLI in use).
            let late = afterSLA == true && !item.slaBreached
            if late { next.slaBreached = true }
            return Transition(
                entity: next,
                audit: [AuditEvent(at: now, actor: actor.id, entity: item.ref, from: "claimed", to: "completed",
                                   detail: "\(verdict.rawValue)" + (item.reviewsRequired > 1 ? "; final \(final.rawValue)" : "")
                                       + (late ? "; after its SLA (breached)" : ""))],
                effects: [.cancel(.lease), .cancel(.sla), .updateCards, .webhook(event: "review.completed")])
        }
        next.status = .pending
        next.pendingSince = now
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: item.ref, from: "claimed", to: "pending",
                               detail: "\(verdict.rawValue); review \(next.reviews.count) of \(item.reviewsRequired)")],
            effects: [.cancel(.lease), .updateCards])
    }

    /// The holder gives the item back before the lease ends.
    package static func release(_ item: ReviewItem, by actor: Actor, now: Date) throws(WorkflowError) -> Transition<ReviewItem> {
        guard case .claimed(let holder, _, _) = item.status, holder == actor.id || actor.isAdmin else {
            throw .wrongState("review item #\(item.id) is not claimed by you")
        }
        var next = item
        next.status = .pending
        next.pendingSince = now
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: item.ref, from: "claimed", to: "pending", detail: "released")],
            effects: [.cancel(.lease), .updateCards])
    }

    /// The lease timer fired: a lapsed lease returns the item to pending.
    package static func leaseLapsed(_ item: ReviewItem, now: Date) -> Transition<ReviewItem>? {
        guard case .claimed(let holder, _, let leaseUntil) = item.status else { return nil }
        guard now >= leaseUntil else { return Transition(entity: item, effects: [.schedule(.lease, at: leaseUntil)]) }
        var next = item
        next.status = .pending
        next.pendingSince = now
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: .system, entity: item.ref, from: "claimed", to: "pending",
                               detail: "lease of @\(holder) lapsed")],
            effects: [.updateCards, .notify(Notice(.person(holder), "Your claim on review item #\(item.id) lapsed; it is back in the queue."))])
    }

    /// The SLA timer fired: mark the breach (once); the item stays where it is.
    package static func slaLapsed(_ item: ReviewItem, now: Date) -> Transition<ReviewItem>? {
        if case .completed = item.status { return nil }
        guard !item.slaBreached else { return nil }
        var next = item
        next.slaBreached = true
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: .system, entity: item.ref, from: item.status.name, to: item.status.name,
                               detail: "SLA breached")],
            effects: [.updateCards])
    }

    package static func finalVerdict(_ verdicts: [ReviewVerdict]) -> ReviewVerdict {
        var counts: [ReviewVerdict: Int] = [:]
        for v in verdicts { counts[v, default: 0] += 1 }
        return counts.max { a, b in a.value != b.value ? a.value < b.value : a.key.caution < b.key.caution }?.key ?? .approved
    }
}

extension String {
    package var nilIfBlank: String? { trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : self }
}
