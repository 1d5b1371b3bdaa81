import Foundation
import HandoffCore
import HandoffStore
import Logging
import Synchronization

/// The workflow service: every act (decide, claim, escalate, label, …) runs here as
/// load → pure core transition → one atomic change set. Authorization and state rules live in the core;
/// durability, idempotency and exactly-once timers come from the store. CLI, HTTP API and chat all call it.
package final class Workflow: Sendable {
    package struct Configuration: Sendable {
        package var policy: WorkflowPolicy
        /// How often a lost compare-and-set is re-evaluated against the new state before giving up.
        package var maxConflictRetries: Int = 8
        /// Ids reserved per round trip. 1 keeps ids dense (a CLI makes one entity per process); bulk
        /// loads reserve their own blocks.
        package var idBlockSize: Int = 1
        /// How long inbound chat event keys are remembered (redeliveries come within minutes).
        package var eventKeyRetention: Span = .hours(24)
        /// How long API idempotency keys are honoured (agents may retry much later than chat platforms).
        package var idempotencyKeyRetention: Span = .hours(24 * 30)
        /// How long a timer whose handling failed waits before it is tried again.
        package var failedTimerDelay: Span = .minutes(1)
        /// How long a task handed out by "next task" is held for its labeler (asking again renews it;
        /// labeling it ends it), so labelers asking at once are handed different tasks.
        package var labelHold: Span = .minutes(10)

        package init(policy: WorkflowPolicy = WorkflowPolicy()) { self.policy = policy }
    }

    package let store: any WorkflowStore
    package let clock: any WorkflowClock
    package let configuration: Configuration
    package let logger: Logger
    let ids: IDAllocator
    /// Recently computed dataset agreement (the dashboard's stats page), dropped when a dataset changes.
    let agreements = AgreementCache()
    private let listeners = Mutex<[UInt64: @Sendable ([EntityRef]) -> Void]>([:])
    private let nextListener = Atomic<UInt64>(0)

    package var policy: WorkflowPolicy { configuration.policy }

    package init(store: any WorkflowStore, clock: any WorkflowClock = SystemClock(), configuration: Configuration,
                 logger: Logger = Logger(label: "handoff.workflow"))
    {
        self.store = store
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.ids = IDAllocator(store: store, blockSize: configuration.idBlockSize)
    }

    // MARK: Commit listeners (long-poll waiters, dashboards)

    /// Calls `listener` after every commit with the entities it changed. Returns a token for ``removeListener(_:)``.
    @discardableResult
    package func addListener(_ listener: @escaping @Sendable ([EntityRef]) -> Void) -> UInt64 {
        let token = nextListener.add(1, ordering: .relaxed).newValue
        listeners.withLock { $0[token] = listener }
        return token
    }

    package func removeListener(_ token: UInt64) {
        _ = listeners.withLock { $0.removeValue(forKey: token) }
    }

    func notify(_ refs: [EntityRef]) {
        guard !refs.isEmpty else { return }
        let current = listeners.withLock { Array($0.values) }
        for listener in current { listener(refs) }
    }

    // MARK: Plumbing

    func nextID(_ kind: EntityKind) async throws -> Int64 { try await ids.next(kind) }

    /// Commits one change set and tells listeners; store failures become workflow errors.
    func commit(_ changes: ChangeSet, now: Date) async throws {
        try await store.commit(changes, now: now)
        committed(changes)
    }

    /// One transition of one stored entity, in one write transaction: the event key is checked (a
    /// redelivery throws ``WorkflowError/Code/duplicate`` before anything else), the entity read, the core
    /// decides, and the change set is written — no other writer between the read and the write, one trip
    /// to the database. Listeners hear of it after the commit.
    func transition<E: StoredEntity & OutboxSubject>(
        _ type: E.Type, id: Int64, event: EventKey?, decide: @escaping @Sendable (E, Date) throws -> Transition<E>,
        record: @escaping @Sendable (Transition<E>, E, inout ChangeSet) -> Void = { _, _, _ in }
    ) async throws -> E {
        let ref = EntityRef(kind: E.kind, id: id)
        return try await retrying(ref) {
            let now = clock.now()
            let (changes, entity) = try await store.update(type, id: id, event: event, now: now) { [self] current in
                guard let current else { throw WorkflowError.notFound(ref) }
                let t = try decide(current.value, now)
                var changes = try changeSet(t, expectedVersion: current.version, event: event, now: now)
                record(t, current.value, &changes)
                return (changes, t.entity)
            }
            committed(changes)
            return entity
        }
    }

    /// Tells listeners what a committed change set changed.
    func committed(_ changes: ChangeSet) {
        var refs = changes.inserts.map(\.ref) + changes.updates.map(\.row.ref)
        if let timer = changes.firedTimer, refs.isEmpty { refs.append(timer.entity) }
        notify(refs)
    }

    /// Runs `body` again when a compare-and-set loses, so the core re-evaluates against the new state.
    func retrying<T: Sendable>(_ what: EntityRef?, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as StoreError {
                switch error {
                case .conflict where attempt + 1 < configuration.maxConflictRetries:
                    attempt += 1
                    continue
                case .conflict:
                    throw what.map(WorkflowError.conflict) ?? WorkflowError(code: .conflict, message: "too much contention; try again")
                case .duplicate:
                    throw WorkflowError.duplicate("this event was already applied")
                case .uniqueViolation(let what):
                    throw WorkflowError.wrongState("\(what) already exists")
                case .corrupt, .unavailable:
                    throw error
                }
            }
        }
    }

    /// Throws ``WorkflowError/Code/duplicate`` early when the event key was already applied.
    func checkNotApplied(_ event: EventKey?) async throws {
        guard let event else { return }
        if try await store.eventEntity(source: event.source, key: event.key) != nil {
            throw WorkflowError.duplicate("this event was already applied")
        }
    }

    /// The change set for one transition of one entity, with its effects as timer and outbox rows.
    func changeSet<E: StoredEntity & OutboxSubject>(
        _ t: Transition<E>, expectedVersion: Int64?, event: EventKey? = nil, firedTimer: DueTimer? = nil, now: Date
    ) throws -> ChangeSet {
        var event = event
        event?.entity = t.entity.ref
        var cs = ChangeSet(eventKey: event, firedTimer: firedTimer)
        let row = try t.entity.row()
        if let expectedVersion {
            cs.updates.append((row, expectedVersion))
        } else {
            cs.inserts.append(row)
        }
        cs.audit = t.audit
        try addEffects(t.effects, of: t.entity, to: &cs, now: now)
        return cs
    }

    func addEffects<E: OutboxSubject>(_ effects: [Effect], of entity: E, to cs: inout ChangeSet, now: Date) throws {
        let ref = entity.ref
        for effect in effects {
            switch effect {
            case .schedule(let kind, let at): cs.timers.append(.schedule(ref, kind, at: at))
            case .cancel(let kind): cs.timers.append(.cancel(ref, kind))
            case .postCard(let destination):
                cs.outbox.append(OutboxDraft(kind: .postCard, entity: ref, destination: destination))
            case .updateCards:
                // One pending "update" per entity is enough: the dispatcher renders the latest state.
                if !cs.outbox.contains(where: { $0.kind == .updateCards && $0.entity == ref }) {
                    cs.outbox.append(OutboxDraft(kind: .updateCards, entity: ref))
                }
            case .webhook(let event):
                guard let url = entity.callbackURL else { continue }
                cs.outbox.append(OutboxDraft(kind: .webhook, entity: ref, destination: url,
                                             payload: try entity.webhookPayload(event: event, at: now)))
            case .notify(let notice):
                let payload = NotifyPayload(audience: notice.audience, text: notice.text, origin: entity.origin)
                cs.outbox.append(OutboxDraft(kind: .notify, entity: ref, payload: try WireJSON.string(payload)))
            }
        }
    }

    /// Forgets event keys past retention (chat events after a day, API idempotency keys after 30 days)
    /// and lapsed holds on label tasks; called by the scheduler.
    package func pruneEventKeys() async throws -> Int {
        let now = clock.now()
        let keys = try await store.pruneEventKeys(
            before: now.addingTimeInterval(-configuration.eventKeyRetention.seconds),
            idempotencyBefore: now.addingTimeInterval(-configuration.idempotencyKeyRetention.seconds))
        // Lapsed holds on label tasks (they already count for nothing; this keeps the table small).
        return keys + (try await store.pruneLabelHolds(before: now))
    }
}

