/// A Matrix reaction (`m.reaction` with `rel_type: m.annotation`) the bot saw, kept so that its removal —
/// a redaction naming only the reaction's event id — can be read as "this person took back this key
/// on this card". One value for the Matrix adapter (which sees it) and the store (which keeps it).
package struct MatrixReaction: Hashable, Sendable {
    /// The reaction event's own id (`$r1`): what a redaction names.
    package var eventID: String
    package var roomID: String
    /// The event reacted to (a card).
    package var targetEventID: String
    /// Who reacted (`@alice:example.org`).
    package var sender: String
    /// The key exactly as sent (`✅`, `✔️`).
    package var key: String

    package init(eventID: String, roomID: String, targetEventID: String, sender: String, key: String) {
        self.eventID = eventID
        self.roomID = roomID
        self.targetEventID = targetEventID
        self.sender = sender
        self.key = key
    }
}
