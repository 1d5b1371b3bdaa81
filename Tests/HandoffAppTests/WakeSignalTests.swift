import Foundation
@testable import HandoffApp
import Testing

/// The wait the outbox dispatcher, the chat router and long-polls sleep on. A lost wake-up here is a
/// shutdown that never finishes, so every ordering of signal, timeout and cancellation must return.
@Suite struct WakeSignalTests {
    /// The hang the reviewer found: SIGTERM cancels the task before it starts waiting.
    @Test func waitingInAnAlreadyCancelledTaskReturns() async {
        let signal = WakeSignal()
        let started = ContinuousClock.now
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await signal.wait(timeout: .seconds(60))
        }
        await task.value
        #expect(ContinuousClock.now - started < .seconds(30), "a cancelled wait must not sit out its timeout")
    }

    @Test func aSignalBeforeTheWaitIsNotLost() async {
        let signal = WakeSignal()
        signal.signal()
        signal.signal()  // coalesces
        let started = ContinuousClock.now
        await signal.wait(timeout: .seconds(60))
        #expect(ContinuousClock.now - started < .seconds(30))
        // Coalesced: the next wait times out instead of returning at once.
        let second = ContinuousClock.now
        await signal.wait(timeout: .milliseconds(50))
        #expect(ContinuousClock.now - second >= .milliseconds(40))
    }

    @Test func aSignalWakesAWaiterAndCancellationWakesAnother() async {
        let signal = WakeSignal()
        let started = ContinuousClock.now
        async let woken: Void = signal.wait(timeout: .seconds(60))
        try? await Task.sleep(for: .milliseconds(50))
        signal.signal()
        await woken
        let waiter = Task { await signal.wait(timeout: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await waiter.value
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func manyRacesAllReturn() async {
        // Tiny timeouts race the waiter suspending; none may be lost.
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let signal = WakeSignal()
                    if i % 3 == 0 { signal.signal() }
                    let t = Task { await signal.wait(timeout: .microseconds(Int64(i % 7))) }
                    if i % 5 == 0 { t.cancel() }
                    await t.value
                }
            }
        }
    }
}
