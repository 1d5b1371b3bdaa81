import AsyncHTTPClient
import Foundation
import HandoffAI
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import ServiceLifecycle
import Yams

/// AI settings from the environment and the command line: the `HANDOFF_AI_*` / `ANTHROPIC_API_KEY` /
/// `OPENAI_API_KEY` variables (the provider), and how the answering service runs.
package struct AIOptions: Sendable {
    /// The variables the provider is read from (`HANDOFF_AI_PROVIDER`, `HANDOFF_AI_MODEL`, `HANDOFF_AI_BASE_URL`,
    /// `HANDOFF_AI_API_KEY` or `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`, `HANDOFF_AI_TIMEOUT`, `HANDOFF_AI_MAX_RETRIES`).
    package var environment: [String: String] = [:]
    package var answering = AnsweringService.Configuration()
    /// Backoff between provider attempts (tests record the waits instead of sleeping).
    package var retry = RetryPolicy()

    package init() {}

    /// Keeps only the variables the AI layer reads.
    package static func fromEnvironment(_ env: [String: String]) -> AIOptions {
        var o = AIOptions()
        o.environment = env.filter { $0.key.hasPrefix("HANDOFF_AI_") || $0.key == "ANTHROPIC_API_KEY" || $0.key == "OPENAI_API_KEY" }
        return o
    }
}

/// The AI layer of a running Handoff: the policy's `ai:` section, the provider (if one is configured)
/// on its own HTTP client, and the answering service.
package struct AIRuntime: Sendable {
    package let policy: AIPolicy
    package let settings: ProviderSettings?
    package let provider: (any LLMProvider)?
    /// The HTTP client service first (it stops last), then the answering service.
    package let services: [any Service]
    package let answering: AnsweringService

    /// Why the AI settings cannot work.
    package struct ConfigurationError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Reads the `ai:` section of the policy file (empty when there is none).
    package static func loadPolicy(path: String?, workflow policy: WorkflowPolicy) throws -> AIPolicy {
        guard let path, FileManager.default.fileExists(atPath: path) else { return AIPolicy() }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(description: "cannot read the policy file \(path): \(error.localizedDescription)")
        }
        return try parsePolicy(text, source: path, workflow: policy)
    }

    package static func parsePolicy(_ text: String, source: String = "policy", workflow policy: WorkflowPolicy) throws -> AIPolicy {
        struct File: Decodable { var ai: AIPolicy? }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return AIPolicy() }
        let section: AIPolicy
        do {
            section = try YAMLDecoder().decode(File.self, from: text).ai ?? AIPolicy()
        } catch {
            throw ConfigurationError(description: "\(source): the ai section is not valid: \(error)")
        }
        let problems = section.problems(routes: Set(policy.routes.keys), approvalPolicies: Set(policy.approvals.keys))
        guard problems.isEmpty else { throw ConfigurationError(description: "\(source) has problems:\n  - " + problems.joined(separator: "\n  - ")) }
        return section
    }

    /// Builds the AI layer. Without a provider it still runs: questions go to people with the reason
    /// "no AI provider configured", said once here.
    package static func build(options: AIOptions, policyPath: String?, workflow: Workflow, logger: Logger = Logger(label: "handoff.ai"),
                              provider injected: (any LLMProvider)? = nil) throws -> AIRuntime
    {
        let policy = try loadPolicy(path: policyPath, workflow: workflow.policy)
        let settings: ProviderSettings?
        do {
            settings = try ProviderSettings.resolve(environment: options.environment, policy: policy)
        } catch {
            throw ConfigurationError(description: error.description)
        }
        var services: [any Service] = []
        var provider = injected
        if provider == nil, let settings {
            let http = settings.makeHTTPClient()
            services.append(HTTPClientService(client: http))
            provider = settings.makeProvider(http: http, retry: options.retry, logger: logger)
        }
        if let provider {
            logger.info("AI provider: \(settings?.description ?? "\(provider.name) \(provider.model)")")
        } else {
            logger.notice("no AI provider configured: questions asked in chat go to people (set HANDOFF_AI_PROVIDER, HANDOFF_AI_MODEL and an API key; see README, \"Connect an AI provider\")")
        }
        let answering = AnsweringService(
            pipeline: AnsweringPipeline(workflow: workflow, policy: policy, provider: provider), configuration: options.answering,
            logger: Logger(label: "handoff.ai.answering"))
        services.append(answering)
        return AIRuntime(policy: policy, settings: settings, provider: provider, services: services, answering: answering)
    }
}

/// One question through the AI: similar past corrections as examples, the route's prompt, the
/// provider's answer and its confidence, then routing — all recorded with the answer.
package struct AnsweringPipeline: Sendable {
    package let workflow: Workflow
    package let policy: AIPolicy
    package let provider: (any LLMProvider)?

    package init(workflow: Workflow, policy: AIPolicy, provider: (any LLMProvider)?) {
        self.workflow = workflow
        self.policy = policy
        self.provider = provider
    }

    /// The reason people see when no provider is set up.
    package static let noProviderReason = "no AI provider configured"

    /// The system prompt a route answers with: an approved version from the database, else the policy
    /// file's `ai.routes.<route>.system_prompt`, else the built-in one.
    package func systemPrompt(route: String) async throws -> (text: String, version: Int?) {
        if let active = try await workflow.activePrompt(route: route) { return (active.prompt, active.version) }
        return (policy.settings(for: route).systemPrompt?.nilIfBlank ?? PromptBuilder.defaultSystemPrompt, nil)
    }

    /// The past corrections shown to the model for this question: the most similar ones of this route
    /// (or of no route).
    package func examples(for query: String, route: String, k: Int) async throws -> [Correction] {
        guard k > 0 else { return [] }
        return try await workflow.similarCorrections(to: query, k: k * 3)
            .map(\.correction).filter { $0.route == nil || $0.route == route }.prefix(k).map { $0 }
    }

    /// Answers one question and routes the answer.
    package func answer(_ question: AIQuestion) async throws -> Workflow.QuestionResult {
        let route = question.route ?? policy.chatRoute
        _ = try workflow.routeConfig(route)
        let settings = policy.settings(for: route)
        guard let provider else {
            return try await workflow.completeQuestion(question, route: route, draft: Workflow.AnswerDraft(
                text: nil, confidence: .unavailable(reason: Self.noProviderReason), measured: nil, estimator: settings.estimator.rawValue))
        }
        let examples = try await examples(for: question.query, route: route, k: settings.examples)
        let (system, version) = try await systemPrompt(route: route)
        let attempt = await Answerer(provider: provider).answer(
            question: question.query, route: route, settings: settings, systemPrompt: system,
            examples: examples.map { PromptExample(correctionID: $0.id.rawValue, question: $0.query, wrongAnswer: $0.original, correctedAnswer: $0.corrected) })
        // A call cut short by cancellation is not the provider's failure: leave the question for another attempt.
        try Task.checkCancellation()
        return try await workflow.completeQuestion(question, route: route, draft: Workflow.AnswerDraft(
            text: attempt.text, confidence: attempt.confidence, measured: attempt.measured, estimator: attempt.estimator.rawValue,
            provider: provider.name, model: attempt.model ?? settings.model ?? provider.model, promptVersion: version,
            examples: examples.map(\.id), details: attempt.details))
    }
}
