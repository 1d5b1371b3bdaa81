import Foundation
import HandoffCore
import Synchronization

/// A clock tests move by hand: every time-based rule is checked without sleeping.
package final class ManualClock: WorkflowClock {
    private let current: Mutex<Date>

    /// Starts at 2026-01-01T00:00:00Z unless told otherwise.
    package init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {
        current = Mutex(start.truncatedToMilliseconds)
    }

    package func now() -> Date { current.withLock { $0 } }

    package func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds).truncatedToMilliseconds }
    }

    package func advance(_ span: Span) { advance(by: span.seconds) }

    package func set(_ date: Date) { current.withLock { $0 = date.truncatedToMilliseconds } }
}

/// Ids 1, 2, 3, … per kind, for core tests.
package final class SequentialIDGenerator: IDGenerator {
    private let counters = Mutex<[EntityKind: Int64]>([:])

    package init() {}

    package func next(_ kind: EntityKind) async throws -> Int64 {
        counters.withLock { c in
            c[kind, default: 0] += 1
            return c[kind]!
        }
    }
}
