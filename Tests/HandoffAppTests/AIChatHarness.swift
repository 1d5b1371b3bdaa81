import Foundation
import HandoffAI
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// Provider waits recorded instead of slept, so retries and backoff cost no wall-clock time.
final class RecordedWaits: Sendable {
    private let waits = Mutex<[Duration]>([])
    var all: [Duration] { waits.withLock { $0 } }

    func policy() -> RetryPolicy {
        var p = RetryPolicy()
        p.jitter = 0
        p.sleep = { [self] d in waits.withLock { $0.append(d) } }
        return p
    }
}

/// Log lines a test can read (the "no AI provider configured" notice is said once).
final class CapturedLogs: Sendable {
    private let lines = Mutex<[(Logger.Level, String)]>([])
    var all: [(level: Logger.Level, message: String)] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test.ai") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            sink.lines.withLock { $0.append((event.level, event.message.description)) }
        }
    }
}

/// The chat stack against the fake Slack (``ChatHarness``) plus the AI layer against a fake Anthropic:
/// the whole question → answer → review → correction loop on loopback.
final class AIChatHarness: Sendable {
    static let policy = ChatHarness.defaultPolicy + """

        routes:
          default: { threshold: 0.8, queue: default, escalation_floor: 0.1 }
        ai:
          defaults:
            estimator: self_rating
            system_prompt: "You answer questions about Acme's shop."
            examples: 3
          chat:
            route: default
        """

    let chat: ChatHarness
    let llm: FakeAnthropic?
    let ai: AIRuntime
    /// The waits the provider asked for, and the AI layer's log.
    let recordedWaits: RecordedWaits
    let log: CapturedLogs
    let group: ServiceGroup
    let task: Task<Void, any Error>

    var workflow: Workflow { chat.workflow }
    var fake: FakeSlack { chat.fake }
    static var dm: String { FakeSlack.dmChannel(for: People.user) }

    private init(chat: ChatHarness, llm: FakeAnthropic?, ai: AIRuntime, waits: RecordedWaits, logs: CapturedLogs, group: ServiceGroup,
                 task: Task<Void, any Error>)
    {
        self.chat = chat
        self.llm = llm
        self.ai = ai
        self.recordedWaits = waits
        self.log = logs
        self.group = group
        self.task = task
    }

    /// Starts chat and the AI layer; `provider: false` runs without any provider, `baseURL` points it elsewhere.
    static func start(policy: String = AIChatHarness.policy, provider: Bool = true, baseURL: String? = nil, attempts: Int = 3) async throws -> AIChatHarness {
        let chat = try await ChatHarness.start(policy: policy)
        let llm = provider ? try await FakeAnthropic.start() : nil
        var options = AIOptions()
        if let llm {
            options.environment = [
                "HANDOFF_AI_PROVIDER": "anthropic", "HANDOFF_AI_MODEL": "claude-sonnet-4-5", "ANTHROPIC_API_KEY": llm.configuration.apiKey,
                "HANDOFF_AI_BASE_URL": baseURL ?? llm.baseURL, "HANDOFF_AI_MAX_RETRIES": String(attempts - 1), "HANDOFF_AI_CONNECT_TIMEOUT": "1s",
            ]
        }
        options.answering.pollInterval = .milliseconds(20)
        let waits = RecordedWaits()
        options.retry = waits.policy()
        let logs = CapturedLogs()
        let ai = try AIRuntime.build(options: options, policyPath: chat.policyPath, workflow: chat.workflow, logger: logs.logger)
        var logger = Logger(label: "test.ai.group")
        logger.logLevel = .warning
        let group = ServiceGroup(configuration: .init(services: ai.services, gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        return AIChatHarness(chat: chat, llm: llm, ai: ai, waits: waits, logs: logs, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        await llm?.stop()
        await chat.stop()
    }

    /// The user asks in their DM with the bot.
    @discardableResult
    func ask(_ text: String) async -> String {
        await fake.postUserMessage(user: People.user, channel: Self.dm, text: text)
    }

    /// What the bot said in the user's DM, in order.
    func botTexts(in channel: String = AIChatHarness.dm) async -> [String] {
        await fake.messages(in: channel).filter { $0.botID != nil }.map(\.allText)
    }

    /// The newest AI answer once it exists.
    func answer(count: Int = 1) async throws -> AIAnswerRecord {
        var found: [AIAnswerRecord] = []
        _ = await eventually {
            found = (try? await workflow.store.aiAnswers(route: nil, limit: 50, before: nil)) ?? []
            return found.count >= count
        }
        return try #require(found.first, "no AI answer was recorded")
    }
}
