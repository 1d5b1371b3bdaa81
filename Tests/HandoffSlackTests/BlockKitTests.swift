import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import Testing

@Suite struct BlockKitTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)

    static func renderer() throws -> BlockKitRenderer {
        BlockKitRenderer(templates: try CardTemplates.load(directory: PackagePaths.cardTemplates))
    }

    static func approval(summary: String, arguments: JSONValue = .object(["service": .string("api")])) throws -> Approval {
        let request = ApprovalRequest(action: "deploy", arguments: arguments, summary: summary, requester: "slack:U0REQ")
        return try ApprovalMachine.create(id: ApprovalID(42), request: request, policy: ApprovalPolicy(), now: now).entity
    }

    /// Every card kind renders to blocks that both our validator and the fake's (Slack's rules) accept.
    @Test func everyCardKindRendersToValidBlockKit() throws {
        let renderer = try Self.renderer()
        let builder = CardBuilder()
        let directory = Directory(groups: ["approvers": ["slack:U0ALICE"], "agents": ["slack:U0DAVE"]])
        let pending = try Self.approval(summary: "Deploy api 1.4.2")
        let decided = try ApprovalMachine.decide(pending, verdict: .reject, comment: "not on a Friday", by: Actor("slack:U0ALICE"),
                                                 directory: directory, now: Self.now.addingTimeInterval(5)).entity
        let escalation = try EscalationMachine.open(
            id: EscalationID(3), request: EscalationRequest(query: "This is wrong, I want a person", trigger: .userAsked(phrase: "i want a person"),
                                                           requester: "slack:U0USER", origin: "chat:slack?channel=D0USER&user=U0USER"),
            config: EscalationConfig(), by: "slack:U0USER", now: Self.now).entity
        let item = try ReviewMachine.enqueue(
            id: ReviewItemID(7), request: ReviewItemRequest(content: ReviewContent(query: "How long do refunds take?", answer: "30 days", confidence: 0.4)),
            queue: QueueConfig(), by: "key:bot", now: Self.now).entity
        let feedback = try FeedbackMachine.request(
            id: FeedbackID(5), input: FeedbackRequestInput(kind: .rating, prompt: "Was this helpful?", subject: "Refunds take 14 days."),
            config: FeedbackConfig(), by: "key:bot", now: Self.now).entity
        let task = try LabelingMachine.create(
            id: LabelTaskID(9), input: LabelTaskInput(dataset: "sentiment", type: .choice(options: ["positive", "negative", "neutral"]),
                                                     content: "I love it"),
            by: "key:bot", now: Self.now).entity
        let cards = [builder.card(for: pending), builder.card(for: decided), builder.card(for: escalation), builder.card(for: item),
                     builder.card(for: feedback), builder.card(for: task), builder.helpCard()]
        #expect(Set(cards.map(\.kind)) == Set(CardKind.allCases))
        for card in cards {
            let message = try renderer.render(card)
            #expect(!message.text.isEmpty, "\(card.kind) needs a fallback text")
            #expect(FakeSlackBlockKit.problems(text: message.text, blocks: message.blocks).isEmpty, "\(card.kind): \(message.blocks.canonicalText)")
            let actionIDs = (message.blocks.asArray ?? []).flatMap { $0.member("elements")?.asArray ?? [] }.compactMap { $0.member("action_id")?.asString }
            #expect(actionIDs == card.buttons.map(\.action.actionID), "\(card.kind)")
        }
        // After the decision the buttons are gone and the card says who decided, and why.
        let decidedMessage = try renderer.render(builder.card(for: decided))
        #expect(!decidedMessage.blocks.canonicalText.contains("\"actions\""))
        #expect(decidedMessage.blocks.canonicalText.contains("<@U0ALICE>"))
        #expect(decidedMessage.blocks.canonicalText.contains("not on a Friday"))
        #expect(decidedMessage.blocks.canonicalText.contains("<!date^"))
    }

    /// AI and user text stays text on the card: no broadcast, mention or link injection.
    @Test func aiTextIsEscapedOnTheCard() throws {
        let summary = "<!channel> please approve <@U0BOSS> <https://evil.example|the release notes> @here & done"
        let card = CardBuilder().card(for: try Self.approval(summary: summary, arguments: .object(["note": .string("<!here>")])))
        let message = try Self.renderer().render(card)
        let all = message.blocks.canonicalText + message.text
        for injected in ["<!channel>", "<@U0BOSS>", "<https://evil.example", "<!here>", "@here"] {
            #expect(!all.contains(injected), "\(injected) got through")
        }
        #expect(all.contains("&lt;!channel&gt;"))
        #expect(all.contains("<@U0REQ>"), "the requester is a real mention (we made it, it is not user text)")
    }

    /// Long texts are cut to Block Kit's limits before sending; the result still validates.
    @Test func longTextsAreCutToTheLimits() throws {
        let huge = String(repeating: "x&<y> ", count: 5000)
        let approval = try Self.approval(summary: huge, arguments: .object(["blob": .string(huge)]))
        var card = CardBuilder().card(for: approval)
        card.title = String(repeating: "T", count: 400)
        card.buttons[0].label = String(repeating: "B", count: 200)
        let message = try Self.renderer().render(card)
        try BlockKitValidator.validate(message)
        #expect(FakeSlackBlockKit.problems(text: message.text, blocks: message.blocks).isEmpty)
    }

    /// The validator refuses what Slack refuses, naming the limit.
    @Test func theValidatorRejectsWhatSlackRejects() {
        let header = JSONValue.object(["type": .string("header"), "text": .object(["type": .string("plain_text"), "text": .string(String(repeating: "h", count: 151))])])
        let tooMany = JSONValue.array(Array(repeating: .object(["type": .string("divider")]), count: 51))
        let button = JSONValue.object(["type": .string("actions"), "elements": .array([.object([
            "type": .string("button"), "action_id": .string("a"), "text": .object(["type": .string("plain_text"), "text": .string(String(repeating: "b", count: 76))]),
        ])])])
        let mrkdwnHeader = JSONValue.object(["type": .string("header"), "text": .object(["type": .string("mrkdwn"), "text": .string("*x*")])])
        for blocks in [JSONValue.array([header]), tooMany, .array([button]), .array([mrkdwnHeader])] {
            let message = SlackMessage(text: "fallback", blocks: blocks)
            #expect(throws: BlockKitError.self) { try BlockKitValidator.validate(message) }
            #expect(!FakeSlackBlockKit.problems(text: "fallback", blocks: blocks).isEmpty, "the fake must refuse it too")
        }
        #expect(throws: BlockKitError.self) { try BlockKitValidator.validate(SlackMessage(text: String(repeating: "t", count: 40_001), blocks: .array([]))) }
    }
}
