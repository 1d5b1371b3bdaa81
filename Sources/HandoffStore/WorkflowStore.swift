import Foundation
import HandoffCore

/// Durations in one population: how many, the median and the 90th percentile (nearest rank).
package struct DurationStats: Hashable, Sendable, Codable {
    package var count: Int
    package var p50Seconds: Double?
    package var p90Seconds: Double?

    package init(count: Int, p50Seconds: Double?, p90Seconds: Double?) {
        self.count = count
        self.p50Seconds = p50Seconds
        self.p90Seconds = p90Seconds
    }
}

/// A queue's item counts: cheap enough for every metrics scrape and overview page.
package struct QueueCounts: Hashable, Sendable, Codable {
    package var queue: String
    package var pending: Int
    package var claimed: Int
    package var completed: Int
    package var slaBreaches: Int
}

package struct QueueStats: Hashable, Sendable, Codable {
    package var queue: String
    package var pending: Int
    package var claimed: Int
    package var completed: Int
    package var slaBreaches: Int
    /// From becoming claimable to being claimed, per claim (lapsed claims and those in hand too).
    package var timeToClaim: DurationStats
    /// From claim to submit, per review.
    package var timeToDecide: DurationStats
}

package struct ReviewerStats: Hashable, Sendable, Codable {
    package var reviewer: ActorID
    package var reviews: Int
    package var approved: Int
    package var rejected: Int
    package var revisionNeeded: Int
    /// How long the items this reviewer claimed had waited, per claim.
    package var timeToClaim: DurationStats
    package var timeToDecide: DurationStats
    /// Reviews this reviewer submitted at or after the item's SLA deadline.
    package var slaBreaches: Int
}

/// What the inbox keeps about an applied event key.
package struct EventRecord: Hashable, Sendable {
    package var entity: EntityRef?
    package var requestHash: String?
}

/// A stored label with who gave it.
package struct StoredLabel: Hashable, Sendable {
    package var task: LabelTaskID
    package var labeler: ActorID
    package var value: LabelValue
    package var at: Date
}

