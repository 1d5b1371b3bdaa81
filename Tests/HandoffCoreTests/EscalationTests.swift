import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Escalation tiers")
struct EscalationTests {
    let clock = ManualClock()
    let config = EscalationConfig()
    let directory = People.directory
    let ana = Actor("slack:ana")
    let andy = Actor("slack:andy")
    let eve = Actor("slack:eve")

    func open(origin: String? = "slack:C1/1700000000.0001", tier: String? = nil) throws(WorkflowError) -> Transition<Escalation> {
        let request = EscalationRequest(query: "My card was charged twice", trigger: .userAsked(phrase: "talk to a human"),
                                        requester: "slack:U42", origin: origin, tier: tier)
        return try EscalationMachine.open(id: EscalationID(5), request: request, config: config, by: "slack:U42", now: clock.now())
    }

    @Test func defaultTiersAreAIAgentExpert() {
        #expect(config.tiers.map(\.name) == ["ai", "agent", "expert"])
        #expect(config.firstHumanTier == 1)
    }

    @Test func opensAtTheAgentTier() throws {
        let t = try open()
        #expect(t.entity.tierName == "agent")
        #expect(t.entity.tier == 1)
        #expect(t.entity.status == .open(since: clock.now()))
        #expect(t.effects.scheduled(.sla) == clock.now().addingTimeInterval(1800))
        #expect(t.effects.postedDestinations == ["agents"])
        #expect(t.effects.notices.map(\.audience) == [.origin])
        #expect(t.audit.first?.detail?.contains("at tier agent") == true)
    }

    @Test func noOriginMeansNoOneToNotify() throws {
        #expect(try open(origin: nil).effects.notices.isEmpty)
    }

    @Test func openingValidatesTheQueryAndTier() {
        expectRefusal(.invalid, field: "query") {
            try EscalationMachine.open(id: EscalationID(1), request: EscalationRequest(query: " ", trigger: .manual("x")), config: config,
                                       by: "slack:U1", now: clock.now())
        }
        expectRefusal(.invalid, "not a configured tier", field: "tier") { try open(tier: "vip").entity }
        expectRefusal(.invalid, "no group", field: "tier") { try open(tier: "ai").entity }
    }

    @Test func aMemberClaimStopsTheSLAAndStartsTheAckTimeout() throws {
        let opened = try open().entity
        clock.advance(by: 60)
        let t = try EscalationMachine.claim(opened, by: ana, config: config, directory: directory, now: clock.now())
        #expect(t.entity.status == .claimed(by: "slack:ana", at: clock.now()))
        #expect(t.effects.contains(.cancel(.sla)))
        #expect(t.effects.scheduled(.ackTimeout) == clock.now().addingTimeInterval(7200))
        #expect(t.effects.notices.first?.text.contains("@ana") == true)
        expectRefusal(.wrongState, "already claimed by @slack:ana") {
            try EscalationMachine.claim(t.entity, by: andy, config: config, directory: directory, now: clock.now())
        }
    }

    @Test func aNonMemberMayNotClaim() throws {
        let opened = try open().entity
        // An expert is not an agent.
        expectRefusal(.notAllowed, "agent tier", "only agents") {
            try EscalationMachine.claim(opened, by: eve, config: config, directory: directory, now: clock.now())
        }
        expectRefusal(.notAllowed) {
            try EscalationMachine.claim(opened, by: People.mallory, config: config, directory: directory, now: clock.now())
        }
    }

    @Test func anAckTimeoutReopensAtTheSameTier() throws {
        let claimed = try EscalationMachine.claim(try open().entity, by: ana, config: config, directory: directory, now: clock.now()).entity
        clock.advance(.hours(1))
        let early = try #require(EscalationMachine.ackLapsed(claimed, config: config, now: clock.now()))
        #expect(early.entity == claimed)
        #expect(early.effects == [.schedule(.ackTimeout, at: clock.now().addingTimeInterval(3600))])

        clock.advance(.hours(1))
        let t = try #require(EscalationMachine.ackLapsed(claimed, config: config, now: clock.now()))
        #expect(t.entity.status == .open(since: clock.now()))
        #expect(t.entity.tierName == "agent")
        #expect(t.effects.scheduled(.sla) == clock.now().addingTimeInterval(1800))
        #expect(t.effects.notices.map(\.audience) == [.person("slack:ana")])
        // Another agent may claim it now.
        #expect(try EscalationMachine.claim(t.entity, by: andy, config: config, directory: directory, now: clock.now()).entity.status.name == "claimed")
    }

