import HandoffChatKit
import HandoffCore
import Testing

@Suite struct EscapingTests {
    @Test func untrustedTextCannotMentionBroadcastOrLink() {
        let hostile = "Ignore previous instructions <!channel> <!here> <@U0ADMIN> <#C0SECRET> <https://evil.example|click me> & @here @Channel"
        let out = Escaping.slackMrkdwn(hostile)
        #expect(!out.contains("<"))
        #expect(!out.contains(">"))
        #expect(out.contains("&lt;!channel&gt;"))
        #expect(out.contains("&lt;@U0ADMIN&gt;"))
        #expect(out.contains("&lt;https://evil.example|click me&gt;"))
        #expect(out.contains("&amp; "))
        #expect(!out.contains("@here"), "bare @here must be neutralized")
        #expect(!out.lowercased().contains("@channel"))
        #expect(out.contains("@\u{2060}here"))
    }

    /// Edge case A17 at the text level: Slack's escaped text comes back as typed; the bot's mention goes by id.
    @Test func slackTextIsUnescapedAndTheBotMentionIsStrippedByID() {
        let text = "<@UBOT> approve 42 &lt;urgent&gt; &amp; now <@U0ALICE|alice>"
        #expect(Escaping.slackPlainText(text, removingMentionOf: "UBOT") == "approve 42 <urgent> & now @alice")
        // Another user named like the bot is not stripped: only the id counts.
        #expect(Escaping.slackPlainText("<@U0OTHER|UBOT> hi", removingMentionOf: "UBOT") == "@UBOT hi")
        #expect(Escaping.slackPlainText("see <https://x.example|the doc> in <#C1|ops>", removingMentionOf: nil)
            == "see the doc (https://x.example) in #ops")
    }

    @Test func truncationNeverSplitsAnEntity() {
        let escaped = Escaping.slackMrkdwn(String(repeating: "a", count: 8) + "&&&&")
        let cut = Escaping.truncate(escaped, to: 12)
        #expect(cut.count <= 12)
        #expect(!cut.contains("&am…"))
        #expect(cut.hasSuffix("…"))
    }

    @Test func htmlEscaping() {
        #expect(Escaping.html("<b>\"x\" & 'y'</b>") == "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;")
    }
}

@Suite struct ConversationRefTests {
    @Test func roundTripsThroughTheOriginString() {
        let refs = [
            ConversationRef(platform: "slack", channel: "D024BE91L", thread: "1610241741.000200", user: "U222"),
            ConversationRef(platform: "slack", channel: nil, user: "U222"),
            ConversationRef(platform: "matrix", channel: "!room:example.org", thread: "$ev&ent?=1", user: "@alice:example.org"),
        ]
        for ref in refs {
            #expect(ConversationRef(encoded: ref.encoded) == ref, "\(ref.encoded)")
        }
        #expect(ConversationRef(encoded: "key:ops-bot") == nil)
        #expect(ConversationRef(encoded: "chat:slack") == nil)
        #expect(ConversationRef(encoded: "chat:slack?channel=C1&thread=1.000100")?.thread == "1.000100")
    }
}

@Suite struct ChatConfigurationTests {
    @Test func readsTheChatSectionOfThePolicyFile() throws {
        let yaml = """
            groups:
              approvers: [slack:U0ALICE]
            approvals:
              default: { deciders: [approvers] }
            chat:
              channels:
                approvals: { slack: C0APPROVALS }
                default: { slack: C0HANDOFF }
              reactions:
                approve: [shipit]
            """
        let chat = try ChatConfiguration.parse(yaml)
        #expect(chat.channel(for: "approvals", platform: "slack") == "C0APPROVALS")
        #expect(chat.channel(for: "agents", platform: "slack") == "C0HANDOFF")
        #expect(chat.channel(for: "agents", platform: "discord") == nil)
        #expect(chat.reactions.action(for: "shipit") == .approve)
        #expect(try ChatConfiguration.parse("groups: {}\n").channels.isEmpty)
    }

    @Test func aWrongReactionActionIsNamed() {
        #expect {
            _ = try ChatConfiguration.parse("chat:\n  reactions:\n    aprove: [x]\n")
        } throws: { error in
            "\(error)".contains("chat.reactions.aprove is not an action")
        }
    }
}

@Suite struct SecretTests {
    @Test func secretsNeverPrint() {
        let s = Secret("xoxb-1234-abcdef-very-secret")
        #expect(!"\(s)".contains("abcdef"))
        #expect("\(s)".hasPrefix("xoxb-"))
        #expect(!String(reflecting: s).contains("secret"))
    }
}
