import Foundation
import HandoffChatKit
import HandoffAI

extension SVGChart {
    /// A reliability diagram: raw confidence (x) against the share of answers reviewers accepted (y).
    /// Points are the observed rate per confidence range (area by count), the staircase is the fitted
    /// monotone map, the diagonal is perfect calibration, and vertical lines mark the current and the
    /// proposed thresholds. Every label is escaped.
    static func reliability(title: String, rows: [ReliabilityRow], fit: IsotonicFit, current: Double?, proposed: Double?,
                            emptyText: String = "No judged answers yet") -> String
    {
        guard rows.contains(where: { $0.count > 0 }) else { return empty(title: title, text: emptyText) }
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        func x(_ v: Double) -> Double { left + plotWidth * min(1, max(0, v)) }
        func y(_ v: Double) -> Double { top + plotHeight - plotHeight * min(1, max(0, v)) }
        var body = ""
        for i in 0...4 {
            let v = Double(i) / 4
            body += ##"<text x="\##(number(x(v)))" y="\##(number(height - bottom + 16))" text-anchor="middle" font-size="11" fill="#6b7280">\##(Escaping.html(String(format: "%.2f", v)))</text>"##
        }
        body += ##"<text x="\##(number(left + plotWidth / 2))" y="\##(number(height - 6))" text-anchor="middle" font-size="11" fill="#374151">raw confidence</text>"##
        body += ##"<line x1="\##(number(x(0)))" y1="\##(number(y(0)))" x2="\##(number(x(1)))" y2="\##(number(y(1)))" stroke="#9ca3af" stroke-dasharray="4 4"><title>perfect calibration</title></line>"##
        // The fitted monotone map as a staircase.
        if !fit.blocks.isEmpty {
            var points: [String] = []
            for (i, block) in fit.blocks.enumerated() {
                let start = i == 0 ? 0 : block.lower
                let end = i + 1 < fit.blocks.count ? fit.blocks[i + 1].lower : 1
                points.append("\(number(x(start))),\(number(y(block.value)))")
                points.append("\(number(x(end))),\(number(y(block.value)))")
            }
            body += ##"<polyline fill="none" stroke="\##(palette[0])" stroke-width="2" points="\##(points.joined(separator: " "))"><title>fitted P(acceptable)</title></polyline>"##
        }
        let maxCount = Double(rows.map(\.count).max() ?? 1)
        for row in rows where row.count > 0 {
            guard let c = row.meanConfidence, let rate = row.observedRate else { continue }
            let r = 3 + 7 * sqrt(Double(row.count) / maxCount)
            let label = "\(String(format: "%.2f", row.lower))–\(String(format: "%.2f", row.upper)): \(row.count) answers, claimed \(String(format: "%.2f", c)), accepted \(String(format: "%.0f%%", rate * 100))"
            body += ##"<circle cx="\##(number(x(c)))" cy="\##(number(y(rate)))" r="\##(number(r))" fill="\##(palette[1])" fill-opacity="0.7"><title>\##(Escaping.html(label))</title></circle>"##
        }
        for (value, name, color) in [(current, "current threshold", palette[3]), (proposed, "proposed threshold", palette[2])] {
            guard let value else { continue }
            body += ##"<line x1="\##(number(x(value)))" y1="\##(number(y(0)))" x2="\##(number(x(value)))" y2="\##(number(y(1)))" stroke="\##(color)" stroke-width="2"><title>\##(Escaping.html("\(name) \(String(format: "%.3f", value))"))</title></line>"##
        }
        var legendX = left
        for (name, color, shown) in [("fitted", palette[0], true), ("observed", palette[1], true), ("current", palette[3], current != nil),
                                     ("proposed", palette[2], proposed != nil)] where shown {
            body += ##"<rect x="\##(number(legendX))" y="6" width="10" height="10" fill="\##(color)"/>"##
            body += ##"<text x="\##(number(legendX + 14))" y="15" font-size="12" fill="#111827">\##(Escaping.html(name))</text>"##
            legendX += 24 + Double(name.count) * 7
        }
        return frame(title: title, yMax: 1, yFormat: { String(format: "%.2f", $0) }, body: body, legend: [])
    }
}
