import Synchronization

/// Wakes one waiting loop early (a commit happened) or lets it time out. Signals coalesce: any number
/// of signals while nobody waits wake the next waiter once.
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var slot: WaitSlot?
    }

    private let state = Mutex(State())

    package init() {}

    package func signal() {
        let slot = state.withLock { s -> WaitSlot? in
            if let slot = s.slot {
                s.slot = nil
                return slot
            }
            s.pending = true
            return nil
        }
        slot?.finish()
    }

    /// Returns when signalled, after `timeout`, or when the task is cancelled (also when it already was).
    package func wait(timeout: Duration) async {
        let slot = WaitSlot()
        let alreadySignalled = state.withLock { s -> Bool in
            if s.pending {
                s.pending = false
                return true
            }
            s.slot?.finish()  // one waiter at a time; an older one just returns
            s.slot = slot
            return false
        }
        if alreadySignalled { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                slot.finish()
            }
            await withTaskCancellationHandler {
                await slot.wait()
            } onCancel: {
                slot.finish()
            }
            group.cancelAll()
        }
        state.withLock { s in if s.slot === slot { s.slot = nil } }
    }
}

/// One wait: whoever comes first — signal, timeout or cancellation — finishes it, exactly once, and it
/// does not matter whether that happens before or after the waiter suspends.
final class WaitSlot: Sendable {
    private struct State {
        var finished = false
        var continuation: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func finish() {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.finished else { return nil }
            s.finished = true
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.finished { return true }
                s.continuation = c
                return false
            }
            if resumeNow { c.resume() }
        }
    }
}
