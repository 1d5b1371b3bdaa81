import Foundation
import HandoffTesting
import Synchronization
import Testing

/// Issue 8, crash tests: `handoff serve` is SIGKILLed at random moments while agents and people keep
/// working, restarted on the same database each time, and at the end nothing acknowledged is lost and
/// nothing is applied twice (ReliabilityChecks.swift).
///
/// Replay a run with `HANDOFF_CRASH_SEED=<seed> swift test --filter CrashTests`.
@Suite(.serialized) struct CrashTests {
    static let kills = 20

    @Test("SIGKILL at ≥ 20 random moments under a steady stream of work: every acked event applied once, one decision each, grants used once, cards final, webhooks signed and delivered, timers fired once",
          .timeLimit(.minutes(6)))
    func killedAtRandomMomentsLosesNothing() async throws {
        let dice = Dice.fromEnvironment("HANDOFF_CRASH_SEED")
        print("crash test: seed=\(dice.seed) (replay with HANDOFF_CRASH_SEED=\(dice.seed))")
        let rig = try await ServeRig.prepare(prefix: "handoff-crash")
        do {
            try await Self.run(rig: rig, dice: dice)
        } catch {
            print("crash test: seed=\(dice.seed) failed: \(error); logs kept in \(rig.directory.path)")
            await rig.shutdown(removeFiles: false)
            throw error
        }
    }

    static func run(rig: ServeRig, dice: Dice) async throws {
        let ledger = Ledger()
        // The killer draws from its own stream: the kill schedule replays exactly from the seed (the
        // concurrent flows of the workload still interleave as timing has them).
        let killerDice = dice.stream("killer")
        let workload = Workload(rig: rig, ledger: ledger, dice: dice.stream("workload"))
        let started = ContinuousClock.now
        try rig.launch()
        try #require(await rig.waitUntilServing(), "handoff serve did not come up: \(rig.logTail)")

        let killed = SharedCounter()
        let diedBeforeKill = SharedCounter()
        let chaos = SharedFlag(true)
        let deadline = ContinuousClock.now + .seconds(200)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // The killer: up a random while, SIGKILL, down a random while (timers come due meanwhile), restart.
                for _ in 0..<Self.kills {
                    try? await Task.sleep(for: killerDice.seconds(0.6...2.6))
                    if killerDice.chance(0.5) {
                        // Aim some kills at an event in flight: between its arrival, its commit and its ack.
                        await workload.clickSomeApprovalCard()
                        try? await Task.sleep(for: killerDice.seconds(0...0.02))
                    }
                    // Every life must be alive when its kill comes: one that died by itself (a crash on
                    // start-up after an unclean stop, say) is a failure, not a kill.
                    if await rig.kill() {
                        killed.increment()
                    } else {
                        diedBeforeKill.increment()
                        Issue.record("handoff serve was not running when its kill came (it died by itself): \(rig.logTail)")
                    }
                    try? await Task.sleep(for: killerDice.seconds(0.1...1.6))
                    do {
                        try rig.launch()
                    } catch {
                        Issue.record("could not restart handoff serve: \(error)")
                        break
                    }
                }
                chaos.set(false)
            }
            group.addTask {
                await workload.run(count: nil, concurrency: 6, spacing: 0.15...0.5, deadline: deadline,
                                   keepGoing: { chaos.isSet })
            }
        }
        // The last life runs undisturbed until everything in hand is done, then stops cleanly.
        let settled = await EndStateChecks.settled(rig: rig, timeout: .seconds(60))
        #expect(settled, "the service did not settle after the last restart: \(rig.logTail)")
        try? await rig.http.shutdown()
        let status = await rig.terminate()
        #expect(status == 0, "the last life did not stop cleanly: \(rig.logTail)")

        let report = try await EndStateChecks.run(rig: rig, ledger: ledger)
        let took = ContinuousClock.now - started
        print("crash test: seed=\(dice.seed), kills=\(killed.count), \(report.figures), took \(took.components.seconds) s")
        #expect(killed.count >= Self.kills, "\(killed.count) kills of live processes (\(diedBeforeKill.count) had died by themselves)")
        #expect(report.eventsAcked > 0 && report.decisions > 0 && report.webhooksDelivered > 0, "the run did real work: \(report.figures)")
        #expect(report.timersDueWhileDown > 0, "some timers came due while the service was down: \(report.figures)")
        #expect(report.violations.isEmpty, """
            seed \(dice.seed): \(report.losses) losses (logs kept in \(rig.directory.path)):
            \(report.violations.prefix(40).joined(separator: "\n"))
            """)
        await rig.shutdown(removeFiles: report.violations.isEmpty && settled && !ServeRig.keepFiles)
    }
}
