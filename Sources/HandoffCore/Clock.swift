import Foundation

/// The only source of "now" in the core. Production uses ``SystemClock``; tests use a manual clock.
package protocol WorkflowClock: Sendable {
    func now() -> Date
}

/// Wall-clock time, truncated to whole milliseconds so values survive a round trip through the store.
package struct SystemClock: WorkflowClock {
    package init() {}
    package func now() -> Date { Date().truncatedToMilliseconds }
}

extension Date {
    /// Milliseconds since 1970, the unit the store keeps.
    package var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }

    package init(millisecondsSince1970 ms: Int64) {
        self.init(timeIntervalSince1970: Double(ms) / 1000)
    }

    package var truncatedToMilliseconds: Date { Date(millisecondsSince1970: millisecondsSince1970) }
}

/// A span of time in whole seconds as people write it in policy files: `90`, `"90s"`, `"15m"`, `"4h"`,
/// `"2d"`, `"1h30m"`.
package struct Span: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    package var seconds: TimeInterval

    package init(seconds: TimeInterval) { self.seconds = seconds }
    package init(integerLiteral value: Int) { self.seconds = TimeInterval(value) }
    package static func minutes(_ m: Double) -> Span { Span(seconds: m * 60) }
    package static func hours(_ h: Double) -> Span { Span(seconds: h * 3600) }

    /// The longest span accepted, about a century: anything longer (or "inf") is a mistake, and would
    /// overflow the millisecond times the store keeps.
    package static let maximumSeconds: TimeInterval = 100 * 365 * 86_400

    /// Parses "90", "90s", "15m", "4h", "2d", "1h30m". Returns nil for anything else.
    package init?(parsing text: String) {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let plain = Double(s), plain >= 0 {
            guard plain <= Self.maximumSeconds else { return nil }
            self.seconds = plain
            return
        }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for ch in s {
            if ch.isNumber || ch == "." {
                number.append(ch)
                continue
            }
            let unit: Double
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 604800
            default: return nil
            }
            guard let value = Double(number) else { return nil }
            total += value * unit
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty, total <= Self.maximumSeconds else { return nil }
        self.seconds = total
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Text first: it is how a span is stored (every approval row carries its policy's), and a failed
        // try costs a DecodingError, message and coding path included.
        guard let text = try? container.decode(String.self) else {
            let number = try container.decode(Double.self)
            guard number >= 0, number <= Self.maximumSeconds else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "a duration must be between 0 seconds and 100 years, not \(number)")
            }
            self.seconds = number
            return
        }
        guard let span = Span(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "'\(text)' is not a duration; write seconds (90) or 90s, 15m, 4h, 2d")
        }
        self = span
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    package var description: String {
        var rest = Int(seconds.rounded())
        if rest == 0 { return "0s" }
        var parts: [String] = []
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            parts.append("\(rest / size)\(unit)")
            rest %= size
        }
        return parts.joined()
    }
}

extension Date {
    package static func + (lhs: Date, rhs: Span) -> Date { lhs.addingTimeInterval(rhs.seconds) }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    package var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
