import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

@Suite("Workflow: durable timers on SQLite")
struct WorkflowTimerTests {
    func approvalRequest(_ n: Int, policy: String = "default") -> ApprovalRequest {
        ApprovalRequest(action: "rotate_key", arguments: .object(["n": .int(Int64(n))]), requester: "key:agent", policyName: policy)
    }

    func reviewRequest(_ query: String, priority: Priority = .medium) -> ReviewItemRequest {
        ReviewItemRequest(queue: "default", priority: priority, content: ReviewContent(query: query, answer: "a draft", confidence: 0.5))
    }

    func escalationRequest(origin: String? = "slack:C42/1700000000.000100") -> EscalationRequest {
        EscalationRequest(query: "I was charged twice", trigger: .userAsked(phrase: "talk to a human"), requester: "slack:U42", origin: origin)
    }

    /// How many audit events of an entity went to `state` with a detail containing `detail`.
    func auditCount(_ workflow: Workflow, _ ref: EntityRef, to state: String? = nil, detail: String? = nil) async throws -> Int {
        try await workflow.store.audit(of: ref).filter { event in
            (state == nil || event.to == state) && (detail == nil || event.detail?.contains(detail!) == true)
        }.count
    }

    @Test func aBrokenTimerDoesNotBlockTheOthers() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let broken = try await workflow.requestApproval(approvalRequest(1)).approval
            let healthy = try await workflow.requestApproval(approvalRequest(2)).approval
            // Damage the first approval's row so loading it fails.
            let sqlite = try #require(workflow.store as? SQLWorkflowStore)
            _ = try await sqlite.database.write([WriteStep(SQLStatement(
                "UPDATE approvals SET data = 'not json' WHERE id = ?", [.integer(broken.id.rawValue)]))])
            harness.clock.advance(by: 3600 + 1)
            #expect(try await workflow.fireDueTimers() == 1)
            #expect(try await workflow.approval(healthy.id).status.name == "expired")
            // The broken timer was pushed back a minute, not dropped and not retried in a hot loop.
            let timers = try await workflow.store.timers(of: broken.ref)
            #expect(timers.map(\.kind) == [.expiry])
            #expect(timers.first?.dueAt == harness.clock.now().addingTimeInterval(60))
            #expect(try await workflow.fireDueTimers() == 0)
        }
    }

    @Test func overdueTimersFireExactlyOnceAfterARestart() async throws {
        let harness = try WorkflowHarness()
        defer { harness.directory.remove() }

        let first = try await harness.open()
        let approval = try await first.requestApproval(approvalRequest(1)).approval
        let item = try await first.enqueue(reviewRequest("Is this refund allowed?"), by: "key:agent").item
        let claimed = try #require(try await first.claimNext(queue: "default", by: Who.alice))
        #expect(claimed.id == item.id)
        let escalation = try await first.escalate(escalationRequest(), by: "slack:U42")
        let feedback = try await first.requestFeedback(FeedbackRequestInput(kind: .rating, prompt: "Rate the answer", channel: "support"),
                                                       by: "key:agent")
        try await first.store.close()

        // Down for a day: every deadline passes while nothing runs.
        harness.clock.advance(.hours(25))
        let second = try await harness.open()
        let fired = try await second.fireDueTimers()
        // Approval expiry, review lease and SLA, escalation SLA, feedback deadline.
        #expect(fired == 5)

        #expect(try await second.approval(approval.id).status == .expired(at: harness.clock.now()))
        #expect(try await auditCount(second, approval.ref, to: "expired") == 1)

        let storedItem = try await second.reviewItem(item.id)
        #expect(storedItem.status == .pending)
        #expect(storedItem.slaBreached)
        #expect(try await auditCount(second, item.ref, detail: "lapsed") == 1)
        #expect(try await auditCount(second, item.ref, detail: "SLA breached") == 1)

        let storedEscalation = try await second.escalation(escalation.id)
        #expect(storedEscalation.tierName == "expert")
        #expect(try await auditCount(second, escalation.ref, to: "open@expert") == 1)

        #expect(try await second.feedback(feedback.id).status == .expired(at: harness.clock.now()))

        // Nothing fires twice, from this instance or a third one.
        #expect(try await second.fireDueTimers() == 0)
        try await second.store.close()
        let third = try await harness.open()
        #expect(try await third.fireDueTimers() == 0)
        #expect(try await auditCount(third, approval.ref, to: "expired") == 1)
        // The escalation's next SLA is still ahead.
        #expect(try await third.store.timers(of: escalation.ref).map(\.dueAt) == [harness.clock.now().addingTimeInterval(4 * 3600)])
        try await third.store.close()
    }

    @Test func twoInstancesFiringTogetherFireEachTimerOnce() async throws {
        let harness = try WorkflowHarness()
        defer { harness.directory.remove() }
        let a = try await harness.open()
        let b = try await harness.open()
        var approvals: [Approval] = []
        for n in 0..<12 { approvals.append(try await a.requestApproval(approvalRequest(n, policy: n % 2 == 0 ? "default" : "escalating")).approval) }

        harness.clock.advance(.hours(1))
        async let firedByA = a.fireDueTimers()
        async let firedByB = b.fireDueTimers()
        let total = try await firedByA + firedByB
        #expect(total == 12)
        for approval in approvals {
            let events = try await a.store.audit(of: approval.ref).filter { $0.actor == .system }
            #expect(events.count == 1, "approval #\(approval.id): \(events.map(\.detail))")
        }
        // The escalated half got a fresh deadline; the rest are expired.
        let stored = try await a.approvals(limit: 50)
        #expect(stored.filter { $0.status.name == "expired" }.count == 6)
        #expect(stored.filter { $0.deciders == ["managers"] && $0.status == .pending }.count == 6)

        // Their second lapse also fires once.
        harness.clock.advance(.hours(1))
        async let againA = a.fireDueTimers()
        async let againB = b.fireDueTimers()
        #expect(try await againA + againB == 6)
        #expect(try await a.approvals(status: "expired").count == 12)
        #expect(try await a.store.dueTimers(now: .distantFuture, limit: 100).isEmpty)
        try await a.store.close()
        try await b.store.close()
    }

    @Test func aLapsedLeaseReturnsTheItemToTheQueue() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let item = try await workflow.enqueue(reviewRequest("Can I get a refund?"), by: "key:agent").item
            let claimed = try #require(try await workflow.claimNext(queue: "default", by: Who.alice))
            #expect(claimed.leaseHolder == "slack:alice")
            #expect(try await workflow.claimNext(queue: "default", by: Who.bob) == nil)

            harness.clock.advance(.minutes(10))
            #expect(try await workflow.fireDueTimers() == 0)
            #expect(try await workflow.reviewItem(item.id).leaseHolder == "slack:alice")

            harness.clock.advance(.minutes(5))
            #expect(try await workflow.fireDueTimers() == 1)
            #expect(try await workflow.reviewItem(item.id).status == .pending)
            let notices = try await workflow.store.outbox(of: item.ref).filter { $0.kind == .notify }
            #expect(notices.count == 1)
            #expect(try jsonObject(try #require(notices.first).payload)["text"] as? String
                == "Your claim on review item #\(item.id) lapsed; it is back in the queue.")

            // Alice's late submit is refused; Bob can take it.
            await expectWorkflowError(.wrongState, "not claimed") {
                try await workflow.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: nil, by: Who.alice)
            }
            #expect(try await workflow.claimNext(queue: "default", by: Who.bob)?.id == item.id)
        }
    }

    @Test func anUnclaimedEscalationClimbsTheTiersThenBreaches() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let escalation = try await workflow.escalate(escalationRequest(), by: "slack:U42")
            #expect(escalation.tierName == "agent")
            #expect(try await workflow.store.outbox(of: escalation.ref).compactMap(\.destination) == ["agents"])

            harness.clock.advance(.minutes(30))
            #expect(try await workflow.fireDueTimers() == 1)
            let atExpert = try await workflow.escalation(escalation.id)
            #expect(atExpert.tierName == "expert")
            let outbox = try await workflow.store.outbox(of: escalation.ref)
            #expect(outbox.filter { $0.kind == .postCard }.compactMap(\.destination) == ["agents", "experts"])
            let told = try outbox.filter { $0.kind == .notify }.map { try jsonObject($0.payload)["origin"] as? String }
            #expect(told == ["slack:C42/1700000000.000100", "slack:C42/1700000000.000100"])
            await expectWorkflowError(.notAllowed, "expert tier") { try await workflow.claimEscalation(escalation.id, by: Who.ana) }

            harness.clock.advance(.hours(4))
            #expect(try await workflow.fireDueTimers() == 1)
            let breached = try await workflow.escalation(escalation.id)
            #expect(breached.breached)
            #expect(breached.status.name == "open")

            harness.clock.advance(.hours(24))
            #expect(try await workflow.fireDueTimers() == 0)
            #expect(try await auditCount(workflow, escalation.ref, detail: "SLA breached") == 1)

            // An expert can still pick it up and answer.
            _ = try await workflow.claimEscalation(escalation.id, by: Who.eve)
            let resolved = try await workflow.resolveEscalation(escalation.id, resolution: "Refunded the duplicate.", by: Who.eve)
            #expect(resolved.status.name == "resolved")
            #expect(try await workflow.store.timers(of: escalation.ref).isEmpty)
        }
    }

    @Test func aClaimedEscalationReopensWhenTheAckTimesOut() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let escalation = try await workflow.escalate(escalationRequest(origin: nil), by: "slack:U42")
            _ = try await workflow.claimEscalation(escalation.id, by: Who.ana)
            #expect(try await workflow.store.timers(of: escalation.ref).map(\.kind) == [.ackTimeout])

            // The SLA no longer runs while it is claimed.
            harness.clock.advance(.hours(1))
            #expect(try await workflow.fireDueTimers() == 0)
            #expect(try await workflow.escalation(escalation.id).tierName == "agent")

            harness.clock.advance(.hours(1))
            #expect(try await workflow.fireDueTimers() == 1)
            let reopened = try await workflow.escalation(escalation.id)
            #expect(reopened.status == .open(since: harness.clock.now()))
            #expect(reopened.tierName == "agent")
            #expect(try await workflow.store.timers(of: escalation.ref).map(\.kind) == [.sla])
        }
    }

    @Test func anEarlyTimerOnlyReschedules() async throws {
        try await WorkflowHarness.with { harness, workflow in
            let approval = try await workflow.requestApproval(approvalRequest(1)).approval
            // Someone moved the row earlier than the approval's deadline (e.g. an old scheduler's clock).
            var move = ChangeSet()
            move.timers.append(.schedule(approval.ref, .expiry, at: harness.clock.now().addingTimeInterval(60)))
            try await workflow.store.commit(move, now: harness.clock.now())
            harness.clock.advance(by: 60)
            #expect(try await workflow.fireDueTimers() == 1)
            #expect(try await workflow.approval(approval.id).status == .pending)
            #expect(try await workflow.store.timers(of: approval.ref).map(\.dueAt) == [approval.expiresAt])
            #expect(try await auditCount(workflow, approval.ref) == 1)
        }
    }
}
