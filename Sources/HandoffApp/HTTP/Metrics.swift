import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry. `MetricsSystem.bootstrap` may run only once per process, so it
/// happens here, on first use, and everything (HTTP middleware, outbox counters, our own metrics)
/// shares this registry. Nothing else in the process should bootstrap the metrics system.
package enum HandoffMetrics {
    package static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Makes sure the metrics system is bootstrapped (idempotent) and the webhook series exist from the start.
    package static func bootstrap() {
        _ = registry
        _ = webhookFailures
        for result in ["delivered", "retry", "failed"] { _ = webhookCounter(result: result) }
    }

    /// Buckets for "time to decide", in seconds: 1s … 1d.
    static let decideBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400]

    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "handoff", metricName: metric, unitName: unit, helpText: help)
    }

    static var decisions: MetricNameDescriptor { name("decisions", unit: "total", help: "Decisions made through this process, by kind (approval, review) and outcome") }
    static var timeToDecide: MetricNameDescriptor { name("time_to_decide", unit: "seconds", help: "From creation (approvals) or claim (reviews) to the decision, in seconds") }
    static var webhookDeliveries: MetricNameDescriptor { name("webhook_deliveries", unit: "total", help: "Webhook delivery attempts by result (delivered, retry, failed)") }
    static var queueDepth: MetricNameDescriptor { name("queue_depth", help: "Review items waiting per queue and state") }
    static var slaBreaches: MetricNameDescriptor { name("queue_sla_breaches", help: "Review items that breached their SLA, per queue") }

    static func decisionCounter(kind: String, outcome: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: decisions, labels: [("kind", kind), ("outcome", outcome)])
    }

    static func decideHistogram(kind: String) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: timeToDecide, labels: [("kind", kind)], buckets: decideBuckets)
    }

    static func webhookCounter(result: String) -> Prometheus.Counter {
        registry.makeCounter(descriptor: webhookDeliveries, labels: [("result", result)])
    }

    static let webhookFailures = registry.makeCounter(
        descriptor: name("webhook_failures", unit: "total", help: "Webhook delivery attempts that did not get a 2xx"))

    /// Refreshes the gauges read from the database: queue depth per queue and state, pending approvals,
    /// open escalations. Called on every scrape; each is an indexed count.
    static func refreshGauges(workflow: Workflow) async throws {
        for stats in try await workflow.allQueueCounts() {
            registry.makeGauge(descriptor: queueDepth, labels: [("queue", stats.queue), ("status", "pending")]).set(Double(stats.pending))
            registry.makeGauge(descriptor: queueDepth, labels: [("queue", stats.queue), ("status", "claimed")]).set(Double(stats.claimed))
            registry.makeGauge(descriptor: slaBreaches, labels: [("queue", stats.queue)]).set(Double(stats.slaBreaches))
        }
        let counts = try await workflow.store.dashboardCounts()
        registry.makeGauge(descriptor: name("approvals_pending", help: "Approvals waiting for a decision")).set(Double(counts.pendingApprovals))
        registry.makeGauge(descriptor: name("escalations_open", help: "Escalations open or claimed")).set(Double(counts.openEscalations))
    }
}

/// Counts decisions and observes time to decide as they are committed in this process (API, dashboard,
/// chat, expiry timers). The commit listener only enqueues refs; a task reads the entities, so the
/// commit path never waits on it.
package final class DecisionMetricsRecorder: Sendable {
    private let workflow: Workflow
    private let stream: AsyncStream<[EntityRef]>
    private let continuation: AsyncStream<[EntityRef]>.Continuation
    private let seen = Mutex<(set: Set<String>, order: [String])>((Set(), []))
    private let startedAt: Date

    package init(workflow: Workflow) {
        self.workflow = workflow
        (stream, continuation) = AsyncStream.makeStream(of: [EntityRef].self, bufferingPolicy: .bufferingNewest(10_000))
        startedAt = workflow.clock.now()
    }

    /// Reads committed approvals and review items until ``finish()``.
    package func run() async {
        HandoffMetrics.bootstrap()
        let token = workflow.addListener { [continuation] refs in
            let relevant = refs.filter { $0.kind == .approval || $0.kind == .reviewItem }
            if !relevant.isEmpty { continuation.yield(relevant) }
        }
        defer { workflow.removeListener(token) }
        for await refs in stream {
            for ref in Set(refs) { try? await record(ref) }
        }
    }

    package func finish() { continuation.finish() }

    /// True the first time a key is seen (bounded memory: the oldest keys are forgotten).
    private func firstTime(_ key: String) -> Bool {
        seen.withLock { s in
            guard s.set.insert(key).inserted else { return false }
            s.order.append(key)
            if s.order.count > 20_000 {
                let drop = s.order.prefix(5_000)
                s.set.subtract(drop)
                s.order.removeFirst(5_000)
            }
            return true
        }
    }

    private func record(_ ref: EntityRef) async throws {
        switch ref.kind {
        case .approval:
            guard let approval = try await workflow.store.approval(ApprovalID(ref.id))?.value else { return }
            let outcome: String
            let at: Date
            switch approval.status {
            case .pending: return
            case .approved(let d), .rejected(let d), .needsRevision(let d):
                outcome = approval.status.name
                at = d.at
            case .expired(let when):
                outcome = "expired"
                at = when
            case .cancelled(_, let when, _):
                outcome = "cancelled"
                at = when
            }
            guard at >= startedAt, firstTime("a\(ref.id)") else { return }
            HandoffMetrics.decisionCounter(kind: "approval", outcome: outcome).increment()
            if approval.status.decision != nil {
                HandoffMetrics.decideHistogram(kind: "approval").record(max(0, at.timeIntervalSince(approval.createdAt)))
            }
        case .reviewItem:
            guard let item = try await workflow.store.reviewItem(ReviewItemID(ref.id))?.value else { return }
            for review in item.reviews where review.submittedAt >= startedAt {
                guard firstTime("r\(ref.id):\(review.reviewer)") else { continue }
                HandoffMetrics.decisionCounter(kind: "review", outcome: review.verdict.rawValue).increment()
                HandoffMetrics.decideHistogram(kind: "review").record(review.decideSeconds)
            }
        default:
            return
        }
    }
}
