import AsyncHTTPClient
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

// The crash and fault-injection tests (CrashTests.swift, FaultInjectionTests.swift) share this harness:
// `handoff serve` as a real process on one SQLite file, the fake Slack, a signing-checking webhook
// receiver, a seeded workload (ReliabilityWorkload.swift) and one end-state checker (ReliabilityChecks.swift).

/// A seeded random source (SplitMix64) shared by the tasks of one run, so a run's schedule (when to
/// kill, which fault, which person does what) is replayable from its printed seed.
final class Dice: Sendable {
    let seed: UInt64
    private let state: Mutex<UInt64>

    init(seed: UInt64) {
        self.seed = seed
        state = Mutex(seed)
    }

    /// The seed from `variable` when set (to replay a run), else a fresh one.
    static func fromEnvironment(_ variable: String) -> Dice {
        if let text = ProcessInfo.processInfo.environment[variable]?.trimmingCharacters(in: .whitespaces), let seed = UInt64(text) {
            return Dice(seed: seed)
        }
        return Dice(seed: UInt64.random(in: 1...UInt64(UInt32.max)))
    }

    /// An independent stream for one task of the run (the killer, the workload), derived from the seed and
    /// the name: what one task draws does not depend on when the others drew, so its schedule replays
    /// exactly from the seed.
    func stream(_ name: String) -> Dice {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return Dice(seed: seed ^ hash)
    }

    func next() -> UInt64 {
        state.withLock { s in
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Uniform in [0, 1).
    func unit() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }
    func chance(_ p: Double) -> Bool { unit() < p }
    func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }

    func seconds(_ range: ClosedRange<Double>) -> Duration {
        .milliseconds(Int64((range.lowerBound + unit() * (range.upperBound - range.lowerBound)) * 1000))
    }
}

/// A flag tasks of one run share (whether the chaos is still going).
final class SharedFlag: Sendable {
    private let value: Atomic<Bool>
    init(_ initial: Bool) { value = Atomic(initial) }
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set(_ new: Bool) { value.store(new, ordering: .relaxed) }
}

/// A counter tasks of one run share.
final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    var count: Int { value.load(ordering: .relaxed) }
    func increment() { value.add(1, ordering: .relaxed) }
}

/// A free TCP port on 127.0.0.1 (bound, read, released), for a server that must come back on the same port.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

// MARK: - Webhook receiver

/// A webhook receiver on 127.0.0.1 (port 0) as an agent would run one: it checks every
/// `Handoff-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 over `t.body`, computed here independently),
/// records each delivery with its `Handoff-Delivery` id, and can be told to fail for a while.
final class SignedWebhookReceiver: Sendable {
    /// How the receiver answers.
    enum Behaviour: Sendable, Equatable {
        case accept
        /// Answer this status (a 5xx), with `Retry-After` when given.
        case fail(status: Int, retryAfter: Int?)
        /// Hold the request this long before answering 200 (longer than the sender's timeout: it gives up).
        case hang(Duration)
    }

    struct Delivery: Sendable {
        var id: String?
        var event: String?
        var path: String
        var body: [UInt8]
        /// The signature header verified against the secret and a fresh timestamp.
        var signed: Bool
        /// What the receiver answered (200 only when the sender will count it delivered).
        var answered: Int
        var at: Date
    }

    private struct State {
        var deliveries: [Delivery] = []
        var behaviour: Behaviour = .accept
        var failuresAnswered = 0
    }

    private let state = Mutex(State())
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    let port: Int
    let secret: String

    private init(group: ServiceGroup, running: Task<Void, any Error>, port: Int, secret: String) {
        self.group = group
        self.running = running
        self.port = port
        self.secret = secret
    }

