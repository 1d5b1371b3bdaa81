import Foundation
import HandoffChatKit
import HandoffCore
import Synchronization

/// A person on the test homeserver, talking the client-server API directly (rooms, messages, replies,
/// thread replies, edits, reactions, redactions): the humans of the Matrix tests.
package final class MatrixTestClient: Sendable {
    package let user: MatrixTestUser
    let server: SynapseServer
    private let counter = Atomic<Int>(0)
    private let run = UUID().uuidString.prefix(8)

    package init(server: SynapseServer, user: MatrixTestUser) {
        self.server = server
        self.user = user
    }

    package var userID: String { user.userID }

    /// A request that must succeed; throws with the homeserver's answer otherwise.
    @discardableResult
    package func call(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil) async throws -> JSONValue {
        let reply = try await server.request(method, path, query: query, body: body, token: user.accessToken)
        guard (200..<300).contains(reply.status), let json = reply.json else {
            throw SynapseFailure(description: "\(user.localpart): \(method) \(path) answered HTTP \(reply.status): \(reply.text)")
        }
        return json
    }

    private func nextTxn() -> String { "t\(run)-\(counter.add(1, ordering: .relaxed).newValue)" }
    private static func room(_ id: String) -> String { "/_matrix/client/v3/rooms/\(SynapseServer.encode(id))" }

    // MARK: Rooms

    /// Creates a room (of a room version: reaction removal differs between 10 and 11), inviting people.
    package func createRoom(version: String = "11", name: String? = nil, invite: [String] = [], direct: Bool = false) async throws -> String {
        var body: [String: JSONValue] = ["room_version": .string(version), "invite": .array(invite.map(JSONValue.string)),
                                         "preset": .string(direct ? "trusted_private_chat" : "private_chat")]
        if let name { body["name"] = .string(name) }
        if direct { body["is_direct"] = .bool(true) }
        let reply = try await call("POST", "/_matrix/client/v3/createRoom", body: .object(body))
        guard let id = reply.member("room_id")?.asString else { throw SynapseFailure(description: "createRoom returned no room_id") }
        return id
    }

    package func invite(_ user: String, to room: String) async throws {
        try await call("POST", "\(Self.room(room))/invite", body: .object(["user_id": .string(user)]))
    }

    package func join(_ room: String) async throws {
        try await call("POST", "/_matrix/client/v3/join/\(SynapseServer.encode(room))", body: .object([:]))
    }

    package func joinedMembers(_ room: String) async throws -> [String] {
        let reply = try await call("GET", "\(Self.room(room))/joined_members")
        return reply.member("joined")?.asObject.map { Array($0.keys) } ?? []
    }

    /// The membership of `user` in a room (`join`, `invite`, `leave`, …), or nil.
    package func membership(of user: String, in room: String) async throws -> String? {
        let reply = try await server.request("GET", "\(Self.room(room))/state/m.room.member/\(SynapseServer.encode(user))", token: self.user.accessToken)
        return reply.status == 200 ? reply.json?.member("membership")?.asString : nil
    }

    /// Rooms this person is invited to (a full `/sync` without waiting). The filter is unique per call:
    /// Synapse caches `/sync` responses by their parameters for a while, which would hide new invites.
    package func pendingInvites() async throws -> [String] {
        let filter = #"{"room":{"timeline":{"limit":1}},"presence":{"not_types":["org.handoff.test.\#(UUID().uuidString)"]}}"#
        let reply = try await call("GET", "/_matrix/client/v3/sync", query: [("timeout", "0"), ("filter", filter)])
        return reply.member(path: "rooms", "invite")?.asObject.map { Array($0.keys) } ?? []
    }

    /// Joins every room this person is invited to; returns them.
    @discardableResult
    package func acceptInvites() async throws -> [String] {
        let rooms = try await pendingInvites()
        for room in rooms { try await join(room) }
        return rooms
    }

    // MARK: Messages

    /// Sends `m.text`; as a reply (`m.in_reply_to`), a thread reply (`m.thread`), with `m.mentions`.
    @discardableResult
    package func send(_ body: String, in room: String, replyTo: String? = nil, thread: String? = nil, mentions: [String]? = nil,
                      msgtype: String = "m.text") async throws -> String
    {
        var content: [String: JSONValue] = ["msgtype": .string(msgtype), "body": .string(body)]
        if let thread {
            content["m.relates_to"] = .object(["rel_type": .string("m.thread"), "event_id": .string(thread), "is_falling_back": .bool(true),
                                               "m.in_reply_to": .object(["event_id": .string(replyTo ?? thread)])])
        } else if let replyTo {
            content["m.relates_to"] = .object(["m.in_reply_to": .object(["event_id": .string(replyTo)])])
        }
        if let mentions { content["m.mentions"] = .object(["user_ids": .array(mentions.map(JSONValue.string))]) }
        return try await sendEvent("m.room.message", content: .object(content), in: room)
    }

    /// An edit (`m.replace`) of an earlier message, with the new text in `m.new_content`.
    @discardableResult
    package func edit(_ original: String, in room: String, to body: String) async throws -> String {
        try await sendEvent("m.room.message", content: .object([
            "msgtype": .string("m.text"), "body": .string("* " + body),
            "m.new_content": .object(["msgtype": .string("m.text"), "body": .string(body)]),
            "m.relates_to": .object(["rel_type": .string("m.replace"), "event_id": .string(original)]),
        ]), in: room)
    }

    /// A reaction (`m.annotation`) with the key exactly as given.
    @discardableResult
    package func react(to event: String, in room: String, key: String) async throws -> String {
        try await sendEvent("m.reaction", content: .object([
            "m.relates_to": .object(["rel_type": .string("m.annotation"), "event_id": .string(event), "key": .string(key)]),
        ]), in: room)
    }

    /// Redacts an event (how a reaction is removed).
    @discardableResult
    package func redact(_ event: String, in room: String, reason: String? = nil) async throws -> String {
        var body: [String: JSONValue] = [:]
        if let reason { body["reason"] = .string(reason) }
        let reply = try await call("PUT", "\(Self.room(room))/redact/\(SynapseServer.encode(event))/\(nextTxn())", body: .object(body))
        return reply.member("event_id")?.asString ?? ""
    }

    @discardableResult
    package func sendEvent(_ type: String, content: JSONValue, in room: String) async throws -> String {
        let reply = try await call("PUT", "\(Self.room(room))/send/\(SynapseServer.encode(type))/\(nextTxn())", body: content)
        guard let id = reply.member("event_id")?.asString else { throw SynapseFailure(description: "send returned no event_id") }
        return id
    }

    // MARK: Reading

    /// The room's most recent events, oldest first (up to `limit`).
    package func timeline(_ room: String, limit: Int = 200) async throws -> [JSONValue] {
        let reply = try await call("GET", "\(Self.room(room))/messages", query: [("dir", "b"), ("limit", String(limit))])
        return (reply.member("chunk")?.asArray ?? []).reversed()
    }

    /// The `m.room.message` events someone sent, oldest first (edits included unless `originalsOnly`).
    package func messages(in room: String, from sender: String, originalsOnly: Bool = true) async throws -> [JSONValue] {
        try await timeline(room).filter { e in
            guard e.member("type")?.asString == "m.room.message", e.member("sender")?.asString == sender else { return false }
            return !originalsOnly || e.member(path: "content", "m.relates_to", "rel_type")?.asString != "m.replace"
        }
    }

    /// One event as the homeserver serves it now (with the latest edit applied where the server does).
    package func event(_ id: String, in room: String) async throws -> JSONValue {
        try await call("GET", "\(Self.room(room))/event/\(SynapseServer.encode(id))")
    }

    /// Events relating to `event` (`m.annotation` reactions, `m.replace` edits, thread replies).
    package func relations(of event: String, in room: String, relType: String, eventType: String? = nil) async throws -> [JSONValue] {
        var path = "/_matrix/client/v1/rooms/\(SynapseServer.encode(room))/relations/\(SynapseServer.encode(event))/\(SynapseServer.encode(relType))"
        if let eventType { path += "/\(SynapseServer.encode(eventType))" }
        return try await call("GET", path, query: [("limit", "100")]).member("chunk")?.asArray ?? []
    }

    /// The reaction keys `sender` placed on an event.
    package func reactionKeys(on event: String, in room: String, by sender: String) async throws -> [String] {
        try await relations(of: event, in: room, relType: "m.annotation", eventType: "m.reaction")
            .filter { $0.member("sender")?.asString == sender }
            .compactMap { $0.member(path: "content", "m.relates_to", "key")?.asString }
    }

    /// The latest edit's `m.new_content` of a message, or nil if it was never edited.
    package func latestEdit(of event: String, in room: String) async throws -> JSONValue? {
        let edits = try await relations(of: event, in: room, relType: "m.replace", eventType: "m.room.message")
        return edits.max { ($0.member("origin_server_ts")?.asInt ?? 0) < ($1.member("origin_server_ts")?.asInt ?? 0) }?
            .member(path: "content", "m.new_content")
    }
}
