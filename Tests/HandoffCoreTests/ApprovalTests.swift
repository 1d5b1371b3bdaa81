import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Approvals")
struct ApprovalTests {
    let clock = ManualClock()
    let directory = People.directory
    let arguments = args(["to": .string("acct-9"), "amount": .int(250), "memo": .string("rent")])

    func create(
        policy: ApprovalPolicy = ApprovalPolicy(), requester: ActorID = People.agentBot, arguments: JSONValue? = nil,
        callbackURL: String? = nil
    ) throws -> Approval {
        let request = ApprovalRequest(action: "transfer_funds", arguments: arguments ?? self.arguments, requester: requester,
                                      callbackURL: callbackURL)
        return try ApprovalMachine.create(id: ApprovalID(7), request: request, policy: policy, now: clock.now()).entity
    }

    func decide(
        _ a: Approval, _ verdict: Verdict, _ comment: String? = nil, by actor: Actor, hash: String? = nil,
        allowDefaultReason: Bool = false
    ) throws(WorkflowError) -> Approval {
        try ApprovalMachine.decide(a, verdict: verdict, comment: comment, by: actor, directory: directory, now: clock.now(),
                                   argumentsHash: hash, allowDefaultReason: allowDefaultReason).entity
    }

    // MARK: Creation

    @Test func createPostsACardAndSchedulesExpiry() throws {
        let request = ApprovalRequest(action: "  transfer_funds ", arguments: arguments, requester: People.agentBot)
        let t = try ApprovalMachine.create(id: ApprovalID(7), request: request, policy: ApprovalPolicy(expiresAfter: .hours(2)), now: clock.now())
        #expect(t.entity.action == "transfer_funds")
        #expect(t.entity.status == .pending)
        #expect(t.entity.expiresAt == clock.now().addingTimeInterval(7200))
        #expect(t.entity.argumentsHash == arguments.canonicalHash)
        #expect(t.effects.scheduled(.expiry) == clock.now().addingTimeInterval(7200))
        #expect(t.effects.postedDestinations == ["approvals"])
        #expect(t.audit.map(\.to) == ["pending"])
    }

    @Test func createRejectsAnEmptyAction() {
        for action in ["", "   ", "\n"] {
            let request = ApprovalRequest(action: action, arguments: arguments, requester: People.agentBot)
            expectRefusal(.invalid, "required", field: "action") {
                try ApprovalMachine.create(id: ApprovalID(1), request: request, policy: ApprovalPolicy(), now: clock.now())
            }
        }
    }

    @Test(arguments: ["ftp://example.com/hook", "not a url", "javascript:alert(1)", "https://", "file:///etc/passwd"])
    func createRejectsABadCallbackURL(url: String) {
        let request = ApprovalRequest(action: "deploy", arguments: .null, requester: People.agentBot, callbackURL: url)
        expectRefusal(.invalid, "http", field: "callback_url") {
            try ApprovalMachine.create(id: ApprovalID(1), request: request, policy: ApprovalPolicy(), now: clock.now())
        }
    }

    @Test func createAcceptsAnHTTPSCallback() throws {
        let approval = try create(callbackURL: "https://agent.example.com/hooks/approval?x=1")
        #expect(approval.callbackURL == "https://agent.example.com/hooks/approval?x=1")
    }

    // MARK: Quorum

    @Test func quorumOfTwoNeedsTwoDifferentApprovers() throws {
        var a = try create(policy: ApprovalPolicy(quorum: 2))
        a = try decide(a, .approve, by: People.alice)
        #expect(a.status == .pending)
        #expect(a.votes.map(\.by) == ["slack:alice"])

        // The same approver twice counts once.
        expectRefusal(.wrongState, "already approved", "1 more") { try decide(a, .approve, by: People.alice) }

        a = try decide(a, .approve, "looks right", by: People.bob)
        guard case .approved(let decision) = a.status else { Issue.record("expected approved, got \(a.status)"); return }
        #expect(decision.by == ["slack:alice", "slack:bob"])
        #expect(decision.comment == "looks right")
        #expect(decision.automatic == false)
    }

