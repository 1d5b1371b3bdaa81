import AsyncHTTPClient
import Foundation
import HandoffCore
import Logging

/// Any OpenAI-compatible chat-completions server: OpenAI itself, vLLM, Ollama, llama.cpp's server.
/// `POST {base}/v1/chat/completions` with `Authorization: Bearer <key>` (servers without keys get none).
///
/// With `logprobs` the request asks for `logprobs: true, top_logprobs: 0` and reads
/// `choices[0].logprobs.content[].logprob`; a server that does not offer them simply returns none.
package struct OpenAICompatibleProvider: LLMProvider {
    package struct Configuration: Sendable {
        /// The API root: `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama),
        /// `http://localhost:8000/v1` (vLLM), `http://localhost:8080` (llama.cpp). `/v1` is optional.
        package var baseURL: String = "https://api.openai.com/v1"
        package var model: String
        /// Nil for local servers that take no key.
        package var apiKey: Secret?
        /// Per attempt.
        package var timeout: Duration = .seconds(60)
        package var retry = RetryPolicy()
        /// Whether to ask for log-probabilities when an estimator wants them.
        package var logprobs = true

        package init(model: String, apiKey: Secret?) {
            self.model = model
            self.apiKey = apiKey
        }
    }

    package let name = "openai"
    package var model: String { configuration.model }
    package var offersLogprobs: Bool { configuration.logprobs }
    let configuration: Configuration
    let transport: ProviderTransport

    package init(http: HTTPClient, configuration: Configuration, logger: Logger = Logger(label: "handoff.ai.openai")) {
        self.configuration = configuration
        self.transport = ProviderTransport(http: http, timeout: configuration.timeout, retry: configuration.retry, logger: logger)
    }

    var endpoint: String { ProviderURL.join(configuration.baseURL, "v1/chat/completions") }

    struct Body: Encodable {
        struct Message: Encodable {
            var role: String
            var content: String
        }

        var model: String
        var messages: [Message]
        var max_tokens: Int
        var temperature: Double?
        var logprobs: Bool?
        var top_logprobs: Int?
    }

    struct Reply: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                var role: String?
                var content: String?
                var refusal: String?
            }

            struct Logprobs: Decodable {
                struct Token: Decodable {
                    var token: String?
                    var logprob: Double
                }

                var content: [Token]?
            }

            var message: Message?
            var finish_reason: String?
            var logprobs: Logprobs?
        }

        struct Usage: Decodable {
            var prompt_tokens: Int?
            var completion_tokens: Int?
        }

        var model: String?
        var choices: [Choice]
        var usage: Usage?
    }

    struct ErrorReply: Decodable {
        struct Detail: Decodable {
            var message: String?
            var type: String?
            var code: StringOrNumber?
        }

        var error: Detail?
    }

    /// `code` is a string on OpenAI and a number on some compatible servers.
    struct StringOrNumber: Decodable {
        var text: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { text = s } else { text = String(try c.decode(Int.self)) }
        }
    }

    package func complete(_ request: CompletionRequest) async throws(ProviderError) -> Completion {
        let model = request.model ?? configuration.model
        var messages: [Body.Message] = []
        if let system = request.system?.nilIfBlank { messages.append(.init(role: "system", content: system)) }
        messages += request.messages.map { .init(role: $0.role.rawValue, content: $0.content) }
        let wantLogprobs = request.logprobs && configuration.logprobs
        let body = Body(model: model, messages: messages, max_tokens: request.maxTokens, temperature: request.temperature,
                        logprobs: wantLogprobs ? true : nil, top_logprobs: wantLogprobs ? 0 : nil)
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(body))
        } catch {
            throw ProviderError(.badRequest, "could not encode the chat-completions request: \(error)")
        }
        var headers = [("content-type", "application/json"), ("accept", "application/json")]
        if let key = configuration.apiKey { headers.append(("authorization", "Bearer \(key.revealed)")) }
        let response = try await transport.post(url: endpoint, headers: headers, body: bytes, provider: "the OpenAI-compatible server") {
            Self.error(from: $0)
        }
        let reply: Reply
        do {
            reply = try JSONDecoder().decode(Reply.self, from: Data(response.body))
        } catch {
            throw ProviderError(.malformedResponse,
                                "the OpenAI-compatible server returned a body that is not a chat completion: \(ProviderURL.snippet(response.body))",
                                status: response.status)
        }
        guard let choice = reply.choices.first else {
            throw ProviderError(.malformedResponse, "the OpenAI-compatible server returned no choices", status: response.status)
        }
        let stop = StopReason(openAI: choice.finish_reason)
        let text = choice.message?.content ?? ""
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            if let refusal = choice.message?.refusal?.nilIfBlank {
                return Completion(text: refusal, stopReason: .refused, model: reply.model ?? model, requestID: response.header("x-request-id"))
            }
            throw ProviderError(.malformedResponse, "the OpenAI-compatible server returned no text (finish_reason \(choice.finish_reason ?? "none"))",
                                status: response.status)
        }
        let logprobs = choice.logprobs?.content.map { $0.map(\.logprob) }
        return Completion(text: text, stopReason: stop, model: reply.model ?? model, tokenLogprobs: logprobs?.isEmpty == true ? nil : logprobs,
                          inputTokens: reply.usage?.prompt_tokens, outputTokens: reply.usage?.completion_tokens,
                          requestID: response.header("x-request-id"))
    }

    static func error(from response: ProviderHTTPResponse) -> ProviderError {
        let detail = (try? JSONDecoder().decode(ErrorReply.self, from: Data(response.body)))?.error
        let kind = detail?.code?.text ?? detail?.type ?? "http_\(response.status)"
        let what = detail?.message ?? ProviderURL.snippet(response.body)
        let message = "the OpenAI-compatible server returned \(response.status) \(kind): \(what)"
        switch response.status {
        case 401, 403: return ProviderError(.unauthorized, message + " (check OPENAI_API_KEY or HANDOFF_AI_API_KEY)", status: response.status)
        // Out of credit is a 429 too, but waiting will not fix it.
        case 429 where kind == "insufficient_quota": return ProviderError(.badRequest, message, status: response.status)
        case 429: return ProviderError(.rateLimited, message, status: response.status)
        case 408: return ProviderError(.timeout, message, status: response.status)
        case 500...599: return ProviderError(.serverError, message, status: response.status)
        default: return ProviderError(.badRequest, message, status: response.status)
        }
    }
}
