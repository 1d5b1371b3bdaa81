import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import Testing

/// `/v1/approvals`: every route's happy path and each error, through a real server on loopback.
@Suite struct HTTPApprovalTests {
    @Test func createIsIdempotentPerKeyAndCaller() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let body = #"{"action":"deploy","arguments":{"service":"api","version":42},"summary":"Ship api v42","state":{"run":7}}"#
            let first = try await app.post("/v1/approvals", key: k.agent, body, headers: [("Idempotency-Key", "deploy-42")])
            #expect(first.status == 201, "\(first.text)")
            #expect(first.json["status"]?.string == "pending")
            #expect(first.json["requester"]?.string == "key:erin-bot", "the requester is the key, never the body")
            #expect(first.json["caller_state"]?["run"]?.int == 7)
            #expect(first.header("Idempotent-Replayed") == nil)
            let id = try #require(first.json["id"]?.int)

            // A retry with the same key returns the same approval and creates nothing.
            let retry = try await app.post("/v1/approvals", key: k.agent, body, headers: [("Idempotency-Key", "deploy-42")])
            #expect(retry.status == 200)
            #expect(retry.header("Idempotent-Replayed") == "true")
            #expect(retry.json["id"]?.int == id)
            #expect(try await app.workflow.approvals(limit: 10).count == 1)

