import Foundation
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging

/// Delivers the chat side of the outbox: posts cards (`post_card`), re-renders them (`update_cards`)
/// and sends notices (`notify`) on every connected platform.
///
/// Posting is reconciled, never blindly repeated: the card ref is recorded as `posting` with a nonce
/// before the call, the nonce travels in the message metadata, and a ref left in `posting` (a crash or a
/// lost reply) is looked up on the platform before anything is posted again. Calls to one channel go
/// one at a time; its posts in the order they were asked for (the store holds a post back while an
/// earlier one to the same destination waits); rate limits come back as a retry at the platform's
/// Retry-After.
package struct ChatDeliverer: OutboxDeliverer {
    package let kinds: Set<OutboxKind> = [.postCard, .updateCards, .notify]
    package let maxAttempts: Int

    let workflow: Workflow
    let adapters: [String: any ChatAdapter]
    let chat: ChatConfiguration
    let cards: CardBuilder
    let lanes = ChannelLanes()
    let logger: Logger

    package init(workflow: Workflow, adapters: [any ChatAdapter], chat: ChatConfiguration, maxAttempts: Int = 20,
                 logger: Logger = Logger(label: "handoff.chat.outbox"))
    {
        self.workflow = workflow
        self.adapters = Dictionary(adapters.map { ($0.platform, $0) }, uniquingKeysWith: { a, _ in a })
        self.chat = chat
        self.cards = CardBuilder(escalation: workflow.policy.escalation)
        self.maxAttempts = maxAttempts
        self.logger = logger
    }

    var store: any WorkflowStore { workflow.store }

    package func deliver(_ message: OutboxMessage) async -> DeliveryResult {
        do {
            switch message.kind {
            case .postCard: try await post(message)
            case .updateCards: try await update(message)
            case .notify: try await notify(message)
            case .webhook: return .failed(reason: "webhooks are not chat deliveries")
            }
            return .delivered
        } catch let error as ChatDeliveryError {
            switch error.code {
            case .rateLimited(let after): return .retry(after: after, reason: error.message)
            case .transient: return .retry(after: nil, reason: error.message)
            case .permanent, .fatal:
                logger.warning("chat delivery failed", metadata: ["outbox": "\(message.id)", "kind": "\(message.kind.rawValue)", "error": "\(error.message)"])
                return .failed(reason: error.message)
            }
        } catch {
            return .retry(after: nil, reason: "\(error)")
        }
    }

    /// A post given up for good leaves its cards `posting` (a transient failure may have posted them):
    /// they are marked failed, so nothing looks for them on the platform any more.
    package func gaveUp(on message: OutboxMessage) async {
        guard message.kind == .postCard else { return }
        let prefix = "handoff-\(message.id)-"
        do {
            for card in try await store.cards(of: message.entity) where card.state == .posting && card.nonce.hasPrefix(prefix) {
                try await store.cardFailed(card.id, at: workflow.clock.now())
            }
        } catch {
            logger.warning("could not mark a given-up card failed", metadata: ["outbox": "\(message.id)", "error": "\(error)"])
        }
    }

    // MARK: Cards

    /// The card for the entity as the database holds it now.
    func currentCard(_ entity: EntityRef) async throws -> Card? {
        switch entity.kind {
        case .approval: try await store.approval(ApprovalID(entity.id)).map { cards.card(for: $0.value) }
        case .escalation: try await store.escalation(EscalationID(entity.id)).map { cards.card(for: $0.value) }
        case .reviewItem: try await store.reviewItem(ReviewItemID(entity.id)).map { cards.card(for: $0.value) }
        case .feedback: try await store.feedback(FeedbackID(entity.id)).map { cards.card(for: $0.value) }
        case .labelTask: try await store.labelTask(LabelTaskID(entity.id)).map { cards.card(for: $0.value) }
        case .correction, .label: nil
        }
    }

    private func post(_ message: OutboxMessage) async throws {
        let destination = message.destination ?? "default"
        guard let card = try await currentCard(message.entity) else {
            throw ChatDeliveryError(.permanent, "\(message.entity) no longer exists")
        }
        var posted = 0
        for adapter in adapters.values.sorted(by: { $0.platform < $1.platform }) {
            // A card for one person's conversation (the 👍/👎 under an AI answer) goes into it, on its platform only.
            let conversation = ConversationRef(encoded: destination)
            let target = conversation.map { $0.platform == adapter.platform ? $0.channel : nil } ?? chat.channel(for: destination, platform: adapter.platform)
            guard let channel = target else { continue }
            let nonce = "handoff-\(message.id)-\(adapter.platform)"
            let existing = try await store.cards(of: message.entity).first { $0.nonce == nonce }
            if existing?.state == .posted {
                posted += 1
                continue
            }
            if let existing, existing.state == .posting,
               let found = try await adapter.findCard(nonce: nonce, channel: existing.channel, since: existing.createdAt)
            {
                // The earlier attempt landed but its reply was lost: adopt that message.
                try await store.cardPosted(existing.id, messageID: found.messageID, threadID: found.threadID, at: workflow.clock.now())
                logger.info("reconciled a card whose post reply was lost", metadata: ["card": "\(existing.id)", "message": "\(found.messageID)"])
                posted += 1
                await decorate(card, found, adapter: adapter)
                continue
            }
            let rowID: Int64
            if let existing {
                rowID = existing.id
            } else {
                rowID = try await store.beginCard(entity: message.entity, platform: adapter.platform, destination: destination,
                                                  channel: channel, threadID: conversation?.thread, nonce: nonce, at: workflow.clock.now())
            }
            do {
                let sent = try await lanes.run("\(adapter.platform)|\(channel)") {
                    try await adapter.postCard(card, channel: channel, thread: conversation?.thread, nonce: nonce)
                }
                try await store.cardPosted(rowID, messageID: sent.messageID, threadID: sent.threadID, at: workflow.clock.now())
                posted += 1
                await decorate(card, sent, adapter: adapter)
            } catch let error as ChatDeliveryError {
                // A definite refusal means nothing was posted; a transient failure may have posted, so the
                // ref stays `posting` and the next attempt looks for it first.
                if error.code != .transient { try await store.cardFailed(rowID, at: workflow.clock.now()) }
                throw error
            }
        }
        if posted == 0 {
            let platforms = adapters.keys.sorted().joined(separator: ", ")
            throw ChatDeliveryError(.permanent,
                                    "no channel is configured for '\(destination)' on \(platforms.isEmpty ? "any platform" : platforms) (add chat.channels.\(destination) or chat.channels.default to the policy file)")
        }
    }

    private func update(_ message: OutboxMessage) async throws {
        guard let card = try await currentCard(message.entity) else { return }
        var problems: [String] = []
        for ref in try await store.cards(of: message.entity) {
            guard let adapter = adapters[ref.platform] else { continue }
            var target = ref
            if ref.state == .posting {
                guard let found = try await adapter.findCard(nonce: ref.nonce, channel: ref.channel, since: ref.createdAt) else { continue }
                try await store.cardPosted(ref.id, messageID: found.messageID, threadID: found.threadID, at: workflow.clock.now())
                target.messageID = found.messageID
                target.state = .posted
            }
            guard target.state == .posted, let messageID = target.messageID else { continue }
            do {
                // One key per outbox row and card, so a retried edit is one edit on platforms that dedupe sends.
                let key = "update-\(message.id)-\(ref.id)"
                try await lanes.run("\(ref.platform)|\(ref.channel)") {
                    try await adapter.updateCard(card, channel: ref.channel, messageID: messageID, idempotencyKey: key)
                }
                await decorate(card, PostedMessage(channel: ref.channel, messageID: messageID, threadID: ref.threadID), adapter: adapter)
            } catch let error as ChatDeliveryError where error.code == .permanent {
                // e.g. message_not_found: the state is kept; this card cannot show it. Say so, do not loop.
                problems.append("card \(ref.channel)/\(messageID): \(error.message)")
            }
        }
        if !problems.isEmpty { throw ChatDeliveryError(.permanent, problems.joined(separator: "; ")) }
    }

    // MARK: Notices

    private func notify(_ message: OutboxMessage) async throws {
        let payload: NotifyPayload
        do {
            payload = try WireJSON.decoder().decode(NotifyPayload.self, from: Data(message.payload.utf8))
        } catch {
            throw ChatDeliveryError(.permanent, "unreadable notice payload: \(error)")
        }
        let conversation: ConversationRef
        switch payload.audience {
        case .origin:
            guard let origin = payload.origin, let ref = ConversationRef(encoded: origin) else {
                logger.debug("a notice for an origin that is not a chat conversation", metadata: ["entity": "\(message.entity)"])
                return
            }
            conversation = ref
        case .person(let actor):
            conversation = ConversationRef(platform: String(actor.namespace), channel: nil, user: String(actor.localPart))
        }
        guard let adapter = adapters[conversation.platform] else {
            logger.debug("a notice for a platform that is not connected", metadata: ["platform": "\(conversation.platform)"])
            return
        }
        let lane = "\(conversation.platform)|\(conversation.channel ?? "dm:\(conversation.user ?? "")")"
        let key = "notify-\(message.id)"
        try await lanes.run(lane) {
            try await adapter.send(.plain(payload.text), to: conversation, idempotencyKey: key)
        }
    }

    /// What the platform adds next to a card (Matrix seeds its reaction keys); best effort, since the
    /// card itself is already there and a person can still reply with a command.
    private func decorate(_ card: Card, _ posted: PostedMessage, adapter: any ChatAdapter) async {
        do {
            try await lanes.run("\(adapter.platform)|\(posted.channel)") {
                try await adapter.decorateCard(card, posted: posted)
            }
        } catch {
            logger.warning("could not decorate a card", metadata: ["platform": "\(adapter.platform)", "message": "\(posted.messageID)",
                                                                "error": "\(error)"])
        }
    }
}

/// One-at-a-time, first-come-first-served lanes (one per channel), so a channel's messages keep their order.
actor ChannelLanes {
    private var busy: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ lane: String) async {
        if busy.insert(lane).inserted { return }
        await withCheckedContinuation { waiters[lane, default: []].append($0) }
    }

    func release(_ lane: String) {
        if var queue = waiters[lane], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[lane] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            busy.remove(lane)
        }
    }

    nonisolated func run<T: Sendable>(_ lane: String, _ body: @Sendable () async throws -> T) async throws -> T {
        await acquire(lane)
        do {
            let result = try await body()
            await release(lane)
            return result
        } catch {
            await release(lane)
            throw error
        }
    }
}
