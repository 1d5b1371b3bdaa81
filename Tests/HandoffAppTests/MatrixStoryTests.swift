import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

extension MatrixAppTests {
    /// The stories of issue 6, each driven end to end against the real Synapse and asserted through the store.
    @Suite struct Stories {
        @Test("Card posted as HTML + plain body, seeded ✅ ❌ 🔁; alice reacts ✅ → approved, card edited (m.replace) to show who decided")
        func approverReactsApprove() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let cardID = try #require(card.messageID)
            #expect(card.channel == h.rooms.approvals)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]), "the bot seeds the card with its reaction keys")
            let posted = try await h.alice.event(cardID, in: card.channel)
            #expect(posted.member("sender")?.asString == h.bot.userID)
            #expect(posted.member(path: "content", "msgtype")?.asString == "m.notice")
            #expect(posted.member(path: "content", "format")?.asString == "org.matrix.custom.html")
            #expect(posted.member(path: "content", "formatted_body")?.asString?.hasPrefix("<h4>Approval needed: deploy</h4>") == true)
            #expect(posted.member(path: "content", "body")?.asString?.hasPrefix("Approval needed: deploy\nDeploy api 1.4.2") == true)
            #expect(posted.member(path: "content", MatrixAdapter.nonceKey)?.asString == card.nonce)
            #expect(posted.member(path: "content", "m.mentions") == .object([:]))
            #expect(try await h.approval(approval.id).status == .pending, "the bot's own seeded ✅ is not a vote")

