import Foundation
import HandoffCore
import HandoffTesting
import Synchronization
import Testing

/// Issue 8, fault injection: one fault at a time, injected through the fakes (and the operating system)
/// while the same workload as the crash test runs against `handoff serve`; each ends with the same
/// end-state checks (ReliabilityChecks.swift). Replay with `HANDOFF_FAULT_SEED=<seed>`.
@Suite(.serialized) struct FaultInjectionTests {
    /// What a fault scenario gets: the rig, the ledger to count faults in, the dice, and whether the
    /// workload is still running (a fault loop stops with it).
    struct Context: Sendable {
        let rig: ServeRig
        let ledger: Ledger
        let dice: Dice
        let workload: Workload
        let working: SharedFlag

        var isWorking: Bool { working.isSet }
    }

    /// Starts a fresh service, runs `flows` flows of work while `inject` injects its fault, lets the
    /// service settle, stops it cleanly, and checks the end state.
    static func run(_ name: String, fake: FakeSlack.Configuration = FakeSlack.Configuration(), options: Workload.Options = Workload.Options(),
                    flows: Int = 10, check: @escaping @Sendable (RunReport) -> Void = { _ in },
                    inject: @escaping @Sendable (Context) async throws -> Void) async throws
    {
        let dice = Dice.fromEnvironment("HANDOFF_FAULT_SEED")
        print("fault injection (\(name)): seed=\(dice.seed) (replay with HANDOFF_FAULT_SEED=\(dice.seed))")
        let rig = try await ServeRig.prepare(fake: fake, prefix: "handoff-fault")
        do {
            try await run(name, rig: rig, dice: dice, options: options, flows: flows, check: check, inject: inject)
        } catch {
            print("fault injection (\(name)): seed=\(dice.seed) failed: \(error); logs kept in \(rig.directory.path)")
            await rig.shutdown(removeFiles: false)
            throw error
        }
    }