    static func start(secret: String) async throws -> SignedWebhookReceiver {
        let box = Mutex<SignedWebhookReceiver?>(nil)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let router = Hummingbird.Router()
        router.post("/hooks/:name") { request, context -> Response in
            var request = request
            let body = Array(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            guard let receiver = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            let answer = receiver.receive(headers: request.headers, path: context.parameters.get("name") ?? "", body: body)
            switch answer {
            case .accept:
                return Response(status: .ok)
            case .fail(let status, let retryAfter):
                var headers: HTTPFields = [:]
                if let retryAfter { headers[HTTPField.Name("Retry-After")!] = String(retryAfter) }
                return Response(status: .init(code: status), headers: headers)
            case .hang(let duration):
                try? await Task.sleep(for: duration)
                return Response(status: .ok)
            }
        }
        var logger = Logger(label: "webhook.receiver")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let running = Task { try await group.run() }
        var port = 0
        for await p in ports {
            port = p
            break
        }
        let receiver = SignedWebhookReceiver(group: group, running: running, port: port, secret: secret)
        box.withLock { $0 = receiver }
        return receiver
    }

    /// The callback URL for one kind of subject.
    func url(_ name: String) -> String { "http://127.0.0.1:\(port)/hooks/\(name)" }

    /// How the following requests are answered.
    func behave(_ behaviour: Behaviour) { state.withLock { $0.behaviour = behaviour } }

    var deliveries: [Delivery] { state.withLock { $0.deliveries } }
    /// Requests answered with something other than 200 at once (failures and hangs): faults injected.
    var failuresAnswered: Int { state.withLock { $0.failuresAnswered } }

    private func receive(headers: HTTPFields, path: String, body: [UInt8]) -> Behaviour {
        let signature = headers[HTTPField.Name("Handoff-Signature")!]
        let signed = signature.map { Self.verify(header: $0, body: body, secret: secret, now: Date()) } ?? false
        return state.withLock { s in
            let behaviour = s.behaviour
            let answered: Int
            switch behaviour {
            case .accept: answered = 200
            case .fail(let status, _): answered = status
            case .hang: answered = 0
            }
            if behaviour != .accept { s.failuresAnswered += 1 }
            s.deliveries.append(Delivery(id: headers[HTTPField.Name("Handoff-Delivery")!], event: headers[HTTPField.Name("Handoff-Event")!],
                                         path: path, body: body, signed: signed, answered: answered, at: Date()))
            return behaviour
        }
    }

    /// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with `t` within five minutes of now.
    static func verify(header: String, body: [UInt8], secret: String, now: Date) -> Bool {
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0]).trimmingCharacters(in: .whitespaces)] = String(kv[1]) }
        }
        guard let t = fields["t"], let seconds = Double(t), abs(seconds - now.timeIntervalSince1970) < 300, let v1 = fields["v1"] else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(t).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined() == v1
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        let running = self.running
        let finished = await withTaskGroup(of: Bool.self) { g in
            g.addTask { _ = try? await running.value; return true }
            g.addTask { try? await Task.sleep(for: .seconds(15)); return false }
            let first = await g.next() ?? false
            g.cancelAll()
            return first
        }
        if !finished { running.cancel() }
    }
}

// MARK: - The system under test

/// Every `handoff serve` the tests started and that may still run: killed when the test process exits,
/// however it exits (a failed `#require`, a time limit), so no server outlives the test run.
enum StartedServers {
    private static let pids = Mutex<Set<Int32>>([])
    private static let reaper: Void = {
        atexit {
            for pid in StartedServers.pids.withLock({ $0 }) { kill(pid, SIGKILL) }
        }
    }()

    static func add(_ pid: Int32) {
        _ = reaper
        pids.withLock { _ = $0.insert(pid) }
    }

    static func remove(_ pid: Int32) { pids.withLock { _ = $0.remove(pid) } }
}