    @Test func quorumVoteAuditSaysHowManyMoreAreNeeded() throws {
        let a = try create(policy: ApprovalPolicy(quorum: 3))
        let t = try ApprovalMachine.decide(a, verdict: .approve, comment: nil, by: People.alice, directory: directory, now: clock.now())
        #expect(t.audit.first?.detail == "approval 1 of 3; 2 more needed")
        #expect(t.effects == [.updateCards])
    }

    @Test func withdrawingAVoteBeforeQuorumTakesItBack() throws {
        var a = try create(policy: ApprovalPolicy(quorum: 2))
        a = try decide(a, .approve, by: People.alice)
        a = try ApprovalMachine.withdrawVote(a, by: People.alice, now: clock.now()).entity
        #expect(a.votes.isEmpty)
        // Bob's approval is now the only one: still pending.
        a = try decide(a, .approve, by: People.bob)
        #expect(a.status == .pending)
        #expect(a.votes.map(\.by) == ["slack:bob"])
        // Alice may approve again after withdrawing; that completes the quorum.
        a = try decide(a, .approve, by: People.alice)
        #expect(a.status.name == "approved")
    }

    @Test func withdrawingWithoutAVoteOrAfterTheDecisionIsRefused() throws {
        let pending = try create(policy: ApprovalPolicy(quorum: 2))
        expectRefusal(.wrongState, "have not approved") { try ApprovalMachine.withdrawVote(pending, by: People.bob, now: clock.now()) }
        let oneVote = try decide(pending, .approve, by: People.alice)
        let decided = try decide(oneVote, .approve, by: People.bob)
        expectRefusal(.wrongState, "already approved") { try ApprovalMachine.withdrawVote(decided, by: People.alice, now: clock.now()) }
    }

    // MARK: Who may decide

    @Test func theRequesterMayNotDecideTheirOwnRequestEvenAsAdmin() throws {
        let a = try create(requester: "slack:alice")
        expectRefusal(.notAllowed, "requester cannot decide") { try decide(a, .approve, by: People.alice) }
        expectRefusal(.notAllowed, "requester cannot decide") { try decide(a, .approve, by: Actor("slack:alice", isAdmin: true)) }
        // Someone else still may.
        #expect(try decide(a, .approve, by: People.bob).status.name == "approved")
    }

    @Test func theRequesterMayDecideWhenThePolicyAllowsIt() throws {
        let a = try create(policy: ApprovalPolicy(requesterMayDecide: true), requester: "slack:alice")
        #expect(try decide(a, .approve, by: People.alice).status.name == "approved")
    }

    @Test func aNonMemberIsToldTheyAreNotAnApprover() throws {
        let a = try create()
        expectRefusal(.notAllowed, "not an approver", "#7", "approvers") { try decide(a, .approve, by: People.mallory) }
        expectRefusal(.notAllowed, "not an approver") { try decide(a, .reject, "no", by: People.meg) }
    }

    @Test func anAdminActorMayDecideWithoutMembership() throws {
        let a = try create()
        let decided = try decide(a, .reject, "not today", by: People.root)
        #expect(decided.status.decision?.by == ["cli:root"])
    }

    // MARK: Reject and revise

    @Test func rejectRequiresAReason() throws {
        let a = try create()
        expectRefusal(.invalid, "required to reject", field: "reason") { try decide(a, .reject, nil, by: People.alice) }
        expectRefusal(.invalid, field: "reason") { try decide(a, .reject, "   ", by: People.alice) }
        let rejected = try decide(a, .reject, "  too risky  ", by: People.alice)
        guard case .rejected(let d) = rejected.status else { Issue.record("expected rejected"); return }
        #expect(d.comment == "too risky")
        #expect(d.by == ["slack:alice"])
    }

