import Foundation
import HandoffChatKit
import HandoffCore
import HummingbirdWSClient
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The Socket Mode connection as a `Service`: fetches a fresh URL for every socket, counts as
/// connected after `hello`, replaces sockets make-before-break, and acks every envelope once the
/// event is durable at the ``InboundSink`` — fast (the work happens after the ack), and never before
/// it is durable, so an acked event is never lost. Lifecycle decisions live in
/// ``SocketModeStateMachine``; this type only performs its actions.
package final class SlackSocketModeClient: Service, Sendable {
    package struct Configuration: Sendable {
        package var appToken: Secret
        package var lifecycle = SocketModeStateMachine.Configuration()
        /// Socket Mode payloads can exceed WSClient's 16 KiB default, which closes the socket silently.
        package var maxFrameSize = 4 << 20
        /// Client pings; a socket that does not answer before the next ping is closed and replaced.
        package var pingInterval: Duration = .seconds(10)
        /// A socket that sends no `hello` within this is given up.
        package var helloTimeout: Duration = .seconds(10)
        /// How long a slash command may take to produce the reply that goes in the ack (Slack allows 3 s).
        package var replyDeadline: Duration = .milliseconds(2200)
        /// Envelopes processed at once per socket (reading pauses beyond it).
        package var maxConcurrentEnvelopes = 64
        package var closeTimeout: Duration = .seconds(5)

        package init(appToken: Secret) { self.appToken = appToken }
    }

    let api: SlackWebAPIClient
    let sink: any InboundSink
    let configuration: Configuration
    let logger: Logger
    private let state = Mutex(SocketModeStateMachine.Status.starting)
    private let accepting = Atomic<Bool>(true)
    private let helloCount = Atomic<Int>(0)

    package init(api: SlackWebAPIClient, sink: any InboundSink, configuration: Configuration,
                 logger: Logger = Logger(label: "handoff.slack.socket"))
    {
        self.api = api
        self.sink = sink
        self.configuration = configuration
        self.logger = logger
    }

    /// Where the connection stands (for health checks and tests).
    package var status: SocketModeStateMachine.Status { state.withLock { $0 } }

    /// How many sockets have said `hello` so far.
    package var connectionsMade: Int { helloCount.load(ordering: .relaxed) }

    private enum Input: Sendable {
        case urlFetched(String)
        case fetchFailed(SocketModeStateMachine.FetchFailure)
        case hello(SocketModeStateMachine.ConnectionID)
        case disconnect(SocketModeStateMachine.ConnectionID, reason: String)
        case closed(SocketModeStateMachine.ConnectionID)
        case helloTimeout(SocketModeStateMachine.ConnectionID)
        case retryTimer
        case shutdown
    }

    package func run() async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        var machine = SocketModeStateMachine(configuration: configuration.lifecycle)
        var sockets: [SocketModeStateMachine.ConnectionID: CloseSignal] = [:]
        var stopReason: SocketModeStateMachine.StopReason?
        logger.info("Slack Socket Mode starting")
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Graceful shutdown (SIGTERM) or cancellation: stop taking events, close the sockets.
                try? await gracefulShutdown()
                input.yield(.shutdown)
            }
            func perform(_ actions: [SocketModeStateMachine.Action]) {
                for action in actions {
                    switch action {
                    case .fetchURL:
                        group.addTask {
                            do {
                                input.yield(.urlFetched(try await self.api.openConnection(appToken: self.configuration.appToken)))
                            } catch {
                                input.yield(.fetchFailed(Self.classify(error)))
                            }
                        }
                    case .connect(let id, let url):
                        let signal = CloseSignal()
                        sockets[id] = signal
                        group.addTask {
                            await self.runSocket(id: id, url: url, signal: signal, input: input)
                            input.yield(.closed(id))
                        }
                        group.addTask {
                            try? await Task.sleep(for: self.configuration.helloTimeout)
                            input.yield(.helloTimeout(id))
                        }
                    case .close(let id):
                        sockets[id]?.request()
                    case .retry(let after):
                        logger.info("Slack Socket Mode reconnecting", metadata: ["in": "\(after)"])
                        group.addTask {
                            try? await Task.sleep(for: after)
                            input.yield(.retryTimer)
                        }
                    case .connected(let id):
                        helloCount.add(1, ordering: .relaxed)
                        logger.info("Slack Socket Mode connected", metadata: ["socket": "\(id)"])
                    case .stop(let reason):
                        stopReason = reason
                        accepting.store(false, ordering: .relaxed)
                        if reason != .shutdown {
                            logger.error("Slack Socket Mode stopped: \(reason)")
                        }
                        for signal in sockets.values { signal.request() }
                    }
                }
            }
            perform(machine.start())
            state.withLock { $0 = machine.status }
            for await event in inputs {
                let actions: [SocketModeStateMachine.Action]
                switch event {
                case .urlFetched(let url): actions = machine.urlFetched(url)
                case .fetchFailed(let failure):
                    logger.warning("apps.connections.open failed", metadata: ["failure": "\(failure)"])
                    actions = machine.urlFetchFailed(failure)
                case .hello(let id): actions = machine.hello(id)
                case .disconnect(let id, let reason):
                    logger.info("Slack asked to disconnect", metadata: ["socket": "\(id)", "reason": "\(reason)"])
                    actions = machine.disconnectFrame(id, reason: reason)
                case .closed(let id):
                    sockets[id] = nil
                    actions = machine.socketClosed(id)
                case .helloTimeout(let id): actions = machine.helloTimedOut(id)
                case .retryTimer: actions = machine.retryTimerFired()
                case .shutdown: actions = machine.shutdown()
                }
                perform(actions)
                state.withLock { $0 = machine.status }
                if stopReason != nil && sockets.isEmpty { break }
            }
            group.cancelAll()
        }
        if let stopReason, stopReason != .shutdown {
            // Stay down (reporting unhealthy) instead of reconnecting in a loop; the rest of the service runs on.
            try? await gracefulShutdown()
        }
        logger.info("Slack Socket Mode stopped")
    }

    static func classify(_ error: any Error) -> SocketModeStateMachine.FetchFailure {
        guard let error = error as? SlackAPIError else { return .transient("\(error)") }
        if case .rateLimited(let after) = error.code { return .rateLimited(after) }
        if error.isFatal { return .fatal(error.apiError ?? error.description) }
        return .transient(error.description)
    }

    private func runSocket(id: Int, url: String, signal: CloseSignal, input: AsyncStream<Input>.Continuation) async {
        let wsConfiguration = WebSocketClientConfiguration(
            maxFrameSize: configuration.maxFrameSize, closeTimeout: configuration.closeTimeout,
            autoPing: .enabled(timePeriod: configuration.pingInterval))
        let limiter = ConcurrencyLimit(configuration.maxConcurrentEnvelopes)
        do {
            try await WebSocketClient.connect(url: url, configuration: wsConfiguration, logger: logger) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { watchers in
                    watchers.addTask {
                        guard await signal.wait() else { return }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    try await withThrowingDiscardingTaskGroup { envelopes in
                        for try await message in inbound.messages(maxSize: self.configuration.maxFrameSize) {
                            guard case .text(let text) = message else { continue }
                            switch SocketFrame.parse(text) {
                            case .hello:
                                input.yield(.hello(id))
                            case .disconnect(let reason):
                                input.yield(.disconnect(id, reason: reason))
                            case .envelope(let envelope):
                                await limiter.acquire()
                                envelopes.addTask {
                                    await self.handle(envelope, outbound: outbound, socket: id)
                                    await limiter.release()
                                }
                            case .unknown(let what):
                                self.logger.debug("ignoring a Slack frame", metadata: ["what": "\(what)"])
                            }
                        }
                    }
                    // The loop also ends when the socket dropped without a close frame: the caller reconnects.
                    watchers.cancelAll()
                }
            }
        } catch {
            logger.warning("Slack socket failed", metadata: ["socket": "\(id)", "error": "\(error)"])
        }
        if !signal.isRequested { logger.info("Slack socket closed", metadata: ["socket": "\(id)"]) }
    }

    /// Makes the event durable, then acks (with the command's reply when Slack accepts one).
    private func handle(_ envelope: SlackEnvelope, outbound: WebSocketOutboundWriter, socket: Int) async {
        guard accepting.load(ordering: .relaxed) else {
            logger.info("shutting down: not acking a new envelope; Slack will redeliver it", metadata: ["envelope": "\(envelope.id)"])
            return
        }
        var ack: [String: JSONValue] = ["envelope_id": .string(envelope.id)]
        if let key = SlackInbound.key(type: envelope.type, payload: envelope.payload), let payload = envelope.payload {
            let raw = RawInbound(
                platform: SlackInbound.platform, key: key, payload: SlackInbound.stored(type: envelope.type, payload: payload),
                replyDeadline: envelope.acceptsResponsePayload ? configuration.replyDeadline : nil)
            do {
                if case .reply(let text) = try await sink.accept(raw), envelope.acceptsResponsePayload {
                    ack["payload"] = .object(["response_type": .string("ephemeral"), "text": .string(text)])
                }
            } catch {
                logger.error("could not record a Slack event; not acking, so Slack redelivers it",
                             metadata: ["key": "\(key)", "error": "\(error)"])
                return
            }
            if envelope.retryAttempt > 0 {
                logger.debug("Slack redelivery", metadata: ["key": "\(key)", "attempt": "\(envelope.retryAttempt)", "reason": "\(envelope.retryReason)"])
            }
        } else {
            logger.info("acking a Slack envelope with nothing to act on", metadata: ["type": "\(envelope.type)",
                                                                                      "payload_type": "\(envelope.payload?.member("type")?.asString ?? "-")"])
        }
        do {
            try await outbound.write(.text(JSONValue.object(ack).jsonText))
        } catch {
            logger.warning("could not ack a Slack envelope (Slack will redeliver it)", metadata: ["envelope": "\(envelope.id)", "error": "\(error)"])
        }
    }
}

/// A one-shot "please close" for a socket; `wait` returns true when it was requested, false when cancelled.
final class CloseSignal: Sendable {
    private let requested = Atomic<Bool>(false)
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var isRequested: Bool { requested.load(ordering: .relaxed) }

    func request() {
        requested.store(true, ordering: .relaxed)
        continuation.yield(())
        continuation.finish()
    }

    func wait() async -> Bool {
        for await _ in stream { break }
        return isRequested
    }
}

/// Bounds concurrent work: `acquire` waits while `limit` holders are active.
actor ConcurrencyLimit {
    private let limit: Int
    private var active = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { self.limit = max(1, limit) }

    func acquire() async {
        if active < limit {
            active += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            active -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
