import Foundation
import HandoffChatKit
import HandoffCore
import Logging
import Synchronization

/// Matrix as a ``ChatAdapter``: translates stored Matrix events, renders cards as HTML with a plain
/// body, and sends through the client-server API. Matrix has no buttons, so a card is seeded with the
/// reaction keys of its actions (✅ ❌ 🔁 ✋ ⬆️) and people answer by reacting or by replying with a
/// command; a decided card is edited in place (`m.replace`). Private explanations go to a direct
/// room with the person (created on first use, reused after). Protocol duties only; it decides nothing.
package final class MatrixAdapter: ChatAdapter {
    package struct Configuration: Sendable {
        package var reactions = ReactionMap()
        /// Seed every card with the reaction keys of its actions.
        package var seedReactions = true
        /// What the bot's messages are: `m.notice` (bots' convention; other bots ignore them).
        package var messageType = "m.notice"
        /// Pages of recent room history searched when reconciling a card whose post reply was lost.
        package var findCardPages = 5

        package init() {}
    }

    /// The content key that carries a card's nonce (reconciliation) and entity.
    package static let nonceKey = "org.handoff.nonce"
    package static let entityKey = "org.handoff.entity"

    package let platform = MatrixStoredEvent.platform
    package let client: MatrixClient
    let renderer: MatrixRenderer
    let state: any MatrixStateStore
    let configuration: Configuration
    let logger: Logger
    package let transactions = MatrixTransactionIDs()
    private let botUser = Mutex<String?>(nil)
    private let directRoomLock = AsyncLock()

    package init(client: MatrixClient, renderer: MatrixRenderer, state: any MatrixStateStore, configuration: Configuration = Configuration(),
                 logger: Logger = Logger(label: "handoff.matrix"))
    {
        self.client = client
        self.renderer = renderer
        self.state = state
        self.configuration = configuration
        self.logger = logger
    }

    /// The bot's user id, once ``prepare()`` has run.
    package var botUserID: String? { botUser.withLock { $0 } }

    package func prepare() async throws {
        _ = try await ready()
    }

    /// Logs in (once) and loads the `txnId` namespace; every send goes through here first.
    @discardableResult
    private func ready() async throws(ChatDeliveryError) -> String {
        if let user = botUserID, transactions.currentNamespace != nil { return user }
        let session: MatrixSession
        do {
            session = try await client.ensureSession()
        } catch {
            throw error.deliveryError
        }
        do {
            let namespace: String
            if let existing = try await state.value(forKey: MatrixStateKeys.transactionNamespace) {
                namespace = existing
            } else {
                namespace = MatrixTransactionIDs.random(12)
                try await state.setValue(namespace, forKey: MatrixStateKeys.transactionNamespace)
            }
            transactions.setNamespace(namespace)
        } catch {
            throw ChatDeliveryError(.transient, "could not read the Matrix transaction namespace: \(error)")
        }
        botUser.withLock { $0 = session.userID }
        return session.userID
    }

    package func translate(_ payload: String) throws -> InboundEvent? {
        guard let bot = botUserID else {
            throw ChatDeliveryError(.transient, "the Matrix bot identity is not known yet (login has not succeeded)")
        }
        return try MatrixTranslator(botUserID: bot).translate(payload)
    }

    private func render(_ card: Card) throws(ChatDeliveryError) -> MatrixMessage {
        do {
            return try renderer.render(card)
        } catch {
            throw ChatDeliveryError(.permanent, "card \(card.kind.rawValue) could not be rendered for Matrix: \(error)")
        }
    }

    // MARK: Cards

    package func postCard(_ card: Card, channel: String, thread: String?, nonce: String) async throws(ChatDeliveryError) -> PostedMessage {
        try await ready()
        let message = try render(card)
        var content = message.content(msgtype: configuration.messageType)
        content[Self.nonceKey] = .string(nonce)
        if let entity = card.entity { content[Self.entityKey] = .string(CardButtonValue.encode(entity)) }
        if let thread { content["m.relates_to"] = Self.threadRelation(root: thread) }
        do {
            // The nonce is the card's durable identity: every retry is the same transaction.
            let id = try await client.send(room: channel, type: "m.room.message", txnID: transactions.keyed(nonce), content: .object(content))
            return PostedMessage(channel: channel, messageID: id, threadID: thread)
        } catch {
            throw error.deliveryError
        }
    }

    /// Edits the card in place: `m.replace` with the new content in `m.new_content` (the top level
    /// carries the `* ` fallback older clients show).
    package func updateCard(_ card: Card, channel: String, messageID: String, idempotencyKey: String?) async throws(ChatDeliveryError) {
        try await ready()
        let message = try render(card)
        let content = MatrixRenderer.editContent(message, msgtype: configuration.messageType, replacing: messageID)
        let txn = idempotencyKey.map(transactions.keyed) ?? transactions.fresh()
        do {
            _ = try await client.send(room: channel, type: "m.room.message", txnID: txn, content: .object(content))
        } catch {
            throw error.deliveryError
        }
    }

    /// Seeds the card with the reaction keys of its actions; a key already there
    /// (`M_DUPLICATE_ANNOTATION`, e.g. after a restart or a re-render) counts as placed.
    package func decorateCard(_ card: Card, posted: PostedMessage) async throws(ChatDeliveryError) {
        guard configuration.seedReactions else { return }
        try await ready()
        for key in seedKeys(for: card) {
            do {
                try await client.react(room: posted.channel, to: posted.messageID, key: key, txnID: transactions.fresh())
            } catch {
                throw error.deliveryError
            }
        }
    }

    /// The reaction keys a card offers, in button order.
    package func seedKeys(for card: Card) -> [String] {
        var actions: [ReactionAction] = []
        for button in card.buttons {
            switch button.action {
            case .approve: actions.append(.approve)
            case .reject: actions.append(.reject)
            case .revise: actions.append(.revise)
            case .claim: actions.append(.claim)
            case .escalate: actions.append(.escalate)
            case .answer:
                if card.kind == .feedbackRequest, !actions.contains(.feedbackPositive) { actions += [.feedbackPositive, .feedbackNegative] }
            }
        }
        return actions.compactMap { configuration.reactions.emoji(for: $0) }
    }

    package func findCard(nonce: String, channel: String, since: Date) async throws(ChatDeliveryError) -> PostedMessage? {
        let bot = try await ready()
        let filter = JSONValue.object(["types": .array([.string("m.room.message")]), "senders": .array([.string(bot)])]).jsonText
        var from: String?
        let oldest = Int64((since.timeIntervalSince1970 - 60) * 1000)
        do {
            for _ in 0..<configuration.findCardPages {
                let page = try await client.messages(room: channel, from: from, direction: "b", limit: 100, filter: filter)
                let chunk = page.member("chunk")?.asArray ?? []
                for event in chunk {
                    let content = event.member("content")
                    if content?.member(Self.nonceKey)?.asString == nonce, content?.member("m.relates_to")?.member("rel_type")?.asString != "m.replace",
                       let id = event.member("event_id")?.asString
                    {
                        return PostedMessage(channel: channel, messageID: id, threadID: content?.member(path: "m.relates_to", "event_id")?.asString)
                    }
                }
                let reachedOldest = chunk.contains { ($0.member("origin_server_ts")?.asInt ?? .max) < oldest }
                guard !reachedOldest, let end = page.member("end")?.asString, !chunk.isEmpty else { return nil }
                from = end
            }
            return nil
        } catch {
            throw error.deliveryError
        }
    }

    // MARK: Messages

    package func send(_ text: RichText, to conversation: ConversationRef, idempotencyKey: String?) async throws(ChatDeliveryError) {
        try await ready()
        let room: String
        if let channel = conversation.channel {
            room = channel
        } else if let user = conversation.user {
            room = try await directRoom(with: user)
        } else {
            throw ChatDeliveryError(.permanent, "a conversation with neither room nor user: \(conversation)")
        }
        var content = MatrixRenderer.message(text).content(msgtype: configuration.messageType)
        if let thread = conversation.thread { content["m.relates_to"] = Self.threadRelation(root: thread) }
        let txn = idempotencyKey.map(transactions.keyed) ?? transactions.fresh()
        do {
            _ = try await client.send(room: room, type: "m.room.message", txnID: txn, content: .object(content))
        } catch {
            throw error.deliveryError
        }
    }

    /// Matrix has no ephemeral messages: the explanation goes to the person's direct room with the bot.
    package func sendPrivately(_ text: RichText, to user: String, channel: String, thread: String?) async throws(ChatDeliveryError) {
        try await send(text, to: ConversationRef(platform: platform, channel: nil, user: user), idempotencyKey: nil)
    }

    package func render(_ text: RichText) -> String { MatrixRenderer.plain(text) }

    package func acknowledge(channel: String, messageID: String, with reaction: ReactionAction) async throws(ChatDeliveryError) {
        try await ready()
        guard let key = configuration.reactions.emoji(for: reaction) else { return }
        do {
            try await client.react(room: channel, to: messageID, key: key, txnID: transactions.fresh())
        } catch {
            throw error.deliveryError
        }
    }

    // MARK: Direct rooms

    /// The direct room with a person: the one they talk to the bot in (the sync loop remembers it), or
    /// a new one the bot creates and invites them to (one at a time, so two notices make one room).
    package func directRoom(with user: String) async throws(ChatDeliveryError) -> String {
        let bot = try await ready()
        let key = MatrixStateKeys.directRoom(bot: bot, user: user)
        do {
            return try await directRoomLock.run { () async throws(MatrixError) -> String in
                if let known = try? await state.value(forKey: key) { return known }
                let room = try await client.createRoom(.object([
                    "preset": .string("trusted_private_chat"), "is_direct": .bool(true), "invite": .array([.string(user)]),
                    "name": .string("Handoff"), "topic": .string("Private notes from the Handoff bot"),
                ]))
                do {
                    try await state.setValue(room, forKey: key)
                } catch {
                    logger.warning("could not remember a direct room", metadata: ["user": "\(user)", "error": "\(error)"])
                }
                logger.info("opened a direct room", metadata: ["user": "\(user)", "room": "\(room)"])
                return room
            }
        } catch {
            throw error.deliveryError
        }
    }

    /// `m.thread` to the root, with the reply fallback for clients without threads.
    static func threadRelation(root: String) -> JSONValue {
        .object([
            "rel_type": .string("m.thread"), "event_id": .string(root), "is_falling_back": .bool(true),
            "m.in_reply_to": .object(["event_id": .string(root)]),
        ])
    }
}
