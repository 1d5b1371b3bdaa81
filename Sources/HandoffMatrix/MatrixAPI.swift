import Foundation
import HandoffChatKit
import HandoffCore

/// The client-server API calls the bot makes (chat-protocols.md §4).
extension MatrixClient {
    private static let v3 = "/_matrix/client/v3"

    private static func room(_ id: String) -> String { "\(v3)/rooms/\(encode(id))" }

    /// `GET /sync`: a long-poll of `timeout` (the HTTP timeout is longer by `margin`).
    package func sync(since: String?, timeout: Duration, margin: Duration, filter: String) async throws(MatrixError) -> JSONValue {
        var query: [(String, String)] = [("timeout", String(Int64(timeout.seconds * 1000))), ("filter", filter), ("set_presence", "offline")]
        if let since { query.append(("since", since)) }
        return try await call("GET", "\(Self.v3)/sync", query: query, timeout: timeout + margin)
    }

    /// `GET /rooms/{roomId}/messages`: one page of a room's timeline.
    package func messages(room: String, from: String?, to: String? = nil, direction: String, limit: Int,
                          filter: String? = nil) async throws(MatrixError) -> JSONValue
    {
        var query: [(String, String)] = [("dir", direction), ("limit", String(limit))]
        if let from { query.append(("from", from)) }
        if let to { query.append(("to", to)) }
        if let filter { query.append(("filter", filter)) }
        return try await call("GET", "\(Self.room(room))/messages", query: query)
    }

    /// `PUT /rooms/{roomId}/send/{eventType}/{txnId}`: the same `txnId` again returns the same event.
    package func send(room: String, type: String, txnID: String, content: JSONValue) async throws(MatrixError) -> String {
        let reply = try await call("PUT", "\(Self.room(room))/send/\(Self.encode(type))/\(Self.encode(txnID))", body: content)
        guard let id = reply.member("event_id")?.asString else {
            throw MatrixError(endpoint: "PUT rooms/{id}/send/\(type)", code: .transport("no event_id in the reply"), message: "no event_id in the reply")
        }
        return id
    }

    /// Sends a reaction; `M_DUPLICATE_ANNOTATION` (the bot already reacted with that key) counts as sent.
    /// Returns the reaction's event id, or nil when it was already there.
    @discardableResult
    package func react(room: String, to eventID: String, key: String, txnID: String) async throws(MatrixError) -> String? {
        let content = JSONValue.object(["m.relates_to": .object(["rel_type": .string("m.annotation"), "event_id": .string(eventID), "key": .string(key)])])
        do {
            return try await send(room: room, type: "m.reaction", txnID: txnID, content: content)
        } catch {
            if error.errcode == "M_DUPLICATE_ANNOTATION" {
                countDuplicateAnnotation()
                return nil
            }
            throw error
        }
    }

    /// `PUT /rooms/{roomId}/redact/{eventId}/{txnId}`.
    @discardableResult
    package func redact(room: String, eventID: String, txnID: String, reason: String? = nil) async throws(MatrixError) -> String? {
        var body: [String: JSONValue] = [:]
        if let reason { body["reason"] = .string(reason) }
        let reply = try await call("PUT", "\(Self.room(room))/redact/\(Self.encode(eventID))/\(Self.encode(txnID))", body: .object(body))
        return reply.member("event_id")?.asString
    }

    /// `POST /join/{roomIdOrAlias}`: returns the room id.
    @discardableResult
    package func join(_ roomIDOrAlias: String) async throws(MatrixError) -> String {
        let reply = try await call("POST", "\(Self.v3)/join/\(Self.encode(roomIDOrAlias))", body: .object([:]))
        return reply.member("room_id")?.asString ?? roomIDOrAlias
    }

    /// `POST /rooms/{roomId}/leave`: leaves a room, or declines an invite.
    package func leave(_ room: String, reason: String? = nil) async throws(MatrixError) {
        var body: [String: JSONValue] = [:]
        if let reason { body["reason"] = .string(reason) }
        try await call("POST", "\(Self.room(room))/leave", body: .object(body))
    }

    /// `POST /createRoom`; returns the room id. Not repeated after a transport error (it would make a second room).
    package func createRoom(_ body: JSONValue) async throws(MatrixError) -> String {
        let reply = try await call("POST", "\(Self.v3)/createRoom", body: body, repeat: .onlyWhenRateLimited)
        guard let id = reply.member("room_id")?.asString else {
            throw MatrixError(endpoint: "POST createRoom", code: .transport("no room_id in the reply"), message: "no room_id in the reply")
        }
        return id
    }

    /// `GET /rooms/{roomId}/joined_members`: the user ids in the room.
    package func joinedMembers(_ room: String) async throws(MatrixError) -> [String] {
        let reply = try await call("GET", "\(Self.room(room))/joined_members")
        return reply.member("joined")?.asObject.map { Array($0.keys) } ?? []
    }
}
