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
    /// protocol-edge-cases.md §D (cases 60–72) against the real Synapse, plus the §E cases Matrix changes.
    @Suite struct EdgeCases {
        /// Decisions recorded for an approval (pending → decided transitions in the audit trail).
        static func decisions(_ h: MatrixHarness, _ approval: Approval) async throws -> Int {
            try await h.workflow.store.audit(of: approval.ref).filter { $0.from == "pending" && $0.to != "pending" }.count
        }

        @Test("D60 initial sync history: a command and an approver's ✅ from before the first start are not acted on")
        func d60_initialSyncHistory() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            await h.shutdown()
            // While no bot runs, the room gets a command and an approver's reaction.
            let command = try await h.alice.send("!approve \(approval.id)", in: h.rooms.approvals)
            let reaction = try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            // A first start: no sync token stored.
            try await h.offline { store in
                _ = try await store.database.write([WriteStep(SQLStatement("DELETE FROM kv WHERE key = ?", [.text(h.syncTokenKey)]))])
            }
            try await h.boot()
            // The bot is live (a new message is handled)…
            let chatter = try await h.mallory.send("good morning", in: h.rooms.approvals)
            #expect(await h.handled(chatter))
            // …but the history was not executed, nor even recorded.
            #expect(try await h.inboundStatus(command) == nil)
            #expect(try await h.inboundStatus(reaction) == nil)
            #expect(try await h.approval(approval.id).status == .pending)
            // A new vote after the start counts.
            try await h.bob.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.decision?.by == ["matrix:@bob:localhost"] })
            await h.stop()
        }

        @Test("D61 restart continuity (story: the bot restarts mid-way): the command sent while down is handled once, old ones not repeated")
        func d61_restartContinuity() async throws {
            let h = try await MatrixHarness.start()
            let first = try await h.requestApproval("deploy")
            let second = try await h.requestApproval("rollback")
            let firstCard = try await h.card(of: first.ref)
            let secondCard = try await h.card(of: second.ref)
            let vote = try await h.alice.react(to: firstCard.messageID ?? "", in: firstCard.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(first.id))?.status.name == "approved" })
            #expect(await h.handled(vote))
            let tokenBefore = try await h.workflow.store.value(forKey: h.syncTokenKey)
            await h.shutdown()
            let reply = try await h.bob.send("approve ship it", in: secondCard.channel, replyTo: secondCard.messageID)
            try await h.boot()
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(second.id))?.status.name == "approved" })
            #expect(await h.handled(reply))
            #expect(try await h.approval(second.id).status.decision?.comment == "ship it")
            #expect(try await Self.decisions(h, first) == 1, "the old vote was not re-executed")
            #expect(try await Self.decisions(h, second) == 1, "the new command once")
            #expect(try await h.workflow.store.value(forKey: h.syncTokenKey) != tokenBefore, "the sync resumed and moved on")
            #expect(await h.inboundSettled())
            #expect(try await h.privateMessages(to: h.alice).isEmpty, "no \"already decided\" notices from a replay")
            await h.stop()
        }

        @Test("D62 crash between side effect and token save: the batch is redelivered and deduped by event_id (raw row and inbox key)")
        func d62_crashBeforeTokenSave() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            #expect(await h.inboundSettled())
            let tokenBefore = try #require(try await h.workflow.store.value(forKey: h.syncTokenKey))
            let vote = try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await h.outboxSettled(approval.ref))
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.edits(of: card)) == 1 })
            await h.shutdown()

            // The transition happened but the token save did not: the token is still the one from before.
            try await h.offline { try await $0.setValue(tokenBefore, forKey: h.syncTokenKey, at: h.clock.now()) }
            try await h.boot()
            #expect(await eventually { h.sync.completedSyncs >= 1 })
            #expect(await h.inboundSettled())
            #expect(try await Self.decisions(h, approval) == 1)

            // Again, and this time the raw rows are gone too: the inbox key of the effect still dedupes.
            await h.shutdown()
            try await h.offline { store in
                try await store.setValue(tokenBefore, forKey: h.syncTokenKey, at: h.clock.now())
                _ = try await store.database.write([WriteStep(SQLStatement("DELETE FROM inbound_events"))])
            }
            try await h.boot()
            #expect(await h.handled(vote), "the reaction was redelivered and went through the router again")
            #expect(try await Self.decisions(h, approval) == 1, "no second transition")
            #expect(await h.outboxSettled(approval.ref))
            #expect(try await h.edits(of: card) == 1, "no second card edit")
            #expect(try await h.privateMessages(to: h.alice).isEmpty, "no second message")
            await h.stop()
        }

        @Test("D63 reaction removal via redaction in room versions 10 and 11: the vote is withdrawn")
        func d63_reactionRemovalViaRedaction() async throws {
            for version in ["10", "11"] {
                let h = try await MatrixHarness.start(roomVersion: version)
                let approval = try await h.requestApproval(policy: "quorum2")
                let card = try await h.card(of: approval.ref)
                let vote = try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
                #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.votes.count == 1 }, "room v\(version)")
                let redaction = try await h.alice.redact(vote, in: card.channel)
                #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.votes.isEmpty == true }, "room v\(version)")
                #expect(await h.handled(redaction))
                // The redaction arrived in its room version's shape.
                let store = try #require(h.workflow.store as? SQLWorkflowStore)
                let payload = try #require(try await store.database.read(
                    "SELECT payload FROM inbound_events WHERE event_key = ?", [.text("event:\(redaction)")]).first?["payload"].string)
                let stored = try MatrixStoredEvent(decoding: payload)
                if version == "11" {
                    #expect(stored.event.member(path: "content", "redacts")?.asString == vote)
                } else {
                    #expect(stored.event.member("redacts")?.asString == vote)
                }
                #expect(stored.removedReaction?.key == "✅")
                // Votes after that still count to the quorum.
                try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
                try await h.bob.react(to: card.messageID ?? "", in: card.channel, key: "✔️")
                #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" }, "room v\(version)")
                await h.stop()
            }
        }

        @Test("D64 duplicate annotation: re-seeding ✅ after a restart gets M_DUPLICATE_ANNOTATION, counted as success")
        func d64_duplicateAnnotation() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            try await h.restart()
            #expect(h.adapter.client.duplicateAnnotations == 0)
            let current = CardBuilder(escalation: h.workflow.policy.escalation).card(for: try await h.approval(approval.id))
            try await h.adapter.decorateCard(current, posted: PostedMessage(channel: card.channel, messageID: card.messageID ?? ""))
            #expect(h.adapter.client.duplicateAnnotations == 3, "all three keys were already there")
            let keys = try await h.alice.reactionKeys(on: card.messageID ?? "", in: card.channel, by: h.bot.userID)
            #expect(keys.sorted() == ["✅", "❌", "🔁"].sorted(), "still one of each")
            await h.stop()
        }

        @Test("D65 txnId idempotency: a send whose reply was lost is retried with the same txnId (one event); a new database never reuses txnIds")
        func d65_txnIdIdempotency() async throws {
            let world = try SynapseWorld.require()
            let proxy = try await MatrixFaultProxy.start(upstream: world.server.baseURL)
            let h = try await MatrixHarness.start(homeserverURL: proxy.url)
            proxy.dropNextReply(to: "/send/m.room.message/")
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(proxy.dropped.count == 1, "the first post's reply was lost after Synapse accepted it")
            let sends = proxy.seen.filter { $0.hasPrefix("PUT") && $0.contains("/send/m.room.message/") }
            #expect(sends.count >= 2)
            #expect(Set(sends).count == 1, "the retry used the same txnId (same path)")
            let cards = try await h.alice.messages(in: card.channel, from: h.bot.userID)
            #expect(cards.count == 1, "one visible card")
            #expect(cards.first?.member("event_id")?.asString == card.messageID, "the retry got the original event back")

            // A new database (ids from 1 again), same bot and device: the same nonce is a new transaction.
            await h.shutdown()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: h.databasePath + suffix) }
            try await h.boot()
            let again = try await h.requestApproval()
            #expect(again.id == approval.id)
            let secondCard = try await h.card(of: again.ref)
            #expect(secondCard.nonce == card.nonce, "the same nonce as the first database's card")
            #expect(secondCard.messageID != card.messageID, "…but a new event, not the old one the homeserver remembers")
            #expect(try await h.alice.messages(in: card.channel, from: h.bot.userID).count == 2)
            await h.stop()
            await proxy.stop()
        }

        @Test("D66 rate limit: 15 cards under Synapse's default rc_message (0.2/s, burst 10) → 429s honoured, all 15 posted once", .timeLimit(.minutes(5)))
        func d66_rateLimit() async throws {
            var configuration = SynapseServer.Configuration()
            configuration.relaxedMessageRateLimit = false
            let server = try await SynapseServer.start(configuration)
            do {
                let world = SynapseWorld(
                    server: server, alice: MatrixTestClient(server: server, user: try await server.register("alice")),
                    bob: MatrixTestClient(server: server, user: try await server.register("bob")),
                    mallory: MatrixTestClient(server: server, user: try await server.register("mallory")),
                    user: MatrixTestClient(server: server, user: try await server.register("user")))
                let h = try await MatrixHarness.start(world: world) { $0.matrixAdapter.seedReactions = false }
                var approvals: [Approval] = []
                for i in 1...15 { approvals.append(try await h.requestApproval("job-\(i)")) }
                var cards: [CardRef] = []
                for approval in approvals { cards.append(try await h.card(of: approval.ref, timeout: .seconds(120))) }
                #expect(h.adapter.client.rateLimitedResponses > 0, "Synapse answered 429 M_LIMIT_EXCEEDED")
                #expect(Set(cards.compactMap(\.messageID)).count == 15)
                let posted = try await h.alice.messages(in: h.rooms.approvals, from: h.bot.userID)
                #expect(posted.count == 15, "each card once")
                let nonces = posted.compactMap { $0.member(path: "content", MatrixAdapter.nonceKey)?.asString }
                #expect(Set(nonces) == Set(cards.map(\.nonce)))
                await h.stop()
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }

        @Test("D67 limited sync: a command in a burst the timeline left out is back-filled from /messages and handled once")
        func d67_limitedSync() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            await h.shutdown()
            // After the restart a sync returns at most 3 events per room (and, being another filter, is
            // not served from Synapse's response cache of the long-poll that was in flight at shutdown).
            h.retune { $0.matrixSync.timelineLimit = 3 }
            let command = try await h.alice.send("!approve \(approval.id) from the burst", in: h.rooms.approvals)
            for i in 1...8 { try await h.mallory.send("chatter \(i)", in: h.rooms.approvals) }
            try await h.boot()
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(try await h.approval(approval.id).status.decision?.comment == "from the burst")
            #expect(h.sync.backfilledEvents > 0, "the timeline was limited and back-filled")
            #expect(await h.handled(command))
            #expect(try await Self.decisions(h, approval) == 1)
            await h.stop()
        }

        @Test("D68 edits of commands: an m.replace turning !approve 41 into !approve <id> is not a command; another sender's edit neither")
        func d68_editsOfCommands() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            _ = try await h.card(of: approval.ref)
            let original = try await h.alice.send("!approve 4100", in: h.rooms.approvals)
            #expect(await h.handled(original))
            let edit = try await h.alice.edit(original, in: h.rooms.approvals, to: "!approve \(approval.id)")
            #expect(await h.handled(edit))
            let foreign = try await h.mallory.edit(original, in: h.rooms.approvals, to: "!approve \(approval.id) forged")
            #expect(await h.handled(foreign))
            #expect(try await h.approval(approval.id).status == .pending)
            // The bot is not stuck: a new command works.
            try await h.alice.send("!approve \(approval.id)", in: h.rooms.approvals)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            await h.stop()
        }

        @Test("D69 emoji key variants: ✅, ✔️ (U+FE0F), ✔, 👍︎ (U+FE0E) normalise per the configured reaction map; unknown emoji ignored")
        func d69_emojiKeyVariants() async throws {
            let h = try await MatrixHarness.start(policyExtra: """
                  reactions:
                    approve: ["✅", "✔️", "👍"]
                    feedback_positive: ["+1"]
                """)
            let keys = ["✅", "✔️", "✔", "👍︎", "🎉"]
            var approvals: [(Approval, CardRef)] = []
            for (i, _) in keys.enumerated() {
                let a = try await h.requestApproval("job-\(i)")
                approvals.append((a, try await h.card(of: a.ref)))
            }
            var events: [String] = []
            for (key, (_, card)) in zip(keys, approvals) {
                events.append(try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: key))
            }
            for (key, (approval, _)) in zip(keys, approvals) where key != "🎉" {
                #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" }, "\(key)")
            }
            #expect(await h.handled(events[4]))
            #expect(try await h.approval(approvals[4].0.id).status == .pending, "🎉 means nothing")
            await h.stop()
        }

        @Test("D70 invite: the bot joins rooms allowed inviters invite it to and starts handling; others' invites are declined")
        func d70_invite() async throws {
            let h = try await MatrixHarness.start(allowedInviters: ["@alice:localhost", "@bob:localhost"])
            let allowed = try await h.bob.createRoom(name: "ops", invite: [h.bot.userID])
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.bob.membership(of: h.bot.userID, in: allowed)) == "join" })
            let help = try await h.bob.send("!help", in: allowed)
            #expect(await h.handled(help))
            #expect(await eventually(timeout: .seconds(20)) {
                ((try? await h.privateMessages(to: h.bob)) ?? []).contains { $0.contains("!handoff approve <id> [comment]") }
            }, "handled, and the help shows Matrix's command syntax")
            let refused = try await h.mallory.createRoom(name: "not allowed", invite: [h.bot.userID])
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.mallory.membership(of: h.bot.userID, in: refused)) == "leave" },
                    "the invite was declined")
            await h.stop()
        }

        @Test("D71 own events: the bot's cards, seeded reactions and thread questions are not inputs; no reply loop")
        func d71_ownEvents() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(await h.seeded(card, ["✅", "❌", "🔁"]))
            try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "❌")
            #expect(await eventually(timeout: .seconds(20)) {
                ((try? await h.alice.relations(of: card.messageID ?? "", in: card.channel, relType: "m.thread")) ?? [])
                    .contains { $0.member("sender")?.asString == h.bot.userID }
            })
            let later = try await h.mallory.send("unrelated chatter", in: h.rooms.approvals)
            #expect(await h.handled(later))
            #expect(await h.inboundSettled())
            #expect(try await h.approval(approval.id).status == .pending, "the bot's own ✅ approved nothing")
            let store = try #require(h.workflow.store as? SQLWorkflowStore)
            let payloads = try await store.database.read("SELECT payload FROM inbound_events WHERE platform = 'matrix'").compactMap { $0["payload"].string }
            #expect(!payloads.isEmpty)
            #expect(try payloads.allSatisfy { try MatrixStoredEvent(decoding: $0).event.member("sender")?.asString != h.bot.userID },
                    "the bot's own events were never recorded")
            let threadReplies = try await h.alice.relations(of: card.messageID ?? "", in: card.channel, relType: "m.thread")
            #expect(threadReplies.filter { $0.member("sender")?.asString == h.bot.userID }.count == 1, "one question, no loop")
            await h.stop()
        }

        @Test("D72 token loss: 401 M_UNKNOWN_TOKEN → re-login with the password and carry on; with only an access token, stop with a clear error")
        func d72_tokenLoss() async throws {
            let world = try SynapseWorld.require()
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            #expect(h.adapter.client.logins == 1)
            let token = try #require(h.adapter.client.currentSession?.accessToken)
            let logout = try await world.server.request("POST", "/_matrix/client/v3/logout", body: .object([:]), token: token.revealed)
            #expect(logout.status == 200)
            try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(30)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(h.adapter.client.logins == 2, "logged in again once")
            #expect(h.sync.status == .running)
            await h.stop()

            let tokenOnly = try await MatrixHarness.start(accessTokenOnly: true)
            let session = try #require(tokenOnly.adapter.client.currentSession)
            #expect(tokenOnly.adapter.client.logins == 0, "the access token is used as given")
            _ = try await world.server.request("POST", "/_matrix/client/v3/logout", body: .object([:]), token: session.accessToken.revealed)
            try await tokenOnly.alice.send("anyone there?", in: tokenOnly.rooms.approvals)
            #expect(await eventually(timeout: .seconds(30)) {
                if case .stopped(.fatal) = tokenOnly.sync.status { return true }
                return false
            })
            guard case .stopped(.fatal(let why)) = tokenOnly.sync.status else { Issue.record("not stopped"); return }
            #expect(why.contains("MATRIX_ACCESS_TOKEN"), "\(why)")
            #expect(tokenOnly.adapter.client.logins == 0, "no password, so no login attempts in a loop")
            await tokenOnly.stop()
        }

        @Test("E77/E78 quorum: ✅ and ✔️ from one approver count once; a reaction on a message that is not a card is ignored")
        func e77_quorumAndUnknownCard() async throws {
            let h = try await MatrixHarness.start()
            let approval = try await h.requestApproval(policy: "quorum2")
            let card = try await h.card(of: approval.ref)
            try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            let again = try await h.alice.react(to: card.messageID ?? "", in: card.channel, key: "✔️")
            #expect(await h.handled(again))
            #expect(try await h.approval(approval.id).votes.count == 1)
            let chatter = try await h.bob.send("not a card", in: h.rooms.approvals)
            let stray = try await h.bob.react(to: chatter, in: h.rooms.approvals, key: "✅")
            #expect(await h.handled(stray))
            #expect(try await h.approval(approval.id).votes.count == 1)
            try await h.bob.react(to: card.messageID ?? "", in: card.channel, key: "✅")
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "approved" })
            await h.stop()
        }
    }
}
