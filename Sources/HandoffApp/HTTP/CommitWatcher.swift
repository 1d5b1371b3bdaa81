import Foundation
import HandoffStore
import Logging
import ServiceLifecycle
import Synchronization

/// Notices commits that other processes make to the same database — a decision from the CLI, from a
/// second `serve` on the same SQLite file — and wakes whoever waits for one (long-poll requests).
/// Commits made through this process's workflow wake their waiters directly (``EntityWaiters``); this
/// service covers everything else, one per process whatever the number of waiters.
///
/// How: SQLite's `PRAGMA data_version` on one dedicated read connection (see ``ChangeProbe``), asked
/// every `interval` **only while someone is subscribed**; when idle it sleeps until the first
/// subscription. It cannot tell which entity changed, so every subscriber is woken to re-read (one
/// indexed read each). Commits made by this process through its own pool change `data_version` too,
/// so those waiters may wake twice — the second read finds the same state and they wait on.
package final class CommitWatcher: Service, Sendable {
    package struct Configuration: Sendable {
        /// How often `data_version` is read while someone waits: the longest a waiter sleeps after
        /// another process committed.
        package var interval: Duration = .milliseconds(150)

        package init() {}
    }

    private struct State {
        var subscribers: [UInt64: @Sendable () -> Void] = [:]
        var nextToken: UInt64 = 0
    }

    package let configuration: Configuration
    private let store: any WorkflowStore
    private let logger: Logger
    private let state = Mutex(State())
    /// Signalled when the first subscriber arrives, so an idle watcher starts polling at once.
    private let demand = WakeSignal()
    private let rounds = Atomic<Int>(0)

    package init(store: any WorkflowStore, configuration: Configuration = Configuration(),
                 logger: Logger = Logger(label: "handoff.commit-watcher"))
    {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Calls `wake` after each commit another connection makes, until ``unsubscribe(_:)``.
    package func subscribe(_ wake: @escaping @Sendable () -> Void) -> UInt64 {
        let (token, first) = state.withLock { s -> (UInt64, Bool) in
            s.nextToken += 1
            s.subscribers[s.nextToken] = wake
            return (s.nextToken, s.subscribers.count == 1)
        }
        if first { demand.signal() }
        return token
    }

    package func unsubscribe(_ token: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: token) }
    }

    /// How many wake-ups are registered (for tests).
    package var subscribers: Int { state.withLock { $0.subscribers.count } }

    /// How many times `data_version` was read (for tests: none while nobody waits).
    package var probes: Int { rounds.load(ordering: .relaxed) }

    package func run() async throws {
        let probe: any ChangeProbe
        do {
            guard let made = try store.makeChangeProbe() else {
                logger.info("the store cannot notice other processes' commits; long-polls wake on this process's commits only")
                try? await gracefulShutdown()
                return
            }
            probe = made
        } catch {
            logger.warning("cannot watch for other processes' commits; long-polls wake on this process's commits only",
                           metadata: ["error": "\(error)"])
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            // The baseline is taken once, at start: a commit made while nobody waited shows as a change
            // at the first look after someone subscribes (a harmless extra re-read), so a commit that
            // lands between a waiter's first read and that look is never missed.
            var last = try? await probe.version()
            while !Task.isCancelled {
                if self.subscribers == 0 {
                    await self.demand.wait(timeout: .seconds(3600))
                    continue
                }
                try? await Task.sleep(for: self.configuration.interval)
                guard self.subscribers > 0, !Task.isCancelled else { continue }
                self.rounds.add(1, ordering: .relaxed)
                do {
                    let version = try await probe.version()
                    if version != last {
                        last = version
                        self.wakeAll()
                    }
                } catch {
                    self.logger.debug("could not read data_version", metadata: ["error": "\(error)"])
                }
            }
        }
        try? await probe.close()
    }

    private func wakeAll() {
        let wakes = state.withLock { Array($0.subscribers.values) }
        for wake in wakes { wake() }
    }
}
