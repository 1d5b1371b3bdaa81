import Foundation
import HandoffAI
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

extension ChatAppTests {
    /// The AI loop in chat, end to end: fake Slack for the people, fake Anthropic for the model.
    @Suite struct AIStories {
        static let question = "How long is the refund window?"
        static let wrong = "Refunds are accepted within 30 days."
        static let right = "Refunds are accepted within 14 days of purchase."
        static let ratingPrompt = FakeLLMMatch.user("How likely is it that the proposed answer")

        @Test("A confident answer goes straight to the user, with a 👍/👎 prompt the user answers by reacting")
        func confidentAnswerGoesToTheUser() async throws {
            let h = try await AIChatHarness.start()
            let llm = try #require(h.llm)
            await llm.script(.user("refund window"), .text(Self.right))
            await llm.script(Self.ratingPrompt, .text("0.95"))
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "auto_send")
            #expect(answer.confidence == 0.95)
            #expect(answer.estimator == "self_rating")
            #expect(answer.reviewItem == nil)
            let feedbackID = try #require(answer.feedback)
            #expect(await eventually { await h.botTexts().contains { $0.contains(Self.right) } }, "the answer reached the DM")
            let card = try await h.chat.card(of: EntityRef(kind: .feedback, id: feedbackID.rawValue))
            #expect(card.channel == AIChatHarness.dm, "the 👍/👎 prompt sits in the user's DM")
            let posted = try #require(await h.chat.message(card))
            #expect(posted.actionIDs == ["answer:1", "answer:2"])
            let dm = await h.fake.messages(in: AIChatHarness.dm).filter { $0.botID != nil }
            #expect(dm.firstIndex { $0.allText.contains(Self.right) }! < dm.firstIndex { $0.ts == card.messageID }!, "answer first, then the prompt")
            #expect(try await h.workflow.store.reviewItems(queue: nil, status: nil, limit: 10, before: nil).isEmpty)

