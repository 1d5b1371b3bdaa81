import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import Metrics
import ServiceLifecycle

/// What happened to one delivery attempt.
package enum DeliveryResult: Sendable, Equatable {
    case delivered
    /// Try again later: after `after` when the other side said so (Retry-After), else with backoff.
    case retry(after: Duration?, reason: String)
    /// Give up now (a permanent error such as `message_not_found`).
    case failed(reason: String)
}

/// Delivers outbox rows of some kinds: webhooks, chat cards, notices.
package protocol OutboxDeliverer: Sendable {
    var kinds: Set<OutboxKind> { get }
    /// Attempts before a row is marked failed.
    var maxAttempts: Int { get }
    func deliver(_ message: OutboxMessage) async -> DeliveryResult
    /// Called once a row is given up for good (its attempts used, or a permanent failure), to tidy up
    /// what its attempts left behind.
    func gaveUp(on message: OutboxMessage) async
}

extension OutboxDeliverer {
    package func gaveUp(on message: OutboxMessage) async {}
}

/// Delivers the outbox: every side effect a transition produced (cards, edits, webhooks, notices).
///
/// Rows of one entity go in order (the store holds back a row while an earlier one of the same entity
/// waits), and so do card posts to one destination (a channel's cards appear in the order they were
/// asked for, even when a rate limit holds one back); different entities in parallel up to a bound. Failures back off exponentially with jitter,
/// honouring a Retry-After, until the deliverer's attempt limit. A row is marked done only after the
/// deliverer returns, so a crash in between delivers it again (at least once; receivers dedupe by id).
package struct OutboxDispatcher: Service {
    package struct Configuration: Sendable {
        package var pollInterval: Duration = .milliseconds(500)
        package var batch: Int = 200
        package var maxConcurrentEntities: Int = 16
        package var initialBackoff: Duration = .seconds(1)
        package var maxBackoff: Duration = .seconds(3600)
        /// How long a row is held by the process delivering it. The lease is renewed every third of it
        /// while the delivery runs, so a slow delivery keeps its row, and a crash mid-delivery frees the row
        /// soon after (it is then delivered again).
        package var lease: Duration = .seconds(20)

        package init() {}
    }

    let workflow: Workflow
    let deliverers: [any OutboxDeliverer]
    let configuration: Configuration
    let wake: WakeSignal
    let logger: Logger

    package init(workflow: Workflow, deliverers: [any OutboxDeliverer], configuration: Configuration = Configuration(),
                 logger: Logger = Logger(label: "handoff.outbox"))
    {
        self.workflow = workflow
        self.deliverers = deliverers
        self.configuration = configuration
        self.wake = WakeSignal()
        self.logger = logger
    }

    package func run() async throws {
        guard !deliverers.isEmpty else { return }
        let kinds = Set(deliverers.flatMap(\.kinds))
        let token = workflow.addListener { [wake] _ in wake.signal() }
        defer { workflow.removeListener(token) }
        logger.info("outbox dispatcher started", metadata: ["kinds": "\(kinds.map(\.rawValue).sorted())"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var full = false
            do {
                full = try await drainOnce(kinds: kinds)
            } catch {
                logger.error("outbox round failed", metadata: ["error": "\(error)"])
            }
            if full { continue }
            await cancelWhenGracefulShutdownOrNil { await wake.wait(timeout: configuration.pollInterval) }
        }
        logger.info("outbox dispatcher stopped")
    }

    /// Delivers one batch of due rows; true when more may be due at once: the batch was full, or a row
    /// was settled (the rows held back behind it, of its entity or its cards' destination, are due now).
    @discardableResult
    package func drainOnce(kinds: Set<OutboxKind>? = nil) async throws -> Bool {
        let kinds = kinds ?? Set(deliverers.flatMap(\.kinds))
        let due = try await workflow.store.dueOutbox(now: workflow.clock.now(), kinds: kinds, limit: configuration.batch)
        guard !due.isEmpty else { return false }
        // Lanes: an entity's rows in order, and card posts to one destination in order (the posts to a
        // channel appear in the order they were asked for).
        var lanes: [String: [OutboxMessage]] = [:]
        var order: [String] = []
        for message in due {
            let lane = message.kind == .postCard ? "post:\(message.destination ?? "")" : "entity:\(message.entity)"
            if lanes[lane] == nil { order.append(lane) }
            lanes[lane, default: []].append(message)
        }
        let settled = await withTaskGroup(of: Int.self) { group in
            var running = 0
            var delivered = 0
            for lane in order {
                if running >= configuration.maxConcurrentEntities {
                    delivered += await group.next() ?? 0
                    running -= 1
                }
                let messages = lanes[lane] ?? []
                group.addTask { await self.deliverLane(messages) }
                running += 1
            }
            for await count in group { delivered += count }
            return delivered
        }
        return due.count >= configuration.batch || settled > 0
    }

    /// One lane's rows, in order; stops at the first that is not delivered so later ones wait for it.
    /// Returns how many were settled (delivered, or given up for good).
    @discardableResult
    func deliverLane(_ messages: [OutboxMessage]) async -> Int {
        var delivered = 0
        for message in messages {
            guard let deliverer = deliverers.first(where: { $0.kinds.contains(message.kind) }) else { return delivered }
            // Another process (a second `serve` on the same database) may have taken it: leave it to them.
            let now = workflow.clock.now()
            guard (try? await workflow.store.claimOutbox(message.id, until: now.addingTimeInterval(configuration.lease.seconds), now: now))
                == true
            else { return delivered }
            let result = await withLeaseRenewed(message.id) { await deliverer.deliver(message) }
            Counter(label: "handoff_outbox_deliveries_total",
                    dimensions: [("kind", message.kind.rawValue), ("result", result.metricName)]).increment()
            do {
                switch result {
                case .delivered:
                    try await workflow.store.markOutboxDone(message.id)
                    delivered += 1
                case .retry(let after, let reason):
                    if message.attempts + 1 >= deliverer.maxAttempts {
                        try await workflow.store.markOutboxFailed(message.id, error: "gave up after \(message.attempts + 1) attempts: \(reason)")
                        logger.warning("outbox delivery gave up", metadata: ["id": "\(message.id)", "kind": "\(message.kind.rawValue)", "reason": "\(reason)"])
                        await deliverer.gaveUp(on: message)
                        delivered += 1  // settled: what waited behind it may go
                        continue
                    }
                    let delay = after ?? backoff(attempt: message.attempts)
                    let at = workflow.clock.now().addingTimeInterval(delay.seconds)
                    try await workflow.store.markOutboxRetry(message.id, at: at, error: reason)
                    logger.debug("outbox delivery will retry", metadata: ["id": "\(message.id)", "in": "\(delay)", "reason": "\(reason)"])
                    return delivered
                case .failed(let reason):
                    try await workflow.store.markOutboxFailed(message.id, error: reason)
                    logger.warning("outbox delivery failed", metadata: ["id": "\(message.id)", "kind": "\(message.kind.rawValue)", "reason": "\(reason)"])
                    await deliverer.gaveUp(on: message)
                    delivered += 1  // settled: what waited behind it may go
                }
            } catch {
                logger.error("could not record an outbox result", metadata: ["id": "\(message.id)", "error": "\(error)"])
                return delivered
            }
        }
        return delivered
    }

    /// Runs a delivery while renewing the row's lease every third of the lease (best effort: a failed
    /// renewal means at worst that another process delivers the row too, which receivers dedupe).
    func withLeaseRenewed(_ id: Int64, _ body: @Sendable () async -> DeliveryResult) async -> DeliveryResult {
        await withTaskGroup(of: DeliveryResult?.self) { group in
            group.addTask {
                let every = configuration.lease / 3
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: every)
                    } catch {
                        return nil
                    }
                    let until = workflow.clock.now().addingTimeInterval(configuration.lease.seconds)
                    do {
                        try await workflow.store.renewOutboxLease(id, until: until)
                    } catch {
                        logger.warning("could not renew an outbox lease", metadata: ["id": "\(id)", "error": "\(error)"])
                    }
                }
                return nil
            }
            let result = await body()
            group.cancelAll()
            return result
        }
    }

    /// Exponential backoff with full jitter in [½·d, d], capped.
    func backoff(attempt: Int) -> Duration {
        let base = configuration.initialBackoff.seconds * pow(2, Double(min(attempt, 30)))
        let capped = min(base, configuration.maxBackoff.seconds)
        return .milliseconds(Int64(capped * Double.random(in: 0.5...1.0) * 1000))
    }
}

extension DeliveryResult {
    var metricName: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "retry"
        case .failed: "failed"
        }
    }
}


/// Runs `body`, cancelling it when graceful shutdown starts; returns normally either way.
func cancelWhenGracefulShutdownOrNil(_ body: @escaping @Sendable () async -> Void) async {
    await cancelWhenGracefulShutdown { await body() }
}
