import ServiceLifecycle

/// Triggers `group`'s graceful shutdown and waits for the task running it, at most `limit`; a stuck
/// shutdown (a websocket server whose client keeps its connection open can hang) is cancelled.
/// Returns whether it finished on its own.
@discardableResult
package func shutDown(_ group: ServiceGroup, running task: Task<Void, any Error>, within limit: Duration) async -> Bool {
    await group.triggerGracefulShutdown()
    let finished = await withTaskGroup(of: Bool.self) { g in
        g.addTask { _ = try? await task.value; return true }
        g.addTask { try? await Task.sleep(for: limit); return false }
        let first = await g.next() ?? false
        g.cancelAll()
        return first
    }
    if !finished { task.cancel() }
    return finished
}
