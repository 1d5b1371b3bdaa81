import AsyncHTTPClient
import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import NIOCore
import Synchronization

/// Scenario 4: from process start to ready. Spawns the server (`serve` with `HANDOFF_PORT=0`) on the
/// queue scenario's database (1,000,000 pending items), reads the port from its log, and polls
/// `/readyz` until it answers 200.
struct StartupScenario {
    let options: BenchOptions
    let context: BenchContext

    func run() async throws -> ScenarioReport {
        let filled = try await database()
        var report = ScenarioReport(
            name: "startup", title: "Start-up with \(Format.grouped(filled.pending)) pending review items",
            columns: ["run", "database ready (log)", "listening (log)", "/readyz 200", "child RSS", "CPU idle 3 s after"])
        var ready = Latencies()
        let (executable, arguments) = serverCommand()
        report.notes.append("server: \(([executable] + arguments).joined(separator: " ")) (HANDOFF_PORT=0, log level info)")
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            for run in 1...options.startupRuns {
                let r = try await startOnce(executable: executable, arguments: arguments, database: filled.path, policy: filled.policy, http: http)
                ready.add(r.ready)
                report.row("\(run)", Format.ms(r.databaseReady?.seconds), Format.ms(r.listening?.seconds), Format.ms(r.ready.seconds),
                           r.rss.map(Format.bytes) ?? "-", r.idleCPU.map { String(format: "%.0f%% of a core", $0 * 100) } ?? "-")
                report.metrics["run\(run)_ready_s"] = r.ready.seconds
                if let cpu = r.idleCPU { report.metrics["run\(run)_idle_cpu_fraction"] = cpu }
            }
            try await http.shutdown()
        } catch {
            try? await http.shutdown()
            throw error
        }
        report.metrics.merge(ready.metrics("ready")) { $1 }
        if let worst = ready.max {
            report.target("start-up to ready with \(Format.grouped(filled.pending)) pending (slowest of \(ready.count))", worst * 1000, .atMost,
                          1000, unit: "ms")
        }
        return report
    }

    /// The queue scenario's database when it ran; otherwise one filled here the same way.
    private func database() async throws -> (path: String, policy: String, pending: Int) {
        if let filled = context.filledQueue { return filled }
        let total = options.queueCheckpoints.last ?? 0
        let path = options.directory + "/startup.sqlite"
        let policyPath = options.directory + "/startup-policy.yaml"
        try BenchPolicy.text.write(toFile: policyPath, atomically: true, encoding: .utf8)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        context.track(path)
        let (workflow, _) = try await BenchPolicy.openWorkflow(path: path, options: options)
        let fill = ProgressBar("filling the queue", total: total)
        var created = 0
        while created < total {
            let count = min(QueueScenario.fillBatch, total - created)
            _ = try await workflow.enqueue(batch: (created..<(created + count)).map(QueueScenario.request), by: ActorID("bench:loader"))
            created += count
            fill.update(created)
        }
        fill.finish()
        try await workflow.store.close()
        context.filledQueue = (path, policyPath, total)
        return (path, policyPath, total)
    }

    /// `--server-binary PATH serve`, or this executable's `_serve` (the same code path as `handoff serve`).
    private func serverCommand() -> (String, [String]) {
        if let binary = options.serverBinary { return (binary, ["serve"]) }
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (own, ["_serve"])
    }

    struct Started {
        var databaseReady: Duration?
        var listening: Duration?
        var ready: Duration
        var rss: Int?
        /// CPU the server used while idle right after start (no requests), as a fraction of one core.
        var idleCPU: Double?
    }

    private func startOnce(executable: String, arguments: [String], database: String, policy: String, http: HTTPClient) async throws -> Started {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("SLACK_") || key.hasPrefix("MATRIX_") || key.hasPrefix("HANDOFF_"))
        }
        environment["HANDOFF_DATABASE"] = database
        environment["HANDOFF_POLICY"] = policy
        environment["HANDOFF_PORT"] = "0"
        environment["HANDOFF_LOG_LEVEL"] = "info"
        environment["HANDOFF_AI_PROVIDER"] = "none"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        process.standardError = stderr
        let log = ChildLog()
        let start = ContinuousClock.now
        try process.run()
        log.follow(stderr.fileHandleForReading, since: start)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        do {
            // The port, from the "listening" line (port 0 picks a free one).
            let deadline = start + .seconds(120)
            var port: Int?
            while port == nil {
                guard process.isRunning else { throw BenchError("the server exited (status \(process.terminationStatus)):\n\(log.text)") }
                guard ContinuousClock.now < deadline else { throw BenchError("the server did not listen within 120 s:\n\(log.text)") }
                port = log.port
                if port == nil { try await Task.sleep(for: .milliseconds(2)) }
            }
            var ready: Duration?
            while ready == nil {
                guard ContinuousClock.now < deadline else { throw BenchError("/readyz did not answer 200 within 120 s:\n\(log.text)") }
                let request = HTTPClientRequest(url: "http://127.0.0.1:\(port!)/readyz")
                if let response = try? await http.execute(request, timeout: .seconds(5)), response.status == .ok {
                    ready = ContinuousClock.now - start
                    _ = try? await response.body.collect(upTo: 1 << 16)
                } else {
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            let rss = childResident(process.processIdentifier)
            let cpu0 = childCPUSeconds(process.processIdentifier)
            let t0 = ContinuousClock.now
            try await Task.sleep(for: .seconds(3))
            let cpu1 = childCPUSeconds(process.processIdentifier)
            let idle = cpu0.flatMap { c0 in cpu1.map { ($0 - c0) / (ContinuousClock.now - t0).seconds } }
            process.terminate()  // SIGTERM: a graceful shutdown
            let stopDeadline = ContinuousClock.now + .seconds(15)
            while process.isRunning && ContinuousClock.now < stopDeadline { try await Task.sleep(for: .milliseconds(10)) }
            if process.isRunning { note("the server did not stop within 15 s of SIGTERM; killing it") }
            return Started(databaseReady: log.time(of: "database ready"), listening: log.time(of: "listening"), ready: ready!, rss: rss, idleCPU: idle)
        } catch {
            process.terminate()
            throw error
        }
    }

    /// User + system CPU seconds of a process, from /proc/PID/stat.
    private func childCPUSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14 and stime 15 (1-based).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func childResident(_ pid: Int32) -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// The child's stderr, line by line, each with the moment it arrived.
final class ChildLog: Sendable {
    private let lines = Mutex<[(at: Duration, text: String)]>([])

    /// Reads on a thread of its own (a blocking read must not hold a cooperative-pool thread).
    func follow(_ handle: FileHandle, since start: ContinuousClock.Instant) {
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                let now = ContinuousClock.now - start
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...newline)
                    lines.withLock { $0.append((now, line)) }
                }
            }
        }
    }

    var text: String { lines.withLock { $0.map(\.text).suffix(40).joined(separator: "\n") } }

    func time(of fragment: String) -> Duration? { lines.withLock { $0.first { $0.text.contains(fragment) }?.at } }

    /// The port from "HTTP API and dashboard listening address=http://127.0.0.1:PORT".
    var port: Int? {
        lines.withLock { all in
            for line in all where line.text.contains("listening") {
                if let match = line.text.firstMatch(of: #/127\.0\.0\.1:(\d+)/#), let port = Int(match.output.1) { return port }
            }
            return nil
        }
    }
}
