import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow

/// Scenario 3: a review queue filled through the bulk path to 10k, 100k and 1M pending items; at each
/// size one reviewer claims and submits at maximum rate (claim latency), and the process's resident
/// memory is read. The filled database is handed to the start-up scenario.
struct QueueScenario {
    let options: BenchOptions
    let context: BenchContext

    static let fillBatch = 1_000

    func run() async throws -> ScenarioReport {
        let checkpoints = options.queueCheckpoints
        var report = ScenarioReport(
            name: "queue", title: "Review queue at scale (claim + submit, one reviewer, \(Format.grouped(options.claimsPerCheckpoint)) per size)",
            columns: ["pending", "fill rate", "claims/s", "claim p50", "claim p90", "claim p99", "claim max", "submit p50", "RSS", "of it heap"])
        let path = options.directory + "/queue.sqlite"
        let policyPath = options.directory + "/queue-policy.yaml"
        try BenchPolicy.text.write(toFile: policyPath, atomically: true, encoding: .utf8)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        context.track(path)
        let (workflow, _) = try await BenchPolicy.openWorkflow(path: path, options: options)
        do {
            let fill = ProgressBar("filling the queue", total: checkpoints.last ?? 0)
            var created = 0
            var consumed = 0
            var rss: [Int] = []
            var p99s: [Double] = []
            var fillSeconds = 0.0
            var filledForRate = 0
            for checkpoint in checkpoints {
                // Fill so that exactly `checkpoint` items are pending when the claims start.
                let t0 = ContinuousClock.now
                let target = checkpoint + consumed
                let filledBefore = created
                while created < target {
                    let count = min(Self.fillBatch, target - created)
                    _ = try await workflow.enqueue(batch: (created..<(created + count)).map(Self.request), by: ActorID("bench:loader"))
                    created += count
                    fill.update(created - consumed)
                }
                fillSeconds += (ContinuousClock.now - t0).seconds
                filledForRate += created - filledBefore
                let fillRate = fillSeconds > 0 ? Double(filledForRate) / fillSeconds : 0
                if checkpoint == checkpoints.last { fill.finish() }
                let pending = try await workflow.store.queueStats(queue: "default").pending
                guard pending == checkpoint else { throw BenchError("expected \(checkpoint) pending items, found \(pending)") }

                let phase = try await claimAndSubmit(workflow, count: min(options.claimsPerCheckpoint, checkpoint))
                consumed += phase.claims
                let resident = residentBytes()
                let anonymous = anonymousResidentBytes()
                rss.append(resident)
                if let p99 = phase.claim.p99 { p99s.append(p99) }
                report.row(Format.grouped(checkpoint), Format.rate(fillRate), Format.rate(phase.rate), Format.ms(phase.claim.p50),
                           Format.ms(phase.claim.percentile(0.9)), Format.ms(phase.claim.p99), Format.ms(phase.claim.max), Format.ms(phase.submit.p50), Format.bytes(resident), Format.bytes(anonymous))
                let key = "at_\(checkpoint)"
                report.metrics["\(key)_claims_per_s"] = phase.rate
                report.metrics["\(key)_rss_bytes"] = Double(resident)
                report.metrics["\(key)_rss_anonymous_bytes"] = Double(anonymous)
                report.metrics["\(key)_fill_per_s"] = fillRate
                report.metrics.merge(phase.claim.metrics("\(key)_claim")) { $1 }
                report.metrics.merge(phase.submit.metrics("\(key)_submit")) { $1 }
            }
            let pending = try await workflow.store.queueStats(queue: "default").pending
            try await workflow.store.close()
            context.filledQueue = (path, policyPath, pending)

            if let largest = p99s.last, let n = checkpoints.last {
                report.target("claim p99 with \(Format.grouped(n)) pending", largest * 1000, .atMost, 1, unit: "ms")
            }
            if let first = rss.first, let last = rss.last, first > 0 {
                let growth = (Double(last) / Double(first) - 1) * 100
                report.metrics["rss_growth_percent"] = growth
                report.target("RSS growth \(Format.grouped(checkpoints.first ?? 0)) → \(Format.grouped(checkpoints.last ?? 0)) pending",
                              growth, .atMost, 20, unit: "%")
            }
            report.notes.append("filled with `Workflow.enqueue(batch:)`, \(Format.grouped(Self.fillBatch)) items per transaction (item, audit, SLA timer, card outbox row each); priorities mixed")
            report.notes.append("a claim = the indexed next-item query + one committed compare-and-set (lease, audit, timers); submit = one more commit")
            return report
        } catch {
            try? await workflow.store.close()
            throw error
        }
    }

    /// A realistic item: a question, a draft answer and a confidence, priorities mixed.
    static func request(_ i: Int) -> ReviewItemRequest {
        let priorities: [Priority] = [.low, .medium, .medium, .high, .low, .medium, .critical, .low]
        return ReviewItemRequest(
            priority: priorities[i % priorities.count],
            content: ReviewContent(
                title: "Support answer #\(i)", query: "Customer \(i % 9973) asks: how long does a refund take for order \(i)?",
                answer: "Refunds are processed within 14 days of receiving the returned item. Order \(i) qualifies.",
                confidence: Double(i % 100) / 100))
    }

    struct Phase {
        var claims: Int
        var rate: Double
        var claim: Latencies
        var submit: Latencies
    }

    /// One reviewer claims the next item and submits it, `count` times, as fast as it can.
    func claimAndSubmit(_ workflow: Workflow, count: Int) async throws -> Phase {
        let reviewer = Actor(ActorID(BenchPolicy.reviewers[0]))
        var claim = Latencies()
        var submit = Latencies()
        let start = ContinuousClock.now
        for _ in 0..<count {
            let t0 = ContinuousClock.now
            guard let item = try await workflow.claimNext(queue: "default", by: reviewer) else { throw BenchError("the queue ran dry") }
            let t1 = ContinuousClock.now
            _ = try await workflow.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: nil, by: reviewer)
            let t2 = ContinuousClock.now
            claim.add(t1 - t0)
            submit.add(t2 - t1)
        }
        return Phase(claims: count, rate: Double(count) / (ContinuousClock.now - start).seconds, claim: claim, submit: submit)
    }
}
