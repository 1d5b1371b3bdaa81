import Foundation
import HandoffCore
import Synchronization

/// Dataset agreement (Krippendorff's α, Fleiss' κ) computed recently, so a page that shows several
/// datasets does not read all their labels on every view. A label or task added through this workflow
/// drops its dataset's entry at once; additions by other processes show once the entry is `maxAge` old.
/// At most `capacity` datasets are kept (the oldest entry goes first).
final class AgreementCache: Sendable {
    private struct Entry {
        var value: DatasetAgreement
        var computedAt: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Bumped by every change: a result computed while a change happened is not kept.
        var epoch = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 64) { self.capacity = max(1, capacity) }

    /// The kept value, when it is younger than `maxAge`.
    func value(_ dataset: String, now: Date, maxAge: TimeInterval) -> DatasetAgreement? {
        state.withLock { s in
            guard let entry = s.entries[dataset], now.timeIntervalSince(entry.computedAt) < maxAge, entry.computedAt <= now else { return nil }
            return entry.value
        }
    }

    /// The epoch to hand back to ``keep(_:for:computedAt:epoch:)`` after computing.
    var epoch: Int { state.withLock { $0.epoch } }

    /// Keeps a result unless something changed since `epoch` was read.
    func keep(_ value: DatasetAgreement, for dataset: String, computedAt: Date, epoch: Int) {
        state.withLock { s in
            guard s.epoch == epoch else { return }
            if s.entries[dataset] == nil, s.entries.count >= capacity,
               let oldest = s.entries.min(by: { $0.value.computedAt < $1.value.computedAt })?.key
            {
                s.entries.removeValue(forKey: oldest)
            }
            s.entries[dataset] = Entry(value: value, computedAt: computedAt)
        }
    }

    /// Drops a dataset's entry (a label or task was added).
    func changed(_ dataset: String) {
        state.withLock { s in
            s.epoch += 1
            s.entries.removeValue(forKey: dataset)
        }
    }
}

extension Workflow {
    /// ``agreement(dataset:)``, reused for up to `maxAge` seconds unless a label or task of the dataset
    /// was added through this workflow meanwhile: for pages that show many datasets on every view.
    package func recentAgreement(dataset: String, maxAge: TimeInterval = 30) async throws -> DatasetAgreement {
        let now = clock.now()
        if let kept = agreements.value(dataset, now: now, maxAge: maxAge) { return kept }
        let epoch = agreements.epoch
        let fresh = try await agreement(dataset: dataset)
        agreements.keep(fresh, for: dataset, computedAt: now, epoch: epoch)
        return fresh
    }
}
