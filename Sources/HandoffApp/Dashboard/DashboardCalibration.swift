import Foundation
import HandoffAI
import HandoffCore
import HandoffWorkflow
import Hummingbird

/// The calibration page: per route, the reliability diagram (raw confidence against what reviewers
/// accepted), the reliability table, and the threshold calibration proposes. Read-only: applying a
/// threshold is `handoff calibrate ROUTE --apply`.
extension Dashboard {
    func registerCalibration(_ router: HTTPRouter) {
        page(router, "/calibration") { request, _, viewer in
            try await calibration(route: request.query("route"), target: request.query("target"), viewer)
        }
    }

    func calibration(route requested: String?, target: String?, _ viewer: Viewer) async throws -> Response {
        let configured = Set(workflow.policy.routes.keys)
        let routes = configured.union(try await workflow.store.outcomeRoutes().filter { configured.contains($0) }).sorted()
        let route = requested?.nilIfBlank ?? (routes.contains("default") ? "default" : routes.first ?? "default")
        var options = CalibrationReport.Options()
        if let target, let value = Double(target.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: "")) {
            options.targetError = value >= 1 ? value / 100 : value
        }
        let report = try await CalibrationReport.build(workflow: workflow, route: route, options: options)
        let proposed = report.proposal.evaluation
        let rows: [[String: Any]] = report.rows.map { row in
            [
                "range": "\(String(format: "%.1f", row.lower))–\(String(format: "%.1f", row.upper))",
                "count": row.count,
                "claimed": CalibrationReport.number(row.meanConfidence),
                "observed": CalibrationReport.percent(row.observedRate),
                "fitted": CalibrationReport.percent(row.fittedRate),
            ]
        }
        var values: [String: Any] = [
            "title": "Calibration",
            "route": route,
            "routes": routes.map { ["name": $0, "current": $0 == route] as [String: Any] },
            "chart": SVGChart.reliability(title: "Reliability of route \(route)", rows: report.rows, fit: report.calibration.fit,
                                          current: report.route.config.threshold, proposed: proposed?.threshold),
            "rows": rows,
            "outcomes": report.calibration.total,
            "acceptable": report.calibration.acceptable,
            "threshold": CalibrationReport.number(report.route.config.threshold),
            "threshold_source": report.thresholdSource,
            "current_error": CalibrationReport.percent(report.current.estimatedError),
            "current_humans": CalibrationReport.percent(report.current.humanShare),
            "target": CalibrationReport.percent(report.proposal.targetError),
            "reason": report.proposal.reason,
        ]
        if !report.estimators.isEmpty {
            values["estimators"] = report.estimators.map { "\($0.estimator): \($0.count)" }.joined(separator: ", ")
        }
        if let proposed {
            values["proposed"] = [
                "threshold": CalibrationReport.number(proposed.threshold),
                "error": CalibrationReport.percent(proposed.estimatedError),
                "upper": CalibrationReport.percent(proposed.errorUpperBound),
                "humans": CalibrationReport.percent(proposed.humanShare),
            ]
        }
        return render("calibration", values, viewer: viewer)
    }
}
