import Foundation
import HandoffChatKit
import HandoffCore

/// A reaction the bot saw: the core's ``HandoffCore/MatrixReaction``, the same value the store keeps
/// (this name keeps `HandoffMatrix.MatrixReaction` working where the core is not imported).
package typealias MatrixReaction = HandoffCore.MatrixReaction

/// What the Matrix bot keeps between restarts: the `/sync` token, the `txnId` namespace, direct
/// conversations, and the reactions it saw. The app backs it with the workflow store (`kv` and
/// `matrix_reactions` tables), so it lives in the same database as the events themselves.
package protocol MatrixStateStore: Sendable {
    func value(forKey key: String) async throws -> String?
    func setValue(_ value: String, forKey key: String) async throws
    func recordReactions(_ reactions: [MatrixReaction]) async throws
    func reaction(eventID: String) async throws -> MatrixReaction?
    /// Forgets reactions seen longer ago than `age` (by the store's clock); returns how many.
    func pruneReactions(olderThan age: Duration) async throws -> Int
}

/// The keys the bot uses in ``MatrixStateStore``; per bot user, so switching accounts starts clean.
package enum MatrixStateKeys {
    /// The `next_batch` to resume `/sync` from.
    package static func syncToken(user: String) -> String { "matrix.sync.next_batch:\(user)" }
    /// The room the bot talks privately with a person in.
    package static func directRoom(bot: String, user: String) -> String { "matrix.dm:\(bot):\(user)" }
    /// Random, made once per database: every `txnId` starts with it, so a new database (ids from 1
    /// again) never reuses a `txnId` the homeserver still remembers for this device.
    package static let transactionNamespace = "matrix.txn_namespace"
}

/// An in-memory ``MatrixStateStore`` (tests and tools).
package actor InMemoryMatrixStateStore: MatrixStateStore {
    private var values: [String: String] = [:]
    private var reactions: [String: (MatrixReaction, Date)] = [:]

    package init() {}

    package func value(forKey key: String) async throws -> String? { values[key] }
    package func setValue(_ value: String, forKey key: String) async throws { values[key] = value }

    package func recordReactions(_ list: [MatrixReaction]) async throws {
        for r in list where reactions[r.eventID] == nil { reactions[r.eventID] = (r, Date()) }
    }

    package func reaction(eventID: String) async throws -> MatrixReaction? { reactions[eventID]?.0 }

    package func pruneReactions(olderThan age: Duration) async throws -> Int {
        let before = Date().addingTimeInterval(-age.seconds)
        let old = reactions.filter { $0.value.1 < before }.map(\.key)
        for key in old { reactions[key] = nil }
        return old.count
    }
}

/// How the sync loop stores a Matrix event for the event router: the raw event plus what the loop
/// knew when it saw it (the room, whether it is a direct conversation, and — for a redaction — the
/// reaction it removes), so that translating it later needs no network and no database.
package struct MatrixStoredEvent: Hashable, Sendable {
    package static let platform = "matrix"

    package var roomID: String
    package var event: JSONValue
    /// A room with only the bot and one person (and not a configured channel).
    package var direct: Bool
    /// For an `m.room.redaction` of a reaction: that reaction.
    package var removedReaction: MatrixReaction?

    package init(roomID: String, event: JSONValue, direct: Bool, removedReaction: MatrixReaction? = nil) {
        self.roomID = roomID
        self.event = event
        self.direct = direct
        self.removedReaction = removedReaction
    }

    /// The dedupe key: `event:$id` (chat-protocols.md §0: Matrix dedupes by `event_id`).
    package static func key(eventID: String) -> String { "event:\(eventID)" }

    package var encoded: String {
        var o: [String: JSONValue] = ["room_id": .string(roomID), "event": event, "direct": .bool(direct)]
        if let r = removedReaction {
            o["removed_reaction"] = .object([
                "event_id": .string(r.eventID), "room_id": .string(r.roomID), "target": .string(r.targetEventID),
                "sender": .string(r.sender), "key": .string(r.key),
            ])
        }
        return JSONValue.object(o).jsonText
    }

    package init(decoding text: String) throws(MalformedPayload) {
        let json = try JSONValue.parsePayload(text)
        guard let room = json.member("room_id")?.asString, let event = json.member("event") else {
            throw MalformedPayload(description: "a stored Matrix event without room_id or event")
        }
        roomID = room
        self.event = event
        direct = json.member("direct")?.asBool ?? false
        if let r = json.member("removed_reaction"), let id = r.member("event_id")?.asString, let target = r.member("target")?.asString,
           let sender = r.member("sender")?.asString, let key = r.member("key")?.asString
        {
            removedReaction = MatrixReaction(eventID: id, roomID: r.member("room_id")?.asString ?? room, targetEventID: target,
                                             sender: sender, key: key)
        }
    }
}
