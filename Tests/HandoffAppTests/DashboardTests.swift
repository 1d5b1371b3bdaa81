import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// A browser-like client for the dashboard: keeps cookies, reads CSRF tokens from pages, posts forms.
struct DashboardClient {
    let app: TestApp
    var cookies: [String: String] = [:]

    init(app: TestApp) { self.app = app }

    var cookieHeader: [(String, String)] {
        cookies.isEmpty ? [] : [("Cookie", cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))]
    }

    mutating func absorb(_ response: TestResponse) {
        for line in response.headers["Set-Cookie"] {
            let pair = line.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            let name = String(pair[0]).trimmingCharacters(in: .whitespaces)
            if line.lowercased().contains("max-age=0") { cookies.removeValue(forKey: name) } else { cookies[name] = String(pair[1]) }
        }
    }

    mutating func get(_ path: String) async throws -> TestResponse {
        let r = try await app.request(.GET, path, headers: cookieHeader)
        absorb(r)
        return r
    }

    mutating func post(_ path: String, _ fields: [String: String]) async throws -> TestResponse {
        let body = fields.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
        let r = try await app.request(.POST, path, body: Array(body.utf8),
                                      headers: cookieHeader + [("Content-Type", "application/x-www-form-urlencoded")])
        absorb(r)
        return r
    }

    static func encode(_ s: String) -> String { FormURLEncoding.encode(s) }

    /// The CSRF token in a page's forms.
    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// Signs in with a key through the sign-in form.
    mutating func signIn(_ key: String, next: String = "/") async throws -> TestResponse {
        let form = try await get("/login?next=\(Self.encode(next))")
        let token = try #require(Self.csrf(in: form.text), "the sign-in form carries a CSRF token")
        return try await post("/login", ["csrf": token, "key": key, "next": next])
    }
}

@Suite struct DashboardTests {
    @Test func signInSetsAHardenedSessionAndOnlyReviewersAndAdminsGetIn() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            var anonymous = DashboardClient(app: app)
            let bounced = try await anonymous.get("/approvals?status=pending")
            #expect(bounced.status == 303)
            #expect(bounced.header("Location") == "/login?next=%2Fapprovals%3Fstatus%3Dpending")

            var alice = DashboardClient(app: app)
            let signedIn = try await alice.signIn(k.alice, next: "/reviews")
            #expect(signedIn.status == 303, "\(signedIn.text)")
            #expect(signedIn.header("Location") == "/reviews")
            let cookie = try #require(signedIn.headers["Set-Cookie"].first { $0.hasPrefix("handoff_session=") })
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Path=/"))
            #expect(!cookie.contains(k.alice) && !cookie.contains(String(k.alice.split(separator: "_")[2])), "the key is not in the cookie")
            let page = try await alice.get("/")
            #expect(page.status == 200)
            #expect(page.text.contains("key:alice"))
            #expect(page.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)

            // An agent key, a wrong key and a tampered cookie do not get in; an open redirect is not followed.
            var agent = DashboardClient(app: app)
            let refused = try await agent.signIn(k.agent)
            #expect(refused.status == 403)
            #expect(refused.text.contains("agent key"))
            var wrong = DashboardClient(app: app)
            #expect(try await wrong.signIn("hk_nope_nope").status == 401)
            var external = DashboardClient(app: app)
            #expect(try await external.signIn(k.carol, next: "//evil.example/x").header("Location") == "/")
            var tampered = alice
            tampered.cookies["handoff_session"] = (alice.cookies["handoff_session"] ?? "") + "0"
            #expect(try await tampered.get("/").status == 303)

