import AsyncHTTPClient
import Foundation
import HandoffCore
import Logging

/// How one route uses the AI: the estimator, the instructions, and their knobs. Read from the policy
/// file's `ai.routes.<name>` (over `ai.defaults`); every field has a default.
package struct RouteAISettings: Hashable, Sendable, Codable {
    package var estimator: EstimatorKind = .selfRating
    /// The route's system prompt. An approved prompt version in the database takes precedence.
    package var systemPrompt: String?
    /// Overrides the provider's model for this route.
    package var model: String?
    package var maxTokens: Int = 1024
    /// Temperature of the answer itself (nil: the provider's default).
    package var temperature: Double?
    /// Self-consistency: samples, their temperature, and how agreement is judged.
    package var samples: Int = 5
    package var sampleTemperature: Double = 0.8
    package var agreement: SelfConsistency.Agreement = .similarity
    package var similarityThreshold: Double = 0.6
    /// Log-probabilities: how token probabilities become one confidence.
    package var logprobAggregate: LogprobConfidence.Aggregate = .mean
    /// How many similar past corrections go into the prompt as examples (0: none).
    package var examples: Int = 3

    package init() {}

    enum CodingKeys: String, CodingKey {
        case estimator, systemPrompt = "system_prompt", model, maxTokens = "max_tokens", temperature, samples
        case sampleTemperature = "sample_temperature", agreement, similarityThreshold = "similarity_threshold"
        case logprobAggregate = "logprob_aggregate", examples
    }

    /// Decodes over `base`, so a route inherits every field it does not set.
    package init(from decoder: any Decoder, over base: RouteAISettings) throws {
        self = base
        let c = try decoder.container(keyedBy: CodingKeys.self)
        estimator = try c.decodeIfPresent(EstimatorKind.self, forKey: .estimator) ?? estimator
        systemPrompt = try c.decodeIfPresent(String.self, forKey: .systemPrompt) ?? systemPrompt
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? model
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? maxTokens
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? temperature
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? samples
        sampleTemperature = try c.decodeIfPresent(Double.self, forKey: .sampleTemperature) ?? sampleTemperature
        agreement = try c.decodeIfPresent(SelfConsistency.Agreement.self, forKey: .agreement) ?? agreement
        similarityThreshold = try c.decodeIfPresent(Double.self, forKey: .similarityThreshold) ?? similarityThreshold
        logprobAggregate = try c.decodeIfPresent(LogprobConfidence.Aggregate.self, forKey: .logprobAggregate) ?? logprobAggregate
        examples = try c.decodeIfPresent(Int.self, forKey: .examples) ?? examples
    }

    package init(from decoder: any Decoder) throws {
        try self.init(from: decoder, over: RouteAISettings())
    }

    /// Problems with the values, one message each.
    package func problems(at path: String) -> [String] {
        var out: [String] = []
        if maxTokens < 1 { out.append("\(path).max_tokens must be at least 1") }
        if samples < 2 || samples > 20 { out.append("\(path).samples must be from 2 to 20") }
        if sampleTemperature <= 0 || sampleTemperature > 2 { out.append("\(path).sample_temperature must be above 0 (and at most 2) so samples differ") }
        if let t = temperature, t < 0 || t > 2 { out.append("\(path).temperature must be from 0 to 2") }
        if !(0...1).contains(similarityThreshold) { out.append("\(path).similarity_threshold must be between 0 and 1") }
        if examples < 0 || examples > 20 { out.append("\(path).examples must be from 0 to 20") }
        return out
    }
}