            await h.fake.react(user: People.user, name: "+1", channel: card.channel, ts: try #require(card.messageID))
            #expect(await eventually {
                if case .answered(.choice("👍"), let by, _) = (try? await h.workflow.feedback(feedbackID))?.status { return by == "slack:U0USER" }
                return false
            })
            await h.stop()
        }

        @Test("A mention in a channel is answered once, in a thread under it, with the 👍/👎 prompt there too")
        func mentionIsAnsweredInItsThread() async throws {
            let h = try await AIChatHarness.start()
            let llm = try #require(h.llm)
            await llm.script(.user("refund window"), .text(Self.right))
            await llm.script(Self.ratingPrompt, .text("0.9"))
            let channel = "C0GENERAL"
            // Slack sends both a `message` and an `app_mention` event for it: one question.
            let ts = await h.fake.postUserMessage(user: People.user, channel: channel, text: "<@UBOT> \(Self.question)", mention: true)
            let answer = try await h.answer()
            #expect(answer.query == Self.question, "the mention itself is not part of the question")
            #expect(await eventually {
                await h.fake.messages(in: channel).contains { $0.botID != nil && $0.threadTS == ts && $0.allText.contains(Self.right) }
            })
            let card = try await h.chat.card(of: EntityRef(kind: .feedback, id: try #require(answer.feedback).rawValue))
            #expect(card.channel == channel && card.threadID == ts)
            #expect(await h.chat.inboundSettled())
            #expect(try await h.workflow.store.aiAnswers(route: nil, limit: 5, before: nil).count == 1)
            await h.stop()
        }

        @Test("A 👎 on an auto-sent answer puts it in front of a person; their correction reaches the user; calibration leaves it out")
        func thumbsDownGoesToAPerson() async throws {
            let h = try await AIChatHarness.start()
            let llm = try #require(h.llm)
            await llm.script(.user("refund"), .text(Self.wrong))
            await llm.script(Self.ratingPrompt, .text("0.95"))
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "auto_send")
            let card = try await h.chat.card(of: EntityRef(kind: .feedback, id: try #require(answer.feedback).rawValue))
            await h.fake.react(user: People.user, name: "-1", channel: card.channel, ts: try #require(card.messageID))
            var itemID: ReviewItemID?
            #expect(await eventually {
                itemID = try? await h.workflow.store.aiAnswer(id: try #require(answer.id))?.reviewItem
                return itemID != nil
            }, "the 👎 opened a review")
            let item = try await h.workflow.reviewItem(try #require(itemID))
            #expect(item.content.reason == "the user rated the answer 👎 (@slack:U0USER)")
            #expect(item.content.answer == Self.wrong && item.content.confidence == 0.95)
            #expect(await eventually { await h.botTexts().contains { $0.contains("Thanks for telling us") } })
            let reviewCard = try await h.chat.card(of: item.ref)
            let ts = try #require(reviewCard.messageID)
            await h.fake.click(user: People.carol, channel: reviewCard.channel, messageTS: ts, actionID: "claim", value: "review_item:\(item.id)")
            #expect(await eventually { (try? await h.workflow.reviewItem(item.id))?.leaseHolder != nil })
            await h.fake.postUserMessage(user: People.carol, channel: reviewCard.channel, text: Self.right, threadTS: ts)
            #expect(await eventually { await h.botTexts().contains { $0.contains("A person answered your question") && $0.contains(Self.right) } })
            #expect(try await h.workflow.store.corrections(after: nil, limit: 5).first?.corrected == Self.right)
            #expect(try await h.workflow.store.outcomeCounts(route: "default", estimator: nil).isEmpty,
                    "only unhappy users flag answers: a biased sample stays out of calibration")
            #expect(try await h.workflow.followUpAnswerFeedback().isEmpty, "followed up once")
            await h.stop()
        }

        @Test("Unsure → review card → a reviewer writes the corrected answer in the thread → the user gets it → the next similar question's prompt carries the correction")
        func correctionLoop() async throws {
            let h = try await AIChatHarness.start()
            let llm = try #require(h.llm)
            await llm.script(.user("refund"), .text(Self.wrong))
            await llm.script(Self.ratingPrompt, .text("Confidence: 0.4"))
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "review")
            #expect(answer.confidence == 0.4)
            let itemID = try #require(answer.reviewItem)
            #expect(await eventually { await h.botTexts().contains { $0.contains("A person will check the answer") } }, "the user is told")
            #expect(!(await h.botTexts().contains { $0.contains(Self.wrong) }), "the unsure draft is not sent")

            // The review item: query, draft, confidence, reason, and the user's conversation as its origin.
            let item = try await h.workflow.reviewItem(itemID)
            #expect(item.content.query == Self.question)
            #expect(item.content.answer == Self.wrong)
            #expect(item.content.confidence == 0.4)
            #expect(item.content.reason == "confidence 0.40 is below the threshold 0.80")
            #expect(item.origin.flatMap(ConversationRef.init(encoded:))?.channel == AIChatHarness.dm)
            let card = try await h.chat.card(of: item.ref)
            #expect(card.channel == Channels.reviews)
            let ts = try #require(card.messageID)
            let posted = try #require(await h.chat.message(card))
            #expect(posted.allText.contains(Self.wrong) && posted.allText.contains("0.40"))

            // A discussion reply from someone who does not hold the item changes nothing.
            await h.fake.postUserMessage(user: People.carol, channel: card.channel, text: "hmm, is 30 right?", threadTS: ts)
            await h.fake.click(user: People.carol, channel: card.channel, messageTS: ts, actionID: "claim", value: "review_item:\(itemID)")
            #expect(await eventually { (try? await h.workflow.reviewItem(itemID))?.leaseHolder == "slack:U0CAROL" })
            #expect(try await h.workflow.reviewItem(itemID).reviews.isEmpty)
            await h.fake.postUserMessage(user: People.carol, channel: card.channel, text: Self.right, threadTS: ts)

            #expect(await eventually { await h.botTexts().contains { $0.contains("A person answered your question") && $0.contains(Self.right) } },
                    "the corrected answer reaches the user's DM")
            let corrections = try await h.workflow.store.corrections(after: nil, limit: 10)
            let correction = try #require(corrections.first)
            #expect(correction.original == Self.wrong && correction.corrected == Self.right && correction.route == "default")
            #expect(try await h.workflow.store.outcomeCounts(route: "default", estimator: nil) == [OutcomeCount(bin: 400, total: 1, acceptable: 0)])

            // The next similar question: the correction is in the prompt, and recorded with the answer.
            await llm.script(.user("refund"), .text(Self.right))
            await llm.script(Self.ratingPrompt, .text("0.9"))
            await h.ask("What's your refund window for online purchases?")
            let next = try await h.answer(count: 2)
            #expect(next.examples == [correction.id])
            let sent = try #require(await llm.answered().first { $0.lastUser == "What's your refund window for online purchases?" })
            #expect(sent.system?.contains("Earlier answer (wrong): \(Self.wrong)") == true)
            #expect(sent.system?.contains("Corrected answer: \(Self.right)") == true)
            #expect(next.decision == "auto_send")
            await h.stop()
        }

        @Test("A reviewer approves the AI draft as it is: the user gets it, and the outcome counts as acceptable")
        func approvedDraftReachesTheUser() async throws {
            let h = try await AIChatHarness.start()
            let llm = try #require(h.llm)
            await llm.script(.user("opening hours"), .text("We are open 9–17 on weekdays."))
            await llm.script(Self.ratingPrompt, .text("0.55"))
            await h.ask("What are your opening hours?")
            let itemID = try #require(try await h.answer().reviewItem)
            let card = try await h.chat.card(of: EntityRef(kind: .reviewItem, id: itemID.rawValue))
            let ts = try #require(card.messageID)
            await h.fake.click(user: People.carol, channel: card.channel, messageTS: ts, actionID: "claim", value: "review_item:\(itemID)")
            #expect(await eventually { (try? await h.workflow.reviewItem(itemID))?.leaseHolder != nil })
            await h.fake.click(user: People.carol, channel: card.channel, messageTS: ts, actionID: "approve", value: "review_item:\(itemID)")
            #expect(await eventually { await h.botTexts().contains { $0.contains("A person checked the answer") && $0.contains("9–17") } })
            #expect(try await h.workflow.store.outcomeCounts(route: "default", estimator: "self_rating") == [OutcomeCount(bin: 550, total: 1, acceptable: 1)])
            #expect(try await h.workflow.store.corrections(after: nil, limit: 5).isEmpty)
            await h.stop()
        }

        @Test("Provider down (500s): the question goes to a person with the reason, after the retries")
        func providerDownRoutesToAPerson() async throws {
            let h = try await AIChatHarness.start(attempts: 3)
            let llm = try #require(h.llm)
            await llm.failNext(.serverError, times: 50)
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "review")
            #expect(answer.answer == nil)
            #expect(answer.reason?.hasPrefix("the AI provider failed: Anthropic returned 500 api_error: Internal server error (after 3 attempts)") == true)
            #expect(await llm.requests().count == 3)
            #expect(h.recordedWaits.all == [.milliseconds(500), .seconds(1)], "exponential backoff between attempts")
            let item = try await h.workflow.reviewItem(try #require(answer.reviewItem))
            #expect(item.content.confidence == 0)
            #expect(item.content.reason == answer.reason)
            #expect(await eventually { await h.botTexts().contains { $0.contains("A person will check the answer") } })
            await h.stop()
        }

        @Test("Provider unreachable (connection refused): the question goes to a person with the reason")
        func providerUnreachable() async throws {
            let closed = try await FakeAnthropic.start()
            let base = closed.baseURL
            await closed.stop()
            let h = try await AIChatHarness.start(baseURL: base, attempts: 2)
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "review")
            #expect(answer.reason?.contains("could not reach Anthropic at \(base)") == true, "\(answer.reason ?? "")")
            await h.stop()
        }

        @Test("Malformed JSON from the provider: a clear error, and a person answers")
        func malformedJSONGoesToAPerson() async throws {
            let h = try await AIChatHarness.start()
            await h.llm?.failNext(.malformed("<html>502 Bad Gateway</html>"))
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "review")
            #expect(answer.reason?.contains("not a Messages API reply: '<html>502 Bad Gateway</html>'") == true, "\(answer.reason ?? "")")
            await h.stop()
        }

        @Test("Without a provider: confidence 0, reason \"no AI provider configured\", said once at start; a person's answer still reaches the user")
        func noProvider() async throws {
            let h = try await AIChatHarness.start(provider: false)
            let notices = h.log.all.filter { $0.message.contains("no AI provider configured") }
            #expect(notices.count == 1 && notices.first?.level == .notice)
            await h.ask(Self.question)
            let answer = try await h.answer()
            #expect(answer.decision == "review" && answer.reason == "no AI provider configured")
            let itemID = try #require(answer.reviewItem)
            #expect(try await h.workflow.reviewItem(itemID).content.confidence == 0)
            let card = try await h.chat.card(of: EntityRef(kind: .reviewItem, id: itemID.rawValue))
            let ts = try #require(card.messageID)
            await h.fake.click(user: People.carol, channel: card.channel, messageTS: ts, actionID: "claim", value: "review_item:\(itemID)")
            #expect(await eventually { (try? await h.workflow.reviewItem(itemID))?.leaseHolder != nil })
            await h.fake.postUserMessage(user: People.carol, channel: card.channel, text: Self.right, threadTS: ts)
            #expect(await eventually { await h.botTexts().contains { $0.contains(Self.right) } })
            #expect(try await h.workflow.store.corrections(after: nil, limit: 5).isEmpty, "no AI draft, nothing corrected")
            #expect(try await h.workflow.store.outcomeCounts(route: "default", estimator: nil).isEmpty, "no measured confidence, no outcome")
            await h.stop()
        }

        @Test("\"Talk to a human\" still escalates; a redelivered question is answered once")
        func talkToAHumanAndRedelivery() async throws {
            let h = try await AIChatHarness.start()
            await h.ask("I want to talk to a human please")
            #expect(await eventually { (try? await h.workflow.escalations(status: "open"))?.count == 1 })
            #expect(try await h.workflow.store.pendingQuestions(now: h.workflow.clock.now(), limit: 5).isEmpty)
            #expect(try await h.workflow.store.aiAnswers(route: nil, limit: 5, before: nil).isEmpty)
            // The same Slack event delivered twice records one question.
            let ts = "1767226000.000900"
            let event = FakeSlackPayloads.message(user: People.user, channel: AIChatHarness.dm, text: "Do you ship abroad?", ts: ts)
            await h.fake.deliverEvent(event, eventID: "EvSAME")
            await h.fake.deliverEvent(event, eventID: "EvSAME", retryAttempt: 1, retryReason: "timeout")
            _ = try await h.answer()
            #expect(await h.chat.inboundSettled())
            #expect(try await h.workflow.store.aiAnswers(route: nil, limit: 5, before: nil).count == 1)
            await h.stop()
        }
    }
}
