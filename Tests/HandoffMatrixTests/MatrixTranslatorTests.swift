import Foundation
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import Testing

/// Stored Matrix events (as the sync loop keeps them) → the runtime's neutral events.
@Suite struct MatrixTranslatorTests {
    static let bot = "@handoff:localhost"
    static let room = "!approvals:localhost"
    let translator = MatrixTranslator(botUserID: MatrixTranslatorTests.bot)

    static func stored(_ event: [String: JSONValue], direct: Bool = false, removed: MatrixReaction? = nil) -> String {
        MatrixStoredEvent(roomID: room, event: .object(event), direct: direct, removedReaction: removed).encoded
    }

    static func message(_ body: String, id: String = "$m1", sender: String = "@alice:localhost", extra: [String: JSONValue] = [:],
                        msgtype: String = "m.text") -> [String: JSONValue]
    {
        var content: [String: JSONValue] = ["msgtype": .string(msgtype), "body": .string(body)]
        for (k, v) in extra { content[k] = v }
        return ["type": .string("m.room.message"), "event_id": .string(id), "sender": .string(sender), "origin_server_ts": .int(1),
                "content": .object(content)]
    }

    @Test func aDirectMessageIsAddressedToTheBotAndStaysFlat() throws {
        let event = try #require(try translator.translate(Self.stored(Self.message("I need a human"), direct: true)))
        #expect(event.kind == .message(text: "I need a human", addressedToBot: true))
        #expect(event.isDirect)
        #expect(event.conversation == ConversationRef(platform: "matrix", channel: Self.room, thread: nil, user: "@alice:localhost"))
        #expect(event.actor.actorID == "matrix:@alice:localhost")
        #expect(event.dedupeKey == "event:$m1")
        #expect(event.card == nil)
    }

    @Test func aBangCommandInARoomIsAddressedAndAnsweredInAThreadUnderIt() throws {
        let event = try #require(try translator.translate(Self.stored(Self.message("!approve 42 ship it"))))
        #expect(event.kind == .message(text: "approve 42 ship it", addressedToBot: true))
        #expect(event.conversation.thread == "$m1")
        let long = try #require(try translator.translate(Self.stored(Self.message("!handoff approve 42"))))
        #expect(long.kind == .message(text: "handoff approve 42", addressedToBot: true))
        let chatter = try #require(try translator.translate(Self.stored(Self.message("approve of the new logo!"))))
        #expect(chatter.kind == .message(text: "approve of the new logo!", addressedToBot: false))
        let exclamation = try #require(try translator.translate(Self.stored(Self.message("!!! fire"))))
        #expect(exclamation.kind == .message(text: "!!! fire", addressedToBot: false))
    }

    @Test func aReplyRefersToTheMessageRepliedToWithoutItsFallbackQuote() throws {
        let reply = Self.message("> <@handoff:localhost> Approval needed: deploy\n> more\n\nreject too risky", id: "$r",
                                 sender: "@bob:localhost", extra: ["m.relates_to": .object(["m.in_reply_to": .object(["event_id": .string("$card")])])])
        let event = try #require(try translator.translate(Self.stored(reply)))
        #expect(event.kind == .message(text: "reject too risky", addressedToBot: false))
        #expect(event.card == MessageRef(channel: Self.room, messageID: "$card"))
        #expect(event.conversation.thread == "$card")
    }

    @Test func aThreadReplyRefersToTheThreadRoot() throws {
        let relation = JSONValue.object(["rel_type": .string("m.thread"), "event_id": .string("$card"), "is_falling_back": .bool(true),
                                         "m.in_reply_to": .object(["event_id": .string("$question")])])
        let event = try #require(try translator.translate(Self.stored(Self.message("too risky on a Friday", extra: ["m.relates_to": relation]))))
        #expect(event.card == MessageRef(channel: Self.room, messageID: "$card"))
        #expect(event.conversation.thread == "$card")
        #expect(event.kind == .message(text: "too risky on a Friday", addressedToBot: false))
    }

    @Test func aMentionByIDOrByTextAddressesTheBotAndIsRemoved() throws {
        let pill = Self.message("handoff: approve 7", extra: ["m.mentions": .object(["user_ids": .array([.string(Self.bot)])])])
        #expect(try translator.translate(Self.stored(pill))?.kind == .message(text: "approve 7", addressedToBot: true))
        let typed = Self.message("@handoff:localhost: claim")
        #expect(try translator.translate(Self.stored(typed))?.kind == .message(text: "claim", addressedToBot: true))
    }

    @Test("D68 edits are never new commands, whoever sends them")
    func d68_editsAreNotCommands() throws {
        let edit = Self.message("* !approve 42", id: "$e", extra: [
            "m.new_content": .object(["msgtype": .string("m.text"), "body": .string("!approve 42")]),
            "m.relates_to": .object(["rel_type": .string("m.replace"), "event_id": .string("$m1")]),
        ])
        #expect(try translator.translate(Self.stored(edit)) == nil)
        let foreign = Self.message("* !approve 42", id: "$f", sender: "@mallory:localhost", extra: [
            "m.new_content": .object(["msgtype": .string("m.text"), "body": .string("!approve 42")]),
            "m.relates_to": .object(["rel_type": .string("m.replace"), "event_id": .string("$m1")]),
        ])
        #expect(try translator.translate(Self.stored(foreign)) == nil)
    }

