import Foundation
import HandoffCore

/// Everything one transition writes, committed in one transaction: entity rows (insert, or update
/// guarded by the version it was read at), audit events, outbox rows, timer changes, and the key of
/// the inbound event that caused it, so a redelivered event has no second effect.
package struct ChangeSet: Sendable {
    package var eventKey: EventKey?
    package var firedTimer: DueTimer?
    package var inserts: [EntityRow] = []
    package var updates: [(row: EntityRow, expectedVersion: Int64)] = []
    package var reviews: [(item: ReviewItemID, queue: String, review: Review)] = []
    /// Claims of review items (time-to-claim stats).
    package var claims: [ClaimRecord] = []
    package var labels: [(label: Label, dataset: String)] = []
    package var correctionTerms: [(correction: CorrectionID, terms: Set<String>)] = []
    package var audit: [AuditEvent] = []
    package var outbox: [OutboxDraft] = []
    package var timers: [TimerChange] = []

    package init(eventKey: EventKey? = nil, firedTimer: DueTimer? = nil) {
        self.eventKey = eventKey
        self.firedTimer = firedTimer
    }

    package var isEmpty: Bool {
        eventKey == nil && firedTimer == nil && inserts.isEmpty && updates.isEmpty && reviews.isEmpty && claims.isEmpty && labels.isEmpty
            && correctionTerms.isEmpty && audit.isEmpty && outbox.isEmpty && timers.isEmpty
    }
}

/// One claim of a review item, for the time-to-claim stats.
package struct ClaimRecord: Sendable, Hashable {
    package var item: ReviewItemID
    package var queue: String
    package var reviewer: ActorID
    package var claimedAt: Date
    /// From the item becoming claimable to this claim.
    package var waitedSeconds: Double

    package init(item: ReviewItemID, queue: String, reviewer: ActorID, claimedAt: Date, waitedSeconds: Double) {
        self.item = item
        self.queue = queue
        self.reviewer = reviewer
        self.claimedAt = claimedAt
        self.waitedSeconds = waitedSeconds
    }

    /// The claim a transition made, if it made one.
    package init?(_ t: Transition<ReviewItem>, from item: ReviewItem) {
        guard case .claimed(let by, let at, _) = t.entity.status, item.leaseHolder == nil else { return nil }
        self.init(item: item.id, queue: item.queue, reviewer: by, claimedAt: at, waitedSeconds: at.timeIntervalSince(item.pendingSince))
    }
}

/// The dedupe key of an inbound event: `slack` + `Ev123`, `api:key:ops` + an Idempotency-Key, …
package struct EventKey: Hashable, Sendable {
    package var source: String
    package var key: String
    /// The entity the event acted on, so a retry can be answered with it.
    package var entity: EntityRef?
    /// For idempotency keys: a fingerprint of the request, so reusing the key for a different request
    /// is refused instead of silently answered with the first one.
    package var requestHash: String?

    package init(source: String, key: String, entity: EntityRef? = nil, requestHash: String? = nil) {
        self.source = source
        self.key = key
        self.entity = entity
        self.requestHash = requestHash
    }

    /// Sources whose keys are API/CLI idempotency keys (kept longer than chat event keys).
    package static let idempotencySourcePrefixes = ["api:", "cli:"]
}

package enum TimerChange: Hashable, Sendable {
    case schedule(EntityRef, TimerKind, at: Date)
    case cancel(EntityRef, TimerKind)
}

package struct DueTimer: Hashable, Sendable {
    package var entity: EntityRef
    package var kind: TimerKind
    package var dueAt: Date

    package init(entity: EntityRef, kind: TimerKind, dueAt: Date) {
        self.entity = entity
        self.kind = kind
        self.dueAt = dueAt
    }
}

package enum OutboxKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// Post a new card for the entity to a destination.
    case postCard = "post_card"
    /// Re-render the entity's cards.
    case updateCards = "update_cards"
    /// POST the entity's new state to its callback URL.
    case webhook
    /// Send a notice to a person or to the conversation the entity came from.
    case notify
}

package struct OutboxDraft: Hashable, Sendable {
    package var kind: OutboxKind
    package var entity: EntityRef
    package var destination: String?
    package var payload: String

    package init(kind: OutboxKind, entity: EntityRef, destination: String? = nil, payload: String = "{}") {
        self.kind = kind
        self.entity = entity
        self.destination = destination
        self.payload = payload
    }
}

package enum OutboxStatus: String, Hashable, Sendable, Codable {
    case pending, done, failed
}

package struct OutboxMessage: Hashable, Sendable {
    package var id: Int64
    package var kind: OutboxKind
    package var entity: EntityRef
    package var destination: String?
    package var payload: String
    package var status: OutboxStatus
    package var attempts: Int
    package var nextAttemptAt: Date
    package var createdAt: Date
    package var lastError: String?
}

