import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import Logging
import NIOCore
import Synchronization

/// Who the bot is on the homeserver, once logged in.
package struct MatrixSession: Hashable, Sendable {
    package var userID: String
    package var deviceID: String?
    package var accessToken: Secret
}

/// The Matrix client-server API over HTTP(S): `Authorization: Bearer`, JSON bodies, errors as
/// ``MatrixError``.
///
/// It keeps the session: it logs in with the password (stable device id, so `txnId`s keep their
/// scope) or checks a configured access token with `whoami`, and on 401 `M_UNKNOWN_TOKEN` logs in
/// again once when it has a password (chat-protocols.md §4.1). A 429 is honoured for every request
/// (the limit is per user): `Retry-After` first, then `retry_after_ms`; short waits are waited out
/// and the call retried, longer ones are thrown to the caller. Requests that are safe to repeat
/// (reads, and sends with their `txnId`) are retried after a transport error with the same
/// `txnId`, so a send whose reply was lost is one event.
package final class MatrixClient: Sendable {
    package struct Configuration: Sendable, CustomStringConvertible {
        /// `https://matrix.example.org` (the client-server API base, without `/_matrix`).
        package var homeserver: String
        /// `@handoff:example.org`, or just `handoff` (the homeserver fills in its server name).
        package var user: String?
        package var password: Secret?
        package var accessToken: Secret?
        /// Stable, so `txnId`s keep their scope across restarts (chat-protocols.md §4.1).
        package var deviceID = "HANDOFF1"
        package var deviceDisplayName = "Handoff"
        /// Timeout of one ordinary request (a `/sync` long-poll gets its own, longer one).
        package var requestTimeout: Duration = .seconds(30)
        /// A 429 asking for at most this long is waited out and the call retried; a longer one is thrown.
        package var maxInlineRateLimitWait: Duration = .seconds(10)
        package var maxRateLimitRetries = 6
        /// Retries of a repeatable request after a transport error (same `txnId`).
        package var maxTransportRetries = 3
        package var transportRetryDelay: Duration = .milliseconds(250)
        package var maxResponseBytes = 32 << 20

        package init(homeserver: String, user: String? = nil, password: Secret? = nil, accessToken: Secret? = nil) {
            self.homeserver = homeserver
            self.user = user
            self.password = password
            self.accessToken = accessToken
        }

        package var description: String {
            "MatrixClient.Configuration(homeserver: \(homeserver), user: \(user ?? "-"), password: \(password == nil ? "-" : "(redacted)"), access token: \(accessToken == nil ? "-" : "(redacted)"), device: \(deviceID))"
        }
    }

    /// What a request may repeat on its own.
    package enum Repeat: Sendable {
        /// Reads and `PUT`s with a `txnId`: retried after transport errors and 429s.
        case idempotent
        /// `POST`s that create something (a room): retried only after a 429 (nothing happened then).
        case onlyWhenRateLimited
    }

    let http: HTTPClient
    package let configuration: Configuration
    let logger: Logger
    private let session = Mutex<MatrixSession?>(nil)
    private let loginLock = AsyncLock()
    private let gate = RateLimitGate()
    private let counters = Counters()

    package init(http: HTTPClient, configuration: Configuration, logger: Logger = Logger(label: "handoff.matrix.api")) {
        self.http = http
        var c = configuration
        while c.homeserver.hasSuffix("/") { c.homeserver.removeLast() }
        self.configuration = c
        self.logger = logger
    }

    /// The current session, if logged in.
    package var currentSession: MatrixSession? { session.withLock { $0 } }

    /// How many times the client logged in (tests check a lost token led to exactly one more).
    package var logins: Int { counters.logins.load(ordering: .relaxed) }
    /// How many 429s the homeserver answered.
    package var rateLimitedResponses: Int { counters.rateLimited.load(ordering: .relaxed) }
    /// How many reactions were already there (`M_DUPLICATE_ANNOTATION`, counted as sent).
    package var duplicateAnnotations: Int { counters.duplicateAnnotations.load(ordering: .relaxed) }

    // MARK: Session

    /// The session, logging in (or checking the access token) the first time.
    package func ensureSession() async throws(MatrixError) -> MatrixSession {
        if let current = currentSession { return current }
        return try await loginLock.run { () async throws(MatrixError) -> MatrixSession in
            if let current = currentSession { return current }
            let fresh = try await establish()
            session.withLock { $0 = fresh }
            return fresh
        }
    }

    private func establish() async throws(MatrixError) -> MatrixSession {
        if let token = configuration.accessToken {
            let me: JSONValue
            do {
                me = try await perform("GET", "/_matrix/client/v3/account/whoami", token: token, timeout: configuration.requestTimeout)
            } catch {
                if case .unknownToken = error.code {
                    throw MatrixError(endpoint: "whoami", code: .fatal,
                                      message: "the Matrix homeserver \(configuration.homeserver) refused MATRIX_ACCESS_TOKEN (\(error.message)); set a valid token, or MATRIX_PASSWORD so the bot can log in itself")
                }
                throw error
            }
            guard let user = me.member("user_id")?.asString else {
                throw MatrixError(endpoint: "whoami", code: .transport("no user_id in the reply"), message: "no user_id in the reply")
            }
            logger.info("Matrix session from the access token", metadata: ["user": "\(user)"])
            return MatrixSession(userID: user, deviceID: me.member("device_id")?.asString, accessToken: token)
        }
        return try await login()
    }

    /// Logs in with the password and the stable device id.
    private func login() async throws(MatrixError) -> MatrixSession {
        guard let password = configuration.password, let user = configuration.user else {
            throw MatrixError(endpoint: "login", code: .fatal,
                              message: "Matrix needs MATRIX_USER with MATRIX_PASSWORD, or MATRIX_ACCESS_TOKEN, to log in")
        }
        let body = JSONValue.object([
            "type": .string("m.login.password"),
            "identifier": .object(["type": .string("m.id.user"), "user": .string(user)]),
            "password": .string(password.revealed),
            "device_id": .string(configuration.deviceID),
            "initial_device_display_name": .string(configuration.deviceDisplayName),
        ])
        let reply: JSONValue
        do {
            reply = try await perform("POST", "/_matrix/client/v3/login", body: body, token: nil, timeout: configuration.requestTimeout)
        } catch {
            if case .api(let status, let errcode) = error.code, status == 403 || errcode == "M_FORBIDDEN" || errcode == "M_USER_DEACTIVATED" {
                throw MatrixError(endpoint: "login", code: .fatal,
                                  message: "the Matrix homeserver \(configuration.homeserver) refused the login of \(user) (\(errcode): \(error.message)); check MATRIX_USER and MATRIX_PASSWORD")
            }
            throw error
        }
        guard let token = reply.member("access_token")?.asString, let userID = reply.member("user_id")?.asString else {
            throw MatrixError(endpoint: "login", code: .transport("no access_token in the reply"), message: "no access_token in the reply")
        }
        counters.logins.add(1, ordering: .relaxed)
        logger.info("Matrix login", metadata: ["user": "\(userID)", "device": "\(reply.member("device_id")?.asString ?? "-")"])
        return MatrixSession(userID: userID, deviceID: reply.member("device_id")?.asString, accessToken: Secret(token))
    }

    /// After a 401: logs in again (once for everyone who saw the same dead token). Throws when there is
    /// no password to log in with.
    private func renewSession(replacing dead: Secret, cause: MatrixError) async throws(MatrixError) {
        try await loginLock.run { () async throws(MatrixError) in
            if let current = currentSession, current.accessToken != dead { return }  // someone else renewed it
            guard configuration.password != nil, configuration.user != nil else {
                throw MatrixError(endpoint: cause.endpoint, code: cause.code,
                                  message: "the access token is no longer valid (\(cause.message)) and no MATRIX_PASSWORD is set to log in again; set a new MATRIX_ACCESS_TOKEN (or MATRIX_USER and MATRIX_PASSWORD) and restart")
            }
            session.withLock { $0 = nil }
            logger.warning("Matrix access token rejected; logging in again", metadata: ["reason": "\(cause.message)"])
            let fresh = try await login()
            session.withLock { $0 = fresh }
        }
    }

    // MARK: Requests

    /// Calls the API as the bot: logs in when needed, renews a dead token once, honours 429s, retries
    /// repeatable requests after transport errors.
    @discardableResult
    package func call(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
                      timeout: Duration? = nil, repeat policy: Repeat = .idempotent) async throws(MatrixError) -> JSONValue
    {
        var renewed = false
        var rateLimitRetries = 0
        var transportRetries = 0
        while true {
            // The message rate limit is on sends; reads (the /sync long-poll) need not wait for it.
            if method != "GET" { await gate.waitTurn() }
            let current = try await ensureSession()
            do {
                return try await perform(method, path, query: query, body: body, token: current.accessToken,
                                         timeout: timeout ?? configuration.requestTimeout)
            } catch {
                switch error.code {
                case .unknownToken where !renewed:
                    try await renewSession(replacing: current.accessToken, cause: error)
                    renewed = true
                case .rateLimited(let after):
                    counters.rateLimited.add(1, ordering: .relaxed)
                    await gate.block(for: after)
                    rateLimitRetries += 1
                    guard after <= configuration.maxInlineRateLimitWait, rateLimitRetries <= configuration.maxRateLimitRetries else { throw error }
                    logger.info("Matrix rate limit: waiting before retrying", metadata: ["endpoint": "\(error.endpoint)", "retry_after": "\(after)"])
                case .transport where policy == .idempotent && transportRetries < configuration.maxTransportRetries && !Task.isCancelled:
                    transportRetries += 1
                    logger.info("Matrix request failed; retrying it unchanged", metadata: ["endpoint": "\(error.endpoint)", "error": "\(error.message)"])
                    try? await Task.sleep(for: configuration.transportRetryDelay * transportRetries)
                default:
                    throw error
                }
            }
        }
    }

    /// One HTTP exchange, classified.
    private func perform(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, token: Secret?,
                         timeout: Duration) async throws(MatrixError) -> JSONValue
    {
        let endpoint = "\(method) \(Self.endpointName(path))"
        var url = configuration.homeserver + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .RAW(value: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token.revealed)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.jsonText))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            bytes = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch {
            throw MatrixError(endpoint: endpoint, code: .transport("\(error)"), message: "\(error)")
        }
        let status = Int(response.status.code)
        let json = try? JSONValue.parsePayload(Array(buffer: bytes))
        if (200..<300).contains(status) {
            guard let json else { throw MatrixError(endpoint: endpoint, code: .transport("the reply is not JSON"), message: "the reply is not JSON") }
            return json
        }
        let errcode = json?.member("errcode")?.asString ?? "M_UNKNOWN"
        let text = json?.member("error")?.asString ?? "HTTP \(status)"
        if status == 429 || errcode == "M_LIMIT_EXCEEDED" {
            throw MatrixError(endpoint: endpoint, code: .rateLimited(retryAfter: Self.retryAfter(header: response.headers.first(name: "Retry-After"), body: json)),
                              message: text)
        }
        if status == 401 && (errcode == "M_UNKNOWN_TOKEN" || errcode == "M_MISSING_TOKEN") {
            throw MatrixError(endpoint: endpoint, code: .unknownToken(softLogout: json?.member("soft_logout")?.asBool ?? false), message: text)
        }
        throw MatrixError(endpoint: endpoint, code: .api(status: status, errcode: errcode), message: text)
    }

    /// The wait a 429 asks for: the `Retry-After` header (seconds, spec ≥ 1.10) when present, else
    /// the body's `retry_after_ms`, else one second.
    package static func retryAfter(header: String?, body: JSONValue?) -> Duration {
        if let header = header?.trimmingCharacters(in: .whitespaces), let seconds = Double(header), seconds >= 0 {
            return .milliseconds(Int64(seconds * 1000))
        }
        if let ms = body?.member("retry_after_ms")?.asInt, ms >= 0 { return .milliseconds(ms) }
        return .seconds(1)
    }

    /// `/_matrix/client/v3/rooms/!r:hs/send/m.room.message/t1` → `rooms/{id}/send/m.room.message` (for logs).
    static func endpointName(_ path: String) -> String {
        let parts = path.split(separator: "/").dropFirst(3)
        var out: [String] = []
        for part in parts {
            let decoded = part.removingPercentEncoding ?? String(part)
            if decoded.hasPrefix("!") || decoded.hasPrefix("$") || decoded.hasPrefix("@") {
                out.append("{id}")
            } else {
                out.append(decoded)
            }
        }
        if out.count >= 4, out[0] == "rooms", out[2] == "send" || out[2] == "redact" { out = Array(out.prefix(4)) }
        return out.joined(separator: "/")
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// Percent-encodes a path segment or query part (room ids carry `!` and `:`, event ids `$`).
    package static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }
}

/// Counters the tests and logs read.
private final class Counters: Sendable {
    let logins = Atomic<Int>(0)
    let rateLimited = Atomic<Int>(0)
    let duplicateAnnotations = Atomic<Int>(0)
}

extension MatrixClient {
    func countDuplicateAnnotation() { counters.duplicateAnnotations.add(1, ordering: .relaxed) }
}

/// The homeserver's rate limit is per user: after a 429 every request waits until the window passes.
actor RateLimitGate {
    private var notBefore: ContinuousClock.Instant?

    func waitTurn() async {
        while let until = notBefore, until > .now {
            try? await Task.sleep(until: until, clock: .continuous)
            if Task.isCancelled { return }
        }
        notBefore = nil
    }

    func block(for duration: Duration) {
        let until = ContinuousClock.now + duration
        if let existing = notBefore, existing > until { return }
        notBefore = until
    }
}


/// A first-come-first-served async lock (one login at a time; one DM room per person).
actor AsyncLock {
    /// Runs `body` holding the lock.
    nonisolated func run<T: Sendable>(_ body: () async throws(MatrixError) -> T) async throws(MatrixError) -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
