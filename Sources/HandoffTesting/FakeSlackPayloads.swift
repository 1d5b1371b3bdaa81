import Foundation
import HandoffCore

/// Realistic Slack payloads (trimmed from chat-protocols.md §1.5 and Slack's docs), for driving the bot.
package enum FakeSlackPayloads {
    package static func eventCallback(_ event: JSONValue, eventID: String, teamID: String = "T111", appID: String = "A111",
                                      botUserID: String = "UBOT") -> JSONValue
    {
        .object([
            "type": .string("event_callback"), "event_id": .string(eventID), "event_time": .int(1_767_225_600),
            "team_id": .string(teamID), "api_app_id": .string(appID),
            "authorizations": .array([.object(["team_id": .string(teamID), "user_id": .string(botUserID), "is_bot": .bool(true)])]),
            "event": event,
        ])
    }

    /// A person's message (`channel_type` `im` for a DM).
    package static func message(user: String, channel: String, text: String, ts: String, threadTS: String? = nil,
                                channelType: String? = nil) -> JSONValue
    {
        var o: [String: JSONValue] = [
            "type": .string("message"), "user": .string(user), "channel": .string(channel), "text": .string(text), "ts": .string(ts),
            "event_ts": .string(ts), "client_msg_id": .string(UUID().uuidString.lowercased()),
            "channel_type": .string(channelType ?? (channel.hasPrefix("D") ? "im" : "channel")),
        ]
        if let threadTS { o["thread_ts"] = .string(threadTS) }
        return .object(o)
    }

    package static func appMention(user: String, channel: String, text: String, ts: String, threadTS: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = [
            "type": .string("app_mention"), "user": .string(user), "channel": .string(channel), "text": .string(text), "ts": .string(ts),
            "event_ts": .string(ts), "client_msg_id": .string(UUID().uuidString.lowercased()),
        ]
        if let threadTS { o["thread_ts"] = .string(threadTS) }
        return .object(o)
    }

    /// The bot's own message coming back (it carries `bot_id`).
    package static func botMessage(botUserID: String, botID: String, channel: String, text: String, ts: String) -> JSONValue {
        .object([
            "type": .string("message"), "subtype": .string("bot_message"), "user": .string(botUserID), "bot_id": .string(botID),
            "channel": .string(channel), "text": .string(text), "ts": .string(ts), "event_ts": .string(ts),
            "channel_type": .string(channel.hasPrefix("D") ? "im" : "channel"),
        ])
    }

    /// An edit: the original message's `ts` is inside `message`.
    package static func messageChanged(user: String, channel: String, newText: String, originalTS: String, editTS: String) -> JSONValue {
        .object([
            "type": .string("message"), "subtype": .string("message_changed"), "hidden": .bool(true), "channel": .string(channel), "ts": .string(editTS),
            "event_ts": .string(editTS),
            "message": .object(["type": .string("message"), "user": .string(user), "text": .string(newText), "ts": .string(originalTS),
                                "edited": .object(["user": .string(user), "ts": .string(editTS)])]),
            "previous_message": .object(["type": .string("message"), "user": .string(user), "ts": .string(originalTS)]),
        ])
    }

    package static func reaction(added: Bool = true, user: String, reaction: String, channel: String, ts: String, itemUser: String = "UBOT",
                                 itemType: String = "message", eventTS: String) -> JSONValue
    {
        var item: [String: JSONValue] = ["type": .string(itemType)]
        if itemType == "message" {
            item["channel"] = .string(channel)
            item["ts"] = .string(ts)
        } else {
            item["file"] = .string("F111")
        }
        return .object([
            "type": .string(added ? "reaction_added" : "reaction_removed"), "user": .string(user), "reaction": .string(reaction),
            "item_user": .string(itemUser), "item": .object(item), "event_ts": .string(eventTS),
        ])
    }

    package static func blockAction(user: String, channel: String, messageTS: String, actionID: String, value: String,
                                    actionTS: String, triggerID: String, appID: String = "A111", botID: String = "BBOT") -> JSONValue
    {
        .object([
            "type": .string("block_actions"), "user": .object(["id": .string(user), "username": .string(user.lowercased())]),
            "api_app_id": .string(appID), "trigger_id": .string(triggerID),
            "container": .object(["type": .string("message"), "message_ts": .string(messageTS), "channel_id": .string(channel),
                                  "is_ephemeral": .bool(false)]),
            "channel": .object(["id": .string(channel)]),
            "message": .object(["ts": .string(messageTS), "bot_id": .string(botID), "type": .string("message")]),
            "response_url": .string("https://hooks.slack.com/actions/T111/1/xyz"),
            "actions": .array([.object([
                "type": .string("button"), "action_id": .string(actionID), "block_id": .string("decision"), "value": .string(value),
                "action_ts": .string(actionTS),
            ])]),
        ])
    }

    package static func slashCommand(user: String, channel: String, text: String, triggerID: String, command: String = "/handoff",
                                     teamID: String = "T111", appID: String = "A111") -> JSONValue
    {
        .object([
            "command": .string(command), "text": .string(text), "user_id": .string(user), "user_name": .string(user.lowercased()),
            "channel_id": .string(channel), "team_id": .string(teamID), "api_app_id": .string(appID),
            "trigger_id": .string(triggerID), "response_url": .string("https://hooks.slack.com/commands/T111/1/xyz"),
            "token": .string("verification-token"),
        ])
    }
}
