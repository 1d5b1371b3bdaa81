import Foundation

/// A plain-text table for terminals: columns padded to their widest cell, long cells cut.
struct Table {
    var headers: [String]
    var rows: [[String]] = []
    var maxWidth = 48

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ cells: String...) { rows.append(cells) }
    mutating func add(_ cells: [String]) { rows.append(cells) }

    func render() -> String {
        let clean = rows.map { $0.map { Self.cell($0, maxWidth) } }
        var widths = headers.map(\.count)
        for row in clean { for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var out = [line(headers.map { $0.uppercased() })]
        out += clean.map(line)
        if rows.isEmpty { out.append("(none)") }
        return out.joined(separator: "\n")
    }

    /// One line, control characters removed, cut with an ellipsis.
    static func cell(_ text: String, _ width: Int) -> String {
        let oneLine = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format ? " " : scalar
        }))
        return oneLine.count > width ? String(oneLine.prefix(width - 1)) + "…" : oneLine
    }

    func print() { Swift.print(render()) }
}

/// Key: value lines for one record.
struct Details {
    var lines: [(String, String)] = []

    mutating func add(_ key: String, _ value: String?) {
        guard let value else { return }
        lines.append((key, value))
    }

    func print() {
        let width = lines.map(\.0.count).max() ?? 0
        for (k, v) in lines {
            Swift.print("\(k.padding(toLength: width, withPad: " ", startingAt: 0))  \(v)")
        }
    }
}

enum Format {
    static func date(_ d: Date?) -> String {
        guard let d else { return "-" }
        return d.formatted(.iso8601.year().month().day().dateSeparator(.dash).dateTimeSeparator(.space).time(includingFractionalSeconds: false)
            .timeSeparator(.colon))
    }

    static func seconds(_ s: Double?) -> String {
        guard let s else { return "-" }
        if s < 1 { return String(format: "%.0fms", s * 1000) }
        if s < 120 { return String(format: "%.1fs", s) }
        if s < 7200 { return String(format: "%.1fm", s / 60) }
        if s < 172_800 { return String(format: "%.1fh", s / 3600) }
        return String(format: "%.1fd", s / 86400)
    }

    static func ratio(_ x: Double?) -> String {
        guard let x else { return "-" }
        return String(format: "%.3f", x)
    }
}
