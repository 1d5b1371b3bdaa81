import Foundation
import HandoffCore

/// A message the platform accepted.
package struct PostedMessage: Hashable, Sendable {
    package var channel: String
    /// The platform's message id (Slack `ts`), exactly as returned.
    package var messageID: String
    package var threadID: String?

    package init(channel: String, messageID: String, threadID: String? = nil) {
        self.channel = channel
        self.messageID = messageID
        self.threadID = threadID
    }
}

/// Why an outbound chat call failed, sorted by what the caller should do about it.
package struct ChatDeliveryError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        /// The platform said to wait this long (HTTP 429 Retry-After).
        case rateLimited(retryAfter: Duration)
        /// Worth retrying later (network, 5xx, timeouts).
        case transient
        /// Retrying will not help (`message_not_found`, `channel_not_found`, invalid blocks).
        case permanent
        /// The credentials are wrong or revoked; nothing will work until an operator fixes them.
        case fatal
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }
}

/// A raw platform event, ready to be made durable before the platform sees our ack.
package struct RawInbound: Hashable, Sendable {
    package var platform: String
    /// The platform dedupe key (`event:Ev123`, `msg:C1:1610.0002`, `cmd:<trigger_id>`).
    package var key: String
    /// The raw payload, kept so processing can run after the ack (and after a restart).
    package var payload: String
    /// Set for commands whose reply goes in the ack (Slack `accepts_response_payload`): how long the
    /// sink may take to produce that reply before the ack must go out anyway.
    package var replyDeadline: Duration?

    package init(platform: String, key: String, payload: String, replyDeadline: Duration? = nil) {
        self.platform = platform
        self.key = key
        self.payload = payload
        self.replyDeadline = replyDeadline
    }
}

/// What happened to an inbound event at the sink.
package enum Acceptance: Hashable, Sendable {
    /// Durable now; it will be processed.
    case recorded
    /// Seen before (a redelivery); ack it, do nothing.
    case duplicate
    /// Durable and already answered: put this private reply in the ack.
    case reply(String)
}

/// Where adapters hand inbound events. `accept` returns only once the event is durable (or throws,
/// and then the adapter must not ack: the platform will redeliver).
package protocol InboundSink: Sendable {
    func accept(_ raw: RawInbound) async throws -> Acceptance
    /// Makes a whole batch durable (one transaction where the sink can), for platforms that confirm a
    /// batch at once (Matrix commits its `/sync` token after the batch). Returns per event, in order.
    func accept(batch: [RawInbound]) async throws -> [Acceptance]
}

extension InboundSink {
    /// One at a time, in order; sinks that can write a batch in one transaction override this.
    package func accept(batch: [RawInbound]) async throws -> [Acceptance] {
        var out: [Acceptance] = []
        out.reserveCapacity(batch.count)
        for raw in batch { out.append(try await accept(raw)) }
        return out
    }
}

/// One chat platform, as the platform-neutral runtime sees it: it turns raw payloads into
/// ``InboundEvent``s and renders and sends cards and messages. It decides nothing.
package protocol ChatAdapter: Sendable {
    /// `slack`, `discord`, …: the identity prefix and the `platform` column in the store.
    var platform: String { get }

    /// Learns what the adapter needs before translating (e.g. the bot's own user id). Throws a
    /// ``ChatDeliveryError`` with code `.fatal` when the credentials are rejected.
    func prepare() async throws

    /// Reads a stored raw payload. Returns nil for events to ignore: the bot's own echoes, edits,
    /// event types the runtime does not handle.
    func translate(_ payload: String) throws -> InboundEvent?

    /// Posts a card; `nonce` travels with the message so a lost reply can be reconciled.
    func postCard(_ card: Card, channel: String, thread: String?, nonce: String) async throws(ChatDeliveryError) -> PostedMessage
    /// Re-renders a posted card in place. `idempotencyKey` is the same for every attempt of one update
    /// (it is kept with the outbox row), so a platform that deduplicates sends (Matrix `txnId`) shows it once.
    func updateCard(_ card: Card, channel: String, messageID: String, idempotencyKey: String?) async throws(ChatDeliveryError)
    /// Adds what the platform shows next to a card once it is posted or re-rendered, best effort: Matrix
    /// has no buttons, so it seeds the card with the reaction keys of the card's buttons.
    func decorateCard(_ card: Card, posted: PostedMessage) async throws(ChatDeliveryError)
    /// Finds a card posted with this nonce after `since` (reconciling a post whose reply was lost).
    func findCard(nonce: String, channel: String, since: Date) async throws(ChatDeliveryError) -> PostedMessage?

    /// Sends a message into a conversation: a thread reply, a channel message, or a DM when the
    /// conversation has only a user. `idempotencyKey`, when given, is the same for every attempt of one
    /// message (an outbox row's), so a platform that deduplicates sends shows it once.
    func send(_ text: RichText, to conversation: ConversationRef, idempotencyKey: String?) async throws(ChatDeliveryError)
    /// Sends a message only `user` sees (Slack ephemeral), in a channel (and thread).
    func sendPrivately(_ text: RichText, to user: String, channel: String, thread: String?) async throws(ChatDeliveryError)
    /// Rich text in the platform's markup (for replies that travel in an ack, like a slash command's).
    func render(_ text: RichText) -> String
    /// Marks a person's message as handled (a reaction), best effort.
    func acknowledge(channel: String, messageID: String, with reaction: ReactionAction) async throws(ChatDeliveryError)
}

extension ChatAdapter {
    /// Nothing to add next to a card (platforms with buttons).
    package func decorateCard(_ card: Card, posted: PostedMessage) async throws(ChatDeliveryError) {}

    /// A message without an idempotency key (a reply to an event: at most once is enough).
    package func send(_ text: RichText, to conversation: ConversationRef) async throws(ChatDeliveryError) {
        try await send(text, to: conversation, idempotencyKey: nil)
    }

    package func updateCard(_ card: Card, channel: String, messageID: String) async throws(ChatDeliveryError) {
        try await updateCard(card, channel: channel, messageID: messageID, idempotencyKey: nil)
    }
}
