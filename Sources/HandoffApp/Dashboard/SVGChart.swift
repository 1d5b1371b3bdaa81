import Foundation
import HandoffChatKit

/// Small server-side SVG charts for the stats page. Every label is HTML-escaped here, because the
/// markup is inserted into the page as-is.
enum SVGChart {
    struct Series {
        var name: String
        var values: [Double]
    }

    static let palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]

    static let width = 640.0
    static let height = 260.0
    static let left = 48.0
    static let right = 16.0
    static let top = 28.0
    static let bottom = 40.0

    static func number(_ x: Double) -> String {
        String(format: "%.1f", x)
    }

    /// An axis top with four "nice" steps (1, 2, 5 × 10ⁿ); counts get whole-number steps.
    static func axisMax(_ value: Double, integer: Bool = true) -> Double {
        let rawStep = max(value, integer ? 4 : 1e-9) / 4
        let exponent = pow(10, floor(log10(rawStep)))
        for multiple in [1.0, 2.0, 5.0, 10.0] where multiple * exponent >= rawStep {
            let step = multiple * exponent
            return (integer ? max(1, step.rounded(.up)) : step) * 4
        }
        return rawStep * 4
    }

    static func frame(title: String, yMax: Double, yFormat: (Double) -> String, body: String, legend: [Series]) -> String {
        let plotHeight = height - top - bottom
        var out = ##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \##(Int(width)) \##(Int(height))" role="img" aria-label="\##(Escaping.html(title))">"##
        out += "<title>\(Escaping.html(title))</title>"
        for i in 0...4 {
            let y = top + plotHeight - plotHeight * Double(i) / 4
            out += ##"<line x1="\##(number(left))" y1="\##(number(y))" x2="\##(number(width - right))" y2="\##(number(y))" stroke="#e5e7eb"/>"##
            out += ##"<text x="\##(number(left - 6))" y="\##(number(y + 4))" text-anchor="end" font-size="11" fill="#6b7280">\##(Escaping.html(yFormat(yMax * Double(i) / 4)))</text>"##
        }
        out += body
        var x = left
        for (i, series) in legend.enumerated() {
            out += ##"<rect x="\##(number(x))" y="6" width="10" height="10" fill="\##(palette[i % palette.count])"/>"##
            out += ##"<text x="\##(number(x + 14))" y="15" font-size="12" fill="#111827">\##(Escaping.html(series.name))</text>"##
            x += 24 + Double(min(series.name.count, 30)) * 7
        }
        out += "</svg>"
        return out
    }

    /// Lines over shared x labels (e.g. queue depth per hour).
    static func lines(title: String, xLabels: [String], series: [Series], emptyText: String = "No data yet") -> String {
        let points = xLabels.count
        let maxValue = series.flatMap(\.values).max() ?? 0
        guard points >= 2, !series.isEmpty else { return empty(title: title, text: emptyText) }
        let yMax = axisMax(maxValue)
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        func x(_ i: Int) -> Double { left + plotWidth * Double(i) / Double(points - 1) }
        func y(_ v: Double) -> Double { top + plotHeight - plotHeight * min(v, yMax) / yMax }
        var body = ""
        let every = max(1, points / 8)
        for (i, label) in xLabels.enumerated() where i % every == 0 || i == points - 1 {
            body += ##"<text x="\##(number(x(i)))" y="\##(number(height - bottom + 16))" text-anchor="middle" font-size="11" fill="#6b7280">\##(Escaping.html(label))</text>"##
        }
        for (s, serie) in series.enumerated() {
            let path = serie.values.prefix(points).enumerated().map { "\(number(x($0.offset))),\(number(y($0.element)))" }.joined(separator: " ")
            body += ##"<polyline fill="none" stroke="\##(palette[s % palette.count])" stroke-width="2" points="\##(path)"><title>\##(Escaping.html(serie.name))</title></polyline>"##
        }
        return frame(title: title, yMax: yMax, yFormat: { String(Int($0.rounded())) }, body: body, legend: series)
    }

    /// Grouped bars: one group per category, one bar per series (e.g. time-to-decide buckets).
    static func bars(title: String, categories: [String], series: [Series], yMax fixedMax: Double? = nil,
                     yFormat: @escaping (Double) -> String = { String(Int($0.rounded())) },
                     valueFormat: @escaping (Double) -> String = { String(Int($0.rounded())) },
                     emptyText: String = "No data yet") -> String
    {
        let maxValue = series.flatMap(\.values).max() ?? 0
        guard !categories.isEmpty, !series.isEmpty, fixedMax != nil || maxValue > 0 else { return empty(title: title, text: emptyText) }
        let yMax = fixedMax ?? axisMax(maxValue)
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let group = plotWidth / Double(categories.count)
        let barWidth = max(2, (group * 0.8) / Double(series.count))
        var body = ""
        for (c, category) in categories.enumerated() {
            let groupX = left + group * Double(c) + group * 0.1
            for (s, serie) in series.enumerated() {
                let value = c < serie.values.count ? serie.values[c] : 0
                let h = plotHeight * max(0, min(value, yMax)) / yMax
                let bx = groupX + barWidth * Double(s)
                body += ##"<rect x="\##(number(bx))" y="\##(number(top + plotHeight - h))" width="\##(number(barWidth - 1))" height="\##(number(h))" fill="\##(palette[s % palette.count])"><title>\##(Escaping.html("\(serie.name) · \(category): \(valueFormat(value))"))</title></rect>"##
            }
            let label = category.count > 14 ? String(category.prefix(13)) + "…" : category
            body += ##"<text x="\##(number(groupX + group * 0.4))" y="\##(number(height - bottom + 16))" text-anchor="middle" font-size="11" fill="#6b7280">\##(Escaping.html(label))</text>"##
        }
        return frame(title: title, yMax: yMax, yFormat: yFormat, body: body, legend: series)
    }

    static func empty(title: String, text: String) -> String {
        ##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \##(Int(width)) 80" role="img" aria-label="\##(Escaping.html(title))"><title>\##(Escaping.html(title))</title><text x="\##(Int(width / 2))" y="45" text-anchor="middle" font-size="13" fill="#6b7280">\##(Escaping.html(text))</text></svg>"##
    }
}
