import Crypto
import Foundation
import HandoffCore
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle

/// A protocol-faithful fake Slack on 127.0.0.1 (port 0): the Web API and Socket Mode, enforcing what
/// real Slack enforces (chat-protocols.md §6) and recording everything for assertions.
///
/// - `apps.connections.open` issues one-time socket URLs; a reused ticket is refused.
/// - Sockets get `hello` (optionally late, optionally after an envelope); envelopes not acked within the
///   ack timeout (3 s) are redelivered with `retry_attempt`/`retry_reason: "timeout"`, up to 3 times;
///   events sent while no socket is open arrive later as retries.
/// - `disconnect` frames of every reason; warnings close the old socket after a grace period; the
///   connection cap answers `too_many_websockets`; sockets can be dropped without a close frame.
/// - Web API methods check the token kind, answer `ok:false` on HTTP 200 for errors, enforce Block Kit
///   limits (`invalid_blocks`), and can be told to fail or to answer 429 with `Retry-After`.
///
/// The benchmark reuses it: start it, point `SLACK_API_URL` at ``apiURL``, drive it with the `deliver…`
/// helpers, read ``calls(_:)``, ``messages(in:)`` and ``acks()``.
package final class FakeSlack: Sendable {
    package struct Configuration: Sendable {
        package var appToken = "xapp-1-A111-fake-app-token"
        package var botToken = "xoxb-111-222-fake-bot-token"
        package var signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
        package var teamID = "T111"
        package var appID = "A111"
        package var botUserID = "UBOT"
        package var botID = "BBOT"
        /// Envelopes not acked within this are redelivered (Slack: 3 s).
        package var ackTimeout: Duration = .seconds(3)
        /// Redeliveries per envelope (Slack: 3, at retry_attempt 1…3).
        package var maxRetries = 3
        /// Redeliver with a new envelope id (pinet #226) or the same one (bolt-js #2487).
        package var redeliverWithNewEnvelopeID = true
        /// Wait this long after the upgrade before `hello`.
        package var helloDelay: Duration = .zero
        /// With a hello delay: deliver queued envelopes before `hello` (edge case A1).
        package var deliverQueuedBeforeHello = false
        /// Server pings; a client that does not pong is closed.
        package var serverPingInterval: Duration?
        /// Slack's cap of simultaneous sockets per app.
        package var maxConnections = 10
        /// After a `warning`/`refresh_requested` disconnect, the old socket is closed after this.
        package var disconnectGrace: Duration = .seconds(10)
        /// Echo the bot's own channel posts back as `message` events with `bot_id` (edge case A12).
        package var echoBotMessages = false
        /// Most messages one `conversations.history` page returns, whatever the `limit` asked (Slack
        /// may return fewer than asked and point to the rest with `response_metadata.next_cursor`).
        package var historyPageSize = 200
        /// Stamp messages with the wall clock, as Slack does (`ts` = the post time), instead of fixed
        /// 2026-01-01 times. A process on the system clock looks a lost card up with `oldest` = when it
        /// started the post, so it only finds messages whose `ts` is real time.
        package var wallClockTimestamps = false
        /// Known people: id → name (`users.info`).
        package var users: [String: String] = ["U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave",
                                                "U0ERIN": "erin", "U0MALLORY": "mallory", "U0USER": "user"]

        package init() {}
    }

    /// The Web API methods that accept `application/json` bodies (Slack's write methods); a JSON body
    /// to any other method is ignored, as Slack does.
    package static let jsonMethods: Set<String> = [
        "chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete", "reactions.add", "reactions.remove", "conversations.open",
    ]

    /// One Web API call as the fake saw it.
    package struct APICall: Sendable {
        package var method: String
        package var arguments: [String: JSONValue]
        /// The request's Content-Type (a read method sent as JSON had its arguments ignored).
        package var contentType: String = ""
        package var token: String?
        package var at: ContinuousClock.Instant
        package var status: Int
        package var error: String?

        package func argument(_ name: String) -> String? {
            if case .string(let s)? = arguments[name] { return s }
            return nil
        }
    }

    /// A message in a channel (the bot's or a person's).
    package struct Message: Sendable {
        package var channel: String
        package var ts: String
        package var threadTS: String?
        package var user: String
        package var botID: String?
        package var text: String
        package var blocks: JSONValue?
        package var metadata: JSONValue?
        package var edits: Int

        /// Every `action_id` of the message's buttons.
        package var actionIDs: [String] {
            guard case .array(let blocks)? = blocks else { return [] }
            return blocks.flatMap { block -> [String] in
                guard case .object(let b) = block, case .array(let elements)? = b["elements"], case .string("actions")? = b["type"] else { return [] }
                return elements.compactMap { if case .object(let e) = $0, case .string(let id)? = e["action_id"] { id } else { nil } }
            }
        }

        /// All text in the message (fallback and blocks), for assertions.
        package var allText: String {
            var parts = [text]
            func walk(_ v: JSONValue) {
                switch v {
                case .string(let s): parts.append(s)
                case .array(let a): a.forEach(walk)
                case .object(let o): o.keys.sorted().forEach { walk(o[$0]!) }
                default: break
                }
            }
            if let blocks { walk(blocks) }
            return parts.joined(separator: "\n")
        }
    }

    package struct Ephemeral: Sendable {
        package var channel: String
        package var user: String
        package var text: String
        package var threadTS: String?
    }

    /// An ack the bot sent.
    package struct Ack: Sendable {
        package var envelopeID: String
        package var connection: Int
        /// From sending the envelope to receiving the ack.
        package var latency: Duration
        package var payload: JSONValue?
        /// True when the envelope was no longer waiting (acked before, or already redelivered).
        package var late: Bool
    }

    /// An envelope the fake sent.
    package struct SentEnvelope: Sendable {
        package var envelopeID: String
        package var type: String
        package var retryAttempt: Int
        package var connection: Int
        /// The event_id, trigger_id or envelope id the envelope carries.
        package var dedupeID: String
    }

    package struct ConnectionRecord: Sendable {
        package var id: Int
        package var openedAt: ContinuousClock.Instant
        package var helloAt: ContinuousClock.Instant?
        package var endedAt: ContinuousClock.Instant?
        /// The fake closed or dropped it (rather than the client).
        package var endedByServer: Bool
    }

    let state: FakeSlackState
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    package let port: Int
    package let configuration: Configuration

    /// The Web API base URL (`SLACK_API_URL`).
    package var apiURL: String { "http://127.0.0.1:\(port)/api/" }

    private init(state: FakeSlackState, group: ServiceGroup, task: Task<Void, any Error>, port: Int, configuration: Configuration) {
        self.state = state
        self.group = group
        self.task = task
        self.port = port
        self.configuration = configuration
    }

    /// Starts the fake on an ephemeral loopback port.
    package static func start(_ configuration: Configuration = Configuration()) async throws -> FakeSlack {
        var logger = Logger(label: "fake-slack")
        logger.logLevel = .critical
        let state = FakeSlackState(configuration: configuration)
        let router = Router()
        router.post("/api/:method") { request, context -> Response in
            let method = context.parameters.get("method") ?? ""
            let body = try await request.body.collect(upTo: 8 << 20)
            let text = String(buffer: body)
            var arguments: [String: JSONValue] = [:]
            let contentType = request.headers[.contentType] ?? ""
            if contentType.contains("json") {
                // Like Slack: only write methods read a JSON body; read methods (conversations.history,
                // users.info, …) ignore it and answer as if no argument had been given.
                if FakeSlack.jsonMethods.contains(method),
                   case .object(let o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                {
                    arguments = o
                }
            } else {
                for (k, v) in FakeSlack.formFields(text) { arguments[k] = .string(v) }
            }
            var token: String?
            if let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") { token = String(auth.dropFirst(7)) }
            if token == nil, case .string(let t)? = arguments["token"] { token = t }
            let reply = await state.api(method, token: token, arguments, contentType: contentType)
            var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
            if let retryAfter = reply.retryAfter { headers[HTTPField.Name("Retry-After")!] = String(retryAfter) }
            return Response(status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: reply.body.canonicalText)))
        }
        let wsRouter = Router(context: FakeSlackSocketContext.self)
        wsRouter.ws("/link", shouldUpgrade: { request, _ in
            let ticket = request.uri.queryParameters.get("ticket") ?? ""
            return await state.redeem(ticket: ticket) ? .upgrade([:]) : .dontUpgrade
        }, onUpgrade: { inbound, outbound, context in
            let id = await state.register(outbound: outbound, channel: context.requestContext.channel)
            guard await state.admit(id) else {
                await state.ended(id)
                return
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await state.helloSequence(id) }
                for try await message in inbound.messages(maxSize: 8 << 20) {
                    if case .text(let text) = message { await state.received(text, from: id) }
                }
                group.cancelAll()
            }
            await state.ended(id)
        })
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let autoPing: AutoPingSetup = configuration.serverPingInterval.map { .enabled(timePeriod: $0) } ?? .disabled
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: wsRouter,
                configuration: .init(http1: .init(idleTimeout: .seconds(5)), ws: .init(maxFrameSize: 8 << 20, autoPing: autoPing))),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "fake-slack"),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports {
            port = p
            break
        }
        await state.setPort(port)
        return FakeSlack(state: state, group: group, task: task, port: port, configuration: configuration)
    }

    /// Closes every socket, then stops the server (bounded: a stuck shutdown is cancelled).
    package func stop() async {
        await state.shutdown()
        await shutDown(group, running: task, within: .seconds(5))
    }

    // MARK: Driving the socket

    /// Sends an envelope on a live socket (the newest, unless one is named), or queues it until a socket
    /// says hello — then it arrives as a retry, as Slack does. Returns the envelope id.
    @discardableResult
    package func deliver(type: String, payload: JSONValue, acceptsResponsePayload: Bool? = nil, retryAttempt: Int = 0,
                         retryReason: String = "", envelopeID: String? = nil, to connection: Int? = nil,
                         ignoreAck: Bool = false) async -> String
    {
        await state.deliver(FakeSlackState.Envelope(
            id: envelopeID ?? UUID().uuidString.lowercased(), type: type, payload: payload,
            acceptsResponsePayload: acceptsResponsePayload ?? (type == "slash_commands"), retryAttempt: retryAttempt,
            retryReason: retryReason, ignoreAck: ignoreAck), to: connection)
    }

    /// An Events API event; returns (envelope id, event id).
    @discardableResult
    package func deliverEvent(_ event: JSONValue, eventID: String? = nil, retryAttempt: Int = 0, retryReason: String = "",
                              envelopeID: String? = nil, to connection: Int? = nil, ignoreAck: Bool = false) async -> (envelopeID: String, eventID: String)
    {
        var id = eventID ?? ""
        if eventID == nil { id = await state.nextEventID() }
        let payload = FakeSlackPayloads.eventCallback(event, eventID: id, teamID: configuration.teamID, appID: configuration.appID,
                                                      botUserID: configuration.botUserID)
        let envelope = await deliver(type: "events_api", payload: payload, retryAttempt: retryAttempt, retryReason: retryReason,
                                     envelopeID: envelopeID, to: connection, ignoreAck: ignoreAck)
        return (envelope, id)
    }

    /// A person writes a message: it is stored, then delivered as a `message` event (and as an
    /// `app_mention` too, with another event id, when it mentions the bot and `mention` is set).
    @discardableResult
    package func postUserMessage(user: String, channel: String, text: String, threadTS: String? = nil, mention: Bool = false,
                                 alsoAsMessageEvent: Bool = true) async -> String
    {
        let ts = await state.storeUserMessage(user: user, channel: channel, text: text, threadTS: threadTS)
        if alsoAsMessageEvent {
            await deliverEvent(FakeSlackPayloads.message(user: user, channel: channel, text: text, ts: ts, threadTS: threadTS))
        }
        if mention {
            await deliverEvent(FakeSlackPayloads.appMention(user: user, channel: channel, text: text, ts: ts, threadTS: threadTS))
        }
        return ts
    }

    /// A person reacts to a message (or removes the reaction).
    @discardableResult
    package func react(user: String, name: String, channel: String, ts: String, added: Bool = true, itemType: String = "message") async -> (envelopeID: String, eventID: String) {
        let eventTS = await state.nextTS()
        return await deliverEvent(FakeSlackPayloads.reaction(added: added, user: user, reaction: name, channel: channel, ts: ts,
                                                             itemUser: configuration.botUserID, itemType: itemType, eventTS: eventTS))
    }

    /// A person clicks a button on a message.
    @discardableResult
    package func click(user: String, channel: String, messageTS: String, actionID: String, value: String, to connection: Int? = nil) async -> String {
        let actionTS = await state.nextTS()
        return await deliver(type: "interactive", payload: FakeSlackPayloads.blockAction(
            user: user, channel: channel, messageTS: messageTS, actionID: actionID, value: value, actionTS: actionTS,
            triggerID: "trig-\(UUID().uuidString.prefix(8))", appID: configuration.appID, botID: configuration.botID), to: connection)
    }

    /// A person types `/handoff <text>`.
    @discardableResult
    package func slash(user: String, channel: String, text: String) async -> String {
        await deliver(type: "slash_commands", payload: FakeSlackPayloads.slashCommand(
            user: user, channel: channel, text: text, triggerID: "trig-\(UUID().uuidString.prefix(8))", teamID: configuration.teamID,
            appID: configuration.appID))
    }

    /// Sends a raw text frame (an unknown frame type, garbage).
    package func sendRaw(_ text: String, to connection: Int? = nil) async { await state.sendRaw(text, to: connection) }

    /// Sends `disconnect` with a reason; `warning`/`refresh_requested` close the socket after the grace
    /// period, `link_disabled`/`too_many_websockets` at once.
    package func sendDisconnect(reason: String, to connection: Int? = nil) async { await state.sendDisconnect(reason: reason, to: connection) }

    /// Drops a socket without a close frame (TCP closed under it).
    package func drop(connection: Int? = nil) async { await state.drop(connection) }

    /// Changes the cap of simultaneous sockets while running (nil: back to the configuration's); a socket
    /// beyond it is told `too_many_websockets` and closed.
    package func limitConnections(to limit: Int?) async { await state.setMaxConnections(limit) }

    /// While set, every new socket is refused at the upgrade (simulating an outage of the socket hosts).
    package func refuseSockets(_ refuse: Bool) async { await state.setRefuseSockets(refuse) }

    // MARK: Driving the Web API

    /// The next `times` calls of a method answer `{"ok":false,"error":error}` on HTTP 200.
    package func failNext(_ method: String, error: String, times: Int = 1) async { await state.inject(method, error: error, times: times) }

    /// The next `times` calls of a method answer HTTP `status` (a 5xx); with `applied`, each call takes
    /// effect first and only its reply is lost (a post that landed although the bot saw an error).
    package func failNext(_ method: String, status: Int, applied: Bool = false, times: Int = 1) async {
        await state.injectStatus(method, status: status, applied: applied, times: times)
    }

    /// The next `times` calls of a method answer HTTP 429 with `Retry-After: seconds`; calls inside that
    /// window are answered 429 again and recorded in ``callsDuringRateLimit()``.
    package func rateLimitNext(_ method: String, retryAfter seconds: Int, times: Int = 1) async {
        await state.injectRateLimit(method, seconds: seconds, times: times)
    }

    // MARK: Reading what happened

    package func calls(_ method: String? = nil) async -> [APICall] { await state.calls.filter { method == nil || $0.method == method } }
    package func messages(in channel: String) async -> [Message] { await state.messages.filter { $0.channel == channel } }
    package func message(channel: String, ts: String) async -> Message? { await state.messages.first { $0.channel == channel && $0.ts == ts } }
    package func botMessages() async -> [Message] { await state.messages.filter { $0.botID != nil } }
    package func ephemerals(for user: String? = nil) async -> [Ephemeral] { await state.ephemerals.filter { user == nil || $0.user == user } }
    package func reactionsAdded() async -> [(channel: String, ts: String, name: String)] { await state.botReactions }
    package func acks() async -> [Ack] { await state.acks }
    package func ack(for envelopeID: String) async -> Ack? { await state.acks.first { $0.envelopeID == envelopeID } }
    package func sentEnvelopes() async -> [SentEnvelope] { await state.sent }
    package func connections() async -> [ConnectionRecord] { await state.records }
    package func liveConnections() async -> [Int] { await state.liveConnectionIDs }
    package func reusedTicketAttempts() async -> Int { await state.reusedTickets }
    package func callsDuringRateLimit() async -> [APICall] { await state.hammering }
    /// Envelopes given up on after the last retry (never acked).
    package func abandonedEnvelopes() async -> [String] { await state.abandoned }
    /// The DM channel the fake opens for a user.
    package static func dmChannel(for user: String) -> String { "D" + user.dropFirst() }

    // MARK: HTTP mode

    /// Signs a body as Slack does for the Events API (`X-Slack-Request-Timestamp`, `X-Slack-Signature`).
    package func signedHeaders(body: [UInt8], timestamp: Int64 = Int64(Date().timeIntervalSince1970), contentType: String) -> HTTPFields {
        let key = SymmetricKey(data: Array(configuration.signingSecret.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("v0:\(timestamp):".utf8) + body, using: key)
        let signature = "v0=" + mac.map { String(format: "%02x", $0) }.joined()
        return [
            HTTPField.Name("X-Slack-Request-Timestamp")!: String(timestamp), HTTPField.Name("X-Slack-Signature")!: signature,
            .contentType: contentType,
        ]
    }

    static func formFields(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = kv[0].replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (kv[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
            out[name] = value
        }
        return out
    }
}

/// The fake's request context: keeps the connection's channel so a socket can be dropped without a close frame.
struct FakeSlackSocketContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<FakeSlackSocketContext>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}
