import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// Hostile text, as AI output and as what people type: it must show as inert text on every surface
/// and be cut to each platform's limits without breaking the card.
enum Hostile {
    static let family = "👨‍👩‍👧‍👦"  // one grapheme, seven scalars (ZWJ sequence)
    static let person = "🧑🏽"       // one grapheme, two scalars (skin tone)
    static let flag = "🏳️‍🌈"        // one grapheme, four scalars (VS16 + ZWJ)
    static let accent = "e\u{301}"   // one grapheme, two scalars (combining mark)

    /// The cases, each a kind of attack.
    static let cases: [(name: String, text: String)] = [
        ("broadcasts", "<!channel> <!here> <!everyone> @channel @here @everyone @room"),
        ("mentions", "<@U123> <@U0ALICE|alice> <#C0SECRET> @alice:localhost https://matrix.to/#/@bob:localhost"),
        ("links", "<http://evil.example|click> [x](http://evil.example) <https://evil.example>"),
        ("html", #"<b>bold</b> <script>alert(1)</script> <img src=x onerror=alert(1)> </pre><a href="http://evil.example">x</a> &amp; &lt;"#),
        ("controls", "nul\u{0}esc\u{1B}[31mred bell\u{7} del\u{7F} c1\u{85}"),
        ("bidi", "invoice\u{202E}fdp.exe \u{2066}isolated\u{2069} \u{202D}forced\u{202C}"),
        ("joiners", "\(family) \(person) \(flag) \(accent) zero\u{200B}width\u{200D}joiner"),
        ("long", "(≈100,000 characters of graphemes, broadcasts and entities; see long(_:))"),
    ]

    /// Every short case in one text.
    static let all = cases.dropLast().map(\.text).joined(separator: " | ")

    /// `units` × 14 characters (21 Unicode scalars, 45 UTF-8 bytes) where every cut point falls next to
    /// a grapheme cluster, a broadcast or an entity.
    static func long(_ units: Int) -> String {
        String(repeating: "\(family)<!channel>&\(person) ", count: units)
    }

    /// What a platform must never show as typed: the acting characters.
    static func actingCharacters(in text: String) -> [String] {
        text.unicodeScalars.filter(Escaping.isActing).map { String(format: "U+%04X", $0.value) }
    }

    /// Grapheme clusters of the hostile text that were split (a cut inside a cluster leaves a
    /// different cluster holding part of it).
    static func splitGraphemes(in text: String) -> [String] {
        var out: [String] = []
        for character in text {
            let scalars = Set(character.unicodeScalars.map(\.value))
            if scalars.contains(0x1F468), character != Character(family) { out.append("family: \(character.unicodeScalars.map { String($0.value, radix: 16) })") }
            if scalars.contains(0x1F9D1), character != Character(person) { out.append("person: \(character.unicodeScalars.map { String($0.value, radix: 16) })") }
            if scalars.contains(0x1F3F3), character != Character(flag) { out.append("flag: \(character.unicodeScalars.map { String($0.value, radix: 16) })") }
        }
        return out
    }
}

/// Checks of what Slack receives: Block Kit limits (UTF-8 bytes), escaping, tokens, graphemes.
enum SlackInertness {
    /// People Handoff may mention (the only `<@…>` tokens allowed, since untrusted `<` is escaped).
    static let people: Set<String> = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN", "U0USER", "U0MALLORY"]

