import HandoffCore
import Foundation

/// The Socket Mode connection lifecycle as a pure state machine (like async-http-client's
/// `Transaction.StateMachine`): one `mutating func` per input, returning the actions its owner performs.
///
/// Rules (chat-protocols.md §1.2–1.3, §5):
/// - every connection gets a fresh URL from `apps.connections.open`; it counts as connected only after `hello`;
/// - `disconnect` `warning`/`refresh_requested` → open a replacement, wait for its `hello`, then close the
///   old one (make before break); the old one keeps working until then;
/// - `link_disabled` and fatal auth errors stop for good; `too_many_websockets` backs off without opening more;
/// - anything else reconnects with exponential backoff and jitter, reset once a connection stayed healthy.
package struct SocketModeStateMachine: Sendable {
    package typealias ConnectionID = Int

    package struct Configuration: Sendable {
        package var initialBackoff: Duration = .seconds(1)
        package var maxBackoff: Duration = .seconds(60)
        /// The least wait after `too_many_websockets` (jitter adds up to as much again).
        package var tooManyWebsocketsBackoff: Duration = .seconds(30)
        /// A connection that lived this long resets the backoff when it drops.
        package var healthyAfter: Duration = .seconds(30)

        package init() {}
    }

    package enum StopReason: Hashable, Sendable, CustomStringConvertible {
        case shutdown
        case linkDisabled
        case fatal(String)

        package var description: String {
            switch self {
            case .shutdown: "shut down"
            case .linkDisabled: "Socket Mode is disabled for this Slack app (disconnect reason link_disabled); enable Socket Mode in the app settings and restart"
            case .fatal(let why): "Slack refused the app token (\(why)); check SLACK_APP_TOKEN (an xapp- token with connections:write) and restart"
            }
        }
    }

    package enum Status: Hashable, Sendable {
        case starting
        case connected
        case reconnecting
        case stopped(StopReason)
    }

    /// Why fetching a socket URL failed.
    package enum FetchFailure: Hashable, Sendable {
        case fatal(String)
        case rateLimited(Duration)
        case transient(String)
    }

    package enum Action: Hashable, Sendable {
        /// Call `apps.connections.open`, then feed `urlFetched` or `urlFetchFailed`.
        case fetchURL
        /// Open a socket to the URL; feed `hello`, `disconnectFrame` and `socketClosed` for it.
        case connect(ConnectionID, url: String)
        /// Close this socket (normal closure), letting in-flight acks finish.
        case close(ConnectionID)
        /// Wait, then feed `retryTimerFired`.
        case retry(after: Duration)
        /// This connection is live now.
        case connected(ConnectionID)
        /// Close every socket and stop; log the reason.
        case stop(StopReason)
    }

    package let configuration: Configuration
    private let jitter: @Sendable () -> Double
    private var primary: ConnectionID?
    private var pending: ConnectionID?
    private var fetching = false
    private var waitingRetry = false
    private var failures = 0
    private var nextID: ConnectionID = 1
    private var stopped: StopReason?
    private var closing: Set<ConnectionID> = []
    private var connectedAt: [ConnectionID: ContinuousClock.Instant] = [:]
    private var everConnected = false
    /// A `disconnect` warning asked for a replacement of the live socket that has not said `hello` yet.
    private var needsReplacement = false

    /// - Parameter jitter: a factor in [0.5, 1] applied to each backoff (random in production).
    package init(configuration: Configuration = Configuration(), jitter: @escaping @Sendable () -> Double = { Double.random(in: 0.5...1) }) {
        self.configuration = configuration
        self.jitter = jitter
    }

    package var status: Status {
        if let stopped { return .stopped(stopped) }
        if primary != nil { return .connected }
        return everConnected || failures > 0 ? .reconnecting : .starting
    }

    /// The live connection, if any.
    package var liveConnection: ConnectionID? { primary }

    package mutating func start() -> [Action] {
        guard stopped == nil, !fetching, pending == nil, primary == nil else { return [] }
        fetching = true
        return [.fetchURL]
    }

    package mutating func urlFetched(_ url: String) -> [Action] {
        fetching = false
        guard stopped == nil else { return [] }
        let id = nextID
        nextID += 1
        pending = id
        return [.connect(id, url: url)]
    }

    package mutating func urlFetchFailed(_ failure: FetchFailure) -> [Action] {
        fetching = false
        guard stopped == nil else { return [] }
        switch failure {
        case .fatal(let why):
            return stop(.fatal(why))
        case .rateLimited(let after):
            failures += 1
            return scheduleRetry(max(after, backoff()))
        case .transient:
            failures += 1
            return scheduleRetry(backoff())
        }
    }

    package mutating func hello(_ id: ConnectionID, at now: ContinuousClock.Instant = .now) -> [Action] {
        guard stopped == nil, id == pending else { return [] }
        pending = nil
        connectedAt[id] = now
        everConnected = true
        needsReplacement = false
        var actions: [Action] = [.connected(id)]
        if let old = primary {
            closing.insert(old)
            actions.append(.close(old))
        }
        primary = id
        return actions
    }

    package mutating func disconnectFrame(_ id: ConnectionID, reason: String) -> [Action] {
        guard stopped == nil, !closing.contains(id) else { return [] }
        switch reason {
        case "link_disabled":
            return stop(.linkDisabled)
        case "too_many_websockets":
            closing.insert(id)
            if primary == id { primary = nil }
            if pending == id { pending = nil }
            failures += 1
            var actions: [Action] = [.close(id)]
            if !waitingRetry && !fetching && pending == nil && primary == nil {
                // At least the configured pause, plus jitter, so replicas do not stampede back together.
                let pause = Duration.milliseconds(Int64(configuration.tooManyWebsocketsBackoff.seconds * (1 + jitter()) * 1000))
                actions += scheduleRetry(max(pause, backoff()))
            }
            return actions
        default:
            // warning, refresh_requested, and reasons Slack may add: replace this socket, make before break.
            guard id == primary else { return [] }
            needsReplacement = true
            guard pending == nil, !fetching, !waitingRetry else { return [] }
            fetching = true
            return [.fetchURL]
        }
    }

    package mutating func socketClosed(_ id: ConnectionID, at now: ContinuousClock.Instant = .now) -> [Action] {
        let lived = connectedAt.removeValue(forKey: id).map { now - $0 }
        if closing.remove(id) != nil { return [] }
        guard stopped == nil else { return [] }
        if id == pending {
            pending = nil
            failures += 1
            return waitingRetry || fetching ? [] : scheduleRetry(backoff())
        }
        guard id == primary else { return [] }
        primary = nil
        needsReplacement = false
        if pending != nil || fetching || waitingRetry { return [] }
        if let lived, lived >= configuration.healthyAfter {
            failures = 0
            fetching = true
            return [.fetchURL]
        }
        failures += 1
        return scheduleRetry(backoff())
    }

    /// The socket opened but sent no `hello` in time.
    package mutating func helloTimedOut(_ id: ConnectionID) -> [Action] {
        guard stopped == nil, id == pending else { return [] }
        pending = nil
        closing.insert(id)
        failures += 1
        return [.close(id)] + (waitingRetry || fetching ? [] : scheduleRetry(backoff()))
    }

    package mutating func retryTimerFired() -> [Action] {
        waitingRetry = false
        guard stopped == nil, pending == nil, !fetching, primary == nil || needsReplacement else { return [] }
        fetching = true
        return [.fetchURL]
    }

    package mutating func shutdown() -> [Action] {
        guard stopped == nil else { return [] }
        return stop(.shutdown)
    }

    // MARK: -


    private mutating func stop(_ reason: StopReason) -> [Action] {
        stopped = reason
        fetching = false
        waitingRetry = false
        return [.stop(reason)]
    }

    private mutating func scheduleRetry(_ after: Duration) -> [Action] {
        waitingRetry = true
        return [.retry(after: after)]
    }

    /// Exponential backoff for the current failure count, capped, with jitter.
    private func backoff() -> Duration {
        let exponent = Double(max(0, min(failures - 1, 20)))
        let base = min(configuration.initialBackoff.seconds * pow(2, exponent), configuration.maxBackoff.seconds)
        return .milliseconds(Int64(base * jitter() * 1000))
    }
}

