import Foundation
import HandoffCore
import HummingbirdWebSocket
import NIOCore

/// Everything the fake Slack knows, behind one actor.
actor FakeSlackState {
    struct Envelope: Sendable {
        var id: String
        var type: String
        var payload: JSONValue
        var acceptsResponsePayload: Bool
        var retryAttempt: Int
        var retryReason: String
        var ignoreAck: Bool

        var text: String {
            JSONValue.object([
                "envelope_id": .string(id), "type": .string(type), "accepts_response_payload": .bool(acceptsResponsePayload),
                "retry_attempt": .int(Int64(retryAttempt)), "retry_reason": .string(retryReason), "payload": payload,
            ]).canonicalText
        }

        var dedupeID: String {
            if case .object(let p) = payload {
                if case .string(let e)? = p["event_id"] { return e }
                if case .string(let t)? = p["trigger_id"] { return t }
            }
            return id
        }
    }

    struct Connection {
        var id: Int
        var outbound: WebSocketOutboundWriter
        var channel: any Channel
        var helloSent = false
        var disconnecting = false
    }

    struct Reply: Sendable {
        var status: Int
        var body: JSONValue
        var retryAfter: Int?
    }

    let configuration: FakeSlack.Configuration
    private var port = 0
    private var tickets: [String: Bool] = [:]
    private(set) var reusedTickets = 0
    private var refuseSockets = false
    /// The connection cap set while running (``FakeSlack/limitConnections(to:)``), else the configuration's.
    private var maxConnections: Int?
    private var nextConnection = 1
    private var connectionsByID: [Int: Connection] = [:]
    private(set) var records: [FakeSlack.ConnectionRecord] = []
    private var outstanding: [String: (envelope: Envelope, sentAt: ContinuousClock.Instant, connection: Int)] = [:]
    private var queued: [Envelope] = []
    private(set) var acks: [FakeSlack.Ack] = []
    private(set) var sent: [FakeSlack.SentEnvelope] = []
    private(set) var abandoned: [String] = []
    private(set) var calls: [FakeSlack.APICall] = []
    private(set) var messages: [FakeSlack.Message] = []
    private(set) var ephemerals: [FakeSlack.Ephemeral] = []
    private(set) var botReactions: [(channel: String, ts: String, name: String)] = []
    private(set) var hammering: [FakeSlack.APICall] = []
    private var injectedErrors: [String: [String]] = [:]
    private var injectedRateLimits: [String: [Int]] = [:]
    /// HTTP statuses to answer with (5xx), and whether the call takes effect first (the reply is lost).
    private var injectedStatuses: [String: [(status: Int, applied: Bool)]] = [:]
    private var rateLimitedUntil: [String: ContinuousClock.Instant] = [:]
    private var tsCounter: Int64 = 0
    private var lastTSSeconds: Int64 = 0
    private var eventCounter = 0
    private var timers: [Task<Void, Never>] = []
    private var stopped = false

    init(configuration: FakeSlack.Configuration) { self.configuration = configuration }

    func setPort(_ port: Int) { self.port = port }
    func setRefuseSockets(_ refuse: Bool) { refuseSockets = refuse }
    func setMaxConnections(_ limit: Int?) { maxConnections = limit }

    var liveConnectionIDs: [Int] { connectionsByID.keys.sorted() }

    func nextTS() -> String {
        tsCounter += 1
        // Trailing zeros on purpose: a `ts` must round-trip as the exact string (edge case A16).
        let fraction = String(format: "%06d", (tsCounter * 100) % 1_000_000)
        guard configuration.wallClockTimestamps else { return "\(1_767_225_600 + tsCounter).\(fraction)" }
        // Real time, never going backwards; the counter keeps two messages in one second apart.
        lastTSSeconds = max(lastTSSeconds, Int64(Date().timeIntervalSince1970))
        return "\(lastTSSeconds).\(fraction)"
    }

    func nextEventID() -> String {
        eventCounter += 1
        return "Ev\(String(format: "%08d", eventCounter))"
    }

    // MARK: Sockets

    func redeem(ticket: String) -> Bool {
        guard !refuseSockets, !stopped, let used = tickets[ticket] else { return false }
        if used {
            reusedTickets += 1
            return false
        }
        tickets[ticket] = true
        return true
    }

    func register(outbound: WebSocketOutboundWriter, channel: any Channel) -> Int {
        let id = nextConnection
        nextConnection += 1
        connectionsByID[id] = Connection(id: id, outbound: outbound, channel: channel)
        records.append(FakeSlack.ConnectionRecord(id: id, openedAt: .now, helloAt: nil, endedAt: nil, endedByServer: false))
        return id
    }

    /// Enforces the connection cap: one socket too many gets `too_many_websockets` and is closed.
    func admit(_ id: Int) async -> Bool {
        guard connectionsByID.count > (maxConnections ?? configuration.maxConnections), let c = connectionsByID[id] else { return true }
        try? await c.outbound.write(.text(Self.disconnectFrame("too_many_websockets")))
        markEndedByServer(id)
        try? await c.outbound.close(.policyViolation, reason: "too_many_websockets")
        return false
    }

    func helloSequence(_ id: Int) async {
        if configuration.helloDelay > .zero {
            if configuration.deliverQueuedBeforeHello { await flushQueued(to: id) }
            try? await Task.sleep(for: configuration.helloDelay)
        }
        guard let c = connectionsByID[id] else { return }
        let hello = JSONValue.object([
            "type": .string("hello"), "num_connections": .int(Int64(connectionsByID.count)),
            "debug_info": .object(["host": .string("applink-fake-\(id)"), "build_number": .int(1), "approximate_connection_time": .int(18060)]),
            "connection_info": .object(["app_id": .string(configuration.appID)]),
        ]).canonicalText
        do {
            try await c.outbound.write(.text(hello))
        } catch {
            return
        }
        connectionsByID[id]?.helloSent = true
        if let i = records.firstIndex(where: { $0.id == id }) { records[i].helloAt = .now }
        await flushQueued(to: id)
    }

    func ended(_ id: Int) {
        connectionsByID[id] = nil
        if let i = records.firstIndex(where: { $0.id == id }), records[i].endedAt == nil { records[i].endedAt = .now }
        // Envelopes waiting for an ack on this socket are redelivered by their timers.
    }

    private func markEndedByServer(_ id: Int) {
        if let i = records.firstIndex(where: { $0.id == id }) { records[i].endedByServer = true }
    }

    func received(_ text: String, from connection: Int) {
        guard case .object(let o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)),
              case .string(let envelopeID)? = o["envelope_id"]
        else { return }
        if let waiting = outstanding[envelopeID] {
            acks.append(FakeSlack.Ack(envelopeID: envelopeID, connection: connection, latency: .now - waiting.sentAt, payload: o["payload"],
                                      late: false))
            if !waiting.envelope.ignoreAck { outstanding[envelopeID] = nil }
        } else {
            acks.append(FakeSlack.Ack(envelopeID: envelopeID, connection: connection, latency: .zero, payload: o["payload"], late: true))
        }
    }

    /// The socket new envelopes go to: the newest that said hello and was not told to disconnect.
    private func route(_ preferred: Int?) -> Int? {
        if let preferred, connectionsByID[preferred] != nil { return preferred }
        let ready = connectionsByID.values.filter(\.helloSent)
        return (ready.filter { !$0.disconnecting }.max { $0.id < $1.id } ?? ready.max { $0.id < $1.id })?.id
    }

    func deliver(_ envelope: Envelope, to preferred: Int?) async -> String {
        guard let id = route(preferred), let c = connectionsByID[id] else {
            queued.append(envelope)
            return envelope.id
        }
        // Waiting for the ack from before the write: the actor is reentrant, and on loopback the ack can
        // arrive while the write is still awaited; it must count as an ack, not as a late one.
        outstanding[envelope.id] = (envelope, .now, id)
        do {
            try await c.outbound.write(.text(envelope.text))
        } catch {
            outstanding[envelope.id] = nil
            queued.append(envelope)
            return envelope.id
        }
        sent.append(FakeSlack.SentEnvelope(envelopeID: envelope.id, type: envelope.type, retryAttempt: envelope.retryAttempt, connection: id,
                                           dedupeID: envelope.dedupeID))
        let timeout = configuration.ackTimeout
        let attempt = envelope.retryAttempt
        let envelopeID = envelope.id
        timers.append(Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            await self?.ackTimedOut(envelopeID, attempt: attempt)
        })
        return envelope.id
    }

    /// No ack in time: redeliver as a retry (Slack: immediately, then later), up to the retry limit.
    private func ackTimedOut(_ envelopeID: String, attempt: Int) async {
        guard !stopped, let waiting = outstanding[envelopeID], waiting.envelope.retryAttempt == attempt else { return }
        outstanding[envelopeID] = nil
        guard attempt < configuration.maxRetries else {
            abandoned.append(envelopeID)
            return
        }
        var retry = waiting.envelope
        retry.retryAttempt = attempt + 1
        retry.retryReason = "timeout"
        retry.ignoreAck = false
        if configuration.redeliverWithNewEnvelopeID { retry.id = UUID().uuidString.lowercased() }
        _ = await deliver(retry, to: nil)
    }

    /// Envelopes that waited for a socket arrive as retries.
    private func flushQueued(to id: Int) async {
        let pending = queued
        queued = []
        for var envelope in pending {
            envelope.retryAttempt += 1
            envelope.retryReason = envelope.retryReason.isEmpty ? "timeout" : envelope.retryReason
            _ = await deliver(envelope, to: id)
        }
    }

    func sendRaw(_ text: String, to preferred: Int?) async {
        guard let id = route(preferred), let c = connectionsByID[id] else { return }
        try? await c.outbound.write(.text(text))
    }

    static func disconnectFrame(_ reason: String) -> String {
        JSONValue.object(["type": .string("disconnect"), "reason": .string(reason), "debug_info": .object(["host": .string("applink-fake")])]).canonicalText
    }

    func sendDisconnect(reason: String, to preferred: Int?) async {
        guard let id = route(preferred), let c = connectionsByID[id] else { return }
        connectionsByID[id]?.disconnecting = true
        try? await c.outbound.write(.text(Self.disconnectFrame(reason)))
        switch reason {
        case "link_disabled", "too_many_websockets":
            markEndedByServer(id)
            try? await c.outbound.close(.normalClosure, reason: reason)
        default:
            let grace = configuration.disconnectGrace
            timers.append(Task { [weak self] in
                try? await Task.sleep(for: grace)
                guard !Task.isCancelled else { return }
                await self?.closeIfOpen(id)
            })
        }
    }

    private func closeIfOpen(_ id: Int) async {
        guard let c = connectionsByID[id] else { return }
        markEndedByServer(id)
        try? await c.outbound.close(.goingAway, reason: "refresh")
    }

    func drop(_ preferred: Int?) {
        guard let id = route(preferred) ?? connectionsByID.keys.max(), let c = connectionsByID[id] else { return }
        markEndedByServer(id)
        c.channel.close(promise: nil)
    }

    func shutdown() async {
        stopped = true
        for t in timers { t.cancel() }
        timers = []
        for c in connectionsByID.values {
            markEndedByServer(c.id)
            c.channel.close(promise: nil)
        }
    }

    // MARK: Web API

    func inject(_ method: String, error: String, times: Int) {
        injectedErrors[method, default: []] += Array(repeating: error, count: times)
    }

    func injectStatus(_ method: String, status: Int, applied: Bool, times: Int) {
        injectedStatuses[method, default: []] += Array(repeating: (status, applied), count: times)
    }

    func injectRateLimit(_ method: String, seconds: Int, times: Int) {
        injectedRateLimits[method, default: []] += Array(repeating: seconds, count: times)
    }

    func storeUserMessage(user: String, channel: String, text: String, threadTS: String?) -> String {
        let ts = nextTS()
        messages.append(FakeSlack.Message(channel: channel, ts: ts, threadTS: threadTS, user: user, botID: nil, text: text, blocks: nil,
                                          metadata: nil, edits: 0))
        return ts
    }

    private func ok(_ fields: [String: JSONValue] = [:]) -> Reply {
        var o = fields
        o["ok"] = .bool(true)
        return Reply(status: 200, body: .object(o))
    }

    private func fail(_ error: String, _ extra: [String: JSONValue] = [:]) -> Reply {
        var o = extra
        o["ok"] = .bool(false)
        o["error"] = .string(error)
        return Reply(status: 200, body: .object(o))
    }

    private static func string(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    private static func isChannelID(_ s: String) -> Bool {
        guard let first = s.first, "CDG".contains(first), s.count >= 3 else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) }
    }

    func api(_ method: String, token: String?, _ args: [String: JSONValue], contentType: String = "") async -> Reply {
        let now = ContinuousClock.now
        // A call while the method's Retry-After window is open is hammering (edge case A20).
        let hammered = rateLimitedUntil[method].map { $0 > now } ?? false
        let reply: Reply
        if var statuses = injectedStatuses[method], !statuses.isEmpty, rateLimitedUntil[method].map({ $0 <= now }) ?? true {
            let injected = statuses.removeFirst()
            injectedStatuses[method] = statuses
            // A 5xx from Slack's edge: maybe after the call took effect (the reply is what got lost).
            // (It took effect as a plain success: it neither meets nor opens a Retry-After window.)
            if injected.applied { _ = answer(method, token: token, args, now: now, rateLimits: false) }
            reply = Reply(status: injected.status, body: .object(["ok": .bool(false), "error": .string("internal_error")]))
        } else {
            reply = answer(method, token: token, args, now: now)
        }
        var call = FakeSlack.APICall(method: method, arguments: args, contentType: contentType, token: token, at: now, status: reply.status,
                                     error: nil)
        if case .object(let o) = reply.body, case .string(let e)? = o["error"] { call.error = e }
        calls.append(call)
        if hammered { hammering.append(call) }
        return reply
    }

    private func answer(_ method: String, token: String?, _ args: [String: JSONValue], now: ContinuousClock.Instant,
                        rateLimits: Bool = true) -> Reply
    {
        if rateLimits, let until = rateLimitedUntil[method], until > now {
            let remaining = Int((until - now).components.seconds) + 1
            return Reply(status: 429, body: .object(["ok": .bool(false), "error": .string("ratelimited")]), retryAfter: remaining)
        }
        if rateLimits, var limits = injectedRateLimits[method], !limits.isEmpty {
            let seconds = limits.removeFirst()
            injectedRateLimits[method] = limits
            rateLimitedUntil[method] = now + .seconds(seconds)
            return Reply(status: 429, body: .object(["ok": .bool(false), "error": .string("ratelimited")]), retryAfter: seconds)
        }
        // Token checks: the app-level token only opens sockets; everything else needs the bot token.
        guard let token, !token.isEmpty else { return fail("not_authed") }
        if method == "apps.connections.open" {
            if token == configuration.botToken { return fail("not_allowed_token_type") }
            guard token == configuration.appToken else { return fail("invalid_auth") }
        } else {
            if token == configuration.appToken { return fail("not_allowed_token_type") }
            guard token == configuration.botToken else { return fail("invalid_auth") }
        }
        if var errors = injectedErrors[method], !errors.isEmpty {
            let error = errors.removeFirst()
            injectedErrors[method] = errors
            return fail(error)
        }
        switch method {
        case "apps.connections.open":
            let ticket = UUID().uuidString.lowercased()
            tickets[ticket] = false
            return ok(["url": .string("ws://127.0.0.1:\(port)/link/?ticket=\(ticket)&app_id=\(configuration.appID)")])
        case "auth.test":
            return ok(["user_id": .string(configuration.botUserID), "bot_id": .string(configuration.botID), "team_id": .string(configuration.teamID),
                       "user": .string("handoff"), "team": .string("Fake Workspace"), "url": .string("https://fake.slack.com/")])
        case "chat.postMessage":
            return postMessage(args)
        case "chat.update":
            guard let channel = Self.string(args["channel"]), let ts = Self.string(args["ts"]) else { return fail("invalid_arguments") }
            guard let i = messages.firstIndex(where: { $0.channel == channel && $0.ts == ts }) else { return fail("message_not_found") }
            guard messages[i].botID == configuration.botID else { return fail("cant_update_message") }
            let problems = FakeSlackBlockKit.problems(text: Self.string(args["text"]), blocks: args["blocks"])
            if !problems.isEmpty { return fail("invalid_blocks", ["errors": .array(problems.map { .string($0) })]) }
            if let text = Self.string(args["text"]) { messages[i].text = text }
            if let blocks = args["blocks"] { messages[i].blocks = blocks }
            messages[i].edits += 1
            return ok(["channel": .string(channel), "ts": .string(ts), "text": .string(messages[i].text)])
        case "chat.postEphemeral":
            guard let channel = Self.string(args["channel"]), Self.isChannelID(channel) else { return fail("channel_not_found") }
            guard let user = Self.string(args["user"]), configuration.users[user] != nil else { return fail("user_not_found") }
            guard let text = Self.string(args["text"]), !text.isEmpty else { return fail("no_text") }
            if text.count > 40_000 { return fail("msg_too_long") }
            ephemerals.append(FakeSlack.Ephemeral(channel: channel, user: user, text: text, threadTS: Self.string(args["thread_ts"])))
            return ok(["message_ts": .string(nextTS())])
        case "reactions.add":
            guard let channel = Self.string(args["channel"]), let ts = Self.string(args["timestamp"]), let name = Self.string(args["name"]) else {
                return fail("invalid_arguments")
            }
            guard messages.contains(where: { $0.channel == channel && $0.ts == ts }) else { return fail("message_not_found") }
            if botReactions.contains(where: { $0.channel == channel && $0.ts == ts && $0.name == name }) { return fail("already_reacted") }
            botReactions.append((channel, ts, name))
            if configuration.echoBotMessages {
                // Slack sends the bot's own reaction back as reaction_added with user = the bot (edge case A12).
                scheduleEcho(FakeSlackPayloads.reaction(added: true, user: configuration.botUserID, reaction: name, channel: channel, ts: ts,
                                                        itemUser: configuration.botUserID, eventTS: nextTS()))
            }
            return ok()
        case "users.info":
            guard let user = Self.string(args["user"]) else { return fail("invalid_arguments") }
            if user == configuration.botUserID {
                return ok(["user": .object(["id": .string(user), "name": .string("handoff"), "is_bot": .bool(true)])])
            }
            guard let name = configuration.users[user] else { return fail("user_not_found") }
            return ok(["user": .object(["id": .string(user), "name": .string(name), "real_name": .string(name.capitalized), "is_bot": .bool(false)])])
        case "conversations.open":
            guard let users = Self.string(args["users"]), !users.contains(","), configuration.users[users] != nil else { return fail("user_not_found") }
            return ok(["channel": .object(["id": .string(FakeSlack.dmChannel(for: users))])])
        case "conversations.history":
            guard let channel = Self.string(args["channel"]) else { return fail("invalid_arguments") }
            guard Self.isChannelID(channel) else { return fail("channel_not_found") }
            let oldest = Self.string(args["oldest"]).flatMap(Double.init) ?? 0
            let includeMetadata = args["include_all_metadata"] == .bool(true) || Self.string(args["include_all_metadata"]) == "true"
            let asked = Self.string(args["limit"]).flatMap(Int.init) ?? { if case .int(let i)? = args["limit"] { Int(i) } else { 100 } }()
            let pageSize = max(1, min(asked, 999, configuration.historyPageSize))
            // The cursor is the offset into the newest-first list (opaque to the client).
            let offset: Int
            if let cursor = Self.string(args["cursor"]), !cursor.isEmpty {
                guard cursor.hasPrefix("off:"), let n = Int(cursor.dropFirst(4)), n >= 0 else { return fail("invalid_cursor") }
                offset = n
            } else {
                offset = 0
            }
            let all = messages.filter { $0.channel == channel && ($0.threadTS == nil || $0.threadTS == $0.ts) && (Double($0.ts) ?? 0) > oldest }
                .reversed()
            let page = all.dropFirst(offset).prefix(pageSize).map { m -> JSONValue in
                var o: [String: JSONValue] = ["type": .string("message"), "ts": .string(m.ts), "text": .string(m.text), "user": .string(m.user)]
                if let bot = m.botID { o["bot_id"] = .string(bot) }
                if includeMetadata, let metadata = m.metadata { o["metadata"] = metadata }
                return .object(o)
            }
            let hasMore = offset + page.count < all.count
            return ok(["messages": .array(Array(page)), "has_more": .bool(hasMore),
                       "response_metadata": .object(["next_cursor": .string(hasMore ? "off:\(offset + page.count)" : "")])])
        default:
            return fail("unknown_method")
        }
    }

    private func postMessage(_ args: [String: JSONValue]) -> Reply {
        guard let channel = Self.string(args["channel"]), Self.isChannelID(channel) else { return fail("channel_not_found") }
        let text = Self.string(args["text"])
        if (text ?? "").isEmpty && args["blocks"] == nil { return fail("no_text") }
        let problems = FakeSlackBlockKit.problems(text: text, blocks: args["blocks"])
        if !problems.isEmpty {
            return fail(problems == ["msg_too_long"] ? "msg_too_long" : "invalid_blocks", ["errors": .array(problems.map { .string($0) })])
        }
        if let metadata = args["metadata"] {
            guard case .object(let m) = metadata, case .string? = m["event_type"], case .object? = m["event_payload"] else {
                return fail("invalid_metadata_format")
            }
        }
        let ts = nextTS()
        let thread = Self.string(args["thread_ts"])
        messages.append(FakeSlack.Message(channel: channel, ts: ts, threadTS: thread, user: configuration.botUserID, botID: configuration.botID,
                                          text: text ?? "", blocks: args["blocks"], metadata: args["metadata"], edits: 0))
        if configuration.echoBotMessages && !channel.hasPrefix("D") {
            scheduleEcho(FakeSlackPayloads.botMessage(botUserID: configuration.botUserID, botID: configuration.botID, channel: channel,
                                                      text: text ?? "", ts: ts))
        }
        var message: [String: JSONValue] = ["type": .string("message"), "ts": .string(ts), "text": .string(text ?? ""),
                                            "bot_id": .string(configuration.botID), "user": .string(configuration.botUserID)]
        if let thread { message["thread_ts"] = .string(thread) }
        return ok(["channel": .string(channel), "ts": .string(ts), "message": .object(message)])
    }

    /// Delivers an echo event after the API reply, as Slack does.
    private func scheduleEcho(_ event: JSONValue) {
        let eventID = nextEventID()
        let payload = FakeSlackPayloads.eventCallback(event, eventID: eventID, teamID: configuration.teamID, appID: configuration.appID,
                                                      botUserID: configuration.botUserID)
        let envelope = Envelope(id: UUID().uuidString.lowercased(), type: "events_api", payload: payload, acceptsResponsePayload: false,
                                retryAttempt: 0, retryReason: "", ignoreAck: false)
        timers.append(Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(5))
            _ = await self?.deliver(envelope, to: nil)
        })
    }
}