    /// Problems with one mrkdwn text: a token Handoff did not make, an entity cut or not escaped, a
    /// broadcast keyword, an acting character, a split grapheme, the limit.
    static func mrkdwn(_ text: String, limit: Int, at place: String) -> [String] {
        var out: [String] = []
        if text.utf8.count > limit { out.append("\(place): \(text.utf8.count) bytes > \(limit)") }
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else {
                out.append("\(place): an unclosed token \(rest[open...].prefix(40))")
                break
            }
            let token = String(rest[open...close])
            let mention = token.wholeMatch(of: /<@(U[A-Z0-9]+)>/).map { people.contains(String($0.output.1)) } ?? false
            let date = token.wholeMatch(of: /<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>|]*>/) != nil
            if !mention && !date { out.append("\(place): a token Handoff did not make: \(token.prefix(60))") }
            rest = rest[rest.index(after: close)...]
        }
        var scan = Substring(text)
        while let amp = scan.firstIndex(of: "&") {
            let after = scan[amp...]
            if !(after.hasPrefix("&amp;") || after.hasPrefix("&lt;") || after.hasPrefix("&gt;")) {
                out.append("\(place): a bare or cut entity: \(after.prefix(8))")
            }
            scan = scan[scan.index(after: amp)...]
        }
        let lower = text.lowercased()
        for keyword in ["@channel", "@here", "@everyone"] where lower.contains(keyword) { out.append("\(place): \(keyword) can broadcast") }
        out += Hostile.actingCharacters(in: text).map { "\(place): acting character \($0)" }
        out += Hostile.splitGraphemes(in: text).map { "\(place): split \($0)" }
        return out
    }

    /// Problems with a plain_text object (no markup is parsed there: only limits, characters, graphemes).
    static func plain(_ text: String, limit: Int, at place: String) -> [String] {
        var out: [String] = []
        if text.utf8.count > limit { out.append("\(place): \(text.utf8.count) bytes > \(limit)") }
        if text.isEmpty { out.append("\(place): empty") }
        out += Hostile.actingCharacters(in: text).map { "\(place): acting character \($0)" }
        out += Hostile.splitGraphemes(in: text).map { "\(place): split \($0)" }
        return out
    }

    /// Every problem with a message (fallback text + blocks); the fake's and the bot's validators too.
    static func message(text: String, blocks: JSONValue?, at place: String) -> [String] {
        var out = mrkdwn(text, limit: BlockKitLimits.fallbackText, at: "\(place) text")
        guard var blocks else { return out }
        if case .string(let s) = blocks, let parsed = try? JSONValue.parsePayload(s) { blocks = parsed }
        out += FakeSlackBlockKit.problems(text: text, blocks: blocks).map { "\(place): fake Slack refuses: \($0)" }
        do { try BlockKitValidator.validate(SlackMessage(text: text, blocks: blocks)) } catch { out.append("\(place): \(error)") }
        for (i, block) in (blocks.asArray ?? []).enumerated() {
            func object(_ o: JSONValue?, _ limit: Int, _ where_: String) {
                guard let o, let t = o.member("text")?.asString else { return }
                if o.member("type")?.asString == "mrkdwn" {
                    out += mrkdwn(t, limit: limit, at: "\(place) \(where_)")
                } else {
                    out += plain(t, limit: limit, at: "\(place) \(where_)")
                }
            }
            switch block.member("type")?.asString {
            case "header": object(block.member("text"), BlockKitLimits.headerText, "block \(i) header")
            case "section":
                object(block.member("text"), BlockKitLimits.sectionText, "block \(i) section")
                for (j, f) in (block.member("fields")?.asArray ?? []).enumerated() { object(f, BlockKitLimits.fieldText, "block \(i) field \(j)") }
            case "context":
                for (j, e) in (block.member("elements")?.asArray ?? []).enumerated() { object(e, BlockKitLimits.contextText, "block \(i) context \(j)") }
            case "actions":
                for (j, e) in (block.member("elements")?.asArray ?? []).enumerated() { object(e.member("text"), BlockKitLimits.buttonText, "block \(i) button \(j)") }
            default: break
            }
        }
        return out
    }

    /// All text of a message's blocks, for positive checks.
    static func allText(text: String, blocks: JSONValue?) -> String {
        var parts = [text]
        func walk(_ v: JSONValue) {
            switch v {
            case .string(let s): parts.append(s)
            case .array(let a): a.forEach(walk)
            case .object(let o): o.keys.sorted().forEach { walk(o[$0]!) }
            default: break
            }
        }
        if let blocks { walk(blocks) }
        return parts.joined(separator: "\n")
    }
}

@Suite(.serialized) struct InjectionTests {
    static let policy = """
        groups:
          approvers: [slack:U0ALICE, key:alice]
          reviewers: [slack:U0CAROL, key:carol]
          labelers: [slack:U0CAROL, key:carol, key:root]
          agents: [slack:U0DAVE, key:dave]
          experts: [slack:U0ERIN]
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 1h }
        queues:
          default: { reviewers: [reviewers], channel: reviews, lease: 15m, sla: 4h }
        routes:
          default: { threshold: 0.8, queue: default }
        escalation:
          tiers:
            - { name: ai }
            - { name: agent, group: agents, sla: 30m, ack_timeout: 2h, channel: agents }
            - { name: expert, group: experts, sla: 4h, ack_timeout: 8h, channel: experts }
        chat:
          channels:
            approvals: { slack: C0APPROVALS }
            reviews: { slack: C0REVIEWS }
            agents: { slack: C0AGENTS }
            experts: { slack: C0EXPERTS }
            default: { slack: C0HANDOFF }
        """

    static func json(_ value: JSONValue) -> String { value.canonicalText }

