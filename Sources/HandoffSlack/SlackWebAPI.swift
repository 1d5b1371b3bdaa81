import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import Logging
import NIOCore

/// A failed Slack Web API call. `ok:false` replies are failures too, with Slack's error code.
package struct SlackAPIError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        /// HTTP 200 with `{"ok":false,"error":"…"}`.
        case api(String)
        /// HTTP 429; wait `retryAfter` before calling this method again.
        case rateLimited(retryAfter: Duration)
        /// Any other HTTP status.
        case http(Int)
        /// No answer, a connection failure, or a body that is not Slack's JSON.
        case transport(String)
    }

    package let method: String
    package let code: Code

    package init(method: String, code: Code) {
        self.method = method
        self.code = code
    }

    /// Credential and configuration errors no retry can fix (chat-protocols.md §1.2).
    package static let fatalCodes: Set<String> = [
        "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
        "not_allowed_token_type", "no_permission", "org_login_required", "ekm_access_denied", "invalid_token",
    ]

    /// Errors about the request or its target: retrying the same call gives the same answer.
    package static let permanentCodes: Set<String> = [
        "message_not_found", "cant_update_message", "channel_not_found", "is_archived", "invalid_blocks",
        "invalid_blocks_format", "msg_too_long", "no_text", "too_many_attachments", "user_not_found",
        "user_not_in_channel", "not_in_channel", "already_reacted", "invalid_name", "too_many_reactions",
        "edit_window_closed", "invalid_arguments", "invalid_metadata_format", "metadata_too_large",
        "restricted_action", "cannot_dm_bot", "user_disabled", "method_deprecated", "invalid_ts_latest", "invalid_ts_oldest",
    ]

    package var isFatal: Bool {
        if case .api(let e) = code { return Self.fatalCodes.contains(e) }
        if case .http(let status) = code { return status == 401 || status == 403 }
        return false
    }

    package var isPermanent: Bool {
        if case .api(let e) = code { return Self.permanentCodes.contains(e) }
        if case .http(let status) = code { return (400..<500).contains(status) && status != 408 && status != 429 && !isFatal }
        return false
    }

    /// Slack's error code for `ok:false` replies.
    package var apiError: String? {
        if case .api(let e) = code { return e }
        return nil
    }

    package var description: String {
        switch code {
        case .api(let e): "Slack \(method) failed: \(e)"
        case .rateLimited(let after): "Slack \(method) is rate limited; retry after \(after)"
        case .http(let status): "Slack \(method) answered HTTP \(status)"
        case .transport(let what): "Slack \(method) could not be reached: \(what)"
        }
    }

    /// The platform-neutral classification the outbox dispatcher acts on.
    package var deliveryError: ChatDeliveryError {
        if case .rateLimited(let after) = code { return ChatDeliveryError(.rateLimited(retryAfter: after), description) }
        if isFatal { return ChatDeliveryError(.fatal, description) }
        if isPermanent { return ChatDeliveryError(.permanent, description) }
        return ChatDeliveryError(.transient, description)
    }
}

