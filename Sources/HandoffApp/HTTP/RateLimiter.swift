import Synchronization

/// A token bucket per API key: `burst` requests at once, refilled at `requestsPerSecond`.
///
/// Buckets live in memory (a restart forgives everyone); the table is bounded by forgetting full buckets.
package final class RateLimiter: Sendable {
    package struct Configuration: Sendable {
        /// Sustained requests per second per key.
        package var requestsPerSecond: Double = 20
        /// Requests a key may make at once before being slowed down.
        package var burst: Double = 60
        /// Off turns the limit off entirely.
        package var enabled: Bool = true
        /// Keys tracked at most; full buckets are forgotten first.
        package var maxTrackedKeys: Int = 10_000

        package init() {}
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let configuration: Configuration
    private let buckets = Mutex<[String: Bucket]>([:])

    package init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Takes one token for `key`; nil when allowed, else how long until a token is available.
    package func take(_ key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        guard configuration.enabled, configuration.requestsPerSecond > 0 else { return nil }
        let rate = configuration.requestsPerSecond
        let burst = max(1, configuration.burst)
        return buckets.withLock { buckets -> Duration? in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = (now - bucket.updated).seconds
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            defer {
                buckets[key] = bucket
                if buckets.count > configuration.maxTrackedKeys { Self.prune(&buckets, now: now, rate: rate, burst: burst) }
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return .milliseconds(Int64(((1 - bucket.tokens) / rate * 1000).rounded(.up)))
        }
    }

    private static func prune(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant, rate: Double, burst: Double) {
        buckets = buckets.filter { _, b in b.tokens + (now - b.updated).seconds * rate < burst }
    }
}
