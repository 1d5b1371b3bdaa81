import Foundation
import HandoffCore
import Hummingbird
import NIOCore

/// A fake OpenAI-compatible chat-completions server (the shape OpenAI, vLLM, Ollama and llama.cpp
/// share) on 127.0.0.1 (port 0). It enforces `Authorization: Bearer <key>` when a key is configured
/// (401 `invalid_api_key`), a known `model` (404 `model_not_found`), non-empty `messages` with valid
/// roles, `top_logprobs` only together with `logprobs: true` (400), and numeric ranges. Replies are
/// realistic `chat.completion` bodies with `usage`, `finish_reason` and, when asked and offered,
/// `logprobs.content` per token. Scripts pick the reply per prompt (so self-consistency samples can
/// differ and log-probabilities are chosen), forced replies give 429 / 500 / malformed JSON, and
/// every request is recorded.
package final class FakeOpenAI: FakeLLMProvider {
    package struct Configuration: Sendable {
        /// Nil: accept requests without a key (a local server such as Ollama).
        package var apiKey: String? = "sk-fake-openai-key-0123456789"
        package var models: Set<String> = ["gpt-4o-mini", "llama3.1"]
        /// False: ignore `logprobs` like servers that do not support them.
        package var offersLogprobs = true

        package init() {}
    }

    package let configuration: Configuration
    package let state: FakeLLMState
    package let server: FakeLLMServer

    /// The API root to configure (`HANDOFF_AI_BASE_URL`), OpenAI-style with `/v1`.
    package var baseURL: String { "http://127.0.0.1:\(server.port)/v1" }

    private init(configuration: Configuration, state: FakeLLMState, server: FakeLLMServer) {
        self.configuration = configuration
        self.state = state
        self.server = server
    }

    package static func start(_ configuration: Configuration = Configuration()) async throws -> FakeOpenAI {
        let state = FakeLLMState(fallback: { "Fake answer to: \($0.prefix(80))" })
        let router = Hummingbird.Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            let (headers, raw, body) = try await FakeLLMServer.read(request)
            return await Self.handle(headers: headers, raw: raw, body: body, configuration: configuration, state: state)
        }
        let server = try await FakeLLMServer.start(name: "fake-openai", router: router)
        return FakeOpenAI(configuration: configuration, state: state, server: server)
    }


    static func error(_ status: Int, _ code: String, _ message: String, type: String = "invalid_request_error", retryAfter: String? = nil) -> Response {
        let body = JSONValue.object([
            "error": .object(["message": .string(message), "type": .string(type), "param": .null, "code": .string(code)]),
        ])
        var headers = [("x-request-id", "req_\(UInt32.random(in: 0...UInt32.max))")]
        if let retryAfter { headers.append(("retry-after", retryAfter)) }
        return FakeLLMServer.json(status, FakeLLMServer.encode(body), headers: headers)
    }

    static func handle(headers: [String: String], raw: String, body: JSONValue?, configuration: Configuration,
                       state: FakeLLMState) async -> Response
    {
        var record = FakeLLMRequest(path: "/v1/chat/completions", headers: headers, body: body, model: body?[fake: "model"]?.fakeString,
                                    system: nil, messages: [], status: 200, refusal: nil)
        func refuse(_ status: Int, _ code: String, _ message: String) async -> Response {
            record.status = status
            record.refusal = message
            await state.record(record)
            return error(status, code, message)
        }
        if let key = configuration.apiKey {
            guard let auth = headers["authorization"], auth == "Bearer \(key)" else {
                return await refuse(401, "invalid_api_key",
                                    headers["authorization"] == nil ? "You didn't provide an API key." : "Incorrect API key provided.")
            }
        }
        guard let body, case .object(let fields) = body else {
            return await refuse(400, "invalid_json", "We could not parse the JSON body of your request (\(raw.prefix(40))).")
        }
        guard let model = fields["model"]?.fakeString else { return await refuse(400, "missing_required_parameter", "you must provide a model parameter") }
        guard let messages = fields["messages"]?.fakeArray, !messages.isEmpty else {
            return await refuse(400, "invalid_value", "'messages' must contain at least one message")
        }
        for (i, m) in messages.enumerated() {
            guard let role = m[fake: "role"]?.fakeString, ["system", "developer", "user", "assistant"].contains(role) else {
                return await refuse(400, "invalid_value", "Invalid value for 'messages[\(i)].role'")
            }
            guard let content = m[fake: "content"]?.fakeString else {
                return await refuse(400, "invalid_type", "Invalid type for 'messages[\(i)].content': expected a string")
            }
            if role == "system" || role == "developer" {
                record.system = (record.system.map { $0 + "\n" } ?? "") + content
            } else {
                record.messages.append((role, content))
            }
        }
        if let t = fields["temperature"], !(0...2).contains(t.fakeNumber ?? -1) {
            return await refuse(400, "decimal_above_max_value", "Invalid 'temperature': expected a number from 0 to 2")
        }
        if let m = fields["max_tokens"], !(m.fakeIsInteger && (m.fakeNumber ?? 0) >= 1) {
            return await refuse(400, "integer_below_min_value", "Invalid 'max_tokens': expected a positive integer")
        }
        let wantsLogprobs = fields["logprobs"] == .bool(true)
        if let top = fields["top_logprobs"] {
            guard wantsLogprobs else { return await refuse(400, "invalid_value", "'top_logprobs' requires 'logprobs' to be true") }
            guard top.fakeIsInteger, (0...20).contains(top.fakeNumber ?? -1) else {
                return await refuse(400, "invalid_value", "'top_logprobs' must be an integer from 0 to 20")
            }
        }
        guard configuration.models.contains(model) else {
            return await refuse(404, "model_not_found", "The model `\(model)` does not exist or you do not have access to it.")
        }

        let scripted = await state.reply(system: record.system, user: record.lastUser ?? "")
        let text: String
        var finish = "stop"
        var logprobs: [Double]?
        switch scripted {
        case .error(let status, let type, let message, let retryAfter):
            record.status = status
            record.refusal = message
            await state.record(record)
            return error(status, type, message, type: status == 429 ? "requests" : "server_error", retryAfter: retryAfter)
        case .malformed(let body, let status):
            record.status = status
            await state.record(record)
            return FakeLLMServer.json(status, body)
        case .text(let t, let stop):
            text = t
            finish = stop ?? "stop"
        case .logprobs(let t, let values):
            text = t
            logprobs = values
        }
        await state.record(record)
        let tokens = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var choice: [String: JSONValue] = [
            "index": .int(0),
            "message": .object(["role": .string("assistant"), "content": .string(text), "refusal": .null]),
            "finish_reason": .string(finish),
            "logprobs": .null,
        ]
        if wantsLogprobs && configuration.offersLogprobs {
            let values = logprobs ?? Array(repeating: -0.01, count: max(1, tokens.count))
            let content = values.enumerated().map { i, lp -> JSONValue in
                let token = i < tokens.count ? (i == 0 ? tokens[i] : " " + tokens[i]) : ""
                return .object(["token": .string(token), "logprob": .double(lp), "bytes": .array(Array(token.utf8).map { .int(Int64($0)) }),
                                "top_logprobs": .array([])])
            }
            choice["logprobs"] = .object(["content": .array(content), "refusal": .null])
        }
        let prompt = FakeLLMServer.tokens((record.system ?? "") + " " + record.messages.map(\.content).joined(separator: " "))
        let completion = FakeLLMServer.tokens(text)
        let reply = JSONValue.object([
            "id": .string("chatcmpl-fake\(UInt32.random(in: 0...UInt32.max))"),
            "object": .string("chat.completion"),
            "created": .int(Int64(Date().timeIntervalSince1970)),
            "model": .string(model),
            "system_fingerprint": .string("fp_fake"),
            "choices": .array([.object(choice)]),
            "usage": .object(["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)]),
        ])
        return FakeLLMServer.json(200, FakeLLMServer.encode(reply), headers: [("x-request-id", "req_\(UInt32.random(in: 0...UInt32.max))")])
    }
}
