import AsyncHTTPClient
import Crypto
import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// Decision delivery by webhook: signed, retried with backoff, delivered through the outbox across restarts.
@Suite struct WebhookDeliveryTests {
    /// HMAC-SHA256 of "<t>.<body>" computed independently of the code under test.
    static func expectedSignature(secret: String, timestamp: String, body: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    @Test func aDecisionIsPostedSignedWithTheOutboxRowAsDeliveryID() async throws {
        let receiver = try await WebhookReceiver.start()
        do {
            try await withTestApp(configure: { $0.webhooks.secret = Secret("whsec_test") }) { app in
                let k = try await app.keys()
                let created = try await app.post("/v1/approvals", key: k.agent,
                                                  #"{"action":"deploy","arguments":{"v":3},"callback_url":"\#(receiver.url)","state":{"job":"j-1"}}"#)
                #expect(created.status == 201)
                _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"reject","reason":"<script>alert(1)</script>"}"#)
                let got = try await receiver.waitFor(1)
                try #require(got.count == 1, "the webhook should arrive")
                let hook = got[0]

                // Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
                let header = try #require(hook.headers["handoff-signature"])
                let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map {
                    let kv = $0.split(separator: "=", maxSplits: 1)
                    return (String(kv[0]), String(kv[1]))
                })
                let t = try #require(parts["t"])
                #expect(abs((Double(t) ?? 0) - Date().timeIntervalSince1970) < 60)
                #expect(parts["v1"] == Self.expectedSignature(secret: "whsec_test", timestamp: t, body: hook.body))
                #expect(WebhookSignature.verify(header: header, body: hook.body, secret: Secret("whsec_test"), now: Date()))
                #expect(!WebhookSignature.verify(header: header, body: hook.body + Array(" ".utf8), secret: Secret("whsec_test"), now: Date()),
                        "a changed body fails")
                #expect(!WebhookSignature.verify(header: header, body: hook.body, secret: Secret("other"), now: Date()), "another secret fails")
                #expect(!WebhookSignature.verify(header: header, body: hook.body, secret: Secret("whsec_test"),
                                                 now: Date().addingTimeInterval(3600)), "an old timestamp fails (replay)")

                // Handoff-Delivery is the outbox row id, stable across retries, so receivers can dedupe.
                let rows = try await app.workflow.store.outbox(of: EntityRef(kind: .approval, id: 1)).filter { $0.kind == .webhook }
                #expect(rows.count == 1)
                #expect(hook.headers["handoff-delivery"] == String(rows[0].id))
                #expect(hook.headers["handoff-event"] == "approval.decided")
                #expect(hook.headers["content-type"] == "application/json")

                let payload = try JSONDecoder().decode(JSONValue.self, from: Data(hook.body))
                #expect(payload["event"]?.string == "approval.decided")
                #expect(payload["occurred_at"]?.string != nil)
                #expect(payload["data"]?["status"]?.string == "rejected")
                #expect(payload["data"]?["caller_state"]?["job"]?.string == "j-1")
                #expect(payload["data"]?["decision"]?["comment"]?.string == "<script>alert(1)</script>")

