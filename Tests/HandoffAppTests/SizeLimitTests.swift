import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing
import Yams

/// Size limits on every body and every field: over the body limit → 413; one character over a field's
/// documented maximum → 400 naming the field; in chat → a clear private answer. Nothing is stored.
enum SizeLimits {
    /// Rows per table: what "nothing stored" compares.
    static func tableCounts(_ store: any WorkflowStore) async throws -> [String: Int64] {
        let database = try #require(store as? SQLWorkflowStore).database
        let tables = try await database.read("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .compactMap { $0["name"].string }
        var counts: [String: Int64] = [:]
        for table in tables { counts[table] = try await database.scalar("SELECT COUNT(*) FROM \"\(table)\"") }
        return counts
    }

    /// A body the route would take (or refuse for another reason), into which one field is made too long.
    static let baseBodies: [String: JSONValue] = [
        "POST /v1/approvals": .object(["action": .string("deploy")]),
        "POST /v1/approvals/{id}/decision": .object(["verdict": .string("approve")]),
        "POST /v1/approvals/{id}/cancel": .object([:]),
        "POST /v1/approvals/{id}/consume": .object(["arguments_hash": .string("x")]),
        "POST /v1/approvals/{id}/outcome": .object(["result": .string("succeeded")]),
        "POST /v1/review-items": .object(["query": .string("Refund window?")]),
        "POST /v1/review-items/{id}/submit": .object(["verdict": .string("approved")]),
        "POST /v1/route": .object(["query": .string("q"), "answer": .string("a"), "confidence": .double(0.9)]),
        "POST /v1/escalations": .object(["query": .string("Where is my parcel?")]),
        "POST /v1/escalations/{id}/resolve": .object(["resolution": .string("It ships tomorrow.")]),
        "POST /v1/escalations/{id}/raise": .object([:]),
        "POST /v1/feedback": .object(["prompt": .string("Was this helpful?")]),
        "POST /v1/feedback/{id}/response": .object(["value": .string("4")]),
        "POST /v1/corrections": .object(["query": .string("q"), "original": .string("a"), "corrected": .string("b")]),
        "POST /v1/label-tasks": .object(["dataset": .string("d"), "type": .string("text"), "content": .string("c")]),
        "POST /v1/label-tasks/{id}/labels": .object(["value": .string("positive")]),
    ]

    /// The entity a route with `{id}` acts on in the test (all made first, all id 1).
    static func target(_ route: String) -> EntityRef? {
        if route.hasPrefix("POST /v1/approvals/{id}") || route.hasPrefix("POST /approvals/{id}") { return EntityRef(kind: .approval, id: 1) }
        if route.hasPrefix("POST /v1/review-items/{id}") || route.hasPrefix("POST /reviews/{id}") { return EntityRef(kind: .reviewItem, id: 1) }
        if route.hasPrefix("POST /v1/escalations/{id}") || route.hasPrefix("POST /escalations/{id}") { return EntityRef(kind: .escalation, id: 1) }
        if route.hasPrefix("POST /v1/feedback/{id}") { return EntityRef(kind: .feedback, id: 1) }
        if route.hasPrefix("POST /v1/label-tasks/{id}") || route.hasPrefix("POST /labeling/{id}") { return EntityRef(kind: .labelTask, id: 1) }
        return nil
    }

    static func path(_ route: String) -> String {
        String(route.dropFirst("POST ".count)).replacingOccurrences(of: "{id}", with: "1").replacingOccurrences(of: "{queue}", with: "default")
    }

    static func fixtures(_ workflow: Workflow) async throws {
        _ = try await workflow.requestApproval(ApprovalRequest(action: "deploy", arguments: .object([:]), requester: "key:agent-bot"))
        _ = try await workflow.enqueue(ReviewItemRequest(content: ReviewContent(query: "Refund window?")), by: "key:agent-bot")
        _ = try await workflow.escalate(EscalationRequest(query: "Where is my parcel?", trigger: .manual("asked")), by: "key:agent-bot")
        _ = try await workflow.requestFeedback(FeedbackRequestInput(kind: .text, prompt: "Comments?"), by: "key:agent-bot")
        _ = try await workflow.createLabelTask(LabelTaskInput(dataset: "d", type: .text, content: "c"), by: "key:agent-bot")
    }
}

@Suite struct SizeLimitTests {
    typealias L = SizeLimits

