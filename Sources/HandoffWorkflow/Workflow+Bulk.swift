import Foundation
import HandoffCore
import HandoffStore

/// Bulk loads: many entities checked one by one by the same core rules as the single calls, written
/// in one transaction per call (one disk sync instead of one per entity). For imports and for filling
/// large queues or datasets; callers choose the batch size (a few thousand per call is a good size).
extension Workflow {
    /// Enqueues review items as ``enqueue(_:by:idempotencyKey:)`` does, all or nothing.
    package func enqueue(batch requests: [ReviewItemRequest], by actor: ActorID) async throws -> [ReviewItem] {
        guard !requests.isEmpty else { return [] }
        let now = clock.now()
        let ids = try await store.reserveIDs(.reviewItem, count: requests.count)
        var items: [ReviewItem] = []
        var sets: [ChangeSet] = []
        items.reserveCapacity(requests.count)
        sets.reserveCapacity(requests.count)
        for (request, id) in zip(requests, ids) {
            let t = try ReviewMachine.enqueue(id: ReviewItemID(id), request: request, queue: try queueConfig(request.queue), by: actor, now: now)
            sets.append(try changeSet(t, expectedVersion: nil, now: now))
            items.append(t.entity)
        }
        try await commitBatch(sets, now: now)
        return items
    }

    /// Creates approvals as ``requestApproval(_:idempotencyKey:)`` does (without idempotency keys), all or nothing.
    package func requestApprovals(batch requests: [ApprovalRequest]) async throws -> [Approval] {
        guard !requests.isEmpty else { return [] }
        let now = clock.now()
        let ids = try await store.reserveIDs(.approval, count: requests.count)
        var approvals: [Approval] = []
        var sets: [ChangeSet] = []
        for (request, id) in zip(requests, ids) {
            let t = try ApprovalMachine.create(id: ApprovalID(id), request: request, policy: try approvalPolicy(named: request.policyName), now: now)
            sets.append(try changeSet(t, expectedVersion: nil, now: now))
            approvals.append(t.entity)
        }
        try await commitBatch(sets, now: now)
        return approvals
    }

    /// Creates labeling tasks as ``createLabelTask(_:by:idempotencyKey:)`` does, all or nothing.
    package func createLabelTasks(batch inputs: [LabelTaskInput], by actor: ActorID) async throws -> [LabelTask] {
        guard !inputs.isEmpty else { return [] }
        let now = clock.now()
        let ids = try await store.reserveIDs(.labelTask, count: inputs.count)
        var tasks: [LabelTask] = []
        var sets: [ChangeSet] = []
        for (input, id) in zip(inputs, ids) {
            let t = try LabelingMachine.create(id: LabelTaskID(id), input: input, by: actor, now: now)
            sets.append(try changeSet(t, expectedVersion: nil, now: now))
            tasks.append(t.entity)
        }
        try await commitBatch(sets, now: now)
        for dataset in Set(tasks.map(\.dataset)) { agreements.changed(dataset) }
        return tasks
    }

    /// Imports labels given elsewhere, each checked as ``addLabel(_:json:by:event:)`` checks it (labeler
    /// allowed, one label per labeler and task, no more than the task's overlap), applied in order, all
    /// or nothing. A task another writer changes meanwhile fails the batch with a conflict.
    package func addLabels(batch labels: [(task: LabelTaskID, value: LabelValue, by: Actor)]) async throws -> [LabelTask] {
        guard !labels.isEmpty else { return [] }
        let now = clock.now()
        let directory = policy.directory
        var order: [LabelTaskID] = []
        var byTask: [LabelTaskID: [(value: LabelValue, by: Actor)]] = [:]
        for label in labels {
            if byTask[label.task] == nil { order.append(label.task) }
            byTask[label.task, default: []].append((label.value, label.by))
        }
        var sets: [ChangeSet] = []
        var tasks: [LabelTask] = []
        for id in order {
            let loaded = try await loadTask(id)
            var task = loaded.value
            var audit: [AuditEvent] = []
            var added: [(label: Label, dataset: String)] = []
            var labelers: Set<ActorID> = []
            var last: Transition<LabelTask>?
            for (value, actor) in byTask[id] ?? [] {
                let already = labelers.contains(actor.id) ? true : try await store.hasLabel(task: id, labeler: actor.id)
                let (t, label) = try LabelingMachine.label(task, value: value, by: actor, alreadyLabeled: already, directory: directory, now: now)
                labelers.insert(actor.id)
                audit += t.audit
                added.append((label, task.dataset))
                task = t.entity
                last = t
            }
            guard let last else { continue }
            var cs = try changeSet(last, expectedVersion: loaded.version, now: now)
            cs.audit = audit
            cs.labels = added
            sets.append(cs)
            tasks.append(task)
        }
        try await commitBatch(sets, now: now)
        for dataset in Set(tasks.map(\.dataset)) { agreements.changed(dataset) }
        return tasks
    }

    /// One transaction for all change sets; listeners hear of every entity afterwards.
    private func commitBatch(_ sets: [ChangeSet], now: Date) async throws {
        do {
            try await store.commit(batch: sets, now: now)
        } catch let error as StoreError {
            switch error {
            case .conflict(let what): throw WorkflowError(code: .conflict, message: "\(what) changed during a bulk load; nothing was written")
            case .uniqueViolation(let what): throw WorkflowError.wrongState("\(what) already exists; nothing was written")
            case .duplicate: throw WorkflowError.duplicate("an event in the batch was already applied; nothing was written")
            case .corrupt, .unavailable: throw error
            }
        }
        notify(sets.flatMap { $0.inserts.map(\.ref) + $0.updates.map(\.row.ref) })
    }
}
