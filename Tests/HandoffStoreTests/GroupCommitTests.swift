import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// Group commit in ``SQLiteDatabase``: writes that arrive together share one transaction, each in its
/// own savepoint, and nobody hears "done" before the shared COMMIT.
@Suite("SQLite group commit")
struct GroupCommitTests {
    /// A database with a `t (k TEXT PRIMARY KEY, n INTEGER)` table; removed afterwards.
    func withDatabase(_ body: (SQLiteDatabase, String) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-group-commit")
        defer { directory.remove() }
        let path = directory.file("g.sqlite")
        let database = try SQLiteDatabase(path: path)
        _ = try await database.write([WriteStep(SQLStatement("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)"))])
        do {
            try await body(database, path)
            try await database.close()
        } catch {
            try? await database.close()
            throw error
        }
    }

    static func insert(_ key: String, _ n: Int = 1) -> WriteStep {
        WriteStep(SQLStatement("INSERT INTO t (k, n) VALUES (?, ?)", [.text(key), SQLValue(n)]))
    }

    @Test("a failing write in a shared transaction rolls back only itself")
    func failingWriteIsIsolated() async throws {
        try await withDatabase { database, _ in
            // Keep the writer busy with a slow statement, so the next writes queue up and share one transaction.
            let slow = Task {
                try await database.write([WriteStep(SQLStatement(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000) SELECT COUNT(*) FROM c"))])
            }
            try await Task.sleep(for: .milliseconds(100))
            let before = database.commitStatistics
            let first = Task { try await database.write([Self.insert("a")]) }
            // Its first step lands, its second breaks an expectation: both must be undone, and only for it.
            let failing = Task {
                try await database.write([
                    Self.insert("b1"),
                    WriteStep(SQLStatement("UPDATE t SET n = 2 WHERE k = 'nobody'"), expect: .exactlyOne(.conflict("row nobody"))),
                ])
            }
            // SQLite's own error (a primary key violated by the second insert) also undoes only this write.
            let duplicateKey = Task { try await database.write([Self.insert("a2"), Self.insert("a2")]) }
            let last = Task { try await database.write([Self.insert("c"), Self.insert("d", 2)]) }
            #expect(try await first.value.map(\.changes) == [1])
            await #expect(throws: StoreError.conflict("row nobody")) { _ = try await failing.value }
            await #expect(throws: (any Error).self) { _ = try await duplicateKey.value }
            #expect(try await last.value.map(\.changes) == [1, 1])
            _ = try await slow.value

            let rows = try await database.read("SELECT k, n FROM t ORDER BY k").map { "\(try $0.string("k"))=\(try $0.int("n"))" }
            #expect(rows == ["a=1", "c=1", "d=2"])
            let after = database.commitStatistics
            #expect(after.writes - before.writes == 5, "the slow write and the four queued ones")
            #expect(after.transactions - before.transactions == 2, "the four queued writes shared one transaction: \(before) → \(after)")
        }
    }

    @Test("concurrent writes all land, and each is visible to another connection when its call returns")
    func concurrentWritesAllLand() async throws {
        try await withDatabase { database, path in
            let observer = try SQLiteDatabase(path: path)
            let before = database.commitStatistics
            let writers = 200
            let seen = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<writers {
                    group.addTask {
                        _ = try await database.write([Self.insert("k\(i)", i)])
                        // Durable means committed: another connection reads it the moment the call returns.
                        return try await observer.scalar("SELECT COUNT(*) FROM t WHERE k = ?", [.text("k\(i)")]) == 1
                    }
                }
                var all: [Bool] = []
                for try await s in group { all.append(s) }
                return all
            }
            try await observer.close()
            #expect(seen.count == writers && seen.allSatisfy { $0 })
            #expect(try await database.scalar("SELECT COUNT(*) FROM t") == Int64(writers))
            #expect(try await database.scalar("SELECT SUM(n) FROM t") == Int64((0..<writers).reduce(0, +)))
            let after = database.commitStatistics
            #expect(after.writes - before.writes == writers)
            #expect(after.transactions - before.transactions < writers, "concurrent writes shared transactions: \(before) → \(after)")
        }
    }

    @Test("checkpoints run beside the commits: no commit fails or waits for them, and every write lands")
    func backgroundCheckpoints() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-checkpoint")
        defer { directory.remove() }
        let path = directory.file("c.sqlite")
        var configuration = SQLiteDatabase.Configuration()
        // Tiny thresholds, so background and inline checkpoints run (and collide) all the time.
        configuration.backgroundCheckpointPages = 4
        configuration.inlineCheckpointPages = 12
        let database = try SQLiteDatabase(path: path, configuration: configuration)
        _ = try await database.write([WriteStep(SQLStatement("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL, pad TEXT NOT NULL)"))])
        let writers = 400
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<writers {
                group.addTask {
                    _ = try await database.write([WriteStep(SQLStatement(
                        "INSERT INTO t (k, n, pad) VALUES (?, ?, ?)", [.text("k\(i)"), SQLValue(i), .text(String(repeating: "x", count: 3000))]))])
                }
            }
            try await group.waitForAll()
        }
        #expect(database.backgroundCheckpoints > 0)
        try await database.close()
        let reopened = try SQLiteDatabase(path: path)
        #expect(try await reopened.scalar("SELECT COUNT(*) FROM t") == Int64(writers))
        #expect(try await reopened.read("PRAGMA integrity_check").first?.values.first?.string == "ok")
        try await reopened.close()
    }

