import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

extension ChatAppTests {
    /// The stories the issue lists, each driven end to end through the fake Slack.
    @Suite struct Stories {
        @Test("Approver clicks Approve: empty ack within 3 s, approved, card edited in place, buttons removed (A15, A16)")
        func approverClicksApprove() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            #expect(card.channel == Channels.approvals)
            #expect(ts.hasSuffix("00"), "the fake's ts has trailing zeros: \(ts)")
            let posted = try #require(await h.message(card))
            #expect(posted.actionIDs == ["approve", "reject", "revise"])
            #expect(posted.metadata?.member(path: "event_payload", "nonce")?.asString == card.nonce)

            let envelope = await h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(approval.id)")
            #expect(await eventually { await h.fake.ack(for: envelope) != nil })
            let ack = try #require(await h.fake.ack(for: envelope))
            #expect(ack.latency < .seconds(3))
            #expect(ack.payload == nil, "a button click is acked empty")
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await eventually { (await h.message(card))?.edits == 1 })
            let edited = try #require(await h.message(card))
            #expect(edited.actionIDs.isEmpty, "buttons removed after the decision")
            #expect(edited.allText.contains("Approved by <@U0ALICE>"))
            #expect(edited.allText.contains("<!date^"))
            let update = try #require(await h.fake.calls("chat.update").last)
            #expect(update.argument("ts") == ts, "chat.update targets exactly the stored ts")
            #expect(update.argument("channel") == card.channel)
            #expect(await h.fake.calls("chat.postMessage").count == 1, "edited, not re-posted")
            await h.stop()
        }

        @Test("Non-approver clicks: refused privately, no state change, card unchanged, audited (E73)")
        func nonApproverIsRefused() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            await h.fake.click(user: People.mallory, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(approval.id)")
            await h.fake.react(user: People.mallory, name: "white_check_mark", channel: card.channel, ts: ts)
            await h.fake.slash(user: People.mallory, channel: card.channel, text: "approve \(approval.id)")
            #expect(await eventually { await h.fake.ephemerals(for: People.mallory).count == 2 })
            #expect(await eventually { await h.fake.acks().contains { $0.payload?.member("text")?.asString?.contains("not an approver") == true } })
            for reply in await h.fake.ephemerals(for: People.mallory) {
                #expect(reply.text.contains("not an approver for approval #\(approval.id)"), "\(reply.text)")
                #expect(reply.channel == card.channel)
            }
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).status == .pending)
            #expect(await h.message(card)?.edits == 0, "the card did not change")
            let audit = try await h.workflow.store.audit(of: approval.ref)
            #expect(audit.filter { $0.actor == "slack:U0MALLORY" && ($0.detail ?? "").contains("refused") }.count == 3)
            await h.stop()
        }

        @Test("The requester cannot approve their own request (E74)")
        func requesterSelfApprovalIsRefused() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval(requester: "slack:\(People.bob)")
            let card = try await h.card(of: approval.ref)
            await h.fake.click(user: People.bob, channel: card.channel, messageTS: try #require(card.messageID), actionID: "approve",
                               value: "approval:\(approval.id)")
            #expect(await eventually { await h.fake.ephemerals(for: People.bob).count == 1 })
            #expect(await h.fake.ephemerals(for: People.bob).first?.text.contains("requester cannot decide their own request") == true)
            #expect(try await h.approval(approval.id).status == .pending)
            await h.stop()
        }

        @Test("Double click, and a late click after expiry (also after a restart): one decision, polite notices (E76)")
        func doubleClickAndLateClick() async throws {
            let h = try await ChatHarness.start()
            let first = try await h.requestApproval()
            let card = try await h.card(of: first.ref)
            let ts = try #require(card.messageID)
            await h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(first.id)")
            await h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(first.id)")
            #expect(await eventually { await h.fake.ephemerals(for: People.alice).count == 1 })
            #expect(await h.fake.ephemerals(for: People.alice)[0].text.contains("already decided (approved) by <@U0ALICE>"))
            #expect(await h.outboxSettled(first.ref))
            #expect(await h.message(card)?.edits == 1)
            let decisions = try await h.workflow.store.audit(of: first.ref).filter { $0.from == "pending" && $0.to == "approved" }
            #expect(decisions.count == 1)

            // A second request expires: a click after the deadline is refused politely…
            let second = try await h.requestApproval("rollback")
            let secondCard = try await h.card(of: second.ref)
            h.clock.advance(by: 3601)
            await h.fake.click(user: People.bob, channel: secondCard.channel, messageTS: try #require(secondCard.messageID), actionID: "approve",
                               value: "approval:\(second.id)")
            #expect(await eventually { await h.fake.ephemerals(for: People.bob).count == 1 })
            #expect(await h.fake.ephemerals(for: People.bob)[0].text.contains("has expired"))
            // …the expiry fires and the card says so; after a restart a click still reads the state from SQLite.
            try await h.workflow.fireDueTimers()
            #expect(await eventually { await h.message(secondCard)?.allText.contains("Expired") == true })
            try await h.restart()
            await h.fake.react(user: People.bob, name: "white_check_mark", channel: secondCard.channel, ts: try #require(secondCard.messageID))
            #expect(await eventually { await h.fake.ephemerals(for: People.bob).count == 2 })
            #expect(await h.fake.ephemerals(for: People.bob)[1].text.contains("has expired"))
            #expect(try await h.approval(second.id).status.name == "expired")
            await h.stop()
        }

        @Test("❌ reaction asks for the reason in the thread; the reply there rejects with it")
        func rejectReactionThenReasonInThread() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            await h.fake.react(user: People.alice, name: "x", channel: card.channel, ts: ts)
            #expect(await eventually {
                await h.fake.messages(in: card.channel).contains { $0.threadTS == ts && $0.botID != nil && $0.text.contains("<@U0ALICE>") }
            })
            let question = try #require(await h.fake.messages(in: card.channel).first { $0.threadTS == ts && $0.botID != nil })
            #expect(question.text.contains("why you are rejecting"))
            #expect(try await h.approval(approval.id).status == .pending, "no decision without a reason")
            let reply = await h.fake.postUserMessage(user: People.alice, channel: card.channel, text: "too risky on a Friday", threadTS: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "rejected" })
            #expect(try await h.approval(approval.id).status.decision?.comment == "too risky on a Friday")
            #expect(await eventually { await h.message(card)?.allText.contains("too risky on a Friday") == true })
            #expect(await eventually { await h.fake.reactionsAdded().contains { $0.ts == reply && $0.name == "white_check_mark" } })

            // With a default reason in the policy, ❌ rejects at once.
            let lenient = try await h.requestApproval("restart", policy: "lenient")
            let lenientCard = try await h.card(of: lenient.ref)
            await h.fake.react(user: People.bob, name: "x", channel: lenientCard.channel, ts: try #require(lenientCard.messageID))
            #expect(await eventually { (try? await h.approval(lenient.id))?.status.decision?.comment == "Rejected from chat without a reason" })
            await h.stop()
        }

        @Test("A reason that starts with a command word is the reason; a refused reason ends the question; talk in a thread is only talk")
        func reasonsAreReasonsWhateverTheirFirstWord() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            await h.fake.react(user: People.alice, name: "x", channel: card.channel, ts: ts)
            #expect(await eventually { await h.fake.messages(in: card.channel).contains { $0.threadTS == ts && $0.botID != nil } })
            // "changes" is an alias of revise, "take" of claim: after ❌ they begin a reason, not a command.
            _ = await h.fake.postUserMessage(user: People.alice, channel: card.channel, text: "Changes the schema without review", threadTS: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "rejected" })
            #expect(try await h.approval(approval.id).status.decision?.comment == "Changes the schema without review")

            // Bob asks to revise another one, but Alice approves it first: his reason is refused privately,
            // and the question is over, so his next message in the thread is just talk.
            let second = try await h.requestApproval("restart")
            let secondCard = try await h.card(of: second.ref)
            let ts2 = try #require(secondCard.messageID)
            await h.fake.react(user: People.bob, name: "repeat", channel: secondCard.channel, ts: ts2)
            #expect(await eventually {
                await h.fake.messages(in: secondCard.channel).contains { $0.threadTS == ts2 && $0.botID != nil && $0.text.contains("what should change") }
            })
            _ = try await h.workflow.decide(second.id, verdict: .approve, comment: nil, by: Actor(ActorID("slack:\(People.alice)")))
            _ = await h.fake.postUserMessage(user: People.bob, channel: secondCard.channel, text: "take the cache out first", threadTS: ts2)
            #expect(await eventually { await h.privateReplies(to: People.bob).contains { $0.contains("already decided") } })
            let talk = [
                await h.fake.postUserMessage(user: People.bob, channel: secondCard.channel, text: "ok, never mind", threadTS: ts2),
                await h.fake.postUserMessage(user: People.carol, channel: secondCard.channel, text: "looks fine to me", threadTS: ts2),
            ]
            // Talk in a card's thread is handled too (its key is kept), so a redelivery of it is recognised.
            #expect(await eventually {
                for ts in talk where (try? await h.workflow.store.eventRecord(source: "slack", key: "msg:\(secondCard.channel):\(ts)")) == nil {
                    return false
                }
                return true
            }, "the talk was handled, with its keys")
            #expect(await h.inboundSettled())
            #expect(await h.privateReplies(to: People.bob).count == 1, "one explanation, for the refused reason only")
            #expect(await h.privateReplies(to: People.carol).isEmpty, "talk gets no answer")
            #expect(try await h.approval(second.id).status.decision?.comment == nil)
            await h.stop()
        }

        @Test("Slash command with bad arguments: the usage comes back in the ack, ephemeral (A14)")
        func slashCommandBadArguments() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            _ = try await h.card(of: approval.ref)
            func ackText(_ text: String, as user: String = People.alice) async throws -> String {
                let envelope = await h.fake.slash(user: user, channel: Channels.approvals, text: text)
                #expect(await eventually { await h.fake.ack(for: envelope) != nil })
                let ack = try #require(await h.fake.ack(for: envelope))
                #expect(ack.latency < .seconds(3))
                #expect(ack.payload?.member("response_type")?.asString == "ephemeral")
                // The ack text is mrkdwn (Slack shows `&lt;` as `<`): read it as the person sees it.
                return Escaping.slackUnescape(try #require(ack.payload?.member("text")?.asString))
            }
            let missing = try await ackText("reject \(approval.id)")
            #expect(missing.contains("reject needs a reason"))
            #expect(missing.contains("Usage: `/handoff reject <id> <reason>`"))
            #expect(try await ackText("approve abc").contains("`abc` is not an approval id"))
            #expect(try await ackText("frobnicate").contains("/handoff help"))
            #expect(try await ackText("help").contains("`/handoff resolve <id> <resolution>`"))
            #expect(try await ackText("approve \(approval.id) ship it") == "Approval #\(approval.id) approved.")
            #expect(try await h.approval(approval.id).status.decision?.comment == "ship it")
            #expect(try await ackText("queue").contains("Approvals pending: 0"))
            await h.stop()
        }

        @Test("refresh_requested mid-stream: every event is processed exactly once")
        func refreshRequestedMidStream() async throws {
            let h = try await ChatHarness.start()
            var cards: [(Approval, CardRef)] = []
            for i in 0..<6 {
                let a = try await h.requestApproval("job-\(i)")
                cards.append((a, try await h.card(of: a.ref)))
            }
            for (i, (approval, card)) in cards.enumerated() {
                await h.fake.click(user: People.alice, channel: card.channel, messageTS: card.messageID ?? "", actionID: "approve",
                                   value: "approval:\(approval.id)")
                if i == 2 { await h.fake.sendDisconnect(reason: "refresh_requested") }
            }
            #expect(await eventually { await h.fake.connections().count == 2 })
            for (approval, _) in cards {
                #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" }, "approval \(approval.id)")
            }
            #expect(await h.fake.abandonedEnvelopes().isEmpty)
            #expect(await h.fake.ephemerals().isEmpty, "no duplicate processing, so no 'already decided' notices")
            await h.stop()
        }

        @Test("The same event redelivered after a restart, 5 min 10 s later: one effect (A10)")
        func sameEventAfterRestart() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            let reaction = FakeSlackPayloads.reaction(user: People.alice, reaction: "white_check_mark", channel: card.channel,
                                                      ts: try #require(card.messageID), eventTS: "1767225999.000100")
            let (_, eventID) = await h.fake.deliverEvent(reaction)
            #expect(await eventually { (try? await h.approval(approval.id))?.votes.count == 1 })
            try await h.restart()
            h.clock.advance(by: 5 * 60 + 10)
            let (retry, _) = await h.fake.deliverEvent(reaction, eventID: eventID, retryAttempt: 3, retryReason: "timeout")
            #expect(await eventually { await h.fake.ack(for: retry) != nil })
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).votes.count == 1, "one effect in total")
            #expect(await h.fake.ephemerals().isEmpty, "a redelivery is silent")
            await h.stop()
        }

        @Test("A user DMs \"talk to a human\" → escalation → an agent claims → resolves → the user is told; SLA lapse goes to experts")
        func userEscalationEndToEnd() async throws {
            let h = try await ChatHarness.start()
            let dm = FakeSlack.dmChannel(for: People.user)
            await h.fake.postUserMessage(user: People.user, channel: dm, text: "this is wrong, I want a person")
            #expect(await eventually { ((try? await h.workflow.escalations()) ?? []).count == 1 })
            let escalation = try #require(try await h.workflow.escalations().first)
            #expect(escalation.tierName == "agent")
            #expect(escalation.requester == ActorID("slack:\(People.user)"))
            let card = try await h.card(of: escalation.ref)
            #expect(card.channel == Channels.agents)
            #expect(await h.message(card)?.actionIDs == ["claim", "escalate"])
            #expect(await eventually { await h.fake.messages(in: dm).contains { $0.botID != nil && $0.text.contains("Someone will answer here") } })

            let claim = await h.fake.slash(user: People.dave, channel: Channels.agents, text: "claim")
            #expect(await eventually { await h.fake.ack(for: claim)?.payload?.member("text")?.asString?.contains("You claimed escalation #\(escalation.id)") == true })
            #expect(await eventually { await h.fake.messages(in: dm).contains { $0.text.contains("is looking at your question now") } })
            #expect(await eventually { await h.message(card)?.allText.contains("Claimed by <@U0DAVE>") == true })

            // Slack sends typed `<` as `&lt;`; the text is read back as typed and escaped again on the way out.
            let resolve = await h.fake.slash(user: People.dave, channel: Channels.agents,
                                             text: "resolve \(escalation.id) Your refund is on its way &lt;!channel&gt;")
            #expect(await eventually { await h.fake.ack(for: resolve) != nil })
            #expect(await eventually { await h.fake.messages(in: dm).contains { $0.text.contains("Your refund is on its way") } })
            #expect(try await h.workflow.escalation(escalation.id).status == .resolved(
                by: "slack:U0DAVE", at: h.clock.now(), resolution: "Your refund is on its way <!channel>"))
            let answer = try #require(await h.fake.messages(in: dm).first { $0.text.contains("Your refund is on its way") })
            #expect(!answer.text.contains("<!channel>"), "the agent's text is escaped for the user too")
            #expect(answer.text.contains("&lt;!channel&gt;"))
            #expect(await eventually { await h.message(card)?.allText.contains("Resolved by <@U0DAVE>") == true })

            // A second one nobody claims: the SLA lapse re-posts it at the expert tier, and the user hears of it.
            let mention = await h.fake.postUserMessage(user: People.user, channel: Channels.fallback, text: "<@UBOT> I need a human please",
                                                       mention: true, alsoAsMessageEvent: false)
            #expect(await eventually { ((try? await h.workflow.escalations()) ?? []).count == 2 })
            let second = try #require(try await h.workflow.escalations().first { $0.id != escalation.id })
            _ = try await h.card(of: second.ref, destination: "agents")
            h.clock.advance(by: 31 * 60)
            try await h.workflow.fireDueTimers()
            let expertCard = try await h.card(of: second.ref, destination: "experts")
            #expect(expertCard.channel == Channels.experts)
            #expect(await eventually {
                await h.fake.messages(in: Channels.fallback).contains { $0.threadTS == mention && $0.text.contains("expert team") }
            }, "the user is told in the thread under their mention")
            // An expert claims with ✋ on the expert card.
            await h.fake.react(user: People.erin, name: "raised_hand::skin-tone-2", channel: expertCard.channel, ts: try #require(expertCard.messageID))
            #expect(await eventually { (try? await h.workflow.escalation(second.id))?.status.name == "claimed" })
            await h.stop()
        }

        @Test("429 on chat.update: the card still ends right, after Retry-After, without hammering (A20)")
        func rateLimitedCardUpdate() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            await h.fake.rateLimitNext("chat.update", retryAfter: 2)
            let started = ContinuousClock.now
            await h.fake.react(user: People.alice, name: "heavy_check_mark", channel: card.channel, ts: try #require(card.messageID))
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await eventually(timeout: .seconds(15)) { await h.message(card)?.edits == 1 })
            #expect(ContinuousClock.now - started >= .seconds(2))
            let updates = await h.fake.calls("chat.update")
            #expect(updates.count == 2, "one 429, one success")
            #expect(updates[1].at - updates[0].at >= .seconds(2), "waited out Retry-After")
            #expect(await h.fake.callsDuringRateLimit().isEmpty)
            #expect(await h.message(card)?.actionIDs.isEmpty == true)
            await h.stop()
        }
    }
}

