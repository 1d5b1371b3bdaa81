import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import NIOHTTP1
import Testing

/// Every POST route of the JSON API under random and mutated bodies (issue 8), through the running
/// app: each answer is a 2xx or a 4xx in the one error shape `{"error":{"code","message"}}` — never a
/// 5xx, never a dropped connection — and a 4xx stores nothing. Seeded (printed; `HANDOFF_FUZZ_SEED`
/// replays it) and bounded.
/// Bounded in time: a decoder that hangs on some input fails here, not at the CI timeout.
@Suite(.timeLimit(.minutes(3))) struct APIBodyFuzzTests {
    /// A route and a body it accepts.
    struct Route: Sendable {
        var path: String
        var sample: JSONValue?
    }

    static let routes: [Route] = [
        Route(path: "/v1/approvals", sample: .object([
            "action": .string("deploy"), "arguments": .object(["service": .string("api"), "version": .string("1.4.2"), "replicas": .int(3)]),
            "summary": .string("Deploy api 1.4.2"), "policy": .string("default"), "state": .object(["job": .string("j-1")]),
        ])),
        Route(path: "/v1/approvals/{id}/decision", sample: .object(["verdict": .string("approve"), "comment": .string("ship it")])),
        Route(path: "/v1/approvals/{id}/cancel", sample: .object(["reason": .string("no longer needed")])),
        Route(path: "/v1/approvals/{id}/consume", sample: .object(["arguments": .object(["service": .string("api"), "version": .string("1.4.2"), "replicas": .int(3)])])),
        Route(path: "/v1/approvals/{id}/outcome", sample: .object(["result": .string("failed"), "message": .string("exit 1")])),
        Route(path: "/v1/review-items", sample: .object([
            "queue": .string("default"), "priority": .string("high"), "title": .string("Refund question"), "query": .string("Can I get a refund?"),
            "answer": .string("Yes, within 14 days."), "confidence": .double(0.42), "reason": .string("low confidence"),
            "context": .object(["ticket": .int(991)]), "origin": .string("support-bot"),
        ])),
        Route(path: "/v1/review-items/{id}/claim", sample: nil),
        Route(path: "/v1/review-items/{id}/release", sample: nil),
        Route(path: "/v1/review-items/{id}/submit", sample: .object(["verdict": .string("revision_needed"), "feedback": .string("too vague"),
                                                                     "corrected_answer": .string("Within 14 days of delivery.")])),
        Route(path: "/v1/queues/{queue}/claim", sample: nil),
        Route(path: "/v1/route", sample: .object(["route": .string("default"), "query": .string("Where is my order?"), "answer": .string("On its way."),
                                                  "confidence": .double(0.5), "user_message": .string("A person will look at this."),
                                                  "origin": .string("chat")])),
        Route(path: "/v1/escalations", sample: .object(["query": .string("I want to talk to a human"), "context": .string("order 991"),
                                                        "reason": .string("asked for a person"), "tier": .string("agent"),
                                                        "requester": .string("slack:U0USER"), "origin": .string("chat")])),
        Route(path: "/v1/escalations/{id}/claim", sample: nil),
        Route(path: "/v1/escalations/{id}/resolve", sample: .object(["resolution": .string("Refunds take 14 days.")])),
        Route(path: "/v1/escalations/{id}/raise", sample: .object(["reason": .string("needs an expert")])),
        Route(path: "/v1/feedback", sample: .object(["kind": .string("choice"), "options": .array([.string("yes"), .string("no")]),
                                                     "prompt": .string("Was this helpful?"), "subject": .string("answer 7"), "channel": .string("support"),
                                                     "deadline": .string("2h")])),
        Route(path: "/v1/feedback/{id}/response", sample: .object(["value": .int(4)])),
        Route(path: "/v1/corrections", sample: .object(["query": .string("refund window"), "original": .string("30 days"), "corrected": .string("14 days"),
                                                        "route": .string("default")])),
        Route(path: "/v1/label-tasks", sample: .object([
            "dataset": .string("sentiment"), "type": .string("rating"), "min": .int(1), "max": .int(5), "content": .string("Great service!"),
            "instructions": .string("Rate the sentiment"), "overlap": .int(2), "labelers": .array([.string("labelers")]),
        ])),
        Route(path: "/v1/label-tasks/{id}/labels", sample: .object(["value": .int(4)])),
    ]

    static let tables = ["approvals", "review_items", "reviews", "escalations", "feedback", "corrections", "label_tasks", "labels", "audit",
                         "outbox", "timers", "inbound_events", "ai_questions"]

    /// Rows per table: a refused request must leave every count as it was.
    static func counts(_ app: TestApp) async throws -> [String: Int64] {
        let store = try #require(app.workflow.store as? SQLWorkflowStore, "the fuzz test counts rows in the SQLite store")
        let sql = "SELECT " + tables.map { "(SELECT count(*) FROM \($0)) AS \($0)" }.joined(separator: ", ")
        let row = try #require(try await store.database.read(SQLStatement(sql)).first)
        var out: [String: Int64] = [:]
        for table in tables { out[table] = try row.int(table) }
        return out
    }

    static let errorCodes: Set<String> = ["invalid", "unauthorized", "forbidden", "not_found", "not_allowed", "wrong_state", "duplicate",
                                          "conflict", "too_large", "rate_limited"]

    /// Checks one answer; nil when it is a 2xx or a well-formed 4xx.
    static func problem(with response: TestResponse) -> String? {
        if (200..<300).contains(response.status) { return nil }
        guard (400..<500).contains(response.status) else { return "status \(response.status): \(response.text.prefix(300))" }
        guard response.header("Content-Type")?.hasPrefix("application/json") == true else { return "a \(response.status) that is not JSON" }
        guard let code = response.errorCode, errorCodes.contains(code), response.errorMessage?.isEmpty == false else {
            return "a \(response.status) without the error shape: \(response.text.prefix(300))"
        }
        return nil
    }

    /// Path ids that are not ids: the route must answer 404, not fail.
    static let hostileIDs = ["0", "-1", "99999999999999999999", "1e3", "%00", "%20", "abc", "1%2F2", "%E2%80%AE1", "9223372036854775807", "1.5",
                             "%F0%9F%92%A5", String(repeating: "9", count: 300)]

    @Test("random and mutated bodies to every POST route: 2xx or a JSON 4xx, never a 5xx; a 4xx stores nothing")
    func everyPostRoute() async throws {
        Fuzz.announce("api.bodies")
        // A clock that stands still: nothing a fuzzed body schedules (a 1-second expiry, a deadline) comes due
        // during the run, so the row counts around a refused request change only if that request stored something.
        try await withTestApp(clock: ManualClock(Date()), configure: { $0.http.rateLimit.enabled = false }) { app in
            let k = try await app.keys()
            // Something for every {id} route to act on.
            #expect(try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy","arguments":{"service":"api","version":"1.4.2","replicas":3}}"#).status == 201)
            #expect(try await app.post("/v1/review-items", key: k.agent, #"{"title":"seed","answer":"a"}"#).status == 201)
            #expect(try await app.post("/v1/escalations", key: k.agent, #"{"query":"seed"}"#).status == 201)
            #expect(try await app.post("/v1/feedback", key: k.agent, #"{"prompt":"Rate it","channel":"support"}"#).status == 201)
            #expect(try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"sentiment","type":"rating","content":"ok","overlap":3}"#).status == 201)

            func path(_ template: String, id: String) -> String {
                template.replacingOccurrences(of: "{id}", with: id).replacingOccurrences(of: "{queue}", with: id == "1" ? "default" : id)
            }
            // Valid samples still decode (the control: a route that refused everything would pass the fuzz loop).
            for route in Self.routes {
                let body = route.sample.map { Array($0.canonicalText.utf8) } ?? []
                let response = try await app.request(.POST, path(route.path, id: "1"), key: k.admin, body: body,
                                                     headers: [("Content-Type", "application/json")])
                #expect(response.status < 300 || [403, 409].contains(response.status), "\(route.path) refused its sample: \(response.text)")
            }

            var m = FuzzMutator(stream: "api.bodies")
            var inputs = 0
            var failures = 0
            var refused = 0
            var statuses: [Int: Int] = [:]
            let perRoute = 150
            for (r, route) in Self.routes.enumerated() {
                let samples = [route.sample ?? .object([:])]
                for i in 0..<perRoute {
                    let id = m.chance(0.1) ? m.pick(Self.hostileIDs) : String(m.int(1...3))
                    let body = m.input(from: samples)
                    let before = try await Self.counts(app)
                    inputs += 1
                    let response: TestResponse
                    do {
                        response = try await app.request(.POST, path(route.path, id: id), key: k.admin, body: body,
                                                         headers: [("Content-Type", "application/json")], timeout: .seconds(30))
                    } catch {
                        failures += 1
                        Issue.record("\(route.path) #\(i) (seed \(Fuzz.seedText)): no answer (\(error))\n  body: \(Fuzz.show(body))")
                        continue
                    }
                    statuses[response.status, default: 0] += 1
                    if let problem = Self.problem(with: response) {
                        failures += 1
                        Issue.record("\(route.path) id \(id) #\(r).\(i) (seed \(Fuzz.seedText)): \(problem)\n  body: \(Fuzz.show(body))")
                        continue
                    }
                    if response.status >= 400 {
                        refused += 1
                        let after = try await Self.counts(app)
                        if after != before {
                            failures += 1
                            let changed = Self.tables.filter { before[$0] != after[$0] }.map { "\($0) \(before[$0] ?? 0)→\(after[$0] ?? 0)" }
                            Issue.record("\(route.path) #\(i) (seed \(Fuzz.seedText)): a \(response.status) stored something (\(changed))\n  body: \(Fuzz.show(body))")
                        }
                    }
                }
            }
            #expect(refused > inputs / 3, "most mutations are refused: \(statuses)")
            #expect(try await app.get("/healthz").status == 200, "the server still answers")
            Fuzz.record(.api, inputs: inputs, crashes: failures, stream: "api.bodies")
        }
    }
}