/// The Slack Web API over HTTPS: `Authorization: Bearer`, `ok:false` as failure, and 429s honoured
/// per method (a method that got a 429 waits out its Retry-After before the next call, so nothing
/// hammers it in parallel).
///
/// Bodies are JSON only for the write methods Slack accepts JSON for (``jsonMethods``); every other
/// method — the read methods (`conversations.history`, `users.info`, …) — is sent form-encoded,
/// because Slack ignores a JSON body there and answers as if no argument had been given.
package final class SlackWebAPIClient: Sendable {
    package struct Configuration: Sendable {
        /// `https://slack.com/api/`; tests point it at the fake.
        package var baseURL: String = "https://slack.com/api/"
        package var timeout: Duration = .seconds(15)
        /// A 429 whose Retry-After is at most this long is waited out and the call retried; a longer one
        /// is thrown to the caller (the outbox then retries the row at that time).
        package var maxInlineRateLimitWait: Duration = .seconds(5)
        /// Inline retries after a 429, per call.
        package var maxRateLimitRetries: Int = 3
        /// Largest response body read.
        package var maxResponseBytes: Int = 4 << 20

        package init() {}
    }

    let http: HTTPClient
    let configuration: Configuration
    let logger: Logger
    private let gate = RateLimitGate()

    /// The methods Slack accepts `application/json` bodies for. Everything else goes form-encoded.
    package static let jsonMethods: Set<String> = [
        "chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete", "reactions.add", "reactions.remove", "conversations.open",
    ]

    /// `application/x-www-form-urlencoded` arguments: strings as they are, numbers and booleans as
    /// text, objects and arrays (e.g. `blocks`) as JSON text, as Slack expects in form posts.
    package static func formBody(_ arguments: [String: JSONValue]) -> String {
        arguments.keys.sorted().map { name -> String in
            let value: String
            switch arguments[name] ?? .null {
            case .string(let s): value = s
            case .bool(let b): value = b ? "true" : "false"
            case .int(let i): value = String(i)
            case .double(let d): value = String(d)
            case .null: value = ""
            case let other: value = other.jsonText
            }
            return FormURLEncoding.encode(name) + "=" + FormURLEncoding.encode(value)
        }.joined(separator: "&")
    }

    package init(http: HTTPClient, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "handoff.slack.api")) {
        self.http = http
        var c = configuration
        if !c.baseURL.hasSuffix("/") { c.baseURL += "/" }
        self.configuration = c
        self.logger = logger
    }

    /// Until when calls to a method wait after a 429 (nil when they go straight out).
    package func rateLimitedUntil(_ method: String) async -> ContinuousClock.Instant? {
        await gate.until(method)
    }

    /// Calls a method with a JSON body; returns the reply object (already checked for `ok:true`).
    @discardableResult
    package func call(_ method: String, token: Secret, _ arguments: [String: JSONValue] = [:]) async throws(SlackAPIError) -> JSONValue {
        var attempt = 0
        while true {
            await gate.waitTurn(method)
            do throws(SlackAPIError) {
                return try await callOnce(method, token: token, arguments)
            } catch {
                guard case .rateLimited(let after) = error.code else { throw error }
                await gate.block(method, for: after)
                attempt += 1
                guard after <= configuration.maxInlineRateLimitWait, attempt <= configuration.maxRateLimitRetries else { throw error }
                logger.info("Slack rate limit: waiting before retrying", metadata: ["method": "\(method)", "retry_after": "\(after)"])
            }
        }
    }

    private func callOnce(_ method: String, token: Secret, _ arguments: [String: JSONValue]) async throws(SlackAPIError) -> JSONValue {
        var request = HTTPClientRequest(url: configuration.baseURL + method)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token.revealed)")
        if Self.jsonMethods.contains(method) {
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(string: JSONValue.object(arguments).jsonText))
        } else {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: Self.formBody(arguments)))
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000))
            body = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch {
            throw SlackAPIError(method: method, code: .transport("\(error)"))
        }
        if response.status.code == 429 {
            let header = response.headers.first(name: "Retry-After").flatMap(Double.init) ?? 1
            throw SlackAPIError(method: method, code: .rateLimited(retryAfter: .milliseconds(Int64(max(header, 0) * 1000))))
        }
        guard response.status.code == 200 else { throw SlackAPIError(method: method, code: .http(Int(response.status.code))) }
        let json: JSONValue
        do {
            json = try JSONValue.parsePayload(Array(buffer: body))
        } catch {
            throw SlackAPIError(method: method, code: .transport("the reply is not JSON"))
        }
        guard json.member("ok")?.asBool == true else {
            let code = json.member("error")?.asString ?? "unknown_error"
            if code == "ratelimited" || code == "rate_limited" {
                throw SlackAPIError(method: method, code: .rateLimited(retryAfter: .seconds(1)))
            }
            throw SlackAPIError(method: method, code: .api(code))
        }
        return json
    }
}

/// Per-method "not before" times after a 429.
actor RateLimitGate {
    private var notBefore: [String: ContinuousClock.Instant] = [:]

    func waitTurn(_ method: String) async {
        while let until = notBefore[method], until > .now {
            try? await Task.sleep(until: until, clock: .continuous)
            if Task.isCancelled { return }
        }
        notBefore[method] = nil
    }

    func until(_ method: String) -> ContinuousClock.Instant? {
        notBefore[method].flatMap { $0 > .now ? $0 : nil }
    }

    func block(_ method: String, for duration: Duration) {
        let until = ContinuousClock.now + duration
        if let existing = notBefore[method], existing > until { return }
        notBefore[method] = until
    }
}

