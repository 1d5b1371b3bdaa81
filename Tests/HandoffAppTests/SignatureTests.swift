import Crypto
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import NIOHTTP1
import Testing

/// Signatures both ways (issue 8): Slack's request signing on the running app's HTTP endpoints, and
/// Handoff's own webhook signature as a receiver checks it — with `WebhookSignature.verify` and with
/// the README's Python snippet, run as written.
@Suite struct SignatureTests {
    static let signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

    static func slackSignature(_ body: [UInt8], timestamp: String, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("v0:\(timestamp):".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return "v0=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// One request to each Slack endpoint, signed correctly (the control) and then in every way an
    /// attacker or a replay would send it.
    @Test("Slack signing on /slack/events, /slack/interactivity and /slack/commands: forged, replayed, wrong-secret, one-byte-altered and unsigned requests get 401 and store nothing")
    func slackRequestsMustBeSigned() async throws {
        let fake = try await FakeSlack.start()
        do {
            try await signedRequests(fake)
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    func signedRequests(_ fake: FakeSlack) async throws {
        try await withTestApp(configure: { c in
            c.slack = SlackSettings(botToken: fake.configuration.botToken, signingSecret: Self.signingSecret, apiURL: fake.apiURL)
        }) { app in
            #expect(app.app.chat.slackEvents != nil, "the app runs the Events API over HTTP")
            let click = FakeSlackPayloads.blockAction(user: "U0ALICE", channel: "C0APPROVALS", messageTS: "1767225500.000100", actionID: "approve",
                                                      value: "approval:1", actionTS: "1767225601.000100", triggerID: "t-sig")
            let requests: [(path: String, contentType: String, body: [UInt8])] = [
                ("/slack/events", "application/json", Array(FakeSlackPayloads.eventCallback(
                    FakeSlackPayloads.reaction(user: "U0ALICE", reaction: "white_check_mark", channel: "C0APPROVALS", ts: "1767225500.000100",
                                               eventTS: "1767225602.000100"), eventID: "EvSIG1").canonicalText.utf8)),
                ("/slack/interactivity", "application/x-www-form-urlencoded",
                 Array(("payload=" + click.canonicalText.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).utf8)),
                ("/slack/commands", "application/x-www-form-urlencoded",
                 Array("command=%2Fhandoff&text=approve+1&user_id=U0ALICE&channel_id=C0APPROVALS&trigger_id=t-sig-cmd&team_id=T111".utf8)),
            ]
            func send(_ path: String, _ contentType: String, _ body: [UInt8], timestamp: String?, signature: String?) async throws -> TestResponse {
                var headers = [("Content-Type", contentType)]
                if let timestamp { headers.append(("X-Slack-Request-Timestamp", timestamp)) }
                if let signature { headers.append(("X-Slack-Signature", signature)) }
                return try await app.request(.POST, path, body: body, headers: headers)
            }
            let before = try await APIBodyFuzzTests.counts(app)
            var rejected = 0
            for (path, contentType, body) in requests {
                let now = Int64(Date().timeIntervalSince1970)
                let t = String(now)
                let good = Self.slackSignature(body, timestamp: t, secret: Self.signingSecret)
                var attacks: [(String, [UInt8], String?, String?)] = [
                    ("forged", body, t, "v0=" + String((0..<64).map { _ in "0123456789abcdef".randomElement()! })),
                    ("forged with the signature of another body", body, t, Self.slackSignature(Array("{}".utf8), timestamp: t, secret: Self.signingSecret)),
                    ("replayed: 6 minutes old", body, String(now - 360), Self.slackSignature(body, timestamp: String(now - 360), secret: Self.signingSecret)),
                    ("replayed: a day old", body, String(now - 86_400), Self.slackSignature(body, timestamp: String(now - 86_400), secret: Self.signingSecret)),
                    ("from the future", body, String(now + 360), Self.slackSignature(body, timestamp: String(now + 360), secret: Self.signingSecret)),
                    ("timestamp changed after signing", body, String(now - 1), good),
                    ("wrong secret", body, t, Self.slackSignature(body, timestamp: t, secret: "not-the-signing-secret")),
                    ("wrong secret (one character off)", body, t, Self.slackSignature(body, timestamp: t, secret: String(Self.signingSecret.dropLast()) + "6")),
                    ("no headers", body, nil, nil),
                    ("no signature", body, t, nil),
                    ("no timestamp", body, nil, good),
                    ("empty signature", body, t, ""),
                    ("v0= only", body, t, "v0="),
                    ("another version", body, t, "v1=" + good.dropFirst(3)),
                    ("a non-numeric timestamp", body, "now", good),
                ]
                // The body altered by one byte, at the start, the middle and the end (signature of the original).
                for index in [0, body.count / 2, body.count - 1] {
                    var altered = body
                    altered[index] = altered[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                    attacks.append(("body altered at byte \(index)", altered, t, good))
                }
                attacks.append(("a byte appended", body + [UInt8(ascii: " ")], t, good))
                attacks.append(("truncated by one byte", Array(body.dropLast()), t, good))
                for (name, sentBody, timestamp, signature) in attacks {
                    let response = try await send(path, contentType, sentBody, timestamp: timestamp, signature: signature)
                    #expect(response.status == 401, "\(path), \(name): \(response.status) \(response.text)")
                    #expect(!response.text.contains(Self.signingSecret), "the refusal never shows the secret")
                    rejected += 1
                }
            }
            #expect(try await APIBodyFuzzTests.counts(app) == before, "no rejected request was stored")
            #expect(try await app.workflow.store.pendingInbound(platform: nil, limit: 10).isEmpty)

            // The control: the same requests, correctly signed, are accepted and stored (once each).
            for (path, contentType, body) in requests {
                let t = String(Int64(Date().timeIntervalSince1970))
                let response = try await send(path, contentType, body, timestamp: t, signature: Self.slackSignature(body, timestamp: t, secret: Self.signingSecret))
                #expect(response.status == 200, "\(path) signed correctly: \(response.status) \(response.text)")
            }
            let after = try await APIBodyFuzzTests.counts(app)
            #expect(after["inbound_events"] == (before["inbound_events"] ?? 0) + 3, "the three signed requests were recorded")
            #expect(rejected >= 60)
        }
    }

    // MARK: Webhooks

    /// One webhook check: the header and body a receiver got, and whether it must pass.
    struct WebhookCase: Sendable {
        var name: String
        var secret: String
        var header: String
        var body: [UInt8]
        var valid: Bool
    }

    static func webhookCases() -> [WebhookCase] {
        let secret = "whsec_Zb7qT1x9LkP2mN4vR6sU8wY0aC3eG5iK7oQ9uW1yA2c"
        let body = Array(#"{"data":{"id":1,"status":"approved"},"delivery_id":7,"event":"approval.decided","occurred_at":"2026-01-01T00:00:00Z"}"#.utf8)
        let now = Int64(Date().timeIntervalSince1970)
        let header = WebhookSignature.header(secret: Secret(secret), timestamp: now, body: body)
        let mac = WebhookSignature.mac(secret: Secret(secret), timestamp: now, body: body)
        var cases = [
            WebhookCase(name: "as sent", secret: secret, header: header, body: body, valid: true),
            WebhookCase(name: "forged: a random mac", secret: secret, header: "t=\(now),v1=" + String(repeating: "ab", count: 32), body: body, valid: false),
            WebhookCase(name: "forged: no v1", secret: secret, header: "t=\(now)", body: body, valid: false),
            WebhookCase(name: "forged: no t", secret: secret, header: "v1=\(mac)", body: body, valid: false),
            WebhookCase(name: "forged: empty header", secret: secret, header: "", body: body, valid: false),
            WebhookCase(name: "forged: garbage", secret: secret, header: "garbage", body: body, valid: false),
            WebhookCase(name: "forged: non-ASCII mac", secret: secret, header: "t=\(now),v1=" + String(repeating: "é", count: 64), body: body, valid: false),
            WebhookCase(name: "forged: non-ASCII digits", secret: secret, header: "t=\u{0661}\u{0662}\u{0663},v1=\(mac)", body: body, valid: false),
            WebhookCase(name: "forged: superscript digits", secret: secret, header: "t=\u{00B2}\u{00B3},v1=\(mac)", body: body, valid: false),
            WebhookCase(name: "forged: the mac of another body", secret: secret,
                        header: WebhookSignature.header(secret: Secret(secret), timestamp: now, body: Array("{}".utf8)), body: body, valid: false),
            WebhookCase(name: "replayed: 6 minutes old", secret: secret,
                        header: WebhookSignature.header(secret: Secret(secret), timestamp: now - 360, body: body), body: body, valid: false),
            WebhookCase(name: "replayed: a day old", secret: secret,
                        header: WebhookSignature.header(secret: Secret(secret), timestamp: now - 86_400, body: body), body: body, valid: false),
            WebhookCase(name: "timestamp changed after signing", secret: secret, header: "t=\(now - 1),v1=\(mac)", body: body, valid: false),
            WebhookCase(name: "wrong secret", secret: "whsec_another", header: header, body: body, valid: false),
            WebhookCase(name: "wrong secret (one character off)", secret: String(secret.dropLast()) + "d", header: header, body: body, valid: false),
        ]
        for index in [0, body.count / 2, body.count - 1] {
            var altered = body
            altered[index] ^= 0x01
            cases.append(WebhookCase(name: "body altered at byte \(index)", secret: secret, header: header, body: altered, valid: false))
        }
        cases.append(WebhookCase(name: "a byte appended", secret: secret, header: header, body: body + [0x0A], valid: false))
        return cases
    }

    @Test("Handoff-Signature: WebhookSignature.verify accepts what Handoff sends and rejects forged, replayed, wrong-secret and altered deliveries")
    func webhookSignatureVerify() {
        for c in Self.webhookCases() {
            #expect(WebhookSignature.verify(header: c.header, body: c.body, secret: Secret(c.secret), now: Date()) == c.valid, "\(c.name)")
        }
    }

    /// The README's verification snippet, as printed there.
    static func readmeSnippet() throws -> String {
        let readme = try String(contentsOf: BuiltProducts.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let intro = readme.range(of: "Verifying, in Python:"),
              let open = readme.range(of: "```python\n", range: intro.upperBound..<readme.endIndex),
              let close = readme.range(of: "```", range: open.upperBound..<readme.endIndex)
        else { throw TestFailure("README.md has no Python verification snippet after \"Verifying, in Python:\"") }
        return String(readme[open.upperBound..<close.lowerBound])
    }

    @Test("the README's Python verification snippet, run as written, gives the same verdicts and never raises")
    func readmeSnippetRejectsTheSameAttacks() async throws {
        let snippet = try Self.readmeSnippet()
        let directory = try TemporaryDirectory(prefix: "handoff-webhook-snippet")
        defer { directory.remove() }
        let driver = snippet + """

            import json, sys
            results = []
            for c in json.load(sys.stdin):
                try:
                    results.append(bool(verify(c["secret"], c["header"], bytes.fromhex(c["body"]))))
                except Exception as e:
                    results.append("raised " + type(e).__name__ + ": " + str(e))
            print(json.dumps(results))
            """
        try driver.write(toFile: directory.file("verify.py"), atomically: true, encoding: .utf8)
        let cases = Self.webhookCases()
        let input = JSONValue.array(cases.map { c in
            .object(["secret": .string(c.secret), "header": .string(c.header), "body": .string(c.body.map { String(format: "%02x", $0) }.joined())])
        }).canonicalText
        try input.write(toFile: directory.file("cases.json"), atomically: true, encoding: .utf8)
        let python = try #require(["/usr/bin/python3", "/usr/local/bin/python3", "/root/.pyenv/shims/python3"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }, "python3 is needed to run the README snippet")
        let run = try await runProcess("/bin/sh", ["-c", "\(python) verify.py < cases.json"], directory: directory.path, timeout: 60)
        #expect(run.status == 0, "\(run.stderr)")
        let results = (try? JSONValue.parsePayload(run.stdout))?.asArray ?? []
        try #require(results.count == cases.count, "the snippet answered \(run.stdout) \(run.stderr)")
        for (c, result) in zip(cases, results) {
            #expect(result == .bool(c.valid), "README snippet, \(c.name): expected \(c.valid), got \(result)")
        }
    }
}
