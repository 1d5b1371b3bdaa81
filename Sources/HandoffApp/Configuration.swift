import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow

/// Everything `handoff serve` and the CLI read from flags and the environment.
package struct HandoffConfiguration: Sendable {
    /// The SQLite file (`--database`, `HANDOFF_DATABASE`); created and migrated on first start.
    package var databasePath: String = "./handoff.sqlite"
    /// SQLite connection settings (production pragmas, group commit); the benchmark turns group commit off to compare.
    package var database = SQLiteDatabase.Configuration()
    /// The policy file (`--policy`, `HANDOFF_POLICY`); `./handoff.yaml` is used when present.
    package var policyPath: String?
    /// How often the scheduler looks for due timers when none is known to be due sooner.
    package var schedulerInterval: Duration = .seconds(1)
    /// The HTTP API and dashboard: `--host`/`HANDOFF_HOST`, `--port`/`HANDOFF_PORT` (127.0.0.1:8080), `HANDOFF_TEMPLATES`.
    package var http = HTTPServerService.Configuration()
    /// Webhook delivery: the signing secret (`HANDOFF_WEBHOOK_SECRET`, else generated once and kept in the database), retries.
    package var webhooks = WebhookDeliverer.Configuration()
    /// Slack: `SLACK_APP_TOKEN` + `SLACK_BOT_TOKEN` (Socket Mode), or `SLACK_BOT_TOKEN` + `SLACK_SIGNING_SECRET` (HTTP).
    package var slack = SlackSettings()
    /// Matrix: `MATRIX_HOMESERVER` + `MATRIX_USER` + `MATRIX_PASSWORD` (or `MATRIX_ACCESS_TOKEN`).
    package var matrix = MatrixSettings()
    /// The AI layer: `HANDOFF_AI_PROVIDER`, `HANDOFF_AI_MODEL`, `HANDOFF_AI_BASE_URL`, the key (`HANDOFF_AI_API_KEY`,
    /// `ANTHROPIC_API_KEY` or `OPENAI_API_KEY`), timeouts; the policy file's `ai:` section (see AIRuntime.swift).
    package var ai = AIOptions()

    package init() {}

    /// Reads `HANDOFF_*` variables; explicit flags override them afterwards.
    package static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> HandoffConfiguration {
        var c = HandoffConfiguration()
        if let db = env["HANDOFF_DATABASE"], !db.isEmpty { c.databasePath = db }
        if let policy = env["HANDOFF_POLICY"], !policy.isEmpty { c.policyPath = policy }
        if let host = env["HANDOFF_HOST"], !host.isEmpty { c.http.host = host }
        if let port = env["HANDOFF_PORT"].flatMap(Int.init), (0...65535).contains(port) { c.http.port = port }
        if let templates = env["HANDOFF_TEMPLATES"], !templates.isEmpty { c.http.dashboard.templatesDirectory = templates }
        if let secret = env["HANDOFF_WEBHOOK_SECRET"], !secret.isEmpty { c.webhooks.secret = Secret(secret) }
        if let rate = env["HANDOFF_RATE_LIMIT"].flatMap(Double.init), rate >= 0 { c.http.rateLimit.requestsPerSecond = rate }
        if let burst = env["HANDOFF_RATE_BURST"].flatMap(Double.init), burst >= 1 { c.http.rateLimit.burst = burst }
        if let bytes = env["HANDOFF_MAX_BODY_BYTES"].flatMap(Int.init), bytes > 0 { c.http.maxBodySize = bytes }
        if env["HANDOFF_SECURE_COOKIES"] == "1" { c.http.dashboard.secureCookies = true }
        c.slack = SlackSettings.fromEnvironment(env)
        c.matrix = MatrixSettings.fromEnvironment(env)
        c.ai = AIOptions.fromEnvironment(env)
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
