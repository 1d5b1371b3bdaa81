import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import Testing

/// One backend the store contract suite runs against. Each backend makes empty databases; a database
/// can be opened, closed and opened again (a restart) and sees what was written before.
struct StoreFactory: Sendable, CustomTestStringConvertible {
    var name: String
    var makeDatabase: @Sendable () async throws -> TestDatabase

    var testDescription: String { name }

    /// Every backend the contract runs against. A PostgreSQL backend adds its entry here.
    static let all: [StoreFactory] = [.sqlite]

    /// A real SQLite file in a fresh temporary directory.
    static let sqlite = StoreFactory(name: "SQLite") {
        let directory = try TemporaryDirectory(prefix: "handoff-store")
        let path = directory.file("handoff.sqlite")
        return TestDatabase(
            open: { try await SQLWorkflowStore(database: SQLiteDatabase(path: path)) },
            destroy: { directory.remove() })
    }
}

/// An empty database of one backend.
struct TestDatabase: Sendable {
    /// Opens a store on the database (migrating it); call again after `close()` to simulate a restart.
    var open: @Sendable () async throws -> any WorkflowStore
    /// Removes the database.
    var destroy: @Sendable () async -> Void

    /// Runs `body` with a fresh store and removes the database afterwards.
    func with<T>(_ body: (any WorkflowStore) async throws -> T) async throws -> T {
        let store = try await open()
        do {
            let result = try await body(store)
            try? await store.close()
            await destroy()
            return result
        } catch {
            try? await store.close()
            await destroy()
            throw error
        }
    }
}

extension StoreFactory {
    /// Runs `body` against a fresh store of this backend.
    func withStore<T>(_ body: (any WorkflowStore) async throws -> T) async throws -> T {
        try await makeDatabase().with(body)
    }

    /// Runs `body` with a fresh database it may open and close several times; removes it afterwards.
    func withDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        let database = try await makeDatabase()
        do {
            let result = try await body(database)
            await database.destroy()
            return result
        } catch {
            await database.destroy()
            throw error
        }
    }
}

/// Entity fixtures built through the core machines, the way the workflow builds them.
struct Fixtures {
    let clock: ManualClock

    init(clock: ManualClock = ManualClock()) { self.clock = clock }

    var now: Date { clock.now() }

    func approval(_ id: Int64, action: String = "deploy", callbackURL: String? = nil) throws -> Transition<Approval> {
        try ApprovalMachine.create(
            id: ApprovalID(id),
            request: ApprovalRequest(action: action, arguments: .object(["service": .string("api"), "version": .int(id)]),
                                     requester: "key:agent", callbackURL: callbackURL),
            policy: ApprovalPolicy(expiresAfter: .hours(1)), now: now)
    }

    func reviewItem(_ id: Int64, queue: String = "support", priority: Priority = .medium, reviewsRequired: Int = 1) throws -> Transition<ReviewItem> {
        try ReviewMachine.enqueue(
            id: ReviewItemID(id),
            request: ReviewItemRequest(queue: queue, priority: priority,
                                       content: ReviewContent(query: "question \(id)", answer: "answer \(id)", confidence: 0.4)),
            queue: QueueConfig(reviewsRequired: reviewsRequired, reviewers: ["*"]), by: "key:agent", now: now)
    }

    func escalation(_ id: Int64) throws -> Transition<Escalation> {
        try EscalationMachine.open(
            id: EscalationID(id), request: EscalationRequest(query: "charged twice", trigger: .manual("test"), origin: "slack:C1/1.2"),
            config: EscalationConfig(), by: "slack:U1", now: now)
    }

    func feedback(_ id: Int64, channel: String = "support") throws -> Transition<FeedbackRequest> {
        try FeedbackMachine.request(
            id: FeedbackID(id), input: FeedbackRequestInput(kind: .choice(options: ["good", "bad"]), prompt: "Helpful?", channel: channel),
            config: FeedbackConfig(), by: "key:agent", now: now)
    }

    func correction(_ id: Int64, query: String, original: String = "Returns within 30 days.",
                    corrected: String = "Returns within 14 days.") throws -> Transition<Correction> {
        try CorrectionMachine.record(id: CorrectionID(id), input: CorrectionInput(query: query, original: original, corrected: corrected),
                                     by: "slack:alice", now: now)
    }

    func labelTask(_ id: Int64, dataset: String = "sentiment", overlap: Int = 3) throws -> Transition<LabelTask> {
        try LabelingMachine.create(
            id: LabelTaskID(id),
            input: LabelTaskInput(dataset: dataset, type: .choice(options: ["positive", "negative", "neutral"]),
                                  content: "text \(id)", overlap: overlap, labelers: ["*"]),
            by: "key:loader", now: now)
    }
}

extension ChangeSet {
    /// A change set inserting one new entity with its audit and effects turned into timer and outbox rows.
    static func inserting<E: StoredEntity>(_ t: Transition<E>, event: EventKey? = nil) throws -> ChangeSet {
        var cs = ChangeSet(eventKey: event)
        cs.inserts.append(try t.entity.row())
        cs.audit = t.audit
        cs.addEffects(t.effects, of: t.entity.ref)
        return cs
    }

    /// A change set updating an entity read at `version`.
    /// A claim's change set, with its claim record (as the workflow writes it).
    static func claiming(_ t: Transition<ReviewItem>, of item: ReviewItem, from version: Int64) throws -> ChangeSet {
        var cs = try updating(t, from: version)
        cs.claims += ClaimRecord(t, from: item).map { [$0] } ?? []
        return cs
    }

    static func updating<E: StoredEntity>(_ t: Transition<E>, from version: Int64, event: EventKey? = nil,
                                          firedTimer: DueTimer? = nil) throws -> ChangeSet {
        var cs = ChangeSet(eventKey: event, firedTimer: firedTimer)
        cs.updates.append((try t.entity.row(), version))
        cs.audit = t.audit
        cs.addEffects(t.effects, of: t.entity.ref)
        return cs
    }

    mutating func addEffects(_ effects: [Effect], of ref: EntityRef) {
        for effect in effects {
            switch effect {
            case .schedule(let kind, let at): timers.append(.schedule(ref, kind, at: at))
            case .cancel(let kind): timers.append(.cancel(ref, kind))
            case .postCard(let destination): outbox.append(OutboxDraft(kind: .postCard, entity: ref, destination: destination))
            case .updateCards: outbox.append(OutboxDraft(kind: .updateCards, entity: ref))
            case .webhook: outbox.append(OutboxDraft(kind: .webhook, entity: ref, destination: "https://hook.example"))
            case .notify: outbox.append(OutboxDraft(kind: .notify, entity: ref))
            }
        }
    }
}
