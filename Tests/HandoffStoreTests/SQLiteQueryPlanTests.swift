import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

@Suite("SQLite query plans and migrations")
struct SQLiteQueryPlanTests {
    /// Opens a store on a SQLite file with some rows in every table the hot queries touch.
    func withRecordedStore(_ body: (SQLWorkflowStore, PlanRecordingDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-plan")
        defer { directory.remove() }
        let database = PlanRecordingDatabase(try SQLiteDatabase(path: directory.file("handoff.sqlite")))
        let store = try await SQLWorkflowStore(database: database)
        let f = Fixtures()
        for id in 1...20 {
            try await store.commit(.inserting(try f.reviewItem(Int64(id), priority: Priority.allCases[id % 4])), now: f.now)
            try await store.commit(.inserting(try f.labelTask(Int64(id))), now: f.now)
            try await store.commit(.inserting(try f.approval(Int64(id))), now: f.now)
            f.clock.advance(by: 1)
        }
        do {
            try await body(store, database)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Asserts the single recorded statement runs without a full scan and through `index`.
    /// `cte` names common table expressions and derived tables whose scan is over a few rows already
    /// found through an index; `sortsCandidates` allows a sort after their scan (of those few rows).
    func expectIndexed(_ statements: [SQLStatement], uses index: String, in database: PlanRecordingDatabase, cte: Set<String> = [],
                       sortsCandidates: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(statements.count == 1, "expected one query, got \(statements.map(\.sql))", sourceLocation: sourceLocation)
        for statement in statements {
            let plan = try await database.plan(statement)
            let fullScans = PlanRecordingDatabase.fullScans(plan, cte: cte)
            #expect(fullScans.isEmpty, "full table scan in \(plan) for \(statement.sql)", sourceLocation: sourceLocation)
            #expect(plan.contains { $0.contains(index) }, "\(index) unused: \(plan)", sourceLocation: sourceLocation)
            // A sort is only allowed right after the scan of the candidates, never inside the index walk.
            let lastCandidateScan = plan.lastIndex { step in cte.contains { step == "SCAN \($0)" } }
            let sorts = plan.indices.filter { plan[$0].contains("TEMP B-TREE") && !(sortsCandidates && $0 > (lastCandidateScan ?? plan.endIndex)) }
            #expect(sorts.isEmpty, "sorts in memory: \(plan)", sourceLocation: sourceLocation)
        }
    }

    @Test func theClaimQueryUsesTheClaimIndex() async throws {
        try await withRecordedStore { store, database in
            let reads = try await database.recording {
                _ = try await store.nextClaimable(queue: "support", reviewer: "slack:alice", skipping: [ReviewItemID(3)])
            }
            try await expectIndexed(reads, uses: "review_items_claim", in: database)
            let plan = try await database.plan(try #require(reads.first))
            #expect(plan.contains { $0.contains("reviews_item_reviewer") }, "the already-reviewed check must use its index: \(plan)")
        }
    }

    @Test func theNextLabelTaskQueryUsesAnIndex() async throws {
        try await withRecordedStore { store, database in
            let now = Date()
            // The hold (one statement; the task is then read by its id).
            let inDataset = try await database.recording {
                _ = try await store.nextLabelTask(dataset: "sentiment", labeler: "slack:alice", groups: ["labelers"], now: now, holdUntil: now.addingTimeInterval(600))
            }
            try await expectIndexed(Array(inDataset.prefix(1)), uses: "label_tasks_next", in: database, cte: ["pick", "candidate"],
                                    sortsCandidates: true)
            let plan = try await database.plan(inDataset[0])
            #expect(plan.contains { $0.contains("label_reservations_labeler") }, "the labeler's own hold must use its index: \(plan)")
            let anywhere = try await database.recording {
                _ = try await store.nextLabelTask(dataset: nil, labeler: "slack:bob", groups: ["labelers"], now: now, holdUntil: now.addingTimeInterval(600))
            }
            try await expectIndexed(Array(anywhere.prefix(1)), uses: "label_tasks_open", in: database, cte: ["pick", "candidate"],
                                    sortsCandidates: true)
        }
    }

    @Test func theDueTimerQueryUsesTheDueIndex() async throws {
        try await withRecordedStore { store, database in
            let reads = try await database.recording { _ = try await store.dueTimers(now: Date.distantFuture, limit: 100) }
            try await expectIndexed(reads, uses: "timers_due", in: database)
        }
    }

    @Test func theDueOutboxQueryUsesTheDueIndex() async throws {
        try await withRecordedStore { store, database in
            let reads = try await database.recording {
                _ = try await store.dueOutbox(now: Date.distantFuture, kinds: Set(OutboxKind.allCases), limit: 100)
            }
            try await expectIndexed(reads, uses: "outbox_due", in: database)
        }
    }

    static let statsPolicy = """
        groups:
          reviewers: [cli:alice, cli:carol, cli:dave]
          approvers: [cli:alice]
          agents: [cli:alice]
          experts: [cli:carol]
        queues:
          default: { reviewers: [reviewers] }
          support: { reviewers: [reviewers] }
        """

    /// A workflow over a recorded store with reviews by three reviewers in two queues, escalations at
    /// two tiers, label tasks in four datasets and outbox rows (some leased), then `ANALYZE`.
    func withBusyStore(_ body: (SQLWorkflowStore, PlanRecordingDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-plan-busy")
        defer { directory.remove() }
        let database = PlanRecordingDatabase(try SQLiteDatabase(path: directory.file("handoff.sqlite")))
        let store = try await SQLWorkflowStore(database: database)
        do {
            let clock = ManualClock()
            let workflow = Workflow(store: store, clock: clock, configuration: .init(policy: try PolicyFile.parse(Self.statsPolicy)))
            let reviewers = [Actor("cli:alice"), Actor("cli:carol"), Actor("cli:dave")]
            for i in 1...60 {
                let (item, _) = try await workflow.enqueue(
                    ReviewItemRequest(queue: i % 2 == 0 ? "default" : "support", content: ReviewContent(title: "t\(i)")), by: "key:bot")
                if i % 5 != 0 {
                    let reviewer = reviewers[i % 3]
                    _ = try await workflow.claim(item.id, by: reviewer)
                    clock.advance(by: Double(i))
                    _ = try await workflow.submit(item.id, verdict: i % 4 == 0 ? .rejected : .approved, feedback: "checked",
                                                  correctedAnswer: nil, by: reviewer)
                }
                let escalation = try await workflow.escalate(EscalationRequest(query: "q\(i)", trigger: .manual("test")), by: "key:bot")
                if i % 3 == 0 { _ = try await workflow.raiseEscalation(escalation.id, reason: nil, by: .system) }
                _ = try await workflow.requestApproval(ApprovalRequest(action: "a\(i)", arguments: .int(Int64(i)), requester: "key:bot"))
                _ = try await workflow.createLabelTask(LabelTaskInput(dataset: "d\(i % 4)", type: .text, content: "c"), by: "key:bot")
            }
            for message in try await store.dueOutbox(now: .distantFuture, kinds: Set(OutboxKind.allCases), limit: 20) {
                _ = try await store.claimOutbox(message.id, until: clock.now().addingTimeInterval(60), now: clock.now())
            }
            _ = try await database.write([WriteStep(SQLStatement("ANALYZE"))])
            try await body(store, database)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Every statement `body` sends runs without a full scan or an in-memory sort; returns their plans.
    func expectEachIndexed(_ database: PlanRecordingDatabase, cte: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () async throws -> Void) async throws -> [(sql: String, plan: [String])] {
        let statements = try await database.recording(body)
        #expect(!statements.isEmpty, sourceLocation: sourceLocation)
        var plans: [(sql: String, plan: [String])] = []
        for statement in statements {
            let plan = try await database.plan(statement)
            #expect(PlanRecordingDatabase.fullScans(plan, cte: cte).isEmpty, "full table scan in \(plan) for \(statement.sql)",
                    sourceLocation: sourceLocation)
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "sorts in memory: \(plan) for \(statement.sql)",
                    sourceLocation: sourceLocation)
            plans.append((statement.sql, plan))
        }
        return plans
    }

    @Test func reviewerStatsWithAndWithoutAQueueAreIndexed() async throws {
        try await withBusyStore { store, database in
            var all: [ReviewerStats] = []
            let everyQueue = try await expectEachIndexed(database) { all = try await store.reviewerStats(queue: nil) }
            #expect(all.count == 3 && all.allSatisfy { $0.reviews > 0 }, "\(all)")
            #expect(everyQueue.first?.plan.contains { $0.contains("reviews_reviewer_verdict") } == true, "\(everyQueue)")
            for (sql, plan) in everyQueue where sql.contains("reviewer = ?") {
                #expect(plan.contains { $0.contains("SEARCH") && $0.contains("reviewer=?") }, "\(plan) for \(sql)")
            }

            var support: [ReviewerStats] = []
            let oneQueue = try await expectEachIndexed(database) { support = try await store.reviewerStats(queue: "support") }
            #expect(support.reduce(0) { $0 + $1.reviews } < all.reduce(0) { $0 + $1.reviews })
            #expect(oneQueue.first?.plan.contains { $0.contains("reviews_queue_reviewer") } == true, "\(oneQueue)")
            // Per reviewer within a queue: both equality columns come from the index, so other queues' rows are never read.
            for (sql, plan) in oneQueue where sql.contains("reviewer = ? AND queue = ?") {
                #expect(plan.contains { $0.contains("SEARCH") && $0.contains("queue=?") && $0.contains("reviewer=?") }, "\(plan) for \(sql)")
            }
        }
    }

    @Test func queueNamesSkipThroughTheIndex() async throws {
        try await withBusyStore { store, database in
            var names: [String] = []
            let plans = try await expectEachIndexed(database, cte: ["names"]) { names = try await store.queueNames() }
            #expect(names == ["default", "support"])
            #expect(plans.count == 1)
            let plan = try #require(plans.first?.plan)
            #expect(plan.filter { $0.contains("review_items") }.allSatisfy { $0.contains("SEARCH") || $0.contains("COVERING INDEX") }, "\(plan)")
            #expect(plan.contains { $0.contains("SEARCH") && $0.contains("(queue>?)") }, "one seek per queue: \(plan)")
        }
    }

    @Test func theOldestOpenEscalationIsOneIndexedLookupPerTier() async throws {
        try await withBusyStore { store, database in
            var oldest: Escalation?
            let plans = try await expectEachIndexed(database) { oldest = try await store.oldestOpenEscalation(tiers: ["agent", "expert"]) }
            #expect(oldest?.id == EscalationID(1))
            #expect(plans.count == 2)
            for (_, plan) in plans { #expect(plan.contains { $0.contains("escalations_status") }, "\(plan)") }
        }
    }

    @Test func countingADatasetsTasksReadsOnlyItsIndexEntries() async throws {
        try await withBusyStore { store, database in
            var count = 0
            let plans = try await expectEachIndexed(database) { count = try await store.countLabelTasks(dataset: "d1") }
            #expect(count == 15)
            #expect(plans.first?.plan.contains { $0.contains("COVERING INDEX label_tasks_") && $0.contains("dataset=?") } == true, "\(plans)")
        }
    }

    @Test func claimingAndListingDueOutboxRowsUnderLeasesAreIndexed() async throws {
        try await withBusyStore { store, database in
            let now = Date.distantFuture
            var due: [OutboxMessage] = []
            let listing = try await expectEachIndexed(database) { due = try await store.dueOutbox(now: now, kinds: Set(OutboxKind.allCases), limit: 50) }
            #expect(!due.isEmpty)
            let plan = try #require(listing.first?.plan)
            #expect(plan.contains { $0.contains("outbox_due") }, "\(plan)")
            // The earlier-row check per entity seeks the entity's rows through an index.
            #expect(plan.contains { $0.contains("SEARCH e") && $0.contains("entity_kind=? AND entity_id=?") }, "\(plan)")

            let claim = try await expectEachIndexed(database) {
                _ = try await store.claimOutbox(try #require(due.last).id, until: now, now: Date())
            }
            #expect(claim.count == 1)
            #expect(claim.first?.plan.contains { $0.contains("SEARCH outbox USING INTEGER PRIMARY KEY") } == true, "\(claim)")
        }
    }

    @Test func migrationsAreRecordedOnceAcrossReopens() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-migrate")
        defer { directory.remove() }
        let path = directory.file("handoff.sqlite")
        for _ in 0..<3 {
            let store = try await SQLWorkflowStore(database: SQLiteDatabase(path: path))
            try await store.close()
        }
        let database = try SQLiteDatabase(path: path)
        let applied = try await database.read("SELECT name FROM schema_migrations ORDER BY name").compactMap { $0["name"].string }
        #expect(applied == Schema.migrations.map(\.name))
        let tables = try await database.read("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0["name"].string }
        for table in ["approvals", "review_items", "reviews", "escalations", "feedback", "corrections", "correction_terms",
                      "label_tasks", "labels", "audit", "outbox", "timers", "inbox", "id_counters"] {
            #expect(tables.contains(table), "missing table \(table)")
        }
        #expect(try await database.read("PRAGMA journal_mode").first?["journal_mode"].string == "wal")
        try await database.close()
    }

    /// Label tasks written before migration 0009 have no slots or groups columns yet: opening the store
    /// fills them from each row's data (a page at a time), after which "next task" finds them.
    @Test func labelTasksFromBeforeTheirIndexColumnsAreReindexedOnOpen() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-reindex")
        defer { directory.remove() }
        let path = directory.file("handoff.sqlite")
        let f = Fixtures()
        var store = try await SQLWorkflowStore(database: SQLiteDatabase(path: path))
        for id in 1...1_200 { try await store.commit(.inserting(try f.labelTask(Int64(id), overlap: 2)), now: f.now) }
        try await store.close()
        // As a database from before the migration looks: the new columns at their defaults.
        let raw = try SQLiteDatabase(path: path)
        _ = try await raw.write([WriteStep(SQLStatement("UPDATE label_tasks SET labeler_groups = NULL, slots = 0"))])
        try await raw.close()

        store = try await SQLWorkflowStore(database: SQLiteDatabase(path: path))
        let left = try await store.database.scalar("SELECT COUNT(*) FROM label_tasks WHERE labeler_groups IS NULL OR slots <> 2")
        #expect(left == 0, "every task re-indexed")
        #expect(try await store.database.scalar("SELECT COUNT(*) FROM label_tasks WHERE labeler_groups = '|*|'") == 1_200)
        let next = try await store.nextLabelTask(dataset: "sentiment", labeler: "slack:alice", groups: [], now: f.now,
                                                 holdUntil: f.now.addingTimeInterval(60))
        #expect(next?.id == LabelTaskID(1))
        try await store.close()
    }
}