    private static func run(_ name: String, rig: ServeRig, dice: Dice, options: Workload.Options, flows: Int,
                            check: @escaping @Sendable (RunReport) -> Void, inject: @escaping @Sendable (Context) async throws -> Void) async throws
    {
        let ledger = Ledger()
        let workload = Workload(rig: rig, ledger: ledger, dice: dice, options: options)
        let started = ContinuousClock.now
        try rig.launch()
        try #require(await rig.waitUntilServing(), "handoff serve did not come up: \(rig.logTail)")
        let context = Context(rig: rig, ledger: ledger, dice: dice, workload: workload, working: SharedFlag(true))
        let deadline = ContinuousClock.now + .seconds(120)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await workload.run(count: flows, concurrency: 5, spacing: 0.1...0.4, deadline: deadline)
                context.working.set(false)
            }
            group.addTask { try await inject(context) }
            try await group.waitForAll()
        }
        // Every scenario that stops the service starts it again itself: not running here means it died.
        if !rig.isRunning {
            Issue.record("\(name): handoff serve died by itself during the run: \(rig.logTail)")
            try rig.launch()
        }
        let worked = ContinuousClock.now - started
        let settled = await EndStateChecks.settled(rig: rig, timeout: .seconds(60))
        let settling = ContinuousClock.now - started - worked
        #expect(settled, "\(name): the service did not settle: \(rig.logTail)")
        try? await rig.http.shutdown()
        let status = await rig.terminate()
        #expect(status == 0, "\(name): the service did not stop cleanly: \(rig.logTail)")
        let report = try await EndStateChecks.run(rig: rig, ledger: ledger)
        let faults = ledger.faults.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        print("fault injection (\(name)): seed=\(dice.seed), faults=\(ledger.faultCount) [\(faults)], \(report.figures), "
            + "took \((ContinuousClock.now - started).components.seconds) s (work \(worked.components.seconds) s, settling \(settling.components.seconds) s)")
        #expect(ledger.faultCount > 0, "\(name): no fault was injected")
        check(report)
        #expect(report.eventsAcked > 0 && report.decisions > 0, "\(name): the run did real work: \(report.figures)")
        #expect(report.violations.isEmpty, """
            \(name), seed \(dice.seed): \(report.losses) losses (logs kept in \(rig.directory.path)):
            \(report.violations.prefix(40).joined(separator: "\n"))
            """)
        await rig.shutdown(removeFiles: report.violations.isEmpty && settled && !ServeRig.keepFiles)
    }

    @Test("Socket drops without a close frame, again and again: events arrive as retries on the next socket, nothing lost or doubled",
          .timeLimit(.minutes(3)))
    func socketDrops() async throws {
        try await Self.run("socket drops") { c in
            while c.isWorking {
                try? await Task.sleep(for: c.dice.seconds(0.5...1.3))
                guard c.isWorking, await !c.rig.fake.liveConnections().isEmpty else { continue }
                await c.rig.fake.drop()
                c.ledger.fault("socket drops without a close frame")
            }
        }
    }

    @Test("disconnect frames of every reason: warning and refresh_requested (make before break), too_many_websockets (no stampede), link_disabled (stops, says so, back after a restart)",
          .timeLimit(.minutes(3)))
    func disconnectFrames() async throws {
        var fake = FakeSlack.Configuration()
        fake.disconnectGrace = .seconds(2)
        try await Self.run("disconnect frames", fake: fake) { c in
            let slack = c.rig.fake
            let newest = { await slack.connections().map(\.id).max() ?? 0 }
            /// A socket newer than `old` said hello and every socket up to `old` is gone: the replacement is done.
            func replaced(after old: Int) async -> Bool {
                await eventually(timeout: .seconds(20)) {
                    let all = await slack.connections()
                    return all.contains { $0.id > old && $0.helloAt != nil && $0.endedAt == nil } && all.filter { $0.id <= old }.allSatisfy { $0.endedAt != nil }
                }
            }
            for reason in ["warning", "refresh_requested", "warning", "refresh_requested"] {
                try? await Task.sleep(for: c.dice.seconds(0.3...1.0))
                let old = await newest()
                await slack.sendDisconnect(reason: reason)
                c.ledger.fault("disconnect \(reason)")
                #expect(await replaced(after: old), "make before break after \(reason): \(c.rig.logTail)")
            }
            // too_many_websockets: one socket allowed; a refresh's replacement is refused with it. The old
            // socket serves until Slack closes it, and the client does not storm apps.connections.open.
            await slack.limitConnections(to: 1)
            let old = await newest()
            let opensBefore = await slack.calls("apps.connections.open").count
            await slack.sendDisconnect(reason: "warning")
            #expect(await eventually(timeout: .seconds(10)) {
                await slack.connections().contains { $0.id > old && $0.endedByServer && $0.helloAt == nil }
            }, "the replacement socket was refused with too_many_websockets")
            c.ledger.fault("disconnect too_many_websockets")
            let refused = await newest()
            try? await Task.sleep(for: .seconds(1))
            let opensDuringCap = await slack.calls("apps.connections.open").count - opensBefore
            #expect(opensDuringCap <= 2, "no stampede of apps.connections.open after too_many_websockets: \(opensDuringCap)")
            await slack.limitConnections(to: nil)
            #expect(await replaced(after: refused), "the service connected again after too_many_websockets: \(c.rig.logTail)")
            // link_disabled: the service stops reconnecting and reports it; an operator restart brings it back.
            try? await Task.sleep(for: c.dice.seconds(0.5...1.5))
            let opensBeforeDisable = await slack.calls("apps.connections.open").count
            await slack.sendDisconnect(reason: "link_disabled")
            c.ledger.fault("disconnect link_disabled")
            #expect(await eventually(timeout: .seconds(10)) { (try? await c.rig.request(.GET, "/readyz"))?.status == 503 },
                    "/readyz reports the dead Slack link")
            try? await Task.sleep(for: .seconds(2))
            #expect(await slack.calls("apps.connections.open").count == opensBeforeDisable, "no reconnect after link_disabled")
            #expect(await slack.liveConnections().isEmpty)
            #expect(await c.rig.terminate() == 0, "a clean stop after link_disabled: \(c.rig.logTail)")
            try c.rig.launch()
            #expect(await c.rig.waitUntilServing(), "back after the restart: \(c.rig.logTail)")
        }
    }

    @Test("Slow acks from our side: the whole process stalls (SIGSTOP) past Slack's 3 s deadline; redeliveries are acked and applied once",
          .timeLimit(.minutes(3)))
    func stalledProcess() async throws {
        try await Self.run("stalls past the ack deadline", check: { report in
            #expect(report.lateAcks > 0, "the stalls made acks late (Slack redelivered meanwhile): \(report.figures)")
        }) { c in
            for _ in 0..<3 where c.isWorking {
                try? await Task.sleep(for: c.dice.seconds(1.0...2.5))
                async let stall: Void = c.rig.pause(for: c.dice.seconds(3.5...5.0))
                // Clicks that arrive while it stalls: their acks come late, Slack redelivers them meanwhile.
                try? await Task.sleep(for: .milliseconds(300))
                for _ in 0..<c.dice.int(1...3) { await c.workload.clickSomeApprovalCard() }
                await stall
                c.ledger.fault("process stalled past the ack deadline")
            }
        }
    }

    @Test("Web API failures: 429 with Retry-After, 5xx (some after the call took effect), ok:false internal_error: cards end right, posted once, no hammering",
          .timeLimit(.minutes(3)))
    func webAPIFailures() async throws {
        try await Self.run("Web API 429 and 5xx") { c in
            let slack = c.rig.fake
            // A bounded number: an injection waits for the method's next call, and a rarely called one
            // (conversations.history, only when reconciling) would otherwise pile them up. Every kind in
            // turn, twice, so each seed injects each kind.
            for round in 0..<14 where c.isWorking {
                try? await Task.sleep(for: c.dice.seconds(0.3...1.0))
                switch round % 7 {
                case 0: await slack.rateLimitNext("chat.postMessage", retryAfter: c.dice.int(1...2))
                case 1: await slack.rateLimitNext("chat.update", retryAfter: c.dice.int(1...2))
                case 2: await slack.failNext("chat.postMessage", status: 500, applied: true)  // landed; the reply was lost
                case 3: await slack.failNext("chat.postMessage", status: 503)
                case 4: await slack.failNext("chat.update", status: c.dice.pick([500, 502, 503]), applied: c.dice.chance(0.5))
                case 5: await slack.failNext(c.dice.pick(["chat.postMessage", "chat.update"]), error: "internal_error")
                default: await slack.failNext(c.dice.pick(["chat.postEphemeral", "conversations.history", "conversations.open"]), status: 500)
                }
            }
            // Faults that were hit (an injection the service never ran into is not counted).
            let hit = await slack.calls().filter { $0.status != 200 || $0.error == "internal_error" }
            for call in hit { c.ledger.fault("\(call.method) \(call.status == 200 ? "ok:false" : String(call.status))") }
            // The kinds on the calls every workload makes were each met by the service.
            let met = Set(hit.map { "\($0.method) \($0.status == 200 ? "ok:false" : $0.status >= 500 ? "5xx" : String($0.status))" })
            for kind in ["chat.postMessage 429", "chat.update 429", "chat.postMessage 5xx", "chat.update 5xx"] {
                #expect(met.contains(kind), "the service met \(kind): \(met.sorted())")
            }
            #expect(met.contains("chat.postMessage ok:false") || met.contains("chat.update ok:false"), "the service met ok:false: \(met.sorted())")
        }
    }

    @Test("Duplicated and replayed deliveries: every event twice, acks ignored, old events replayed minutes-late style, across a restart: one effect each",
          .timeLimit(.minutes(3)))
    func duplicatedAndReplayedDeliveries() async throws {
        var options = Workload.Options()
        options.duplicateDeliveries = true
        try await Self.run("duplicated and replayed deliveries", options: options) { c in
            var restarted = false
            while c.isWorking {
                try? await Task.sleep(for: c.dice.seconds(0.5...1.2))
                let sent = c.ledger.events
                if !sent.isEmpty { await c.workload.replay(c.dice.pick(sent)) }
                if !restarted, sent.count > 8 {
                    // Replays after a restart hit the inbox kept in the database, not memory.
                    restarted = true
                    await c.rig.kill()
                    c.ledger.fault("restart between deliveries")
                    try c.rig.launch()
                }
            }
            for event in c.ledger.events.prefix(10) { await c.workload.replay(event) }
        }
    }

    @Test("A webhook receiver that answers 500, then 503 with Retry-After, then hangs past the timeout: every webhook delivered, signed, same id",
          .timeLimit(.minutes(3)))
    func webhookReceiverFailures() async throws {
        try await Self.run("webhook receiver failures") { c in
            let receiver = c.rig.receiver
            try? await Task.sleep(for: .seconds(1))
            receiver.behave(.fail(status: 500, retryAfter: nil))
            try? await Task.sleep(for: .seconds(3))
            receiver.behave(.fail(status: 503, retryAfter: 1))
            try? await Task.sleep(for: .seconds(2))
            receiver.behave(.hang(.seconds(11)))
            try? await Task.sleep(for: .seconds(1.5))
            receiver.behave(.accept)
            c.ledger.fault("webhook requests failed or hung", count: receiver.failuresAnswered)
        }
    }

    @Test("The database file locked by another process (BEGIN EXCLUSIVE) for 2–3 s and once past the 5 s busy timeout, while work arrives",
          .timeLimit(.minutes(3)))
    func databaseLocked() async throws {
        try await Self.run("database locked by another process") { c in
            for (round, seconds) in [2.0, 3.0, 7.0].enumerated() {
                try? await Task.sleep(for: c.dice.seconds(1.0...2.0))
                let locker = try await DatabaseLocker.hold(c.rig.databasePath, for: seconds)
                c.ledger.fault("database locked \(Int(seconds)) s")
                // Clicks that arrive while it is locked: recording them waits for the lock (or fails past the
                // busy timeout and goes unacked), so Slack redelivers them.
                for _ in 0..<c.dice.int(1...3) { await c.workload.clickSomeApprovalCard() }
                // And agents creating work meanwhile: they wait, or past the busy timeout hear 503 (never 500)
                // and retry with their Idempotency-Key.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await c.workload.flow(.quickApproval, 1000 + round, deadline: .now + .seconds(90)) }
                    group.addTask { await c.workload.flow(.review, 2000 + round, deadline: .now + .seconds(90)) }
                    _ = await eventually(timeout: .seconds(seconds + 10), poll: .milliseconds(50)) { !locker.isRunning }
                }
            }
        }
    }
}
