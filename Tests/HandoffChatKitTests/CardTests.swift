import Foundation
import HandoffChatKit
import HandoffCore
import HandoffTesting
import Testing

@Suite struct CardTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)

    static func approval() throws -> Approval {
        let policy = ApprovalPolicy(quorum: 1, expiresAfter: .hours(1))
        let request = ApprovalRequest(action: "deploy", arguments: .object(["service": .string("api")]), summary: "Deploy api 1.4.2",
                                      requester: "key:deploy-bot")
        return try ApprovalMachine.create(id: ApprovalID(42), request: request, policy: policy, now: now).entity
    }

    @Test func aPendingApprovalHasTheThreeDecisionButtons() throws {
        let card = CardBuilder().card(for: try Self.approval())
        #expect(card.kind == .approvalRequest)
        #expect(card.buttons.map(\.action) == [.approve, .reject, .revise])
        #expect(card.buttons.allSatisfy { $0.value == "approval:42" })
        #expect(card.fallback.description.contains("Approval #42 needed: deploy"))
        #expect(card.stateLine?.description.contains("Waiting for 1 approval") == true)
    }

    @Test func aDecidedApprovalShowsWhoWhenAndTheCommentWithoutButtons() throws {
        let directory = Directory(groups: ["approvers": ["slack:U0ALICE"]])
        let decided = try ApprovalMachine.decide(try Self.approval(), verdict: .approve, comment: "ship it", by: Actor("slack:U0ALICE"),
                                                 directory: directory, now: Self.now.addingTimeInterval(60)).entity
        let card = CardBuilder().card(for: decided)
        #expect(card.kind == .approvalDecided)
        #expect(card.buttons.isEmpty)
        #expect(card.stateLine?.runs.contains(Inline.user(ActorID("slack:U0ALICE"))) == true)
        #expect(card.stateLine?.runs.contains(Inline.date(Self.now.addingTimeInterval(60))) == true)
        #expect(card.stateLine?.description.contains("ship it") == true)
    }

    @Test func everyCardKindHasATemplateForSlack() throws {
        let templates = try CardTemplates.load(directory: PackagePaths.cardTemplates)
        for kind in CardKind.allCases {
            #expect(templates.names.contains("slack/\(kind.rawValue)"), "templates/cards/slack/\(kind.rawValue).mustache is missing")
        }
    }

    @Test func workflowMessagesTurnIdentitiesIntoMentions() {
        let text = RichText.mentioning("approval #42 was already decided (approved) by @slack:U0ALICE, @cli:bob.")
        #expect(text.runs.contains(Inline.user(ActorID("slack:U0ALICE"))))
        #expect(text.runs.contains(Inline.user(ActorID("cli:bob"))))
        #expect(text.description.hasSuffix("@U0ALICE, @bob."))
    }
}
