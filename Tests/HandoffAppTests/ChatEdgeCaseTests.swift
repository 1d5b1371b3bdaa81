import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Logging
import Testing

extension ChatAppTests {
    /// protocol-edge-cases.md §A (the ones that need the whole stack) and §E, through the fake Slack.
    @Suite struct EdgeCases {
        @Test("A8 retry after timeout: a withheld ack is redelivered with retry_attempt 1; one effect in total")
        func a08_retryAfterTimeout() async throws {
            var fake = FakeSlack.Configuration()
            fake.ackTimeout = .milliseconds(500)
            let h = try await ChatHarness.start(fake: fake)
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            let (_, eventID) = await h.fake.deliverEvent(FakeSlackPayloads.reaction(
                user: People.alice, reaction: "white_check_mark", channel: card.channel, ts: card.messageID ?? "", eventTS: "1767225700.000100"),
                ignoreAck: true)
            #expect(await eventually { await h.fake.sentEnvelopes().contains { $0.dedupeID == eventID && $0.retryAttempt == 1 } })
            #expect(await eventually { await h.fake.acks().count >= 2 })
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).votes.count == 1)
            #expect(await h.fake.ephemerals().isEmpty)
            await h.stop()
        }

        @Test("A11 double delivery via two subscriptions (app_mention + message, same channel/ts): one command execution")
        func a11_doubleDelivery() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            _ = try await h.card(of: approval.ref)
            await h.fake.postUserMessage(user: People.alice, channel: Channels.fallback, text: "<@UBOT> approve \(approval.id)", mention: true)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await h.inboundSettled())
            #expect(await eventually { await h.fake.ephemerals(for: People.alice).count == 1 })
            #expect(await h.fake.ephemerals(for: People.alice)[0].text == "Approval #\(approval.id) approved.")
            #expect(!(await eventually(timeout: .milliseconds(500)) { await h.fake.ephemerals(for: People.alice).count > 1 }))
            await h.stop()
        }

        @Test("A12 self echo: the bot's own posts (bot_id) and reactions (user = bot) change nothing and start no reply loop")
        func a12_selfEcho() async throws {
            var fake = FakeSlack.Configuration()
            fake.echoBotMessages = true
            let h = try await ChatHarness.start(fake: fake)
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            // The bot's "why?" question and its ✅ on the reply come back as events too.
            await h.fake.react(user: People.alice, name: "x", channel: card.channel, ts: ts)
            #expect(await eventually { await h.fake.messages(in: card.channel).contains { $0.threadTS == ts && $0.botID != nil } })
            // The bot's own reaction on the card, echoed with user = the bot.
            await h.fake.react(user: h.fake.configuration.botUserID, name: "white_check_mark", channel: card.channel, ts: ts)
            #expect(await eventually { await h.fake.sentEnvelopes().count >= 3 })
            #expect(await h.inboundSettled())
            let botPosts = await h.fake.botMessages().count
            #expect(!(await eventually(timeout: .seconds(1)) { await h.fake.botMessages().count > botPosts }), "no reply loop")
            #expect(try await h.approval(approval.id).votes.isEmpty, "the bot's own ✅ is not a vote")
            #expect(await h.fake.ephemerals().isEmpty)
            #expect(await h.fake.calls("chat.postEphemeral").isEmpty)
            await h.stop()
        }

        @Test("A17 escaped text: entities are unescaped, the bot mention is stripped by id, and the comment is escaped on the card")
        func a17_escapedText() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            await h.fake.postUserMessage(user: People.alice, channel: Channels.fallback,
                                         text: "<@UBOT> approve \(approval.id) &lt;urgent&gt; &amp; now", mention: true, alsoAsMessageEvent: false)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.decision?.comment == "<urgent> & now" })
            #expect(await eventually { await h.message(card)?.edits == 1 })
            let text = try #require(await h.message(card)).allText
            #expect(text.contains("&lt;urgent&gt; &amp; now"))
            #expect(!text.contains("<urgent>"))
            await h.stop()
        }

        @Test("A18 reaction aliases: +1, thumbsup, +1::skin-tone-3, white_check_mark, heavy_check_mark map; unknown emoji and files are ignored")
        func a18_reactionAliases() async throws {
            let h = try await ChatHarness.start()
            var feedback: [FeedbackRequest] = []
            for alias in ["+1", "thumbsup", "+1::skin-tone-3"] {
                let f = try await h.workflow.requestFeedback(FeedbackRequestInput(kind: .rating, prompt: "Was this helpful? (\(alias))",
                                                                                  subject: "Refunds take 14 days.", channel: "reviews"), by: "key:bot")
                let card = try await h.card(of: f.ref)
                #expect(card.channel == Channels.reviews)
                await h.fake.react(user: People.carol, name: alias, channel: card.channel, ts: card.messageID ?? "")
                feedback.append(f)
            }
            for f in feedback {
                #expect(await eventually {
                    if case .answered(.rating(5), "slack:U0CAROL", _)? = (try? await h.workflow.feedback(f.id))?.status { return true }
                    return false
                }, "feedback #\(f.id)")
            }
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            await h.fake.react(user: People.alice, name: "tada", channel: card.channel, ts: ts)
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: card.channel, ts: ts, itemType: "file")
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).votes.isEmpty, "unknown emoji and file reactions do nothing")
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: card.channel, ts: ts)
            await h.fake.react(user: People.bob, name: "heavy_check_mark", channel: card.channel, ts: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await h.fake.ephemerals().isEmpty)
            await h.stop()
        }

        @Test("A19 message_changed: editing a message that held a command does not run it again")
        func a19_messageChanged() async throws {
            let h = try await ChatHarness.start()
            let first = try await h.requestApproval()
            let second = try await h.requestApproval("rollback")
            _ = try await h.card(of: second.ref)
            let ts = await h.fake.postUserMessage(user: People.alice, channel: Channels.fallback, text: "<@UBOT> approve \(first.id)",
                                                  mention: true, alsoAsMessageEvent: false)
            #expect(await eventually { (try? await h.approval(first.id))?.status.name == "approved" })
            await h.fake.deliverEvent(FakeSlackPayloads.messageChanged(user: People.alice, channel: Channels.fallback,
                                                                       newText: "<@UBOT> approve \(second.id)", originalTS: ts, editTS: "1767229999.000100"))
            #expect(await h.inboundSettled())
            #expect(try await h.approval(second.id).status == .pending)
            #expect(await h.fake.ephemerals(for: People.alice).count == 1)
            await h.stop()
        }

        @Test("A21 ok:false on chat.update (message_not_found): a failure, logged on the outbox row; state kept; no retry loop")
        func a21_okFalse() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            await h.fake.failNext("chat.update", error: "message_not_found")
            await h.fake.click(user: People.alice, channel: card.channel, messageTS: card.messageID ?? "", actionID: "approve",
                               value: "approval:\(approval.id)")
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await h.outboxSettled(approval.ref))
            let update = try #require(try await h.workflow.store.outbox(of: approval.ref).first { $0.kind == .updateCards })
            #expect(update.status == .failed)
            #expect(update.lastError?.contains("message_not_found") == true)
            #expect(!(await eventually(timeout: .seconds(1)) { await h.fake.calls("chat.update").count > 1 }), "no retry loop")
            #expect(try await h.approval(approval.id).status.name == "approved")
            await h.stop()
        }

        @Test("Cards appear in a channel in the order they were asked for, even when Slack rate-limits one (429, Retry-After)")
        func cardsKeepTheirOrderThroughARateLimit() async throws {
            let h = try await ChatHarness.start()
            await h.fake.rateLimitNext("chat.postMessage", retryAfter: 2)
            var approvals: [Approval] = []
            for n in 1...4 { approvals.append(try await h.requestApproval("deploy-\(n)", summary: "Deploy number \(n)")) }
            for approval in approvals { _ = try await h.card(of: approval.ref, timeout: .seconds(20)) }
            let posted = await h.fake.messages(in: Channels.approvals).filter { $0.botID != nil && $0.threadTS == nil }
            let order = posted.compactMap { message in (1...4).first { message.allText.contains("Deploy number \($0)") } }
            #expect(order == [1, 2, 3, 4], "cards in the order asked for, the rate-limited first one included: \(order)")
            #expect(await h.fake.calls("chat.postMessage").contains { $0.status == 429 }, "the rate limit was met")
            await h.stop()
        }

        @Test("E75 concurrent decisions on two replicas: exactly one wins; the loser hears 'already decided'; the card shows the winner")
        func e75_concurrentDecisions() async throws {
            let h = try await ChatHarness.start()
            try await h.boot(withDispatcher: false)  // a second replica on the same SQLite file, its own socket
            #expect(await eventually { await h.fake.liveConnections().count == 2 })
            let sockets = await h.fake.liveConnections()
            let approval = try await h.requestApproval(policy: "lenient")
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            async let click: String = h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve",
                                                   value: "approval:\(approval.id)", to: sockets[0])
            async let reaction = h.fake.deliverEvent(FakeSlackPayloads.reaction(
                user: People.bob, reaction: "x", channel: card.channel, ts: ts, eventTS: "1767225800.000100"), to: sockets[1])
            _ = await (click, reaction)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.isPending == false })
            #expect(await h.inboundSettled())
            let final = try await h.approval(approval.id)
            let (winner, loser) = final.status.name == "approved" ? (People.alice, People.bob) : (People.bob, People.alice)
            #expect(await eventually { await h.fake.ephemerals(for: loser).count == 1 })
            #expect(await h.fake.ephemerals(for: loser)[0].text.contains("already decided"))
            #expect(await h.fake.ephemerals(for: winner).isEmpty)
            #expect(try await h.workflow.store.audit(of: approval.ref).filter { $0.from == "pending" && $0.to != "pending" }.count == 1)
            #expect(await eventually { await h.message(card)?.allText.contains("by <@\(winner)>") == true })
            await h.stop()
        }

        @Test("E77 quorum: one approver's reaction and click count once; removing the reaction before quorum takes the vote back")
        func e77_quorum() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: card.channel, ts: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.votes.count == 1 })
            await h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(approval.id)")
            #expect(await eventually { await h.fake.ephemerals(for: People.alice).count == 1 })
            #expect(await h.fake.ephemerals(for: People.alice)[0].text.contains("already approved approval #\(approval.id); waiting for 1 more"))
            #expect(try await h.approval(approval.id).votes.count == 1)
            #expect(await eventually { await h.message(card)?.allText.contains("1 of 2") == true })
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: card.channel, ts: ts, added: false)
            #expect(await eventually { (try? await h.approval(approval.id))?.votes.isEmpty == true })
            await h.fake.react(user: People.bob, name: "white_check_mark", channel: card.channel, ts: ts)
            #expect(await eventually { (try? await h.approval(approval.id))?.votes.count == 1 })
            await h.fake.click(user: People.alice, channel: card.channel, messageTS: ts, actionID: "approve", value: "approval:\(approval.id)")
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(Set(try await h.approval(approval.id).status.decision?.by ?? []) == ["slack:U0ALICE", "slack:U0BOB"])
            await h.stop()
        }

        @Test("E78 unknown card: reactions and clicks on messages the bot never posted are ignored")
        func e78_unknownCard() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            _ = try await h.card(of: approval.ref)
            let someonesMessage = await h.fake.postUserMessage(user: People.bob, channel: Channels.approvals, text: "lunch?")
            await h.fake.react(user: People.alice, name: "white_check_mark", channel: Channels.approvals, ts: someonesMessage)
            await h.fake.click(user: People.alice, channel: Channels.approvals, messageTS: "1700000000.000100", actionID: "approve",
                               value: "approval:\(approval.id)")
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).status == .pending)
            #expect(await h.fake.ephemerals().isEmpty)
            #expect(await h.fake.calls("chat.update").isEmpty)
            await h.stop()
        }

        @Test("E79 escalation timer across a socket outage: the expert card is posted once, from persisted state")
        func e79_escalationTimerAcrossReconnect() async throws {
            let h = try await ChatHarness.start()
            await h.fake.postUserMessage(user: People.user, channel: FakeSlack.dmChannel(for: People.user), text: "I want to talk to a human")
            #expect(await eventually { ((try? await h.workflow.escalations()) ?? []).count == 1 })
            let escalation = try #require(try await h.workflow.escalations().first)
            _ = try await h.card(of: escalation.ref, destination: "agents")
            await h.fake.refuseSockets(true)
            await h.fake.drop()
            #expect(await eventually { h.runtime.socketMode?.status != .connected })
            h.clock.advance(by: 31 * 60)
            try await h.workflow.fireDueTimers()
            let expert = try await h.card(of: escalation.ref, destination: "experts")
            await h.fake.refuseSockets(false)
            #expect(await eventually { h.runtime.socketMode?.status == .connected })
            try await h.workflow.fireDueTimers()
            #expect(await h.outboxSettled(escalation.ref))
            #expect(await h.fake.messages(in: Channels.experts).filter { $0.botID != nil }.count == 1)
            #expect(try await h.workflow.store.cards(of: escalation.ref).filter { $0.destination == "experts" } .map(\.id) == [expert.id])
            await h.stop()
        }

        @Test("E80 outbox on crash: a card edit left behind is replayed on restart; a post whose reply was lost is reconciled, not repeated")
        func e80_outboxOnCrash() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            await h.shutdown()

            // The crash: decided, but the card was never edited. And a post that landed but whose reply was lost.
            let offline = try await HandoffApplication.openWorkflow(databasePath: h.databasePath, policy: try PolicyFile.parse(h.policyText), clock: h.clock)
            _ = try await offline.decide(approval.id, verdict: .approve, comment: "while the bot was down", by: Actor("slack:U0BOB"))
            let second = try await offline.requestApproval(ApprovalRequest(action: "migrate", arguments: .object([:]), requester: "key:deploy-bot"))
                .approval
            let postRow = try #require(try await offline.store.outbox(of: second.ref).first { $0.kind == .postCard })
            let nonce = "handoff-\(postRow.id)-slack"
            let cardID = try await offline.store.beginCard(entity: second.ref, platform: "slack", destination: "approvals",
                                                           channel: Channels.approvals, threadID: nil, nonce: nonce, at: h.clock.now())
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            var api = SlackWebAPIClient.Configuration()
            api.baseURL = h.fake.apiURL
            let landed = try await SlackWebAPIClient(http: http, configuration: api).postMessage(
                token: Secret(h.fake.configuration.botToken), channel: Channels.approvals, text: "Approval #\(second.id) needed: migrate",
                metadata: .object(["event_type": .string(SlackAdapter.metadataEventType), "event_payload": .object(["nonce": .string(nonce)])]))
            try await http.shutdown()
            try await offline.store.close()
            let postsBefore = await h.fake.calls("chat.postMessage").count

            try await h.boot()
            #expect(await eventually { await h.message(card)?.edits == 1 }, "the pending edit was replayed")
            #expect(await h.message(card)?.allText.contains("while the bot was down") == true)
            #expect(await h.outboxSettled(second.ref))
            let reconciled = try #require(try await h.workflow.store.cards(of: second.ref).first { $0.id == cardID })
            #expect(reconciled.state == .posted)
            #expect(reconciled.messageID == landed.messageID)
            #expect(await h.fake.calls("chat.postMessage").count == postsBefore, "nothing was posted twice")
            await h.stop()
        }

        @Test("E81 duplicate handlers after reconnects: after 5 refreshes a command still produces exactly one reply")
        func e81_noDuplicateHandlers() async throws {
            let h = try await ChatHarness.start()
            for round in 1...5 {
                await h.fake.sendDisconnect(reason: "refresh_requested")
                #expect(await eventually { await h.fake.connections().filter { $0.helloAt != nil }.count == round + 1 })
                #expect(await eventually { await h.fake.liveConnections().count == 1 })
            }
            let envelope = await h.fake.slash(user: People.alice, channel: Channels.approvals, text: "help")
            #expect(await eventually { await h.fake.ack(for: envelope) != nil })
            #expect(await h.fake.acks().filter { $0.envelopeID == envelope }.count == 1)
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let reply = await h.fake.postUserMessage(user: People.alice, channel: card.channel, text: "approve looks good", threadTS: card.messageID)
            #expect(await eventually { (try? await h.approval(approval.id))?.status.decision?.comment == "looks good" })
            #expect(await eventually { await h.fake.reactionsAdded().contains { $0.ts == reply } })
            #expect(!(await eventually(timeout: .milliseconds(700)) {
                let reactions = await h.fake.reactionsAdded().count
                let ephemerals = await h.fake.ephemerals().count
                return reactions > 1 || ephemerals > 0
            }), "one reply, not one per socket")
            await h.stop()
        }
    }
}
