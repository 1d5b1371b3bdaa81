import Foundation
import HandoffCore

/// One message of a conversation with a model.
package struct LLMMessage: Hashable, Sendable, Codable {
    package enum Role: String, Hashable, Sendable, Codable {
        case user, assistant
    }

    package var role: Role
    package var content: String

    package init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }

    package static func user(_ content: String) -> LLMMessage { LLMMessage(.user, content) }
    package static func assistant(_ content: String) -> LLMMessage { LLMMessage(.assistant, content) }
}

/// What to ask a model for.
package struct CompletionRequest: Hashable, Sendable {
    /// Instructions that frame the conversation (Anthropic `system`, OpenAI's first `system` message).
    package var system: String?
    package var messages: [LLMMessage]
    package var maxTokens: Int
    /// Nil leaves the provider's default.
    package var temperature: Double?
    /// Ask for per-token log-probabilities (OpenAI-compatible servers only).
    package var logprobs: Bool
    /// Overrides the provider's configured model for this request.
    package var model: String?

    package init(system: String? = nil, messages: [LLMMessage], maxTokens: Int = 1024, temperature: Double? = nil,
                 logprobs: Bool = false, model: String? = nil)
    {
        self.system = system
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.logprobs = logprobs
        self.model = model
    }
}

/// Why the model stopped.
package enum StopReason: Hashable, Sendable, CustomStringConvertible {
    /// It finished its answer (Anthropic `end_turn`, OpenAI `stop`).
    case endTurn
    /// It ran out of tokens: the answer is cut off (Anthropic `max_tokens`, OpenAI `length`).
    case maxTokens
    /// A stop sequence ended it.
    case stopSequence
    /// The provider filtered or refused the output (OpenAI `content_filter`, Anthropic `refusal`).
    case refused
    /// Anything else, as the provider named it.
    case other(String)

    package init(anthropic value: String?) {
        switch value {
        case "end_turn": self = .endTurn
        case "max_tokens": self = .maxTokens
        case "stop_sequence": self = .stopSequence
        case "refusal": self = .refused
        case let other: self = .other(other ?? "none")
        }
    }

    package init(openAI value: String?) {
        switch value {
        case "stop": self = .endTurn
        case "length": self = .maxTokens
        case "content_filter": self = .refused
        case let other: self = .other(other ?? "none")
        }
    }

    package var description: String {
        switch self {
        case .endTurn: "end_turn"
        case .maxTokens: "max_tokens"
        case .stopSequence: "stop_sequence"
        case .refused: "refused"
        case .other(let s): s
        }
    }

    /// True when the text is a complete answer.
    package var isComplete: Bool {
        switch self {
        case .endTurn, .stopSequence: true
        case .maxTokens, .refused, .other: false
        }
    }
}

/// A model's reply.
package struct Completion: Hashable, Sendable {
    package var text: String
    package var stopReason: StopReason
    /// The model that answered, as the provider reports it.
    package var model: String
    /// The natural-log probability of each generated token, when the provider returned them.
    package var tokenLogprobs: [Double]?
    package var inputTokens: Int?
    package var outputTokens: Int?
    /// The provider's request id (Anthropic `request-id`, OpenAI `x-request-id`), for support tickets.
    package var requestID: String?

    package init(text: String, stopReason: StopReason, model: String, tokenLogprobs: [Double]? = nil, inputTokens: Int? = nil,
                 outputTokens: Int? = nil, requestID: String? = nil)
    {
        self.text = text
        self.stopReason = stopReason
        self.model = model
        self.tokenLogprobs = tokenLogprobs
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.requestID = requestID
    }
}

/// An LLM behind an HTTP API. Implementations name their backing: ``AnthropicProvider``,
/// ``OpenAICompatibleProvider``.
package protocol LLMProvider: Sendable {
    /// `anthropic` or `openai`.
    var name: String { get }
    /// The configured model.
    var model: String { get }
    /// True when the provider can return token log-probabilities.
    var offersLogprobs: Bool { get }
    /// Sends one request, retrying what is worth retrying (429, 529, 5xx, connection failures).
    func complete(_ request: CompletionRequest) async throws(ProviderError) -> Completion
}

/// Why a provider call failed, after retries. Like `HTTPClientError`: a struct with a private code, so
/// new cases do not break callers; compare with the static members (`error.code == .rateLimited`).
package struct ProviderError: Error, Hashable, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case notConfigured = "not_configured"
            case unauthorized
            case rateLimited = "rate_limited"
            case overloaded
            case serverError = "server_error"
            case badRequest = "bad_request"
            case malformedResponse = "malformed_response"
            case connectionFailed = "connection_failed"
            case timeout
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No provider is set up (no `HANDOFF_AI_PROVIDER`, or no key for it).
        package static let notConfigured = Code(.notConfigured)
        /// The key was refused (401/403).
        package static let unauthorized = Code(.unauthorized)
        /// 429: too many requests (retried, honoring `retry-after`, before this is thrown).
        package static let rateLimited = Code(.rateLimited)
        /// Anthropic 529 `overloaded_error` (retried with backoff before this is thrown).
        package static let overloaded = Code(.overloaded)
        /// 5xx from the provider.
        package static let serverError = Code(.serverError)
        /// 4xx the request itself caused (unknown model, missing field): retrying will not help.
        package static let badRequest = Code(.badRequest)
        /// The body was not the JSON the API documents.
        package static let malformedResponse = Code(.malformedResponse)
        /// Nothing answered (connection refused, DNS, TLS).
        package static let connectionFailed = Code(.connectionFailed)
        /// No answer within the configured timeout.
        package static let timeout = Code(.timeout)

        package var description: String { base.rawValue }
    }

    package let code: Code
    /// A sentence for operators and reviewers: which provider, what happened, what to do. Never holds the key.
    package let message: String
    /// The HTTP status, when the provider answered.
    package let status: Int?
    /// How many attempts were made.
    package var attempts: Int

    package init(_ code: Code, _ message: String, status: Int? = nil, attempts: Int = 1) {
        self.code = code
        self.message = message
        self.status = status
        self.attempts = attempts
    }

    /// True for failures another attempt may fix.
    package var isRetryable: Bool {
        [.rateLimited, .overloaded, .serverError, .connectionFailed, .timeout].contains(code)
    }

    package var description: String {
        attempts > 1 ? "\(message) (after \(attempts) attempts)" : message
    }

    package static func notConfigured(_ message: String) -> ProviderError { ProviderError(.notConfigured, message) }
}
