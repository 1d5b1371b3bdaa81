import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import Testing

/// Keys, scopes, limits, the error shape, and the operational endpoints.
@Suite struct HTTPAuthAndOpsTests {
    @Test func missingMalformedUnknownAndRevokedKeysGet401() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            expectError(try await app.get("/v1/approvals"), 401, "unauthorized")
            let noBearer = try await app.request(.GET, "/v1/approvals", headers: [("Authorization", "Basic abc")])
            expectError(noBearer, 401, "unauthorized")
            #expect(noBearer.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            expectError(try await app.get("/v1/approvals", key: "not-a-key"), 401, "unauthorized")
            // Right id, wrong secret.
            let parts = k.agent.split(separator: "_")
            let forged = "hk_\(parts[1])_\(String(repeating: "x", count: 40))"
            let wrong = try await app.get("/v1/approvals", key: forged)
            expectError(wrong, 401, "unauthorized")
            #expect(!wrong.text.contains(forged), "the key is never echoed")
            #expect(try await app.get("/v1/approvals", key: k.agent).status == 200)
            #expect(try await app.workflow.store.revokeAPIKey(name: "erin-bot", at: Date()))
            let revoked = try await app.get("/v1/approvals", key: k.agent)
            expectError(revoked, 401, "unauthorized")
            #expect(revoked.errorMessage?.contains("revoked") == true)
        }
    }

    @Test func scopesArePerRouteAndAdminMayDoEverything() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            // Agent: create, not decide. Reviewer: decide, not create. Both read.
            #expect(try await app.post("/v1/approvals", key: k.agent, #"{"action":"a"}"#).status == 201)
            expectError(try await app.post("/v1/approvals", key: k.carol, #"{"action":"a"}"#), 403, "forbidden")
            expectError(try await app.post("/v1/approvals/1/decision", key: k.agent, #"{"verdict":"approve"}"#), 403, "forbidden")
            expectError(try await app.post("/v1/label-tasks/1/labels", key: k.agent, #"{"value":"x"}"#), 403, "forbidden")
            expectError(try await app.post("/v1/escalations", key: k.carol, #"{"query":"x"}"#), 403, "forbidden")
            expectError(try await app.post("/v1/corrections", key: k.carol, #"{"query":"q","original":"a","corrected":"b"}"#), 403, "forbidden")
            #expect(try await app.get("/v1/approvals/1", key: k.carol).status == 200)
            #expect(try await app.get("/v1/approvals/1", key: k.agent).status == 200)
            // Admin creates and decides; it acts with administrator rights (no group needed), as key:admin.
            #expect(try await app.post("/v1/approvals", key: k.admin, #"{"action":"b"}"#).status == 201)
            let decided = try await app.post("/v1/approvals/1/decision", key: k.admin, #"{"verdict":"approve"}"#)
            #expect(decided.status == 200, "\(decided.text)")
            #expect(decided.json["decision"]?["by"]?[0]?.string == "key:admin")
            // Refusals change nothing.
            #expect(try await app.workflow.approvals(limit: 10).count == 2)
        }
    }

    @Test func oversizeBodiesGet413AndUnknownRoutesAJSON404() async throws {
        try await withTestApp(configure: { $0.http.maxBodySize = 4096 }) { app in
            let k = try await app.keys()
            let big = #"{"action":"a","arguments":{"blob":""# + String(repeating: "x", count: 10_000) + #""}}"#
            expectError(try await app.post("/v1/approvals", key: k.agent, big), 413, "too_large")
            // Chunked (no Content-Length) is cut off while reading.
            let chunked = try await app.request(.POST, "/v1/approvals", key: k.agent, body: Array(big.utf8),
                                                headers: [("Transfer-Encoding", "chunked")])
            expectError(chunked, 413, "too_large")
            #expect(try await app.workflow.approvals(limit: 5).isEmpty)
            expectError(try await app.get("/v1/nothing-here", key: k.agent), 404, "not_found")
            expectError(try await app.request(.DELETE, "/v1/approvals", key: k.agent), 404, "not_found")
        }
    }

    @Test func aKeyOverItsRateGets429WithRetryAfter() async throws {
        try await withTestApp(configure: {
            $0.http.rateLimit.burst = 3
            // One request back per 100 s: however slow this machine is, the fourth request finds the bucket empty.
            $0.http.rateLimit.requestsPerSecond = 0.01
        }) { app in
            let k = try await app.keys()
            for _ in 0..<3 { #expect(try await app.get("/v1/approvals", key: k.agent).status == 200) }
            let limited = try await app.get("/v1/approvals", key: k.agent)
            expectError(limited, 429, "rate_limited")
            #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
            // Buckets are per key.
            #expect(try await app.get("/v1/approvals", key: k.carol).status == 200)
        }
    }

    @Test func healthReadinessAndMetrics() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            #expect(try await app.get("/healthz").json["status"]?.string == "ok")
            #expect(try await app.get("/readyz").json["status"]?.string == "ready")
            _ = try await app.post("/v1/approvals", key: k.agent, #"{"action":"a"}"#)
            _ = try await app.post("/v1/approvals/1/decision", key: k.alice, #"{"verdict":"approve"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"t"}"#)
            _ = try await app.post("/v1/queues/default/claim", key: k.alice)
            _ = try await app.post("/v1/review-items/1/submit", key: k.alice, #"{"verdict":"approved"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent, #"{"title":"waiting"}"#)
            // Decisions are counted by a task reading the commits; give it a moment.
            var text = ""
            let deadline = ContinuousClock.now + .seconds(10)
            repeat {
                text = try await app.get("/metrics").text
                if text.contains(#"handoff_decisions_total{kind="review",outcome="approved"}"#) { break }
                try await Task.sleep(for: .milliseconds(50))
            } while ContinuousClock.now < deadline
            #expect(text.contains("hb_requests"), "HTTP request counts")
            #expect(text.contains(#"handoff_decisions_total{kind="approval",outcome="approved"}"#))
            #expect(text.contains(#"handoff_decisions_total{kind="review",outcome="approved"}"#))
            #expect(text.contains(#"handoff_queue_depth{queue="default",status="pending"} 1.0"#), "\(text)")
            #expect(text.contains("handoff_time_to_decide_seconds_bucket"))
            #expect(text.contains("handoff_approvals_pending"))
            #expect(text.contains("handoff_webhook_failures_total"))
        }
    }

    @Test func readinessFailsWhenTheDatabaseIsGone() async throws {
        let app = try await TestApp.start()
        #expect(try await app.get("/readyz").status == 200)
        try await app.workflow.store.close()
        expectError(try await app.get("/readyz"), 503, "unavailable")
        try? await app.client.shutdown()
        await app.group.triggerGracefulShutdown()
        _ = try? await app.running.value
        app.directory.remove()
    }

    @Test func keysAreStoredHashedAndShownOnce() async throws {
        let directory = try TemporaryDirectory(prefix: "handoff-keys")
        defer { directory.remove() }
        let binary = try BuiltProducts.executable("handoff")
        let env = ["HANDOFF_DATABASE": directory.file("k.sqlite")]
        let created = try await runProcess(binary, ["keys", "create", "--name", "ops-bot", "--scope", "agent"], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        let key = try #require(created.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).first { $0.hasPrefix("hk_") })
        let (id, secret) = try #require(APIKeys.parse(key))
        #expect(secret.count >= 32)
        let listed = try await runProcess(binary, ["keys", "list"], environment: env)
        #expect(listed.stdout.contains("ops-bot") && listed.stdout.contains("agent"))
        #expect(!listed.stdout.contains(secret), "the secret is shown once, at creation")
        let duplicate = try await runProcess(binary, ["keys", "create", "--name", "ops-bot", "--scope", "admin"], environment: env)
        #expect(duplicate.status != 0)
        let badScope = try await runProcess(binary, ["keys", "create", "--name", "x", "--scope", "root"], environment: env)
        #expect(badScope.status == 2)
        #expect(badScope.stderr.contains("agent, reviewer or admin"))

        // The database keeps only the SHA-256 of the secret.
        let store = try await SQLWorkflowStore(database: try SQLiteDatabase(path: directory.file("k.sqlite")))
        let record = try #require(try await store.apiKey(id: id))
        #expect(record.secretHash == APIKeys.hash(secret: secret))
        #expect(record.secretHash != secret)
        #expect(record.scope == .agent)
        try await store.close()

        let revoked = try await runProcess(binary, ["keys", "revoke", "ops-bot"], environment: env)
        #expect(revoked.status == 0)
        #expect(try await runProcess(binary, ["keys", "revoke", "ops-bot"], environment: env).status != 0)
        let relisted = try await runProcess(binary, ["keys", "list", "--json"], environment: env)
        #expect(relisted.stdout.contains("revoked_at"))
    }
}