    /// The hostile entities, created over HTTP by an agent: an approval (action, summary, ~100k
    /// characters of arguments), a review item, an escalation, a choice feedback and a label task.
    static func createHostileEntities(_ app: TestApp, agent: String) async throws {
        let action = "deploy <!channel> <script>x</script> \u{202E}gpj.exe " + String(repeating: Hostile.person, count: 60)
        let summary = Hostile.all + " " + String(repeating: "\(Hostile.family)&<", count: 250)
        let arguments = JSONValue.object(["blob": .string(Hostile.long(7200)),
                                          "cases": .object(Dictionary(uniqueKeysWithValues: Hostile.cases.dropLast().map { ($0.name, .string($0.text)) }))])
        let approval = try await app.post("/v1/approvals", key: agent, json(.object([
            "action": .string(action), "summary": .string(summary), "arguments": arguments])))
        #expect(approval.status == 201, "\(approval.text.prefix(300))")
        let long = Hostile.long(900)  // 18,900 scalars: under the 20,000 a text field takes
        let item = try await app.post("/v1/review-items", key: agent, json(.object([
            "title": .string(Hostile.all), "query": .string(Hostile.all), "answer": .string(long), "reason": .string(Hostile.all),
            "context": .object(["blob": .string(Hostile.long(7200))])])))
        #expect(item.status == 201, "\(item.text.prefix(300))")
        let escalation = try await app.post("/v1/escalations", key: agent, json(.object([
            "query": .string(Hostile.all), "context": .string(long), "reason": .string(Hostile.cases[3].text)])))
        #expect(escalation.status == 201, "\(escalation.text.prefix(300))")
        let options: [JSONValue] = [.string(Hostile.cases[0].text), .string(String(Hostile.cases[3].text.prefix(150))),
                                    .string(String(repeating: Hostile.family, count: 25)), .string(Hostile.cases[5].text)]
        let feedback = try await app.post("/v1/feedback", key: agent, json(.object([
            "kind": .string("choice"), "options": .array(options), "prompt": .string(Hostile.all)])))
        #expect(feedback.status == 201, "\(feedback.text.prefix(300))")
        let task = try await app.post("/v1/label-tasks", key: agent, json(.object([
            "dataset": .string("<svg onload=alert(1)> \u{202E}sd"), "type": .string("text"), "content": .string(Hostile.long(4700)),
            "instructions": .string(Hostile.all)])))
        #expect(task.status == 201, "\(task.text.prefix(300))")
    }

    @Test("Hostile AI and user text reaches Slack as inert text, cut to Block Kit's limits without breaking a card; the dashboard shows it inert")
    func slackAndDashboard() async throws {
        let fake = try await FakeSlack.start()
        do {
            try await run(fake)
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    func run(_ fake: FakeSlack) async throws {
        try await withTestApp(policy: Self.policy, configure: { c in
            c.slack = SlackSettings(appToken: fake.configuration.appToken, botToken: fake.configuration.botToken,
                                    signingSecret: fake.configuration.signingSecret, apiURL: fake.apiURL)
        }) { app in
            let ready = await eventually(timeout: .seconds(20)) {
                (app.app.chat.router?.isReady("slack") ?? false) && app.app.chat.socketMode?.status == .connected
            }
            try #require(ready, "the Slack connection came up")
            let agent = try await app.key("agent-bot", .agent)
            let admin = try await app.key("root", .admin)
            try await Self.createHostileEntities(app, agent: agent)

            // User text: a DM asking for a person, as Slack delivers it (what the client turned into tokens,
            // and typed `<` escaped).
            let dm = FakeSlack.dmChannel(for: People.user)
            let typed = "I want a person <!channel> <@U123> <http://evil.example|click> &lt;script&gt;alert(1)&lt;/script&gt; "
                + "\u{202E}gpj.exe nul\u{0}esc\u{1B}[31m \(Hostile.family) \(Hostile.person) @here"
            await fake.postUserMessage(user: People.user, channel: dm, text: typed)
            #expect(await eventually { ((try? await app.workflow.escalations()) ?? []).count == 2 })
            let fromUser = try #require(try await app.workflow.escalations().first { $0.requester == ActorID("slack:\(People.user)") })
            #expect(fromUser.query.contains("<script>alert(1)</script>"), "the user's text is stored as typed")

            // People's text on cards and in notices: a rejection reason, a resolution (long: cut on Slack).
            var refs = try await app.workflow.approvals().map(\.ref) + app.workflow.reviewItems().map(\.ref)
            refs += try await app.workflow.escalations().map(\.ref) + [EntityRef(kind: .feedback, id: 1)]
            for ref in refs {
                #expect(await eventually { ((try? await app.workflow.store.cards(of: ref)) ?? []).contains { $0.state == .posted } },
                        "\(ref): its card was posted")
            }
            let reject = await fake.slash(user: People.alice, channel: Channels.approvals,
                                          text: "reject 1 &lt;!channel&gt; <!here> <@U123> \u{202E}gpj.exe \(Hostile.family)")
            #expect(await eventually { await fake.ack(for: reject) != nil })
            #expect(await eventually { (try? await app.workflow.approval(ApprovalID(1)))?.status.name == "rejected" })
            let resolution = String(repeating: "&lt;", count: 12_000) + " <!channel> \(Hostile.family)"
            let resolve = await fake.slash(user: People.dave, channel: Channels.agents, text: "resolve \(fromUser.id) \(resolution)")
            #expect(await eventually { await fake.ack(for: resolve) != nil })
            #expect(await eventually { (try? await app.workflow.escalation(fromUser.id))?.status.name == "resolved" })
            #expect(await eventually { await fake.messages(in: dm).contains { $0.botID != nil && $0.text.hasSuffix("…") } },
                    "the user gets the long resolution, cut to Slack's message limit")
            // A refusal that quotes hostile options back.
            let rate = await fake.slash(user: People.mallory, channel: Channels.fallback, text: "rate 1 nothing-like-it")
            #expect(await eventually { await fake.ack(for: rate)?.payload?.member("text") != nil })
            #expect(await eventually {
                let settled = (try? await app.workflow.store.pendingInbound(platform: nil, limit: 1))?.isEmpty ?? false
                let outbox = try? await app.workflow.store.dueOutbox(now: Date().addingTimeInterval(3600), kinds: [.postCard, .updateCards, .notify], limit: 1)
                return settled && (outbox?.isEmpty ?? false)
            }, "every event handled and every card and notice delivered")

