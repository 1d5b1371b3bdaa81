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
        // The next item is found and claimed in one transaction: two reviewers claiming at once are
        // handed different items, with no lost race to retry.
        let directory = policy.directory
        return try await retrying(nil) {
            let now = clock.now()
            let (changes, claimed) = try await store.updateNextClaimable(queue: name, reviewer: actor.id, event: event, now: now) {
                [self] candidate -> (ChangeSet, ReviewItem?) in
                guard let candidate else { return (ChangeSet(), nil) }
                let t = try ReviewMachine.claim(candidate.value, by: actor, queue: queue, directory: directory, now: now)
                var changes = try changeSet(t, expectedVersion: candidate.version, event: event, now: now)
                changes.claims += ClaimRecord(t, from: candidate.value).map { [$0] } ?? []
                return (changes, t.entity)
            }
            committed(changes)
            return claimed
        }
    }

    /// Claims one specific item (a button on its card).
    package func claim(_ id: ReviewItemID, by actor: Actor, event: EventKey? = nil) async throws -> ReviewItem {
        let directory = policy.directory
        return try await transition(ReviewItem.self, id: id.rawValue, event: event, decide: { [self] item, now in
            try ReviewMachine.claim(item, by: actor, queue: try queueConfig(item.queue), directory: directory, now: now)
        }, record: { t, item, changes in
            changes.claims += ClaimRecord(t, from: item).map { [$0] } ?? []
        })
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

    /// Counts (no percentiles) for every configured queue and every queue that has items: for metrics,
    /// overviews and chat, which must stay cheap whatever the size of the history.
    package func allQueueCounts() async throws -> [QueueCounts] {
        let names = Set(policy.queues.keys).union(try await store.queueNames())
        var out: [QueueCounts] = []
        for name in names.sorted() { out.append(try await store.queueCounts(queue: name)) }
        return out
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