    /// Every POST route the server has is in the limits table, every field there is documented in
    /// manifests/openapi.yaml with the same maxLength (and maxItems), and every string field the
    /// document lists for a body has a limit.
    @Test func theLimitsTableCoversEveryPostRouteAndMatchesTheDocument() async throws {
        let routes = try await withTestApp { app in try #require(app.app.httpServer).routes }
        let posts = Set(routes.filter { $0.hasPrefix("POST ") && !$0.hasPrefix("POST /slack/") })
        #expect(posts == Set(APILimits.routes.keys), "routes without limits: \(posts.subtracting(APILimits.routes.keys).sorted()); limits of no route: \(Set(APILimits.routes.keys).subtracting(posts).sorted())")

        let url = BuiltProducts.packageRoot.appendingPathComponent("manifests/openapi.yaml")
        let document = try #require(try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var documented = 0
        for (route, fields) in APILimits.routes.sorted(by: { $0.key < $1.key }) {
            let path = String(route.dropFirst("POST ".count))
            let post = (paths[path] as? [String: Any])?["post"] as? [String: Any]
            let content = ((post?["requestBody"] as? [String: Any])?["content"] as? [String: Any]) ?? [:]
            let schema = ((content["application/json"] ?? content["application/x-www-form-urlencoded"]) as? [String: Any])?["schema"] as? [String: Any]
            let properties = (schema?["properties"] as? [String: Any]) ?? [:]
            for field in fields {
                let property = properties[field.name] as? [String: Any]
                if field.maxItems != nil {
                    #expect(property?["maxItems"] as? Int == field.maxItems, "\(route) \(field.name): maxItems \(field.maxItems!) is documented")
                    let items = property?["items"] as? [String: Any]
                    #expect(items?["maxLength"] as? Int == field.maxLength, "\(route) \(field.name)[]: maxLength \(field.maxLength) is documented")
                } else {
                    #expect(property?["maxLength"] as? Int == field.maxLength, "\(route) \(field.name): maxLength \(field.maxLength) is documented, found \(String(describing: property?["maxLength"]))")
                }
                documented += 1
            }
            // The reverse: a string the document lists must have a limit here.
            let limited = Set(fields.map(\.name))
            for (name, value) in properties {
                let property = value as? [String: Any] ?? [:]
                let types = (property["type"] as? [String]) ?? [(property["type"] as? String) ?? ""]
                let isString = types.contains("string") || ((property["items"] as? [String: Any])?["type"] as? String) == "string"
                if isString { #expect(limited.contains(name), "\(route) documents the string \(name) without a limit in APILimits") }
            }
        }
        print("Size limits: \(APILimits.routes.count) POST routes, \(documented) field limits documented in manifests/openapi.yaml")
    }

    /// One character over: 400 naming the field, nothing stored. At the limit: not refused for length.
    @Test func everyFieldOfEveryJSONBodyOneOverItsLimitIsRefusedNamingIt() async throws {
        try await withTestApp(configure: { c in
            c.http.rateLimit.burst = 10_000
            c.http.rateLimit.requestsPerSecond = 10_000
        }) { app in
            let admin = try await app.key("root", .admin)
            try await L.fixtures(app.workflow)
            var checked = 0
            for (route, fields) in APILimits.routes.sorted(by: { $0.key < $1.key }) where route.hasPrefix("POST /v1/") {
                let base = try #require(fields.isEmpty ? JSONValue.object([:]) : L.baseBodies[route], "\(route) has a base body")
                for field in fields {
                    guard case .object(var over) = base, case .object(var at) = base else { continue }
                    var cases: [(label: String, body: [String: JSONValue], overLimit: Bool)] = []
                    if let maxItems = field.maxItems {
                        over[field.name] = .array([.string(String(repeating: "o", count: field.maxLength + 1)), .string("b")])
                        at[field.name] = .array([.string(String(repeating: "o", count: field.maxLength)), .string("b")])
                        var many = base.asObject ?? [:]
                        many[field.name] = .array((0...maxItems).map { .string("option \($0)") })
                        cases.append(("\(maxItems + 1) items", many, true))
                    } else {
                        over[field.name] = .string(String(repeating: "o", count: field.maxLength + 1))
                        at[field.name] = .string(String(repeating: "o", count: field.maxLength))
                    }
                    cases += [("one over", over, true), ("at the limit", at, false)]
                    for (label, body, overLimit) in cases {
                        let countsBefore = try await L.tableCounts(app.workflow.store)
                        let entityBefore = try await L.target(route).asyncMap { try await AuthorizationMatrix.snapshot($0, store: app.workflow.store) }
                        let response = try await app.post(L.path(route), key: admin, JSONValue.object(body).canonicalText)
                        let where_ = "\(route) \(field.name) \(label)"
                        if overLimit {
                            expectError(response, 400, "invalid", field: field.name)
                            #expect(response.errorMessage?.contains("longer than \(field.maxLength)") == true || response.errorMessage?.contains("at most \(field.maxItems ?? -1)") == true,
                                    "\(where_): the message says the limit: \(response.errorMessage ?? "")")
                            #expect(try await L.tableCounts(app.workflow.store) == countsBefore, "\(where_): nothing stored")
                            let entityAfter = try await L.target(route).asyncMap { try await AuthorizationMatrix.snapshot($0, store: app.workflow.store) }
                            #expect(entityAfter == entityBefore, "\(where_): the entity did not change")
                            checked += 1
                        } else {
                            #expect(!(response.status == 400 && response.errorMessage?.contains("longer than") == true),
                                    "\(where_): a value at the limit is not refused for its length: \(response.text.prefix(200))")
                        }
                    }
                }
            }
            // Lengths are Unicode scalars (JSON Schema's characters): combining marks cannot hide a long value.
            let decomposed = String(repeating: "e\u{301}", count: ApprovalMachine.maxActionLength / 2 + 1)
            #expect(decomposed.count <= ApprovalMachine.maxActionLength)
            expectError(try await app.post("/v1/approvals", key: admin, JSONValue.object(["action": .string(decomposed)]).canonicalText),
                        400, "invalid", field: "action")
            print("Size limits over the JSON API: \(checked) oversize fields and item counts refused with 400 naming the field, nothing stored")
        }
    }