/// `handoff serve` as a real separate process, one life at a time, always on the same SQLite file and
/// HTTP port, against the fake Slack and the webhook receiver. Lives can be killed (SIGKILL), paused
/// (SIGSTOP/SIGCONT) and restarted; the times nothing was running are kept, to tell which timers came
/// due while the service was down.
final class ServeRig: Sendable {
    /// The policy every reliability test runs with: short escalation timers, a quickly expiring approval
    /// policy, the fake Slack's people in the groups.
    static let policy = """
        groups:
          approvers: [slack:U0ALICE, slack:U0BOB]
          reviewers: [slack:U0CAROL]
          agents: [slack:U0DAVE]
          experts: [slack:U0ERIN]
        approvals:
          default: { deciders: [approvers], quorum: 1, expires_after: 1h, on_expiry: reject }
          quick: { deciders: [approvers], quorum: 1, expires_after: 3s, on_expiry: reject }
        queues:
          default: { reviewers: [reviewers], channel: reviews, lease: 15m, sla: 4h }
        escalation:
          tiers:
            - { name: ai }
            - { name: agent, group: agents, sla: 2s, ack_timeout: 2s, channel: agents }
            - { name: expert, group: experts, sla: 3s, ack_timeout: 1h, channel: experts }
        chat:
          channels:
            approvals: { slack: C0APPROVALS }
            reviews: { slack: C0REVIEWS }
            agents: { slack: C0AGENTS }
            experts: { slack: C0EXPERTS }
            default: { slack: C0HANDOFF }
        """

    /// `HANDOFF_RELIABILITY_KEEP=1` keeps every run's directory (database and logs), not only failed ones.
    static var keepFiles: Bool { ProcessInfo.processInfo.environment["HANDOFF_RELIABILITY_KEEP"] == "1" }

    struct Life {
        var number: Int
        var process: Process
        var log: String
    }

    let directory: TemporaryDirectory
    let fake: FakeSlack
    let receiver: SignedWebhookReceiver
    let port: Int
    let webhookSecret: String
    let agentKey: String
    let http: HTTPClient
    private let life = Mutex<Life?>(nil)
    private let livesStarted = Atomic<Int>(0)
    /// Wall-clock windows in which no process was serving (killed, or paused), end nil while it lasts.
    private let downtime = Mutex<[(from: Date, to: Date?)]>([])
    /// API answers 500 (an internal error) the workload got: under these faults the API owes a 503 or an answer.
    private let internalErrors = Mutex<[String]>([])
    /// API answers 503 (the service saying "busy, try again") the workload got and retried.
    let unavailable = SharedCounter()

    var databasePath: String { directory.file("handoff.sqlite") }
    var base: String { "http://127.0.0.1:\(port)" }
    var lives: Int { livesStarted.load(ordering: .relaxed) }

