import Foundation
import HandoffCore

/// Headline counts for the dashboard overview and the metrics endpoint; each is one indexed count.
package struct DashboardCounts: Hashable, Sendable {
    package var pendingApprovals: Int
    package var openEscalations: Int
    package var breachedEscalations: Int
    /// Review items past their SLA that are not completed yet.
    package var openSLABreaches: Int

    package init(pendingApprovals: Int, openEscalations: Int, breachedEscalations: Int, openSLABreaches: Int) {
        self.pendingApprovals = pendingApprovals
        self.openEscalations = openEscalations
        self.breachedEscalations = breachedEscalations
        self.openSLABreaches = openSLABreaches
    }
}

/// Review items created and completed per time bucket and queue, over a window: with the current
/// depth, enough to draw queue depth over time without reading the items themselves.
package struct QueueActivity: Hashable, Sendable {
    /// `created[queue][bucket]`, buckets counted from the window start.
    package var created: [String: [Int: Int]]
    package var completed: [String: [Int: Int]]

    package init(created: [String: [Int: Int]] = [:], completed: [String: [Int: Int]] = [:]) {
        self.created = created
        self.completed = completed
    }
}

/// A decided approval's timing, for the time-to-decide histogram.
package struct DecisionTiming: Hashable, Sendable {
    package var createdAt: Date
    package var decidedAt: Date

    package var seconds: Double { max(0, decidedAt.timeIntervalSince(createdAt)) }
}

/// Queries behind the web dashboard and `/metrics`. Every one is an indexed lookup, an aggregate, or a
/// page with a LIMIT: nothing reads a whole table into memory.
extension SQLWorkflowStore {
    /// Pending approvals, open and breached escalations, and open SLA breaches: four indexed counts
    /// (the indexes are in the migrations, `0003_dashboard` among them).
    package func dashboardCounts() async throws -> DashboardCounts {
        DashboardCounts(
            pendingApprovals: Int(try await database.scalar("SELECT COUNT(*) FROM approvals WHERE status = 'pending'")),
            openEscalations: Int(try await database.scalar("SELECT COUNT(*) FROM escalations WHERE status IN ('open', 'claimed')")),
            breachedEscalations: Int(try await database.scalar(
                "SELECT COUNT(*) FROM escalations WHERE status IN ('open', 'claimed') AND breached = 1")),
            openSLABreaches: Int(try await database.scalar(
                "SELECT COUNT(*) FROM review_items WHERE sla_breached = 1 AND status <> 'completed'")))
    }

    /// The most recently decided approvals (approved, rejected, needs revision), newest decision first.
    package func recentDecisions(limit: Int) async throws -> [Approval] {
        try await database.read(
            "SELECT version, data FROM approvals WHERE decided_at IS NOT NULL ORDER BY decided_at DESC, id DESC LIMIT ?",
            [SQLValue(max(0, min(limit, 1000)))]
        ).map { try Approval.decode($0).value }
    }

    /// Creation and decision times of the most recent decisions (at most `limit`).
    package func recentDecisionTimings(limit: Int) async throws -> [DecisionTiming] {
        try await database.read(
            "SELECT created_at, decided_at FROM approvals WHERE decided_at IS NOT NULL ORDER BY decided_at DESC, id DESC LIMIT ?",
            [SQLValue(max(0, min(limit, 10_000)))]
        ).map { DecisionTiming(createdAt: try $0.date("created_at"), decidedAt: try $0.date("decided_at")) }
    }

    /// Items created and completed per bucket since `since`, per queue.
    package func queueActivity(since: Date, bucketSeconds: Int) async throws -> QueueActivity {
        let start = SQLValue(since)
        let width = SQLValue(max(1, bucketSeconds) * 1000)
        var activity = QueueActivity()
        for row in try await database.read(
            "SELECT queue, (created_at - ?) / ? AS bucket, COUNT(*) AS n FROM review_items WHERE created_at >= ? GROUP BY queue, bucket",
            [start, width, start])
        {
            activity.created[try row.string("queue"), default: [:]][Int(try row.int("bucket"))] = Int(try row.int("n"))
        }
        for row in try await database.read(
            """
            SELECT queue, (completed_at - ?) / ? AS bucket, COUNT(*) AS n FROM review_items
            WHERE completed_at IS NOT NULL AND completed_at >= ? GROUP BY queue, bucket
            """, [start, width, start])
        {
            activity.completed[try row.string("queue"), default: [:]][Int(try row.int("bucket"))] = Int(try row.int("n"))
        }
        return activity
    }

    /// How many reviews of a queue took less than each bound (milliseconds), plus the total: one pass
    /// over the queue's (queue, decide_ms) index.
    package func reviewDecideCounts(queue: String, boundsMilliseconds: [Int64]) async throws -> (below: [Int], total: Int) {
        guard !boundsMilliseconds.isEmpty else {
            return ([], Int(try await database.scalar("SELECT COUNT(*) FROM reviews WHERE queue = ?", [.text(queue)])))
        }
        let columns = boundsMilliseconds.indices.map { "SUM(CASE WHEN decide_ms < ? THEN 1 ELSE 0 END) AS b\($0)" }
            .joined(separator: ", ")
        let row = try await database.read(
            "SELECT COUNT(*) AS total, \(columns) FROM reviews WHERE queue = ?",
            boundsMilliseconds.map(SQLValue.integer) + [.text(queue)]
        ).first
        let below = boundsMilliseconds.indices.map { Int(row?["b\($0)"].int ?? 0) }
        return (below, Int(row?["total"].int ?? 0))
    }

    /// How many tasks of a dataset this labeler labeled, and how many tasks the dataset has.
    package func labelProgress(dataset: String, labeler: ActorID) async throws -> (labeled: Int, tasks: Int) {
        let labeled = try await database.scalar(
            "SELECT COUNT(*) FROM labels WHERE labeler = ? AND dataset = ?", [.text(labeler.rawValue), .text(dataset)])
        let tasks = try await database.scalar("SELECT COUNT(*) FROM label_tasks WHERE dataset = ?", [.text(dataset)])
        return (Int(labeled), Int(tasks))
    }

    /// Dataset names in order, at most `limit`.
    package func datasets(limit: Int) async throws -> [String] {
        try await database.read(
            "SELECT DISTINCT dataset FROM label_tasks ORDER BY dataset LIMIT ?", [SQLValue(max(0, min(limit, 1000)))]
        ).compactMap { $0["dataset"].string }
    }
}