            // The same header value from another caller is another request.
            let other = try await app.key("other-bot", .agent)
            let third = try await app.post("/v1/approvals", key: other, body, headers: [("Idempotency-Key", "deploy-42")])
            #expect(third.status == 201)
            #expect(third.json["id"]?.int != id)
        }
    }

    @Test func createRefusesBadInputNamingTheField() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"arguments":{}}"#), 400, "invalid", field: "action")
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"action":"  "}"#), 400, "invalid", field: "action")
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"action":7}"#), 400, "invalid", field: "action")
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"action":"x","policy":"nope"}"#), 400, "invalid", field: "policy")
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"action":"x","callback_url":"ftp://x"}"#), 400, "invalid",
                        field: "callback_url")
            expectError(try await app.post("/v1/approvals", key: k.agent, #"{"action": "x""#), 400, "invalid")
            expectError(try await app.post("/v1/approvals", key: k.agent, ""), 400, "invalid")
            expectError(try await app.post("/v1/approvals", key: k.agent, "[1,2]"), 400, "invalid")
            // Reviewer keys cannot ask for approvals.
            expectError(try await app.post("/v1/approvals", key: k.alice, #"{"action":"x"}"#), 403, "forbidden")
            #expect(try await app.workflow.approvals(limit: 10).isEmpty)
        }
    }

    @Test func getAndListWithFiltersAndPaging() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            for i in 1...3 { _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"a\#(i)"}"#) }
            _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve"}"#)

            let one = try await app.get("/v1/approvals/2", key: k.carol)
            #expect(one.status == 200)
            #expect(one.json["action"]?.string == "a2")
            expectError(try await app.get("/v1/approvals/99", key: k.agent), 404, "not_found")
            expectError(try await app.get("/v1/approvals/abc", key: k.agent), 404, "not_found")

            let pending = try await app.get("/v1/approvals?status=pending", key: k.agent)
            #expect(pending.json["items"]?.array.compactMap { $0["id"]?.int } == [3, 2])
            let page = try await app.get("/v1/approvals?limit=2", key: k.agent)
            #expect(page.json["items"]?.array.count == 2)
            #expect(page.json["next"]?.int == 2)
            let next = try await app.get("/v1/approvals?limit=2&before=2", key: k.agent)
            #expect(next.json["items"]?.array.compactMap { $0["id"]?.int } == [1])
            expectError(try await app.get("/v1/approvals?status=maybe", key: k.agent), 400, "invalid", field: "status")
            expectError(try await app.get("/v1/approvals?limit=0", key: k.agent), 400, "invalid", field: "limit")
            expectError(try await app.get("/v1/approvals?before=x", key: k.agent), 400, "invalid", field: "before")
        }
    }

    @Test func decideTakesTheDeciderFromTheKeyAndIsCompareAndSet() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy","arguments":{"v":1}}"#)
            // Agents cannot decide; reviewers outside the deciders' group are refused by policy.
            expectError(try await app.post("/v1/approvals/1/decision", key: k.agent, #"{"verdict":"approve"}"#), 403, "forbidden")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.dave, #"{"verdict":"approve"}"#), 403, "not_allowed")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"maybe"}"#), 400, "invalid", field: "verdict")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"reject"}"#), 400, "invalid", field: "reason")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"revise"}"#), 400, "invalid", field: "comment")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve","arguments_hash":"0000"}"#),
                        400, "invalid", field: "arguments_hash")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.alice, #"{}"#), 400, "invalid", field: "verdict")
            expectError(try await app.post("/v1/approvals/7/decision", key: k.alice, #"{"verdict":"approve"}"#), 404, "not_found")

            // A body claiming to be someone else changes nothing: the key decides.
            let approved = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve","comment":"ok","by":"key:bob"}"#)
            #expect(approved.status == 200, "\(approved.text)")
            #expect(approved.json["status"]?.string == "approved")
            #expect(approved.json["decision"]?["by"]?.array.first?.string == "key:alice")

            let again = try await app.post("/v1/approvals/1/decision", key: k.bob, #"{"verdict":"reject","reason":"late"}"#)
            expectError(again, 409, "wrong_state")
            #expect(again.errorMessage?.contains("already decided") == true)

            // The requester may not decide their own request, even as admin.
            let own = try await app.post("/v1/approvals", key: k.admin, #"{"action":"self"}"#)
            let ownID = try #require(own.json["id"]?.int)
            expectError(try await app.post("/v1/approvals/\(ownID)/decision", key: k.admin, #"{"verdict":"approve"}"#), 403, "not_allowed")
            // Rejecting with a reason works for another approver.
            let rejected = try await app.post("/v1/approvals/\(ownID)/decision", key: k.bob, #"{"verdict":"reject","reason":"not today"}"#)
            #expect(rejected.json["status"]?.string == "rejected")
            #expect(rejected.json["decision"]?["comment"]?.string == "not today")
        }
    }

    @Test func cancelConsumeAndOutcome() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let other = try await app.key("other-bot", .agent)
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"a"}"#)
            expectError(try await app.post("/v1/approvals/1/cancel", key: other, #"{"reason":"mine now"}"#), 403, "not_allowed")
            expectError(try await app.post("/v1/approvals/1/cancel", key: k.alice), 403, "forbidden")
            let cancelled = try await app.request(.POST, "/v1/approvals/1/cancel", key: k.agent)
            #expect(cancelled.status == 200, "an empty body is fine: \(cancelled.text)")
            #expect(cancelled.json["status"]?.string == "cancelled")
            expectError(try await app.post("/v1/approvals/1/cancel", key: k.agent), 409, "wrong_state")
            expectError(try await app.post("/v1/approvals/5/cancel", key: k.agent), 404, "not_found")

            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"transfer","arguments":{"amount":10,"to":"acct-1"}}"#)
            expectError(try await app.post("/v1/approvals/2/consume", key: k.agent, #"{"arguments":{"amount":10,"to":"acct-1"}}"#),
                        409, "wrong_state")
            _ = try await app.post("/v1/approvals/2/decision", key: k.alice, #"{"verdict":"approve"}"#)
            expectError(try await app.post("/v1/approvals/2/consume", key: k.agent, #"{}"#), 400, "invalid", field: "arguments")
            expectError(try await app.post("/v1/approvals/2/consume", key: k.agent, #"{"arguments":{"amount":1000,"to":"acct-1"}}"#),
                        403, "not_allowed")
            expectError(try await app.post("/v1/approvals/2/consume", key: other, #"{"arguments":{"to":"acct-1","amount":10}}"#),
                        403, "not_allowed")
            let consumed = try await app.post("/v1/approvals/2/consume", key: k.agent, #"{"arguments":{"to":"acct-1","amount":10}}"#)
            #expect(consumed.status == 200, "key order does not matter: \(consumed.text)")
            #expect(consumed.json["execution"]?["state"]?.string == "consumed")
            expectError(try await app.post("/v1/approvals/2/consume", key: k.agent, #"{"arguments":{"to":"acct-1","amount":10}}"#),
                        409, "wrong_state")

            expectError(try await app.post("/v1/approvals/2/outcome", key: k.agent, #"{"result":"meh"}"#), 400, "invalid", field: "result")
            expectError(try await app.post("/v1/approvals/2/outcome", key: k.agent, #"{}"#), 400, "invalid", field: "result")
            let done = try await app.post("/v1/approvals/2/outcome", key: k.agent, #"{"result":"failed","message":"timeout"}"#)
            #expect(done.status == 200, "\(done.text)")
            #expect(done.json["execution"]?["state"]?.string == "failed")
            #expect(done.json["execution"]?["message"]?.string == "timeout")
            expectError(try await app.post("/v1/approvals/2/outcome", key: k.agent, #"{"result":"succeeded"}"#), 409, "wrong_state")
        }
    }
}
