import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffSlack
import HandoffTesting
import Logging
import ServiceLifecycle

/// The Socket Mode client against the fake, with an in-memory sink, run as a Service in a ServiceGroup.
final class SocketHarness: Sendable {
    let fake: FakeSlack
    let http: HTTPClient
    let api: SlackWebAPIClient
    let sink: RecordingSink
    let client: SlackSocketModeClient
    let group: ServiceGroup
    let task: Task<Void, any Error>

    private init(fake: FakeSlack, http: HTTPClient, api: SlackWebAPIClient, sink: RecordingSink, client: SlackSocketModeClient,
                 group: ServiceGroup, task: Task<Void, any Error>)
    {
        self.fake = fake
        self.http = http
        self.api = api
        self.sink = sink
        self.client = client
        self.group = group
        self.task = task
    }

    /// Fast timings for tests: reconnects in tens of milliseconds instead of seconds.
    static func testConfiguration(appToken: String) -> SlackSocketModeClient.Configuration {
        var c = SlackSocketModeClient.Configuration(appToken: Secret(appToken))
        c.lifecycle.initialBackoff = .milliseconds(50)
        c.lifecycle.maxBackoff = .seconds(2)
        c.lifecycle.tooManyWebsocketsBackoff = .seconds(1)
        c.helloTimeout = .seconds(5)
        c.pingInterval = .seconds(5)
        return c
    }

    static func start(
        fake fakeConfiguration: FakeSlack.Configuration = FakeSlack.Configuration(), appToken: String? = nil,
        configure: (inout SlackSocketModeClient.Configuration) -> Void = { _ in }
    ) async throws -> SocketHarness {
        let fake = try await FakeSlack.start(fakeConfiguration)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var apiConfiguration = SlackWebAPIClient.Configuration()
        apiConfiguration.baseURL = fake.apiURL
        let api = SlackWebAPIClient(http: http, configuration: apiConfiguration)
        let sink = RecordingSink()
        var configuration = testConfiguration(appToken: appToken ?? fakeConfiguration.appToken)
        configure(&configuration)
        var logger = Logger(label: "test.socket")
        logger.logLevel = .warning
        let client = SlackSocketModeClient(api: api, sink: sink, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [client], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        return SocketHarness(fake: fake, http: http, api: api, sink: sink, client: client, group: group, task: task)
    }

    func waitConnected(timeout: Duration = .seconds(10)) async -> Bool {
        await eventually(timeout: timeout) { client.status == .connected }
    }

    /// The live socket the fake routes to (the newest that said hello).
    func liveSocket() async -> Int? { await fake.connections().filter { $0.helloAt != nil && $0.endedAt == nil }.map(\.id).max() }

    func stop() async {
        await shutDown(group, running: task, within: .seconds(10))
        try? await http.shutdown()
        await fake.stop()
    }
}
