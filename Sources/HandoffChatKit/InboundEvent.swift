import Foundation
import HandoffCore

/// A person on a platform: `U123` on `slack` acts as ``HandoffCore/ActorID`` `slack:U123`.
package struct PlatformUser: Hashable, Sendable, Codable {
    package var platform: String
    package var id: String

    package init(platform: String, id: String) {
        self.platform = platform
        self.id = id
    }

    package var actorID: ActorID { ActorID("\(platform):\(id)") }
    /// Chat users never act with administrator rights; groups in the policy decide what they may do.
    package var actor: Actor { Actor(actorID, isAdmin: false) }
}

/// A message the bot posted (a card), as the platform names it.
package struct MessageRef: Hashable, Sendable, Codable {
    package var channel: String
    /// The platform's message id (Slack `ts`), exactly as sent.
    package var messageID: String

    package init(channel: String, messageID: String) {
        self.channel = channel
        self.messageID = messageID
    }
}

/// Every platform's traffic as one stream: a message, a command, a button action, a reaction added or
/// removed. Adapters produce these and decide nothing; the event router acts on them.
package struct InboundEvent: Hashable, Sendable {
    package enum Kind: Hashable, Sendable {
        /// A message in a channel, a DM or a thread. `addressedToBot` is true for DMs and mentions.
        case message(text: String, addressedToBot: Bool)
        /// A slash command (`/handoff approve 42`); its reply is private.
        case command(name: String, text: String)
        /// A button click on a card.
        case action(id: String, value: String)
        case reactionAdded(name: String)
        case reactionRemoved(name: String)
    }

    package var platform: String
    /// Unique per platform event; recorded with the effect so a redelivery has none.
    package var dedupeKey: String
    package var actor: PlatformUser
    package var kind: Kind
    /// Where it happened (channel, thread root, user): replies and notices go back here.
    package var conversation: ConversationRef
    /// The platform message id of the event itself (a message's own id), when it has one.
    package var messageID: String?
    /// The card it refers to: the clicked or reacted-to message, or the root of the thread replied in.
    package var card: MessageRef?
    /// True when the event arrived in a direct conversation with the bot.
    package var isDirect: Bool

    package init(platform: String, dedupeKey: String, actor: PlatformUser, kind: Kind, conversation: ConversationRef,
                 messageID: String? = nil, card: MessageRef? = nil, isDirect: Bool = false)
    {
        self.platform = platform
        self.dedupeKey = dedupeKey
        self.actor = actor
        self.kind = kind
        self.conversation = conversation
        self.messageID = messageID
        self.card = card
        self.isDirect = isDirect
    }
}
