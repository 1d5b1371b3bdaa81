import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import HummingbirdWSClient
import Logging
import Testing

/// Slack Socket Mode edge cases (protocol-edge-cases.md §A) against the fake, with an in-memory sink.
@Suite(.serialized) struct SocketModeTests {
    static func reaction(_ n: Int) -> JSONValue {
        FakeSlackPayloads.reaction(user: "U0ALICE", reaction: "white_check_mark", channel: "C0CARDS", ts: "1767225600.000100", eventTS: "\(n).000100")
    }

    @Test("A1 no hello yet: an envelope before hello is acked, but the client is not connected until hello")
    func a01_noHelloYet() async throws {
        var fake = FakeSlack.Configuration()
        fake.helloDelay = .seconds(2)
        fake.deliverQueuedBeforeHello = true
        let h = try await SocketHarness.start(fake: fake)
        // An event arrives before the socket says hello.
        let (envelope, _) = await h.fake.deliverEvent(Self.reaction(1))
        #expect(await eventually { await h.fake.ack(for: envelope) != nil }, "the early envelope is acked")
        let helloSeen = await h.fake.connections().first?.helloAt
        #expect(helloSeen == nil, "the fake has not said hello yet")
        #expect(h.client.status != .connected, "not connected before hello")
        #expect(await h.waitConnected(), "connected after hello")
        #expect(await h.sink.recordedKeys == ["event:Ev00000001"])
        await h.stop()
    }

