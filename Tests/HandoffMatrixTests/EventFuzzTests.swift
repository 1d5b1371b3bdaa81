import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffTesting
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// The Matrix decoders under hostile input (issue 8): `/sync` responses through the real sync loop
/// (against a homeserver double that answers with mutated bodies), and stored events through the
/// translator: `m.room.message` with every kind of `m.relates_to`, `m.reaction`, redactions in the
/// room-version-10 and -11 shapes. Seeded and bounded; failures print the seed and the input.
/// Bounded in time: a decoder that hangs on some input fails here, not at the CI timeout.
@Suite(.timeLimit(.minutes(3))) struct EventFuzzTests {
    static let bot = "@handoff:localhost"
    static let room = "!approvals:localhost"
    static let dm = "!dm-alice:localhost"

    static func message(_ id: String, _ body: String, sender: String = "@alice:localhost", relatesTo: JSONValue? = nil,
                        extra: [String: JSONValue] = [:]) -> JSONValue
    {
        var content: [String: JSONValue] = ["msgtype": .string("m.text"), "body": .string(body)]
        if let relatesTo { content["m.relates_to"] = relatesTo }
        for (k, v) in extra { content[k] = v }
        return .object(["type": .string("m.room.message"), "event_id": .string(id), "sender": .string(sender), "origin_server_ts": .int(1_767_225_600_000),
                        "content": .object(content), "unsigned": .object(["age": .int(120)])])
    }

    static let reaction: JSONValue = .object([
        "type": .string("m.reaction"), "event_id": .string("$r1"), "sender": .string("@alice:localhost"), "origin_server_ts": .int(1),
        "content": .object(["m.relates_to": .object(["rel_type": .string("m.annotation"), "event_id": .string("$card"), "key": .string("✅")])]),
    ])
    /// Room versions 1–10: `redacts` at the top level.
    static let redactionV10: JSONValue = .object([
        "type": .string("m.room.redaction"), "event_id": .string("$x10"), "sender": .string("@alice:localhost"), "redacts": .string("$r1"),
        "origin_server_ts": .int(2), "content": .object(["reason": .string("oops")]),
    ])
    /// Room version 11+: `content.redacts`.
    static let redactionV11: JSONValue = .object([
        "type": .string("m.room.redaction"), "event_id": .string("$x11"), "sender": .string("@alice:localhost"), "origin_server_ts": .int(3),
        "content": .object(["redacts": .string("$r1")]),
    ])

    static var timeline: [JSONValue] {
        [
            .object(["type": .string("m.room.member"), "event_id": .string("$join"), "sender": .string(bot), "state_key": .string(bot),
                     "content": .object(["membership": .string("join")]), "unsigned": .object(["prev_content": .object(["membership": .string("invite")])])]),
            message("$m1", "!approve 42 ship it"),
            message("$m2", "> <@handoff:localhost> Approval needed\n\nreject too risky", sender: "@bob:localhost",
                    relatesTo: .object(["m.in_reply_to": .object(["event_id": .string("$card")])])),
            message("$m3", "revise 42 canary first", relatesTo: .object(["rel_type": .string("m.thread"), "event_id": .string("$card"),
                                                                         "is_falling_back": .bool(true),
                                                                         "m.in_reply_to": .object(["event_id": .string("$card")])])),
            message("$m4", "* !approve 42", relatesTo: .object(["rel_type": .string("m.replace"), "event_id": .string("$m1")]),
                    extra: ["m.new_content": .object(["msgtype": .string("m.text"), "body": .string("!approve 42")])]),
            message("$m5", "handoff: claim", extra: ["m.mentions": .object(["user_ids": .array([.string(bot)])])]),
            reaction, redactionV10, redactionV11,
        ]
    }

    static var syncSamples: [JSONValue] {
        [
            .object([
                "next_batch": .string("s72595_4483_1934"),
                "rooms": .object([
                    "join": .object([
                        room: .object([
                            "summary": .object(["m.joined_member_count": .int(3)]),
                            "timeline": .object(["events": .array(timeline), "limited": .bool(false), "prev_batch": .string("p1")]),
                            "state": .object(["events": .array([])]),
                        ]),
                        dm: .object([
                            "timeline": .object(["events": .array([message("$d1", "I want to talk to a person")]), "limited": .bool(true),
                                                 "prev_batch": .string("p0")]),
                        ]),
                    ]),
                    "invite": .object([
                        "!new:localhost": .object(["invite_state": .object(["events": .array([
                            .object(["type": .string("m.room.member"), "state_key": .string(bot), "sender": .string("@alice:localhost"),
                                     "content": .object(["membership": .string("invite")])]),
                        ])])]),
                        "!spam:evil.example": .object(["invite_state": .object(["events": .array([
                            .object(["type": .string("m.room.member"), "state_key": .string(bot), "sender": .string("@spammer:evil.example"),
                                     "content": .object(["membership": .string("invite")])]),
                        ])])]),
                    ]),
                    "leave": .object([:]),
                ]),
                "account_data": .object(["events": .array([])]),
            ]),
            .object(["next_batch": .string("s2"), "rooms": .object(["join": .object([room: .object(["timeline": .object(["events": .array([reaction, redactionV11])])])])])]),
        ]
    }

    static var messagePages: [JSONValue] {
        [.object(["chunk": .array([message("$b1", "approve 7"), reaction]), "start": .string("t1"), "end": .string("t2")]),
         .object(["chunk": .array([]), "start": .string("t2")])]
    }

    static func storedSamples() -> [JSONValue] {
        var out: [JSONValue] = timeline.map { MatrixStoredEvent(roomID: room, event: $0, direct: false).encodedJSON }
        out.append(MatrixStoredEvent(roomID: dm, event: message("$d1", "I need a human"), direct: true).encodedJSON)
        let removed = MatrixReaction(eventID: "$r1", roomID: room, targetEventID: "$card", sender: "@alice:localhost", key: "✅")
        out.append(MatrixStoredEvent(roomID: room, event: redactionV10, direct: false, removedReaction: removed).encodedJSON)
        out.append(MatrixStoredEvent(roomID: room, event: redactionV11, direct: false, removedReaction: removed).encodedJSON)
        return out
    }

    static let translator = MatrixTranslator(botUserID: bot)

    /// A stored event translates to an event under the key it was stored with, to nothing, or throws
    /// ``MalformedPayload``.
    static func checkStored(_ stored: String, key: String?) -> String? {
        do {
            guard let event = try translator.translate(stored) else { return nil }
            if let key, event.dedupeKey != key { return "translated under key \(event.dedupeKey), stored under \(key)" }
            if event.actor.id == bot { return "the bot's own event was translated" }
            return nil
        } catch is MalformedPayload {
            return nil
        } catch {
            return "an untyped error: \(type(of: error)): \(error)"
        }
    }

    @Test("valid samples still decode: messages, replies, thread replies, reactions and both redaction shapes")
    func validSamplesDecode() throws {
        var kinds: [String] = []
        for sample in Self.storedSamples() {
            guard let event = try Self.translator.translate(sample.canonicalText) else { continue }
            switch event.kind {
            case .message: kinds.append("message")
            case .reactionAdded: kinds.append("reaction+")
            case .reactionRemoved: kinds.append("reaction-")
            default: kinds.append("other")
            }
        }
        // $m1, $m2, $m3, $m5, $d1 (the edit $m4 and the bare redactions are dropped), the reaction, both removals.
        #expect(kinds.filter { $0 == "message" }.count == 5, "\(kinds)")
        #expect(kinds.filter { $0 == "reaction+" }.count == 1, "\(kinds)")
        #expect(kinds.filter { $0 == "reaction-" }.count == 2, "\(kinds)")
    }

    @Test("stored events: random and mutated events translate to an event, nothing, or a MalformedPayload; never a crash")
    func storedEvents() {
        Fuzz.announce("matrix.stored")
        var m = FuzzMutator(stream: "matrix.stored")
        let samples = Self.storedSamples()
        var failures = 0
        for i in 0..<4000 {
            let text = String(decoding: m.input(from: samples), as: UTF8.self)
            if let problem = Self.checkStored(text, key: nil) {
                failures += 1
                Issue.record("stored #\(i) (seed \(Fuzz.seedText)): \(problem)\n  input: \(Fuzz.show(text))")
            }
            // The text helpers see the same hostile text.
            _ = MatrixTranslator.stripReplyFallback(text)
            _ = MatrixTranslator.removingMention(of: Self.bot, from: text)
        }
        Fuzz.record(.matrix, inputs: 4000, crashes: failures, stream: "matrix.stored")
    }

    @Test("/sync responses: the sync loop takes every mutated body without a crash; it fails only with a MatrixError, and what it makes durable translates")
    func syncResponses() async throws {
        Fuzz.announce("matrix.sync")
        var m = FuzzMutator(stream: "matrix.sync")
        let double = try await FuzzHomeserver.start(bot: Self.bot)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var clientConfiguration = MatrixClient.Configuration(homeserver: double.url, accessToken: Secret("syt_fuzz_token"))
        clientConfiguration.maxTransportRetries = 0
        clientConfiguration.transportRetryDelay = .zero
        clientConfiguration.maxInlineRateLimitWait = .zero
        clientConfiguration.requestTimeout = .seconds(20)
        var logger = Logger(label: "test.matrix.fuzz")
        logger.logLevel = .critical
        let client = MatrixClient(http: http, configuration: clientConfiguration, logger: logger)
        let state = InMemoryMatrixStateStore()
        try await state.setValue("s0", forKey: MatrixStateKeys.syncToken(user: Self.bot))
        let sink = CollectingSink()
        var configuration = MatrixSyncService.Configuration()
        configuration.maxBackfillPages = 2
        configuration.syncTimeout = .zero
        configuration.httpMargin = .seconds(20)
        let sync = MatrixSyncService(client: client, sink: sink, state: state, configuration: configuration, logger: logger)

        var inputs = 0
        var failures = 0
        var succeeded = 0
        for i in 0..<500 {
            // Every fifth body is a sample as the homeserver sends it, so the success path is walked on every
            // seed (a seed whose mutations break nearly every body must not fail the count below).
            let pristine = i % 5 == 0
            let body = pristine ? Array(Self.syncSamples[(i / 5) % Self.syncSamples.count].canonicalText.utf8)
                                : m.input(from: Self.syncSamples)
            let page = pristine || m.chance(0.5) ? Array(Self.messagePages[i % 2].canonicalText.utf8) : m.input(from: Self.messagePages)
            double.script(sync: body, messages: page)
            inputs += 1
            do {
                try await sync.syncOnce()
                succeeded += 1
                // A completed batch stored the token it was given.
                let token = try await state.value(forKey: MatrixStateKeys.syncToken(user: Self.bot))
                let sent = (try? JSONValue.parsePayload(body))?.member("next_batch")?.asString
                if token != sent {
                    failures += 1
                    Issue.record("sync #\(i) (seed \(Fuzz.seedText)): stored token \(String(describing: token)), reply had \(String(describing: sent))")
                }
            } catch is MatrixError {
                // A refusal the loop backs off from and retries: fine.
            } catch {
                failures += 1
                Issue.record("sync #\(i) (seed \(Fuzz.seedText)): an untyped error \(type(of: error)): \(error)\n  body: \(Fuzz.show(body))")
            }
        }
        for raw in await sink.recorded {
            inputs += 1
            if let problem = Self.checkStored(raw.payload, key: raw.key) {
                failures += 1
                Issue.record("durable \(raw.key) (seed \(Fuzz.seedText)): \(problem)\n  stored: \(Fuzz.show(raw.payload))")
            }
        }
        #expect(succeeded >= 100, "the unmutated samples and some mutated bodies complete (\(succeeded) of 500 completed)")
        #expect(await sink.recorded.count > 50)
        try await http.shutdown()
        await double.stop()
        Fuzz.record(.matrix, inputs: inputs, crashes: failures, stream: "matrix.sync")
    }
}

