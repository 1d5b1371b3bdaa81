import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

/// The policy the HTTP tests run with: keys are identities (`key:<name>`).
let testPolicy = """
groups:
  approvers: [key:alice, key:bob]
  reviewers: [key:alice, key:carol]
  agents: [key:alice, key:erin]
  experts: [key:erin]
  labelers: [key:alice, key:carol, key:admin]
approvals:
  default: { deciders: [approvers], quorum: 1, expires_after: 4h }
  pair: { deciders: [approvers], quorum: 2, expires_after: 1h }
queues:
  default: { lease: 15m, sla: 4h, reviewers: [reviewers] }
  support: { lease: 10m, sla: 1h, reviews_required: 2, reviewers: [reviewers] }
routes:
  default: { threshold: 0.8, queue: default, escalation_floor: 0.2 }
escalation:
  tiers:
    - name: ai
    - { name: agent, group: agents, sla: 30m, ack_timeout: 2h }
    - { name: expert, group: experts, sla: 4h, ack_timeout: 8h }
"""

/// A real `handoff serve` service graph on a temporary SQLite file, listening on 127.0.0.1 port 0.
final class TestApp: Sendable {
    let directory: TemporaryDirectory
    let app: HandoffApplication
    let group: ServiceGroup
    let running: Task<Void, any Error>
    let port: Int
    let client: HTTPClient

    var workflow: Workflow { app.workflow }
    var base: String { "http://127.0.0.1:\(port)" }

    private init(directory: TemporaryDirectory, app: HandoffApplication, group: ServiceGroup, running: Task<Void, any Error>, port: Int) {
        self.directory = directory
        self.app = app
        self.group = group
        self.running = running
        self.port = port
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    static func start(policy: String = testPolicy, clock: any WorkflowClock = SystemClock(), directory: TemporaryDirectory? = nil,
                      configure: (inout HandoffConfiguration) -> Void = { _ in }) async throws -> TestApp
    {
        let directory = try directory ?? TemporaryDirectory(prefix: "handoff-http")
        try policy.write(toFile: directory.file("policy.yaml"), atomically: true, encoding: .utf8)
        var configuration = HandoffConfiguration()
        configuration.databasePath = directory.file("handoff.sqlite")
        configuration.policyPath = directory.file("policy.yaml")
        configuration.http.port = 0
        configuration.webhooks.dispatcher.pollInterval = .milliseconds(50)
        configure(&configuration)
        var logger = Logger(label: "handoff.test")
        logger.logLevel = .warning
        let app = try await HandoffApplication.build(configuration: configuration, clock: clock, logger: logger)
        let group = ServiceGroup(configuration: .init(services: app.services.map { .init(service: $0) }, logger: logger))
        let running = Task { try await group.run() }
        guard let server = app.httpServer else { throw TestFailure("the HTTP server is disabled") }
        let port = try await server.port()
        return TestApp(directory: directory, app: app, group: group, running: running, port: port)
    }

    /// Shuts the test's client down first (a keep-alive connection can hold up the server's graceful
    /// shutdown), then the services, then closes the store.
    func stop(removeFiles: Bool = true) async throws {
        try? await client.shutdown()
        await group.triggerGracefulShutdown()
        try await running.value
        try await app.workflow.store.close()
        if removeFiles { directory.remove() }
    }

    /// Creates an API key and returns the full key.
    func key(_ name: String, _ scope: APIKeyScope) async throws -> String {
        try await APIKeys.create(name: name, scope: scope, store: workflow.store, now: workflow.clock.now()).key
    }

    /// The standard cast: agent `erin-bot`, reviewers `alice` (approver + reviewer), `bob` (approver), `carol` (reviewer), `dave` (in no group), admin.
    func keys() async throws -> Keys {
        Keys(agent: try await key("erin-bot", .agent), alice: try await key("alice", .reviewer), bob: try await key("bob", .reviewer),
             carol: try await key("carol", .reviewer), dave: try await key("dave", .reviewer), admin: try await key("admin", .admin))
    }

    struct Keys: Sendable {
        var agent: String
        var alice: String
        var bob: String
        var carol: String
        var dave: String
        var admin: String
    }

    // MARK: Requests

    func request(_ method: HTTPMethod, _ path: String, key: String? = nil, json: String? = nil, body: [UInt8]? = nil,
                 headers: [(String, String)] = [], timeout: TimeAmount = .seconds(90)) async throws -> TestResponse
    {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(Array(json.utf8))
        } else if let body {
            request.body = .bytes(body)
        }
        let response = try await client.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: Array(buffer.readableBytesView))
    }

    func get(_ path: String, key: String? = nil) async throws -> TestResponse { try await request(.GET, path, key: key) }

    func post(_ path: String, key: String? = nil, _ json: String = "{}", headers: [(String, String)] = []) async throws -> TestResponse {
        try await request(.POST, path, key: key, json: json, headers: headers)
    }
}

