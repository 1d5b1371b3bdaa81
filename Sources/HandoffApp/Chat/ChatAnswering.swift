import Foundation
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffWorkflow

/// The AI loop's chat side, on every platform alike: a question a user asks the bot (a DM or a mention)
/// is recorded for the AI layer, which answers in the same conversation (``AnsweringService``); and the
/// reviewer holding an AI answer's review item writes the corrected answer as a reply in the card's
/// thread, which reaches the asker and is recorded as a correction.
struct ChatAnswering: Sendable {
    let workflow: Workflow

    /// Records a question, with the event's key in the same transaction. Nil for an empty message (the
    /// caller explains what the bot can do instead).
    func question(_ text: String, origin: ConversationRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply]? {
        guard text.nilIfBlank != nil else { return nil }
        _ = try await workflow.ask(AIQuestionDraft(query: text, origin: origin.encoded, asker: event.actor.actorID), event: key)
        return []  // the answer (or "a person will answer") follows from the AI layer through the outbox
    }

    /// A plain reply in the thread of an AI answer's review card, by the reviewer holding it: the corrected
    /// answer (or, without a draft, the answer). Nil when the reply is anything else, which stays ignored.
    func correction(_ text: String, on card: CardRef, event: ChatEvent, key: EventKey) async throws -> [ChatReply]? {
        guard card.entity.kind == .reviewItem, text.nilIfBlank != nil else { return nil }
        let id = ReviewItemID(card.entity.id)
        guard try await workflow.store.aiAnswer(reviewItem: id) != nil else { return nil }
        let item = try await workflow.reviewItem(id)
        // Only the holder's reply counts, so people discussing the draft in the thread send nothing.
        guard item.leaseHolder == event.actor.actorID else { return nil }
        let verdict: ReviewVerdict = item.content.answer?.nilIfBlank == nil ? .approved : .revisionNeeded
        let (_, correction) = try await workflow.submit(id, verdict: verdict, feedback: nil, correctedAnswer: text, by: event.actor.actor, event: key)
        let recorded = correction.map { " Correction #\($0.id) is recorded, so similar questions will get it as an example." } ?? ""
        return [.acknowledge(.approve), .privately(.plain("Your answer is on its way to the user in their conversation." + recorded))]
    }
}