    @Test func rejectUsesTheConfiguredDefaultReasonWhereThePlatformCannotAsk() throws {
        let a = try create(policy: ApprovalPolicy(defaultRejectReason: "rejected with a reaction"))
        let rejected = try decide(a, .reject, nil, by: People.alice, allowDefaultReason: true)
        #expect(rejected.status.decision?.comment == "rejected with a reaction")
        // A typed reason still wins over the default.
        let typed = try decide(a, .reject, "wrong account", by: People.alice, allowDefaultReason: true)
        #expect(typed.status.decision?.comment == "wrong account")
        // Without a configured default there is nothing to stand in.
        let plain = try create()
        expectRefusal(.invalid, field: "reason") { try decide(plain, .reject, nil, by: People.alice, allowDefaultReason: true) }
    }

    @Test func needsRevisionRequiresAComment() throws {
        let a = try create()
        expectRefusal(.invalid, "revision", field: "comment") { try decide(a, .revise, nil, by: People.alice) }
        let revised = try decide(a, .revise, "use the EUR account", by: People.alice)
        #expect(revised.status.name == "needs_revision")
        #expect(revised.status.decision?.comment == "use the EUR account")
    }

    @Test func aDecisionCancelsExpiryAndNotifiesTheCaller() throws {
        let a = try create()
        let t = try ApprovalMachine.decide(a, verdict: .approve, comment: nil, by: People.alice, directory: directory, now: clock.now())
        #expect(t.effects == [.cancel(.expiry), .updateCards, .webhook(event: "approval.decided")])
        #expect(t.audit.map(\.to) == ["approved"])
        #expect(t.audit.first?.actor == "slack:alice")
    }

    // MARK: Compare-and-set and expiry of decisions

    @Test func aSecondDecisionIsRefusedAndNamesWhoDecided() throws {
        let a = try create()
        let rejected = try decide(a, .reject, "too risky", by: People.alice)
        let error = expectRefusal(.wrongState, "already decided", "rejected", "@slack:alice") {
            try decide(rejected, .approve, by: People.bob)
        }
        #expect(error != nil)
        // Refusals return no transition; the approval the caller holds is the rejected one, untouched.
        #expect(rejected.status.decision?.by == ["slack:alice"])
        expectRefusal(.wrongState, "already decided") { try decide(rejected, .reject, "me too", by: People.carol) }
    }

    @Test func aDecisionAfterTheDeadlineIsRefusedAsExpired() throws {
        let a = try create(policy: ApprovalPolicy(expiresAfter: .hours(1)))
        clock.advance(by: 3599)
        #expect(try decide(a, .approve, by: People.alice).status.name == "approved")
        clock.advance(by: 1)
        expectRefusal(.wrongState, "expired") { try decide(a, .approve, by: People.alice) }
    }

    // MARK: Argument binding and the execution grant

    @Test func decidingWithADifferentArgumentsHashIsRefused() throws {
        let a = try create()
        let other = args(["to": .string("acct-666"), "amount": .int(250), "memo": .string("rent")])
        expectRefusal(.invalid, "not the ones you reviewed", field: "arguments_hash") {
            try decide(a, .approve, by: People.alice, hash: other.canonicalHash)
        }
        #expect(try decide(a, .approve, by: People.alice, hash: arguments.canonicalHash).status.name == "approved")
    }