/// The bot's view of itself, from `auth.test`.
package struct SlackBotIdentity: Hashable, Sendable {
    package var userID: String
    package var botID: String?
    package var teamID: String?

    package init(userID: String, botID: String? = nil, teamID: String? = nil) {
        self.userID = userID
        self.botID = botID
        self.teamID = teamID
    }
}

extension SlackWebAPIClient {
    package func authTest(token: Secret) async throws(SlackAPIError) -> SlackBotIdentity {
        let r = try await call("auth.test", token: token)
        guard let user = r.member("user_id")?.asString else { throw SlackAPIError(method: "auth.test", code: .transport("no user_id in the reply")) }
        return SlackBotIdentity(userID: user, botID: r.member("bot_id")?.asString, teamID: r.member("team_id")?.asString)
    }

    /// A fresh single-use Socket Mode URL (needs the app-level token).
    package func openConnection(appToken: Secret) async throws(SlackAPIError) -> String {
        let r = try await call("apps.connections.open", token: appToken)
        guard let url = r.member("url")?.asString else { throw SlackAPIError(method: "apps.connections.open", code: .transport("no url in the reply")) }
        return url
    }

    package func postMessage(token: Secret, channel: String, text: String, blocks: JSONValue? = nil, threadTS: String? = nil,
                             metadata: JSONValue? = nil) async throws(SlackAPIError) -> PostedMessage
    {
        var args: [String: JSONValue] = ["channel": .string(channel), "text": .string(text), "unfurl_links": .bool(false),
                                         "unfurl_media": .bool(false)]
        if let blocks { args["blocks"] = blocks }
        if let threadTS { args["thread_ts"] = .string(threadTS) }
        if let metadata { args["metadata"] = metadata }
        let r = try await call("chat.postMessage", token: token, args)
        guard let ts = r.member("ts")?.asString else { throw SlackAPIError(method: "chat.postMessage", code: .transport("no ts in the reply")) }
        return PostedMessage(channel: r.member("channel")?.asString ?? channel, messageID: ts, threadID: threadTS)
    }

    package func updateMessage(token: Secret, channel: String, ts: String, text: String, blocks: JSONValue) async throws(SlackAPIError) {
        try await call("chat.update", token: token, ["channel": .string(channel), "ts": .string(ts), "text": .string(text), "blocks": blocks])
    }

    package func postEphemeral(token: Secret, channel: String, user: String, text: String, threadTS: String? = nil) async throws(SlackAPIError) {
        var args: [String: JSONValue] = ["channel": .string(channel), "user": .string(user), "text": .string(text)]
        if let threadTS { args["thread_ts"] = .string(threadTS) }
        try await call("chat.postEphemeral", token: token, args)
    }

    package func addReaction(token: Secret, channel: String, ts: String, name: String) async throws(SlackAPIError) {
        try await call("reactions.add", token: token, ["channel": .string(channel), "timestamp": .string(ts), "name": .string(name)])
    }

    /// `users.info`: the user object (id, name, real_name, is_bot, …).
    package func userInfo(token: Secret, user: String) async throws(SlackAPIError) -> JSONValue {
        let r = try await call("users.info", token: token, ["user": .string(user)])
        return r.member("user") ?? .null
    }

    /// The DM channel with a user (`conversations.open`).
    package func openDM(token: Secret, user: String) async throws(SlackAPIError) -> String {
        let r = try await call("conversations.open", token: token, ["users": .string(user)])
        guard let id = r.member(path: "channel", "id")?.asString else {
            throw SlackAPIError(method: "conversations.open", code: .transport("no channel id in the reply"))
        }
        return id
    }

    /// One page of a channel's recent messages, newest first, with their metadata, and the cursor of
    /// the next page (nil on the last one).
    package func history(token: Secret, channel: String, oldest: String?, limit: Int = 100,
                         cursor: String? = nil) async throws(SlackAPIError) -> (messages: [JSONValue], nextCursor: String?)
    {
        var args: [String: JSONValue] = ["channel": .string(channel), "limit": .int(Int64(limit)), "include_all_metadata": .bool(true)]
        if let oldest { args["oldest"] = .string(oldest) }
        if let cursor { args["cursor"] = .string(cursor) }
        let r = try await call("conversations.history", token: token, args)
        let next = r.member(path: "response_metadata", "next_cursor")?.asString.flatMap { $0.isEmpty ? nil : $0 }
        return (r.member("messages")?.asArray ?? [], next)
    }
}
