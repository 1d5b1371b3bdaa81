import Foundation
import HandoffCore

/// A Matrix reaction (`m.reaction`, `m.annotation`) the bot saw, kept so that its removal — a
/// redaction that names only the reaction's event id — can be read as "this person took back this
/// key on this card".
package struct MatrixReactionRecord: Hashable, Sendable {
    /// The reaction's own event id (`$r1`): what a redaction names.
    package var eventID: String
    package var roomID: String
    /// The event reacted to (the card's event id).
    package var targetEventID: String
    /// Who reacted (`@alice:example.org`).
    package var sender: String
    /// The reaction key exactly as sent (`✅`, `✔️`).
    package var key: String

    package init(eventID: String, roomID: String, targetEventID: String, sender: String, key: String) {
        self.eventID = eventID
        self.roomID = roomID
        self.targetEventID = targetEventID
        self.sender = sender
        self.key = key
    }
}

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