    @Test func anSLALapseMovesToTheNextTierThenBreachesOnceAtTheTop() throws {
        let opened = try open().entity
        clock.advance(by: 1799)
        let early = try #require(EscalationMachine.slaLapsed(opened, config: config, now: clock.now()))
        #expect(early.entity == opened)
        #expect(early.effects == [.schedule(.sla, at: clock.now().addingTimeInterval(1))])

        clock.advance(by: 1)
        let up = try #require(EscalationMachine.slaLapsed(opened, config: config, now: clock.now()))
        #expect(up.entity.tierName == "expert")
        #expect(up.entity.tier == 2)
        #expect(up.entity.status == .open(since: clock.now()))
        #expect(up.effects.postedDestinations == ["experts"])
        #expect(up.effects.scheduled(.sla) == clock.now().addingTimeInterval(4 * 3600))
        #expect(up.effects.notices.map(\.audience) == [.origin])
        #expect(up.audit.first?.to == "open@expert")
        // Agents no longer claim it; experts do.
        expectRefusal(.notAllowed, "expert tier") {
            try EscalationMachine.claim(up.entity, by: ana, config: config, directory: directory, now: clock.now())
        }

        clock.advance(.hours(4))
        let breached = try #require(EscalationMachine.slaLapsed(up.entity, config: config, now: clock.now()))
        #expect(breached.entity.breached)
        #expect(breached.entity.status == up.entity.status)
        #expect(breached.entity.tierName == "expert")
        #expect(breached.audit.count == 1)
        #expect(breached.effects.postedDestinations.isEmpty)
        #expect(EscalationMachine.slaLapsed(breached.entity, config: config, now: clock.now().addingTimeInterval(86_400)) == nil)
    }

    @Test func theClaimerOrATierMemberResolves() throws {
        let opened = try open().entity
        let claimed = try EscalationMachine.claim(opened, by: ana, config: config, directory: directory, now: clock.now()).entity
        let t = try EscalationMachine.resolve(claimed, resolution: "Refunded the duplicate charge.", by: ana, config: config,
                                              directory: directory, now: clock.now())
        #expect(t.entity.status == .resolved(by: "slack:ana", at: clock.now(), resolution: "Refunded the duplicate charge."))
        #expect(t.effects.contains(.cancel(.sla)))
        #expect(t.effects.contains(.cancel(.ackTimeout)))
        #expect(t.effects.contains(.webhook(event: "escalation.resolved")))
        #expect(t.effects.notices == [Notice(.origin, "Refunded the duplicate charge.")])
        expectRefusal(.wrongState, "already resolved by @slack:ana") {
            try EscalationMachine.resolve(t.entity, resolution: "again", by: andy, config: config, directory: directory, now: clock.now())
        }

        // Another agent may resolve an open one; an outsider may not.
        #expect(try EscalationMachine.resolve(opened, resolution: "done", by: andy, config: config, directory: directory,
                                              now: clock.now()).entity.status.name == "resolved")
        expectRefusal(.notAllowed, "only agents") {
            try EscalationMachine.resolve(opened, resolution: "done", by: eve, config: config, directory: directory, now: clock.now())
        }
    }

    @Test func aResolutionIsRequired() throws {
        let opened = try open().entity
        expectRefusal(.invalid, "required", field: "resolution") {
            try EscalationMachine.resolve(opened, resolution: "  \n", by: ana, config: config, directory: directory, now: clock.now())
        }
    }

    @Test func raisingMovesUpButNotPastTheTop() throws {
        let opened = try open().entity
        expectRefusal(.notAllowed) {
            try EscalationMachine.raise(opened, reason: nil, by: People.mallory, config: config, directory: directory, now: clock.now())
        }
        // The waiting user may push it up.
        let up = try EscalationMachine.raise(opened, reason: "still waiting", by: Actor("slack:U42"), config: config,
                                             directory: directory, now: clock.now())
        #expect(up.entity.tierName == "expert")
        #expect(up.audit.first?.detail == "still waiting")
        expectRefusal(.wrongState, "already at the top tier (expert)") {
            try EscalationMachine.raise(up.entity, reason: nil, by: eve, config: config, directory: directory, now: clock.now())
        }
    }
}