    @Test("A2 disconnect warning: make before break; envelopes on the old socket during the overlap are acked once")
    func a02_disconnectWarning() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let old = try #require(await h.liveSocket())
        await h.fake.deliverEvent(Self.reaction(1), to: old)
        await h.fake.sendDisconnect(reason: "warning", to: old)
        // Still open (Slack closes it ~10 s later): an envelope on the old socket is still acked.
        let (overlap, _) = await h.fake.deliverEvent(Self.reaction(2), to: old)
        #expect(await eventually { await h.fake.ack(for: overlap) != nil })
        #expect(await eventually {
            let records = await h.fake.connections()
            return records.count == 2 && records[0].endedAt != nil
        })
        let records = await h.fake.connections()
        let oldRecord = try #require(records.first { $0.id == old })
        let newRecord = try #require(records.first { $0.id != old })
        let newHello = try #require(newRecord.helloAt)
        let oldEnd = try #require(oldRecord.endedAt)
        #expect(newHello < oldEnd, "the new socket said hello before the old one closed")
        #expect(!oldRecord.endedByServer, "the client closed the old socket itself")
        await h.fake.deliverEvent(Self.reaction(3))
        #expect(await eventually { await h.sink.recorded.count == 3 })
        #expect(Set(await h.sink.recordedKeys).count == 3)
        #expect(await h.fake.calls("apps.connections.open").count == 2)
        await h.stop()
    }

    @Test("A3 refresh_requested: same make-before-break; nothing lost; the next event arrives on the new socket, no long backoff")
    func a03_refreshRequested() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let old = try #require(await h.liveSocket())
        let asked = ContinuousClock.now
        await h.fake.sendDisconnect(reason: "refresh_requested", to: old)
        #expect(await eventually { (await h.fake.connections()).contains { $0.id != old && $0.helloAt != nil } })
        let newRecord = try #require(await h.fake.connections().first { $0.id != old })
        #expect(try #require(newRecord.helloAt) - asked < .seconds(2), "a refresh is not a failure: no backoff")
        #expect(await eventually { await h.fake.connections().first { $0.id == old }?.endedAt != nil })
        let (envelope, _) = await h.fake.deliverEvent(Self.reaction(4))
        #expect(await eventually { await h.fake.ack(for: envelope) != nil })
        #expect(await h.fake.ack(for: envelope)?.connection == newRecord.id)
        #expect(await h.sink.recordedKeys == ["event:Ev00000001"])
        #expect(h.client.status == .connected)
        await h.stop()
    }

    @Test("A4 link_disabled: no reconnect storm; the client stops and says why")
    func a04_linkDisabled() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        await h.fake.sendDisconnect(reason: "link_disabled")
        #expect(await eventually { h.client.status == .stopped(.linkDisabled) })
        let storm = await eventually(timeout: .milliseconds(1500)) { await h.fake.calls("apps.connections.open").count > 1 }
        #expect(!storm, "no reconnects after link_disabled")
        #expect(await h.fake.liveConnections().isEmpty)
        #expect("\(SocketModeStateMachine.StopReason.linkDisabled)".contains("enable Socket Mode"))
        await h.stop()
    }

    @Test("A5 too_many_websockets: backs off (with jitter, at least the minimum) and never opens extra sockets")
    func a05_tooManyWebsockets() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let told = ContinuousClock.now
        await h.fake.sendDisconnect(reason: "too_many_websockets")
        #expect(await eventually { await h.fake.calls("apps.connections.open").count == 2 })
        let reopened = try #require(await h.fake.calls("apps.connections.open").last?.at)
        #expect(reopened - told >= .seconds(1), "waited at least the too_many_websockets backoff")
        #expect(await h.waitConnected())
        #expect(await h.fake.liveConnections().count == 1)
        await h.stop()
    }

    @Test("A6 reused URL: the fake refuses a used ticket; the client fetches a fresh URL for every socket")
    func a06_reusedURL() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        // The fake really refuses reuse.
        let url = try await h.api.openConnection(appToken: Secret(h.fake.configuration.appToken))
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        try await WebSocketClient.connect(url: url, logger: logger) { _, outbound, _ in try await outbound.close(.normalClosure, reason: nil) }
        await #expect(throws: (any Error).self) {
            try await WebSocketClient.connect(url: url, logger: logger) { _, outbound, _ in try await outbound.close(.normalClosure, reason: nil) }
        }
        #expect(await h.fake.reusedTicketAttempts() == 1)
        // Three drops, three fresh URLs, no reuse by the client: after each drop a new socket opens and
        // gets its hello. (The test's own socket closes at once, maybe before its hello, so it is not counted.)
        for _ in 1...3 {
            let dropped = ContinuousClock.now
            await h.fake.drop()
            #expect(await eventually { await h.fake.connections().contains { $0.openedAt > dropped && $0.helloAt != nil } })
        }
        #expect(await h.fake.reusedTicketAttempts() == 1, "only the test's own reuse")
        #expect(await h.fake.calls("apps.connections.open").count == 5)  // 1 + the test's + 3 reconnects
        await h.stop()
    }

    @Test("A7 late ack: acks go out within 3 s even when the work behind them takes 10 s")
    func a07_lateAck() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        await h.sink.setCommandWork(.seconds(10))
        let slash = await h.fake.slash(user: "U0ALICE", channel: "C0CARDS", text: "approve 42")
        let (event, _) = await h.fake.deliverEvent(Self.reaction(7))
        #expect(await eventually(timeout: .seconds(4)) {
            let a = await h.fake.ack(for: slash)
            let b = await h.fake.ack(for: event)
            return a != nil && b != nil
        })
        let slashAck = try #require(await h.fake.ack(for: slash))
        #expect(slashAck.latency <= .seconds(3))
        #expect(slashAck.payload?.member("text")?.asString == "working on it", "the ack carries the holding reply")
        #expect(slashAck.payload?.member("response_type")?.asString == "ephemeral")
        #expect(try #require(await h.fake.ack(for: event)).latency < .seconds(1))
        await h.stop()
    }

    @Test("A8 retry after timeout: a withheld ack is redelivered with retry_attempt 1; acked again; recorded once")
    func a08_retryAfterTimeout() async throws {
        for sameEnvelopeID in [false, true] {
            var fake = FakeSlack.Configuration()
            fake.ackTimeout = .milliseconds(400)
            fake.redeliverWithNewEnvelopeID = !sameEnvelopeID
            let h = try await SocketHarness.start(fake: fake)
            #expect(await h.waitConnected())
            let (first, eventID) = await h.fake.deliverEvent(Self.reaction(8), ignoreAck: true)
            #expect(await eventually { await h.fake.sentEnvelopes().contains { $0.dedupeID == eventID && $0.retryAttempt == 1 } })
            #expect(await eventually { (await h.fake.acks()).count >= 2 })
            let sent = await h.fake.sentEnvelopes().filter { $0.dedupeID == eventID }
            #expect(sent.count == 2)
            #expect((sent[1].envelopeID == first) == sameEnvelopeID)
            #expect(await h.sink.recordedKeys == ["event:\(eventID)"], "one effect in total")
            #expect(await h.sink.duplicates == 1)
            await h.stop()
        }
    }

    @Test("A9 retry is the only delivery: an event first seen as retry_attempt 2 is processed, not dropped")
    func a09_retryIsTheOnlyDelivery() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let (envelope, eventID) = await h.fake.deliverEvent(Self.reaction(9), retryAttempt: 2, retryReason: "timeout")
        #expect(await eventually { await h.fake.ack(for: envelope) != nil })
        #expect(await h.sink.recordedKeys == ["event:\(eventID)"])
        await h.stop()
    }

    @Test("A9 (queued) an event sent while no socket was open arrives as a retry once one opens, and is processed")
    func a09_eventSentWhileDisconnected() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        await h.fake.refuseSockets(true)
        await h.fake.drop()
        #expect(await eventually { await h.fake.liveConnections().isEmpty })
        let (_, eventID) = await h.fake.deliverEvent(Self.reaction(10))
        await h.fake.refuseSockets(false)
        #expect(await eventually(timeout: .seconds(15)) { await h.sink.recordedKeys == ["event:\(eventID)"] })
        #expect(await h.fake.sentEnvelopes().first { $0.dedupeID == eventID }?.retryAttempt == 1)
        await h.stop()
    }

    @Test("A13 envelope without event: app_rate_limited and unknown types are acked; garbage is ignored; the socket stays up")
    func a13_envelopeWithoutEvent() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let socket = try #require(await h.liveSocket())
        let limited = await h.fake.deliver(type: "events_api", payload: .object([
            "type": .string("app_rate_limited"), "team_id": .string("T111"), "minute_rate_limited": .int(1_518_467_820), "api_app_id": .string("A111"),
        ]))
        let unknown = await h.fake.deliver(type: "brand_new_type", payload: .object(["x": .int(1)]))
        let empty = await h.fake.deliver(type: "events_api", payload: .null)
        await h.fake.sendRaw("this is not json")
        await h.fake.sendRaw(#"{"type":"something_new"}"#)
        #expect(await eventually {
            let acked = await h.fake.acks().map(\.envelopeID)
            return [limited, unknown, empty].allSatisfy(acked.contains)
        })
        let (after, _) = await h.fake.deliverEvent(Self.reaction(13))
        #expect(await eventually { await h.fake.ack(for: after) != nil })
        #expect(await h.liveSocket() == socket, "the same socket stayed up")
        #expect(await h.sink.recorded.count == 1)
        await h.stop()
    }

    @Test("A22 fatal token: invalid_auth stops reconnecting and reports it")
    func a22_fatalToken() async throws {
        let h = try await SocketHarness.start(appToken: "xapp-revoked")
        #expect(await eventually {
            if case .stopped(.fatal(let why)) = h.client.status { return why == "invalid_auth" }
            return false
        })
        let storm = await eventually(timeout: .milliseconds(1500)) { await h.fake.calls("apps.connections.open").count > 1 }
        #expect(!storm)
        #expect("\(SocketModeStateMachine.StopReason.fatal("invalid_auth"))".contains("SLACK_APP_TOKEN"))
        await h.stop()
    }

    @Test func aDroppedSocketWithoutCloseFrameIsReplaced() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        let first = try #require(await h.liveSocket())
        await h.fake.drop(connection: first)
        #expect(await eventually { if let s = await h.liveSocket() { s != first } else { false } })
        let (envelope, _) = await h.fake.deliverEvent(Self.reaction(20))
        #expect(await eventually { await h.fake.ack(for: envelope) != nil })
        await h.stop()
    }

    @Test func serverPingsAreAnsweredAndTheSocketStays() async throws {
        var fake = FakeSlack.Configuration()
        fake.serverPingInterval = .milliseconds(200)
        let h = try await SocketHarness.start(fake: fake)
        #expect(await h.waitConnected())
        // The fake closes a socket that misses a pong; after several ping periods it is still the same one.
        let replaced = await eventually(timeout: .milliseconds(1500)) { await h.fake.connections().count > 1 }
        #expect(!replaced)
        #expect(await h.fake.liveConnections().count == 1)
        await h.stop()
    }

    @Test("A82 (socket) graceful shutdown: the socket is closed by the client, not dropped")
    func shutdownClosesTheSocket() async throws {
        let h = try await SocketHarness.start()
        #expect(await h.waitConnected())
        await h.group.triggerGracefulShutdown()
        #expect(await eventually { await h.fake.liveConnections().isEmpty })
        #expect(await h.fake.connections().allSatisfy { !$0.endedByServer })
        #expect(h.client.status == .stopped(.shutdown))
        await h.stop()
    }
}
