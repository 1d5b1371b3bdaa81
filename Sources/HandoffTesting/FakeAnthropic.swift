import Foundation
import HandoffCore
import Hummingbird
import NIOCore

/// A fake Anthropic Messages API on 127.0.0.1 (port 0) that enforces what the real one does:
/// `x-api-key` must be the configured key (401 `authentication_error`), `anthropic-version` must be
/// sent (400), the body must be JSON with a known `model` (404 `not_found_error`), a positive integer
/// `max_tokens`, and `messages` that start with `user` and alternate roles; unknown top-level fields
/// are refused (400). Replies are realistic Messages bodies (`msg_…` id, text content block,
/// `stop_reason`, `usage`, a `request-id` header). Scripts pick the reply per prompt; forced replies
/// produce 429 / 529 / 500 and malformed JSON. Every request is recorded.
package final class FakeAnthropic: FakeLLMProvider {
    package struct Configuration: Sendable {
        package var apiKey = "sk-ant-api03-fake-key-0123456789"
        package var models: Set<String> = ["claude-sonnet-4-5", "claude-haiku-4-5"]
        package var versions: Set<String> = ["2023-06-01"]

        package init() {}
    }

    static let allowedFields: Set<String> = [
        "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream", "metadata",
        "tools", "tool_choice", "thinking",
    ]

    package let configuration: Configuration
    package let state: FakeLLMState
    package let server: FakeLLMServer

    /// The API root to configure (`HANDOFF_AI_BASE_URL`).
    package var baseURL: String { "http://127.0.0.1:\(server.port)" }

    private init(configuration: Configuration, state: FakeLLMState, server: FakeLLMServer) {
        self.configuration = configuration
        self.state = state
        self.server = server
    }

    package static func start(_ configuration: Configuration = Configuration()) async throws -> FakeAnthropic {
        let state = FakeLLMState(fallback: { "Fake answer to: \($0.prefix(80))" })
        let router = Hummingbird.Router()
        router.post("/v1/messages") { request, _ -> Response in
            let (headers, raw, body) = try await FakeLLMServer.read(request)
            return await Self.handle(headers: headers, raw: raw, body: body, configuration: configuration, state: state)
        }
        let server = try await FakeLLMServer.start(name: "fake-anthropic", router: router)
        return FakeAnthropic(configuration: configuration, state: state, server: server)
    }


    static func error(_ status: Int, _ type: String, _ message: String, retryAfter: String? = nil) -> Response {
        let body = JSONValue.object([
            "type": .string("error"),
            "error": .object(["type": .string(type), "message": .string(message)]),
            "request_id": .string("req_fake\(UInt32.random(in: 0...UInt32.max))"),
        ])
        var headers = [("request-id", "req_fake\(UInt32.random(in: 0...UInt32.max))")]
        if let retryAfter { headers.append(("retry-after", retryAfter)) }
        return FakeLLMServer.json(status, FakeLLMServer.encode(body), headers: headers)
    }

    static func handle(headers: [String: String], raw: String, body: JSONValue?, configuration: Configuration,
                       state: FakeLLMState) async -> Response
    {
        var record = FakeLLMRequest(path: "/v1/messages", headers: headers, body: body, model: body?[fake: "model"]?.fakeString,
                                    system: nil, messages: [], status: 200, refusal: nil)
        func refuse(_ status: Int, _ type: String, _ message: String) async -> Response {
            record.status = status
            record.refusal = message
            await state.record(record)
            return error(status, type, message)
        }
        guard let key = headers["x-api-key"], key == configuration.apiKey else {
            return await refuse(401, "authentication_error", headers["x-api-key"] == nil ? "x-api-key header is required" : "invalid x-api-key")
        }
        guard let version = headers["anthropic-version"] else {
            return await refuse(400, "invalid_request_error", "anthropic-version: header is required")
        }
        guard configuration.versions.contains(version) else {
            return await refuse(400, "invalid_request_error", "anthropic-version: unknown version '\(version)'")
        }
        guard (headers["content-type"] ?? "").contains("application/json") else {
            return await refuse(400, "invalid_request_error", "content-type must be application/json")
        }
        guard let body, case .object(let fields) = body else {
            return await refuse(400, "invalid_request_error", "There was an issue with your request body: not JSON (\(raw.prefix(40)))")
        }
        if let extra = fields.keys.sorted().first(where: { !allowedFields.contains($0) }) {
            return await refuse(400, "invalid_request_error", "\(extra): Extra inputs are not permitted")
        }
        guard let model = fields["model"]?.fakeString else { return await refuse(400, "invalid_request_error", "model: Field required") }
        guard let maxTokens = fields["max_tokens"], maxTokens.fakeIsInteger, (maxTokens.fakeNumber ?? 0) >= 1 else {
            return await refuse(400, "invalid_request_error", "max_tokens: Field required (a positive integer)")
        }
        if let t = fields["temperature"], !(0...1).contains(t.fakeNumber ?? -1) {
            return await refuse(400, "invalid_request_error", "temperature: Input should be less than or equal to 1")
        }
        if let system = fields["system"] {
            if let s = system.fakeString {
                record.system = s
            } else if let blocks = system.fakeArray {
                record.system = blocks.compactMap { $0[fake: "text"]?.fakeString }.joined(separator: "\n")
            } else {
                return await refuse(400, "invalid_request_error", "system: Input should be a valid string or list of text blocks")
            }
        }
        guard let messages = fields["messages"]?.fakeArray, !messages.isEmpty else {
            return await refuse(400, "invalid_request_error", "messages: Field required (at least one message)")
        }
        var previous: String?
        for (i, m) in messages.enumerated() {
            guard let role = m[fake: "role"]?.fakeString, role == "user" || role == "assistant" else {
                return await refuse(400, "invalid_request_error", "messages.\(i).role: Input should be 'user' or 'assistant'")
            }
            if i == 0 && role != "user" { return await refuse(400, "invalid_request_error", "messages: first message must use the \"user\" role") }
            if role == previous { return await refuse(400, "invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\"") }
            previous = role
            let content: String
            if let s = m[fake: "content"]?.fakeString {
                content = s
            } else if let blocks = m[fake: "content"]?.fakeArray {
                content = blocks.compactMap { $0[fake: "text"]?.fakeString }.joined()
            } else {
                return await refuse(400, "invalid_request_error", "messages.\(i).content: Field required")
            }
            record.messages.append((role, content))
        }
        guard configuration.models.contains(model) else { return await refuse(404, "not_found_error", "model: \(model)") }

        let reply = await state.reply(system: record.system, user: record.lastUser ?? "")
        switch reply {
        case .error(let status, let type, let message, let retryAfter):
            record.status = status
            record.refusal = message
            await state.record(record)
            return error(status, type, message, retryAfter: retryAfter)
        case .malformed(let text, let status):
            record.status = status
            await state.record(record)
            return FakeLLMServer.json(status, text)
        case .text(let text, let stop):
            await state.record(record)
            return message(text, stopReason: stop ?? "end_turn", model: model, record: record)
        case .logprobs(let text, _):
            await state.record(record)
            return message(text, stopReason: "end_turn", model: model, record: record)
        }
    }

    static func message(_ text: String, stopReason: String, model: String, record: FakeLLMRequest) -> Response {
        let body = JSONValue.object([
            "id": .string("msg_01Fake\(UInt32.random(in: 0...UInt32.max))"),
            "type": .string("message"),
            "role": .string("assistant"),
            "model": .string(model),
            "content": .array([.object(["type": .string("text"), "text": .string(text)])]),
            "stop_reason": .string(stopReason),
            "stop_sequence": .null,
            "usage": .object([
                "input_tokens": .int(FakeLLMServer.tokens((record.system ?? "") + " " + record.messages.map(\.content).joined(separator: " "))),
                "output_tokens": .int(FakeLLMServer.tokens(text)),
            ]),
        ])
        return FakeLLMServer.json(200, FakeLLMServer.encode(body), headers: [("request-id", "req_fake\(UInt32.random(in: 0...UInt32.max))")])
    }
}
