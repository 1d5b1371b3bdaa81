import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import Testing

/// Review queues, routing and escalations over HTTP.
@Suite struct HTTPReviewTests {
    @Test func enqueueClaimSubmitAndStats() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let low = try await app.post("/v1/review-items", key: k.agent,
                                         #"{"queue":"default","priority":"low","title":"low one","query":"q1","answer":"a1","confidence":0.5}"#,
                                         headers: [("Idempotency-Key", "item-1")])
            #expect(low.status == 201, "\(low.text)")
            let replay = try await app.post("/v1/review-items", key: k.agent,
                                            #"{"queue":"default","priority":"low","title":"low one","query":"q1","answer":"a1","confidence":0.5}"#,
                                            headers: [("Idempotency-Key", "item-1")])
            #expect(replay.status == 200)
            #expect(replay.header("Idempotent-Replayed") == "true")
            #expect(replay.json["id"]?.int == low.json["id"]?.int)
            let critical = try await app.post("/v1/review-items", key: k.agent,
                                              #"{"priority":"critical","query":"How long is the refund window?","answer":"30 days","context":{"ticket":9}}"#)
            #expect(critical.json["priority"]?.string == "critical")
            expectError(try await app.post("/v1/review-items", key: k.agent, #"{"priority":"urgent"}"#), 400, "invalid", field: "priority")
            expectError(try await app.post("/v1/review-items", key: k.agent, #"{"queue":"nowhere"}"#), 400, "invalid", field: "queue")
            expectError(try await app.post("/v1/review-items", key: k.alice, #"{}"#), 403, "forbidden")

            let list = try await app.get("/v1/review-items?queue=default&status=pending", key: k.carol)
            #expect(list.json["items"]?.array.count == 2)
            expectError(try await app.get("/v1/review-items?status=lost", key: k.carol), 400, "invalid", field: "status")
            #expect(try await app.get("/v1/review-items/2", key: k.agent).json["context"]?["ticket"]?.int == 9)
            expectError(try await app.get("/v1/review-items/77", key: k.agent), 404, "not_found")

            // Claim next: the critical item first; the holder comes from the key.
            expectError(try await app.post("/v1/queues/default/claim", key: k.agent), 403, "forbidden")
            expectError(try await app.post("/v1/queues/default/claim", key: k.dave), 403, "not_allowed")
            expectError(try await app.post("/v1/queues/nowhere/claim", key: k.alice), 400, "invalid", field: "queue")
            let claimed = try await app.post("/v1/queues/default/claim", key: k.alice)
            #expect(claimed.json["item"]?["id"]?.int == 2, "\(claimed.text)")
            #expect(claimed.json["item"]?["claimed_by"]?.string == "key:alice")
            // Someone else cannot take or submit it.
            expectError(try await app.post("/v1/review-items/2/claim", key: k.carol), 409, "wrong_state")
            expectError(try await app.post("/v1/review-items/2/submit", key: k.carol, #"{"verdict":"approved"}"#), 403, "not_allowed")
            expectError(try await app.post("/v1/review-items/2/submit", key: k.alice, #"{"verdict":"fine"}"#), 400, "invalid", field: "verdict")

            let submitted = try await app.post("/v1/review-items/2/submit", key: k.alice,
                                               #"{"verdict":"rejected","feedback":"policy changed","corrected_answer":"14 days"}"#)
            #expect(submitted.status == 200, "\(submitted.text)")
            #expect(submitted.json["item"]?["status"]?.string == "completed")
            #expect(submitted.json["correction"]?["corrected"]?.string == "14 days")
            #expect(submitted.json["correction"]?["by"]?.string == "key:alice")
            expectError(try await app.post("/v1/review-items/2/submit", key: k.alice, #"{"verdict":"approved"}"#), 409, "wrong_state")

            // Claim a specific item, release it, claim it again; then the queue is empty for carol after she reviews.
            let one = try await app.post("/v1/review-items/1/claim", key: k.carol)
            #expect(one.json["claimed_by"]?.string == "key:carol")
            expectError(try await app.post("/v1/review-items/1/release", key: k.alice), 409, "wrong_state")
            let released = try await app.post("/v1/review-items/1/release", key: k.carol)
            #expect(released.json["status"]?.string == "pending")
            _ = try await app.post("/v1/queues/default/claim", key: k.carol)
            _ = try await app.post("/v1/review-items/1/submit", key: k.carol, #"{"verdict":"approved"}"#)
            let empty = try await app.post("/v1/queues/default/claim", key: k.carol)
            #expect(empty.status == 200)
            #expect(empty.json["item"] == nil || empty.json["item"]?.isNull == true, "nothing left: \(empty.text)")

            let stats = try await app.get("/v1/queues/stats", key: k.agent)
            let queue = stats.json["queues"]?.array.first { $0["queue"]?.string == "default" }
            #expect(queue?["completed"]?.int == 2)
            #expect(stats.json["reviewers"]?.array.count == 2)
            let one2 = try await app.get("/v1/queues/stats?queue=default", key: k.agent)
            #expect(one2.json["queues"]?.array.count == 1)
            expectError(try await app.get("/v1/queues/stats?queue=nowhere", key: k.agent), 400, "invalid", field: "queue")
        }
    }

    @Test func routingSendsQueuesOrEscalates() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let sure = try await app.post("/v1/route", key: k.agent, #"{"query":"hours?","answer":"9 to 5","confidence":0.93}"#)
            #expect(sure.json["decision"]?.string == "auto_send", "\(sure.text)")
            #expect(sure.json["review_item"] == nil)
            let unsure = try await app.post("/v1/route", key: k.agent, #"{"query":"refund?","answer":"30 days","self_rating":"Confidence: 60%"}"#,
                                            headers: [("Idempotency-Key", "r-1")])
            #expect(unsure.json["decision"]?.string == "review")
            #expect(unsure.json["confidence"]?.double == 0.6)
            let itemID = try #require(unsure.json["review_item"]?["id"]?.int)
            let again = try await app.post("/v1/route", key: k.agent, #"{"query":"refund?","answer":"30 days","self_rating":"Confidence: 60%"}"#,
                                           headers: [("Idempotency-Key", "r-1")])
            #expect(again.json["review_item"]?["id"]?.int == itemID, "a retried route makes no second item")
            #expect(again.header("Idempotent-Replayed") == "true")
            let human = try await app.post("/v1/route", key: k.agent, #"{"query":"I want to talk to a human","answer":"…","confidence":0.9}"#)
            #expect(human.json["decision"]?.string == "escalate")
            #expect(human.json["escalation"]?["tier"]?.string == "agent")
            let unreadable = try await app.post("/v1/route", key: k.agent, #"{"answer":"x","self_rating":"dunno"}"#)
            #expect(unreadable.json["decision"]?.string == "review")
            expectError(try await app.post("/v1/route", key: k.agent, #"{"confidence":0.5,"self_rating":"high"}"#), 400, "invalid",
                        field: "confidence")
            expectError(try await app.post("/v1/route", key: k.agent, #"{"route":"nope","confidence":0.5}"#), 400, "invalid", field: "route")
            expectError(try await app.post("/v1/route", key: k.agent, #"{"confidence":"high"}"#), 400, "invalid", field: "confidence")
            expectError(try await app.post("/v1/route", key: k.carol, #"{"confidence":0.5}"#), 403, "forbidden")
        }
    }

    @Test func escalationsOpenClaimRaiseResolveAndList() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let erin = try await app.key("erin", .reviewer)
            let opened = try await app.post("/v1/escalations", key: k.agent,
                                            #"{"query":"My order never came","context":"order 123","reason":"angry customer","requester":"slack:U9"}"#,
                                            headers: [("Idempotency-Key", "esc-1")])
            #expect(opened.status == 201, "\(opened.text)")
            #expect(opened.json["tier"]?.string == "agent")
            #expect(opened.json["reason"]?.string == "angry customer")
            let replay = try await app.post("/v1/escalations", key: k.agent,
                                            #"{"query":"My order never came","context":"order 123","reason":"angry customer","requester":"slack:U9"}"#,
                                            headers: [("Idempotency-Key", "esc-1")])
            #expect(replay.status == 200)
            #expect(replay.json["id"]?.int == opened.json["id"]?.int)
            // The same key for a different request is a client bug: refused, nothing created.
            expectError(try await app.post("/v1/escalations", key: k.agent, #"{"query":"Something else entirely"}"#,
                                            headers: [("Idempotency-Key", "esc-1")]), 400, "invalid", field: "Idempotency-Key")
            expectError(try await app.post("/v1/escalations", key: k.agent, #"{"context":"x"}"#), 400, "invalid", field: "query")
            expectError(try await app.post("/v1/escalations", key: k.agent, #"{"query":"x","tier":"ceo"}"#), 400, "invalid", field: "tier")

            expectError(try await app.post("/v1/escalations/1/claim", key: k.carol), 403, "not_allowed")
            expectError(try await app.post("/v1/escalations/1/claim", key: k.agent), 403, "forbidden")
            let claimed = try await app.post("/v1/escalations/1/claim", key: k.alice)
            #expect(claimed.json["status"]?.string == "claimed")
            #expect(claimed.json["claimed_by"]?.string == "key:alice")
            expectError(try await app.post("/v1/escalations/1/resolve", key: k.alice, #"{"resolution":"   "}"#), 400, "invalid", field: "resolution")
            expectError(try await app.post("/v1/escalations/1/resolve", key: k.alice, #"{}"#), 400, "invalid", field: "resolution")
            let raised = try await app.post("/v1/escalations/1/raise", key: k.alice, #"{"reason":"needs an expert"}"#)
            #expect(raised.json["tier"]?.string == "expert", "\(raised.text)")
            _ = try await app.post("/v1/escalations/1/claim", key: erin)
            let resolved = try await app.post("/v1/escalations/1/resolve", key: erin, #"{"resolution":"Reshipped with tracking."}"#)
            #expect(resolved.json["status"]?.string == "resolved")
            #expect(resolved.json["resolved_by"]?.string == "key:erin")
            expectError(try await app.post("/v1/escalations/1/claim", key: erin), 409, "wrong_state")
            expectError(try await app.post("/v1/escalations/9/claim", key: erin), 404, "not_found")

            let list = try await app.get("/v1/escalations?status=resolved", key: k.agent)
            #expect(list.json["items"]?.array.count == 1)
            expectError(try await app.get("/v1/escalations?status=lost", key: k.agent), 400, "invalid", field: "status")
            #expect(try await app.get("/v1/escalations/1", key: k.agent).json["resolution"]?.string == "Reshipped with tracking.")
            expectError(try await app.get("/v1/escalations/2", key: k.agent), 404, "not_found")
        }
    }
}
