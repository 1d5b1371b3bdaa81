import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

@Suite("Workflow: approvals on SQLite")
struct WorkflowApprovalTests {
    let arguments = JSONValue.object(["service": .string("billing"), "version": .string("2.4.1")])

    func request(policy: String = "default", callbackURL: String? = nil) -> ApprovalRequest {
        ApprovalRequest(action: "deploy", arguments: arguments, summary: "Deploy billing 2.4.1", requester: "key:agent",
                        callerState: .object(["run": .int(77)]), callbackURL: callbackURL, policyName: policy)
    }

    @Test func theFullFlowWritesCardsAndAWebhook() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let (approval, created) = try await workflow.requestApproval(request(callbackURL: "https://agent.example/hooks/approval"))
            #expect(created)
            let ref = approval.ref
            var outbox = try await workflow.store.outbox(of: ref)
            #expect(outbox.map(\.kind) == [.postCard])
            #expect(outbox.first?.destination == "approvals")
            #expect(try await workflow.store.timers(of: ref).map(\.kind) == [.expiry])

            harness.clock.advance(by: 42)
            let decided = try await workflow.decide(approval.id, verdict: .approve, comment: "ship it", by: Who.alice,
                                                    argumentsHash: arguments.canonicalHash)
            #expect(decided.status.decision?.by == ["slack:alice"])
            #expect(try await workflow.approval(approval.id) == decided)

            outbox = try await workflow.store.outbox(of: ref)
            #expect(outbox.map(\.kind) == [.postCard, .updateCards, .webhook])
            let webhook = try #require(outbox.last)
            #expect(webhook.destination == "https://agent.example/hooks/approval")
            let body = try jsonObject(webhook.payload)
            #expect(body["event"] as? String == "approval.decided")
            let data = try #require(body["data"] as? [String: Any])
            #expect(data["status"] as? String == "approved")
            #expect(data["arguments_hash"] as? String == arguments.canonicalHash)
            #expect(number((data["caller_state"] as? [String: Any])?["run"]) == 77)
            let decision = try #require(data["decision"] as? [String: Any])
            #expect(decision["by"] as? [String] == ["slack:alice"])
            #expect(decision["comment"] as? String == "ship it")

            #expect(try await workflow.store.timers(of: ref).isEmpty)
            let audit = try await workflow.store.audit(of: ref)
            #expect(audit.map(\.to) == ["pending", "approved"])
            #expect(audit.last?.actor == "slack:alice")
            #expect(audit.last?.at == harness.clock.now())