    private init(directory: TemporaryDirectory, fake: FakeSlack, receiver: SignedWebhookReceiver, port: Int, webhookSecret: String,
                 agentKey: String)
    {
        self.directory = directory
        self.fake = fake
        self.receiver = receiver
        self.port = port
        self.webhookSecret = webhookSecret
        self.agentKey = agentKey
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(30))
        configuration.connectionPool = .init(idleTimeout: .seconds(2))
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Prepares a database (schema, the agent's API key), the fake Slack and the receiver; no process yet.
    static func prepare(fake fakeConfiguration: FakeSlack.Configuration = FakeSlack.Configuration(), prefix: String) async throws -> ServeRig {
        let directory = try TemporaryDirectory(prefix: prefix)
        try policy.write(toFile: directory.file("handoff.yaml"), atomically: true, encoding: .utf8)
        let workflow = try await HandoffApplication.openWorkflow(databasePath: directory.file("handoff.sqlite"), policy: try PolicyFile.parse(policy))
        let issued = try await APIKeys.create(name: "deploy-bot", scope: .agent, store: workflow.store, now: Date())
        try await workflow.store.close()
        var fakeConfiguration = fakeConfiguration
        fakeConfiguration.wallClockTimestamps = true
        let fake = try await FakeSlack.start(fakeConfiguration)
        let secret = "whsec_reliability_" + APIKeys.randomToken(length: 16)
        let receiver = try await SignedWebhookReceiver.start(secret: secret)
        return ServeRig(directory: directory, fake: fake, receiver: receiver, port: try freeLoopbackPort(), webhookSecret: secret,
                        agentKey: issued.key)
    }

    var environment: [String: String] {
        [
            "HANDOFF_DATABASE": databasePath, "HANDOFF_POLICY": directory.file("handoff.yaml"),
            "HANDOFF_CARD_TEMPLATES": PackagePaths.cardTemplates, "HANDOFF_HOST": "127.0.0.1", "HANDOFF_PORT": String(port),
            "HANDOFF_WEBHOOK_SECRET": webhookSecret, "HANDOFF_LOG_LEVEL": "info",
            // The agent here polls from many flows at once; the rate limiter has its own tests.
            "HANDOFF_RATE_LIMIT": "1000", "HANDOFF_RATE_BURST": "1000",
            "SLACK_APP_TOKEN": fake.configuration.appToken, "SLACK_BOT_TOKEN": fake.configuration.botToken, "SLACK_API_URL": fake.apiURL,
        ]
    }

    /// Starts a new life of `handoff serve` (its log in serve-<n>.log).
    func launch() throws {
        let number = livesStarted.add(1, ordering: .relaxed).newValue
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.executable("handoff"))
        process.arguments = ["serve"]
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("SLACK_") || key.hasPrefix("HANDOFF_") || key.hasPrefix("MATRIX_") { env[key] = nil }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        let log = directory.file("serve-\(number).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        StartedServers.add(process.processIdentifier)
        try? handle.close()
        life.withLock { $0 = Life(number: number, process: process, log: log) }
        endDowntime()
    }

    private func endDowntime() {
        downtime.withLock { windows in
            if let last = windows.indices.last, windows[last].to == nil { windows[last].to = Date() }
        }
    }

    private func beginDowntime() {
        downtime.withLock { windows in
            if windows.last.map({ $0.to != nil }) ?? true { windows.append((Date(), nil)) }
        }
    }

    var isRunning: Bool { life.withLock { $0?.process.isRunning ?? false } }

    /// SIGKILL: no shutdown, no flush; waits (bounded) until the process is gone. True when the process
    /// was alive until then and the SIGKILL is what ended it (false: it had died by itself, or survived).
    @discardableResult
    func kill() async -> Bool {
        guard let current = life.withLock({ $0 }) else { return false }
        beginDowntime()
        let wasAlive = current.process.isRunning
        Glibc.kill(current.process.processIdentifier, SIGKILL)
        let gone = await eventually(timeout: .seconds(10), poll: .milliseconds(10)) { !current.process.isRunning }
        StartedServers.remove(current.process.processIdentifier)
        life.withLock { $0 = nil }
        return wasAlive && gone && current.process.terminationReason == .uncaughtSignal && current.process.terminationStatus == SIGKILL
    }

    /// SIGSTOP for a while, then SIGCONT: the whole process stalls (acks, HTTP, timers), as under a long GC
    /// pause or an overloaded host.
    func pause(for duration: Duration) async {
        guard let current = life.withLock({ $0 }) else { return }
        beginDowntime()
        Glibc.kill(current.process.processIdentifier, SIGSTOP)
        try? await Task.sleep(for: duration)
        Glibc.kill(current.process.processIdentifier, SIGCONT)
        endDowntime()
    }

    /// SIGTERM and a bounded wait; the exit status, or nil when it had to be killed.
    func terminate(within timeout: Duration = .seconds(30)) async -> Int32? {
        guard let current = life.withLock({ $0 }) else { return nil }
        Glibc.kill(current.process.processIdentifier, SIGTERM)
        let exited = await eventually(timeout: timeout, poll: .milliseconds(20)) { !current.process.isRunning }
        beginDowntime()
        life.withLock { $0 = nil }
        guard exited else {
            Glibc.kill(current.process.processIdentifier, SIGKILL)
            return nil
        }
        StartedServers.remove(current.process.processIdentifier)
        return current.process.terminationStatus
    }

    /// Waits until the HTTP API answers and the Slack socket said hello.
    func waitUntilServing(timeout: Duration = .seconds(30)) async -> Bool {
        await eventually(timeout: timeout, poll: .milliseconds(50)) {
            guard let answer = try? await self.request(.GET, "/healthz", timeout: .seconds(2)), answer.status == 200 else { return false }
            return await !self.fake.liveConnections().isEmpty
        }
    }

    /// The 500s the workload's calls got.
    var internalErrorAnswers: [String] { internalErrors.withLock { $0 } }

    /// When no process was serving.
    var downWindows: [(from: Date, to: Date?)] { downtime.withLock { $0 } }

    func wasDown(at date: Date) -> Bool {
        downWindows.contains { date >= $0.from && date <= ($0.to ?? .distantFuture) }
    }

    /// Every life's log, in order (for failure messages; never contains secrets worth hiding in a test).
    var logs: String {
        (1...max(1, lives)).map { (try? String(contentsOfFile: directory.file("serve-\($0).log"), encoding: .utf8)) ?? "" }
            .joined(separator: "\n----- restart -----\n")
    }

    /// The tail of the logs, for failure messages.
    var logTail: String { String(logs.suffix(6000)) }

    // MARK: HTTP API

    struct Answer: Sendable {
        var status: Int
        var body: [UInt8]
        var json: JSONValue { (try? JSONDecoder().decode(JSONValue.self, from: Data(body))) ?? .null }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One attempt; throws when the service cannot be reached (down, killed mid-request, paused past the timeout).
    func request(_ method: HTTPMethod, _ path: String, json: String? = nil, idempotencyKey: String? = nil,
                 timeout: TimeAmount = .seconds(5)) async throws -> Answer
    {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(agentKey)")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await http.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 4 << 20)
        return Answer(status: Int(response.status.code), body: Array(body.readableBytesView))
    }

    /// Retries until the service gives a final answer (2xx or 4xx other than 429) or the deadline passes:
    /// an agent that keeps trying through restarts, stalls and a busy database.
    func call(_ method: HTTPMethod, _ path: String, json: String? = nil, idempotencyKey: String? = nil, timeout: TimeAmount = .seconds(5),
              until deadline: ContinuousClock.Instant) async -> Answer?
    {
        while ContinuousClock.now < deadline {
            if let answer = try? await request(method, path, json: json, idempotencyKey: idempotencyKey, timeout: timeout) {
                if answer.status < 500, answer.status != 429 { return answer }
                if answer.status == 500 { internalErrors.withLock { $0.append("\(method) \(path): \(answer.text.prefix(200))") } }
                if answer.status == 503 { unavailable.increment() }
            }
            try? await Task.sleep(for: .milliseconds(150))
        }
        return nil
    }

    /// Stops everything: the process (SIGKILL if still there), the client, the fake, the receiver; the
    /// directory is removed only when asked (kept for a failed run's post-mortem).
    func shutdown(removeFiles: Bool) async {
        await kill()
        try? await http.shutdown()
        await fake.stop()
        await receiver.stop()
        if removeFiles { directory.remove() }
    }
}

// MARK: - Another process holding the database

/// Holds an exclusive lock on a SQLite file from another process (python3's sqlite3 module) for a while,
/// as a backup tool or a stray `sqlite3` shell would: writers elsewhere wait, then time out.
enum DatabaseLocker {
    /// Takes `BEGIN EXCLUSIVE` and holds it; returns once the lock is held (the process keeps it for `seconds`).
    static func hold(_ path: String, for seconds: Double) async throws -> Process {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile)
            ?? ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map { "\($0)/python3" }.first(where: FileManager.default.isExecutableFile)
        guard let python else { throw TestFailure("python3 is needed to lock the database from another process (it is in .ci/run's list)") }
        let script = """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            time.sleep(float(sys.argv[2]))
            c.execute('COMMIT')
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, path, String(seconds)]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for "locked" on a Dispatch thread (a blocking read must not hold a cooperative thread).
        let line = await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            DispatchQueue.global().async {
                let data = out.fileHandleForReading.availableData
                c.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        guard line.contains("locked") else { throw TestFailure("the locking process did not take the lock: \(line)") }
        return process
    }
}
