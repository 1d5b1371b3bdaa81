import Foundation
import HandoffCore

/// An entity as the store returns it: the value and the version its compare-and-set update must match.
package struct Versioned<Value: Sendable>: Sendable {
    package var value: Value
    package var version: Int64

    package init(_ value: Value, version: Int64) {
        self.value = value
        self.version = version
    }
}

/// One row of an entity table, serialized: scalar columns plus the JSON `data` column.
package struct EntityRow: Sendable {
    package var table: String
    package var ref: EntityRef
    package var columns: [(name: String, value: SQLValue)]
}

/// How a label task's labeler groups are kept in its `labeler_groups` column, `|group|group|`, so "may
/// this labeler label it" is one LIKE per group the labeler is in (a `|` inside a name is kept as `¦`,
/// the same way on both sides).
package enum LabelerGroups {
    package static func column(_ groups: [String]) -> String {
        "|" + groups.map { $0.replacingOccurrences(of: "|", with: "¦") }.joined(separator: "|") + "|"
    }

    /// A LIKE pattern (with `ESCAPE '\'`) that matches a column listing `group`.
    package static func pattern(_ group: String) -> String {
        let escaped = group.replacingOccurrences(of: "|", with: "¦")
            .replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        return "%|" + escaped + "|%"
    }
}

/// A core entity the store keeps in its own table.
package protocol StoredEntity: Codable, Sendable {
    static var table: String { get }
    static var kind: EntityKind { get }
    var rowID: Int64 { get }
    /// The columns queries filter and sort on (besides id, version and data).
    var indexColumns: [(name: String, value: SQLValue)] { get }
}

/// How entity rows (and label values) are kept as JSON: milliseconds-since-1970 dates, compact, keys in
/// order. Written and read by ``JSONValueCoder`` (one linear parse and a walk of the tree), the same JSON
/// Foundation's coders wrote before it, which the fallback below still reads if the strict parser ever
/// refuses a row.
enum StoreJSON {
    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONValueCoder.encodeUTF8(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        do {
            if let root = JSONValue.parseStrict(text.utf8) { return try JSONValueCoder.decode(type, from: root) }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .millisecondsSince1970
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError.corrupt("\(T.self): \(error)")
        }
    }
}

extension StoredEntity {
    package var ref: EntityRef { EntityRef(kind: Self.kind, id: rowID) }

    package func row() throws -> EntityRow {
        EntityRow(table: Self.table, ref: ref,
                  columns: [("id", .integer(rowID))] + indexColumns + [("data", .text(try StoreJSON.encode(self)))])
    }

    static func decode(_ row: SQLRow) throws -> Versioned<Self> {
        Versioned(try StoreJSON.decode(Self.self, from: try row.string("data")), version: try row.int("version"))
    }
}

extension Approval: StoredEntity {
    package static let table = "approvals"
    package static let kind = EntityKind.approval
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        [("status", .text(status.name)), ("action", .text(action)), ("requester", .text(requester.rawValue)),
         ("policy", .text(policyName)), ("created_at", SQLValue(createdAt)), ("expires_at", SQLValue(expiresAt)),
         ("decided_at", SQLValue(status.decision?.at))]
    }
}

extension ReviewItem: StoredEntity {
    package static let table = "review_items"
    package static let kind = EntityKind.reviewItem
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        var completedAt: Date?
        if case .completed(_, let at) = status { completedAt = at }
        return [("queue", .text(queue)), ("status", .text(status.name)), ("priority", SQLValue(priority.rank)),
                ("created_at", SQLValue(createdAt)), ("completed_at", SQLValue(completedAt)), ("sla_breached", SQLValue(slaBreached))]
    }
}

extension Escalation: StoredEntity {
    package static let table = "escalations"
    package static let kind = EntityKind.escalation
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        [("status", .text(status.name)), ("tier", .text(tierName)), ("breached", SQLValue(breached)),
         ("created_at", SQLValue(createdAt))]
    }
}

extension FeedbackRequest: StoredEntity {
    package static let table = "feedback"
    package static let kind = EntityKind.feedback
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        [("status", .text(status.name)), ("channel", .text(channel)), ("created_at", SQLValue(createdAt)),
         ("deadline", SQLValue(deadline))]
    }
}

extension Correction: StoredEntity {
    package static let table = "corrections"
    package static let kind = EntityKind.correction
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        [("route", SQLValue(route)), ("created_at", SQLValue(at))]
    }
}

extension LabelTask: StoredEntity {
    package static let table = "label_tasks"
    package static let kind = EntityKind.labelTask
    package var rowID: Int64 { id.rawValue }
    package var indexColumns: [(name: String, value: SQLValue)] {
        [("dataset", .text(dataset)), ("status", .text(status.rawValue)), ("created_at", SQLValue(createdAt)),
         ("slots", .integer(Int64(max(0, overlap - labelCount)))), ("labeler_groups", .text(LabelerGroups.column(labelers)))]
    }
}
