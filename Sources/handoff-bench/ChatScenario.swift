import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Logging
import ServiceLifecycle
import Synchronization

/// Scenario 1: chat decisions end to end. The fake Slack (over a real loopback websocket) delivers
/// reactions (✅) and button clicks (Approve) on posted approval cards to the running service graph
/// (`HandoffApplication.build`: Socket Mode client, router, outbox dispatcher, scheduler, HTTP server)
/// at fixed offered rates and then as fast as it can. Measured: envelopes per second sustained, ack
/// latency (as the fake sees it: envelope sent → ack received), and event → committed decision.
struct ChatScenario {
    let options: BenchOptions

    static let policy = """
        groups:
          approvers: [slack:U0ALICE, slack:U0BOB]
          reviewers: []
          agents: []
          experts: []
          labelers: []
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 24h, on_expiry: reject }
        chat:
          channels:
            approvals: { slack: C0APPROVALS }
            default: { slack: C0HANDOFF }
        """

    struct Phase {
        var rate: Int?
        var range: Range<Int>
        var name: String { rate.map { "\(Format.grouped($0))/s" } ?? "max" }
    }

    func run() async throws -> ScenarioReport {
        var phases: [Phase] = []
        var next = 0
        for rate in options.chatRates {
            let count = Int(Double(rate) * options.chatSeconds)
            phases.append(Phase(rate: rate, range: next..<(next + count)))
            next += count
        }
        phases.append(Phase(rate: nil, range: next..<(next + options.chatMaxEnvelopes)))
        next += options.chatMaxEnvelopes

        var report = ScenarioReport(
            name: "chat", title: "Chat decisions end to end (fake Slack over a loopback websocket → the service graph)",
            columns: ["offered", "envelopes", "sent/s", "acked/s", "decided/s", "ack p50", "ack p99", "ack max", "decision p50", "decision p99"])

        let directory = options.directory + "/chat"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policyPath = directory + "/handoff.yaml"
        try Self.policy.write(toFile: policyPath, atomically: true, encoding: .utf8)

        let fake = try await FakeSlack.start()
        var configuration = HandoffConfiguration()
        configuration.databasePath = directory + "/handoff.sqlite"
        configuration.policyPath = policyPath
        configuration.database = options.sqlite
        configuration.http.port = 0
        configuration.slack = SlackSettings(appToken: fake.configuration.appToken, botToken: fake.configuration.botToken, apiURL: fake.apiURL)
        let app = try await HandoffApplication.build(configuration: configuration, logger: Logger(label: "handoff-bench.app"))
        let group = ServiceGroup(configuration: .init(services: app.services.map { .init(service: $0) }, gracefulShutdownSignals: [],
                                                      logger: Logger(label: "handoff-bench.services")))
        let running = Task { try await group.run() }
        do {
            let connected = await eventually(timeout: .seconds(30)) {
                app.chat.socketMode?.status == .connected && app.chat.router?.isReady("slack") == true
            }
            guard connected else { throw BenchError("the service did not connect to the fake Slack") }
            let cards = try await postCards(count: next, app: app, fake: fake)
            let commits = CommitTimes(count: next)
            let token = app.workflow.addListener { refs in
                let now = ContinuousClock.now
                for ref in refs where ref.kind == .approval { commits.record(Int(ref.id) - cards.firstID, at: now) }
            }
            defer { app.workflow.removeListener(token) }
            var ackAt1000: Double?
            for phase in phases {
                note("chat: \(phase.name), \(Format.grouped(phase.range.count)) envelopes")
                let r = try await run(phase, cards: cards, commits: commits, fake: fake)
                report.row(phase.name, Format.grouped(phase.range.count), Format.rate(r.sentRate), Format.rate(r.ackedRate),
                           Format.rate(r.decidedRate), Format.ms(r.acks.p50), Format.ms(r.acks.p99), Format.ms(r.acks.max),
                           Format.ms(r.decisions.p50), Format.ms(r.decisions.p99))
                let key = phase.rate.map { "at_\($0)" } ?? "at_max"
                report.metrics["\(key)_sent_per_s"] = r.sentRate
                report.metrics["\(key)_acked_per_s"] = r.ackedRate
                report.metrics["\(key)_decided_per_s"] = r.decidedRate
                report.metrics.merge(r.acks.metrics("\(key)_ack")) { $1 }
                report.metrics.merge(r.decisions.metrics("\(key)_decision")) { $1 }
                if r.lateAcks > 0 { report.notes.append("\(phase.name): \(r.lateAcks) envelopes were acked only after the fake's 3 s deadline (redelivered; not in the latencies)") }
                if phase.rate == 1000 || (ackAt1000 == nil && phase.rate == options.chatRates.last && options.quick) { ackAt1000 = r.acks.p99 }
                try await settle(app)
            }
            if let p99 = ackAt1000 {
                let rate = options.chatRates.contains(1000) ? "1,000" : Format.grouped(options.chatRates.last ?? 0)
                report.target("ack p99 at \(rate) envelopes/s", p99 * 1000, .atMost, 5, unit: "ms")
            }
            report.notes.append("envelopes alternate ✅ reactions (alice) and Approve clicks (bob), one per approval card; the ack follows the durable insert of the raw event")
            report.notes.append("decision = the approval's change set committed (seen by a workflow commit listener), measured from the moment the fake sent the envelope")
            report.notes.append("set-up: \(Format.grouped(next)) approvals (bulk), their cards posted by the service's own outbox dispatcher through the fake's Web API")
        } catch {
            await stop(group: group, running: running, app: app, fake: fake)
            throw error
        }
        await stop(group: group, running: running, app: app, fake: fake)
        return report
    }

