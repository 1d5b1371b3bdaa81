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
    /// The injection cases of ``InjectionTests`` on a real Synapse: AI text on cards, a person's DM,
    /// a reason and a resolution typed by people; every event the bot sends checked as Synapse stores it.
    @Suite struct MatrixInjectionTests {
        /// Problems with one message content the bot sent (a card, an edit's new content, a notice).
        static func problems(_ content: JSONValue, at place: String, cardMentionsNobody: Bool) -> [String] {
            var out: [String] = []
            let body = content.member("body")?.asString ?? ""
            let html = content.member("formatted_body")?.asString ?? ""
            let size = content.jsonText.utf8.count
            if size > MatrixLimits.contentBytes { out.append("\(place): content is \(size) bytes") }
            for (name, text) in [("body", body), ("formatted_body", html)] {
                if text.lowercased().contains("@room") { out.append("\(place) \(name): @room can notify the room") }
                out += Hostile.actingCharacters(in: text).map { "\(place) \(name): acting character \($0)" }
                out += Hostile.splitGraphemes(in: text).map { "\(place) \(name): split \($0)" }
            }
            for raw in ["<script", "<b>", "<img", #"<a href="http://evil"#, "matrix.to/#/@mallory", "matrix.to/#/@bob"] where html.contains(raw) {
                out.append("\(place) formatted_body: \(raw) got through")
            }
            if body.contains("matrix.to/#/@bob") { out.append("\(place) body: a pill link got through") }
            if cardMentionsNobody, content.member("m.mentions") != .object([:]) {
                out.append("\(place): a card mentions \(content.member("m.mentions")?.jsonText ?? "?")")
            }
            return out
        }

        @Test("Hostile text reaches Matrix inert (HTML escaped, no @room, no pills, no controls); long texts are cut so every event fits")
        func hostileTextOnMatrix() async throws {
            let h = try await MatrixHarness.start()
            // AI/agent text on an approval card; the summary's quotes grow six-fold as HTML, so the edit
            // after the decision must not carry the whole card twice.
            let summary = Hostile.all + " " + String(repeating: "\"", count: 3_500)
            let arguments = JSONValue.object(["blob": .string(Hostile.long(7200)),
                                              "cases": .object(Dictionary(uniqueKeysWithValues: Hostile.cases.dropLast().map { ($0.name, .string($0.text)) }))])
            let approval = try await h.workflow.requestApproval(ApprovalRequest(
                action: "deploy <script>x</script> @room \u{202E}gpj.exe", arguments: arguments, summary: summary,
                requester: "key:agent-bot")).approval
            let card = try await h.card(of: approval.ref)
            let original = try await h.alice.event(card.messageID ?? "", in: card.channel)
            let originalContent = try #require(original.member("content"))
            var problems = Self.problems(originalContent, at: "approval card", cardMentionsNobody: true)
            let body = originalContent.member("body")?.asString ?? ""
            let html = originalContent.member("formatted_body")?.asString ?? ""
            #expect(!body.contains("@alice:localhost") && !html.contains("@alice:localhost"), "a user id in AI text is not a mention")
            for expected in ["&lt;script&gt;alert(1)&lt;/script&gt;", "@\u{2060}room", "nul\u{FFFD}esc\u{FFFD}[31m", "invoice\u{FFFD}fdp.exe", Hostile.family,
                             "&lt;!channel&gt;"] {
                #expect(html.contains(expected), "the card shows \(expected.debugDescription) as text")
            }
            #expect(body.contains("<script>alert(1)</script>"), "the plain body shows the text as typed (it is not HTML)")

            // A person's DM asking for a person, with markup, a pill link, @room and controls.
            let dm = try await h.user.createRoom(invite: [h.bot.userID], direct: true)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.user.membership(of: h.bot.userID, in: dm)) == "join" })
            let typed = #"I need a human <script>alert(1)</script> @room <a href="https://matrix.to/#/@mallory:localhost">x</a> "#
                + "https://matrix.to/#/@bob:localhost \u{202E}gpj.exe esc\u{1B}[31m \(Hostile.family) \(Hostile.person)"
            try await h.user.send(typed, in: dm)
            #expect(await eventually(timeout: .seconds(20)) { ((try? await h.workflow.escalations()) ?? []).count == 1 })
            let escalation = try #require(try await h.workflow.escalations().first)
            let escalationCard = try await h.card(of: escalation.ref)
            let posted = try await h.alice.event(escalationCard.messageID ?? "", in: escalationCard.channel)
            problems += Self.problems(try #require(posted.member("content")), at: "escalation card", cardMentionsNobody: true)

            // People's text: a rejection reason (a reply to the card), and a resolution far over what fits.
            try await h.alice.send("reject \(approval.id) <b>no</b> @room \u{202E}gpj.exe \(Hostile.family)", in: card.channel, replyTo: card.messageID)
            #expect(await eventually(timeout: .seconds(20)) { (try? await h.approval(approval.id))?.status.name == "rejected" })
            let resolution = String(repeating: "<", count: 19_000) + " @room \(Hostile.family)"
            _ = try await h.workflow.resolveEscalation(escalation.id, resolution: resolution, by: Actor("matrix:@alice:localhost"))
            #expect(await eventually(timeout: .seconds(30)) { (try? await h.cardText(card).body.contains("Rejected by @alice:localhost")) == true },
                    "the decided approval card was edited")
            #expect(await eventually(timeout: .seconds(30)) { (try? await h.cardText(escalationCard).body.contains("Resolved by @alice:localhost")) == true },
                    "the resolved escalation card was edited, its long resolution cut")
            func notices() async -> [JSONValue] {
                ((try? await h.user.messages(in: dm, from: h.bot.userID)) ?? []).compactMap { $0.member("content") }
            }
            #expect(await eventually(timeout: .seconds(30)) { await notices().contains { ($0.member("body")?.asString ?? "").hasPrefix("<<<<") } },
                    "the user gets the resolution, cut to fit")
            #expect(await h.outboxSettled(approval.ref))
            #expect(await h.outboxSettled(escalation.ref))
            for ref in [approval.ref, escalation.ref] {
                let failed = try await h.workflow.store.outbox(of: ref).filter { $0.status == .failed }
                #expect(failed.isEmpty, "\(ref): no card or notice failed: \(failed.map { $0.lastError ?? "" })")
            }

            // Every event the bot sent, and every edit's new content, as Synapse serves them.
            var checked = 0
            for (room, reader) in [(h.rooms.approvals, h.alice), (h.rooms.agents, h.alice), (dm, h.user)] {
                for event in try await reader.messages(in: room, from: h.bot.userID, originalsOnly: false) {
                    guard let content = event.member("content") else { continue }
                    let isCard = content.member("m.new_content") != nil || content.member(MatrixAdapter.nonceKey) != nil
                    problems += Self.problems(content, at: "\(room) event", cardMentionsNobody: isCard)
                    if let new = content.member("m.new_content") {
                        problems += Self.problems(new, at: "\(room) edit", cardMentionsNobody: true)
                    }
                    checked += 1
                }
            }
            for notice in await notices() {
                problems += Self.problems(notice, at: "notice to the user", cardMentionsNobody: false)
                checked += 1
            }
            #expect(problems.isEmpty, "\(problems.count) problems: \(problems.prefix(20).joined(separator: "\n"))")
            #expect(checked >= 6, "cards, edits and notices were checked: \(checked)")
            print("Injection on Matrix (Synapse): \(Hostile.cases.count) hostile inputs; \(checked) events checked")
            await h.stop()
        }
    }
}