extension ChatAppTests.Stories {
    @Test("A reviewer claims with ✋, rejects with the button and gives feedback in the thread; labels and ratings by command")
    func reviewerLabelerAndFeedbackFromChat() async throws {
        let h = try await ChatHarness.start()
        let (item, _) = try await h.workflow.enqueue(ReviewItemRequest(
            priority: .high, content: ReviewContent(query: "How long do refunds take?", answer: "Refunds take 30 days.", confidence: 0.42)),
            by: "key:bot")
        let card = try await h.card(of: item.ref)
        let ts = try #require(card.messageID)
        #expect(card.channel == Channels.reviews)
        #expect(await h.message(card)?.actionIDs == ["claim"])
        await h.fake.react(user: People.carol, name: "hand", channel: card.channel, ts: ts)
        #expect(await eventually { (try? await h.workflow.reviewItem(item.id))?.leaseHolder == "slack:U0CAROL" })
        #expect(await eventually { await h.message(card)?.actionIDs == ["approve", "reject", "revise"] })
        await h.fake.click(user: People.carol, channel: card.channel, messageTS: ts, actionID: "reject", value: "review_item:\(item.id)")
        #expect(await eventually { await h.fake.messages(in: card.channel).contains { $0.threadTS == ts && $0.text.contains("your feedback") } })
        await h.fake.postUserMessage(user: People.carol, channel: card.channel, text: "The policy changed in May", threadTS: ts)
        #expect(await eventually { (try? await h.workflow.reviewItem(item.id))?.status.name == "completed" })
        #expect(try await h.workflow.reviewItem(item.id).reviews.first?.feedback == "The policy changed in May")
        #expect(await eventually { await h.message(card)?.allText.contains("Completed: rejected") == true })

        let task = try await h.workflow.createLabelTask(
            LabelTaskInput(dataset: "sentiment", type: .choice(options: ["positive", "negative"]), content: "I love it"), by: "key:bot")
        // Only labelers may label: a stranger is told so privately, and nothing is recorded.
        let stranger = await h.fake.slash(user: People.user, channel: Channels.fallback, text: "label \(task.id) positive")
        #expect(await eventually { await h.fake.ack(for: stranger)?.payload?.member("text")?.asString?.contains("not a labeler") == true })
        #expect(try await h.workflow.labelTask(task.id).labelCount == 0)
        let label = await h.fake.slash(user: People.dave, channel: Channels.fallback, text: "label \(task.id) positive")
        #expect(await eventually { await h.fake.ack(for: label)?.payload?.member("text")?.asString?.contains("Labeled task #\(task.id): positive") == true })
        let feedback = try await h.workflow.requestFeedback(FeedbackRequestInput(kind: .rating, prompt: "Was this helpful?"), by: "key:bot")
        let feedbackCard = try await h.card(of: feedback.ref)
        #expect(feedbackCard.channel == Channels.fallback, "no binding for the feedback channel: the default channel")
        #expect(await h.message(feedbackCard)?.actionIDs == ["answer:1", "answer:2", "answer:3", "answer:4", "answer:5"])
        let bad = await h.fake.slash(user: People.user, channel: Channels.fallback, text: "rate \(feedback.id) 7")
        #expect(await eventually { await h.fake.ack(for: bad)?.payload?.member("text")?.asString?.contains("from 1 to 5") == true })
        await h.fake.click(user: People.user, channel: feedbackCard.channel, messageTS: feedbackCard.messageID ?? "", actionID: "answer:4",
                           value: "feedback:\(feedback.id)")
        #expect(await eventually {
            if case .answered(.rating(4), _, _)? = (try? await h.workflow.feedback(feedback.id))?.status { return true }
            return false
        })
        #expect(await eventually { await h.message(feedbackCard)?.actionIDs.isEmpty == true })
        await h.stop()
    }
}