    struct Cards: Sendable {
        var firstID: Int
        var approvals: [ApprovalID]
        var channel: [String]
        var ts: [String]
    }

    /// Creates the approvals the phases decide and waits until the service posted every card.
    private func postCards(count: Int, app: HandoffApplication, fake: FakeSlack) async throws -> Cards {
        let progress = ProgressBar("chat set-up: cards posted", total: count)
        var approvals: [ApprovalID] = []
        while approvals.count < count {
            let batch = (approvals.count..<min(count, approvals.count + 1000)).map { i in
                ApprovalRequest(action: "deploy", arguments: .object(["service": .string("api"), "build": .int(Int64(i))]),
                                summary: "Deploy api build \(i)", requester: ActorID("key:deploy-bot"))
            }
            approvals += try await app.workflow.requestApprovals(batch: batch).map(\.id)
        }
        guard let first = approvals.first, approvals.last!.rawValue - first.rawValue == Int64(count - 1) else {
            throw BenchError("approval ids are not consecutive")
        }
        let deadline = ContinuousClock.now + .seconds(max(120, Double(count) / 50))
        while true {
            let posted = await fake.calls("chat.postMessage").count
            progress.update(posted)
            if posted >= count { break }
            guard ContinuousClock.now < deadline else { throw BenchError("only \(posted) of \(count) cards were posted") }
            try await Task.sleep(for: .milliseconds(200))
        }
        progress.finish()
        var cards = Cards(firstID: Int(first.rawValue), approvals: approvals, channel: [], ts: [])
        for id in approvals {
            let refs = try await app.workflow.store.cards(of: EntityRef(kind: .approval, id: id.rawValue))
            guard let card = refs.last(where: { $0.state == .posted }), let ts = card.messageID else {
                throw BenchError("approval \(id) has no posted card")
            }
            cards.channel.append(card.channel)
            cards.ts.append(ts)
        }
        return cards
    }

    struct Result {
        var sentRate: Double
        var ackedRate: Double
        var decidedRate: Double
        var acks: Latencies
        var decisions: Latencies
        var lateAcks: Int
    }

