import Synchronization

/// Wakes one waiting loop early (a commit happened) or lets it time out. Signals coalesce: any number
/// of signals while nobody waits wake the next waiter once.
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    package init() {}

    package func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when signalled, after `timeout`, or when the task is cancelled.
    package func wait(timeout: Duration) async {
        if state.withLock({ s in
            if s.pending { s.pending = false; return true }
            return false
        }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { s -> Bool in
                            if s.pending { s.pending = false; return true }
                            if let old = s.waiter { old.resume() }
                            s.waiter = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    self.releaseWaiter()
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.releaseWaiter()
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func releaseWaiter() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}
