import Foundation
import HandoffCore
import HandoffWorkflow

/// Everything `handoff serve` and the CLI read from flags and the environment.
package struct HandoffConfiguration: Sendable {
    /// The SQLite file (`--database`, `HANDOFF_DATABASE`); created and migrated on first start.
    package var databasePath: String = "./handoff.sqlite"
    /// The policy file (`--policy`, `HANDOFF_POLICY`); `./handoff.yaml` is used when present.
    package var policyPath: String?
    /// How often the scheduler looks for due timers when none is known to be due sooner.
    package var schedulerInterval: Duration = .seconds(1)

    package init() {}

    /// Reads `HANDOFF_*` variables; explicit flags override them afterwards.
    package static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> HandoffConfiguration {
        var c = HandoffConfiguration()
        if let db = env["HANDOFF_DATABASE"], !db.isEmpty { c.databasePath = db }
        if let policy = env["HANDOFF_POLICY"], !policy.isEmpty { c.policyPath = policy }
        return c
    }

    /// The policy to run with, and where it came from (for the start-up log line).
    package func loadPolicy() throws -> (policy: WorkflowPolicy, source: String) {
        if let path = policyPath {
            return (try PolicyFile.load(path: path), path)
        }
        if FileManager.default.fileExists(atPath: "handoff.yaml") {
            return (try PolicyFile.load(path: "handoff.yaml"), "handoff.yaml")
        }
        return (WorkflowPolicy(), "built-in defaults (no handoff.yaml; groups are empty, so only admins can decide)")
    }
}