    @Test func consumeWorksOnceAndOnlyForTheApprovedArguments() throws {
        let approved = try decide(try create(), .approve, by: People.alice)
        let requester = Actor(People.agentBot)

        let tampered = args(["to": .string("acct-9"), "amount": .int(25_000), "memo": .string("rent")])
        expectRefusal(.notAllowed, "arguments differ") {
            try ApprovalMachine.consume(approved, argumentsHash: tampered.canonicalHash, by: requester, now: clock.now())
        }
        expectRefusal(.notAllowed, "only the requester") {
            try ApprovalMachine.consume(approved, argumentsHash: arguments.canonicalHash, by: People.bob, now: clock.now())
        }

        // The same arguments written in another key order are the same arguments.
        let reordered = try JSONValue.parse(#"{"memo": "rent", "amount": 250, "to": "acct-9"}"#)
        let consumed = try ApprovalMachine.consume(approved, argumentsHash: reordered.canonicalHash, by: requester, now: clock.now()).entity
        #expect(consumed.execution == .consumed(at: clock.now(), by: People.agentBot))

        expectRefusal(.wrongState, "already used") {
            try ApprovalMachine.consume(consumed, argumentsHash: arguments.canonicalHash, by: requester, now: clock.now())
        }
    }

    @Test func consumeIsRefusedUnlessApproved() throws {
        let pending = try create()
        let requester = Actor(People.agentBot)
        expectRefusal(.wrongState, "pending", "nothing to execute") {
            try ApprovalMachine.consume(pending, argumentsHash: arguments.canonicalHash, by: requester, now: clock.now())
        }
        let rejected = try decide(pending, .reject, "no", by: People.alice)
        expectRefusal(.wrongState, "rejected") {
            try ApprovalMachine.consume(rejected, argumentsHash: arguments.canonicalHash, by: requester, now: clock.now())
        }
    }

    @Test func theOutcomeIsReportedOnceAndAFailureNeedsAMessage() throws {
        let requester = Actor(People.agentBot)
        let approved = try decide(try create(), .approve, by: People.alice)
        expectRefusal(.wrongState, "consume the grant first") {
            try ApprovalMachine.reportOutcome(approved, outcome: .succeeded, by: requester, now: clock.now())
        }
        let consumed = try ApprovalMachine.consume(approved, argumentsHash: arguments.canonicalHash, by: requester, now: clock.now()).entity
        expectRefusal(.invalid, field: "message") {
            try ApprovalMachine.reportOutcome(consumed, outcome: .failed(message: "  "), by: requester, now: clock.now())
        }
        clock.advance(by: 5)
        let t = try ApprovalMachine.reportOutcome(consumed, outcome: .failed(message: "bank timeout"), by: requester, now: clock.now())
        #expect(t.entity.execution.name == "failed")
        #expect(t.audit.first?.detail == "bank timeout")
        #expect(t.effects.contains(.webhook(event: "approval.executed")))
        expectRefusal(.wrongState, "already reported") {
            try ApprovalMachine.reportOutcome(t.entity, outcome: .succeeded, by: requester, now: clock.now())
        }
    }

    // MARK: Cancel

    @Test func onlyTheRequesterOrAnAdminMayCancel() throws {
        let a = try create()
        expectRefusal(.notAllowed, "only the requester") { try ApprovalMachine.cancel(a, by: People.alice, reason: nil, now: clock.now()) }
        let t = try ApprovalMachine.cancel(a, by: Actor(People.agentBot), reason: "plan changed", now: clock.now())
        #expect(t.entity.status == .cancelled(by: People.agentBot, at: clock.now(), reason: "plan changed"))
        #expect(t.effects.contains(.cancel(.expiry)))
        #expect(t.effects.contains(.webhook(event: "approval.cancelled")))
        expectRefusal(.wrongState, "already cancelled") {
            try ApprovalMachine.cancel(t.entity, by: Actor(People.agentBot), reason: nil, now: clock.now())
        }
        expectRefusal(.wrongState, "cancelled by @key:agent") { try decide(t.entity, .approve, by: People.alice) }
        // An admin may cancel someone else's request.
        #expect(try ApprovalMachine.cancel(a, by: People.root, reason: nil, now: clock.now()).entity.status.name == "cancelled")
    }

    // MARK: Expiry policies

    @Test func expiryWithRejectEndsExpired() throws {
        let a = try create(policy: ApprovalPolicy(expiresAfter: .hours(1), onExpiry: .reject))
        clock.advance(by: 3600)
        let t = try #require(ApprovalMachine.expire(a, now: clock.now()))
        #expect(t.entity.status == .expired(at: clock.now()))
        #expect(t.audit.map(\.to) == ["expired"])
        #expect(t.audit.first?.actor == .system)
        #expect(t.effects.contains(.webhook(event: "approval.decided")))
        #expect(t.effects.scheduled(.expiry) == nil)
        // Nothing more happens to an expired approval.
        #expect(ApprovalMachine.expire(t.entity, now: clock.now()) == nil)
    }

    @Test func expiryWithApproveApprovesAutomatically() throws {
        let a = try create(policy: ApprovalPolicy(expiresAfter: .hours(1), onExpiry: .approve))
        clock.advance(by: 3600)
        let approved = try #require(ApprovalMachine.expire(a, now: clock.now())).entity
        guard case .approved(let d) = approved.status else { Issue.record("expected approved, got \(approved.status)"); return }
        #expect(d.automatic)
        #expect(d.by == [.system])
        expectRefusal(.wrongState, "by the expiry policy") { try decide(approved, .reject, "late", by: People.alice) }
        // The grant of an automatic approval can be used.
        let consumed = try ApprovalMachine.consume(approved, argumentsHash: arguments.canonicalHash, by: Actor(People.agentBot), now: clock.now())
        #expect(consumed.entity.execution.name == "consumed")
    }

    @Test func expiryWithExtendMovesTheDeadlineOnceThenExpires() throws {
        let a = try create(policy: ApprovalPolicy(expiresAfter: .hours(1), onExpiry: .extend(by: .minutes(30))))
        clock.advance(by: 3600)
        let first = try #require(ApprovalMachine.expire(a, now: clock.now()))
        #expect(first.entity.status == .pending)
        #expect(first.entity.expiryStage == .extended)
        #expect(first.entity.expiresAt == clock.now().addingTimeInterval(1800))
        #expect(first.effects.scheduled(.expiry) == clock.now().addingTimeInterval(1800))
        #expect(first.audit.first?.detail?.contains("extended") == true)
        // Still decidable inside the extension.
        clock.advance(by: 60)
        #expect(try decide(first.entity, .approve, by: People.alice).status.name == "approved")
        // A second lapse ends it.
        clock.advance(by: 1740)
        let second = try #require(ApprovalMachine.expire(first.entity, now: clock.now()))
        #expect(second.entity.status == .expired(at: clock.now()))
    }

    @Test func expiryWithEscalateHandsTheDecisionToAnotherGroupThenExpires() throws {
        var a = try create(policy: ApprovalPolicy(quorum: 2, expiresAfter: .hours(1), onExpiry: .escalate(group: "managers", extra: .hours(2))))
        a = try decide(a, .approve, by: People.alice)
        clock.advance(by: 3600)
        let first = try #require(ApprovalMachine.expire(a, now: clock.now()))
        #expect(first.entity.status == .pending)
        #expect(first.entity.deciders == ["managers"])
        #expect(first.entity.votes.isEmpty)
        #expect(first.entity.expiryStage == .escalated)
        #expect(first.effects.postedDestinations == ["managers"])
        #expect(first.effects.scheduled(.expiry) == clock.now().addingTimeInterval(7200))
        // The original approvers no longer decide; the managers do.
        expectRefusal(.notAllowed, "not an approver", "managers") { try decide(first.entity, .approve, by: People.bob) }
        let byMeg = try decide(first.entity, .reject, "over budget", by: People.meg)
        #expect(byMeg.status.decision?.by == ["slack:meg"])
        // Nobody decides within the extra window either: expired.
        clock.advance(by: 7200)
        let second = try #require(ApprovalMachine.expire(first.entity, now: clock.now()))
        #expect(second.entity.status == .expired(at: clock.now()))
        #expect(second.audit.first?.detail?.contains("escalated") == true)
    }

    @Test func expiryBeforeTheDeadlineOnlyReschedules() throws {
        let a = try create(policy: ApprovalPolicy(expiresAfter: .hours(1)))
        clock.advance(by: 1800)
        let t = try #require(ApprovalMachine.expire(a, now: clock.now()))
        #expect(t.entity == a)
        #expect(t.entity.status == .pending)
        #expect(t.audit.isEmpty)
        #expect(t.effects == [.schedule(.expiry, at: a.expiresAt)])
    }

    @Test func expiryOfADecidedApprovalDoesNothing() throws {
        let decided = try decide(try create(), .approve, by: People.alice)
        clock.advance(by: 86_400 * 2)
        #expect(ApprovalMachine.expire(decided, now: clock.now()) == nil)
    }
}
