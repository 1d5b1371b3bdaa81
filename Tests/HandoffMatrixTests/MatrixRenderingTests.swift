import Foundation
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffTesting
import Testing

/// Cards and messages as Matrix HTML + plain body; escaping of untrusted text; reaction keys.
@Suite struct MatrixRenderingTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)

    static func renderer() throws -> MatrixRenderer {
        MatrixRenderer(templates: try CardTemplates.load(directory: PackagePaths.cardTemplates))
    }

    static func approval(summary: String, arguments: JSONValue = .object(["service": .string("api")])) throws -> Approval {
        let request = ApprovalRequest(action: "deploy", arguments: arguments, summary: summary, requester: "key:deploy-bot")
        return try ApprovalMachine.create(id: ApprovalID(42), request: request, policy: ApprovalPolicy(quorum: 1, expiresAfter: .hours(1)),
                                          now: now).entity
    }

    @Test func everyCardKindHasAnHTMLAndAPlainTemplateForMatrix() throws {
        let templates = try CardTemplates.load(directory: PackagePaths.cardTemplates)
        for kind in CardKind.allCases {
            #expect(templates.names.contains("matrix/\(kind.rawValue)"), "templates/cards/matrix/\(kind.rawValue).mustache is missing")
            #expect(templates.names.contains("matrix/\(kind.rawValue).text"), "templates/cards/matrix/\(kind.rawValue).text.mustache is missing")
        }
        let help = try Self.renderer().render(CardBuilder().helpCard())
        #expect(help.formattedBody.contains("<h4>Handoff commands</h4>"))
    }

    @Test func anApprovalCardHasHeadlineFieldsStateAndFooterInBothForms() throws {
        let message = try Self.renderer().render(CardBuilder().card(for: try Self.approval(summary: "Deploy api 1.4.2")))
        #expect(message.formattedBody.hasPrefix("<h4>Approval needed: deploy</h4>"))
        #expect(message.formattedBody.contains("<li><strong>Policy</strong>: default</li>"))
        #expect(message.formattedBody.contains("<pre><code>{&quot;service&quot;:&quot;api&quot;}</code></pre>"))
        #expect(message.formattedBody.contains("<code>key:deploy-bot</code>"), "non-Matrix people are not pills")
        #expect(message.body.hasPrefix("Approval needed: deploy\nDeploy api 1.4.2"))
        #expect(message.body.contains("• Policy: default"))
        #expect(message.body.contains("⏳ Waiting for 1 approval"))
        #expect(!message.body.contains("<h4>") && !message.body.contains("<li>") && !message.body.contains("&quot;"),
                "the plain body has no markup: \(message.body)")
        #expect(message.body.contains("reject <reason>"), "text is text in the plain body")
        let content = message.content(msgtype: "m.notice")
        #expect(content["format"] == .string("org.matrix.custom.html"))
        #expect(content["m.mentions"] == .object([:]), "m.mentions is always sent: no legacy keyword mentions")
    }

    @Test("Escaping: AI and user text cannot inject HTML, @room, mentions or pills into a card")
    func untrustedTextStaysText() throws {
        let evil = "<b>x</b><a href=\"https://matrix.to/#/@alice:localhost\">pill</a> @room @alice:localhost https://matrix.to/#/@bob:localhost <img src=x onerror=alert(1)>"
        let message = try Self.renderer().render(CardBuilder().card(for: try Self.approval(summary: evil, arguments: .object(["cmd": .string(evil)]))))
        let html = message.formattedBody
        #expect(!html.contains("<b>") && !html.contains("<img") && !html.contains("<a href=\"https://matrix.to/#/@alice"))
        #expect(html.contains("&lt;b&gt;x&lt;/b&gt;"))
        #expect(!html.contains("@room") && html.contains("@\u{2060}room"))
        #expect(!html.contains("matrix.to/#/@bob"), "a permalink in text cannot become a pill")
        #expect(!html.contains("@alice:localhost") && html.contains("@\u{2060}alice:localhost"))
        #expect(!message.body.contains("@room") && !message.body.contains("matrix.to/"))
        #expect(!message.body.contains(" @alice:localhost"))
        #expect(message.mentions.isEmpty)
        // The text still reads the same (a word joiner is invisible).
        #expect(message.body.replacingOccurrences(of: "\u{2060}", with: "").contains("@room @alice:localhost https://matrix.to/#/@bob:localhost"))
    }

    @Test func peopleTheWorkflowNamesBecomePillsAndMentions() {
        let text = RichText([.user("matrix:@alice:localhost"), .text(" — reply in this thread with why you are rejecting")])
        let message = MatrixRenderer.message(text)
        #expect(message.formattedBody.hasPrefix("<a href=\"https://matrix.to/#/@alice:localhost\">@alice:localhost</a>"))
        #expect(message.body.hasPrefix("@alice:localhost — reply"))
        #expect(message.mentions == ["@alice:localhost"])
        // An id that is not a well-formed Matrix user id is shown as code, never as a link.
        let odd = MatrixRenderer.message(RichText([.user(ActorID("matrix:@a\"><script>:x"))]))
        #expect(!odd.formattedBody.contains("<script>") && !odd.formattedBody.contains("<a "))
        #expect(odd.mentions.isEmpty)
    }

    @Test func workflowMessagesNameMatrixPeopleWhole() {
        let text = RichText.mentioning("approval #3 was already decided (approved) by @matrix:@alice:localhost.")
        #expect(text.runs.contains(.user("matrix:@alice:localhost")))
        #expect(MatrixRenderer.plain(text) == "approval #3 was already decided (approved) by @alice:localhost.")
    }

    @Test func commandsAreShownInTheBangSyntaxMatrixPeopleType() throws {
        let e = RichText([.text("Answer with "), .command("resolve 3 <answer>")])
        #expect(MatrixRenderer.plain(e) == "Answer with !handoff resolve 3 <answer>")
        #expect(MatrixRenderer.html(e) == "Answer with <code>!handoff resolve 3 &lt;answer&gt;</code>")
        #expect(try CommandParser.parse("!handoff approve 42 ok") == .decide(.approve, id: 42, text: "ok"))
    }

    @Test("D69 emoji key variants: ✅, ✔️ (U+FE0F), ✔, 👍︎ (U+FE0E) / 👍 normalise per the reaction map")
    func d69_emojiVariants() {
        let defaults = ReactionMap()
        #expect(defaults.action(for: "✅") == .approve)
        #expect(defaults.action(for: "✔️") == .approve)
        #expect(defaults.action(for: "✔") == .approve)
        #expect(defaults.action(for: "👍︎") == .feedbackPositive)
        #expect(defaults.action(for: "👍🏽") == .feedbackPositive)
        #expect(defaults.action(for: "⬆") == .escalate)
        let configured = ReactionMap().overriding([.approve: ["✅", "✔️", "👍"], .feedbackPositive: ["+1"]])
        #expect(configured.action(for: "👍︎") == .approve)
        #expect(configured.action(for: "👍") == .approve)
        #expect(configured.emoji(for: .approve) == "✅")
        #expect(defaults.emoji(for: .escalate) == "⬆️")
        #expect(defaults.emoji(for: .claim) == "✋")
    }

    @Test func cardsAreSeededWithTheKeysOfTheirActions() throws {
        let adapter = MatrixAdapter(client: MatrixClient(http: .shared, configuration: .init(homeserver: "http://127.0.0.1:9")),
                                    renderer: try Self.renderer(), state: InMemoryMatrixStateStore())
        #expect(adapter.seedKeys(for: CardBuilder().card(for: try Self.approval(summary: "x"))) == ["✅", "❌", "🔁"])
        var escalation = CardBuilder().card(for: try Self.approval(summary: "x"))
        escalation.buttons = [CardButton(.claim, label: "Claim", value: "escalation:1"), CardButton(.escalate, label: "Escalate", value: "escalation:1")]
        #expect(adapter.seedKeys(for: escalation) == ["✋", "⬆️"])
        escalation.buttons = []
        #expect(adapter.seedKeys(for: escalation).isEmpty, "a decided card offers nothing")
    }
}
