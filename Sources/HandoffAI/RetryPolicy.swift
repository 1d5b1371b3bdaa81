import Foundation

/// When and how long to wait before trying a provider call again.
///
/// Exponential backoff (`initialBackoff × multiplier^(attempt-1)`, capped at `maxBackoff`, with optional
/// jitter) unless the provider said how long to wait: a `retry-after` (seconds or an HTTP date) or
/// `retry-after-ms` header is honored as given, up to `maxRetryAfter`. A provider that asks for longer
/// than that is not waited for: the call fails at once with its reason.
package struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    package var maxAttempts: Int = 4
    package var initialBackoff: Duration = .milliseconds(500)
    package var multiplier: Double = 2
    package var maxBackoff: Duration = .seconds(20)
    /// The longest `retry-after` honored; a longer one fails the call instead of blocking the answer.
    package var maxRetryAfter: Duration = .seconds(60)
    /// ± this fraction of random spread on computed backoffs (never on `retry-after`).
    package var jitter: Double = 0.2
    /// How a wait happens; tests inject one that records the waits instead of sleeping.
    package var sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }

    package init() {}

    /// The wait before attempt `attempt + 1` after attempt `attempt` failed; `retryAfter` is what the
    /// provider asked for. Nil when the provider asked for more than ``maxRetryAfter``.
    package func delay(afterAttempt attempt: Int, retryAfter: Duration?, random: Double = Double.random(in: -1...1)) -> Duration? {
        if let retryAfter {
            return retryAfter <= maxRetryAfter ? max(retryAfter, .zero) : nil
        }
        let base = initialBackoff.seconds * pow(multiplier, Double(max(0, attempt - 1)))
        let capped = min(base, maxBackoff.seconds)
        let spread = capped * jitter * max(-1, min(1, random))
        return .milliseconds(Int64(((capped + spread) * 1000).rounded()))
    }

    /// Reads `retry-after-ms`, then `retry-after` (delta-seconds or an HTTP date relative to `now`).
    package static func retryAfter(headers: [(name: String, value: String)], now: Date = Date()) -> Duration? {
        func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value.trimmingCharacters(in: .whitespaces)
        }
        if let ms = header("retry-after-ms").flatMap(Double.init), ms >= 0, ms.isFinite {
            return .milliseconds(Int64(ms.rounded(.up)))
        }
        guard let value = header("retry-after") else { return nil }
        if let seconds = Double(value), seconds >= 0, seconds.isFinite { return .milliseconds(Int64((seconds * 1000).rounded(.up))) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = formatter.date(from: value) {
            return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
        }
        return nil
    }
}

