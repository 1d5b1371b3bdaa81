import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import HTTPTypes
import Testing

/// Every inbound Slack decoder under hostile input (issue 8): Socket Mode frames, Events API bodies,
/// interactivity payloads and slash-command forms, through the same code the bot runs (frame parser,
/// dedupe key, stored form, signature check, endpoint, translator). Seeded and bounded; a failure
/// prints the seed (`HANDOFF_FUZZ_SEED` replays it) and the input.
/// Bounded in time: a decoder that hangs on some input fails here, not at the CI timeout.
@Suite(.timeLimit(.minutes(3))) struct PayloadFuzzTests {
    static let translator = SlackTranslator(identity: SlackBotIdentity(userID: "UBOT", botID: "BBOT", teamID: "T111"))

    /// Real payloads of every kind the bot handles (and a few it ignores).
    static let events: [JSONValue] = [
        FakeSlackPayloads.message(user: "U0ALICE", channel: "C0APPROVALS", text: "<@UBOT> approve 42 ship it", ts: "1767225600.000100",
                                  threadTS: "1767225500.000100"),
        FakeSlackPayloads.message(user: "U0USER", channel: "D0USER", text: "I want to talk to a person", ts: "1767225601.000100"),
        FakeSlackPayloads.appMention(user: "U0BOB", channel: "C0APPROVALS", text: "<@UBOT> reject 42 too risky", ts: "1767225602.000100"),
        FakeSlackPayloads.reaction(user: "U0ALICE", reaction: "white_check_mark", channel: "C0APPROVALS", ts: "1767225500.000100",
                                   eventTS: "1767225603.000100"),
        FakeSlackPayloads.reaction(added: false, user: "U0ALICE", reaction: "x::skin-tone-2", channel: "C0APPROVALS", ts: "1767225500.000100",
                                   eventTS: "1767225604.000100"),
        FakeSlackPayloads.messageChanged(user: "U0ALICE", channel: "C0APPROVALS", newText: "approve 42", originalTS: "1767225600.000100",
                                         editTS: "1767225605.000100"),
    ]
    static let blockAction = FakeSlackPayloads.blockAction(user: "U0ALICE", channel: "C0APPROVALS", messageTS: "1767225500.000100",
                                                           actionID: "approve", value: "approval:42", actionTS: "1767225606.000100",
                                                           triggerID: "13345224609.738474920.8088930838d88f008e0")
    static let slash = FakeSlackPayloads.slashCommand(user: "U0ALICE", channel: "C0APPROVALS", text: "approve 42 ship it",
                                                      triggerID: "13345224609.738474920.8088930838d88f008e1")

    static var eventCallbacks: [JSONValue] {
        events.enumerated().map { FakeSlackPayloads.eventCallback($0.element, eventID: "Ev0\($0.offset)") }
    }

    /// Socket Mode envelopes as Slack sends them (chat-protocols.md §1.4).
    static var frames: [JSONValue] {
        var out: [JSONValue] = eventCallbacks.enumerated().map { i, payload in
            .object(["envelope_id": .string("env-\(i)"), "type": .string("events_api"), "accepts_response_payload": .bool(false),
                     "retry_attempt": .int(Int64(i % 2)), "retry_reason": .string(i % 2 == 0 ? "" : "timeout"), "payload": payload])
        }
        out.append(.object(["envelope_id": .string("env-i"), "type": .string("interactive"), "accepts_response_payload": .bool(false),
                            "payload": blockAction]))
        out.append(.object(["envelope_id": .string("env-s"), "type": .string("slash_commands"), "accepts_response_payload": .bool(true),
                            "payload": slash]))
        out.append(.object(["type": .string("hello"), "num_connections": .int(1),
                            "debug_info": .object(["host": .string("applink-1"), "approximate_connection_time": .int(18060)])]))
        out.append(.object(["type": .string("disconnect"), "reason": .string("refresh_requested")]))
        return out
    }

    /// What every stored payload must satisfy: it translates to an event or to nothing, or throws
    /// ``MalformedPayload``; an event carries the dedupe key it was stored under.
    static func checkStored(_ stored: String, key: String?) -> String? {
        do {
            guard let event = try translator.translate(stored) else { return nil }
            if let key, event.dedupeKey != key { return "translated under key \(event.dedupeKey), stored under \(key)" }
            if event.platform != SlackInbound.platform { return "platform \(event.platform)" }
            return nil
        } catch is MalformedPayload {
            return nil
        } catch {
            return "an untyped error: \(type(of: error)): \(error)"
        }
    }

    @Test("valid samples still decode: every sample frame yields its event under its dedupe key")
    func validSamplesDecode() throws {
        for (i, frame) in Self.frames.enumerated() where frame.member("envelope_id") != nil {
            guard case .envelope(let envelope) = SocketFrame.parse(frame.canonicalText) else {
                Issue.record("sample frame \(i) did not parse as an envelope")
                continue
            }
            let key = try #require(SlackInbound.key(type: envelope.type, payload: envelope.payload), "sample \(i) has no key")
            let stored = SlackInbound.stored(type: envelope.type, payload: try #require(envelope.payload))
            let translated = try Self.translator.translate(stored)
            // The edit (message_changed) is deliberately dropped; everything else is an event.
            if envelope.payload?.member(path: "event", "subtype")?.asString == "message_changed" {
                #expect(translated == nil)
            } else {
                #expect(translated?.dedupeKey == key, "sample \(i): \(String(describing: translated))")
            }
        }
        #expect(SocketFrame.parse(Self.frames[Self.frames.count - 2].canonicalText) == .hello(approximateConnectionTime: 18060))
        #expect(SocketFrame.parse(Self.frames[Self.frames.count - 1].canonicalText) == .disconnect(reason: "refresh_requested"))
    }

    @Test("Socket Mode frames: random and mutated text never crashes the frame parser, key, stored form or translator")
    func socketModeFrames() {
        Fuzz.announce("slack.frames")
        var m = FuzzMutator(stream: "slack.frames")
        let samples = Self.frames
        var inputs = 0
        var failures = 0
        var envelopes = 0
        for i in 0..<3000 {
            let text = String(decoding: m.input(from: samples), as: UTF8.self)
            inputs += 1
            var problem: String?
            switch SocketFrame.parse(text) {
            case .envelope(let envelope):
                envelopes += 1
                if let key = SlackInbound.key(type: envelope.type, payload: envelope.payload), let payload = envelope.payload {
                    let stored = SlackInbound.stored(type: envelope.type, payload: payload)
                    problem = Self.checkStored(stored, key: key)
                }
            case .hello, .disconnect, .unknown:
                break
            }
            if let problem {
                failures += 1
                Issue.record("frame #\(i) (seed \(Fuzz.seedText)): \(problem)\n  input: \(Fuzz.show(text))")
            }
        }
        #expect(envelopes > 300, "mutations still reach the envelope decoder (\(envelopes) of \(inputs))")
        Fuzz.record(.slack, inputs: inputs, crashes: failures, stream: "slack.frames")
    }

    @Test("stored payloads: mutated stored forms translate to an event, nothing, or a MalformedPayload")
    func storedPayloads() {
        Fuzz.announce("slack.stored")
        var m = FuzzMutator(stream: "slack.stored")
        let samples: [JSONValue] = Self.eventCallbacks.map { .object(["type": .string("events_api"), "payload": $0]) }
            + [.object(["type": .string("interactive"), "payload": Self.blockAction]), .object(["type": .string("slash_commands"), "payload": Self.slash])]
        var failures = 0
        for i in 0..<2000 {
            let text = String(decoding: m.input(from: samples), as: UTF8.self)
            if let problem = Self.checkStored(text, key: nil) {
                failures += 1
                Issue.record("stored #\(i) (seed \(Fuzz.seedText)): \(problem)\n  input: \(Fuzz.show(text))")
            }
        }
        Fuzz.record(.slack, inputs: 2000, crashes: failures, stream: "slack.stored")
    }

    /// `application/x-www-form-urlencoded`, as Slack encodes it.
    static func formEncode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }

    static func slashFields(_ payload: JSONValue) -> [(String, String)] {
        (payload.asObject ?? [:]).keys.sorted().map { ($0, payload.member($0)?.asString ?? "") }
    }

    @Test("Events API, interactivity and slash commands over HTTP, correctly signed: every body gets 200, 400 or 413, never a crash or 500")
    func eventsEndpointBodies() async {
        Fuzz.announce("slack.http")
        var m = FuzzMutator(stream: "slack.http")
        let secret = Secret("fuzz-signing-secret")
        let sink = RecordingSink()
        let now = Date()
        let endpoint = SlackEventsEndpoint(configuration: .init(signingSecret: secret), sink: sink, now: { now })
        let timestamp = String(Int64(now.timeIntervalSince1970))
        let callbacks = Self.eventCallbacks + [.object(["type": .string("url_verification"), "challenge": .string("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")])]
        var inputs = 0
        var failures = 0
        var statuses: [Int: Int] = [:]
        for i in 0..<3000 {
            let body: [UInt8]
            switch i % 3 {
            case 0:
                body = m.input(from: callbacks)
            case 1:
                // payload=<JSON>: the JSON mutated, or the form around it.
                var json = Self.blockAction
                for _ in 0..<m.int(0...3) { json = m.mutate(json) }
                let form = "payload=" + (json.canonicalText.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                body = m.chance(0.5) ? Array(form.utf8) : m.mutate(bytes: Array(form.utf8))
            default:
                var fields = Self.slashFields(Self.slash)
                for _ in 0..<m.int(1...3) {
                    let index = m.int(0...(fields.count - 1))
                    switch m.int(0...3) {
                    case 0: fields[index].1 = m.nastyString()
                    case 1: fields.remove(at: index)
                    case 2: fields.append((m.pick(FuzzMutator.commonKeys), m.nastyString()))
                    default: fields[index].1 = String(repeating: m.nastyString(), count: m.int(1...200))
                    }
                    if fields.isEmpty { fields = [("command", "/handoff")] }
                }
                let form = Self.formEncode(fields)
                body = m.chance(0.6) ? Array(form.utf8) : m.mutate(bytes: Array(form.utf8))
            }
            inputs += 1
            let headers: HTTPFields = [
                SlackEventsEndpoint.timestampHeader: timestamp,
                SlackEventsEndpoint.signatureHeader: SlackSignatureVerifier.sign(body: body, timestamp: timestamp, secret: secret),
            ]
            let response = await endpoint.handle(headers: headers, body: body)
            statuses[response.status, default: 0] += 1
            if ![200, 400, 413].contains(response.status) {
                failures += 1
                Issue.record("HTTP body #\(i) (seed \(Fuzz.seedText)): status \(response.status) \(response.body)\n  input: \(Fuzz.show(body))")
            }
        }
        // Everything the endpoint made durable must be something the router can read.
        for raw in await sink.recorded {
            inputs += 1
            if let problem = Self.checkStored(raw.payload, key: raw.key) {
                failures += 1
                Issue.record("recorded \(raw.key) (seed \(Fuzz.seedText)): \(problem)\n  stored: \(Fuzz.show(raw.payload))")
            }
        }
        #expect(statuses[200, default: 0] > 300 && statuses[400, default: 0] > 300,
                "the inputs reach both the decoders and their refusals: \(statuses)")
        Fuzz.record(.slack, inputs: inputs, crashes: failures, stream: "slack.http")
    }

    @Test("form decoding: any text splits into fields without a crash; encoded fields round-trip")
    func formFields() {
        Fuzz.announce("slack.form")
        var m = FuzzMutator(stream: "slack.form")
        var failures = 0
        for i in 0..<2000 {
            // Foundation's percent-decoding drops a leading byte order mark (U+FEFF); nothing Slack sends starts with one.
            func noBOM(_ s: String) -> String { String(s.drop { $0 == "\u{FEFF}" }) }
            let fields = (0..<m.int(1...6)).map { _ in (noBOM(m.chance(0.5) ? m.pick(FuzzMutator.commonKeys) : m.nastyString()), noBOM(m.nastyString())) }
            let encoded = Self.formEncode(fields)
            let decoded = SlackEventsEndpoint.formFields(encoded)
            // The last value of each name wins, as in Slack's own parsers; empty names are dropped by neither.
            var expected: [String: String] = [:]
            for (k, v) in fields { expected[k] = v }
            if decoded != expected {
                failures += 1
                Issue.record("form #\(i) (seed \(Fuzz.seedText)) did not round-trip: \(Fuzz.show(encoded))\n  expected \(expected)\n  got \(decoded)")
            }
            _ = SlackEventsEndpoint.formFields(String(decoding: m.mutate(bytes: Array(encoded.utf8)), as: UTF8.self))
        }
        Fuzz.record(.slack, inputs: 4000, crashes: failures, stream: "slack.form")
    }

    @Test("signature headers: any timestamp or signature text is refused with a typed failure, never a crash; the real one passes")
    func signatureHeaders() throws {
        Fuzz.announce("slack.signature")
        var m = FuzzMutator(stream: "slack.signature")
        let secret = Secret("8f742231b10e8888abcd99yyyzzz85a5")
        let verifier = SlackSignatureVerifier(secret: secret)
        let now = Date(timeIntervalSince1970: 1_531_420_618)
        let body = Array(Self.slash.canonicalText.utf8)
        let good = SlackSignatureVerifier.sign(body: body, timestamp: "1531420618", secret: secret)
        try verifier.verify(timestamp: "1531420618", signature: good, body: body, now: now)
        var accepted = 0
        for _ in 0..<2000 {
            let timestamp: String? = m.chance(0.1) ? nil : m.pick(["1531420618", m.nastyString(), String(m.int(-5...5) + 1_531_420_618),
                                                                   "9223372036854775807", "-9223372036854775808", " 1531420618", "1531420618.0"])
            let signature: String? = m.chance(0.1) ? nil : m.pick([
                String(decoding: m.mutate(bytes: Array(good.utf8)), as: UTF8.self), "v0=" + m.nastyString(), m.nastyString(),
                "v0=" + String(repeating: "0", count: 64), "v1=" + good.dropFirst(3), good.uppercased(), "v0=" + String(repeating: "é", count: 64),
            ])
            do {
                try verifier.verify(timestamp: timestamp, signature: signature, body: body, now: now)
                accepted += 1
                // Only the real signature may pass (a timestamp a few seconds off is signed differently).
                #expect(signature == good && timestamp == "1531420618", "accepted \(String(describing: timestamp)) \(String(describing: signature))")
            } catch {
                #expect(!error.description.contains(secret.revealed))
            }
        }
        Fuzz.record(.slack, inputs: 2000, crashes: 0, stream: "slack.signature")
    }
}