/// Runs `body` with a started app and always stops it.
func withTestApp<T>(policy: String = testPolicy, clock: any WorkflowClock = SystemClock(),
                    configure: (inout HandoffConfiguration) -> Void = { _ in },
                    _ body: (TestApp) async throws -> T) async throws -> T
{
    let app = try await TestApp.start(policy: policy, clock: clock, configure: configure)
    do {
        let result = try await body(app)
        try await app.stop()
        return result
    } catch {
        try? await app.stop()
        throw error
    }
}

struct TestResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    var json: JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(body))) ?? .null
    }

    /// `error.code` of an error body.
    var errorCode: String? { json["error"]?["code"]?.string }
    var errorField: String? { json["error"]?["field"]?.string }
    var errorMessage: String? { json["error"]?["message"]?.string }

    func header(_ name: String) -> String? { headers.first(name: name) }
}

extension JSONValue {
    subscript(_ key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    subscript(_ index: Int) -> JSONValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var int: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d) where d == d.rounded(): Int64(d)
        default: nil
        }
    }
    var double: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
    var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    var array: [JSONValue] { if case .array(let a) = self { a } else { [] } }
    var isNull: Bool { self == .null }
}

/// Expects the one error shape with a status and code (and field, when given).
func expectError(_ response: TestResponse, _ status: Int, _ code: String, field: String? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(response.status == status, "expected \(status) \(code), got \(response.status): \(response.text)", sourceLocation: sourceLocation)
    #expect(response.errorCode == code, "expected code \(code): \(response.text)", sourceLocation: sourceLocation)
    #expect(response.errorMessage?.isEmpty == false, "an error says what was wrong: \(response.text)", sourceLocation: sourceLocation)
    #expect(response.header("Content-Type")?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
    if let field {
        #expect(response.errorField == field, "expected field \(field): \(response.text)", sourceLocation: sourceLocation)
    }
}

/// A webhook receiver on 127.0.0.1 port 0 that records what it gets and answers with scripted statuses.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var headers: [String: String]
        var body: [UInt8]
        var at: Date
    }

    private let state = Mutex<(received: [Received], script: [Int])>(([], []))
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    let port: Int

    /// Answers each request with the next scripted status (200 once the script is used up).
    static func start(script: [Int] = [], port: Int = 0) async throws -> WebhookReceiver {
        let box = Mutex<WebhookReceiver?>(nil)
        let portPromise = AsyncStream<Int>.makeStream()
        let router = Hummingbird.Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let status = box.withLock { $0 }?.record(Received(headers: headers, body: Array(body.readableBytesView), at: Date())) ?? 200
            return Response(status: .init(code: status))
        }
        var logger = Logger(label: "webhook.receiver")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                              onServerRunning: { channel in
                                  portPromise.continuation.yield(channel.localAddress?.port ?? 0)
                                  portPromise.continuation.finish()
                              }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        var iterator = portPromise.stream.makeAsyncIterator()
        guard let bound = await iterator.next() else { throw TestFailure("receiver did not start") }
        let receiver = WebhookReceiver(group: group, running: running, port: bound, script: script)
        box.withLock { $0 = receiver }
        return receiver
    }

    private init(group: ServiceGroup, running: Task<Void, any Error>, port: Int, script: [Int]) {
        self.group = group
        self.running = running
        self.port = port
        state.withLock { $0.script = script }
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    private func record(_ r: Received) -> Int {
        state.withLock { s in
            s.received.append(r)
            return s.script.isEmpty ? 200 : s.script.removeFirst()
        }
    }

    var received: [Received] { state.withLock { $0.received } }

    /// Waits until `count` requests arrived (or the timeout passes).
    func waitFor(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while received.count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return received
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
}


/// A test precondition that did not hold, with what was expected.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