    @Test("two concurrent decisions on one approval in one shared transaction: exactly one wins")
    func compareAndSetInsideABatch() async throws {
        try await WorkflowHarness.with { _, workflow in
            let approvals = try await workflow.requestApprovals(batch: (0..<20).map { i in
                ApprovalRequest(action: "deploy", arguments: .object(["n": .int(Int64(i))]), requester: ActorID("key:agent"))
            })
            #expect(approvals.count == 20)
            let outcomes = try await withThrowingTaskGroup(of: (ApprovalID, Bool).self) { group in
                for approval in approvals {
                    for who in [Who.alice, Who.bob] {
                        group.addTask {
                            do {
                                _ = try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: who)
                                return (approval.id, true)
                            } catch let error as WorkflowError where error.code == .wrongState {
                                return (approval.id, false)
                            }
                        }
                    }
                }
                var wins: [ApprovalID: Int] = [:]
                for try await (id, won) in group where won { wins[id, default: 0] += 1 }
                return wins
            }
            #expect(outcomes.count == 20 && outcomes.values.allSatisfy { $0 == 1 }, "one winner per approval: \(outcomes)")
            for approval in approvals {
                let stored = try await workflow.approval(approval.id)
                #expect(stored.status.name == "approved")
                #expect(try await workflow.store.audit(of: approval.ref).count == 2, "created + one decision")
            }
        }
    }

    @Test("bulk loads check every entity and write all or nothing")
    func bulkLoads() async throws {
        try await WorkflowHarness.with { _, workflow in
            let requests = (0..<500).map { i in
                ReviewItemRequest(priority: i % 100 == 0 ? .critical : .low, content: ReviewContent(title: "item \(i)"))
            }
            let items = try await workflow.enqueue(batch: requests, by: ActorID("key:loader"))
            #expect(items.count == 500 && Set(items.map(\.id)).count == 500)
            #expect(try await workflow.queueStats(queue: "default").pending == 500)
            let claimed = try #require(try await workflow.claimNext(queue: "default", by: Who.alice))
            #expect(claimed.priority == .critical && claimed.id == items[0].id, "priority first, then oldest")

            // One bad request refuses the whole batch: nothing of it is written.
            var bad = requests
            bad[7] = ReviewItemRequest(content: ReviewContent(title: " "))
            await #expect(throws: WorkflowError.self) { _ = try await workflow.enqueue(batch: bad, by: ActorID("key:loader")) }
            #expect(try await workflow.queueStats(queue: "default").pending == 499)

            let tasks = try await workflow.createLabelTasks(batch: (0..<3).map { i in
                LabelTaskInput(dataset: "bulk", type: .choice(options: ["yes", "no"]), content: "task \(i)", overlap: 2)
            }, by: ActorID("key:loader"))
            let labels: [(task: LabelTaskID, value: LabelValue, by: Actor)] = tasks.flatMap { t in
                [(t.id, LabelValue.choice("yes"), Who.alice), (t.id, LabelValue.choice(t.id == tasks[0].id ? "no" : "yes"), Who.bob)]
            }
            let labeled = try await workflow.addLabels(batch: labels)
            #expect(labeled.allSatisfy { $0.status == .complete && $0.labelCount == 2 })
            #expect(try await workflow.store.labels(task: tasks[0].id).count == 2)
            // A third label on a complete task (overlap 2) is refused, and the batch with it writes nothing.
            await #expect(throws: WorkflowError.self) {
                _ = try await workflow.addLabels(batch: [(tasks[1].id, .choice("yes"), Who.carol)])
            }
            #expect(try await workflow.store.labels(task: tasks[1].id).count == 2)
            let agreement = try await workflow.agreement(dataset: "bulk")
            #expect(agreement.labels == 6 && agreement.tasks == 3)
        }
    }
}
