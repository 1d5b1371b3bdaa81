import Foundation
import HandoffCore
import HandoffWorkflow
import Testing

@Suite("Policy file")
struct PolicyFileTests {
    static let yaml = """
        groups:
          approvers: [slack:U0ALICE, key:alice]
          managers: [slack:U0MEG]
          reviewers: [slack:U0CAROL]
          agents: [slack:U0DAVE]
          experts: [slack:U0ERIN]
        approvals:
          payments:
            deciders: [approvers]
            quorum: 2
            expires_after: 1h30m
            on_expiry: escalate
            escalate_to: managers
            escalation_window: 30m
            default_reject_reason: "Rejected with a reaction"
            channel: payments
          reports:
            expires_after: 90
            on_expiry: extend
            extend_by: 2d
        queues:
          support:
            lease: 10m
            sla: 2h
            reviews_required: 2
            reviewers: [reviewers]
        routes:
          faq: {threshold: 0.75, queue: support, escalation_floor: 0.2, priority: high}
        escalation:
          tiers:
            - name: ai
            - {name: agent, group: agents, sla: 15m, ack_timeout: 1h, channel: support-agents}
            - {name: expert, group: experts, sla: 4h}
        feedback:
          deadline: 12h
        """

    @Test func aFullPolicyDecodes() throws {
        let policy = try PolicyFile.parse(Self.yaml)
        #expect(policy.directory.isMember("key:alice", of: "approvers"))
        #expect(!policy.directory.isMember("slack:U0MEG", of: "approvers"))

        let payments = try #require(policy.approvals["payments"])
        #expect(payments.quorum == 2)
        #expect(payments.expiresAfter.seconds == 5400)
        #expect(payments.onExpiry == .escalate(group: "managers", extra: Span(seconds: 1800)))
        #expect(payments.defaultRejectReason == "Rejected with a reaction")
        #expect(payments.channel == "payments")
        let reports = try #require(policy.approvals["reports"])
        #expect(reports.expiresAfter.seconds == 90)
        #expect(reports.onExpiry == .extend(by: Span(seconds: 172_800)))
        #expect(reports.deciders == ["approvers"])

        let support = try #require(policy.queues["support"])
        #expect(support.lease.seconds == 600)
        #expect(support.sla.seconds == 7200)
        #expect(support.reviewsRequired == 2)
        #expect(support.reviewers == ["reviewers"])

        let faq = try #require(policy.routes["faq"])
        #expect(faq.threshold == 0.75)
        #expect(faq.queue == "support")
        #expect(faq.escalationFloor == 0.2)
        #expect(faq.priority == .high)

        #expect(policy.escalation.tiers.map(\.name) == ["ai", "agent", "expert"])
        #expect(policy.escalation.firstHumanTier == 1)
        #expect(policy.escalation.tiers[1].sla.seconds == 900)
        #expect(policy.escalation.tiers[1].ackTimeout.seconds == 3600)
        #expect(policy.escalation.tiers[1].channel == "support-agents")
        #expect(policy.escalation.tiers[2].channel == "expert")
        #expect(policy.escalation.phrases == EscalationConfig.defaultPhrases)
        #expect(policy.feedback.deadline.seconds == 43_200)
    }

    @Test func anEmptyFileIsTheDefaultPolicy() throws {
        let policy = try PolicyFile.parse("  \n")
        #expect(policy.approvals.keys.sorted() == ["default"])
        #expect(policy.escalation.tiers.map(\.name) == ["ai", "agent", "expert"])
    }

    @Test func theShippedExampleLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("manifests/policies/handoff.example.yaml")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let policy = try PolicyFile.load(path: url.path)
        #expect(policy.approvals["default"] != nil)
    }

    func loadError(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        do {
            _ = try PolicyFile.parse(yaml, source: "handoff.yaml")
            Issue.record("expected the policy to be refused", sourceLocation: sourceLocation)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aPolicyNamingAMissingGroupIsAClearProblem() throws {
        let message = try #require(loadError("""
            groups:
              approvers: [slack:U1]
            approvals:
              deploy:
                deciders: [approvers, release-managers]
            """))
        #expect(message.contains("handoff.yaml"))
        #expect(message.contains("approvals.deploy.deciders names group 'release-managers', which is not under groups"))
    }

    @Test func escalateWithoutEscalateToIsAnError() throws {
        let message = try #require(loadError("""
            groups:
              approvers: [slack:U1]
            approvals:
              deploy:
                on_expiry: escalate
            """))
        #expect(message.contains("escalate_to"))
    }

    @Test func otherMistakesAreNamed() throws {
        #expect(try #require(loadError("approvals:\n  a:\n    on_expiry: explode\n")).contains("on_expiry must be reject, approve, escalate or extend"))
        #expect(try #require(loadError("approvals:\n  a:\n    expires_after: soon\n")).contains("'soon' is not a duration"))
        #expect(try #require(loadError("routes:\n  r:\n    queue: nowhere\n")).contains("routes.r.queue names queue 'nowhere'"))
        #expect(try #require(loadError("escalation:\n  tiers:\n    - name: only\n")).contains("at least two tiers"))
    }
}
