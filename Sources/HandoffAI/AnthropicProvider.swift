import AsyncHTTPClient
import Foundation
import HandoffCore
import Logging

/// The Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
///
/// The reply's `content` is a list of blocks; the text blocks are joined. Errors come as
/// `{"type":"error","error":{"type":"overloaded_error","message":"…"}}`: 429 `rate_limit_error` and
/// 529 `overloaded_error` (and 5xx) are retried with backoff, honoring `retry-after`.
package struct AnthropicProvider: LLMProvider {
    package struct Configuration: Sendable {
        /// The API root; `https://api.anthropic.com` (a trailing `/v1` is accepted too).
        package var baseURL: String = "https://api.anthropic.com"
        package var model: String
        package var apiKey: Secret
        /// The `anthropic-version` header.
        package var version: String = "2023-06-01"
        /// Per attempt.
        package var timeout: Duration = .seconds(60)
        package var retry = RetryPolicy()

        package init(model: String, apiKey: Secret) {
            self.model = model
            self.apiKey = apiKey
        }
    }

    package let name = "anthropic"
    package var model: String { configuration.model }
    package let offersLogprobs = false
    let configuration: Configuration
    let transport: ProviderTransport

    package init(http: HTTPClient, configuration: Configuration, logger: Logger = Logger(label: "handoff.ai.anthropic")) {
        self.configuration = configuration
        self.transport = ProviderTransport(http: http, timeout: configuration.timeout, retry: configuration.retry, logger: logger)
    }

    /// `https://api.anthropic.com/v1/messages` from any spelling of the base URL.
    var endpoint: String { ProviderURL.join(configuration.baseURL, "v1/messages") }

    struct Body: Encodable {
        struct Message: Encodable {
            var role: String
            var content: String
        }

        var model: String
        var max_tokens: Int
        var system: String?
        var messages: [Message]
        var temperature: Double?
    }

    struct Reply: Decodable {
        struct Block: Decodable {
            var type: String
            var text: String?
        }

        struct Usage: Decodable {
            var input_tokens: Int?
            var output_tokens: Int?
        }

        var type: String?
        var model: String?
        var content: [Block]
        var stop_reason: String?
        var usage: Usage?
    }

    struct ErrorReply: Decodable {
        struct Detail: Decodable {
            var type: String?
            var message: String?
        }

        var error: Detail?
    }

    package func complete(_ request: CompletionRequest) async throws(ProviderError) -> Completion {
        let model = request.model ?? configuration.model
        guard request.messages.first?.role == .user else {
            throw ProviderError(.badRequest, "an Anthropic conversation must start with a user message")
        }
        let body = Body(model: model, max_tokens: request.maxTokens, system: request.system?.nilIfBlank,
                        messages: request.messages.map { .init(role: $0.role.rawValue, content: $0.content) },
                        temperature: request.temperature.map { min(1, max(0, $0)) })
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(body))
        } catch {
            throw ProviderError(.badRequest, "could not encode the Anthropic request: \(error)")
        }
        let headers = [
            ("x-api-key", configuration.apiKey.revealed), ("anthropic-version", configuration.version),
            ("content-type", "application/json"), ("accept", "application/json"),
        ]
        let response = try await transport.post(url: endpoint, headers: headers, body: bytes, provider: "Anthropic") { Self.error(from: $0) }
        let reply: Reply
        do {
            reply = try JSONDecoder().decode(Reply.self, from: Data(response.body))
        } catch {
            throw ProviderError(.malformedResponse, "Anthropic returned a body that is not a Messages API reply: \(ProviderURL.snippet(response.body))",
                                status: response.status)
        }
        let text = reply.content.filter { $0.type == "text" }.compactMap(\.text).joined()
        let stop = StopReason(anthropic: reply.stop_reason)
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || stop == .refused else {
            throw ProviderError(.malformedResponse, "Anthropic returned no text (stop_reason \(reply.stop_reason ?? "none"))", status: response.status)
        }
        return Completion(text: text, stopReason: stop, model: reply.model ?? model, inputTokens: reply.usage?.input_tokens,
                          outputTokens: reply.usage?.output_tokens, requestID: response.header("request-id"))
    }

    /// The Anthropic error a non-2xx answer carries, classified by status.
    static func error(from response: ProviderHTTPResponse) -> ProviderError {
        let detail = (try? JSONDecoder().decode(ErrorReply.self, from: Data(response.body)))?.error
        let kind = detail?.type ?? "http_\(response.status)"
        let what = detail?.message ?? ProviderURL.snippet(response.body)
        let message = "Anthropic returned \(response.status) \(kind): \(what)"
        switch response.status {
        case 401, 403: return ProviderError(.unauthorized, message + " (check ANTHROPIC_API_KEY)", status: response.status)
        case 429: return ProviderError(.rateLimited, message, status: response.status)
        case 529: return ProviderError(.overloaded, message, status: response.status)
        case 408: return ProviderError(.timeout, message, status: response.status)
        case 500...599: return ProviderError(.serverError, message, status: response.status)
        default: return ProviderError(.badRequest, message, status: response.status)
        }
    }
}

/// URL and body helpers shared by the providers.
package enum ProviderURL {
    /// Joins an API root and a path that starts with `v1/`, accepting roots with or without `/v1`
    /// and with or without a trailing slash (`http://localhost:11434/v1` and `http://localhost:11434` both work).
    package static func join(_ base: String, _ path: String) -> String {
        var root = base.trimmingCharacters(in: .whitespaces)
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/v1") { root.removeLast(3) }
        return root + "/" + path
    }

    /// The start of a body, for error messages.
    static func snippet(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return text.isEmpty ? "(empty body)" : "'\(text)\(body.count > 300 ? "…" : "")'"
    }
}
