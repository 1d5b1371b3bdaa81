import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    package func queueConfig(_ name: String) throws(WorkflowError) -> QueueConfig {
        guard let queue = policy.queues[name] else {
            throw .invalid("queue", "'\(name)' is not a configured queue (configured: \(policy.queues.keys.sorted().joined(separator: ", ")))")
        }
        return queue
    }

    func loadItem(_ id: ReviewItemID) async throws -> Versioned<ReviewItem> {
        guard let found = try await store.reviewItem(id) else { throw WorkflowError.notFound(EntityRef(kind: .reviewItem, id: id.rawValue)) }
        return found
    }

    package func reviewItem(_ id: ReviewItemID) async throws -> ReviewItem { try await loadItem(id).value }

    package func reviewItems(queue: String? = nil, status: String? = nil, limit: Int = 50, before: ReviewItemID? = nil) async throws -> [ReviewItem] {
        if let status, !ReviewStatus.allNames.contains(status) {
            throw WorkflowError.invalid("status", "must be one of \(ReviewStatus.allNames.joined(separator: ", "))")
        }
        return try await store.reviewItems(queue: queue, status: status, limit: limit, before: before)
    }

    package func enqueue(_ request: ReviewItemRequest, by actor: ActorID, idempotencyKey: EventKey? = nil) async throws -> (item: ReviewItem, created: Bool) {
        let idempotencyKey = try bind(idempotencyKey, to: request)
        if let found = try await replay(idempotencyKey, kind: .reviewItem, load: { try await store.reviewItem(ReviewItemID($0)) }) {
            return (found.value, false)
        }
        let queue = try queueConfig(request.queue)
        let now = clock.now()
        let id = ReviewItemID(try await nextID(.reviewItem))
        let t = try ReviewMachine.enqueue(id: id, request: request, queue: queue, by: actor, now: now)
        if let winner = try await createOnce(t.entity.ref, key: idempotencyKey, load: { try await store.reviewItem(ReviewItemID($0)) }, {
            try await commit(try changeSet(t, expectedVersion: nil, event: idempotencyKey, now: now), now: now)
        }) {
            return (winner.value, false)
        }
        return (t.entity, true)
    }

    /// Hands the reviewer the next item of the queue (priority, then oldest) with a lease; nil when
    /// there is nothing they may claim.
    package func claimNext(queue name: String, by actor: Actor, event: EventKey? = nil) async throws -> ReviewItem? {
        let queue = try queueConfig(name)
        if !policy.directory.mayActFor(actor, anyOf: queue.reviewers) {
            throw WorkflowError.notAllowed("you are not a reviewer for queue \(name)")
        }
        try await checkNotApplied(event)
        var lost: Set<ReviewItemID> = []
        for _ in 0..<max(configuration.maxConflictRetries, 16) {
            guard let candidate = try await store.nextClaimable(queue: name, reviewer: actor.id, skipping: lost) else { return nil }
            let now = clock.now()
            let t = try ReviewMachine.claim(candidate.value, by: actor, queue: queue, directory: policy.directory, now: now)
            do {
                try await commit(try changeSet(t, expectedVersion: candidate.version, event: event, now: now), now: now)
                return t.entity
            } catch StoreError.conflict {
                lost.insert(candidate.value.id)  // another reviewer took it; try the next one
            } catch StoreError.duplicate {
                throw WorkflowError.duplicate("this event was already applied")
            }
        }
        throw WorkflowError(code: .conflict, message: "queue \(name) is too contended right now; try again")
    }

    /// Claims one specific item (a button on its card).
    package func claim(_ id: ReviewItemID, by actor: Actor, event: EventKey? = nil) async throws -> ReviewItem {
        try await checkNotApplied(event)
        return try await retrying(EntityRef(kind: .reviewItem, id: id.rawValue)) {
            let current = try await loadItem(id)
            let queue = try queueConfig(current.value.queue)
            let now = clock.now()
            let t = try ReviewMachine.claim(current.value, by: actor, queue: queue, directory: policy.directory, now: now)
            try await commit(try changeSet(t, expectedVersion: current.version, event: event, now: now), now: now)
            return t.entity
        }
    }

    /// Submits the holder's review. A corrected answer on an item with an AI answer is recorded as a
    /// correction in the same transaction.
    package func submit(
        _ id: ReviewItemID, verdict: ReviewVerdict, feedback: String?, correctedAnswer: String?, by actor: Actor,
        event: EventKey? = nil
    ) async throws -> (item: ReviewItem, correction: Correction?) {
        try await checkNotApplied(event)
        let correctionID: CorrectionID? = correctedAnswer?.nilIfBlank == nil ? nil : CorrectionID(try await nextID(.correction))
        return try await retrying(EntityRef(kind: .reviewItem, id: id.rawValue)) {
            let current = try await loadItem(id)
            let now = clock.now()
            let t = try ReviewMachine.submit(current.value, verdict: verdict, feedback: feedback, correctedAnswer: correctedAnswer,
                                             by: actor, now: now)
            var cs = try changeSet(t, expectedVersion: current.version, event: event, now: now)
            guard let review = t.entity.reviews.last else { throw StoreError.corrupt("review missing after submit") }
            cs.reviews.append((t.entity.id, t.entity.queue, review))
            var correction: Correction?
            if let correctionID, let corrected = review.correctedAnswer {
                let content = t.entity.content
                let input = CorrectionInput(
                    query: content.query?.nilIfBlank ?? content.title?.nilIfBlank ?? "review item #\(id)",
                    original: content.answer?.nilIfBlank ?? "",
                    corrected: corrected, source: t.entity.ref, route: t.entity.route)
                if input.original.nilIfBlank != nil {
                    let ct = try CorrectionMachine.record(id: correctionID, input: input, by: actor.id, now: now)
                    try add(correction: ct, to: &cs)
                    correction = ct.entity
                }
            }
            // A judged AI answer is a calibration outcome; a chat asker gets the final answer (Workflow+AI.swift).
            let ai = try await reviewOutcome(of: t.entity, into: &cs, now: now)
            try await commit(cs, ai: ai, now: now)
            return (t.entity, correction)
        }
    }

    package func release(_ id: ReviewItemID, by actor: Actor) async throws -> ReviewItem {
        try await retrying(EntityRef(kind: .reviewItem, id: id.rawValue)) {
            let current = try await loadItem(id)
            let now = clock.now()
            let t = try ReviewMachine.release(current.value, by: actor, now: now)
            try await commit(try changeSet(t, expectedVersion: current.version, now: now), now: now)
            return t.entity
        }
    }

    package func queueStats(queue: String) async throws -> QueueStats {
        _ = try queueConfig(queue)
        return try await store.queueStats(queue: queue)
    }

    /// Stats for every configured queue and every queue that has items.
    package func allQueueStats() async throws -> [QueueStats] {
        let names = Set(policy.queues.keys).union(try await store.queueNames())
        var out: [QueueStats] = []
        for name in names.sorted() { out.append(try await store.queueStats(queue: name)) }
        return out
    }

    package func reviewerStats(queue: String? = nil) async throws -> [ReviewerStats] {
        try await store.reviewerStats(queue: queue)
    }
}
