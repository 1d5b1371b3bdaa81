import Foundation
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The chat event router: the ``InboundSink`` every adapter acks through, and the `Service` that
/// processes what was recorded.
///
/// `accept` writes the raw event to `inbound_events` and returns; only then does the adapter ack, so an
/// acked event is never lost. Slash commands, whose reply travels in the ack, are processed at once
/// within their deadline (a bounded number at a time; beyond it the ack says the answer follows, and
/// it does, privately). Everything else is processed by `run()`: translate (the adapter drops its own
/// echoes), skip keys already applied, act through ``ChatActions``, reply. One person's events on one
/// card are processed in arrival order (a reaction and its removal, ❌ and the reason replied under
/// it), as are one person's commands and DMs; everything else runs concurrently, in up to `lanes`
/// lanes, and the core's compare-and-set decides between acts on the same entity at once.
///
/// A transient failure (the store busy, the network, an adapter not ready) is retried for as long as
/// it takes, with a backoff persisted on the row (`next_attempt_at`), so waiting rows are neither
/// re-read nor in the way of newer ones. Only a payload that can never be understood is set aside as
/// failed, loudly.
package final class ChatRouter: Service, InboundSink, Sendable {
    package struct Configuration: Sendable {
        /// How often pending events are looked for when nothing signals.
        package var pollInterval: Duration = .milliseconds(250)
        package var batch = 100
        /// Lanes processed at once (a lane: one person's acts on one card, or their commands and DMs, in order).
        package var lanes = 16
        /// The first wait after a transient failure; it doubles per attempt (with jitter) up to `maxRetryDelay`.
        package var retryDelay: Duration = .milliseconds(250)
        package var maxRetryDelay: Duration = .seconds(60)
        /// An event still failing after this many attempts is logged as an error (and still retried).
        package var warnAfterAttempts = 8
        /// Slash commands processed at once to answer in their ack; beyond it the ack says the answer
        /// follows, and the loop sends it privately.
        package var maxInlineCommands = 64
        /// Processed raw events are kept this long (redeliveries arrive within minutes).
        package var retention: Span = .hours(24)
        package var pruneEvery: Duration = .seconds(3600)

        package init() {}
    }

    let workflow: Workflow
    let adapters: [String: any ChatAdapter]
    let actions: ChatActions
    let configuration: Configuration
    let logger: Logger
    private let wake = WakeSignal()
    private let inFlight = Mutex<Set<String>>([])
    private let ready = Mutex<Set<String>>([])
    /// Platforms whose adapter was refused for good (a fatal credential error), with why.
    private let unusable = Mutex<[String: String]>([:])
    /// Inline command jobs. The buffer is unbounded, but at most `maxInlineCommands` jobs exist at once
    /// (each holds a permit from `inlineCommands`), so nothing is ever dropped and memory stays bounded.
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let jobsContinuation: AsyncStream<@Sendable () async -> Void>.Continuation
    private let inlineCommands = Atomic<Int>(0)
    private let processedCount = Atomic<Int>(0)
    private let retriedCount = Atomic<Int>(0)

    package init(workflow: Workflow, adapters: [any ChatAdapter], chat: ChatConfiguration, configuration: Configuration = Configuration(),
                 logger: Logger = Logger(label: "handoff.chat.router"))
    {
        self.workflow = workflow
        self.adapters = Dictionary(adapters.map { ($0.platform, $0) }, uniquingKeysWith: { a, _ in a })
        self.actions = ChatActions(workflow: workflow, chat: chat, logger: logger)
        self.configuration = configuration
        self.logger = logger
        (jobs, jobsContinuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Events processed so far (tests wait on it).
    package var processed: Int { processedCount.load(ordering: .relaxed) }

    /// Transient failures retried so far (tests and metrics).
    package var retried: Int { retriedCount.load(ordering: .relaxed) }

    /// True once the platform's adapter is prepared (its bot identity known).
    package func isReady(_ platform: String) -> Bool { ready.withLock { $0.contains(platform) } }

    /// Platforms whose adapter was refused for good, with the reason (for `/readyz`).
    package var unusablePlatforms: [String: String] { unusable.withLock { $0 } }

    /// The ack text when a command's answer cannot go in the ack (too slow, or too many at once).
    package static let holdingReply = "⏳ Working on it — the answer will appear here in a moment."

    // MARK: InboundSink

    package func accept(_ raw: RawInbound) async throws -> Acceptance {
        let isNew = try await workflow.store.recordInbound(platform: raw.platform, eventKey: raw.key, payload: raw.payload,
                                                            at: workflow.clock.now())
        guard isNew else { return .duplicate }
        guard let deadline = raw.replyDeadline else {
            wake.signal()
            return .recorded
        }
        // A command answered in the ack: process it now; if it takes too long, ack with a holding reply
        // and let the answer follow as a private message. When too many are in hand already, the loop
        // processes this one and sends its answer privately: it is never dropped.
        guard takeInlinePermit() else {
            logger.notice("many commands at once: this one is answered after its ack", metadata: ["key": "\(raw.key)"])
            wake.signal()
            return .reply(Self.holdingReply)
        }
        let slot = ReplySlot()
        let job: @Sendable () async -> Void = { [self] in
            defer { self.releaseInlinePermit() }
            guard let outcome = await self.processInline(raw) else {
                // Not handled here (a retry, or it is in hand elsewhere): the loop answers it privately.
                _ = slot.fill(nil)
                self.wake.signal()
                return
            }
            let taken = slot.fill(outcome.ackText)
            await self.deliver(taken ? outcome.afterAck : outcome.replies, for: outcome.event)
            self.wake.signal()
        }
        guard case .enqueued = jobsContinuation.yield(job) else {
            // Shutting down: the event is durable; the next start processes it and answers privately.
            releaseInlinePermit()
            return .reply(Self.holdingReply)
        }
        switch await slot.wait(timeout: deadline) {
        case .filled(let text): return text.map { .reply($0) } ?? .recorded
        case .timedOut: return .reply(Self.holdingReply)
        }
    }

    private func takeInlinePermit() -> Bool {
        let limit = max(1, configuration.maxInlineCommands)
        var current = inlineCommands.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = inlineCommands.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    private func releaseInlinePermit() {
        inlineCommands.subtract(1, ordering: .acquiringAndReleasing)
    }

    /// A batch in one transaction (one disk sync), for platforms that confirm a whole batch at once.
    /// Batches carry no ack replies; they are processed by the loop like single events.
    package func accept(batch: [RawInbound]) async throws -> [Acceptance] {
        guard !batch.isEmpty else { return [] }
        let isNew = try await workflow.store.recordInbound(batch.map { ($0.platform, $0.key, $0.payload) }, at: workflow.clock.now())
        if isNew.contains(true) { wake.signal() }
        return isNew.map { $0 ? .recorded : .duplicate }
    }

    // MARK: Service

    package func run() async throws {
        logger.info("chat router started", metadata: ["platforms": "\(adapters.keys.sorted())"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.prepareAdapters() }
            group.addTask { await self.loop() }
            group.addTask {
                try? await gracefulShutdown()
                self.jobsContinuation.finish()
                self.wake.signal()
            }
            for await job in jobs {
                group.addTask { await job() }
            }
            // Graceful shutdown: the loop finishes the event in hand and stops; in-flight jobs complete.
        }
        logger.info("chat router stopped")
    }

    private func prepareAdapters() async {
        await withDiscardingTaskGroup { group in
            for adapter in adapters.values {
                group.addTask {
                    var delay: Duration = .seconds(1)
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        do {
                            try await adapter.prepare()
                            self.ready.withLock { _ = $0.insert(adapter.platform) }
                            self.wake.signal()
                            return
                        } catch let error as ChatDeliveryError where error.code == .fatal {
                            self.logger.error("\(adapter.platform) is not usable: \(error.message); its events wait until it is fixed and restarted")
                            self.unusable.withLock { $0[adapter.platform] = error.message }
                            return
                        } catch {
                            self.logger.warning("\(adapter.platform) is not ready; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                            let wait = delay
                            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                            delay = min(delay * 2, .seconds(60))
                        }
                    }
                }
            }
        }
    }

    private func loop() async {
        var lastPrune = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var full = false
            do {
                full = try await processPending()
                if ContinuousClock.now - lastPrune >= configuration.pruneEvery {
                    let cutoff = workflow.clock.now().addingTimeInterval(-configuration.retention.seconds)
                    let pruned = try await workflow.store.pruneInbound(before: cutoff)
                    if pruned > 0 { logger.debug("pruned processed chat events", metadata: ["count": "\(pruned)"]) }
                    lastPrune = .now
                }
            } catch is CancellationError {
                break
            } catch {
                if Task.isCancelled { break }
                logger.error("chat router round failed", metadata: ["error": "\(error)"])
            }
            if full { continue }
            await wake.wait(timeout: configuration.pollInterval)
        }
    }

    /// Processes one batch of due events (fresh ones in arrival order, then retries as they come due)
    /// on the platforms that are ready; true when it processed a full batch (more may be due).
    ///
    /// Platforms that are not ready and rows still backing off are left out by the query itself, so a
    /// batch never consists of rows that are only skipped, and a full batch means real progress.
    @discardableResult
    package func processPending() async throws -> Bool {
        let platforms = ready.withLock { $0 }.intersection(adapters.keys)
        guard !platforms.isEmpty else { return false }
        // Retry times are wall-clock (a transport concern): a manual workflow clock in tests does not freeze them.
        let rows = try await workflow.store.dueInbound(platforms: platforms, now: Date(), limit: configuration.batch)
        // One lane per person and card (their acts on one card in arrival order: a reaction and its
        // removal, ❌ and the reason replied under it), and one per person for what names no card
        // (commands, DMs); rows nobody can be read from get a lane each.
        var lanes: [String: [(HandoffStore.InboundEvent, Translation)]] = [:]
        var laneOrder: [String] = []
        for row in rows {
            let translation = translate(row.payload, platform: row.platform)
            let lane = if case .event(let event) = translation {
                "\(event.platform):\(event.actor.id)" + (event.card.map { "|\($0.channel)|\($0.messageID)" } ?? "")
            } else {
                "row:\(row.id)"
            }
            if lanes[lane] == nil { laneOrder.append(lane) }
            lanes[lane, default: []].append((row, translation))
        }
        let settled = await withTaskGroup(of: Int.self) { group in
            var running = 0
            var settled = 0
            for lane in laneOrder {
                if running >= max(1, configuration.lanes), let done = await group.next() {
                    settled += done
                    running -= 1
                }
                let work = lanes[lane] ?? []
                group.addTask {
                    var settled = 0
                    for (row, translation) in work {
                        if Task.isShuttingDownGracefully { break }
                        let flightKey = "\(row.platform)|\(row.eventKey)"
                        guard self.inFlight.withLock({ $0.insert(flightKey).inserted }) else { continue }
                        defer { _ = self.inFlight.withLock { $0.remove(flightKey) } }
                        if await self.process(row, translation) { settled += 1 }
                    }
                    return settled
                }
                running += 1
            }
            for await done in group { settled += done }
            return settled
        }
        return settled > 0 && rows.count >= configuration.batch
    }

    /// Handles one row and records the result; false when the result could not be recorded.
    private func process(_ row: HandoffStore.InboundEvent, _ translation: Translation) async -> Bool {
        let outcome = await handle(platform: row.platform, key: row.eventKey, translation: translation)
        let store = workflow.store
        do {
            switch outcome.result {
            case .done:
                await deliver(outcome.replies, for: outcome.event)
                try await store.finishInbound(row.id, failed: nil, at: workflow.clock.now())
                processedCount.add(1, ordering: .relaxed)
            case .retry(let why):
                let attempt = row.attempts + 1
                let wait = retryDelay(afterAttempt: attempt)
                try await store.retryInbound(row.id, error: why, next: Date().addingTimeInterval(wait.seconds))
                retriedCount.add(1, ordering: .relaxed)
                Counter(label: "handoff_chat_inbound_retries_total", dimensions: [("platform", row.platform)]).increment()
                let metadata: Logger.Metadata = ["key": "\(row.eventKey)", "attempt": "\(attempt)", "in": "\(wait)", "error": "\(why)"]
                if attempt == configuration.warnAfterAttempts {
                    logger.error("a chat event keeps failing; it stays pending and is retried until it succeeds", metadata: metadata)
                } else {
                    logger.notice("a chat event failed for now; retrying", metadata: metadata)
                }
            case .failed(let why):
                logger.error("a chat event can never be understood; set aside as failed (nothing was done for it)",
                             metadata: ["platform": "\(row.platform)", "key": "\(row.eventKey)", "error": "\(why)"])
                Counter(label: "handoff_chat_inbound_failed_total", dimensions: [("platform", row.platform)]).increment()
                try await store.finishInbound(row.id, failed: why, at: workflow.clock.now())
                processedCount.add(1, ordering: .relaxed)
            }
            return true
        } catch {
            logger.error("could not record a chat event's result; it stays pending", metadata: ["key": "\(row.eventKey)", "error": "\(error)"])
            return false
        }
    }

    /// Exponential backoff with jitter in [½·d, d], capped: 250 ms, 500 ms, 1 s, … 60 s.
    func retryDelay(afterAttempt attempt: Int) -> Duration {
        let base = configuration.retryDelay.seconds * pow(2, Double(min(max(attempt - 1, 0), 30)))
        let capped = min(base, configuration.maxRetryDelay.seconds)
        return .milliseconds(Int64(capped * Double.random(in: 0.5...1.0) * 1000))
    }

    private func processInline(_ raw: RawInbound) async -> Handled? {
        let flightKey = "\(raw.platform)|\(raw.key)"
        guard inFlight.withLock({ $0.insert(flightKey).inserted }) else { return nil }
        defer { _ = inFlight.withLock { $0.remove(flightKey) } }
        let outcome = await handle(platform: raw.platform, key: raw.key, translation: translate(raw.payload, platform: raw.platform))
        guard case .done = outcome.result else { return nil }  // the loop retries it later
        processedCount.add(1, ordering: .relaxed)
        return outcome
    }

    // MARK: Handling

    struct Handled: Sendable {
        enum Result: Sendable {
            case done
            case retry(String)
            case failed(String)
        }

        var result: Result
        var event: ChatEvent?
        var replies: [ChatReply] = []
        /// The text of the first private reply, rendered for the platform (for an ack payload).
        var ackText: String?
        /// The replies left once the first private one went in the ack.
        var afterAck: [ChatReply] = []
    }

    /// A raw payload read by its platform's adapter.
    enum Translation: Sendable {
        case event(ChatEvent)
        /// Nothing to act on (the bot's own echo, an event kind Handoff does not use).
        case ignored
        case retry(String)
        case failed(String)
    }

    private func translate(_ payload: String, platform: String) -> Translation {
        // Rows are only taken for platforms with a ready adapter; one without waits for it (a restart with it configured).
        guard let adapter = adapters[platform] else { return .retry("no adapter for platform \(platform)") }
        do {
            guard let event = try adapter.translate(payload) else { return .ignored }
            return .event(event)
        } catch let error as ChatDeliveryError {
            return .retry(error.message)
        } catch {
            return .failed("unreadable \(platform) payload: \(error)")
        }
    }

    private func handle(platform: String, key: String, translation: Translation) async -> Handled {
        guard let adapter = adapters[platform] else { return Handled(result: .retry("no adapter for platform \(platform)")) }
        do {
            if try await workflow.store.eventEntity(source: platform, key: key) != nil {
                return Handled(result: .done)  // applied before (processed inline, or before a restart)
            }
            let event: ChatEvent
            switch translation {
            case .event(let translated): event = translated
            case .ignored: return Handled(result: .done)
            case .retry(let why): return Handled(result: .retry(why))
            case .failed(let why): return Handled(result: .failed(why))
            }
            if let card = event.card { try await adoptLostCard(card, platform: platform, adapter: adapter) }
            let replies = try await actions.handle(event)
            var out = Handled(result: .done, event: event, replies: replies)
            if let index = replies.firstIndex(where: { if case .privately = $0 { true } else { false } }),
               case .privately(let text) = replies[index]
            {
                out.ackText = adapter.render(text)
                out.afterAck = replies.enumerated().filter { $0.offset != index }.map(\.element)
            } else {
                out.afterAck = replies
            }
            return out
        } catch {
            return Handled(result: .retry("\(error)"))
        }
    }

    /// An act on a card whose post landed but whose reply was lost (the process died, or the call timed
    /// out, between the post and its record) names a message no card is known by yet. The outbox adopts
    /// such a card later (once its lease lapses), but the act must not be dropped as "not a card"
    /// meanwhile: look the channel's posting cards up on the platform now. A failed lookup is transient,
    /// so the event is retried rather than lost.
    private func adoptLostCard(_ ref: MessageRef, platform: String, adapter: any ChatAdapter) async throws {
        let store = workflow.store
        guard try await store.card(platform: platform, channel: ref.channel, messageID: ref.messageID) == nil else { return }
        // Recent ones only: a card whose post was given up is marked failed (ChatDeliverer.gaveUp), and
        // one older than a day is past any redelivery of an act on it.
        let since = workflow.clock.now().addingTimeInterval(-86_400)
        for card in try await store.cardsPosting(platform: platform, channel: ref.channel, since: since, limit: 20) {
            guard let found = try await adapter.findCard(nonce: card.nonce, channel: card.channel, since: card.createdAt) else { continue }
            try await store.cardPosted(card.id, messageID: found.messageID, threadID: found.threadID, at: workflow.clock.now())
            logger.info("adopted a card whose post reply was lost, for an act on it", metadata: ["card": "\(card.id)", "message": "\(found.messageID)"])
            if found.messageID == ref.messageID { return }
        }
    }

    /// Sends replies; failures are logged (a reply is advice, the effect is already committed).
    private func deliver(_ replies: [ChatReply], for event: ChatEvent?) async {
        guard let event, let adapter = adapters[event.platform], !replies.isEmpty else { return }
        for reply in replies {
            do {
                switch reply {
                case .privately(let text):
                    if event.isDirect || event.conversation.channel == nil {
                        try await adapter.send(text, to: ConversationRef(platform: event.platform, channel: event.conversation.channel,
                                                                         thread: nil, user: event.actor.id))
                    } else if let channel = event.conversation.channel {
                        try await adapter.sendPrivately(text, to: event.actor.id, channel: channel, thread: event.conversation.thread)
                    }
                case .inConversation(let text):
                    try await adapter.send(text, to: event.conversation)
                case .acknowledge(let reaction):
                    guard let messageID = event.messageID, let channel = event.conversation.channel else { continue }
                    try await adapter.acknowledge(channel: channel, messageID: messageID, with: reaction)
                }
            } catch {
                logger.warning("could not reply in chat", metadata: ["key": "\(event.dedupeKey)", "error": "\(error)"])
            }
        }
    }
}

/// The reply a command's ack waits for, or a timeout.
final class ReplySlot: Sendable {
    enum Outcome: Sendable {
        case filled(String?)
        case timedOut
    }

    private enum State {
        case waiting(CheckedContinuation<Outcome, Never>?)
        case done(Outcome)
        case abandoned
    }

    private let state = Mutex<State>(.waiting(nil))

    /// Hands the reply to the waiter; false when the waiter already gave up (send it another way).
    func fill(_ text: String?) -> Bool {
        let (taken, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Outcome, Never>?) in
            switch s {
            case .waiting(let c):
                s = .done(.filled(text))
                return (true, c)
            case .done, .abandoned:
                return (false, nil)
            }
        }
        waiter?.resume(returning: .filled(text))
        return taken
    }

    private func abandon() {
        let waiter = state.withLock { s -> CheckedContinuation<Outcome, Never>? in
            guard case .waiting(let c) = s else { return nil }
            s = .abandoned
            return c
        }
        waiter?.resume(returning: .timedOut)
    }

    func wait(timeout: Duration) async -> Outcome {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.abandon()
            }
            let outcome = await withCheckedContinuation { (c: CheckedContinuation<Outcome, Never>) in
                let now: Outcome? = state.withLock { s in
                    switch s {
                    case .waiting:
                        s = .waiting(c)
                        return nil
                    case .done(let o): return o
                    case .abandoned: return .timedOut
                    }
                }
                if let now { c.resume(returning: now) }
            }
            group.cancelAll()
            return outcome
        }
    }
}