/// The policy file's `ai:` section (the provider itself comes from the environment or here).
package struct AIPolicy: Hashable, Sendable {
    /// `anthropic` or `openai`; the environment (`HANDOFF_AI_PROVIDER`) wins.
    package var provider: String?
    package var model: String?
    package var baseURL: String?
    package var timeout: Span?
    package var maxRetries: Int?
    /// Settings every route starts from.
    package var defaults = RouteAISettings()
    /// Per-route settings, each over `defaults`.
    package var routes: [String: RouteAISettings] = [:]
    /// The route questions asked in chat (DMs and mentions) take.
    package var chatRoute: String = "default"
    /// The approval policy suggested prompt changes go through.
    package var promptApprovalPolicy: String = "default"

    package init() {}

    /// The settings of a route (its own, else the defaults).
    package func settings(for route: String) -> RouteAISettings { routes[route] ?? defaults }

    /// Problems with the section, one message each (`known` are the policy's routes and approval policies).
    package func problems(routes known: Set<String>, approvalPolicies: Set<String>) -> [String] {
        var out = defaults.problems(at: "ai.defaults")
        for (name, settings) in routes.sorted(by: { $0.key < $1.key }) {
            if !known.contains(name) { out.append("ai.routes.\(name) is not a route under routes") }
            out += settings.problems(at: "ai.routes.\(name)")
        }
        if !known.contains(chatRoute) { out.append("ai.chat.route names route '\(chatRoute)', which is not under routes") }
        if !approvalPolicies.contains(promptApprovalPolicy) {
            out.append("ai.prompt_approvals.policy names '\(promptApprovalPolicy)', which is not under approvals")
        }
        if let provider, ProviderKind(rawValue: provider.lowercased()) == nil, provider.lowercased() != "none" {
            out.append("ai.provider must be anthropic, openai or none, not '\(provider)'")
        }
        return out
    }
}

extension AIPolicy: Decodable {
    enum CodingKeys: String, CodingKey {
        case provider, model, baseURL = "base_url", timeout, maxRetries = "max_retries", defaults, routes, chat
        case promptApprovals = "prompt_approvals"
    }

    struct Chat: Decodable { var route: String? }
    struct PromptApprovals: Decodable { var policy: String? }

    struct RouteKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.decodeIfPresent(String.self, forKey: .provider)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        timeout = try c.decodeIfPresent(Span.self, forKey: .timeout)
        maxRetries = try c.decodeIfPresent(Int.self, forKey: .maxRetries)
        defaults = try c.decodeIfPresent(RouteAISettings.self, forKey: .defaults) ?? RouteAISettings()
        if c.contains(.routes) {
            // Each route's missing fields come from `defaults`, so decode the entries by hand over it.
            let nested = try c.nestedContainer(keyedBy: RouteKey.self, forKey: .routes)
            var entries: [String: RouteAISettings] = [:]
            for key in nested.allKeys {
                entries[key.stringValue] = try RouteAISettings(from: try nested.superDecoder(forKey: key), over: defaults)
            }
            routes = entries
        }
        chatRoute = try c.decodeIfPresent(Chat.self, forKey: .chat)?.route ?? chatRoute
        promptApprovalPolicy = try c.decodeIfPresent(PromptApprovals.self, forKey: .promptApprovals)?.policy ?? promptApprovalPolicy
    }
}

/// Which wire format a provider speaks.
package enum ProviderKind: String, Hashable, Sendable, CaseIterable {
    case anthropic
    case openAI = "openai"
}