/// Persistence for the workflow. One implementation (``SQLWorkflowStore``) serves every SQL backend;
/// the contract test suite runs against each backend.
package protocol WorkflowStore: Sendable {
    /// Applies one change set atomically. Throws ``StoreError/duplicate`` when its event key was already
    /// applied and ``StoreError/conflict(_:)`` when a compare-and-set lost; nothing is written then.
    func commit(_ changes: ChangeSet, now: Date) async throws
    /// One act on one stored entity in one write transaction: `event` (when given) is checked first, and
    /// an event already applied throws ``StoreError/duplicate`` before anything else; then the entity is
    /// read (nil when there is none), `body` decides the change set and what to return, and the change
    /// set is committed. No other writer comes between the read and the write, so no compare-and-set is
    /// lost, and the act costs one trip to the database instead of one per read. `body` runs on the
    /// database's thread: a pure decision, no waiting.
    func update<E: StoredEntity, R: Sendable>(
        _ type: E.Type, id: Int64, event: EventKey?, now: Date,
        _ body: @escaping @Sendable (Versioned<E>?) throws -> (ChangeSet, R)
    ) async throws -> (ChangeSet, R)
    /// ``update(_:id:event:now:_:)`` on the item ``nextClaimable(queue:reviewer:skipping:)`` finds, read in
    /// the same transaction (so two reviewers claiming at once are handed different items).
    func updateNextClaimable<R: Sendable>(
        queue: String, reviewer: ActorID, event: EventKey?, now: Date,
        _ body: @escaping @Sendable (Versioned<ReviewItem>?) throws -> (ChangeSet, R)
    ) async throws -> (ChangeSet, R)
    /// Applies many change sets in one transaction, all or nothing: the bulk-load path (filling a queue
    /// or a dataset), one disk sync per call instead of one per entity. Same failures as `commit`.
    func commit(batch: [ChangeSet], now: Date) async throws
    /// Reserves `count` consecutive ids of a kind; durable, never handed out twice.
    func reserveIDs(_ kind: EntityKind, count: Int) async throws -> ClosedRange<Int64>
    /// The entity an already-applied event acted on, when the event key is known.
    func eventEntity(source: String, key: String) async throws -> EntityRef??
    /// What an applied event key recorded: its entity and, for idempotency keys, the request fingerprint.
    func eventRecord(source: String, key: String) async throws -> EventRecord?

    func approval(_ id: ApprovalID) async throws -> Versioned<Approval>?
    func approvals(status: String?, limit: Int, before: ApprovalID?) async throws -> [Approval]

    func reviewItem(_ id: ReviewItemID) async throws -> Versioned<ReviewItem>?
    func reviewItems(queue: String?, status: String?, limit: Int, before: ReviewItemID?) async throws -> [ReviewItem]
    /// The next item this reviewer may claim: priority, then oldest; never one they already reviewed.
    func nextClaimable(queue: String, reviewer: ActorID, skipping: Set<ReviewItemID>) async throws -> Versioned<ReviewItem>?
    func queueStats(queue: String) async throws -> QueueStats
    /// Counts only (no percentiles): for metrics and overviews.
    func queueCounts(queue: String) async throws -> QueueCounts
    func reviewerStats(queue: String?) async throws -> [ReviewerStats]
    func queueNames() async throws -> [String]

    func escalation(_ id: EscalationID) async throws -> Versioned<Escalation>?
    /// The oldest open escalation at any of these tiers (one indexed lookup per tier).
    func oldestOpenEscalation(tiers: [String]) async throws -> Escalation?
    func escalations(status: String?, limit: Int, before: EscalationID?) async throws -> [Escalation]

    func feedback(_ id: FeedbackID) async throws -> Versioned<FeedbackRequest>?
    func feedbackRates() async throws -> (overall: ResponseRate, channels: [ResponseRate])

    func correction(_ id: CorrectionID) async throws -> Correction?
    /// Corrections in id order after `after`, at most `limit` (keyset paging; nothing loads the table).
    func corrections(after: CorrectionID?, limit: Int) async throws -> [Correction]
    /// Corrections sharing at least one term with the query terms, most shared terms first.
    func correctionCandidates(terms: Set<String>, limit: Int) async throws -> [Correction]
    /// How many corrections contain each term, and how many corrections there are.
    func termFrequencies(_ terms: Set<String>) async throws -> (frequencies: [String: Int], documents: Int)

    func labelTask(_ id: LabelTaskID) async throws -> Versioned<LabelTask>?
    func countLabelTasks(dataset: String) async throws -> Int
    func labelTasks(dataset: String?, limit: Int, after: LabelTaskID?) async throws -> [LabelTask]
    /// The task this labeler should label next, held for them until `holdUntil`: the one they already
    /// hold, else the oldest open task they may label (open to `"*"` or to one of `groups`; nil groups:
    /// any task, for admins) and have not labeled that still has a label to give beyond those held for
    /// others. Nil when there is none.
    func nextLabelTask(dataset: String?, labeler: ActorID, groups: [String]?, now: Date, holdUntil: Date) async throws -> LabelTask?
    /// Deletes holds on label tasks that lapsed before `before`.
    func pruneLabelHolds(before: Date) async throws -> Int
    func hasLabel(task: LabelTaskID, labeler: ActorID) async throws -> Bool
    func labels(task: LabelTaskID) async throws -> [StoredLabel]
    /// A dataset's labels in (task, labeler) order, one page after the cursor.
    func labels(dataset: String, after: (LabelTaskID, ActorID)?, limit: Int) async throws -> [StoredLabel]

    func dueTimers(now: Date, limit: Int) async throws -> [DueTimer]
    func nextTimerDue() async throws -> Date?
    func timers(of entity: EntityRef) async throws -> [DueTimer]

    func audit(of entity: EntityRef) async throws -> [AuditEvent]

    /// Pending rows of these kinds that are due, oldest first; a row is held back while an earlier
    /// pending row of the same entity (among these kinds) waits, so each entity's messages keep their order.
    func dueOutbox(now: Date, kinds: Set<OutboxKind>, limit: Int) async throws -> [OutboxMessage]
    func outbox(of entity: EntityRef) async throws -> [OutboxMessage]
    /// Takes a due row for delivery until `until`; false when another process holds it (or it is done).
    func claimOutbox(_ id: Int64, until: Date, now: Date) async throws -> Bool
    /// Extends the lease of a row this process is still delivering (so a short lease can be used and a
    /// crashed process's rows come free soon).
    func renewOutboxLease(_ id: Int64, until: Date) async throws
    func markOutboxDone(_ id: Int64) async throws
    func markOutboxRetry(_ id: Int64, at: Date, error: String) async throws
    func markOutboxFailed(_ id: Int64, error: String) async throws

    // Inbound chat events: durable before the ack, processed after it.
    func recordInbound(platform: String, eventKey: String, payload: String, at: Date) async throws -> Bool
    func recordInbound(_ events: [(platform: String, eventKey: String, payload: String)], at: Date) async throws -> [Bool]
    /// Every pending event, in arrival order (whatever its backoff): for checks that all were processed.
    func pendingInbound(platform: String?, limit: Int) async throws -> [InboundEvent]
    /// Pending events due now on these platforms (InboundRetry.swift); backed-off rows are left out.
    func dueInbound(platforms: Set<String>, now: Date, limit: Int) async throws -> [InboundEvent]
    func finishInbound(_ id: Int64, failed error: String?, at: Date) async throws
    /// A transient failure: count it and try again at `next`; the event stays pending.
    func retryInbound(_ id: Int64, error: String, next: Date) async throws
    func failedInbound(limit: Int) async throws -> [(event: InboundEvent, error: String)]
    func pruneInbound(before: Date) async throws -> Int

    // API keys, cards the bot posted, and small durable values (sync tokens, cursors).
    func insertAPIKey(_ key: APIKeyRecord) async throws
    func apiKey(id: String) async throws -> APIKeyRecord?
    func apiKeys() async throws -> [APIKeyRecord]
    func revokeAPIKey(name: String, at: Date) async throws -> Bool
    func touchAPIKey(id: String, at: Date) async throws
    func beginCard(entity: EntityRef, platform: String, destination: String, channel: String, threadID: String?,
                   nonce: String, at: Date) async throws -> Int64
    func cardPosted(_ id: Int64, messageID: String, threadID: String?, at: Date) async throws
    func cardFailed(_ id: Int64, at: Date) async throws
    func cards(of entity: EntityRef) async throws -> [CardRef]
    func card(platform: String, channel: String, messageID: String) async throws -> CardRef?
    /// Cards in one channel left in `posting` (a crash or a lost reply between the post and its record),
    /// newest first: the ones an act on an unknown message of that channel may be about.
    func cardsPosting(platform: String, channel: String, since: Date, limit: Int) async throws -> [CardRef]
    func value(forKey key: String) async throws -> String?
    func setValue(_ value: String, forKey key: String, at: Date) async throws
    func insertValueIfAbsent(_ value: String, forKey key: String, at: Date) async throws -> String

    /// Forgets chat event keys older than `before` and API/CLI idempotency keys older than `idempotencyBefore`.
    func pruneEventKeys(before: Date, idempotencyBefore: Date) async throws -> Int
    /// True when the database answers.
    func ping() async throws
    /// A probe that notices commits made through other connections (other processes), or nil when the
    /// backend cannot tell (ChangeProbe.swift).
    func makeChangeProbe() throws -> (any ChangeProbe)?
    func close() async throws

    // Dashboard and metrics (DashboardQueries.swift): indexed counts, aggregates and bounded pages.
    func dashboardCounts() async throws -> DashboardCounts
    /// The most recently decided approvals, newest decision first.
    func recentDecisions(limit: Int) async throws -> [Approval]
    func recentDecisionTimings(limit: Int) async throws -> [DecisionTiming]
    /// Review items created and completed per time bucket and queue since a moment.
    func queueActivity(since: Date, bucketSeconds: Int) async throws -> QueueActivity
    /// Reviews of a queue that took less than each bound, and the total.
    func reviewDecideCounts(queue: String, boundsMilliseconds: [Int64]) async throws -> (below: [Int], total: Int)
    func labelProgress(dataset: String, labeler: ActorID) async throws -> (labeled: Int, tasks: Int)
    func datasets(limit: Int) async throws -> [String]

    // Matrix (MatrixRecords.swift): reactions, so that a redaction can be read as a reaction removed.
    func recordMatrixReactions(_ reactions: [MatrixReactionRecord], at: Date) async throws
    func matrixReaction(eventID: String) async throws -> MatrixReactionRecord?
    func pruneMatrixReactions(before: Date) async throws -> Int

    // AI layer (AIRecords.swift): questions, answers, calibration outcomes, route thresholds, prompt versions.
    /// Commits a change set and the AI layer's writes in one transaction (same failures as `commit`).
    func commit(_ changes: ChangeSet, ai: AIChanges, now: Date) async throws
    func insertQuestion(_ draft: AIQuestionDraft, eventKey: EventKey?, now: Date) async throws -> AIQuestion
    func question(_ id: Int64) async throws -> AIQuestion?
    func pendingQuestions(now: Date, limit: Int) async throws -> [AIQuestion]
    func leaseQuestion(_ id: Int64, until: Date, now: Date) async throws -> Bool
    /// Counts a failed attempt; the question waits until `retryAt`, or ends as failed when it is nil.
    func questionAttemptFailed(_ id: Int64, error: String, retryAt: Date?) async throws
    func aiAnswer(id: Int64) async throws -> AIAnswerRecord?
    func aiAnswer(reviewItem: ReviewItemID) async throws -> AIAnswerRecord?
    func aiAnswer(question: Int64) async throws -> AIAnswerRecord?
    func aiAnswers(route: String?, limit: Int, before: Int64?) async throws -> [AIAnswerRecord]
    func answersWithClosedFeedback(limit: Int) async throws -> [AIAnswerRecord]
    func outcomeCounts(route: String, estimator: String?) async throws -> [OutcomeCount]
    func outcomeEstimators(route: String) async throws -> [(estimator: String, count: Int)]
    func outcomeRoutes() async throws -> [String]
    func routeThreshold(_ route: String) async throws -> RouteThresholdOverride?
    func routeThresholds() async throws -> [RouteThresholdOverride]
    func promptVersions(route: String?, limit: Int) async throws -> [PromptVersion]
    func activePrompt(route: String) async throws -> PromptVersion?
    func proposedPrompts(limit: Int) async throws -> [PromptVersion]
    func prompt(approval: ApprovalID) async throws -> PromptVersion?
    func nextPromptVersion(route: String) async throws -> Int
}