/// Turns a change set into SQL steps with their compare-and-set expectations. Shared by every backend.
enum ChangeSetPlanner {
    static func steps(for changes: ChangeSet, now: Date) -> [WriteStep] {
        var steps: [WriteStep] = []
        if var key = changes.eventKey {
            // Remember which entity the event acted on, so a retry can be answered with it.
            key.entity = key.entity ?? changes.inserts.first?.ref ?? changes.updates.first?.row.ref
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO inbox (source, key, entity_kind, entity_id, request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """,
                [.text(key.source), .text(key.key), SQLValue(key.entity?.kind.rawValue), SQLValue(key.entity?.id),
                 SQLValue(key.requestHash), SQLValue(now)]),
                expect: .insertedOrDuplicate))
        }
        if let timer = changes.firedTimer {
            // Exactly once: only the scheduler that deletes the row it saw may apply the timer's effect.
            steps.append(WriteStep(SQLStatement(
                "DELETE FROM timers WHERE entity_kind = ? AND entity_id = ? AND kind = ? AND due_at = ?",
                [.text(timer.entity.kind.rawValue), .integer(timer.entity.id), .text(timer.kind.rawValue), SQLValue(timer.dueAt)]),
                expect: .exactlyOne(.conflict("\(timer.kind.rawValue) timer of \(timer.entity)"))))
        }
        for row in changes.inserts {
            let names = row.columns.map(\.name) + ["version"]
            let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
            steps.append(WriteStep(
                SQLStatement("INSERT INTO \(row.table) (\(names.joined(separator: ", "))) VALUES (\(placeholders)) ON CONFLICT DO NOTHING",
                             row.columns.map(\.value) + [.integer(1)]),
                expect: .exactlyOne(.conflict("\(row.ref) (already exists)"))))
        }
        for (row, expected) in changes.updates {
            let assignments = row.columns.filter { $0.name != "id" }
            let set = (assignments.map { "\($0.name) = ?" } + ["version = version + 1"]).joined(separator: ", ")
            steps.append(WriteStep(
                SQLStatement("UPDATE \(row.table) SET \(set) WHERE id = ? AND version = ?",
                             assignments.map(\.value) + [.integer(row.ref.id), .integer(expected)]),
                expect: .exactlyOne(.conflict("\(row.ref)"))))
        }
        for (item, queue, review) in changes.reviews {
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO reviews (item_id, queue, reviewer, verdict, claimed_at, submitted_at, waited_ms, decide_ms, late)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                [.integer(item.rawValue), .text(queue), .text(review.reviewer.rawValue), .text(review.verdict.rawValue),
                 SQLValue(review.claimedAt), SQLValue(review.submittedAt),
                 .integer(Int64((review.waitedSeconds * 1000).rounded())), .integer(Int64((review.decideSeconds * 1000).rounded())),
                 .integer(review.afterSLA == true ? 1 : 0)]),
                expect: .exactlyOne(.uniqueViolation("a review of item #\(item) by \(review.reviewer)"))))
        }
        for claim in changes.claims {
            steps.append(WriteStep(SQLStatement(
                "INSERT INTO claims (item_id, queue, reviewer, claimed_at, waited_ms) VALUES (?, ?, ?, ?, ?)",
                [.integer(claim.item.rawValue), .text(claim.queue), .text(claim.reviewer.rawValue), SQLValue(claim.claimedAt),
                 .integer(Int64((claim.waitedSeconds * 1000).rounded()))])))
        }
        for (label, dataset) in changes.labels {
            let value = (try? StoreJSON.encode(label.value)) ?? "null"
            steps.append(WriteStep(SQLStatement(
                "INSERT INTO labels (task_id, labeler, dataset, created_at, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [.integer(label.task.rawValue), .text(label.labeler.rawValue), .text(dataset), SQLValue(label.at), .text(value)]),
                expect: .exactlyOne(.uniqueViolation("a label on task #\(label.task) by \(label.labeler)"))))
            // The labeler's hold on the task is used up; a task with no label left to give holds nobody.
            steps.append(WriteStep(SQLStatement(
                """
                DELETE FROM label_reservations
                WHERE task_id = ? AND (labeler = ? OR NOT EXISTS (SELECT 1 FROM label_tasks t WHERE t.id = ? AND t.slots > 0))
                """, [.integer(label.task.rawValue), .text(label.labeler.rawValue), .integer(label.task.rawValue)])))
        }
        for (correction, terms) in changes.correctionTerms {
            for term in terms.sorted() {
                steps.append(WriteStep(SQLStatement(
                    "INSERT INTO correction_terms (term, correction_id) VALUES (?, ?)", [.text(term), .integer(correction.rawValue)])))
            }
        }
        for event in changes.audit {
            steps.append(WriteStep(SQLStatement(
                "INSERT INTO audit (at, actor, entity_kind, entity_id, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [SQLValue(event.at), .text(event.actor.rawValue), .text(event.entity.kind.rawValue), .integer(event.entity.id),
                 SQLValue(event.from), .text(event.to), SQLValue(event.detail)])))
        }
        for message in changes.outbox {
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO outbox (kind, entity_kind, entity_id, destination, payload, status, attempts, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                """,
                [.text(message.kind.rawValue), .text(message.entity.kind.rawValue), .integer(message.entity.id),
                 SQLValue(message.destination), .text(message.payload), SQLValue(now), SQLValue(now)])))
        }
        for change in changes.timers {
            switch change {
            case .schedule(let entity, let kind, let at):
                steps.append(WriteStep(SQLStatement(
                    """
                    INSERT INTO timers (entity_kind, entity_id, kind, due_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (entity_kind, entity_id, kind) DO UPDATE SET due_at = excluded.due_at
                    """,
                    [.text(entity.kind.rawValue), .integer(entity.id), .text(kind.rawValue), SQLValue(at)])))
            case .cancel(let entity, let kind):
                steps.append(WriteStep(SQLStatement(
                    "DELETE FROM timers WHERE entity_kind = ? AND entity_id = ? AND kind = ?",
                    [.text(entity.kind.rawValue), .integer(entity.id), .text(kind.rawValue)])))
            }
        }
        return steps
    }
}
