import ArgumentParser
import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging

/// `handoff-bench`: the performance scenarios of issue 9, each against the real components (a SQLite
/// file with the production pragmas, the fake Slack over a loopback websocket, the real service graph).
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handoff-bench",
        abstract: "Measure Handoff: chat decisions end to end, durable decisions, a review queue at 1M items, start-up, labeling.",
        discussion: """
            Release numbers: `swift build -c release --product handoff-bench && .build/release/handoff-bench`. \
            `--quick` runs small sizes in seconds (what CI runs with the debug build; its numbers are not targets).
            """,
        subcommands: [Run.self, ServeChild.self],
        defaultSubcommand: Run.self)
}

enum Scenario: String, CaseIterable, ExpressibleByArgument, Codable, Sendable {
    case chat, durable, queue, startup, labeling
}

/// Sizes and switches every scenario reads.
struct BenchOptions: Sendable {
    var quick: Bool
    var directory: String
    var groupCommit: Bool
    var chatRates: [Int]
    var chatSeconds: Double
    var chatMaxEnvelopes: Int
    var durableDecisions: Int
    /// Decisions in flight at once; the durable scenario runs each and reports the best as the maximum rate.
    var durableConcurrency: [Int]
    var queueCheckpoints: [Int]
    var claimsPerCheckpoint: Int
    var startupRuns: Int
    var labels: Int
    var labelers: Int
    var labelsPerLabeler: Int
    var serverBinary: String?
    /// WAL pages at which a background checkpoint starts; 0 leaves checkpoints inside commits (SQLite's default).
    var checkpointPages: Int32? = nil
    /// Writes per group commit (default: the store's).
    var maxBatch: Int? = nil

    var sqlite: SQLiteDatabase.Configuration {
        var c = SQLiteDatabase.Configuration()
        c.groupCommit = groupCommit
        if let checkpointPages { c.backgroundCheckpointPages = checkpointPages }
        if let maxBatch { c.maxWritesPerCommit = maxBatch }
        return c
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run scenarios (all by default).")

    @Argument(help: "Scenarios to run: \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")) (default: all).")
    var scenarios: [Scenario] = []

    @Flag(help: "Small sizes: the whole run takes seconds, even in a debug build. Its numbers are not targets.")
    var quick = false

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(help: "Directory for the benchmark's databases (default: a fresh one under the temporary directory). The disk it is on is what durable numbers measure.")
    var directory: String?

    @Flag(help: "Keep the databases afterwards.")
    var keep = false

    @Flag(name: .customLong("no-group-commit"), help: "One transaction per write (how the store worked before group commit).")
    var noGroupCommit = false

    @Option(help: "Pending review items to fill the queue to (checkpoints at 1%, 10% and 100%; default 1,000,000, quick 20,000).")
    var items: Int?

    @Option(help: "Decisions in the durable scenario (default 20,000, quick 400).")
    var decisions: Int?

    @Option(help: "Decisions in flight at once in the durable scenario (default: 8, then 64, as many as a Slack socket processes at once).")
    var writers: Int?

    @Option(help: "Seconds each fixed chat rate is offered for (default 5, quick 1).")
    var seconds: Double?

    @Option(name: .customLong("server-binary"), help: "A `handoff` executable for the start-up scenario (default: this binary, which runs the same `serve` code path).")
    var serverBinary: String?

    @Option(name: .customLong("checkpoint-pages"), help: "WAL pages at which a background checkpoint starts (default 1000); 0 checkpoints inside commits, as before.")
    var checkpointPages: Int32?

    @Option(name: .customLong("max-batch"), help: "Writes one group commit holds at most (default: the store's).")
    var maxBatch: Int?

    @Flag(name: .customLong("in-process"), help: "Run every scenario in this process (default: each group of scenarios in a fresh child process, so memory and threads one leaves behind do not weigh on the next).")
    var inProcess = false

