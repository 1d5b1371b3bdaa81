import Foundation
import HandoffChatKit
import HandoffCore

/// Turns stored Matrix events into ``InboundEvent``s. It drops what the runtime must not act on: the
/// bot's own events (by `sender`; its echoes carry `unsigned.transaction_id` too), edits (`m.replace`,
/// whoever sent them: an edit is never a new command), notices from other bots, and event types
/// nobody handles (chat-protocols.md §4.3).
///
/// - A message in a direct room, one that mentions the bot, or one starting with `!` and a command
///   (`!approve 42`, `!handoff approve 42`) is addressed to the bot.
/// - A reply (`m.relates_to.m.in_reply_to`) or thread reply (`rel_type: m.thread`) refers to the
///   message replied to or the thread's root: the card, when it is one. Reply fallbacks (`> <@bot> …`)
///   are removed from the text.
/// - A reaction (`m.annotation`) refers to the event it annotates; its key is passed on as sent (the
///   reaction map normalises it).
/// - A redaction of a reaction the sync loop recognised is that reaction removed — by the person who
///   reacted (a moderator removing someone's reaction is not that person taking their vote back).
package struct MatrixTranslator: Sendable {
    package var botUserID: String

    package init(botUserID: String) { self.botUserID = botUserID }

    private var platform: String { MatrixStoredEvent.platform }

    package func translate(_ stored: String) throws -> InboundEvent? {
        let s = try MatrixStoredEvent(decoding: stored)
        let e = s.event
        guard let id = e.member("event_id")?.asString, let sender = e.member("sender")?.asString,
              let type = e.member("type")?.asString
        else { return nil }
        if sender == botUserID { return nil }
        let key = MatrixStoredEvent.key(eventID: id)
        let user = PlatformUser(platform: platform, id: sender)
        switch type {
        case "m.room.message":
            return message(e, id: id, key: key, user: user, stored: s)
        case "m.reaction":
            guard let relation = e.member(path: "content", "m.relates_to"), relation.member("rel_type")?.asString == "m.annotation",
                  let target = relation.member("event_id")?.asString, let name = relation.member("key")?.asString
            else { return nil }
            return InboundEvent(
                platform: platform, dedupeKey: key, actor: user, kind: .reactionAdded(name: name),
                conversation: ConversationRef(platform: platform, channel: s.roomID, thread: target, user: sender),
                messageID: id, card: MessageRef(channel: s.roomID, messageID: target), isDirect: s.direct)
        case "m.room.redaction":
            guard let removed = s.removedReaction, removed.sender == sender, Self.redactedEventID(e) == removed.eventID else { return nil }
            return InboundEvent(
                platform: platform, dedupeKey: key, actor: user, kind: .reactionRemoved(name: removed.key),
                conversation: ConversationRef(platform: platform, channel: s.roomID, thread: removed.targetEventID, user: sender),
                messageID: id, card: MessageRef(channel: s.roomID, messageID: removed.targetEventID), isDirect: s.direct)
        default:
            return nil
        }
    }

    private func message(_ e: JSONValue, id: String, key: String, user: PlatformUser, stored s: MatrixStoredEvent) -> InboundEvent? {
        guard let content = e.member("content") else { return nil }
        let relation = content.member("m.relates_to")
        // Edits are not new commands (edge case 68), and neither are edits by someone else (invalid anyway).
        if relation?.member("rel_type")?.asString == "m.replace" || content.member("m.new_content") != nil { return nil }
        // Bots (ours included) send m.notice; people send m.text.
        guard content.member("msgtype")?.asString == "m.text", let rawBody = content.member("body")?.asString else { return nil }
        let threadRoot = relation?.member("rel_type")?.asString == "m.thread" ? relation?.member("event_id")?.asString : nil
        let replyTo = relation?.member(path: "m.in_reply_to", "event_id")?.asString
        var text = replyTo == nil ? rawBody : Self.stripReplyFallback(rawBody)
        let mentionedByID = content.member(path: "m.mentions", "user_ids")?.asArray?.contains { $0.asString == botUserID } ?? false
        let (withoutMention, mentionedInText) = Self.removingMention(of: botUserID, from: text)
        text = withoutMention
        var bang = false
        if text.hasPrefix("!") {
            let rest = String(text.dropFirst())
            if CommandParser.startsWithCommand(rest) || rest.lowercased().hasPrefix(Command.slashName) {
                bang = true
                text = rest
            }
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let addressed = s.direct || mentionedByID || mentionedInText || bang
        // The card a reply refers to: the thread's root, else the message replied to.
        let cardID = threadRoot ?? replyTo
        // A mention or command outside a thread is answered in a thread under it; DMs stay flat.
        let thread = cardID ?? (s.direct || !addressed ? nil : id)
        return InboundEvent(
            platform: platform, dedupeKey: key, actor: user, kind: .message(text: text, addressedToBot: addressed),
            conversation: ConversationRef(platform: platform, channel: s.roomID, thread: thread, user: user.id),
            messageID: id, card: cardID.map { MessageRef(channel: s.roomID, messageID: $0) }, isDirect: s.direct)
    }

    /// The event a redaction removes: `content.redacts` (room version 11+), else the top-level
    /// `redacts` (room versions 1–10).
    package static func redactedEventID(_ event: JSONValue) -> String? {
        event.member(path: "content", "redacts")?.asString ?? event.member("redacts")?.asString
    }

    /// Drops a reply fallback: the leading `> ` quote lines and the blank line after them.
    package static func stripReplyFallback(_ body: String) -> String {
        guard body.hasPrefix(">") else { return body }
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        while let first = lines.first, first.hasPrefix(">") { lines.removeFirst() }
        if lines.first?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeFirst() }
        return lines.joined(separator: "\n")
    }

    /// Removes the bot's user id (`@handoff:example.org`, optionally followed by `:`) or, at the
    /// start, its localpart (`handoff:`), as clients write mentions; says whether there was one.
    package static func removingMention(of bot: String, from text: String) -> (String, Bool) {
        var out = text
        var found = false
        while let range = out.range(of: bot) {
            found = true
            var end = range.upperBound
            if end < out.endIndex, out[end] == ":" || out[end] == "," { end = out.index(after: end) }
            out.replaceSubrange(range.lowerBound..<end, with: "")
        }
        let local = bot.hasPrefix("@") ? String(bot.dropFirst().prefix { $0 != ":" }) : bot
        let trimmed = out.trimmingCharacters(in: .whitespaces)
        for prefix in ["\(local):", "\(local),", "@\(local):", "@\(local) "] where !local.isEmpty && trimmed.lowercased().hasPrefix(prefix.lowercased()) {
            out = String(trimmed.dropFirst(prefix.count))
            found = true
            break
        }
        return (out.replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespacesAndNewlines), found)
    }
}
