import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    func loadTask(_ id: LabelTaskID) async throws -> Versioned<LabelTask> {
        guard let found = try await store.labelTask(id) else { throw WorkflowError.notFound(EntityRef(kind: .labelTask, id: id.rawValue)) }
        return found
    }

    package func labelTask(_ id: LabelTaskID) async throws -> LabelTask { try await loadTask(id).value }

    package func labelTasks(dataset: String? = nil, limit: Int = 50, after: LabelTaskID? = nil) async throws -> [LabelTask] {
        try await store.labelTasks(dataset: dataset, limit: limit, after: after)
    }

    package func createLabelTask(_ input: LabelTaskInput, by actor: ActorID, idempotencyKey: EventKey? = nil) async throws -> LabelTask {
        let idempotencyKey = try bind(idempotencyKey, to: input)
        if let found = try await replay(idempotencyKey, kind: .labelTask, load: { try await store.labelTask(LabelTaskID($0)) }) {
            return found.value
        }
        let now = clock.now()
        let id = LabelTaskID(try await nextID(.labelTask))
        let t = try LabelingMachine.create(id: id, input: input, by: actor, now: now)
        if let winner = try await createOnce(t.entity.ref, key: idempotencyKey, load: { try await store.labelTask(LabelTaskID($0)) }, {
            try await commit(try changeSet(t, expectedVersion: nil, event: idempotencyKey, now: now), now: now)
        }) {
            return winner.value
        }
        agreements.changed(t.entity.dataset)
        return t.entity
    }

    /// The next task for this labeler, held for them for ``Configuration/labelHold``: the one they hold
    /// already, else the oldest open task they may label (its labeler groups include one of theirs, or
    /// `"*"`) and have not labeled, with a label to give beyond those held for others; nil when there is
    /// none. Nobody is handed (or holds) a task they would be refused.
    package func nextLabelTask(dataset: String?, for labeler: Actor) async throws -> LabelTask? {
        let now = clock.now()
        return try await store.nextLabelTask(dataset: dataset, labeler: labeler.id,
                                             groups: labeler.isAdmin ? nil : policy.directory.groups(of: labeler.id),
                                             now: now, holdUntil: now.addingTimeInterval(configuration.labelHold.seconds))
    }

    /// Adds a label, given as text (`positive`, `4`, `3-17`) or already typed.
    package func addLabel(_ id: LabelTaskID, text: String, by actor: Actor, event: EventKey? = nil) async throws -> (task: LabelTask, label: Label) {
        try await addLabel(id, by: actor, event: event) { task throws(WorkflowError) in try LabelingMachine.parse(text, for: task) }
    }

    package func addLabel(_ id: LabelTaskID, json: JSONValue, by actor: Actor, event: EventKey? = nil) async throws -> (task: LabelTask, label: Label) {
        try await addLabel(id, by: actor, event: event) { task throws(WorkflowError) in try LabelValueJSON.decode(json, for: task) }
    }

    func addLabel(
        _ id: LabelTaskID, by actor: Actor, event: EventKey?, value: (LabelTask) throws(WorkflowError) -> LabelValue
    ) async throws -> (task: LabelTask, label: Label) {
        try await checkNotApplied(event)
        return try await retrying(EntityRef(kind: .labelTask, id: id.rawValue)) {
            let current = try await loadTask(id)
            let already = try await store.hasLabel(task: id, labeler: actor.id)
            let now = clock.now()
            let parsed = try value(current.value)
            let (t, label) = try LabelingMachine.label(current.value, value: parsed, by: actor, alreadyLabeled: already,
                                                       directory: policy.directory, now: now)
            var cs = try changeSet(t, expectedVersion: current.version, event: event, now: now)
            cs.labels.append((label, current.value.dataset))
            try await commit(cs, now: now)
            agreements.changed(current.value.dataset)
            return (t.entity, label)
        }
    }

    package func consensus(_ id: LabelTaskID) async throws -> (task: LabelTask, labels: [StoredLabel], consensus: TaskConsensus) {
        let task = try await loadTask(id).value
        let labels = try await store.labels(task: id)
        return (task, labels, Consensus.of(task: task, labels: labels.map(\.value)))
    }

    /// Krippendorff's α and Fleiss' κ over a dataset, streamed unit by unit in pages.
    package func agreement(dataset: String) async throws -> DatasetAgreement {
        var accumulator = AgreementAccumulator()
        var labelCount = 0
        var unit: [LabelValue] = []
        var unitTask: LabelTaskID?
        func flush() {
            defer { unit = [] }
            guard let first = unit.first else { return }
            switch first {
            case .rating:
                accumulator.addInterval(unit.compactMap { if case .rating(let r) = $0 { r } else { nil } })
            case .text(let t):
                _ = t
                accumulator.addNominal(unit.map { if case .text(let s) = $0 { PhraseMatcher.normalize(s) } else { $0.display } })
            case .choice, .span, .boundingBox:
                accumulator.addNominal(unit.map(\.display))
            }
        }
        var cursor: (LabelTaskID, ActorID)?
        while true {
            let page = try await store.labels(dataset: dataset, after: cursor, limit: 2000)
            for label in page {
                if label.task != unitTask {
                    flush()
                    unitTask = label.task
                }
                unit.append(label.value)
                labelCount += 1
            }
            guard page.count == 2000, let last = page.last else { break }
            cursor = (last.task, last.labeler)
        }
        flush()
        let tasks = try await store.countLabelTasks(dataset: dataset)
        return DatasetAgreement(
            dataset: dataset, tasks: tasks, labels: labelCount, pairableTasks: accumulator.units,
            krippendorffAlphaNominal: accumulator.alphaNominal, krippendorffAlphaInterval: accumulator.alphaInterval,
            fleissKappa: accumulator.fleissKappa)
    }

    /// Writes the dataset as JSON Lines, one task per line with its labels, consensus and agreement.
    package func exportJSONL(dataset: String, write: (String) async throws -> Void) async throws -> Int {
        let encoder = WireJSON.encoder()
        var after: LabelTaskID?
        var lines = 0
        while true {
            let page = try await store.labelTasks(dataset: dataset, limit: 500, after: after)
            for task in page {
                let labels = try await store.labels(task: task.id)
                let c = Consensus.of(task: task, labels: labels.map(\.value))
                let line = ExportLine(
                    task: LabelTaskView(task),
                    labels: labels.map { .init(labeler: $0.labeler.rawValue, value: LabelValueJSON.encode($0.value), at: $0.at) },
                    consensus: c.consensus.map(LabelValueJSON.encode), agreement: c.agreement)
                try await write(String(decoding: try encoder.encode(line), as: UTF8.self) + "\n")
                lines += 1
            }
            guard page.count == 500, let last = page.last else { break }
            after = last.id
        }
        return lines
    }

    struct ExportLine: Encodable {
        struct LabelLine: Encodable {
            var labeler: String
            var value: JSONValue
            var at: Date
        }

        var task: LabelTaskView
        var labels: [LabelLine]
        var consensus: JSONValue?
        var agreement: Double?
    }
}