            try await h.alice.react(to: cardID, in: card.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(try await h.approval(approval.id).status.decision?.by == ["matrix:@alice:localhost"])
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.cardText(card).body.contains("Approved by @alice:localhost")) == true })
            let text = try await h.cardText(card)
            #expect(text.html.contains("<h4>✅ Approved: deploy</h4>"))
            #expect(text.html.contains("<a href=\"https://matrix.to/#/@alice:localhost\">@alice:localhost</a>"))
            #expect(try await h.edits(of: card) == 1)
            let edit = try #require(try await h.alice.relations(of: cardID, in: card.channel, relType: "m.replace").first)
            #expect(edit.member(path: "content", "m.relates_to", "rel_type")?.asString == "m.replace")
            #expect(edit.member(path: "content", "body")?.asString?.hasPrefix("* ") == true, "the fallback for clients without edits")
            #expect(try await h.alice.messages(in: card.channel, from: h.bot.userID).count == 1, "edited, not re-posted")
            await h.stop()
        }

        @Test("mallory (not an approver) reacts ✅ → no change, card unchanged, told privately in a DM, audited (E73)")
        func nonApproverIsToldPrivately() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            let reaction = try await h.mallory.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            #expect(await h.handled(reaction))
            #expect(await eventually(timeout: .seconds(20)) {
                ((try? await h.privateMessages(to: h.mallory)) ?? []).contains { $0.contains("not an approver for approval #\(approval.id)") }
            })
            #expect(try await h.approval(approval.id).status == .pending)
            #expect(try await h.edits(of: card) == 0, "the card did not change")
            let audit = try await h.workflow.store.audit(of: approval.ref)
            #expect(audit.contains { $0.actor == "matrix:@mallory:localhost" && ($0.detail ?? "").contains("refused") })
            // Private means private: nothing about it in the approvals room.
            let roomText = try await h.alice.messages(in: card.channel, from: h.bot.userID).compactMap { $0.member(path: "content", "body")?.asString }
            #expect(!roomText.contains { $0.contains("not an approver") })
            await h.stop()
        }

        @Test("bob replies \"reject too risky\" to the card → rejected with that reason; ❌ asks for a reason in a thread, answered there")
        func replyRejectsWithReason() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let cardID = try #require(card.messageID)
            // Element still sends the reply fallback; the bot reads past it.
            let reply = try await h.bob.send("> <\(h.bot.userID)> Approval needed: deploy\n\nreject too risky", in: card.channel, replyTo: cardID)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "rejected" })
            let decision = try #require(try await h.approval(approval.id).status.decision)
            #expect(decision.comment == "too risky")
            #expect(decision.by == ["matrix:@bob:localhost"])
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.cardText(card).body.contains("Rejected by @bob:localhost")) == true })
            #expect(try await h.cardText(card).body.contains("too risky"))
            #expect(await eventually { (try? await h.alice.reactionKeys(on: reply, in: card.channel, by: h.bot.userID)) == ["✅"] },
                    "the bot marks the handled reply with ✅")

            // ❌ without a reason: the bot asks in the card's thread; alice's thread reply is the reason.
            let second = try await h.requestApproval("rollback")
            let secondCard = try await h.card(of: second.ref)
            let secondID = try #require(secondCard.messageID)
            try await h.alice.react(to: secondID, in: secondCard.channel, key: "❌")
            var question: JSONValue?
            _ = await eventually(timeout: .seconds(20)) {
                question = try? await h.alice.relations(of: secondID, in: secondCard.channel, relType: "m.thread").first {
                    $0.member("sender")?.asString == h.bot.userID
                }
                return question != nil
            }
            let asked = try #require(question, "the bot asks for the reason in the card's thread")
            #expect(asked.member(path: "content", "body")?.asString?.contains("why you are rejecting") == true)
            #expect(asked.member(path: "content", "m.mentions", "user_ids") == .array([.string(h.alice.userID)]), "alice is mentioned on purpose")
            #expect(try await h.approval(second.id).status == .pending, "no decision without a reason")
            try await h.alice.send("too risky on a Friday", in: secondCard.channel, thread: secondID)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(second.id))?.status.decision?.comment == "too risky on a Friday" })
            await h.stop()
        }

        @Test("A user DMs the bot \"I need a human\" → escalation card in the agents' room → alice claims with ✋ → resolves → the user gets the answer")
        func userEscalationEndToEnd() async throws {
            let h = try await MatrixHarness.start()
            let dm = try await h.user.createRoom(invite: [h.bot.userID], direct: true)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.user.membership(of: h.bot.userID, in: dm)) == "join" })
            try await h.user.send("I need a human, the refund never arrived", in: dm)
            #expect(await eventually(timeout: .seconds(20)) { ((try? await h.workflow.escalations()) ?? []).count == 1 })
            let escalation = try #require(try await h.workflow.escalations().first)
            #expect(escalation.tierName == "agent")
            #expect(escalation.requester == "matrix:@user:localhost")
            let card = try await h.card(of: escalation.ref)
            #expect(card.channel == h.rooms.agents)
            #expect(await h.seeded(card, ["✋", "⬆️"]))
            func dmText() async -> [String] {
                ((try? await h.user.messages(in: dm, from: h.bot.userID)) ?? []).compactMap { $0.member(path: "content", "body")?.asString }
            }
            #expect(await eventually(timeout: .seconds(20)) { await dmText().contains { $0.contains("Someone will answer here") } })

            try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✋")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.workflow.escalation(escalation.id))?.status.name == "claimed" })
            #expect(await eventually(timeout: .seconds(20)) { await dmText().contains { $0.contains("is looking at your question now") } })
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.cardText(card).body.contains("Claimed by @alice:localhost")) == true })
            #expect(try await h.cardText(card).html.contains("<code>!handoff resolve"), "commands are shown as Matrix people type them")

            try await h.alice.send("resolve Your refund is on its way @room", in: card.channel, replyTo: card.messageID)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.workflow.escalation(escalation.id))?.status.name == "resolved" })
            #expect(await eventually(timeout: .seconds(20)) { await dmText().contains { $0.contains("Your refund is on its way") } })
            let answer = try #require(await dmText().first { $0.contains("Your refund is on its way") })
            #expect(!answer.contains("@room"), "the agent's text cannot notify the user's room: \(answer)")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.cardText(card).body.contains("Resolved by @alice:localhost")) == true })
            await h.stop()
        }

        @Test("Untrusted text in a card cannot inject HTML, @room, mentions or pills")
        func untrustedTextInACard() async throws {
            let h = try await MatrixHarness.start()
            let evil = "<b>bold</b> <a href=\"https://matrix.to/#/@mallory:localhost\">x</a> @room @alice:localhost https://matrix.to/#/@bob:localhost"
            let approval = try await h.requestApproval(summary: evil)
            let card = try await h.card(of: approval.ref)
            let content = try #require(try await h.alice.event(card.messageID ?? "", in: card.channel).member("content"))
            let html = try #require(content.member("formatted_body")?.asString)
            let body = try #require(content.member("body")?.asString)
            #expect(!html.contains("<b>") && !html.contains("<a href=\"https://matrix.to/#/@mallory"))
            #expect(!html.contains("@room") && !body.contains("@room"))
            #expect(!html.contains("matrix.to/#/@bob") && !body.contains("matrix.to/#/@bob"))
            #expect(content.member("m.mentions") == .object([:]), "nobody is mentioned by a card")
            await h.stop()
        }
    }
}
