import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import Synchronization
import Testing

/// Passes statements to a real SQLite database and remembers every read, so a test can ask SQLite
/// how it runs exactly the SQL the store sends.
final class RecordingDatabase: SQLDatabase {
    let inner: SQLiteDatabase
    private let reads = Mutex<[SQLStatement]>([])

    init(_ inner: SQLiteDatabase) { self.inner = inner }

    var dialect: SQLDialect { inner.dialect }

    func read(_ statement: SQLStatement) async throws -> [SQLRow] {
        reads.withLock { $0.append(statement) }
        return try await inner.read(statement)
    }

    func write(_ steps: [WriteStep]) async throws -> [WriteResult] { try await inner.write(steps) }

    func close() async throws { try await inner.close() }

    /// The reads made while `body` ran.
    func recording(_ body: () async throws -> Void) async throws -> [SQLStatement] {
        reads.withLock { $0.removeAll() }
        try await body()
        return reads.withLock { $0 }
    }

    /// SQLite's plan for a statement, one line per step (`SEARCH t USING INDEX …`, `SCAN t`, …).
    func plan(_ statement: SQLStatement) async throws -> [String] {
        try await inner.read(SQLStatement("EXPLAIN QUERY PLAN " + statement.sql, statement.binds)).compactMap { $0["detail"].string }
    }
}

@Suite("SQLite query plans and migrations")
struct SQLiteQueryPlanTests {
    /// Opens a store on a SQLite file with some rows in every table the hot queries touch.
    func withRecordedStore(_ body: (SQLWorkflowStore, RecordingDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-plan")
        defer { directory.remove() }
        let database = RecordingDatabase(try SQLiteDatabase(path: directory.file("handoff.sqlite")))
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
    func expectIndexed(_ statements: [SQLStatement], uses index: String, in database: RecordingDatabase,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(statements.count == 1, "expected one query, got \(statements.map(\.sql))", sourceLocation: sourceLocation)
        for statement in statements {
            let plan = try await database.plan(statement)
            let fullScans = plan.filter { $0.hasPrefix("SCAN") && !$0.contains("USING INDEX") && !$0.contains("USING COVERING INDEX") }
            #expect(fullScans.isEmpty, "full table scan in \(plan) for \(statement.sql)", sourceLocation: sourceLocation)
            #expect(plan.contains { $0.contains(index) }, "\(index) unused: \(plan)", sourceLocation: sourceLocation)
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "sorts in memory: \(plan)", sourceLocation: sourceLocation)
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
            let inDataset = try await database.recording { _ = try await store.nextLabelTask(dataset: "sentiment", labeler: "slack:alice") }
            try await expectIndexed(inDataset, uses: "label_tasks_next", in: database)
            let anywhere = try await database.recording { _ = try await store.nextLabelTask(dataset: nil, labeler: "slack:alice") }
            try await expectIndexed(anywhere, uses: "label_tasks_open", in: database)
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
}