    /// Set on the child processes the parent starts: print only the tables, write the reports as JSON.
    @Flag(help: .hidden)
    var child = false

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["HANDOFF_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
            return handler
        }
        let chosen = scenarios.isEmpty ? Scenario.allCases : Scenario.allCases.filter(scenarios.contains)
        let root: String
        let madeRoot: Bool
        if let directory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            root = URL(fileURLWithPath: directory).standardizedFileURL.path
            madeRoot = false
        } else {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("handoff-bench-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            madeRoot = true
        }
        let total = items ?? (quick ? 20_000 : 1_000_000)
        let options = BenchOptions(
            quick: quick, directory: root, groupCommit: !noGroupCommit,
            chatRates: quick ? [100, 200] : [500, 1000, 2000], chatSeconds: seconds ?? (quick ? 1 : 5),
            chatMaxEnvelopes: quick ? 300 : 10_000,
            durableDecisions: decisions ?? (quick ? 400 : 20_000), durableConcurrency: writers.map { [$0] } ?? [8, 64],
            queueCheckpoints: [max(1, total / 100), max(1, total / 10), total],
            claimsPerCheckpoint: quick ? 200 : 5_000,
            startupRuns: quick ? 1 : 3,
            labels: quick ? 2_000 : 100_000, labelers: quick ? 100 : 1_000, labelsPerLabeler: quick ? 2 : 5,
            serverBinary: serverBinary, checkpointPages: checkpointPages, maxBatch: maxBatch)

        if child {
            let (reports, failures) = await Self.run(chosen, options: options, context: BenchContext(options: options))
            if let json { try JSONEncoder().encode(ChildReport(scenarios: reports, failures: failures)).write(to: URL(fileURLWithPath: json)) }
            if !keep { try? FileManager.default.removeItem(atPath: root) }
            return
        }

        let machine = MachineInfo.current(directory: root, sqliteVersion: try? await sqliteVersion(in: root))
        say("# handoff-bench\(quick ? " --quick (small sizes; not targets)" : "")")
        say("command: \(CommandLine.arguments.joined(separator: " "))")
        machine.lines.forEach(say)
        if noGroupCommit { say("group commit: OFF (one transaction per write)") }
        if let checkpointPages { say("background checkpoints from \(checkpointPages) WAL pages\(checkpointPages == 0 ? " (OFF: inside commits)" : "")") }

        let context = BenchContext(options: options)
        var reports: [ScenarioReport] = []
        var failures: [String] = []
        let started = ContinuousClock.now
        if inProcess {
            (reports, failures) = await Self.run(chosen, options: options, context: context)
        } else {
            // One child process per group; the start-up scenario reuses the queue scenario's database.
            let groups: [[Scenario]] = [[.chat], [.durable], [.queue, .startup], [.labeling]]
                .map { $0.filter(chosen.contains) }.filter { !$0.isEmpty }
            for group in groups {
                let (r, f) = await runChild(group, root: root)
                reports += r
                failures += f
            }
        }

        let checks = reports.flatMap(\.targets)
        if !checks.isEmpty {
            say("\n## Targets\(quick ? " (quick run: debug sizes, not the targets' conditions)" : "")\n")
            checks.forEach { say("  " + $0.line) }
        }
        say("\ntotal \(Format.seconds((ContinuousClock.now - started).seconds))")
        if let json {
            let document = JSONReport(machine: machine, quick: quick, groupCommit: !noGroupCommit,
                                      command: CommandLine.arguments.joined(separator: " "), scenarios: reports, failures: failures)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(document).write(to: URL(fileURLWithPath: json))
            note("wrote \(json)")
        }
        if !keep {
            if madeRoot {
                try? FileManager.default.removeItem(atPath: root)
            } else {
                context.removeDatabases()
            }
        } else {
            note("databases kept in \(root)")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// Runs scenarios one after another in this process; a failure is reported and the next one runs.
    static func run(_ scenarios: [Scenario], options: BenchOptions, context: BenchContext) async -> ([ScenarioReport], [String]) {
        var reports: [ScenarioReport] = []
        var failures: [String] = []
        for scenario in scenarios {
            let t0 = ContinuousClock.now
            note("== \(scenario.rawValue)")
            do {
                let report: ScenarioReport
                switch scenario {
                case .chat: report = try await ChatScenario(options: options).run()
                case .durable: report = try await DurableScenario(options: options).run()
                case .queue: report = try await QueueScenario(options: options, context: context).run()
                case .startup: report = try await StartupScenario(options: options, context: context).run()
                case .labeling: report = try await LabelingScenario(options: options).run()
                }
                say(report.printed())
                reports.append(report)
            } catch {
                failures.append("\(scenario.rawValue): \(error)")
                say("\n## \(scenario.rawValue): FAILED: \(error)\n")
            }
            note("== \(scenario.rawValue) took \(Format.seconds((ContinuousClock.now - t0).seconds))")
        }
        return (reports, failures)
    }

    /// Runs a group of scenarios in a fresh child process (this executable, `run --child`); its tables
    /// go straight to stdout, its reports come back as JSON.
    private func runChild(_ group: [Scenario], root: String) async -> ([ScenarioReport], [String]) {
        let name = group.map(\.rawValue).joined(separator: "+")
        let directory = root + "/" + name
        let reportPath = root + "/\(name).report.json"
        var arguments = ["run"] + group.map(\.rawValue) + ["--child", "--keep", "--directory", directory, "--json", reportPath]
        if quick { arguments.append("--quick") }
        if noGroupCommit { arguments.append("--no-group-commit") }
        if let checkpointPages { arguments += ["--checkpoint-pages", String(checkpointPages)] }
        if let maxBatch { arguments += ["--max-batch", String(maxBatch)] }
        if let items { arguments += ["--items", String(items)] }
        if let decisions { arguments += ["--decisions", String(decisions)] }
        if let writers { arguments += ["--writers", String(writers)] }
        if let seconds { arguments += ["--seconds", String(seconds)] }
        if let serverBinary { arguments += ["--server-binary", serverBinary] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return ([], ["\(name): could not start a child process: \(error)"])
        }
        // Waiting on a thread of its own (a blocking wait must not hold a cooperative-pool thread).
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                process.waitUntilExit()
                done.resume()
            }
        }
        defer {
            try? FileManager.default.removeItem(atPath: reportPath)
            if !keep { try? FileManager.default.removeItem(atPath: directory) }
        }
        guard let data = FileManager.default.contents(atPath: reportPath), let child = try? JSONDecoder().decode(ChildReport.self, from: data) else {
            let failure = "\(name): the child process ended with status \(process.terminationStatus) and no report"
            say("\n## \(failure)\n")
            return ([], [failure])
        }
        return (child.scenarios, child.failures)
    }

    private func sqliteVersion(in directory: String) async throws -> String? {
        let path = directory + "/version.sqlite"
        let database = try SQLiteDatabase(path: path)
        let version = try await database.read("SELECT sqlite_version() AS v").first?["v"].string
        try await database.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        return version
    }
}

struct ChildReport: Codable {
    var scenarios: [ScenarioReport]
    var failures: [String]
}

struct JSONReport: Codable {
    var machine: MachineInfo
    var quick: Bool
    var groupCommit: Bool
    var command: String
    var scenarios: [ScenarioReport]
    var failures: [String]
}

/// What scenarios hand on to each other: the queue scenario's filled database serves the start-up scenario.
final class BenchContext: @unchecked Sendable {
    let options: BenchOptions
    /// A database with this many pending review items (and its policy file), when one was built.
    var filledQueue: (path: String, policy: String, pending: Int)?
    private var databases: [String] = []

    init(options: BenchOptions) { self.options = options }

    func track(_ path: String) { databases.append(path) }

    func removeDatabases() {
        for path in databases {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
    }
}

/// The policy every non-chat scenario runs with (written to a file for the start-up scenario's server).
enum BenchPolicy {
    static let reviewers = (1...8).map { "bench:reviewer\($0)" }
    static let text = """
        groups:
          approvers: [bench:alice, bench:bob]
          reviewers: [\(reviewers.joined(separator: ", "))]
          agents: []
          experts: []
          labelers: []
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 24h, on_expiry: reject }
        queues:
          default: { reviewers: [reviewers], lease: 15m, sla: 4h }
        """

    static func policy() throws -> WorkflowPolicy { try PolicyFile.parse(text, source: "handoff-bench policy") }

    /// Opens a workflow on a database file with the production connection settings.
    static func openWorkflow(path: String, options: BenchOptions, policy: WorkflowPolicy? = nil) async throws -> (Workflow, SQLiteDatabase) {
        let database = try SQLiteDatabase(path: path, configuration: options.sqlite)
        let store = try await SQLWorkflowStore(database: database)
        let workflow = Workflow(store: store, configuration: Workflow.Configuration(policy: try policy ?? Self.policy()),
                                logger: Logger(label: "handoff-bench.workflow"))
        return (workflow, database)
    }
}

/// `handoff-bench _serve`: exactly what `handoff serve` runs (the configuration from the environment,
/// `HandoffApplication.build`, `run`), so the start-up scenario can spawn a server even when only this
/// product was built.
struct ServeChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_serve", abstract: "Run the service as `handoff serve` does (for the start-up scenario).", shouldDisplay: false)

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["HANDOFF_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "handoff")
        let app = try await HandoffApplication.build(configuration: HandoffConfiguration.fromEnvironment(), logger: logger)
        try await app.run()
    }
}