    private func run(_ phase: Phase, cards: Cards, commits: CommitTimes, fake: FakeSlack) async throws -> Result {
        let indices = Array(phase.range)
        let sent = SendLog(count: indices.count)
        let start = ContinuousClock.now
        @Sendable func send(_ k: Int) async {
            let i = indices[k]
            let at = ContinuousClock.now
            let envelope: String
            if i % 2 == 0 {
                envelope = await fake.react(user: "U0ALICE", name: "white_check_mark", channel: cards.channel[i], ts: cards.ts[i]).envelopeID
            } else {
                envelope = await fake.click(user: "U0BOB", channel: cards.channel[i], messageTS: cards.ts[i], actionID: "approve",
                                            value: "approval:\(cards.approvals[i])")
            }
            sent.record(k, envelope: envelope, at: at)
        }
        if let rate = phase.rate {
            // A fixed schedule (no drift): envelope k goes at start + k/rate; a late sender catches up at once.
            for k in 0..<indices.count {
                let due = start + .nanoseconds(Int64(Double(k) / Double(rate) * 1e9))
                if ContinuousClock.now < due { try await Task.sleep(until: due, tolerance: .microseconds(50)) }
                await send(k)
            }
        } else {
            let next = Counter()
            await withDiscardingTaskGroup { group in
                for _ in 0..<4 {
                    group.addTask {
                        while true {
                            let k = next.next()
                            guard k < indices.count else { return }
                            await send(k)
                        }
                    }
                }
            }
        }
        let sendEnd = ContinuousClock.now
        // Wait until every decision is committed and every envelope acked.
        let deadline = ContinuousClock.now + .seconds(60 + Double(indices.count) / 100)
        while commits.count(in: phase.range) < indices.count {
            guard ContinuousClock.now < deadline else {
                throw BenchError("\(phase.name): only \(commits.count(in: phase.range)) of \(indices.count) decisions committed")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        var acks: [String: FakeSlack.Ack] = [:]
        var lateOnly: Set<String> = []
        while true {
            acks = [:]
            var late: Set<String> = []
            for ack in await fake.acks() {
                if ack.late { late.insert(ack.envelopeID) } else { acks[ack.envelopeID] = acks[ack.envelopeID] ?? ack }
            }
            lateOnly = late.subtracting(acks.keys)
            let missing = (0..<indices.count).filter { acks[sent.envelope($0)] == nil && !lateOnly.contains(sent.envelope($0)) }.count
            if missing == 0 { break }
            guard ContinuousClock.now < deadline else { throw BenchError("\(phase.name): \(missing) envelopes were never acked in time") }
            try await Task.sleep(for: .milliseconds(50))
        }
        var ackLatencies = Latencies()
        var decisionLatencies = Latencies()
        var lastAck = start
        var lastDecision = start
        for k in 0..<indices.count {
            let sentAt = sent.time(k)
            if let ack = acks[sent.envelope(k)] {
                ackLatencies.add(ack.latency)
                lastAck = max(lastAck, sentAt + ack.latency)
            }
            if let committed = commits.time(indices[k]) {
                decisionLatencies.add(committed - sentAt)
                lastDecision = max(lastDecision, committed)
            }
        }
        // Acks the fake saw only after it had given the envelope up (redelivered it): they have no latency.
        let lateAcks = lateOnly.filter(sent.contains).count
        let n = Double(indices.count)
        return Result(sentRate: n / (sendEnd - start).seconds, ackedRate: n / (lastAck - start).seconds,
                      decidedRate: n / (lastDecision - start).seconds, acks: ackLatencies, decisions: decisionLatencies, lateAcks: lateAcks)
    }

    /// Waits until the router and the outbox (card edits) have nothing left, so phases do not overlap.
    private func settle(_ app: HandoffApplication) async throws {
        let store = app.workflow.store
        _ = await eventually(timeout: .seconds(120), poll: .milliseconds(50)) {
            let inbound = (try? await store.pendingInbound(platform: nil, limit: 1)) ?? []
            let outbox = (try? await store.dueOutbox(now: Date(), kinds: Set(OutboxKind.allCases), limit: 1)) ?? []
            return inbound.isEmpty && outbox.isEmpty
        }
    }

    private func stop(group: ServiceGroup, running: Task<Void, any Error>, app: HandoffApplication, fake: FakeSlack) async {
        await group.triggerGracefulShutdown()
        let finished = await withTaskGroup(of: Bool.self) { g in
            g.addTask { _ = try? await running.value; return true }
            g.addTask { try? await Task.sleep(for: .seconds(15)); return false }
            let first = await g.next() ?? false
            g.cancelAll()
            return first
        }
        if !finished { running.cancel() }
        try? await app.workflow.store.close()
        await fake.stop()
    }
}

/// When each approval's decision was committed (the first commit touching it after set-up).
final class CommitTimes: Sendable {
    private let times: Mutex<[ContinuousClock.Instant?]>

    init(count: Int) { times = Mutex(Array(repeating: nil, count: count)) }

    func record(_ index: Int, at instant: ContinuousClock.Instant) {
        times.withLock { t in
            guard t.indices.contains(index), t[index] == nil else { return }
            t[index] = instant
        }
    }

    func time(_ index: Int) -> ContinuousClock.Instant? { times.withLock { $0[index] } }

    func count(in range: Range<Int>) -> Int { times.withLock { t in range.reduce(0) { $0 + (t[$1] == nil ? 0 : 1) } } }
}

/// What was sent in a phase: envelope ids and send instants by position.
final class SendLog: Sendable {
    private let state: Mutex<(envelopes: [String], times: [ContinuousClock.Instant], ids: Set<String>)>

    init(count: Int) {
        state = Mutex((Array(repeating: "", count: count), Array(repeating: ContinuousClock.now, count: count), []))
    }

    func record(_ k: Int, envelope: String, at instant: ContinuousClock.Instant) {
        state.withLock {
            $0.envelopes[k] = envelope
            $0.times[k] = instant
            $0.ids.insert(envelope)
        }
    }

    func envelope(_ k: Int) -> String { state.withLock { $0.envelopes[k] } }
    func time(_ k: Int) -> ContinuousClock.Instant { state.withLock { $0.times[k] } }
    func contains(_ envelope: String) -> Bool { state.withLock { $0.ids.contains(envelope) } }
}