/// The provider to use, resolved from the environment over the policy file. Prints without the key.
package struct ProviderSettings: Hashable, Sendable, CustomStringConvertible {
    package var kind: ProviderKind
    package var baseURL: String
    package var model: String
    package var apiKey: Secret?
    /// Per attempt.
    package var timeout: Duration = .seconds(60)
    /// How long connecting may take (AsyncHTTPClient keeps retrying a refused connection until then).
    package var connectTimeout: Duration = .seconds(5)
    package var maxAttempts: Int = 4
    package var anthropicVersion: String = "2023-06-01"

    package init(kind: ProviderKind, baseURL: String? = nil, model: String, apiKey: Secret?) {
        self.kind = kind
        self.baseURL = baseURL ?? (kind == .anthropic ? "https://api.anthropic.com" : "https://api.openai.com/v1")
        self.model = model
        self.apiKey = apiKey
    }

    package var description: String {
        "\(kind.rawValue) \(model) at \(baseURL) (key: \(apiKey?.description ?? "none"), timeout \(Int(timeout.seconds)) s, \(maxAttempts) attempts)"
    }

    /// Why the settings cannot work.
    package struct Problem: Error, Hashable, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// Reads `HANDOFF_AI_PROVIDER` (`anthropic` | `openai` | `none`), `HANDOFF_AI_MODEL`, `HANDOFF_AI_BASE_URL`,
    /// `HANDOFF_AI_API_KEY` (else `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`), `HANDOFF_AI_TIMEOUT` (seconds or
    /// `30s`), `HANDOFF_AI_MAX_RETRIES`, `HANDOFF_AI_ANTHROPIC_VERSION`; the environment wins over the
    /// policy file. Nil when no provider is named (questions then go to people).
    package static func resolve(environment env: [String: String], policy: AIPolicy = AIPolicy()) throws(Problem) -> ProviderSettings? {
        func value(_ name: String) -> String? { env[name]?.trimmingCharacters(in: .whitespaces).nilIfBlank }
        guard let named = value("HANDOFF_AI_PROVIDER") ?? policy.provider?.nilIfBlank else { return nil }
        if named.lowercased() == "none" { return nil }
        guard let kind = ProviderKind(rawValue: named.lowercased()) else {
            throw Problem(description: "HANDOFF_AI_PROVIDER must be anthropic, openai or none, not '\(named)'")
        }
        guard let model = value("HANDOFF_AI_MODEL") ?? policy.model?.nilIfBlank else {
            throw Problem(description: "the \(kind.rawValue) provider needs a model: set HANDOFF_AI_MODEL (e.g. \(kind == .anthropic ? "claude-sonnet-4-5" : "gpt-4o-mini, or llama3.1 for Ollama")) or ai.model in the policy file")
        }
        let standardKey = kind == .anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"
        let key = (value("HANDOFF_AI_API_KEY") ?? value(standardKey)).map(Secret.init)
        let base = value("HANDOFF_AI_BASE_URL") ?? policy.baseURL?.nilIfBlank
        if let base {
            guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
                throw Problem(description: "HANDOFF_AI_BASE_URL must be an http(s) URL such as http://localhost:11434/v1, not '\(base)'")
            }
        }
        if kind == .anthropic && key == nil {
            throw Problem(description: "the anthropic provider needs an API key: set ANTHROPIC_API_KEY (or HANDOFF_AI_API_KEY)")
        }
        var settings = ProviderSettings(kind: kind, baseURL: base, model: model, apiKey: key)
        if let raw = value("HANDOFF_AI_TIMEOUT") {
            guard let span = Span(parsing: raw), span.seconds > 0 else {
                throw Problem(description: "HANDOFF_AI_TIMEOUT must be a duration such as 30 or 30s, not '\(raw)'")
            }
            settings.timeout = .milliseconds(Int64(span.seconds * 1000))
        } else if let span = policy.timeout, span.seconds > 0 {
            settings.timeout = .milliseconds(Int64(span.seconds * 1000))
        }
        if let raw = value("HANDOFF_AI_CONNECT_TIMEOUT") {
            guard let span = Span(parsing: raw), span.seconds > 0 else {
                throw Problem(description: "HANDOFF_AI_CONNECT_TIMEOUT must be a duration such as 5 or 5s, not '\(raw)'")
            }
            settings.connectTimeout = .milliseconds(Int64(span.seconds * 1000))
        }
        if let raw = value("HANDOFF_AI_MAX_RETRIES") {
            guard let n = Int(raw), (0...10).contains(n) else { throw Problem(description: "HANDOFF_AI_MAX_RETRIES must be from 0 to 10, not '\(raw)'") }
            settings.maxAttempts = n + 1
        } else if let n = policy.maxRetries, (0...10).contains(n) {
            settings.maxAttempts = n + 1
        }
        if let version = value("HANDOFF_AI_ANTHROPIC_VERSION") { settings.anthropicVersion = version }
        return settings
    }

    /// An HTTP client for the provider: connection attempts give up after `connectTimeout`, so a provider
    /// that is down is noticed in seconds, not after the whole request timeout.
    package func makeHTTPClient() -> HTTPClient {
        Self.makeHTTPClient(connectTimeout: connectTimeout)
    }

    package static func makeHTTPClient(connectTimeout: Duration) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .milliseconds(Int64(connectTimeout.seconds * 1000))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The provider these settings describe, on a shared HTTP client.
    package func makeProvider(http: HTTPClient, retry base: RetryPolicy = RetryPolicy(), logger: Logger = Logger(label: "handoff.ai")) -> any LLMProvider {
        var retry = base
        retry.maxAttempts = maxAttempts
        switch kind {
        case .anthropic:
            var c = AnthropicProvider.Configuration(model: model, apiKey: apiKey ?? Secret(""))
            c.baseURL = baseURL
            c.version = anthropicVersion
            c.timeout = timeout
            c.retry = retry
            return AnthropicProvider(http: http, configuration: c, logger: logger)
        case .openAI:
            var c = OpenAICompatibleProvider.Configuration(model: model, apiKey: apiKey)
            c.baseURL = baseURL
            c.timeout = timeout
            c.retry = retry
            return OpenAICompatibleProvider(http: http, configuration: c, logger: logger)
        }
    }
}
