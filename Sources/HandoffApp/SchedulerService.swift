import Foundation
import HandoffCore
import HandoffWorkflow
import Logging
import ServiceLifecycle

/// Fires due timers from the database — approval expiry, lease lapse, SLA and ack timeouts, feedback
/// deadlines — and prunes old event keys. Timers live in the database, so after a restart everything
/// overdue fires at once, exactly once.
package struct SchedulerService: Service {
    package struct Configuration: Sendable {
        /// Longest sleep between rounds (a timer scheduled by another process is seen within this).
        package var interval: Duration = .seconds(1)
        /// Timers fired per round before looking again.
        package var batch: Int = 200
        package var pruneEvery: Duration = .seconds(3600)

        package init() {}
    }

    let workflow: Workflow
    let configuration: Configuration
    let logger: Logger

    package init(workflow: Workflow, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "handoff.scheduler")) {
        self.workflow = workflow
        self.configuration = configuration
        self.logger = logger
    }

    package func run() async throws {
        logger.info("scheduler started")
        var lastPrune = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var fullBatch = false
            var failed = false
            do {
                let fired = try await workflow.fireDueTimers(limit: configuration.batch)
                if fired > 0 { logger.info("fired due timers", metadata: ["count": "\(fired)"]) }
                fullBatch = fired >= configuration.batch
                if ContinuousClock.now - lastPrune >= configuration.pruneEvery {
                    let pruned = try await workflow.pruneEventKeys()
                    if pruned > 0 { logger.debug("pruned event keys", metadata: ["count": "\(pruned)"]) }
                    lastPrune = .now
                }
            } catch {
                failed = true
                logger.error("scheduler round failed; due timers stay due and are tried again", metadata: ["error": "\(error)"])
            }
            if fullBatch { continue }
            // After a failed round the due timers are still due: wait the interval, not 1 ms, before trying again.
            let delay = failed ? configuration.interval : await nextDelay()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                break  // shutting down
            }
        }
        logger.info("scheduler stopped")
    }

    /// Sleeps until the next known timer, but never longer than the interval.
    func nextDelay() async -> Duration {
        guard let next = try? await workflow.nextTimerDue() else { return configuration.interval }
        let seconds = next.timeIntervalSince(workflow.clock.now())
        if seconds <= 0 { return .milliseconds(1) }
        return min(configuration.interval, .milliseconds(Int64(seconds * 1000) + 1))
    }
}
