import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import Testing

/// Found by `handoff-bench startup`: with a million pending review items and no chat platform, every
/// item's card row waits in the outbox, and the webhook dispatcher's poll walked all of them (a quarter
/// of a core, idle). The poll for one kind now reads only that kind's due rows.
@Suite("Outbox polls at scale")
struct OutboxPollScalingTests {
    @Test("a one-kind poll searches that kind's rows; a several-kind poll keeps the due order without sorting")
    func pollPlans() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-outbox-poll")
        defer { directory.remove() }
        let database = PlanRecordingDatabase(try SQLiteDatabase(path: directory.file("o.sqlite")))
        let store = try await SQLWorkflowStore(database: database)
        let now = Date(timeIntervalSince1970: 1_767_225_600)
        var cards = ChangeSet()
        for id in 1...2000 {
            cards.outbox.append(OutboxDraft(kind: .postCard, entity: EntityRef(kind: .reviewItem, id: Int64(id)), destination: "reviews"))
        }
        try await store.commit(cards, now: now)
        var hook = ChangeSet()
        hook.outbox.append(OutboxDraft(kind: .webhook, entity: EntityRef(kind: .approval, id: 1), destination: "https://example.com/hook"))
        try await store.commit(hook, now: now.addingTimeInterval(1))

        var webhooks: [OutboxMessage] = []
        let single = try await database.recording {
            webhooks = try await store.dueOutbox(now: now.addingTimeInterval(10), kinds: [.webhook], limit: 10)
        }
        #expect(webhooks.map(\.kind) == [.webhook])
        let singlePlan = try await database.plan(try #require(single.first))
        #expect(singlePlan.contains { $0.contains("outbox_due_kind (kind=? AND next_attempt_at<?)") }, "\(singlePlan)")
        #expect(PlanRecordingDatabase.fullScans(singlePlan).isEmpty, "\(singlePlan)")

        var due: [OutboxMessage] = []
        let several = try await database.recording {
            due = try await store.dueOutbox(now: now.addingTimeInterval(10), kinds: Set(OutboxKind.allCases), limit: 5)
        }
        #expect(due.count == 5 && due.allSatisfy { $0.kind == .postCard }, "oldest first")
        let severalPlan = try await database.plan(try #require(several.first))
        #expect(severalPlan.contains { $0.contains("USING INDEX outbox_due (") }, "\(severalPlan)")
        #expect(!severalPlan.contains { $0.contains("TEMP B-TREE") }, "no sort of every due row: \(severalPlan)")
        try await store.close()
    }
}
