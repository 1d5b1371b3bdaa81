import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import Testing

/// Feedback, corrections and labeling over HTTP.
@Suite struct HTTPLearningTests {
    @Test func feedbackRequestRespondAndRates() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            let asked = try await app.post("/v1/feedback", key: k.agent,
                                           #"{"kind":"choice","options":["helpful","wrong"],"prompt":"Was this right?","subject":"30 days","channel":"web","deadline":"2h"}"#,
                                           headers: [("Idempotency-Key", "fb-1")])
            #expect(asked.status == 201, "\(asked.text)")
            #expect(asked.json["options"]?.array.count == 2)
            let replay = try await app.post("/v1/feedback", key: k.agent,
                                            #"{"kind":"choice","options":["helpful","wrong"],"prompt":"Was this right?","subject":"30 days","channel":"web","deadline":"2h"}"#,
                                            headers: [("Idempotency-Key", "fb-1")])
            #expect(replay.status == 200)
            #expect(replay.json["id"]?.int == asked.json["id"]?.int)
            expectError(try await app.post("/v1/feedback", key: k.agent, #"{"kind":"poll","prompt":"?"}"#), 400, "invalid", field: "kind")
            expectError(try await app.post("/v1/feedback", key: k.agent, #"{"kind":"rating"}"#), 400, "invalid", field: "prompt")
            expectError(try await app.post("/v1/feedback", key: k.agent, #"{"prompt":"?","deadline":"soon"}"#), 400, "invalid", field: "deadline")

            expectError(try await app.post("/v1/feedback/1/response", key: k.carol, #"{"value":"maybe"}"#), 400, "invalid")
            expectError(try await app.post("/v1/feedback/1/response", key: k.carol, #"{"value":[1]}"#), 400, "invalid", field: "value")
            expectError(try await app.post("/v1/feedback/1/response", key: k.agent, #"{"value":"helpful"}"#), 403, "forbidden")
            let answered = try await app.post("/v1/feedback/1/response", key: k.carol, #"{"value":"helpful"}"#)
            #expect(answered.json["status"]?.string == "answered", "\(answered.text)")
            #expect(answered.json["responded_by"]?.string == "key:carol")
            expectError(try await app.post("/v1/feedback/1/response", key: k.alice, #"{"value":"wrong"}"#), 409, "wrong_state")

            let rating = try await app.post("/v1/feedback", key: k.agent, #"{"prompt":"Rate it"}"#)
            let ratingID = try #require(rating.json["id"]?.int)
            let rated = try await app.post("/v1/feedback/\(ratingID)/response", key: k.alice, #"{"value":4}"#)
            #expect(rated.json["response"]?.string == "4")
            #expect(try await app.get("/v1/feedback/1", key: k.agent).json["response"]?.string == "helpful")
            expectError(try await app.get("/v1/feedback/9", key: k.agent), 404, "not_found")

            let rates = try await app.get("/v1/feedback/rates", key: k.agent)
            #expect(rates.json["overall"]?["answered"]?.int == 2)
            #expect(rates.json["overall_rate"]?.double == 1)
        }
    }

    @Test func correctionsRecordPatternsAndSimilar() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            for (q, o, c) in [("How long is the refund window?", "The refund window is 30 days.", "The refund window is 14 days."),
                              ("Refund period for shoes?", "You have 30 days to return shoes.", "You have 14 days to return shoes.")]
            {
                let r = try await app.post("/v1/corrections", key: k.agent, #"{"query":"\#(q)","original":"\#(o)","corrected":"\#(c)"}"#)
                #expect(r.status == 201, "\(r.text)")
                #expect(r.json["by"]?.string == "key:erin-bot")
            }
            expectError(try await app.post("/v1/corrections", key: k.agent, #"{"query":"q","original":"same","corrected":"same"}"#), 400, "invalid",
                        field: "corrected")
            expectError(try await app.post("/v1/corrections", key: k.agent, #"{"query":"q","original":"a"}"#), 400, "invalid", field: "corrected")
            // A retried create with the same Idempotency-Key records the correction once.
            let created = try await app.post("/v1/corrections", key: k.agent, #"{"query":"q","original":"a","corrected":"b"}"#,
                                             headers: [("Idempotency-Key", "c-1")])
            let retry = try await app.post("/v1/corrections", key: k.agent, #"{"query":"q","original":"a","corrected":"b"}"#,
                                           headers: [("Idempotency-Key", "c-1")])
            #expect(created.status == 201, "\(created.text)")
            #expect(retry.json["id"]?.int == created.json["id"]?.int)
            #expect(try await app.workflow.store.corrections(after: nil, limit: 100).filter { $0.corrected == "b" }.count == 1)

            let patterns = try await app.get("/v1/corrections/patterns?floor=2", key: k.carol)
            let first = try #require(patterns.json["patterns"]?.array.first, "\(patterns.text)")
            #expect(first["count"]?.int == 2)
            #expect(first["summary"]?.string?.contains("14") == true)
            expectError(try await app.get("/v1/corrections/patterns?similarity=2", key: k.carol), 400, "invalid", field: "similarity")

            let similar = try await app.get("/v1/corrections/similar?query=refund%20window%20length&k=1", key: k.agent)
            #expect(similar.json["corrections"]?.array.count == 1)
            #expect(similar.json["corrections"]?[0]?["similarity"]?.double ?? 0 > 0)
            expectError(try await app.get("/v1/corrections/similar", key: k.agent), 400, "invalid", field: "query")
            expectError(try await app.get("/v1/corrections/similar?query=x&k=0", key: k.agent), 400, "invalid", field: "k")
            #expect(try await app.get("/v1/corrections/1", key: k.agent).json["corrected"]?.string == "The refund window is 14 days.")
            expectError(try await app.get("/v1/corrections/5", key: k.agent), 404, "not_found")
        }
    }

    @Test func labelingTasksLabelsConsensusAgreementAndExport() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            for text in ["great product", "terrible support"] {
                let r = try await app.post("/v1/label-tasks", key: k.agent,
                                           #"{"dataset":"sentiment","type":"choice","options":["positive","negative"],"content":"\#(text)","instructions":"Pick one","overlap":2,"labelers":["labelers"]}"#)
                #expect(r.status == 201, "\(r.text)")
            }
            let span = try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"ner","type":"span","content":"Alice met Bob"}"#)
            #expect(span.json["type"]?.string == "span")
            expectError(try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"d","type":"audio","content":"x"}"#), 400, "invalid",
                        field: "type")
            expectError(try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"d","type":"choice","options":["one"],"content":"x"}"#),
                        400, "invalid", field: "options")
            expectError(try await app.post("/v1/label-tasks", key: k.agent, #"{"dataset":"d","type":"text"}"#), 400, "invalid", field: "content")

            let next = try await app.get("/v1/label-tasks/next?dataset=sentiment", key: k.alice)
            #expect(next.json["task"]?["id"]?.int == 1)
            expectError(try await app.get("/v1/label-tasks/next", key: k.agent), 403, "forbidden")

            let labeled = try await app.post("/v1/label-tasks/1/labels", key: k.alice, #"{"value":"positive"}"#)
            #expect(labeled.status == 201, "\(labeled.text)")
            #expect(labeled.json["label"]?["labeler"]?.string == "key:alice")
            expectError(try await app.post("/v1/label-tasks/1/labels", key: k.alice, #"{"value":"negative"}"#), 409, "wrong_state")
            expectError(try await app.post("/v1/label-tasks/1/labels", key: k.carol, #"{"value":"neutral"}"#), 400, "invalid")
            expectError(try await app.post("/v1/label-tasks/1/labels", key: k.dave, #"{"value":"positive"}"#), 403, "not_allowed")
            _ = try await app.post("/v1/label-tasks/1/labels", key: k.carol, #"{"value":"positive"}"#)
            _ = try await app.post("/v1/label-tasks/2/labels", key: k.alice, #"{"value":"negative"}"#)
            _ = try await app.post("/v1/label-tasks/2/labels", key: k.carol, #"{"value":"positive"}"#)
            let spanLabel = try await app.post("/v1/label-tasks/3/labels", key: k.alice, #"{"value":{"start":0,"end":5}}"#)
            #expect(spanLabel.json["label"]?["value"]?["end"]?.int == 5, "\(spanLabel.text)")
            expectError(try await app.post("/v1/label-tasks/3/labels", key: k.carol, #"{"value":{"start":9,"end":2}}"#), 400, "invalid")

            let consensus = try await app.get("/v1/label-tasks/1/consensus", key: k.agent)
            #expect(consensus.json["consensus"]?.string == "positive")
            #expect(consensus.json["agreement"]?.double == 1)
            #expect(consensus.json["labels"]?.array.count == 2)
            expectError(try await app.get("/v1/label-tasks/44/consensus", key: k.agent), 404, "not_found")

            let agreement = try await app.get("/v1/datasets/sentiment/agreement", key: k.agent)
            #expect(agreement.json["tasks"]?.int == 2)
            #expect(agreement.json["labels"]?.int == 4)
            #expect(agreement.json["pairable_tasks"]?.int == 2)

            let list = try await app.get("/v1/label-tasks?dataset=sentiment&limit=1", key: k.agent)
            #expect(list.json["items"]?.array.count == 1)
            #expect(list.json["next"]?.int == 1)
            #expect(try await app.get("/v1/label-tasks?dataset=sentiment&after=1", key: k.agent).json["items"]?[0]?["id"]?.int == 2)
            #expect(try await app.get("/v1/label-tasks/2", key: k.agent).json["labels"]?.int == 2)
            expectError(try await app.get("/v1/label-tasks/0", key: k.agent), 404, "not_found")

            let export = try await app.get("/v1/datasets/sentiment/export", key: k.agent)
            #expect(export.status == 200)
            #expect(export.header("Content-Type")?.hasPrefix("application/x-ndjson") == true)
            #expect(export.header("Content-Disposition")?.contains("sentiment.jsonl") == true)
            let lines = export.text.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines.first?.contains(#""consensus":"positive""#) == true, "\(export.text)")
        }
    }

    @Test func exportStreamsLargeDatasets() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            // Enough rows for several 32 KiB chunks.
            let filler = String(repeating: "lorem ipsum ", count: 60)
            for i in 1...120 {
                _ = try await app.workflow.createLabelTask(
                    LabelTaskInput(dataset: "big", type: .text, content: "\(i) \(filler)"), by: "key:erin-bot")
            }
            let export = try await app.get("/v1/datasets/big/export", key: k.agent)
            let lines = export.text.split(separator: "\n")
            #expect(lines.count == 120)
            #expect(export.body.count > 3 * 32 * 1024)
            #expect(lines.last?.contains("\"id\":120") == true)
        }
    }
}
