import Foundation
import HandoffAI
import HandoffCore
import HandoffStore
import HandoffWorkflow

/// A route's calibration as `handoff calibrate` prints it and the dashboard draws it: the reliability
/// table, the current threshold's effect, and the proposed threshold.
package struct CalibrationReport: Sendable {
    package var route: Workflow.EffectiveRoute
    /// Only outcomes of this estimator were used (nil: all).
    package var estimator: String?
    /// Outcomes per estimator on this route.
    package var estimators: [(estimator: String, count: Int)]
    package var calibration: Calibration
    package var rows: [ReliabilityRow]
    package var current: ThresholdEvaluation
    package var proposal: ThresholdProposal

    package struct Options: Sendable {
        /// The error rate auto-sent answers may have.
        package var targetError = 0.05
        /// The fewest judged answers that must lie at or above a proposed threshold.
        package var minAutoSent = 20
        /// Rows of the reliability table.
        package var bins = 10
        /// Only outcomes of this estimator (`self_rating`, `self_consistency`, `logprobs`, `caller`).
        package var estimator: String?

        package init() {}
    }

    package static func build(workflow: Workflow, route name: String, options: Options = Options()) async throws -> CalibrationReport {
        guard options.targetError > 0, options.targetError < 1 else { throw WorkflowError.invalid("target", "must be between 0 and 1 (0.05 is 5%)") }
        guard options.bins >= 2, options.bins <= 50 else { throw WorkflowError.invalid("bins", "must be from 2 to 50") }
        let route = try await workflow.effectiveRoute(name)
        let counts = try await workflow.outcomeCounts(route: name, estimator: options.estimator)
        let calibration = Calibration(bins: counts.map { OutcomeBin(confidence: Double($0.bin) / 1000, total: $0.total, acceptable: $0.acceptable) })
        return CalibrationReport(
            route: route, estimator: options.estimator, estimators: try await workflow.store.outcomeEstimators(route: name),
            calibration: calibration, rows: calibration.reliability(binCount: options.bins),
            current: calibration.evaluate(threshold: route.config.threshold),
            proposal: calibration.proposeThreshold(targetError: options.targetError, minAutoSent: options.minAutoSent))
    }

    /// Stores the proposed threshold for the route (it then wins over the policy file).
    package func apply(workflow: Workflow, by actor: ActorID) async throws -> RouteThresholdOverride {
        guard let proposed = proposal.evaluation else {
            throw WorkflowError.wrongState("nothing to apply for route \(route.name): \(proposal.reason)")
        }
        return try await workflow.setRouteThreshold(route.name, threshold: proposed.threshold, targetError: proposal.targetError,
                                                    estimatedError: proposed.estimatedError, outcomes: calibration.total, by: actor)
    }

    /// Where the current threshold comes from, in words.
    package var thresholdSource: String {
        switch route.source {
        case .policy: "policy file"
        case .database(let o): "calibrated \(RichDate.iso(o.appliedAt)) by \(o.appliedBy) (policy file says \(Self.number(route.policyThreshold)))"
        }
    }

    package static func number(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "-" }
    package static func percent(_ x: Double?) -> String { x.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
}

/// ISO 8601 dates for reports.
enum RichDate {
    static func iso(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
    }
}
