import AsyncHTTPClient
import Foundation
import HandoffAI
import HandoffCore
import HandoffWorkflow
import Logging

/// Turns a correction pattern into a suggested system-prompt change, which then goes through an
/// approval before any route's prompt changes.
package struct PromptSuggester: Sendable {
    package let workflow: Workflow
    package let policy: AIPolicy
    package let provider: any LLMProvider

    package init(workflow: Workflow, policy: AIPolicy, provider: any LLMProvider) {
        self.workflow = workflow
        self.policy = policy
        self.provider = provider
    }

    /// The route a pattern belongs to: the most common route among its corrections, else the chat route.
    package static func route(of report: Workflow.PatternReport, policy: AIPolicy) -> String {
        var counts: [String: Int] = [:]
        for c in report.examples { if let r = c.route { counts[r, default: 0] += 1 } }
        return counts.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key ?? policy.chatRoute
    }

    /// Asks the provider for the route's revised system prompt; throws when it gives nothing new.
    package func suggest(for report: Workflow.PatternReport, route: String) async throws -> String {
        let pipeline = AnsweringPipeline(workflow: workflow, policy: policy, provider: provider)
        let current = try await pipeline.systemPrompt(route: route).text
        let examples = report.examples.map {
            PromptExample(correctionID: $0.id.rawValue, question: $0.query, wrongAnswer: $0.original, correctedAnswer: $0.corrected)
        }
        let request = PromptBuilder.suggestion(route: route, currentPrompt: current, pattern: "\(report.pattern.summary) (\(report.pattern.count) corrections)",
                                               examples: examples)
        let reply = try await provider.complete(request)
        let prompt = PromptBuilder.unwrap(reply.text)
        guard reply.stopReason.isComplete else {
            throw WorkflowError.invalid("suggestion", "the AI's suggestion was cut off (\(reply.stopReason)); nothing was proposed")
        }
        guard !prompt.isEmpty, prompt != current.trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw WorkflowError.invalid("suggestion", "the AI suggested no change to the system prompt of route \(route)")
        }
        return prompt
    }

    /// Suggests a change for the pattern and opens its approval (with the proposed prompt version).
    package func propose(for report: Workflow.PatternReport, route: String, by actor: ActorID) async throws -> (version: PromptVersionSummary, approval: Approval) {
        let prompt = try await suggest(for: report, route: route)
        let (version, approval) = try await workflow.proposePrompt(
            route: route, prompt: prompt, reason: "prevent: \(report.pattern.summary) (\(report.pattern.count) corrections)", by: actor,
            policyName: policy.promptApprovalPolicy)
        return (PromptVersionSummary(route: version.route, version: version.version, prompt: version.prompt), approval)
    }
}

/// A prompt version as commands print it.
package struct PromptVersionSummary: Sendable, Hashable, Codable {
    package var route: String
    package var version: Int
    package var prompt: String
}

extension AIRuntime {
    /// Runs `body` with the AI policy and the configured provider (nil when none) on a client that is
    /// shut down afterwards: for commands that call the provider once.
    package static func withProvider<T: Sendable>(
        options: AIOptions, policyPath: String?, workflow: Workflow, _ body: (AIPolicy, (any LLMProvider)?) async throws -> T
    ) async throws -> T {
        let policy = try loadPolicy(path: policyPath, workflow: workflow.policy)
        let settings: ProviderSettings?
        do {
            settings = try ProviderSettings.resolve(environment: options.environment, policy: policy)
        } catch {
            throw ConfigurationError(description: error.description)
        }
        guard let settings else { return try await body(policy, nil) }
        let http = settings.makeHTTPClient()
        var logger = Logger(label: "handoff.ai")
        logger.logLevel = .warning
        do {
            let result = try await body(policy, settings.makeProvider(http: http, retry: options.retry, logger: logger))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}