    /// The dashboard's forms keep the same limits: the page says which field is too long; nothing changes.
    @Test func everyDashboardFormFieldOneOverItsLimitIsRefused() async throws {
        try await withTestApp { app in
            let admin = try await app.key("root", .admin)
            try await L.fixtures(app.workflow)
            var browser = DashboardClient(app: app)
            #expect(try await browser.signIn(admin).status == 303)
            var checked = 0
            for (route, fields) in APILimits.routes.sorted(by: { $0.key < $1.key }) where !route.hasPrefix("POST /v1/") {
                for field in fields {
                    var signedOut = DashboardClient(app: app)
                    let isLogin = route == "POST /login"
                    let page = isLogin ? try await signedOut.get("/login") : try await browser.get("/approvals/1")
                    var form = ["csrf": DashboardClient.csrf(in: page.text) ?? ""]
                    form[field.name] = String(repeating: "o", count: field.maxLength + 1)
                    let countsBefore = try await L.tableCounts(app.workflow.store)
                    let entityBefore = try await L.target(route).asyncMap { try await AuthorizationMatrix.snapshot($0, store: app.workflow.store) }
                    let response = isLogin ? try await signedOut.post(L.path(route), form) : try await browser.post(L.path(route), form)
                    let where_ = "\(route) \(field.name)"
                    #expect(response.status == 400, "\(where_): \(response.status)")
                    #expect(response.text.contains("\(field.name) is longer than \(field.maxLength) characters"), "\(where_): the page names the field")
                    #expect(try await L.tableCounts(app.workflow.store) == countsBefore, "\(where_): nothing stored")
                    let entityAfter = try await L.target(route).asyncMap { try await AuthorizationMatrix.snapshot($0, store: app.workflow.store) }
                    #expect(entityAfter == entityBefore, "\(where_): the entity did not change")
                    checked += 1
                }
            }
            #expect(try await browser.get("/").status == 200, "still signed in: the refused logout did not end the session")
            print("Size limits on dashboard forms: \(checked) oversize fields refused with 400 naming the field, nothing stored")
        }
    }