extension MatrixStoredEvent {
    /// The stored form as JSON (what the fuzzer mutates).
    var encodedJSON: JSONValue { (try? JSONValue.parsePayload(encoded)) ?? .null }
}

/// Records what the sync loop makes durable.
actor CollectingSink: InboundSink {
    private(set) var recorded: [RawInbound] = []

    func accept(_ raw: RawInbound) async throws -> Acceptance {
        recorded.append(raw)
        return .recorded
    }
}

/// A homeserver double whose `/sync` and `/messages` answer with whatever the test scripted (valid or
/// not), and which accepts whoami, joined_members, join and leave for any room id.
final class FuzzHomeserver: Sendable {
    let url: String
    private let bodies = Mutex<(sync: [UInt8], messages: [UInt8])>(([], []))
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(url: String, group: ServiceGroup, task: Task<Void, any Error>) {
        self.url = url
        self.group = group
        self.task = task
    }

    func script(sync: [UInt8], messages: [UInt8]) { bodies.withLock { $0 = (sync, messages) } }

    static func start(bot: String) async throws -> FuzzHomeserver {
        let box = Mutex<FuzzHomeserver?>(nil)
        let router = Router()
        @Sendable func json(_ bytes: [UInt8]) -> Response {
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/_matrix/client/v3/account/whoami") { _, _ in json(Array(#"{"user_id":"\#(bot)","device_id":"HANDOFF1"}"#.utf8)) }
        router.get("/_matrix/client/v3/sync") { _, _ in json(box.withLock { $0 }?.bodies.withLock { $0.sync } ?? []) }
        router.get("/_matrix/client/v3/rooms/**") { request, _ in
            if request.uri.path.hasSuffix("/joined_members") {
                return json(Array(#"{"joined":{"\#(bot)":{},"@alice:localhost":{}}}"#.utf8))
            }
            return json(box.withLock { $0 }?.bodies.withLock { $0.messages } ?? [])
        }
        router.post("/_matrix/client/v3/**") { _, _ in json(Array(#"{"room_id":"!joined:localhost"}"#.utf8)) }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "fuzz-homeserver")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports { port = p; break }
        let server = FuzzHomeserver(url: "http://127.0.0.1:\(port)", group: group, task: task)
        box.withLock { $0 = server }
        return server
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
