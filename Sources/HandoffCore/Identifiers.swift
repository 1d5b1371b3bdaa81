/// A typed identifier: `ID<Approval>` and `ID<ReviewItem>` cannot be mixed up.
///
/// Ids are small positive integers so people can type them in chat (`/handoff approve 42`). The core
/// never makes ids itself; callers pass them in (the store reserves them), so every rule is testable
/// with a fixed sequence.
package struct ID<Entity>: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    package let rawValue: Int64

    package init(rawValue: Int64) { self.rawValue = rawValue }
    package init(_ rawValue: Int64) { self.rawValue = rawValue }

    /// Parses "42" or "#42".
    package init?(_ text: String) {
        let trimmed = text.hasPrefix("#") ? String(text.dropFirst()) : text
        guard let value = Int64(trimmed), value > 0 else { return nil }
        self.rawValue = value
    }

    package var description: String { String(rawValue) }
    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    package init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

package typealias ApprovalID = ID<Approval>
package typealias ReviewItemID = ID<ReviewItem>
package typealias EscalationID = ID<Escalation>
package typealias FeedbackID = ID<FeedbackRequest>
package typealias CorrectionID = ID<Correction>
package typealias LabelTaskID = ID<LabelTask>

/// The kinds of entity the workflow keeps; used for audit events, timers, outbox rows and id counters.
package enum EntityKind: String, Codable, Sendable, CaseIterable {
    case approval
    case reviewItem = "review_item"
    case escalation
    case feedback
    case correction
    case labelTask = "label_task"
    case label
}

/// A reference to one entity of any kind.
package struct EntityRef: Hashable, Codable, Sendable, CustomStringConvertible {
    package var kind: EntityKind
    package var id: Int64

    package init(kind: EntityKind, id: Int64) {
        self.kind = kind
        self.id = id
    }

    package var description: String { "\(kind.rawValue)#\(id)" }
}

/// Hands out ids. The store reserves them in blocks; tests use ``SequentialIDGenerator``.
package protocol IDGenerator: Sendable {
    func next(_ kind: EntityKind) async throws -> Int64
}