            // Revoking the key ends its sessions.
            #expect(try await app.workflow.store.revokeAPIKey(name: "alice", at: Date()))
            #expect(try await alice.get("/").status == 303)
        }
    }

    @Test func everyFormNeedsTheSessionsCSRFToken() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"check me"}"#)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"help"}"#)
            _ = try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"d","type":"text","content":"c"}"#)
            var alice = DashboardClient(app: app)
            var bob = DashboardClient(app: app)
            _ = try await alice.signIn(k.alice)
            _ = try await bob.signIn(k.bob)

            // Every POST form on every page carries the token.
            for path in ["/", "/approvals", "/approvals/1", "/reviews", "/reviews/1", "/escalations", "/labeling", "/stats"] {
                let html = try await alice.get(path).text
                let forms = html.components(separatedBy: "<form").dropFirst()
                for form in forms where form.contains(#"method="post""#) {
                    #expect(form.contains(#"name="csrf""#), "a form on \(path) lacks the CSRF token: \(form.prefix(200))")
                }
            }

            let aliceToken = try #require(DashboardClient.csrf(in: try await alice.get("/approvals/1").text))
            let bobToken = try #require(DashboardClient.csrf(in: try await bob.get("/approvals/1").text))
            #expect(aliceToken != bobToken)
            for token in [nil, "", "forged", bobToken] {
                var fields = ["verdict": "approve"]
                if let token { fields["csrf"] = token }
                let r = try await alice.post("/approvals/1/decide", fields)
                #expect(r.status == 403, "token \(token ?? "nil") must be refused")
            }
            #expect(try await app.workflow.approval(ApprovalID(1)).status.isPending, "a refused form changes nothing")
            #expect(try await alice.post("/reviews/claim", ["queue": "default"]).status == 403)
            #expect(try await alice.post("/escalations/1/claim", [:]).status == 403)
            #expect(try await alice.post("/labeling/1", ["value": "x", "csrf": bobToken]).status == 403)
            #expect(try await alice.post("/logout", [:]).status == 403)
            #expect(try await app.workflow.reviewItem(ReviewItemID(1)).status == .pending)

            // The sign-in form has its own double-submit token.
            var fresh = DashboardClient(app: app)
            _ = try await fresh.get("/login")
            #expect(try await fresh.post("/login", ["key": k.alice, "csrf": "guess"]).status == 403)
            #expect(fresh.cookies["handoff_session"] == nil)

            let ok = try await alice.post("/approvals/1/decide", ["verdict": "approve", "csrf": aliceToken])
            #expect(ok.status == 200)
            #expect(ok.text.contains("is now approved"))
            #expect(try await app.workflow.approval(ApprovalID(1)).status.decision?.by == ["key:alice"])
            let out = try await alice.post("/logout", ["csrf": aliceToken])
            #expect(out.status == 303)
            #expect(try await alice.get("/").status == 303)
        }
    }

    @Test func hostileTextIsEscapedEverywhere() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let script = #"<script>alert("pwned")</script>"#
            let attribute = #"" onmouseover="alert(1)" x=""#
            let json = { (s: String) in String(decoding: try! JSONEncoder().encode(s), as: UTF8.self) }
            _ = try await app.post("/v1/approvals", key: k.agent,
                                   #"{"action":\#(json(script)),"summary":\#(json(attribute)),"arguments":{"note":\#(json("</pre>" + script))}}"#)
            _ = try await app.post("/v1/review-items", key: k.agent,
                                   #"{"title":\#(json(script)),"query":\#(json(attribute)),"answer":\#(json(script)),"context":{"x":\#(json(script))}}"#)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":\#(json(script)),"reason":\#(json(attribute))}"#)
            _ = try await app.post("/v1/label-tasks", key: k.agent,
                                   #"{"dataset":\#(json("<svg onload=alert(1)>")),"type":"choice","options":[\#(json(script)),"ok"],"content":\#(json(script)),"instructions":\#(json(attribute))}"#)
            _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"reject","reason":\#(json(script))}"#)
            var alice = DashboardClient(app: app)
            _ = try await alice.signIn(k.alice)
            _ = try await alice.post("/reviews/claim", ["queue": "default", "csrf": DashboardClient.csrf(in: try await alice.get("/reviews").text) ?? ""])

            for path in ["/", "/approvals?status=all", "/approvals/1", "/reviews", "/reviews/1", "/escalations", "/labeling", "/stats"] {
                let page = try await alice.get(path)
                #expect(page.status == 200, "\(path): \(page.status)")
                let html = page.text
                #expect(!html.contains("<script>alert"), "\(path) contains an unescaped script")
                #expect(!html.contains(#"" onmouseover="alert(1)""#), "\(path) lets a quote break out of an attribute")
                #expect(!html.contains("<svg onload"), "\(path) contains an unescaped svg")
                #expect(!html.contains("</pre><script"), "\(path)")
            }
            let detail = try await alice.get("/approvals/1").text
            #expect(detail.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"), "the text is shown, escaped")
            #expect(detail.contains("&quot; onmouseover=&quot;alert(1)&quot; x=&quot;"))
            let stats = try await alice.get("/stats").text
            #expect(stats.contains("&lt;svg onload=alert(1)&gt;"), "chart labels are escaped too")
            let labeling = try await alice.get("/labeling").text
            #expect(labeling.contains(#"value="&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;""#), "choice values are escaped in attributes")
        }
    }

    @Test func pagesWorkTheWholeFlowWithoutJavaScript() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"transfer","arguments":{"amount":250,"to":"acct-9"},"summary":"Pay invoice 17"}"#)
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"delete-user"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"priority":"high","query":"Refund window?","answer":"30 days","confidence":0.4}"#)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"Where is my parcel?"}"#)
            for (type, extra, content) in [("span", "", "Alice met Bob"), ("bbox", "", "https://example.com/cat.png"),
                                           ("rating", #","min":1,"max":5"#, "Rate this answer"), ("text", "", "Summarize: hello")]
            {
                _ = try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"mixed","type":"\#(type)","content":"\#(content)"\#(extra)}"#)
            }
            var alice = DashboardClient(app: app)
            _ = try await alice.signIn(k.alice)

            let overview = try await alice.get("/").text
            #expect(overview.contains(#"id="pending-count">2<"#))
            #expect(overview.contains("Pay invoice 17"))

            // Approvals: the arguments are shown; reject needs a reason; needs-revision needs a comment.
            var detail = try await alice.get("/approvals/1").text
            #expect(detail.contains("&quot;amount&quot; : 250") || detail.contains("&quot;amount&quot;: 250"), "arguments are shown")
            var token = try #require(DashboardClient.csrf(in: detail))
            let noReason = try await alice.post("/approvals/1/decide", ["verdict": "reject", "csrf": token, "comment": ""])
            #expect(noReason.status == 400)
            #expect(noReason.text.contains("reason"))
            let revise = try await alice.post("/approvals/2/decide", ["verdict": "revise", "csrf": token, "comment": "Which user?"])
            #expect(revise.text.contains("needs revision"))
            let rejected = try await alice.post("/approvals/1/decide", ["verdict": "reject", "csrf": token, "comment": "Wrong account",
                                                                       "arguments_hash": try await app.workflow.approval(ApprovalID(1)).argumentsHash])
            #expect(rejected.status == 200)
            #expect(try await app.workflow.approval(ApprovalID(1)).status.name == "rejected")
            let late = try await alice.post("/approvals/1/decide", ["verdict": "approve", "csrf": token])
            #expect(late.status == 409)
            #expect(late.text.contains("already decided"))
            detail = try await alice.get("/").text
            #expect(detail.contains("Wrong account"), "recent decisions show the reason")

            // Review queue: claim next, submit with feedback and a correction.
            token = try #require(DashboardClient.csrf(in: try await alice.get("/reviews").text))
            let claimed = try await alice.post("/reviews/claim", ["queue": "default", "csrf": token])
            #expect(claimed.status == 303)
            #expect(claimed.header("Location") == "/reviews/1")
            let item = try await alice.get("/reviews/1").text
            #expect(item.contains(#"id="submit-form""#))
            let submitted = try await alice.post("/reviews/1/submit", ["verdict": "rejected", "feedback": "outdated", "corrected_answer": "14 days",
                                                                      "csrf": token])
            #expect(submitted.text.contains("Correction #1 recorded"), "\(submitted.text)")
            #expect(try await app.workflow.correction(CorrectionID(1)).corrected == "14 days")
            let empty = try await alice.post("/reviews/claim", ["queue": "default", "csrf": token])
            #expect(empty.text.contains("Nothing to claim"))

            // Escalations: claim and resolve as someone at the tier.
            var carol = DashboardClient(app: app)
            _ = try await carol.signIn(k.carol)
            let notMine = try await carol.post("/escalations/1/claim", ["csrf": try #require(DashboardClient.csrf(in: try await carol.get("/escalations").text))])
            #expect(notMine.status == 403, "carol is not in the agent tier's group")
            #expect(notMine.text.contains("agents") || notMine.text.contains("not"), "the page says why")
            _ = try await alice.post("/escalations/1/claim", ["csrf": token])
            let resolved = try await alice.post("/escalations/1/resolve", ["resolution": "It arrives Monday.", "csrf": token])
            #expect(resolved.text.contains("resolved"))
            #expect(try await app.workflow.escalation(EscalationID(1)).status.name == "resolved")

            // Labeling: one task at a time, each type's input.
            var labeling = try await alice.get("/labeling?dataset=mixed").text
            #expect(labeling.contains(#"id="span-content""#))
            #expect(labeling.contains("You labeled 0 of 4 tasks in mixed."))
            _ = try await alice.post("/labeling/1", ["start": "0", "end": "5", "dataset": "mixed", "csrf": token])
            labeling = try await alice.get("/labeling?dataset=mixed").text
            #expect(labeling.contains(#"name="width""#), "then the box task")
            let badBox = try await alice.post("/labeling/2", ["x": "1", "y": "2", "width": "wide", "height": "4", "dataset": "mixed", "csrf": token])
            #expect(badBox.status == 400)
            _ = try await alice.post("/labeling/2", ["x": "1", "y": "2", "width": "30", "height": "40", "dataset": "mixed", "csrf": token])
            labeling = try await alice.get("/labeling?dataset=mixed").text
            #expect(labeling.contains(#"data-key="5""#), "rating buttons with shortcuts")
            _ = try await alice.post("/labeling/3", ["value": "4", "dataset": "mixed", "csrf": token])
            _ = try await alice.post("/labeling/4", ["value": "A greeting.", "dataset": "mixed", "csrf": token])
            labeling = try await alice.get("/labeling?dataset=mixed").text
            #expect(labeling.contains(#"id="labeling-done""#))
            let export = try await app.get("/v1/datasets/mixed/export", key: k.agent).text
            #expect(export.contains(#""consensus":{"end":5,"start":0}"#), "\(export)")
            #expect(export.contains(#""consensus":4"#))

            // Stats: three SVG charts.
            let stats = try await alice.get("/stats").text
            #expect(stats.components(separatedBy: "<svg").count - 1 == 3)
            #expect(stats.contains("Queue depth"))
            #expect(stats.contains("polyline") || stats.contains("No review queues yet"))
            #expect(stats.contains("mixed"), "agreement per task set lists the data set")
        }
    }
}

@Suite struct DashboardQueryPlanTests {
    @Test func dashboardQueriesUseIndexesNotTableScans() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-dash-plan")
        defer { directory.remove() }
        let database = PlanRecordingDatabase(try SQLiteDatabase(path: directory.file("p.sqlite")))
        let store = try await SQLWorkflowStore(database: database)
        let workflow = Workflow(store: store, clock: ManualClock(), configuration: .init(policy: try PolicyFile.parse(testPolicy)))
        for i in 1...30 {
            let (a, _) = try await workflow.requestApproval(ApprovalRequest(action: "a\(i)", arguments: .int(Int64(i)), requester: "key:bot"))
            if i % 2 == 0 { _ = try await workflow.decide(a.id, verdict: .approve, comment: nil, by: Actor("key:alice")) }
            _ = try await workflow.enqueue(ReviewItemRequest(content: ReviewContent(title: "t\(i)")), by: "key:bot")
            _ = try await workflow.createLabelTask(LabelTaskInput(dataset: "d\(i % 3)", type: .text, content: "c"), by: "key:bot")
        }
        _ = try await store.database.write([WriteStep(SQLStatement("ANALYZE"))])
        let queries: [(String, () async throws -> Void)] = [
            ("dashboardCounts", { _ = try await store.dashboardCounts() }),
            ("recentDecisions", { _ = try await store.recentDecisions(limit: 10) }),
            ("recentDecisionTimings", { _ = try await store.recentDecisionTimings(limit: 500) }),
            ("queueActivity", { _ = try await store.queueActivity(since: Date(timeIntervalSince1970: 1_767_225_600 - 3600), bucketSeconds: 3600) }),
            ("reviewDecideCounts", { _ = try await store.reviewDecideCounts(queue: "default", boundsMilliseconds: [60_000, 300_000]) }),
            ("labelProgress", { _ = try await store.labelProgress(dataset: "d1", labeler: "key:alice") }),
            ("datasets", { _ = try await store.datasets(limit: 20) }),
        ]
        for (name, query) in queries {
            let statements = try await database.recording { try await query() }
            #expect(!statements.isEmpty)
            for statement in statements {
                let plan = try await database.plan(statement)
                #expect(PlanRecordingDatabase.fullScans(plan).isEmpty, "\(name) scans a table: \(plan) for \(statement.sql)")
            }
        }
        try await store.close()
    }
}
