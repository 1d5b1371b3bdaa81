import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import HandoffWorkflow
import Testing

/// `GET /v1/approvals/{id}?wait=` wakes on the commit, not on a polling loop.
@Suite struct HTTPLongPollTests {
    @Test func aWaitingRequestReturnsAsSoonAsAnotherTaskDecides() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy"}"#)
            let started = ContinuousClock.now
            async let waited = app.get("/v1/approvals/1?wait=30", key: k.agent)
            // Let the request reach the server and start waiting.
            let registered = ContinuousClock.now + .seconds(10)
            while app.app.httpServer?.waitingRequests ?? 0 == 0, ContinuousClock.now < registered { try await Task.sleep(for: .milliseconds(5)) }
            #expect(app.app.httpServer?.waitingRequests == 1, "the request should be waiting on the commit listener")
            // Decide from another task, straight through the workflow (as chat or the CLI would).
            _ = try await app.workflow.decide(ApprovalID(1), verdict: .approve, comment: nil, by: Actor("key:alice"))
            let decidedAt = ContinuousClock.now
            let response = try await waited
            let wake = ContinuousClock.now - decidedAt
            #expect(response.status == 200)
            #expect(response.json["status"]?.string == "approved")
            // Generous bound (the design goal is milliseconds; the measured value is printed below).
            #expect(wake < .seconds(3), "long-poll took \(wake) after the commit")
            #expect(ContinuousClock.now - started < .seconds(20))
            print("long-poll wake latency after commit: \(wake)")
        }
    }

    @Test func aDecisionCommittedByAnotherProcessWakesTheWaiter() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy"}"#)
            let watcher = try #require(app.app.services.compactMap { $0 as? CommitWatcher }.first, "serve runs one commit watcher")
            #expect(app.app.services.filter { $0 is CommitWatcher }.count == 1)
            // Idle: nobody waits, so the watcher does not read the database.
            let idle = watcher.probes
            try await Task.sleep(for: .milliseconds(500))
            #expect(watcher.probes == idle, "no data_version reads while nobody waits")

            // A second workflow on the same file with its own connection pool: what the CLI or another
            // `serve` is. Its commits never reach this process's commit listeners.
            let other = try await HandoffApplication.openWorkflow(databasePath: app.directory.file("handoff.sqlite"),
                                                                  policy: try PolicyFile.parse(testPolicy))
            let started = ContinuousClock.now
            async let waited = app.get("/v1/approvals/1?wait=30", key: k.agent)
            #expect(await eventually { app.app.httpServer?.waitingRequests == 1 && watcher.subscribers == 1 })
            // While someone waits the watcher reads data_version (every 150 ms): see it do so before the
            // decision, which could otherwise land before its first read (the waiter's own re-read after
            // subscribing then answers it, rightly, with no probe at all).
            #expect(await eventually { watcher.probes > idle }, "it polls while the request waits")
            _ = try await other.decide(ApprovalID(1), verdict: .approve, comment: "from the CLI", by: Actor("key:bob"))
            let decidedAt = ContinuousClock.now
            let response = try await waited
            let wake = ContinuousClock.now - decidedAt
            try await other.store.close()
            #expect(response.status == 200)
            #expect(response.json["status"]?.string == "approved")
            #expect(response.json["decision"]?["by"]?[0]?.string == "key:bob")
            // The watcher looks every 150 ms while someone waits; the deadline is 30 s.
            #expect(wake < .seconds(3), "woken \(wake) after another process's commit")
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(await eventually { watcher.subscribers == 0 }, "the waiter unsubscribed")
            print("long-poll wake latency after another process's commit: \(wake)")
        }
    }

    @Test func anAlreadyDecidedApprovalAnswersAtOnceAndPendingOnesAtTheDeadline() async throws {
        try await withTestApp(configure: { $0.http.maxLongPoll = .seconds(1) }) { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"a"}"#)
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"b"}"#)
            _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve"}"#)

            let t0 = ContinuousClock.now
            let decided = try await app.get("/v1/approvals/1?wait=30", key: k.agent)
            #expect(decided.json["status"]?.string == "approved")
            #expect(ContinuousClock.now - t0 < .seconds(5), "an already-decided approval does not wait")

            // wait=30 is capped at the configured maximum (1 s here): the answer is the pending state.
            let t1 = ContinuousClock.now
            let pending = try await app.get("/v1/approvals/2?wait=30", key: k.agent)
            let held = ContinuousClock.now - t1
            #expect(pending.status == 200)
            #expect(pending.json["status"]?.string == "pending")
            #expect(held >= .milliseconds(900), "it waited for the (capped) deadline: \(held)")
            #expect(held < .seconds(15))

            // A vote short of the quorum wakes the waiter, which keeps waiting for the decision.
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"c","policy":"pair"}"#)
            async let waited = app.get("/v1/approvals/3?wait=1", key: k.agent)
            try await Task.sleep(for: .milliseconds(200))
            _ = try await app.workflow.decide(ApprovalID(3), verdict: .approve, comment: nil, by: Actor("key:alice"))
            let afterVote = try await waited
            #expect(afterVote.json["status"]?.string == "pending")
            #expect(afterVote.json["approvals"]?.array.count == 1)

            expectError(try await app.get("/v1/approvals/2?wait=-1", key: k.agent), 400, "invalid", field: "wait")
            expectError(try await app.get("/v1/approvals/2?wait=soon", key: k.agent), 400, "invalid", field: "wait")
            expectError(try await app.get("/v1/approvals/42?wait=5", key: k.agent), 404, "not_found")
        }
    }

    @Test func gracefulShutdownAnswersWaitingRequestsAndFinishesInFlightWork() async throws {
        let app = try await TestApp.start()
        let k = try await app.keys()
        _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"deploy"}"#)
        async let waited = app.get("/v1/approvals/1?wait=60", key: k.agent)
        let registered = ContinuousClock.now + .seconds(10)
        while app.app.httpServer?.waitingRequests ?? 0 == 0, ContinuousClock.now < registered { try await Task.sleep(for: .milliseconds(5)) }
        let t0 = ContinuousClock.now
        await app.group.triggerGracefulShutdown()
        let response = try await waited
        #expect(response.status == 200, "the in-flight request is answered, not dropped")
        #expect(response.json["status"]?.string == "pending")
        try await app.running.value
        let stopped = ContinuousClock.now - t0
        #expect(stopped < .seconds(20), "shutdown does not wait out the long-poll")
        print("graceful shutdown with a waiting long-poll took \(stopped)")
        // Intake is stopped: nothing listens any more (the client would retry connecting until its deadline).
        await #expect(throws: (any Error).self) { _ = try await app.request(.GET, "/healthz", timeout: .seconds(1)) }
        try? await app.client.shutdown()
        try await app.workflow.store.close()
        app.directory.remove()
    }
}
