import Foundation
import HandoffChatKit
import HandoffCore

/// Turns stored Slack payloads into ``InboundEvent``s. It drops what the runtime must not act on:
/// the bot's own messages and reactions (by user id and `bot_id`), other bots, edits and deletions,
/// reactions on files, and event types nobody handles.
package struct SlackTranslator: Sendable {
    package var identity: SlackBotIdentity

    package init(identity: SlackBotIdentity) { self.identity = identity }

    package func translate(_ stored: String) throws -> InboundEvent? {
        let json = try JSONValue.parsePayload(stored)
        guard let type = json.member("type")?.asString, let payload = json.member("payload") else {
            throw MalformedPayload(description: "a stored Slack event without type or payload")
        }
        guard let key = SlackInbound.key(type: type, payload: payload) else { return nil }
        switch type {
        case "events_api": return event(payload, key: key)
        case "interactive": return interaction(payload, key: key)
        case "slash_commands": return command(payload, key: key)
        default: return nil
        }
    }

    private func user(_ id: String) -> PlatformUser { PlatformUser(platform: SlackInbound.platform, id: id) }

    private func isSelf(userID: String?, botID: String?) -> Bool {
        if let botID, !botID.isEmpty { return true }  // any bot's message: ours (self echo) or another bot's
        return userID == identity.userID
    }

    private func event(_ payload: JSONValue, key: String) -> InboundEvent? {
        guard let event = payload.member("event"), let type = event.member("type")?.asString else { return nil }
        switch type {
        case "message", "app_mention":
            // Edits (message_changed), deletions, joins, bot_message…: not new commands.
            if let subtype = event.member("subtype")?.asString, subtype != "thread_broadcast" { return nil }
            guard let userID = event.member("user")?.asString, let channel = event.member("channel")?.asString,
                  let ts = event.member("ts")?.asString
            else { return nil }
            if isSelf(userID: userID, botID: event.member("bot_id")?.asString) { return nil }
            let raw = event.member("text")?.asString ?? ""
            let mentionsBot = raw.contains("<@\(identity.userID)>") || raw.contains("<@\(identity.userID)|")
            let text = Escaping.slackPlainText(raw, removingMentionOf: identity.userID)
            let isDirect = event.member("channel_type")?.asString == "im" || channel.hasPrefix("D")
            let threadTS = event.member("thread_ts")?.asString.flatMap { $0 == ts ? nil : $0 }
            // A mention outside a thread is answered in a new thread under it.
            let conversationThread = threadTS ?? (isDirect ? nil : ts)
            return InboundEvent(
                platform: SlackInbound.platform, dedupeKey: key, actor: user(userID),
                kind: .message(text: text, addressedToBot: isDirect || mentionsBot || type == "app_mention"),
                conversation: ConversationRef(platform: SlackInbound.platform, channel: channel, thread: conversationThread, user: userID),
                messageID: ts, card: threadTS.map { MessageRef(channel: channel, messageID: $0) }, isDirect: isDirect)
        case "reaction_added", "reaction_removed":
            guard let userID = event.member("user")?.asString, userID != identity.userID,
                  event.member(path: "item", "type")?.asString == "message",
                  let channel = event.member(path: "item", "channel")?.asString, let ts = event.member(path: "item", "ts")?.asString,
                  let name = event.member("reaction")?.asString
            else { return nil }
            return InboundEvent(
                platform: SlackInbound.platform, dedupeKey: key, actor: user(userID),
                kind: type == "reaction_added" ? .reactionAdded(name: name) : .reactionRemoved(name: name),
                conversation: ConversationRef(platform: SlackInbound.platform, channel: channel, thread: ts, user: userID),
                card: MessageRef(channel: channel, messageID: ts), isDirect: channel.hasPrefix("D"))
        default:
            return nil
        }
    }

    private func interaction(_ payload: JSONValue, key: String) -> InboundEvent? {
        guard payload.member("type")?.asString == "block_actions", let action = payload.member("actions")?.asArray?.first,
              let userID = payload.member(path: "user", "id")?.asString, userID != identity.userID,
              let actionID = action.member("action_id")?.asString
        else { return nil }
        if payload.member(path: "container", "is_ephemeral")?.asBool == true { return nil }
        guard let channel = payload.member(path: "container", "channel_id")?.asString ?? payload.member(path: "channel", "id")?.asString,
              let messageTS = payload.member(path: "container", "message_ts")?.asString ?? payload.member(path: "message", "ts")?.asString
        else { return nil }
        return InboundEvent(
            platform: SlackInbound.platform, dedupeKey: key, actor: user(userID),
            kind: .action(id: actionID, value: action.member("value")?.asString ?? ""),
            conversation: ConversationRef(platform: SlackInbound.platform, channel: channel, thread: messageTS, user: userID),
            card: MessageRef(channel: channel, messageID: messageTS), isDirect: channel.hasPrefix("D"))
    }

    private func command(_ payload: JSONValue, key: String) -> InboundEvent? {
        guard let userID = payload.member("user_id")?.asString, let channel = payload.member("channel_id")?.asString else { return nil }
        let name = (payload.member("command")?.asString ?? "/\(Command.slashName)").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let text = Escaping.slackPlainText(payload.member("text")?.asString ?? "", removingMentionOf: identity.userID)
        let isDirect = channel.hasPrefix("D")
        return InboundEvent(
            platform: SlackInbound.platform, dedupeKey: key, actor: user(userID), kind: .command(name: name, text: text),
            conversation: ConversationRef(platform: SlackInbound.platform, channel: channel, user: userID),
            isDirect: isDirect)
    }
}
