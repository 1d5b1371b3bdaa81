import Foundation
import HandoffChatKit
import HandoffCore
import Logging
import Synchronization

/// Slack as a ``ChatAdapter``: translates stored Slack payloads, renders cards as Block Kit, and sends
/// through the Web API with the bot token. Protocol duties only; it decides nothing.
package final class SlackAdapter: ChatAdapter {
    package struct Configuration: Sendable {
        package var botToken: Secret
        package var reactions = ReactionMap()
        /// Pages of `conversations.history` read at most when reconciling a card whose post reply was lost.
        package var maxHistoryPages = 50

        package init(botToken: Secret) { self.botToken = botToken }
    }

    package let platform = SlackInbound.platform
    let api: SlackWebAPIClient
    let renderer: BlockKitRenderer
    let configuration: Configuration
    let logger: Logger
    private let identityBox = Mutex<SlackBotIdentity?>(nil)

    /// The message metadata type cards carry (their nonce, for reconciliation).
    package static let metadataEventType = "handoff_card"

    package init(api: SlackWebAPIClient, renderer: BlockKitRenderer, configuration: Configuration,
                 logger: Logger = Logger(label: "handoff.slack"))
    {
        self.api = api
        self.renderer = renderer
        self.configuration = configuration
        self.logger = logger
    }

    /// The bot's own ids, once ``prepare()`` has run.
    package var identity: SlackBotIdentity? { identityBox.withLock { $0 } }

    package func prepare() async throws {
        guard identity == nil else { return }
        do {
            let me = try await api.authTest(token: configuration.botToken)
            identityBox.withLock { $0 = me }
            logger.info("Slack bot identity", metadata: ["user": "\(me.userID)", "bot": "\(me.botID ?? "-")", "team": "\(me.teamID ?? "-")"])
        } catch {
            var e = error.deliveryError
            if e.code == .fatal { e.message = "the Slack bot token was refused (\(error.apiError ?? "\(error.code)")); check SLACK_BOT_TOKEN (xoxb-…)" }
            throw e
        }
    }

    package func translate(_ payload: String) throws -> InboundEvent? {
        guard let identity else {
            throw ChatDeliveryError(.transient, "the Slack bot identity is not known yet (auth.test has not succeeded)")
        }
        return try SlackTranslator(identity: identity).translate(payload)
    }

    private func render(_ card: Card) throws(ChatDeliveryError) -> SlackMessage {
        do {
            return try renderer.render(card)
        } catch {
            throw ChatDeliveryError(.permanent, "card \(card.kind.rawValue) could not be rendered: \(error)")
        }
    }

    package func postCard(_ card: Card, channel: String, thread: String?, nonce: String) async throws(ChatDeliveryError) -> PostedMessage {
        let message = try render(card)
        var payload: [String: JSONValue] = ["nonce": .string(nonce)]
        if let entity = card.entity { payload["entity"] = .string(CardButtonValue.encode(entity)) }
        let metadata = JSONValue.object(["event_type": .string(Self.metadataEventType), "event_payload": .object(payload)])
        do {
            return try await api.postMessage(token: configuration.botToken, channel: channel, text: message.text, blocks: message.blocks,
                                             threadTS: thread, metadata: metadata)
        } catch {
            throw error.deliveryError
        }
    }

    package func updateCard(_ card: Card, channel: String, messageID: String, idempotencyKey: String?) async throws(ChatDeliveryError) {
        let message = try render(card)
        do {
            try await api.updateMessage(token: configuration.botToken, channel: channel, ts: messageID, text: message.text, blocks: message.blocks)
        } catch {
            throw error.deliveryError
        }
    }

    /// Looks through the channel's history since the card was recorded, page by page (following
    /// `response_metadata.next_cursor`: a busy channel may have more messages since then than one page
    /// holds), for the message carrying the nonce. Bounded by `maxHistoryPages`; one page is in memory at a time.
    package func findCard(nonce: String, channel: String, since: Date) async throws(ChatDeliveryError) -> PostedMessage? {
        let oldest = String(format: "%.6f", max(0, since.timeIntervalSince1970 - 60))
        var cursor: String?
        var pages = 0
        do {
            repeat {
                let page = try await api.history(token: configuration.botToken, channel: channel, oldest: oldest, limit: 200, cursor: cursor)
                pages += 1
                for message in page.messages {
                    guard message.member(path: "metadata", "event_type")?.asString == Self.metadataEventType,
                          message.member(path: "metadata", "event_payload", "nonce")?.asString == nonce,
                          let ts = message.member("ts")?.asString
                    else { continue }
                    return PostedMessage(channel: channel, messageID: ts, threadID: message.member("thread_ts")?.asString)
                }
                cursor = page.nextCursor
            } while cursor != nil && pages < configuration.maxHistoryPages
            if cursor != nil {
                logger.warning("gave up looking for a card in a long channel history", metadata: ["channel": "\(channel)", "pages": "\(pages)"])
            }
            return nil
        } catch {
            throw error.deliveryError
        }
    }

    /// Slack has no idempotency for `chat.postMessage`; the key is not used.
    package func send(_ text: RichText, to conversation: ConversationRef, idempotencyKey: String?) async throws(ChatDeliveryError) {
        let body = Escaping.truncate(BlockKitRenderer.mrkdwn(text), to: BlockKitLimits.fallbackText)
        do {
            let channel: String
            if let known = conversation.channel {
                channel = known
            } else if let user = conversation.user {
                channel = try await api.openDM(token: configuration.botToken, user: user)
            } else {
                throw ChatDeliveryError(.permanent, "a conversation with neither channel nor user: \(conversation)")
            }
            _ = try await api.postMessage(token: configuration.botToken, channel: channel, text: body, threadTS: conversation.thread)
        } catch let error as SlackAPIError {
            throw error.deliveryError
        } catch let error as ChatDeliveryError {
            throw error
        } catch {
            throw ChatDeliveryError(.transient, "\(error)")
        }
    }

    package func sendPrivately(_ text: RichText, to user: String, channel: String, thread: String?) async throws(ChatDeliveryError) {
        let body = Escaping.truncate(BlockKitRenderer.mrkdwn(text), to: BlockKitLimits.fallbackText)
        do {
            try await api.postEphemeral(token: configuration.botToken, channel: channel, user: user, text: body, threadTS: thread)
        } catch {
            throw error.deliveryError
        }
    }

    package func render(_ text: RichText) -> String {
        Escaping.truncate(BlockKitRenderer.mrkdwn(text), to: 3000)
    }

    package func acknowledge(channel: String, messageID: String, with reaction: ReactionAction) async throws(ChatDeliveryError) {
        guard let name = configuration.reactions.shortcode(for: reaction) else { return }
        do {
            try await api.addReaction(token: configuration.botToken, channel: channel, ts: messageID, name: name)
        } catch {
            if error.apiError == "already_reacted" { return }
            throw error.deliveryError
        }
    }
}
