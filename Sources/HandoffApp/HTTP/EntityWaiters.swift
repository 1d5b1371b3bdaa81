import Foundation
import HandoffCore
import HandoffWorkflow
import Synchronization

/// Long-poll support: requests wait for a commit that touches their entity, woken by the workflow's
/// commit listener — no polling loop for this process's commits. Commits by other processes (the CLI,
/// another `serve` on the same file) wake every waiter through the process's ``CommitWatcher``, when
/// one is given. A waiter registers *before* it reads the entity, so a commit between the read and the
/// wait is never missed (its signal is kept until the wait begins).
package final class EntityWaiters: Sendable {
    private struct State {
        var waiters: [EntityRef: [UInt64: WakeSignal]] = [:]
        var nextToken: UInt64 = 0
        var listenerToken: UInt64?
        var shuttingDown = false
    }

    private let state = Mutex(State())
    let workflow: Workflow
    /// Wakes waiters on other processes' commits; nil: this process's commits only.
    let commits: CommitWatcher?

    package init(workflow: Workflow, commits: CommitWatcher? = nil) {
        self.workflow = workflow
        self.commits = commits
    }

    /// Starts listening to commits.
    package func start() {
        let token = workflow.addListener { [weak self] refs in self?.committed(refs) }
        state.withLock { $0.listenerToken = token; $0.shuttingDown = false }
    }

    /// Stops listening and releases every waiter.
    package func stop() {
        let token = state.withLock { s -> UInt64? in
            defer { s.listenerToken = nil }
            return s.listenerToken
        }
        if let token { workflow.removeListener(token) }
        shutdown()
    }

    /// Graceful shutdown: every waiting request answers now with the current state, and new waits do not block.
    package func shutdown() {
        let all = state.withLock { s -> [WakeSignal] in
            s.shuttingDown = true
            return s.waiters.values.flatMap(\.values)
        }
        for signal in all { signal.signal() }
    }

    /// How many requests are waiting (for tests and metrics).
    package var count: Int { state.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }

    private func committed(_ refs: [EntityRef]) {
        let signals = state.withLock { s -> [WakeSignal] in
            refs.flatMap { s.waiters[$0].map { Array($0.values) } ?? [] }
        }
        for signal in signals { signal.signal() }
    }

    /// Reads the entity with `load`; while `isFinal` is false, waits for a commit on `ref` (or the
    /// deadline, or shutdown) and reads again. Returns the last value read.
    package func wait<Value: Sendable>(
        for ref: EntityRef, timeout: Duration, load: () async throws -> Value, isFinal: (Value) -> Bool
    ) async throws -> Value {
        let signal = WakeSignal()
        let token: UInt64? = state.withLock { s in
            guard !s.shuttingDown else { return nil }
            s.nextToken += 1
            s.waiters[ref, default: [:]][s.nextToken] = signal
            return s.nextToken
        }
        let elsewhere = token == nil ? nil : commits?.subscribe { signal.signal() }
        defer {
            if let elsewhere { commits?.unsubscribe(elsewhere) }
            if let token {
                state.withLock { s in
                    s.waiters[ref]?.removeValue(forKey: token)
                    if s.waiters[ref]?.isEmpty == true { s.waiters.removeValue(forKey: ref) }
                }
            }
        }
        let deadline = ContinuousClock.now + timeout
        var value = try await load()
        while token != nil, !isFinal(value), !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, !state.withLock({ $0.shuttingDown }) else { break }
            await signal.wait(timeout: remaining)
            value = try await load()
        }
        return value
    }
}
