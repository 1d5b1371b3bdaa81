import Foundation
import HandoffAI
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// SplitMix64, so synthetic outcomes are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Calibration through the product: answers routed through the API, judged by reviewers, calibrated
/// by `handoff calibrate` (and the dashboard), the threshold applied and used by routing.
@Suite(.serialized) struct AICalibrationTests {
    /// A route in "shadow mode" (threshold 1: every answer is reviewed), so outcomes cover every confidence.
    static let policy = testPolicy.replacingOccurrences(
        of: "routes:\n  default: { threshold: 0.8, queue: default, escalation_floor: 0.2 }",
        with: "routes:\n  default: { threshold: 0.8, queue: default, escalation_floor: 0.2 }\n  \"q&a\": { threshold: 1.0, queue: default }")

    /// The planted truth: the model is underconfident, P(acceptable | c) = logistic(20 (c − 0.6)).
    static func truth(_ c: Double) -> Double { 1 / (1 + exp(-20 * (c - 0.6))) }
    /// The lowest t whose answers at or above it are wrong at most 5% of the time under the truth.
    static let planted = 0.642

    /// Routes `count` answers with raw confidences spread over (0.2, 1) and has reviewers judge them as the truth says.
    static func judgeSyntheticAnswers(_ workflow: Workflow, count: Int, seed: UInt64) async throws {
        var rng = SeededGenerator(state: seed)
        let reviewer = Actor("key:alice")
        for i in 0..<count {
            let c = Double.random(in: 0.2..<1, using: &rng)
            let acceptable = Double.random(in: 0..<1, using: &rng) < truth(c)
            let routed = try await workflow.route("q&a", query: "question \(i)", answer: "answer \(i)", confidence: .score(c), by: "key:erin-bot")
            let item = try #require(routed.reviewItem, "threshold 1 reviews everything")
            _ = try await workflow.claim(item.id, by: reviewer)
            switch (acceptable, i % 2) {
            case (true, _): _ = try await workflow.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: nil, by: reviewer)
            case (false, 0): _ = try await workflow.submit(item.id, verdict: .rejected, feedback: "wrong", correctedAnswer: "fixed answer \(i)", by: reviewer)
            case (false, _): _ = try await workflow.submit(item.id, verdict: .rejected, feedback: "wrong", correctedAnswer: nil, by: reviewer)
            }
        }
    }

    @Test("Synthetic outcomes with a planted miscalibration: calibrate recovers the threshold, --apply makes routing use it, the dashboard draws it")
    func calibrateApplyAndRoute() async throws {
        try await withTestApp(policy: Self.policy) { app in
            let k = try await app.keys()
            try await Self.judgeSyntheticAnswers(app.workflow, count: 800, seed: 42)
            let counts = try await app.workflow.store.outcomeCounts(route: "q&a", estimator: nil)
            #expect(counts.reduce(0) { $0 + $1.total } == 800)
            #expect(try await app.workflow.store.outcomeEstimators(route: "q&a").map(\.estimator) == ["caller"])

            // Before: the policy file's threshold (1.0) sends a 0.7 answer to people.
            let before = try await app.post("/v1/route", key: k.agent, #"{"route":"q&a","query":"q","answer":"a","confidence":0.7}"#)
            #expect(before.json["decision"]?.stringValue == "review")

            // `handoff calibrate "q&a" --apply --json`, the real command on the same database.
            let env = ["HANDOFF_DATABASE": app.directory.file("handoff.sqlite"), "HANDOFF_POLICY": app.directory.file("policy.yaml"),
                       "HANDOFF_AI_PROVIDER": "none"]
            let run = try await runHandoff(["calibrate", "q&a", "--apply", "--json", "--as", "key:admin"], environment: env)
            #expect(run.status == 0, "\(run.stderr)")
            let out = try JSONValue.parse(run.stdout)
            let proposed = try #require(out[member: "proposed"]?[member: "threshold"]?.number)
            #expect(abs(proposed - Self.planted) < 0.06, "planted \(Self.planted), recovered \(proposed)")
            #expect(out[member: "applied"] == .bool(true))
            #expect((out[member: "proposed"]?[member: "estimated_error"]?.number ?? 1) <= 0.05)
            #expect(out[member: "rows"]?.arrayCount == 10)

            // After: the database threshold wins over the policy file; the same answer goes out.
            let stored = try #require(try await app.workflow.store.routeThreshold("q&a"))
            #expect(stored.threshold == proposed && stored.appliedBy == "key:admin")
            let after = try await app.post("/v1/route", key: k.agent, #"{"route":"q&a","query":"q","answer":"a","confidence":0.7}"#)
            #expect(after.json["decision"]?.stringValue == "auto_send")
            let below = try await app.post("/v1/route", key: k.agent, #"{"route":"q&a","query":"q","answer":"a","confidence":\#(proposed - 0.01)}"#)
            #expect(below.json["decision"]?.stringValue == "review")

            // The dashboard's reliability diagram: an SVG plot with the route name escaped.
            var alice = DashboardClient(app: app)
            _ = try await alice.signIn(k.alice)
            let page = try await alice.get("/calibration?route=q%26a")
            #expect(page.status == 200)
            #expect(page.text.contains(#"<svg xmlns="http://www.w3.org/2000/svg" class="chart""#))
            #expect(page.text.contains("Reliability of route q&amp;a"))
            #expect(!page.text.contains("route q&a<"), "labels are escaped")
            #expect(page.text.contains("<circle"), "observed rates are plotted")
            #expect(page.text.contains("calibrated"), "the page says the threshold comes from calibration")
            #expect(page.text.contains(String(format: "%.3f", proposed)))

            // --reset: the policy file's threshold applies again.
            let reset = try await runHandoff(["calibrate", "q&a", "--reset"], environment: env)
            #expect(reset.status == 0 && reset.stdout.contains("policy file's threshold (1.000)"), "\(reset.stdout)\(reset.stderr)")
            #expect(try await app.workflow.store.routeThreshold("q&a") == nil)
        }
    }

    @Test("Outcomes: approved as is is acceptable; corrected and rejected are not; one outcome per item, also with two reviews")
    func outcomeKinds() async throws {
        let policy = Self.policy.replacingOccurrences(of: "\"q&a\": { threshold: 1.0, queue: default }", with: "\"q&a\": { threshold: 1.0, queue: support }")
        try await withTestApp(policy: policy) { app in
            let w = app.workflow
            let carol = Actor("key:carol")
            let alice = Actor("key:alice")
            let routed = try await w.route("q&a", query: "q", answer: "a", confidence: .score(0.55), by: "key:erin-bot")
            let item = try #require(routed.reviewItem)
            _ = try await w.claim(item.id, by: carol)
            _ = try await w.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: nil, by: carol)
            #expect(try await w.store.outcomeCounts(route: "q&a", estimator: nil).isEmpty, "support needs two reviews: not judged yet")
            _ = try await w.claim(item.id, by: alice)
            _ = try await w.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: "a, but better", by: alice)
            #expect(try await w.store.outcomeCounts(route: "q&a", estimator: nil) == [OutcomeCount(bin: 550, total: 1, acceptable: 0)],
                    "a correction by either reviewer makes it not acceptable as it was")
        }
    }

    @Test("A threshold outside 0–1 or for a route that does not exist is refused")
    func thresholdValidation() async throws {
        try await withTestApp(policy: Self.policy) { app in
            await #expect(throws: WorkflowError.self) { try await app.workflow.setRouteThreshold("nope", threshold: 0.5, targetError: nil, estimatedError: nil, outcomes: nil, by: "cli:x") }
            await #expect(throws: WorkflowError.self) { try await app.workflow.setRouteThreshold("q&a", threshold: 1.5, targetError: nil, estimatedError: nil, outcomes: nil, by: "cli:x") }
            let empty = try await CalibrationReport.build(workflow: app.workflow, route: "q&a")
            await #expect(throws: WorkflowError.self) { try await empty.apply(workflow: app.workflow, by: "cli:x") }
        }
    }
}

extension JSONValue {
    subscript(member key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    var arrayCount: Int? {
        if case .array(let a) = self { return a.count }
        return nil
    }
}