    @Test("D71 the bot's own events (sender = bot, unsigned.transaction_id) and other bots' notices are not inputs")
    func d71_ownEventsAreIgnored() throws {
        var own = Self.message("!approve 42", sender: Self.bot)
        own["unsigned"] = .object(["transaction_id": .string("abc.1")])
        #expect(try translator.translate(Self.stored(own)) == nil)
        let ownReaction: [String: JSONValue] = [
            "type": .string("m.reaction"), "event_id": .string("$r"), "sender": .string(Self.bot),
            "content": .object(["m.relates_to": .object(["rel_type": .string("m.annotation"), "event_id": .string("$card"), "key": .string("✅")])]),
        ]
        #expect(try translator.translate(Self.stored(ownReaction)) == nil)
        #expect(try translator.translate(Self.stored(Self.message("!approve 42", msgtype: "m.notice"))) == nil)
    }

    @Test func aReactionIsAddedToTheEventItAnnotates() throws {
        let reaction: [String: JSONValue] = [
            "type": .string("m.reaction"), "event_id": .string("$r1"), "sender": .string("@alice:localhost"),
            "content": .object(["m.relates_to": .object(["rel_type": .string("m.annotation"), "event_id": .string("$card"), "key": .string("✔️")])]),
        ]
        let event = try #require(try translator.translate(Self.stored(reaction)))
        #expect(event.kind == .reactionAdded(name: "✔️"))
        #expect(event.card == MessageRef(channel: Self.room, messageID: "$card"))
        #expect(event.dedupeKey == "event:$r1")
        let redacted: [String: JSONValue] = ["type": .string("m.reaction"), "event_id": .string("$r2"), "sender": .string("@alice:localhost"),
                                             "content": .object([:])]
        #expect(try translator.translate(Self.stored(redacted)) == nil, "a reaction already redacted has no relation")
    }

    @Test("D63 a redaction of a known reaction is that reaction removed: room v10 (top-level redacts) and v11 (content.redacts)")
    func d63_redactionShapes() throws {
        let removed = MatrixReaction(eventID: "$r1", roomID: Self.room, targetEventID: "$card", sender: "@alice:localhost", key: "✅")
        let v10: [String: JSONValue] = ["type": .string("m.room.redaction"), "event_id": .string("$x10"), "sender": .string("@alice:localhost"),
                                        "redacts": .string("$r1"), "content": .object([:])]
        let v11: [String: JSONValue] = ["type": .string("m.room.redaction"), "event_id": .string("$x11"), "sender": .string("@alice:localhost"),
                                        "content": .object(["redacts": .string("$r1")])]
        for shape in [v10, v11] {
            #expect(MatrixTranslator.redactedEventID(.object(shape)) == "$r1")
            let event = try #require(try translator.translate(Self.stored(shape, removed: removed)))
            #expect(event.kind == .reactionRemoved(name: "✅"))
            #expect(event.actor.id == "@alice:localhost")
            #expect(event.card == MessageRef(channel: Self.room, messageID: "$card"))
        }
        // A moderator removing someone's reaction is not that person taking their vote back.
        var moderator = v11
        moderator["sender"] = .string("@mod:localhost")
        #expect(try translator.translate(Self.stored(moderator, removed: removed)) == nil)
        // A redaction of something else (no reaction known) means nothing.
        #expect(try translator.translate(Self.stored(v11)) == nil)
    }

    @Test func theBotsOwnJoinMarksWhereHistoryEnds() {
        let join: JSONValue = .object(["type": .string("m.room.member"), "state_key": .string(Self.bot), "content": .object(["membership": .string("join")]),
                                       "unsigned": .object(["prev_content": .object(["membership": .string("invite")])])])
        let rename: JSONValue = .object(["type": .string("m.room.member"), "state_key": .string(Self.bot),
                                         "content": .object(["membership": .string("join"), "displayname": .string("Bot")]),
                                         "unsigned": .object(["prev_content": .object(["membership": .string("join")])])])
        let someoneElse: JSONValue = .object(["type": .string("m.room.member"), "state_key": .string("@alice:localhost"),
                                              "content": .object(["membership": .string("join")])])
        #expect(MatrixSyncService.isOwnJoin(join, bot: Self.bot))
        #expect(!MatrixSyncService.isOwnJoin(rename, bot: Self.bot))
        #expect(!MatrixSyncService.isOwnJoin(someoneElse, bot: Self.bot))
    }

    @Test func invitesFollowTheAllowList() {
        let open = MatrixSyncService.InvitePolicy()
        #expect(open.allows(inviter: "@alice:localhost", room: "!r:localhost", botUserID: Self.bot, knownRooms: []))
        #expect(!open.allows(inviter: "@eve:evil.example", room: "!r:localhost", botUserID: Self.bot, knownRooms: []))
        let strict = MatrixSyncService.InvitePolicy(allowedInviters: ["@alice:localhost", ":partner.example"], allowedRooms: ["!ops:localhost"])
        #expect(strict.allows(inviter: "@alice:localhost", room: "!r:localhost", botUserID: Self.bot, knownRooms: []))
        #expect(strict.allows(inviter: "@carol:partner.example", room: "!r:localhost", botUserID: Self.bot, knownRooms: []))
        #expect(!strict.allows(inviter: "@mallory:localhost", room: "!r:localhost", botUserID: Self.bot, knownRooms: []))
        #expect(strict.allows(inviter: "@mallory:localhost", room: "!ops:localhost", botUserID: Self.bot, knownRooms: []))
        #expect(strict.allows(inviter: nil, room: "!agents:localhost", botUserID: Self.bot, knownRooms: ["!agents:localhost"]))
    }
}
