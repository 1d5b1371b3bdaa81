import Foundation
import HandoffCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// What a fake LLM server answers to one request.
package enum FakeLLMReply: Hashable, Sendable {
    /// A normal answer; `stop` is the provider's stop reason (default `end_turn` / `stop`).
    case text(String, stop: String? = nil)
    /// An answer with these per-token log-probabilities (OpenAI-compatible fake only).
    case logprobs(String, [Double])
    /// An API error in the provider's error format, with an optional `retry-after` header.
    case error(status: Int, type: String, message: String, retryAfter: String? = nil)
    /// A body that is not the documented JSON.
    case malformed(String, status: Int = 200)

    /// Anthropic's 529 `overloaded_error`.
    package static func overloaded(retryAfter: String? = nil) -> FakeLLMReply {
        .error(status: 529, type: "overloaded_error", message: "Overloaded", retryAfter: retryAfter)
    }

    /// A 429 rate limit (`rate_limit_error` on Anthropic, `rate_limit_exceeded` on OpenAI).
    package static func rateLimited(retryAfter: String?, type: String = "rate_limit_error") -> FakeLLMReply {
        .error(status: 429, type: type, message: "Rate limit reached; please try again later.", retryAfter: retryAfter)
    }

    package static let serverError = FakeLLMReply.error(status: 500, type: "api_error", message: "Internal server error")
}

/// Which part of a request a script rule looks at.
package enum FakeLLMMatch: Sendable {
    /// The last user message contains the text (case-insensitive).
    case user(String)
    /// The system prompt contains the text.
    case system(String)
}

/// A request the fake accepted or refused, for assertions.
package struct FakeLLMRequest: Sendable {
    package var path: String
    /// Header names lower-cased.
    package var headers: [String: String]
    package var body: JSONValue?
    package var model: String?
    package var system: String?
    /// Every message's text, in order.
    package var messages: [(role: String, content: String)]
    /// The status the fake answered with.
    package var status: Int
    /// Why the fake refused it, when it did.
    package var refusal: String?

    package var lastUser: String? { messages.last { $0.role == "user" }?.content }
    package func field(_ name: String) -> JSONValue? {
        if case .object(let o)? = body { return o[name] }
        return nil
    }
}

/// The scripting and recording both fake LLM servers share: per-prompt scripts (replies used in order,
/// the last one repeating), a queue of replies forced onto the next requests, and every request seen.
package actor FakeLLMState {
    struct Rule {
        var match: FakeLLMMatch
        var replies: [FakeLLMReply]
        var used = 0
    }

    var rules: [Rule] = []
    var forced: [FakeLLMReply] = []
    var requests: [FakeLLMRequest] = []
    let fallback: @Sendable (String) -> String

    init(fallback: @escaping @Sendable (String) -> String) {
        self.fallback = fallback
    }

    func script(_ match: FakeLLMMatch, _ replies: [FakeLLMReply]) {
        rules.append(Rule(match: match, replies: replies))
    }

    func force(_ reply: FakeLLMReply, times: Int) {
        forced += Array(repeating: reply, count: max(0, times))
    }

    func reset() {
        rules = []
        forced = []
        requests = []
    }

    /// The reply for a valid request: a forced one first, then the newest matching rule, else the fallback.
    func reply(system: String?, user: String) -> FakeLLMReply {
        if !forced.isEmpty { return forced.removeFirst() }
        for i in rules.indices.reversed() {
            let hit: Bool
            switch rules[i].match {
            case .user(let text): hit = user.localizedCaseInsensitiveContains(text)
            case .system(let text): hit = (system ?? "").localizedCaseInsensitiveContains(text)
            }
            guard hit, !rules[i].replies.isEmpty else { continue }
            let reply = rules[i].replies[min(rules[i].used, rules[i].replies.count - 1)]
            rules[i].used += 1
            return reply
        }
        return .text(fallback(user))
    }

    func record(_ request: FakeLLMRequest) { requests.append(request) }
}

/// A loopback Hummingbird server (127.0.0.1, port 0, plain HTTP/1) that a fake provider runs on.
package final class FakeLLMServer: Sendable {
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let port: Int

    private init(group: ServiceGroup, task: Task<Void, any Error>, port: Int) {
        self.group = group
        self.task = task
        self.port = port
    }

    static func start(name: String, router: Hummingbird.Router<BasicRequestContext>) async throws -> FakeLLMServer {
        var logger = Logger(label: name)
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: name),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports {
            port = p
            break
        }
        return FakeLLMServer(group: group, task: task, port: port)
    }

    /// Stops the server; a stuck shutdown is cancelled after a few seconds.
    func stop() async {
        await shutDown(group, running: task, within: .seconds(5))
    }

    static func json(_ status: Int, _ body: String, headers extra: [(String, String)] = []) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func encode(_ value: JSONValue) -> String { value.canonicalText }

    /// Reads the request's headers (lower-cased names) and JSON body.
    static func read(_ request: Request) async throws -> (headers: [String: String], raw: String, body: JSONValue?) {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let buffer = try await request.body.collect(upTo: 4 << 20)
        let raw = String(buffer: buffer)
        return (headers, raw, try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)))
    }

    /// Rough token counts for `usage` (words), so bodies look real.
    static func tokens(_ text: String) -> Int64 { Int64(max(1, text.split(whereSeparator: \.isWhitespace).count)) }
}

extension JSONValue {
    /// A member of an object.
    subscript(fake key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var fakeString: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var fakeArray: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    var fakeNumber: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    var fakeIsInteger: Bool {
        if case .int = self { return true }
        return false
    }
}

/// What both fake providers offer on top of their wire format: the loopback server and the scripts.
package protocol FakeLLMProvider: Sendable {
    var state: FakeLLMState { get }
    var server: FakeLLMServer { get }
}

extension FakeLLMProvider {
    package var port: Int { server.port }
    package func stop() async { await server.stop() }
    /// Replies to requests whose prompt matches, in order (the last one repeats).
    package func script(_ match: FakeLLMMatch, _ replies: FakeLLMReply...) async { await state.script(match, replies) }
    /// The next `times` valid requests get this reply, before any script.
    package func failNext(_ reply: FakeLLMReply, times: Int = 1) async { await state.force(reply, times: times) }
    package func requests() async -> [FakeLLMRequest] { await state.requests }
    /// Requests the fake answered with 200.
    package func answered() async -> [FakeLLMRequest] { await state.requests.filter { $0.status == 200 } }
    package func reset() async { await state.reset() }
}