                // Delivered rows are marked done; nothing is sent twice.
                let deadline = ContinuousClock.now + .seconds(10)
                while try await app.workflow.store.outbox(of: EntityRef(kind: .approval, id: 1)).first(where: { $0.kind == .webhook })?.status != .done,
                      ContinuousClock.now < deadline
                {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(try await app.workflow.store.outbox(of: EntityRef(kind: .approval, id: 1)).first { $0.kind == .webhook }?.status == .done)
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.received.count == 1)
            }
        } catch {
            try? await receiver.stop()
            throw error
        }
        try await receiver.stop()
    }

    /// A workflow on a manual clock with an approval whose decision produced a webhook row.
    func decidedApproval(clock: ManualClock, directory: TemporaryDirectory, callback: String) async throws -> Workflow {
        let workflow = try await HandoffApplication.openWorkflow(
            databasePath: directory.file("hooks.sqlite"), policy: try PolicyFile.parse(testPolicy), clock: clock)
        let (approval, _) = try await workflow.requestApproval(
            ApprovalRequest(action: "deploy", arguments: .object(["v": .int(1)]), requester: "key:erin-bot", callbackURL: callback))
        _ = try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Actor("key:alice"))
        return workflow
    }

    @Test func failuresAreRetriedWithExponentialBackoffAndJitterUntilA2xx() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-hooks")
        defer { directory.remove() }
        let receiver = try await WebhookReceiver.start(script: [500, 503])
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let clock = ManualClock()
        let workflow = try await decidedApproval(clock: clock, directory: directory, callback: receiver.url)
        do {
            var configuration = WebhookDeliverer.Configuration()
            configuration.maxAttempts = 5
            var dispatch = OutboxDispatcher.Configuration()
            dispatch.initialBackoff = .seconds(10)
            dispatch.maxBackoff = .seconds(60)
            let deliverer = WebhookDeliverer(client: client, secret: Secret("s"), clock: clock, configuration: configuration)
            let dispatcher = OutboxDispatcher(workflow: workflow, deliverers: [deliverer], configuration: dispatch)
            let ref = EntityRef(kind: .approval, id: 1)
            func row() async throws -> OutboxMessage { try #require(try await workflow.store.outbox(of: ref).first { $0.kind == .webhook }) }

            try await dispatcher.drainOnce()
            #expect(receiver.received.count == 1)
            var r = try await row()
            #expect(r.status == .pending)
            #expect(r.attempts == 1)
            #expect(r.lastError?.contains("500") == true)
            // First retry after 10 s × jitter in [½, 1].
            let firstDelay = r.nextAttemptAt.timeIntervalSince(clock.now())
            #expect((4.9...10.1).contains(firstDelay), "first backoff \(firstDelay)")
            try await dispatcher.drainOnce()
            #expect(receiver.received.count == 1, "not due yet: nothing is sent before the backoff")

            clock.advance(by: 10.1)
            try await dispatcher.drainOnce()
            #expect(receiver.received.count == 2)
            r = try await row()
            #expect(r.attempts == 2)
            let secondDelay = r.nextAttemptAt.timeIntervalSince(clock.now())
            #expect((9.9...20.1).contains(secondDelay), "the backoff doubles: \(secondDelay)")

            clock.advance(by: 20.1)
            try await dispatcher.drainOnce()
            #expect(receiver.received.count == 3)
            r = try await row()
            #expect(r.status == .done)
            let deliveries = Set(receiver.received.compactMap { $0.headers["handoff-delivery"] })
            #expect(deliveries == [String(r.id)], "every attempt carries the same delivery id")
        } catch {
            try? await client.shutdown()
            try? await receiver.stop()
            try? await workflow.store.close()
            throw error
        }
        try await client.shutdown()
        try await receiver.stop()
        try await workflow.store.close()
    }

    @Test func deliveryGivesUpAfterTheAttemptLimit() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-hooks")
        defer { directory.remove() }
        let receiver = try await WebhookReceiver.start(script: [500, 500, 500, 500])
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let clock = ManualClock()
        let workflow = try await decidedApproval(clock: clock, directory: directory, callback: receiver.url)
        var configuration = WebhookDeliverer.Configuration()
        configuration.maxAttempts = 2
        let dispatcher = OutboxDispatcher(
            workflow: workflow, deliverers: [WebhookDeliverer(client: client, secret: Secret("s"), clock: clock, configuration: configuration)])
        try await dispatcher.drainOnce()
        clock.advance(by: 7200)
        try await dispatcher.drainOnce()
        clock.advance(by: 7200)
        try await dispatcher.drainOnce()
        let row = try await workflow.store.outbox(of: EntityRef(kind: .approval, id: 1)).first { $0.kind == .webhook }
        #expect(row?.status == .failed)
        #expect(row?.lastError?.contains("gave up after 2 attempts") == true)
        #expect(receiver.received.count == 2)
        try await client.shutdown()
        try await receiver.stop()
        try await workflow.store.close()
    }

    @Test func pendingWebhooksSurviveARestartAndUseTheStoredSecret() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-restart")
        defer { directory.remove() }
        // A port nobody listens on (yet): bind, learn it, close.
        let placeholder = try await WebhookReceiver.start()
        let port = placeholder.port
        try await placeholder.stop()
        let url = "http://127.0.0.1:\(port)/hook"

        // First life: the decision is committed, the receiver is down, the attempt fails and is kept.
        let first = try await TestApp.start(directory: directory, configure: {
            $0.webhooks.dispatcher.initialBackoff = .milliseconds(200)
            $0.webhooks.dispatcher.maxBackoff = .milliseconds(400)
        })
        let k = try await first.keys()
        _ = try await first.post("/v1/approvals", key: k.agent, #"{"action":"deploy","callback_url":"\#(url)"}"#)
        _ = try await first.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve"}"#)
        let ref = EntityRef(kind: .approval, id: 1)
        let deadline = ContinuousClock.now + .seconds(10)
        while try await first.workflow.store.outbox(of: ref).first(where: { $0.kind == .webhook })?.attempts ?? 0 == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await first.stop(removeFiles: false)

        let reopened = try await SQLWorkflowStore(database: try SQLiteDatabase(path: directory.file("handoff.sqlite")))
        let kept = try #require(try await reopened.outbox(of: ref).first { $0.kind == .webhook })
        #expect(kept.status == .pending, "the undelivered webhook is still there after the process stopped")
        #expect(kept.attempts >= 1)
        try await reopened.close()

        // The secret was generated once and kept; `handoff webhooks secret` prints it.
        let printed = try await runProcess(try BuiltProducts.executable("handoff"), ["webhooks", "secret"],
                                           environment: ["HANDOFF_DATABASE": directory.file("handoff.sqlite"), "HANDOFF_WEBHOOK_SECRET": ""])
        let secret = printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("whsec_"), "\(printed.stdout)\(printed.stderr)")
        let overridden = try await runProcess(try BuiltProducts.executable("handoff"), ["webhooks", "secret"],
                                              environment: ["HANDOFF_DATABASE": directory.file("handoff.sqlite"), "HANDOFF_WEBHOOK_SECRET": "from-env"])
        #expect(overridden.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "from-env")

        // Second life: the receiver is up on that port; the kept row is delivered.
        let receiver = try await WebhookReceiver.start(port: port)
        let second = try await TestApp.start(directory: directory, configure: {
            $0.webhooks.dispatcher.initialBackoff = .milliseconds(200)
            $0.webhooks.dispatcher.maxBackoff = .milliseconds(400)
        })
        do {
            let got = try await receiver.waitFor(1)
            try #require(got.count >= 1, "the webhook kept across the restart is delivered")
            #expect(got[0].headers["handoff-delivery"] == String(kept.id))
            let header = try #require(got[0].headers["handoff-signature"])
            #expect(WebhookSignature.verify(header: header, body: got[0].body, secret: Secret(secret), now: Date()),
                    "signed with the secret `handoff webhooks secret` prints")
            try await second.stop(removeFiles: false)
        } catch {
            try? await second.stop(removeFiles: false)
            try? await receiver.stop()
            throw error
        }
        try await receiver.stop()
    }
}