/// What a `notify` outbox row carries.
package struct NotifyPayload: Codable, Sendable, Hashable {
    package var audience: Notice.Audience
    package var text: String
    package var origin: String?
}

/// An entity whose effects can produce outbox rows.
package protocol OutboxSubject: Sendable {
    var ref: EntityRef { get }
    var callbackURL: String? { get }
    var origin: String? { get }
    func webhookPayload(event: String, at: Date) throws -> String
}

extension Approval: OutboxSubject {
    package var origin: String? { nil }
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: ApprovalView(self)))
    }
}

extension ReviewItem: OutboxSubject {
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: ReviewItemView(self)))
    }
}

extension Escalation: OutboxSubject {
    package var callbackURL: String? { nil }
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: EscalationView(self)))
    }
}

extension FeedbackRequest: OutboxSubject {
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: FeedbackView(self)))
    }
}

extension Correction: OutboxSubject {
    package var callbackURL: String? { nil }
    package var origin: String? { nil }
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: CorrectionView(self)))
    }
}

extension LabelTask: OutboxSubject {
    package var callbackURL: String? { nil }
    package var origin: String? { nil }
    package func webhookPayload(event: String, at: Date) throws -> String {
        try WireJSON.string(WebhookBody(event: event, occurredAt: at, data: LabelTaskView(self)))
    }
}

/// Hands out ids from blocks the store reserves durably.
actor IDAllocator {
    let store: any WorkflowStore
    let blockSize: Int
    private var blocks: [EntityKind: ClosedRange<Int64>] = [:]

    init(store: any WorkflowStore, blockSize: Int) {
        self.store = store
        self.blockSize = max(1, blockSize)
    }

    func next(_ kind: EntityKind) async throws -> Int64 {
        if let block = blocks[kind], !block.isEmpty {
            let id = block.lowerBound
            blocks[kind] = id == block.upperBound ? nil : (id + 1)...block.upperBound
            return id
        }
        let block = try await store.reserveIDs(kind, count: blockSize)
        blocks[kind] = block.lowerBound == block.upperBound ? nil : (block.lowerBound + 1)...block.upperBound
        return block.lowerBound
    }
}
