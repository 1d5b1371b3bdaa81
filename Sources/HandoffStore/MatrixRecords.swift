import Foundation
import HandoffCore

/// The store's name for a Matrix reaction it keeps (``HandoffCore/MatrixReaction``: the adapter and
/// the store share one type).
package typealias MatrixReactionRecord = MatrixReaction

extension SQLWorkflowStore {
    // MARK: Matrix reactions

    /// Remembers reactions (one transaction); a reaction seen again (a redelivery) changes nothing.
    package func recordMatrixReactions(_ reactions: [MatrixReactionRecord], at: Date) async throws {
        guard !reactions.isEmpty else { return }
        _ = try await database.write(reactions.map { r in
            WriteStep(SQLStatement(
                """
                INSERT INTO matrix_reactions (event_id, room_id, target_event_id, sender, reaction_key, created_at)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, [.text(r.eventID), .text(r.roomID), .text(r.targetEventID), .text(r.sender), .text(r.key), SQLValue(at)]))
        })
    }

    /// The reaction an event id names, if the bot saw it.
    package func matrixReaction(eventID: String) async throws -> MatrixReactionRecord? {
        try await database.read(
            "SELECT event_id, room_id, target_event_id, sender, reaction_key FROM matrix_reactions WHERE event_id = ?", [.text(eventID)]
        ).first.map { row in
            MatrixReactionRecord(eventID: try row.string("event_id"), roomID: try row.string("room_id"),
                                 targetEventID: try row.string("target_event_id"), sender: try row.string("sender"),
                                 key: try row.string("reaction_key"))
        }
    }

    /// Forgets reactions older than the cutoff (a removal after that changes nothing any more).
    package func pruneMatrixReactions(before: Date) async throws -> Int {
        let r = try await database.write([WriteStep(SQLStatement(
            "DELETE FROM matrix_reactions WHERE created_at < ?", [SQLValue(before)]))])
        return r.first?.changes ?? 0
    }
}
