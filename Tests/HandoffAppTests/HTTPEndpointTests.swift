import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import Testing

/// Endpoints the review found thin: claiming one specific review item, feedback response rates,
/// raising an escalation a tier, and what `/metrics` reports — each happy path and each refusal.
@Suite struct HTTPEndpointTests {
    @Test func claimingASpecificReviewItem() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"priority":"low","title":"older, lower"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"priority":"critical","title":"next in line"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"queue":"support","title":"two reviews"}"#)

            // The named item, not the queue's next one (which would be #2, critical).
            let claimed = try await app.post("/v1/review-items/1/claim", key: k.carol)
            #expect(claimed.status == 200, "\(claimed.text)")
            #expect(claimed.json["id"]?.int == 1)
            #expect(claimed.json["status"]?.string == "claimed")
            #expect(claimed.json["claimed_by"]?.string == "key:carol")
            #expect(claimed.json["lease_until"]?.string != nil, "the lease end is reported: \(claimed.text)")
            #expect(try await app.workflow.reviewItem(ReviewItemID(2)).status == .pending, "the others stay in the queue")

            expectError(try await app.post("/v1/review-items/1/claim"), 401, "unauthorized")
            expectError(try await app.post("/v1/review-items/1/claim", key: "hk_nope_nope"), 401, "unauthorized")
            expectError(try await app.post("/v1/review-items/2/claim", key: k.agent), 403, "forbidden")
            expectError(try await app.post("/v1/review-items/2/claim", key: k.dave), 403, "not_allowed")
            expectError(try await app.post("/v1/review-items/99/claim", key: k.alice), 404, "not_found")
            expectError(try await app.post("/v1/review-items/abc/claim", key: k.alice), 404, "not_found")
            let held = try await app.post("/v1/review-items/1/claim", key: k.alice)
            expectError(held, 409, "wrong_state")
            #expect(held.errorMessage?.contains("key:carol") == true, "says who holds it: \(held.text)")
            expectError(try await app.post("/v1/review-items/1/claim", key: k.carol), 409, "wrong_state")

            // A reviewer who already reviewed an item that needs two reviews cannot take it again.
            _ = try await app.post("/v1/review-items/3/claim", key: k.alice)
            _ = try await app.post("/v1/review-items/3/submit", key: k.alice, #"{"verdict":"approved"}"#)
            expectError(try await app.post("/v1/review-items/3/claim", key: k.alice), 403, "not_allowed")
            #expect(try await app.post("/v1/review-items/3/claim", key: k.carol).status == 200, "a second reviewer may")
            _ = try await app.post("/v1/review-items/1/submit", key: k.carol, #"{"verdict":"approved"}"#)
            expectError(try await app.post("/v1/review-items/1/claim", key: k.alice), 409, "wrong_state")
            #expect(try await app.workflow.reviewItem(ReviewItemID(1)).reviews.count == 1, "refusals changed nothing")
        }
    }

    @Test func feedbackResponseRatesOverallAndPerChannel() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let empty = try await app.get("/v1/feedback/rates", key: k.carol)
            #expect(empty.status == 200, "\(empty.text)")
            #expect(empty.json["overall"]?["answered"]?.int == 0)
            #expect(empty.json["overall_rate"] == nil || empty.json["overall_rate"]?.isNull == true, "no rate without requests: \(empty.text)")
            #expect(empty.json["channels"]?.array.isEmpty == true)

            for channel in ["support", "support", "support", "sales"] {
                _ = try await app.post("/v1/feedback", key: k.agent, #"{"prompt":"Helpful?","channel":"\#(channel)"}"#)
            }
            _ = try await app.post("/v1/feedback/1/response", key: k.carol, #"{"value":5}"#)
            _ = try await app.post("/v1/feedback/2/response", key: k.carol, #"{"value":"2"}"#)
            _ = try await app.post("/v1/feedback/4/response", key: k.alice, #"{"value":4}"#)

            let rates = try await app.get("/v1/feedback/rates", key: k.agent)
            #expect(rates.status == 200)
            #expect(rates.json["overall"]?["answered"]?.int == 3)
            #expect(rates.json["overall"]?["open"]?.int == 1)
            #expect(rates.json["overall"]?["expired"]?.int == 0)
            // The rate is answered / closed (answered + expired): an open request has not had its chance yet.
            #expect(rates.json["overall_rate"]?.double == 1.0, "\(rates.text)")
            let channels = rates.json["channels"]?.array ?? []
            #expect(channels.compactMap { $0["channel"]?.string } == ["sales", "support"], "one entry per channel, in order")
            let support = channels.first { $0["channel"]?.string == "support" }
            #expect(support?["answered"]?.int == 2)
            #expect(support?["open"]?.int == 1)
            #expect(try await app.get("/v1/feedback/rates", key: k.admin).status == 200, "every scope may read")

            expectError(try await app.get("/v1/feedback/rates"), 401, "unauthorized")
            expectError(try await app.get("/v1/feedback/rates", key: "hk_nope_nope"), 401, "unauthorized")
            expectError(try await app.request(.POST, "/v1/feedback/rates", key: k.agent, json: "{}"), 404, "not_found")
        }
    }

    @Test func raisingAnEscalationATier() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let erin = try await app.key("erin", .reviewer)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"Refund for order 7?"}"#)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"Invoice is wrong"}"#)

            let raised = try await app.post("/v1/escalations/1/raise", key: k.alice, #"{"reason":"needs an expert"}"#)
            #expect(raised.status == 200, "\(raised.text)")
            #expect(raised.json["tier"]?.string == "expert")
            #expect(raised.json["status"]?.string == "open", "open again at the new tier")
            let audit = try await app.workflow.store.audit(of: EntityRef(kind: .escalation, id: 1))
            #expect(audit.last?.detail == "needs an expert")
            #expect(audit.last?.actor == "key:alice")
            // The body may be empty: the reason is optional.
            let noBody = try await app.request(.POST, "/v1/escalations/2/raise", key: k.alice)
            #expect(noBody.status == 200, "\(noBody.text)")
            #expect(noBody.json["tier"]?.string == "expert")

            expectError(try await app.post("/v1/escalations/1/raise", key: erin), 409, "wrong_state")  // already at the top tier
            expectError(try await app.post("/v1/escalations/1/raise"), 401, "unauthorized")
            expectError(try await app.post("/v1/escalations/1/raise", key: k.agent), 403, "forbidden")
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"Third"}"#)
            expectError(try await app.post("/v1/escalations/3/raise", key: k.carol), 403, "not_allowed")
            expectError(try await app.post("/v1/escalations/42/raise", key: k.alice), 404, "not_found")
            expectError(try await app.post("/v1/escalations/3/raise", key: k.alice, #"{"reason":"#), 400, "invalid")
            expectError(try await app.post("/v1/escalations/3/raise", key: k.alice, #"{"reason":7}"#), 400, "invalid", field: "reason")
            _ = try await app.post("/v1/escalations/3/claim", key: k.alice)
            _ = try await app.post("/v1/escalations/3/resolve", key: k.alice, #"{"resolution":"Done."}"#)
            expectError(try await app.post("/v1/escalations/3/raise", key: k.alice), 409, "wrong_state")
            #expect(try await app.workflow.escalation(EscalationID(3)).tierName == "agent", "refusals changed nothing")
        }
    }

    /// The value of one series in Prometheus text (`name{labels} value`), or nil.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsReportRequestsDecisionsQueueDepthTimeToDecideAndWebhooks() async throws {
        let receiver = try await WebhookReceiver.start(script: [500])
        let app = try await TestApp.start(configure: {
            $0.webhooks.dispatcher.initialBackoff = .milliseconds(100)
            $0.webhooks.dispatcher.maxBackoff = .milliseconds(200)
        })
        do {
            let k = try await app.keys()
            // The registry is shared by every test in the process: compare before and after.
            let before = try await app.get("/metrics").text
            func delta(_ after: String, _ series: String) -> Double {
                (Self.sample(after, series) ?? 0) - (Self.sample(before, series) ?? 0)
            }

            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"a","callback_url":"\#(receiver.url)"}"#)
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"b"}"#)
            _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve"}"#)
            _ = try await app.post("/v1/approvals/2/decision", key: k.alice, #"{"verdict":"reject","reason":"no"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"done"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"held"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"waiting"}"#)
            _ = try await app.post("/v1/review-items/1/claim", key: k.alice)
            _ = try await app.post("/v1/review-items/1/submit", key: k.alice, #"{"verdict":"revision_needed","feedback":"tone"}"#)
            _ = try await app.post("/v1/review-items/2/claim", key: k.carol)
            // The webhook fails once (500), then is delivered.
            _ = try await receiver.waitFor(2)

            let approved = #"handoff_decisions_total{kind="approval",outcome="approved"}"#
            let rejected = #"handoff_decisions_total{kind="approval",outcome="rejected"}"#
            let revision = #"handoff_decisions_total{kind="review",outcome="revision_needed"}"#
            let delivered = #"handoff_webhook_deliveries_total{result="delivered"}"#
            let retried = #"handoff_webhook_deliveries_total{result="retry"}"#
            var text = ""
            let settled = await eventually {
                guard let t = try? await app.get("/metrics").text else { return false }
                text = t
                return delta(t, approved) >= 1 && delta(t, rejected) >= 1 && delta(t, revision) >= 1 && delta(t, delivered) >= 1
            }
            #expect(settled, "decisions and deliveries were counted:\n\(text)")
            let scrape = try await app.get("/metrics")
            #expect(scrape.status == 200)
            #expect(scrape.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)

            // Requests, by route, method and status.
            #expect(text.contains("# TYPE hb_requests counter"), "\(text)")
            func requests(_ parts: String...) -> Bool {
                text.split(separator: "\n").contains { line in line.hasPrefix("hb_requests{") && parts.allSatisfy { line.contains($0) } }
            }
            #expect(requests(#"/v1/approvals/{id}/decision""#, #""POST""#, #""200""#), "\(text)")
            #expect(requests(#"/v1/review-items""#, #""POST""#, #""201""#))
            // Decisions by outcome.
            #expect(text.contains("# TYPE handoff_decisions_total counter"))
            #expect(delta(text, approved) >= 1)
            #expect(delta(text, rejected) >= 1)
            #expect(delta(text, revision) >= 1)
            // Queue depth, from the database at scrape time: one pending, one claimed.
            #expect(Self.sample(text, #"handoff_queue_depth{queue="default",status="pending"}"#) == 1, "\(text)")
            #expect(Self.sample(text, #"handoff_queue_depth{queue="default",status="claimed"}"#) == 1)
            #expect(Self.sample(text, "handoff_approvals_pending") == 0)
            // Time to decide, as a histogram per kind.
            #expect(text.contains("# TYPE handoff_time_to_decide_seconds histogram"))
            #expect(delta(text, #"handoff_time_to_decide_seconds_count{kind="approval"}"#) >= 2)
            #expect(delta(text, #"handoff_time_to_decide_seconds_count{kind="review"}"#) >= 1)
            // Webhook deliveries and failures.
            #expect(delta(text, delivered) >= 1)
            #expect(delta(text, retried) >= 1)
            #expect(delta(text, "handoff_webhook_failures_total") >= 1)

            // Without the database, the process's counters still answer; the gauges keep their last value.
            try await app.workflow.store.close()
            let degraded = try await app.get("/metrics")
            #expect(degraded.status == 200)
            #expect(degraded.text.contains("handoff_decisions_total"))
            expectError(try await app.get("/readyz"), 503, "unavailable")
        } catch {
            try? await receiver.stop()
            try? await app.client.shutdown()
            await app.group.triggerGracefulShutdown()
            _ = try? await app.running.value
            app.directory.remove()
            throw error
        }
        try await receiver.stop()
        try? await app.client.shutdown()
        await app.group.triggerGracefulShutdown()
        _ = try? await app.running.value
        app.directory.remove()
    }
}