    /// A body over the limit is refused with 413 on every POST route (API, dashboard, Slack), whether
    /// it says its length or streams without one.
    @Test func everyPostRouteRefusesABodyOverTheLimitWith413() async throws {
        let maxBody = 64 * 1024
        let fake = try await FakeSlack.start()
        do {
            try await withTestApp(configure: { c in
                c.http.maxBodySize = maxBody
                c.slack = SlackSettings(botToken: fake.configuration.botToken, signingSecret: fake.configuration.signingSecret, apiURL: fake.apiURL)
            }) { app in
                let admin = try await app.key("root", .admin)
                try await L.fixtures(app.workflow)
                var browser = DashboardClient(app: app)
                _ = try await browser.signIn(admin)
                let routes = try #require(app.app.httpServer).routes.filter { $0.hasPrefix("POST ") }
                #expect(routes.contains("POST /slack/events"), "Slack's HTTP routes are mounted and checked too")
                let big = Array(("{\"query\":\"" + String(repeating: "x", count: maxBody) + "\"}").utf8)
                var checked = 0
                for route in routes {
                    let countsBefore = try await L.tableCounts(app.workflow.store)
                    for chunked in [false, true] {
                        let headers = browser.cookieHeader + [("Content-Type", "application/json")]
                            + (chunked ? [("Transfer-Encoding", "chunked")] : [])
                        let response = try await app.request(.POST, L.path(route), key: route.hasPrefix("POST /v1/") ? admin : nil, body: big, headers: headers)
                        expectError(response, 413, "too_large")
                        checked += 1
                    }
                    #expect(try await L.tableCounts(app.workflow.store) == countsBefore, "\(route): nothing stored")
                }
                print("Size limits on bodies: \(routes.count) POST routes × (with and without Content-Length) = \(checked) oversize bodies refused with 413")
            }
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }
}

extension ChatAppTests {
    /// Chat input over a limit: a clear private answer naming what is too long, nothing stored.
    @Suite struct ChatSizeLimitTests {
        @Test("Commands and messages over a field's limit get a private answer naming the limit; nothing is stored")
        func oversizeChatInput() async throws {
            let h = try await ChatHarness.start()
            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let ts = try #require(card.messageID)
            let escalation = try await h.workflow.escalate(EscalationRequest(query: "Where is my parcel?", trigger: .manual("asked")), by: "key:bot")
            let task = try await h.workflow.createLabelTask(LabelTaskInput(dataset: "notes", type: .text, content: "Summarize this"), by: "key:bot")
            let feedback = try await h.workflow.requestFeedback(FeedbackRequestInput(kind: .text, prompt: "Comments?"), by: "key:bot")
            for ref in [approval.ref, escalation.ref, feedback.ref] { #expect(await h.outboxSettled(ref)) }
            func o(_ n: Int) -> String { String(repeating: "o", count: n) }

            enum Input { case slash(String), thread(String), dm(String) }
            // (what a person sends, as whom, where, the entity it would change, the private answer's words)
            let table: [(String, Input, String, EntityRef?, String)] = [
                ("reject reason", .slash("reject \(approval.id) \(o(ApprovalMachine.maxCommentLength + 1))"), People.alice, approval.ref,
                 "longer than \(ApprovalMachine.maxCommentLength) characters"),
                ("revise comment in the card's thread", .thread("revise \(o(ApprovalMachine.maxCommentLength + 1))"), People.bob, approval.ref,
                 "longer than \(ApprovalMachine.maxCommentLength) characters"),
                ("resolution", .slash("resolve \(escalation.id) \(o(EscalationMachine.maxTextLength + 1))"), People.dave, escalation.ref,
                 "longer than \(EscalationMachine.maxTextLength) characters"),
                ("text label", .slash("label \(task.id) \(o(LabelingMachine.maxTextLabelLength + 1))"), People.carol, task.ref,
                 "longer than \(LabelingMachine.maxTextLabelLength) characters"),
                ("text feedback", .slash("rate \(feedback.id) \(o(FeedbackMachine.maxTextLength + 1))"), People.user, feedback.ref,
                 "longer than \(FeedbackMachine.maxTextLength) characters"),
                ("escalation reason", .slash("escalate \(o(EscalationMachine.maxTextLength + 1))"), People.user, nil,
                 "longer than \(EscalationMachine.maxTextLength) characters"),
                ("a DM asking for a person", .dm("I want a person " + o(EscalationMachine.maxTextLength)), People.user, nil,
                 "longer than \(EscalationMachine.maxTextLength) characters"),
            ]
            var checked = 0
            for (what, input, user, entity, words) in table {
                let countsBefore = try await SizeLimits.tableCounts(h.workflow.store)
                let entityBefore = try await entity.asyncMap { try await AuthorizationMatrix.snapshot($0, store: h.workflow.store) }
                let ephemeralsBefore = await h.fake.ephemerals(for: user).count
                let dm = FakeSlack.dmChannel(for: user)
                let dmBefore = await h.fake.messages(in: dm).filter { $0.botID != nil }.count
                var slash: String?
                switch input {
                case .slash(let text): slash = await h.fake.slash(user: user, channel: Channels.fallback, text: text)
                case .thread(let text): await h.fake.postUserMessage(user: user, channel: card.channel, text: text, threadTS: ts)
                case .dm(let text): await h.fake.postUserMessage(user: user, channel: dm, text: text)
                }
                var answer: String?
                _ = await eventually {
                    if let slash, let text = await h.fake.ack(for: slash)?.payload?.member("text")?.asString, text != ChatRouter.holdingReply {
                        answer = text
                    } else if await h.fake.ephemerals(for: user).count > ephemeralsBefore {
                        answer = await h.fake.ephemerals(for: user)[ephemeralsBefore].text
                    } else if case .dm = input, let reply = await h.fake.messages(in: dm).filter({ $0.botID != nil }).dropFirst(dmBefore).first {
                        answer = reply.text
                    }
                    return answer != nil
                }
                #expect(answer?.contains(words) == true, "\(what): a private answer naming the limit, got \(answer?.prefix(200) ?? "nothing")")
                #expect(await h.inboundSettled())
                if let slash { #expect(await h.fake.ack(for: slash)?.payload?.member("response_type")?.asString == "ephemeral", "\(what): only the sender sees it") }
                var countsAfter = try await SizeLimits.tableCounts(h.workflow.store)
                // The raw event (kept a day for redeliveries), its key, and a refusal note on an entity are
                // the only rows an input leaves; no entity, transition or outbox row.
                for table in ["inbound_events", "inbox", "audit", "kv"] { countsAfter[table] = countsBefore[table] }
                #expect(countsAfter == countsBefore, "\(what): nothing stored")
                let entityAfter = try await entity.asyncMap { try await AuthorizationMatrix.snapshot($0, store: h.workflow.store) }
                #expect(entityAfter?.row == entityBefore?.row && entityAfter?.outbox == entityBefore?.outbox, "\(what): the entity did not change")
                checked += 1
            }
            #expect(try await h.workflow.escalations().count == 1, "no escalation was opened by an oversize message")
            print("Size limits in chat: \(checked) oversize commands and messages answered privately, nothing stored")
            await h.stop()
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
