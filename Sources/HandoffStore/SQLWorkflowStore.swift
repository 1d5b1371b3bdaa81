import Foundation
import HandoffCore

/// The workflow store over any ``SQLDatabase``: every query and every write plan is written once here.
package final class SQLWorkflowStore: WorkflowStore {
    package let database: any SQLDatabase

    /// Opens the store and applies any migrations the database has not seen yet.
    package init(database: any SQLDatabase) async throws {
        self.database = database
        try await Self.migrate(database)
        try await reindexLabelTasks()
    }

    static func migrate(_ db: any SQLDatabase) async throws {
        _ = try await db.write([WriteStep(SQLStatement(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at \(db.dialect.ddl("{int}")) NOT NULL)"))])
        let applied = Set(try await db.read("SELECT name FROM schema_migrations").compactMap { $0["name"].string })
        for migration in Schema.migrations where !applied.contains(migration.name) {
            var steps = [WriteStep(SQLStatement(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [.text(migration.name), SQLValue(Date())]), expect: .insertedOrDuplicate)]
            steps += migration.statements.map { WriteStep(SQLStatement(db.dialect.ddl($0))) }
            do {
                _ = try await db.write(steps)
            } catch StoreError.duplicate {
                continue  // another process applied it first
            }
        }
    }

    package func commit(_ changes: ChangeSet, now: Date) async throws {
        guard !changes.isEmpty else { return }
        _ = try await database.write(ChangeSetPlanner.steps(for: changes, now: now))
    }

    package func update<E: StoredEntity, R: Sendable>(
        _ type: E.Type, id: Int64, event: EventKey?, now: Date,
        _ body: @escaping @Sendable (Versioned<E>?) throws -> (ChangeSet, R)
    ) async throws -> (ChangeSet, R) {
        let load = SQLStatement("SELECT version, data FROM \(E.table) WHERE id = ?", [.integer(id)])
        return try await transact(E.self, event: event, now: now, load: load, body)
    }

    package func updateNextClaimable<R: Sendable>(
        queue: String, reviewer: ActorID, event: EventKey?, now: Date,
        _ body: @escaping @Sendable (Versioned<ReviewItem>?) throws -> (ChangeSet, R)
    ) async throws -> (ChangeSet, R) {
        let find = Self.nextClaimableStatement(queue: queue, reviewer: reviewer, skipping: [])
        return try await transact(ReviewItem.self, event: event, now: now, load: find, body)
    }

    /// The event check and the read, the decision, and its writes, in one transaction: the SQL on the
    /// database's thread, the decision (decoding the row, the core's rules, encoding the change set
    /// into statements) off it (``SQLDatabase/transaction(read:decide:write:)``).
    private func transact<E: StoredEntity, R: Sendable>(
        _ type: E.Type, event: EventKey?, now: Date, load: SQLStatement,
        _ body: @escaping @Sendable (Versioned<E>?) throws -> (ChangeSet, R)
    ) async throws -> (ChangeSet, R) {
        let check = event.map { SQLStatement("SELECT 1 AS one FROM inbox WHERE source = ? AND key = ?", [.text($0.source), .text($0.key)]) }
        return try await database.transaction(
            read: { transaction -> SQLRow? in
                if let check, try !transaction.read(check).isEmpty { throw StoreError.duplicate }
                return try transaction.read(load).first
            },
            decide: { row -> (steps: [WriteStep], changes: ChangeSet, result: R) in
                let (changes, result) = try body(try row.map(E.decode))
                return (changes.isEmpty ? [] : ChangeSetPlanner.steps(for: changes, now: now), changes, result)
            },
            write: { transaction, decided in
                if !decided.steps.isEmpty { _ = try transaction.run(decided.steps) }
                return (decided.changes, decided.result)
            })
    }

    package func commit(batch: [ChangeSet], now: Date) async throws {
        let steps = batch.filter { !$0.isEmpty }.flatMap { ChangeSetPlanner.steps(for: $0, now: now) }
        guard !steps.isEmpty else { return }
        _ = try await database.write(steps)
    }

    package func reserveIDs(_ kind: EntityKind, count: Int) async throws -> ClosedRange<Int64> {
        precondition(count > 0)
        let results = try await database.write([
            WriteStep(SQLStatement("INSERT INTO id_counters (kind, next_id) VALUES (?, 1) ON CONFLICT DO NOTHING", [.text(kind.rawValue)])),
            WriteStep(SQLStatement("UPDATE id_counters SET next_id = next_id + ? WHERE kind = ? RETURNING next_id",
                                   [SQLValue(count), .text(kind.rawValue)]),
                      expect: .exactlyOne(.unavailable("id counter \(kind.rawValue) missing"))),
        ])
        guard let next = results.last?.rows.first?["next_id"].int else { throw StoreError.corrupt("id counter \(kind.rawValue)") }
        return (next - Int64(count))...(next - 1)
    }

    package func eventRecord(source: String, key: String) async throws -> EventRecord? {
        guard let row = try await database.read(
            "SELECT entity_kind, entity_id, request_hash FROM inbox WHERE source = ? AND key = ?", [.text(source), .text(key)]).first
        else { return nil }
        var entity: EntityRef?
        if let kind = row["entity_kind"].string.flatMap(EntityKind.init(rawValue:)), let id = row["entity_id"].int {
            entity = EntityRef(kind: kind, id: id)
        }
        return EventRecord(entity: entity, requestHash: row["request_hash"].string)
    }

    package func eventEntity(source: String, key: String) async throws -> EntityRef?? {
        guard let row = try await database.read(
            "SELECT entity_kind, entity_id FROM inbox WHERE source = ? AND key = ?", [.text(source), .text(key)]).first
        else { return nil }
        guard let kind = row["entity_kind"].string.flatMap(EntityKind.init(rawValue:)), let id = row["entity_id"].int else {
            return .some(nil)
        }
        return .some(EntityRef(kind: kind, id: id))
    }

    // MARK: Entities

    private func one<E: StoredEntity>(_ type: E.Type, _ id: Int64) async throws -> Versioned<E>? {
        try await database.read("SELECT version, data FROM \(E.table) WHERE id = ?", [.integer(id)]).first.map(E.decode)
    }

    private func page<E: StoredEntity>(
        _ type: E.Type, filters: [(String, SQLValue?)], before: Int64?, limit: Int, descending: Bool = true
    ) async throws -> [E] {
        var clauses: [String] = []
        var binds: [SQLValue] = []
        for (column, value) in filters {
            guard let value, !value.isNull else { continue }  // no filter on this column
            clauses.append("\(column) = ?")
            binds.append(value)
        }
        if let before {
            clauses.append(descending ? "id < ?" : "id > ?")
            binds.append(.integer(before))
        }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(SQLValue(max(0, min(limit, 1000))))
        return try await database.read(
            "SELECT version, data FROM \(E.table) \(whereClause) ORDER BY id \(descending ? "DESC" : "ASC") LIMIT ?", binds
        ).map { try E.decode($0).value }
    }

    package func approval(_ id: ApprovalID) async throws -> Versioned<Approval>? { try await one(Approval.self, id.rawValue) }

    package func approvals(status: String?, limit: Int, before: ApprovalID?) async throws -> [Approval] {
        try await page(Approval.self, filters: [("status", SQLValue(status))], before: before?.rawValue, limit: limit)
    }

    package func reviewItem(_ id: ReviewItemID) async throws -> Versioned<ReviewItem>? { try await one(ReviewItem.self, id.rawValue) }

    package func reviewItems(queue: String?, status: String?, limit: Int, before: ReviewItemID?) async throws -> [ReviewItem] {
        try await page(ReviewItem.self, filters: [("queue", SQLValue(queue)), ("status", SQLValue(status))],
                       before: before?.rawValue, limit: limit)
    }

    package func nextClaimable(queue: String, reviewer: ActorID, skipping: Set<ReviewItemID>) async throws -> Versioned<ReviewItem>? {
        try await database.read(Self.nextClaimableStatement(queue: queue, reviewer: reviewer, skipping: skipping)).first.map(ReviewItem.decode)
    }

    /// The queue's next pending item this reviewer has not reviewed: priority, then oldest (review_items_claim).
    static func nextClaimableStatement(queue: String, reviewer: ActorID, skipping: Set<ReviewItemID>) -> SQLStatement {
        var binds: [SQLValue] = [.text(queue), .text(reviewer.rawValue)]
        var skip = ""
        if !skipping.isEmpty {
            skip = "AND ri.id NOT IN (\(Array(repeating: "?", count: skipping.count).joined(separator: ", ")))"
            binds += skipping.sorted().map { .integer($0.rawValue) }
        }
        return SQLStatement(
            """
            SELECT ri.version, ri.data FROM review_items ri
            WHERE ri.queue = ? AND ri.status = 'pending'
              AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = ri.id AND r.reviewer = ?)
              \(skip)
            ORDER BY ri.priority, ri.created_at, ri.id
            LIMIT 1
            """, binds)
    }

    /// Nearest-rank percentiles of one indexed column, read with two single-row lookups each.
    private func durationStats(column: String, table: String, filter: String, binds: [SQLValue]) async throws -> DurationStats {
        let count = Int(try await database.scalar("SELECT COUNT(*) FROM \(table) WHERE \(filter)", binds))
        guard count > 0 else { return DurationStats(count: 0, p50Seconds: nil, p90Seconds: nil) }
        func percentile(_ p: Double) async throws -> Double? {
            let rank = max(1, Int((p * Double(count)).rounded(.up)))
            let row = try await database.read(
                "SELECT \(column) AS v FROM \(table) WHERE \(filter) ORDER BY \(column) LIMIT 1 OFFSET ?",
                binds + [SQLValue(rank - 1)]).first
            return row?["v"].double.map { $0 / 1000 }
        }
        return DurationStats(count: count, p50Seconds: try await percentile(0.5), p90Seconds: try await percentile(0.9))
    }

    package func queueCounts(queue: String) async throws -> QueueCounts {
        var counts: [String: Int] = [:]
        for row in try await database.read(
            "SELECT status, COUNT(*) AS n FROM review_items WHERE queue = ? GROUP BY status", [.text(queue)])
        {
            counts[try row.string("status")] = Int(try row.int("n"))
        }
        let breaches = try await database.scalar(
            "SELECT COUNT(*) FROM review_items WHERE queue = ? AND sla_breached = 1", [.text(queue)])
        return QueueCounts(queue: queue, pending: counts["pending"] ?? 0, claimed: counts["claimed"] ?? 0,
                           completed: counts["completed"] ?? 0, slaBreaches: Int(breaches))
    }

    package func queueStats(queue: String) async throws -> QueueStats {
        let counts = try await queueCounts(queue: queue)
        return QueueStats(
            queue: queue, pending: counts.pending, claimed: counts.claimed, completed: counts.completed, slaBreaches: counts.slaBreaches,
            timeToClaim: try await durationStats(column: "waited_ms", table: "claims", filter: "queue = ?", binds: [.text(queue)]),
            timeToDecide: try await durationStats(column: "decide_ms", table: "reviews", filter: "queue = ?", binds: [.text(queue)]))
    }

    package func reviewerStats(queue: String?) async throws -> [ReviewerStats] {
        let filter = queue == nil ? "" : "WHERE queue = ?"
        let binds: [SQLValue] = queue.map { [.text($0)] } ?? []
        var byReviewer: [String: (verdicts: [String: Int], late: Int)] = [:]
        for row in try await database.read(
            "SELECT reviewer, verdict, COUNT(*) AS n, SUM(late) AS late FROM reviews \(filter) GROUP BY reviewer, verdict", binds)
        {
            let reviewer = try row.string("reviewer")
            byReviewer[reviewer, default: ([:], 0)].verdicts[try row.string("verdict")] = Int(try row.int("n"))
            byReviewer[reviewer, default: ([:], 0)].late += Int(row["late"].int ?? 0)
        }
        // Reviewers who claimed but have not submitted yet count too.
        for row in try await database.read("SELECT DISTINCT reviewer FROM claims \(filter)", binds) {
            let reviewer = try row.string("reviewer")
            if byReviewer[reviewer] == nil { byReviewer[reviewer] = ([:], 0) }
        }
        var out: [ReviewerStats] = []
        for (reviewer, tally) in byReviewer.sorted(by: { $0.key < $1.key }) {
            let reviewerFilter = queue == nil ? "reviewer = ?" : "reviewer = ? AND queue = ?"
            let reviewerBinds: [SQLValue] = [.text(reviewer)] + binds
            out.append(ReviewerStats(
                reviewer: ActorID(reviewer), reviews: tally.verdicts.values.reduce(0, +), approved: tally.verdicts["approved"] ?? 0,
                rejected: tally.verdicts["rejected"] ?? 0, revisionNeeded: tally.verdicts["revision_needed"] ?? 0,
                timeToClaim: try await durationStats(column: "waited_ms", table: "claims", filter: reviewerFilter, binds: reviewerBinds),
                timeToDecide: try await durationStats(column: "decide_ms", table: "reviews", filter: reviewerFilter, binds: reviewerBinds),
                slaBreaches: tally.late))
        }
        return out
    }

    /// Every queue that has items, in order: a skip scan over the (queue, status) index — one index
    /// seek per distinct queue, however many items each holds (a plain DISTINCT walks every entry).
    package func queueNames() async throws -> [String] {
        try await database.read(
            """
            WITH RECURSIVE names(queue) AS (
                SELECT MIN(queue) FROM review_items
                UNION ALL
                SELECT (SELECT MIN(r.queue) FROM review_items r WHERE r.queue > names.queue) FROM names WHERE names.queue IS NOT NULL
            )
            SELECT queue FROM names WHERE queue IS NOT NULL
            """
        ).compactMap { $0["queue"].string }
    }

    package func escalation(_ id: EscalationID) async throws -> Versioned<Escalation>? { try await one(Escalation.self, id.rawValue) }

    package func escalations(status: String?, limit: Int, before: EscalationID?) async throws -> [Escalation] {
        try await page(Escalation.self, filters: [("status", SQLValue(status))], before: before?.rawValue, limit: limit)
    }

    package func feedback(_ id: FeedbackID) async throws -> Versioned<FeedbackRequest>? { try await one(FeedbackRequest.self, id.rawValue) }

    package func feedbackRates() async throws -> (overall: ResponseRate, channels: [ResponseRate]) {
        var channels: [String: ResponseRate] = [:]
        for row in try await database.read("SELECT channel, status, COUNT(*) AS n FROM feedback GROUP BY channel, status") {
            let channel = try row.string("channel")
            var rate = channels[channel] ?? ResponseRate(channel: channel, answered: 0, expired: 0, open: 0)
            let n = Int(try row.int("n"))
            switch try row.string("status") {
            case "answered": rate.answered += n
            case "expired": rate.expired += n
            default: rate.open += n
            }
            channels[channel] = rate
        }
        let list = channels.values.sorted { ($0.channel ?? "") < ($1.channel ?? "") }
        let overall = list.reduce(ResponseRate(channel: nil, answered: 0, expired: 0, open: 0)) {
            ResponseRate(channel: nil, answered: $0.answered + $1.answered, expired: $0.expired + $1.expired, open: $0.open + $1.open)
        }
        return (overall, list)
    }

    package func correction(_ id: CorrectionID) async throws -> Correction? { try await one(Correction.self, id.rawValue)?.value }

    package func corrections(after: CorrectionID?, limit: Int) async throws -> [Correction] {
        try await page(Correction.self, filters: [], before: after?.rawValue ?? 0, limit: limit, descending: false)
    }

    package func correctionCandidates(terms: Set<String>, limit: Int) async throws -> [Correction] {
        guard !terms.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: terms.count).joined(separator: ", ")
        return try await database.read(
            """
            SELECT c.version, c.data FROM corrections c JOIN (
                SELECT correction_id, COUNT(*) AS shared FROM correction_terms
                WHERE term IN (\(placeholders)) GROUP BY correction_id
                ORDER BY shared DESC, correction_id DESC LIMIT ?
            ) m ON m.correction_id = c.id
            ORDER BY m.shared DESC, c.id DESC
            """, terms.sorted().map(SQLValue.text) + [SQLValue(limit)]
        ).map { try Correction.decode($0).value }
    }

    package func termFrequencies(_ terms: Set<String>) async throws -> (frequencies: [String: Int], documents: Int) {
        let documents = Int(try await database.scalar("SELECT COUNT(*) FROM corrections"))
        guard !terms.isEmpty else { return ([:], documents) }
        let placeholders = Array(repeating: "?", count: terms.count).joined(separator: ", ")
        var frequencies: [String: Int] = [:]
        for row in try await database.read(
            "SELECT term, COUNT(*) AS n FROM correction_terms WHERE term IN (\(placeholders)) GROUP BY term",
            terms.sorted().map(SQLValue.text))
        {
            frequencies[try row.string("term")] = Int(try row.int("n"))
        }
        return (frequencies, documents)
    }

    package func labelTask(_ id: LabelTaskID) async throws -> Versioned<LabelTask>? { try await one(LabelTask.self, id.rawValue) }

    package func labelTasks(dataset: String?, limit: Int, after: LabelTaskID?) async throws -> [LabelTask] {
        try await page(LabelTask.self, filters: [("dataset", SQLValue(dataset))], before: after?.rawValue ?? 0, limit: limit,
                       descending: false)
    }

    package func nextLabelTask(dataset: String?, labeler: ActorID, groups: [String]?, now: Date, holdUntil: Date) async throws -> LabelTask? {
        let datasetClause = dataset == nil ? "" : "AND t.dataset = ?"
        let dataset: [SQLValue] = dataset.map { [.text($0)] } ?? []
        // Tasks this labeler may label: those open to anyone ("*") or to one of their groups; nil is an
        // admin, who may label any task.
        var groupClause = ""
        var groupBinds: [SQLValue] = []
        if let groups {
            let patterns = [Directory.anyone] + groups
            groupClause = "AND (" + patterns.map { _ in "t.labeler_groups LIKE ? ESCAPE '\\'" }.joined(separator: " OR ") + ")"
            groupBinds = patterns.map { .text(LabelerGroups.pattern($0)) }
        }
        let who = SQLValue.text(labeler.rawValue)
        // One statement, so two labelers asking at once cannot both take a task's last free label: the
        // task this labeler holds already (asking again gives the same task), else the oldest open task
        // they may label and have not labeled, with more labels to give than are held for others. Walks
        // open tasks in id order (label_tasks_next) and stops at the first; the tasks it passes are the
        // ones being worked on. The final ORDER BY sorts the at most two candidates.
        let held = try await database.write([WriteStep(SQLStatement(
            """
            WITH pick (id, mine) AS (
                SELECT r.task_id, 1 FROM label_reservations r JOIN label_tasks t ON t.id = r.task_id
                WHERE r.labeler = ? AND r.expires_at > ? AND t.status = 'open' \(datasetClause)
                UNION ALL
                SELECT * FROM (
                    SELECT t.id, 0 FROM label_tasks t
                    WHERE t.status = 'open' \(datasetClause) \(groupClause)
                      AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.task_id = t.id AND l.labeler = ?)
                      AND t.slots > (SELECT COUNT(*) FROM label_reservations r
                                     WHERE r.task_id = t.id AND r.labeler <> ? AND r.expires_at > ?)
                    ORDER BY t.id LIMIT 1
                ) AS candidate
            )
            INSERT INTO label_reservations (task_id, labeler, expires_at)
            SELECT id, ?, ? FROM pick WHERE true ORDER BY mine DESC, id LIMIT 1
            ON CONFLICT (task_id, labeler) DO UPDATE SET expires_at = excluded.expires_at
            RETURNING task_id
            """, [who, SQLValue(now)] + dataset + dataset + groupBinds + [who, who, SQLValue(now), who, SQLValue(holdUntil)]))])
        guard let id = try held.first?.rows.first?.int("task_id") else { return nil }
        return try await labelTask(LabelTaskID(id))?.value
    }

    package func pruneLabelHolds(before: Date) async throws -> Int {
        try await database.write([WriteStep(SQLStatement(
            "DELETE FROM label_reservations WHERE expires_at <= ?", [SQLValue(before)]))]).first?.changes ?? 0
    }

    /// Fills the index columns of label tasks written before they existed (migration 0009), a page at a
    /// time through the partial index of such rows, so nothing loads the table. Idempotent: a crash halfway
    /// leaves the rest for the next open; new writes always fill them.
    func reindexLabelTasks() async throws {
        while true {
            let rows = try await database.read(
                "SELECT version, data FROM label_tasks WHERE labeler_groups IS NULL ORDER BY id LIMIT 500")
            guard !rows.isEmpty else { return }
            let steps = try rows.map { raw -> WriteStep in
                let task = try LabelTask.decode(raw)
                let columns = task.value.indexColumns
                return WriteStep(SQLStatement(
                    "UPDATE label_tasks SET " + columns.map { "\($0.name) = ?" }.joined(separator: ", ") + " WHERE id = ? AND version = ?",
                    columns.map(\.value) + [.integer(task.value.rowID), .integer(task.version)]))
            }
            let changed = try await database.write(steps).reduce(0) { $0 + $1.changes }
            if changed == 0 { return }  // only rows another writer changed meanwhile (and so indexed) were left
        }
    }

    package func hasLabel(task: LabelTaskID, labeler: ActorID) async throws -> Bool {
        try await database.scalar(
            "SELECT COUNT(*) FROM labels WHERE task_id = ? AND labeler = ?", [.integer(task.rawValue), .text(labeler.rawValue)]) > 0
    }

    private func decodeLabel(_ row: SQLRow) throws -> StoredLabel {
        StoredLabel(task: LabelTaskID(try row.int("task_id")), labeler: ActorID(try row.string("labeler")),
                    value: try StoreJSON.decode(LabelValue.self, from: try row.string("value")), at: try row.date("created_at"))
    }

    package func labels(task: LabelTaskID) async throws -> [StoredLabel] {
        try await database.read(
            "SELECT task_id, labeler, value, created_at FROM labels WHERE task_id = ? ORDER BY created_at, labeler",
            [.integer(task.rawValue)]
        ).map(decodeLabel)
    }

    package func labels(dataset: String, after: (LabelTaskID, ActorID)?, limit: Int) async throws -> [StoredLabel] {
        let (task, labeler) = after.map { ($0.0.rawValue, $0.1.rawValue) } ?? (0, "")
        return try await database.read(
            """
            SELECT task_id, labeler, value, created_at FROM labels
            WHERE dataset = ? AND (task_id > ? OR (task_id = ? AND labeler > ?))
            ORDER BY task_id, labeler LIMIT ?
            """, [.text(dataset), .integer(task), .integer(task), .text(labeler), SQLValue(limit)]
        ).map(decodeLabel)
    }

    // MARK: Timers, audit, outbox, inbox

    private func decodeTimer(_ row: SQLRow) throws -> DueTimer {
        guard let kind = EntityKind(rawValue: try row.string("entity_kind")),
              let timerKind = TimerKind(rawValue: try row.string("kind"))
        else { throw StoreError.corrupt("timer row") }
        return DueTimer(entity: EntityRef(kind: kind, id: try row.int("entity_id")), kind: timerKind, dueAt: try row.date("due_at"))
    }

    package func dueTimers(now: Date, limit: Int) async throws -> [DueTimer] {
        try await database.read(
            "SELECT entity_kind, entity_id, kind, due_at FROM timers WHERE due_at <= ? ORDER BY due_at LIMIT ?",
            [SQLValue(now), SQLValue(limit)]
        ).map(decodeTimer)
    }

    package func nextTimerDue() async throws -> Date? {
        try await database.read("SELECT due_at FROM timers ORDER BY due_at LIMIT 1").first?.optionalDate("due_at")
    }

    package func timers(of entity: EntityRef) async throws -> [DueTimer] {
        try await database.read(
            "SELECT entity_kind, entity_id, kind, due_at FROM timers WHERE entity_kind = ? AND entity_id = ? ORDER BY kind",
            [.text(entity.kind.rawValue), .integer(entity.id)]
        ).map(decodeTimer)
    }

    package func audit(of entity: EntityRef) async throws -> [AuditEvent] {
        try await database.read(
            """
            SELECT at, actor, entity_kind, entity_id, from_state, to_state, detail FROM audit
            WHERE entity_kind = ? AND entity_id = ? ORDER BY id
            """, [.text(entity.kind.rawValue), .integer(entity.id)]
        ).map { row in
            AuditEvent(at: try row.date("at"), actor: ActorID(try row.string("actor")), entity: entity,
                       from: row["from_state"].string, to: try row.string("to_state"), detail: row["detail"].string)
        }
    }

    private func decodeOutbox(_ row: SQLRow) throws -> OutboxMessage {
        guard let kind = OutboxKind(rawValue: try row.string("kind")),
              let entityKind = EntityKind(rawValue: try row.string("entity_kind")),
              let status = OutboxStatus(rawValue: try row.string("status"))
        else { throw StoreError.corrupt("outbox row") }
        return OutboxMessage(
            id: try row.int("id"), kind: kind, entity: EntityRef(kind: entityKind, id: try row.int("entity_id")),
            destination: row["destination"].string, payload: try row.string("payload"), status: status,
            attempts: Int(try row.int("attempts")), nextAttemptAt: try row.date("next_attempt_at"),
            createdAt: try row.date("created_at"), lastError: row["last_error"].string)
    }

    private static let outboxColumns =
        "id, kind, entity_kind, entity_id, destination, payload, status, attempts, next_attempt_at, created_at, last_error"

    package func dueOutbox(now: Date, kinds: Set<OutboxKind>, limit: Int) async throws -> [OutboxMessage] {
        guard !kinds.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: kinds.count).joined(separator: ", ")
        let kindList = kinds.map(\.rawValue).sorted().map(SQLValue.text)
        // One kind (the webhook dispatcher): the (kind, next_attempt_at, id) index walks only that kind's
        // due rows, in order, however many rows of other kinds wait (card rows pile up while no chat
        // platform is connected: a million pending items made every webhook poll read them all).
        // Several kinds: the (next_attempt_at, id) index in order, stopping at `limit`; `o.kind || ''`
        // keeps the planner off the per-kind index, which would read every due row of those kinds and sort.
        // Rows of one entity go in order. (Cards posted to one destination keep theirs too: a post put off
        // puts off the later posts to its destination with it, see markOutboxRetry.)
        let kindFilter = kinds.count == 1 ? "o.kind = ?" : "o.kind || '' IN (\(placeholders))"
        return try await database.read(
            """
            SELECT \(Self.outboxColumns) FROM outbox o
            WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND \(kindFilter)
              AND (o.lease_until IS NULL OR o.lease_until <= ?)
              AND NOT EXISTS (
                SELECT 1 FROM outbox e
                WHERE e.entity_kind = o.entity_kind AND e.entity_id = o.entity_id AND e.id < o.id
                  AND e.status = 'pending' AND e.kind IN (\(placeholders)))
            ORDER BY o.next_attempt_at, o.id LIMIT ?
            """, [SQLValue(now)] + kindList + [SQLValue(now)] + kindList + [SQLValue(limit)]
        ).map(decodeOutbox)
    }

    package func outbox(of entity: EntityRef) async throws -> [OutboxMessage] {
        try await database.read(
            "SELECT \(Self.outboxColumns) FROM outbox WHERE entity_kind = ? AND entity_id = ? ORDER BY id",
            [.text(entity.kind.rawValue), .integer(entity.id)]
        ).map(decodeOutbox)
    }

    package func markOutboxDone(_ id: Int64) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE outbox SET status = 'done', attempts = attempts + 1, last_error = NULL, lease_until = NULL WHERE id = ?", [.integer(id)]))])
    }

    package func markOutboxRetry(_ id: Int64, at: Date, error: String) async throws {
        _ = try await database.write([
            WriteStep(SQLStatement(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, lease_until = NULL WHERE id = ? AND status = 'pending'",
                [SQLValue(at), .text(String(error.prefix(1000))), .integer(id)])),
            // A card post put off puts off the later posts to the same destination with it, so a channel's
            // cards appear in the order they were asked for whatever rate limit or retry holds one back
            // (outbox_pending_posts: that destination's pending posts after it, nothing else).
            WriteStep(SQLStatement(
                """
                UPDATE outbox SET next_attempt_at = ?
                WHERE kind = 'post_card' AND status = 'pending' AND next_attempt_at < ? AND id > ?
                  AND destination = (SELECT destination FROM outbox WHERE id = ? AND kind = 'post_card')
                """, [SQLValue(at), SQLValue(at), .integer(id), .integer(id)])),
        ])
    }

    package func markOutboxFailed(_ id: Int64, error: String) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, lease_until = NULL WHERE id = ?",
            [.text(String(error.prefix(1000))), .integer(id)]))])
    }

    package func pruneEventKeys(before: Date, idempotencyBefore: Date) async throws -> Int {
        let idempotency = EventKey.idempotencySourcePrefixes.map { _ in "source LIKE ?" }.joined(separator: " OR ")
        let prefixes = EventKey.idempotencySourcePrefixes.map { SQLValue.text($0 + "%") }
        let results = try await database.write([
            WriteStep(SQLStatement("DELETE FROM inbox WHERE created_at < ? AND NOT (\(idempotency))", [SQLValue(before)] + prefixes)),
            WriteStep(SQLStatement("DELETE FROM inbox WHERE created_at < ? AND (\(idempotency))", [SQLValue(idempotencyBefore)] + prefixes)),
        ])
        return results.reduce(0) { $0 + $1.changes }
    }

    package func countLabelTasks(dataset: String) async throws -> Int {
        Int(try await database.scalar("SELECT COUNT(*) FROM label_tasks WHERE dataset = ?", [.text(dataset)]))
    }

    package func oldestOpenEscalation(tiers: [String]) async throws -> Escalation? {
        var oldest: Escalation?
        for tier in Set(tiers).sorted() {
            guard let row = try await database.read(
                "SELECT version, data FROM escalations WHERE status = 'open' AND tier = ? ORDER BY id LIMIT 1", [.text(tier)]).first
            else { continue }
            let e = try Escalation.decode(row).value
            if oldest == nil || e.id < oldest!.id { oldest = e }
        }
        return oldest
    }

    package func claimOutbox(_ id: Int64, until: Date, now: Date) async throws -> Bool {
        let r = try await database.write([WriteStep(SQLStatement(
            """
            UPDATE outbox SET lease_until = ?
            WHERE id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)
            """, [SQLValue(until), .integer(id), SQLValue(now)]))])
        return (r.first?.changes ?? 0) == 1
    }

    package func renewOutboxLease(_ id: Int64, until: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE outbox SET lease_until = ? WHERE id = ? AND status = 'pending' AND lease_until IS NOT NULL",
            [SQLValue(until), .integer(id)]))])
    }

    package func ping() async throws { _ = try await database.read("SELECT 1 AS one") }

    package func close() async throws { try await database.close() }
}
