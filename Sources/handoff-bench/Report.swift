import Foundation
import Synchronization

/// What one scenario measured: a table for people, metrics for `--json`, and the targets it checks.
struct ScenarioReport: Codable, Sendable {
    var name: String
    var title: String
    var columns: [String]
    var rows: [[String]]
    /// Machine-readable numbers (seconds, per-second rates, bytes, ratios), for `--json`.
    var metrics: [String: Double] = [:]
    var targets: [TargetCheck] = []
    var notes: [String] = []
    /// Further tables (a breakdown, a profile), printed after the main one.
    var sections: [Section] = []

    struct Section: Codable, Sendable {
        var title: String
        var columns: [String]
        var rows: [[String]]
    }

    init(name: String, title: String, columns: [String]) {
        self.name = name
        self.title = title
        self.columns = columns
        self.rows = []
    }

    mutating func row(_ cells: String...) { rows.append(cells) }

    /// Checks a measured value against a target and remembers the outcome.
    mutating func target(_ what: String, _ value: Double, _ comparison: TargetCheck.Comparison, _ limit: Double, unit: String) {
        targets.append(TargetCheck(target: what, value: value, comparison: comparison, limit: limit, unit: unit))
    }

    func printed() -> String {
        var out = "\n## \(title)\n\n"
        out += TextTable(columns: columns, rows: rows).rendered
        for section in sections {
            out += "\n\(section.title)\n\n" + TextTable(columns: section.columns, rows: section.rows).rendered
        }
        for note in notes { out += "\n  note: \(note)" }
        if !notes.isEmpty { out += "\n" }
        for t in targets { out += "\n  target: \(t.line)" }
        if !targets.isEmpty { out += "\n" }
        return out
    }
}

struct TargetCheck: Codable, Sendable {
    enum Comparison: String, Codable, Sendable {
        case atMost = "<="
        case atLeast = ">="
    }

    var target: String
    var value: Double
    var comparison: Comparison
    var limit: Double
    var unit: String
    var met: Bool

    init(target: String, value: Double, comparison: Comparison, limit: Double, unit: String) {
        self.target = target
        self.value = value
        self.comparison = comparison
        self.limit = limit
        self.unit = unit
        met = comparison == .atMost ? value <= limit : value >= limit
    }

    var line: String {
        "\(met ? "met   " : "MISSED") \(target): \(Format.number(value)) \(unit) (target \(comparison.rawValue) \(Format.number(limit)) \(unit))"
    }
}

/// A plain-text table with right-aligned numbers.
struct TextTable {
    var columns: [String]
    var rows: [[String]]

    var rendered: String {
        var widths = columns.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return i == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var out = line(columns) + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += line(row + Array(repeating: "", count: max(0, columns.count - row.count))) + "\n" }
        return out
    }
}

enum Format {
    /// 1234567 → "1,234,567"; 12.345 → "12.3"; 0.1234 → "0.123".
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        if abs(v) >= 1000 { return grouped(Int(v.rounded())) }
        if abs(v) >= 100 { return String(format: "%.0f", v) }
        if abs(v) >= 10 { return String(format: "%.1f", v) }
        if abs(v) >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3f", v)
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// Seconds as milliseconds with sensible precision: "0.412 ms", "12.3 ms", "1,204 ms".
    static func ms(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        return number(seconds * 1000) + " ms"
    }

    static func rate(_ perSecond: Double) -> String { number(perSecond) + "/s" }

    static func bytes(_ n: Int) -> String {
        let mib = Double(n) / 1_048_576
        return String(format: "%.1f MiB", mib)
    }

    static func seconds(_ s: Double) -> String { String(format: "%.2f s", s) }
}

/// Latencies in seconds, summarized by nearest-rank percentiles.
struct Latencies: Sendable {
    private(set) var samples: [Double] = []

    init() {}

    init(_ samples: [Double]) { self.samples = samples }

    mutating func add(_ seconds: Double) { samples.append(seconds) }
    mutating func add(_ duration: Duration) { samples.append(duration.seconds) }

    var count: Int { samples.count }

    func percentile(_ p: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let rank = Swift.max(1, Int((p * Double(sorted.count)).rounded(.up)))
        return sorted[Swift.min(sorted.count, rank) - 1]
    }

    var p50: Double? { percentile(0.50) }
    var p99: Double? { percentile(0.99) }
    var max: Double? { samples.max(by: <) }
    var mean: Double? { samples.isEmpty ? nil : samples.reduce(0, +) / Double(samples.count) }

    /// `prefix_p50`, `prefix_p99`, `prefix_max` in seconds, for JSON.
    func metrics(_ prefix: String) -> [String: Double] {
        var m: [String: Double] = [:]
        if let p50 { m[prefix + "_p50_s"] = p50 }
        if let p99 { m[prefix + "_p99_s"] = p99 }
        if let max { m[prefix + "_max_s"] = max }
        return m
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

/// Collects latencies from many tasks at once.
final class LatencyBox: Sendable {
    private let state = Mutex(Latencies())

    func add(_ duration: Duration) { state.withLock { $0.add(duration) } }
    var value: Latencies { state.withLock { $0 } }
}

/// A shared counter for worker tasks taking turns.
final class Counter: Sendable {
    private let value: Atomic<Int>

    init(_ start: Int = 0) { value = Atomic(start) }

    /// The value before adding one.
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
    var current: Int { value.load(ordering: .relaxed) }
}

/// Writes to stdout at once (a pipe would otherwise buffer a whole run's output).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// A line on stderr (progress, set-up notes), out of the way of the tables on stdout.
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