            // Everything the bot sent Slack.
            var problems: [String] = []
            var checked = 0
            for call in await fake.calls() where ["chat.postMessage", "chat.update"].contains(call.method) {
                problems += SlackInertness.message(text: call.argument("text") ?? "", blocks: call.arguments["blocks"], at: "\(call.method) #\(checked)")
                #expect(call.error == nil, "\(call.method) failed: \(call.error ?? "")")
                checked += 1
            }
            for ephemeral in await fake.ephemerals() {
                problems += SlackInertness.mrkdwn(ephemeral.text, limit: BlockKitLimits.fallbackText, at: "ephemeral")
                checked += 1
            }
            for ack in await fake.acks() {
                guard let text = ack.payload?.member("text")?.asString else { continue }
                problems += SlackInertness.mrkdwn(text, limit: BlockKitLimits.sectionText, at: "ack")
                checked += 1
            }
            #expect(problems.isEmpty, "\(problems.count) problems: \(problems.prefix(20).joined(separator: "\n"))")
            #expect(checked >= 12, "cards, edits, notices and replies were checked: \(checked)")

            // Shown, not dropped: the hostile text is there as text.
            let approvalCard = try #require(await fake.messages(in: Channels.approvals).first { $0.botID != nil })
            let shown = SlackInertness.allText(text: approvalCard.text, blocks: approvalCard.blocks)
            for expected in ["&lt;!channel&gt;", "@\u{2060}channel", "&lt;@U123&gt;", "&lt;http://evil.example|click&gt;", "[x](http://evil.example)",
                             "&lt;script&gt;alert(1)&lt;/script&gt;", "nul\u{FFFD}esc\u{FFFD}[31m", "invoice\u{FFFD}fdp.exe", Hostile.family, Hostile.flag] {
                #expect(shown.contains(expected), "the card shows \(expected.debugDescription) as text")
            }
            #expect(shown.contains("&lt;!here&gt;"), "the rejection reason is on the card, escaped")
            #expect(shown.contains("…"), "the long texts were cut")

            // The dashboard shows the same entities inert.
            var admin_ = DashboardClient(app: app)
            _ = try await admin_.signIn(admin)
            var pages = 0
            for path in ["/", "/approvals?status=all", "/approvals/1", "/reviews", "/reviews/1", "/escalations", "/labeling", "/stats"] {
                let page = try await admin_.get(path)
                #expect(page.status == 200, "\(path): \(page.status)")
                let html = page.text
                #expect(Hostile.actingCharacters(in: html).isEmpty, "\(path) shows acting characters: \(Hostile.actingCharacters(in: html).prefix(5))")
                #expect(Hostile.splitGraphemes(in: html).isEmpty, "\(path)")
                for raw in ["<script>alert", "<b>bold", "<img src=x", "<svg onload", #"<a href="http://evil"#, "<!channel>"] {
                    #expect(!html.contains(raw), "\(path) contains \(raw) unescaped")
                }
                pages += 1
            }
            let detail = try await admin_.get("/approvals/1").text
            for expected in ["&lt;!channel&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "nul\u{FFFD}esc", "invoice\u{FFFD}fdp.exe", Hostile.family] {
                #expect(detail.contains(expected), "the approval page shows \(expected.debugDescription) as text")
            }
            let labeling = try await admin_.get("/labeling").text
            #expect(labeling.contains("&lt;svg onload=alert(1)&gt; \u{FFFD}sd"), "the dataset name is inert")
            print("Injection on Slack and the dashboard: \(Hostile.cases.count) hostile inputs; \(checked) Slack messages, edits and replies and \(pages) dashboard pages checked")
        }
    }
}