            // The grant is used once, for these arguments only.
            await expectWorkflowError(.notAllowed, "arguments differ") {
                try await workflow.consume(approval.id, arguments: .object(["service": .string("billing"), "version": .string("9.9.9")]),
                                           by: Who.agent)
            }
            let consumed = try await workflow.consume(approval.id, arguments: arguments, by: Who.agent)
            #expect(consumed.execution.name == "consumed")
            await expectWorkflowError(.wrongState, "already used") { try await workflow.consume(approval.id, arguments: arguments, by: Who.agent) }
            let finished = try await workflow.reportOutcome(approval.id, outcome: .succeeded, by: Who.agent)
            #expect(finished.execution.name == "succeeded")
            #expect(try await workflow.store.outbox(of: ref).filter { $0.kind == .webhook }.count == 2)
        }
    }

    @Test func withoutACallbackThereIsNoWebhookRow() async throws {
        try await WorkflowHarness.with { _, workflow in
            let (approval, _) = try await workflow.requestApproval(request())
            _ = try await workflow.decide(approval.id, verdict: .reject, comment: "not now", by: Who.bob)
            #expect(try await workflow.store.outbox(of: approval.ref).map(\.kind) == [.postCard, .updateCards])
        }
    }

    @Test func anIdempotencyKeyReturnsTheSameApproval() async throws {
        try await WorkflowHarness.with { _, workflow in
            let key = EventKey(source: "api:key:agent", key: "deploy-2.4.1")
            let first = try await workflow.requestApproval(request(), idempotencyKey: key)
            let retry = try await workflow.requestApproval(request(), idempotencyKey: key)
            #expect(first.created)
            #expect(!retry.created)
            #expect(retry.approval == first.approval)
            #expect(try await workflow.approvals().map(\.id) == [first.approval.id])
            #expect(try await workflow.store.outbox(of: first.approval.ref).count == 1)
            // Another key is another request.
            let other = try await workflow.requestApproval(request(), idempotencyKey: EventKey(source: "api:key:agent", key: "other"))
            #expect(other.approval.id != first.approval.id)
        }
    }

    @Test func aRedeliveredEventIsADuplicateAndDecidesOnce() async throws {
        try await WorkflowHarness.with { _, workflow in
            let (approval, _) = try await workflow.requestApproval(request(policy: "pair"))
            let event = EventKey(source: "slack", key: "Ev0123")
            let voted = try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Who.alice, event: event)
            #expect(voted.votes.count == 1)
            await expectWorkflowError(.duplicate) {
                try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Who.alice, event: event)
            }
            // Even a different click carried by the same platform event changes nothing.
            await expectWorkflowError(.duplicate) {
                try await workflow.decide(approval.id, verdict: .reject, comment: "no", by: Who.bob, event: event)
            }
            let stored = try await workflow.approval(approval.id)
            #expect(stored.status == .pending)
            #expect(stored.votes.map(\.by) == ["slack:alice"])
            #expect(try await workflow.store.audit(of: approval.ref).count == 2)
        }
    }

    @Test func aSecondDecisionChangesNothingInTheStore() async throws {
        try await WorkflowHarness.with { _, workflow in
            let (approval, _) = try await workflow.requestApproval(request(callbackURL: "https://agent.example/hook"))
            let decided = try await workflow.decide(approval.id, verdict: .reject, comment: "too risky", by: Who.alice)
            let auditBefore = try await workflow.store.audit(of: approval.ref)
            let outboxBefore = try await workflow.store.outbox(of: approval.ref)
            await expectWorkflowError(.wrongState, "already decided", "@slack:alice") {
                try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Who.bob)
            }
            #expect(try await workflow.approval(approval.id) == decided)
            #expect(try await workflow.store.approval(approval.id)?.version == 2)
            #expect(try await workflow.store.audit(of: approval.ref) == auditBefore)
            #expect(try await workflow.store.outbox(of: approval.ref).map(\.id) == outboxBefore.map(\.id))
        }
    }

    @Test func concurrentDecisionsHaveExactlyOneWinner() async throws {
        try await WorkflowHarness.with { _, workflow in
            for round in 0..<10 {
                let (approval, _) = try await workflow.requestApproval(request(callbackURL: "https://agent.example/hook"))
                let outcomes = await withTaskGroup(of: (Verdict, Result<Approval, WorkflowError>).self) { group in
                    group.addTask {
                        do { return (.approve, .success(try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Who.alice))) }
                        catch { return (.approve, .failure(error as? WorkflowError ?? WorkflowError(code: .invalid, message: "\(error)"))) }
                    }
                    group.addTask {
                        do { return (.reject, .success(try await workflow.decide(approval.id, verdict: .reject, comment: "no", by: Who.bob))) }
                        catch { return (.reject, .failure(error as? WorkflowError ?? WorkflowError(code: .invalid, message: "\(error)"))) }
                    }
                    var all: [(Verdict, Result<Approval, WorkflowError>)] = []
                    for await outcome in group { all.append(outcome) }
                    return all
                }
                let winners = outcomes.compactMap { verdict, result in (try? result.get()).map { _ in verdict } }
                let losers = outcomes.compactMap { _, result in if case .failure(let e) = result { e } else { nil } }
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                #expect(losers.map(\.code) == [.wrongState], "round \(round): \(losers)")
                #expect(losers.first?.message.contains("already decided") == true)

                let stored = try await workflow.approval(approval.id)
                #expect(stored.status.name == (winners.first == .approve ? "approved" : "rejected"))
                #expect(try await workflow.store.audit(of: approval.ref).count == 2)
                #expect(try await workflow.store.outbox(of: approval.ref).filter { $0.kind == .webhook }.count == 1)
            }
        }
    }

    @Test func refusalsFromTheCoreReachTheCaller() async throws {
        try await WorkflowHarness.with { _, workflow in
            let (approval, _) = try await workflow.requestApproval(request())
            await expectWorkflowError(.notAllowed, "not an approver") {
                try await workflow.decide(approval.id, verdict: .approve, comment: nil, by: Who.meg)
            }
            await expectWorkflowError(.invalid, "reason") { try await workflow.decide(approval.id, verdict: .reject, comment: nil, by: Who.alice) }
            await expectWorkflowError(.notFound, "approval #999 does not exist") {
                try await workflow.decide(ApprovalID(999), verdict: .approve, comment: nil, by: Who.alice)
            }
            await expectWorkflowError(.invalid, "'nope' is not a configured approval policy") {
                try await workflow.requestApproval(request(policy: "nope"))
            }
            #expect(try await workflow.decisionRefusal(approval.id, by: Who.meg)?.code == .notAllowed)
            #expect(try await workflow.decisionRefusal(approval.id, by: Who.alice) == nil)
        }
    }

    @Test func anIdempotencyKeyReusedForADifferentRequestIsRefused() async throws {
        try await WorkflowHarness.with { _, workflow in
            let key = EventKey(source: "api:key:agent", key: "k-1")
            let request = ApprovalRequest(action: "deploy", arguments: .object(["v": .int(1)]), requester: "key:agent")
            let (first, created) = try await workflow.requestApproval(request, idempotencyKey: key)
            #expect(created)
            let (again, createdAgain) = try await workflow.requestApproval(request, idempotencyKey: key)
            #expect(!createdAgain)
            #expect(again.id == first.id)
            var other = request
            other.arguments = .object(["v": .int(2)])
            do {
                _ = try await workflow.requestApproval(other, idempotencyKey: key)
                Issue.record("a reused key with different arguments must be refused")
            } catch let error as WorkflowError {
                #expect(error.code == .invalid)
                #expect(error.field == "Idempotency-Key")
                #expect(error.message.contains("different request"))
            }
            #expect(try await workflow.approvals(limit: 10).count == 1)
        }
    }
}
