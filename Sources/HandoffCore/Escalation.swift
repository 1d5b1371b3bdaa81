import Foundation

/// Why a conversation was handed to a person.
package enum EscalationTrigger: Hashable, Sendable, Codable {
    /// The user asked for a person ("talk to a human").
    case userAsked(phrase: String)
    /// The AI's confidence was below the route's floor.
    case lowConfidence(Double)
    /// The AI answer admitted it cannot help.
    case cannotHelp(phrase: String)
    /// Someone escalated it by hand, with their reason.
    case manual(String)

    package var text: String {
        switch self {
        case .userAsked(let p): "the user asked for a person (\"\(p)\")"
        case .lowConfidence(let c): "AI confidence \(String(format: "%.2f", c)) is below the floor"
        case .cannotHelp(let p): "the AI answer says it cannot help (\"\(p)\")"
        case .manual(let reason): reason
        }
    }
}

package enum EscalationStatus: Hashable, Sendable, Codable {
    /// Waiting for a member of the tier's group; the SLA clock runs from `since`.
    case open(since: Date)
    /// Acknowledged: the SLA clock is stopped, the ack timeout runs.
    case claimed(by: ActorID, at: Date)
    case resolved(by: ActorID, at: Date, resolution: String)

    package var name: String {
        switch self {
        case .open: "open"
        case .claimed: "claimed"
        case .resolved: "resolved"
        }
    }

    package static let allNames = ["open", "claimed", "resolved"]
}

package struct Escalation: Hashable, Sendable, Codable {
    package var id: EscalationID
    /// The user's original question or message.
    package var query: String
    package var context: String?
    package var trigger: EscalationTrigger
    /// The end user who is waiting, when there is one.
    package var requester: ActorID?
    /// Where to send the answer back (an opaque conversation reference owned by the chat layer).
    package var origin: String?
    /// Index into the configured tiers.
    package var tier: Int
    package var tierName: String
    package var status: EscalationStatus
    /// The top tier's SLA lapsed; it stays open.
    package var breached: Bool
    package var createdAt: Date

    package var ref: EntityRef { EntityRef(kind: .escalation, id: id.rawValue) }
}

package struct EscalationRequest: Hashable, Sendable, Codable {
    package var query: String
    package var context: String?
    package var trigger: EscalationTrigger
    package var requester: ActorID?
    package var origin: String?
    /// Tier name to start at; default is the first tier people answer at.
    package var tier: String?

    package init(query: String, context: String? = nil, trigger: EscalationTrigger, requester: ActorID? = nil,
                 origin: String? = nil, tier: String? = nil)
    {
        self.query = query
        self.context = context
        self.trigger = trigger
        self.requester = requester
        self.origin = origin
        self.tier = tier
    }
}

package enum EscalationMachine {
    package static let maxTextLength = 20_000

    package static func open(
        id: EscalationID, request: EscalationRequest, config: EscalationConfig, by actor: ActorID, now: Date
    ) throws(WorkflowError) -> Transition<Escalation> {
        guard request.query.nilIfBlank != nil else { throw .invalid("query", "is required") }
        guard request.query.count <= maxTextLength else { throw .invalid("query", "is longer than \(maxTextLength) characters") }
        if let context = request.context, context.count > maxTextLength {
            throw .invalid("context", "is longer than \(maxTextLength) characters")
        }
        let tierIndex: Int
        if let name = request.tier {
            guard let index = config.tiers.firstIndex(where: { $0.name == name }) else {
                throw .invalid("tier", "'\(name)' is not a configured tier (\(config.tiers.map(\.name).joined(separator: ", ")))")
            }
            guard config.tiers[index].group != nil else { throw .invalid("tier", "'\(name)' has no group of people to answer") }
            tierIndex = index
        } else {
            tierIndex = config.firstHumanTier
        }
        let tier = config.tiers[tierIndex]
        let escalation = Escalation(
            id: id, query: request.query, context: request.context, trigger: request.trigger, requester: request.requester,
            origin: request.origin, tier: tierIndex, tierName: tier.name, status: .open(since: now), breached: false,
            createdAt: now)
        var effects: [Effect] = [.schedule(.sla, at: now + tier.sla), .postCard(destination: tier.channel)]
        if request.origin != nil {
            effects.append(.notify(Notice(.origin, "Thanks — I've passed this to a person on the \(tier.name) team. Someone will answer here.")))
        }
        return Transition(
            entity: escalation,
            audit: [AuditEvent(at: now, actor: actor, entity: escalation.ref, from: nil, to: "open",
                               detail: "at tier \(tier.name): \(request.trigger.text)")],
            effects: effects)
    }

    static func tier(_ e: Escalation, _ config: EscalationConfig) throws(WorkflowError) -> EscalationTier {
        guard e.tier < config.tiers.count else {
            throw .wrongState("escalation #\(e.id) is at tier \(e.tierName), which is no longer configured")
        }
        return config.tiers[e.tier]
    }

    static func isMember(_ actor: Actor, of tier: EscalationTier, _ directory: Directory) -> Bool {
        guard let group = tier.group else { return actor.isAdmin }
        return directory.mayActFor(actor, anyOf: [group])
    }

    /// A member of the current tier's group acknowledges: the SLA clock stops, the ack timeout starts.
    package static func claim(
        _ e: Escalation, by actor: Actor, config: EscalationConfig, directory: Directory, now: Date
    ) throws(WorkflowError) -> Transition<Escalation> {
        let tier = try tier(e, config)
        switch e.status {
        case .open: break
        case .claimed(let by, _):
            throw by == actor.id ? .wrongState("you already claimed escalation #\(e.id)")
                                 : .wrongState("escalation #\(e.id) is already claimed by @\(by)")
        case .resolved(let by, _, _):
            throw .wrongState("escalation #\(e.id) was already resolved by @\(by)")
        }
        guard isMember(actor, of: tier, directory) else {
            throw .notAllowed("escalation #\(e.id) is at the \(tier.name) tier; only \(tier.group ?? "admins") can claim it")
        }
        var next = e
        next.status = .claimed(by: actor.id, at: now)
        var effects: [Effect] = [.cancel(.sla), .schedule(.ackTimeout, at: now + tier.ackTimeout), .updateCards]
        if e.origin != nil {
            effects.append(.notify(Notice(.origin, "A person (@\(actor.id.localPart)) is looking at your question now.")))
        }
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: e.ref, from: "open", to: "claimed", detail: "at tier \(tier.name)")],
            effects: effects)
    }

    /// The claimer, any member of the current tier, or an admin resolves; the user gets the resolution.
    package static func resolve(
        _ e: Escalation, resolution raw: String, by actor: Actor, config: EscalationConfig, directory: Directory, now: Date
    ) throws(WorkflowError) -> Transition<Escalation> {
        let tier = try tier(e, config)
        let resolution = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !resolution.isEmpty else { throw .invalid("resolution", "is required (what was the answer?)") }
        guard resolution.count <= maxTextLength else { throw .invalid("resolution", "is longer than \(maxTextLength) characters") }
        let claimer: ActorID?
        switch e.status {
        case .open: claimer = nil
        case .claimed(let by, _): claimer = by
        case .resolved(let by, _, _): throw .wrongState("escalation #\(e.id) was already resolved by @\(by)")
        }
        guard claimer == actor.id || isMember(actor, of: tier, directory) else {
            throw .notAllowed("escalation #\(e.id) is at the \(tier.name) tier; only \(tier.group ?? "admins") can resolve it")
        }
        var next = e
        next.status = .resolved(by: actor.id, at: now, resolution: resolution)
        var effects: [Effect] = [.cancel(.sla), .cancel(.ackTimeout), .updateCards, .webhook(event: "escalation.resolved")]
        if e.origin != nil { effects.append(.notify(Notice(.origin, resolution))) }
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: e.ref, from: e.status.name, to: "resolved", detail: resolution)],
            effects: effects)
    }

    /// Moves the escalation to the next tier (by hand, or when the SLA lapses).
    package static func raise(
        _ e: Escalation, reason: String?, by actor: Actor, config: EscalationConfig, directory: Directory, now: Date
    ) throws(WorkflowError) -> Transition<Escalation> {
        let current = try tier(e, config)
        if case .resolved(let by, _, _) = e.status { throw .wrongState("escalation #\(e.id) was already resolved by @\(by)") }
        guard actor.id == .system || isMember(actor, of: current, directory) || actor.id == e.requester else {
            throw .notAllowed("only the \(current.group ?? "admin") group or the requester can escalate #\(e.id) further")
        }
        guard e.tier + 1 < config.tiers.count else {
            throw .wrongState("escalation #\(e.id) is already at the top tier (\(current.name))")
        }
        return moveUp(e, config: config, actor: actor.id, detail: reason ?? "escalated by hand", now: now)
    }

    static func moveUp(_ e: Escalation, config: EscalationConfig, actor: ActorID, detail: String, now: Date) -> Transition<Escalation> {
        let nextTier = config.tiers[e.tier + 1]
        var next = e
        next.tier += 1
        next.tierName = nextTier.name
        next.status = .open(since: now)
        var effects: [Effect] = [.cancel(.ackTimeout), .schedule(.sla, at: now + nextTier.sla), .updateCards,
                                 .postCard(destination: nextTier.channel)]
        if e.origin != nil {
            effects.append(.notify(Notice(.origin, "I've passed your question on to the \(nextTier.name) team.")))
        }
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor, entity: e.ref, from: "\(e.status.name)@\(e.tierName)",
                               to: "open@\(nextTier.name)", detail: detail)],
            effects: effects)
    }

    /// The SLA timer fired: unclaimed too long → next tier, or breached (still open) at the top.
    package static func slaLapsed(_ e: Escalation, config: EscalationConfig, now: Date) -> Transition<Escalation>? {
        guard case .open(let since) = e.status, e.tier < config.tiers.count else { return nil }
        let tier = config.tiers[e.tier]
        let due = since + tier.sla
        guard now >= due else { return Transition(entity: e, effects: [.schedule(.sla, at: due)]) }
        if e.tier + 1 < config.tiers.count {
            return moveUp(e, config: config, actor: .system, detail: "nobody claimed it within \(tier.sla) at \(tier.name)", now: now)
        }
        guard !e.breached else { return nil }
        var next = e
        next.breached = true
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: .system, entity: e.ref, from: "open", to: "open",
                               detail: "SLA breached at the top tier (\(tier.name)); still open")],
            effects: [.updateCards])
    }

    /// The ack timer fired: claimed but unresolved too long → open again at the same tier.
    package static func ackLapsed(_ e: Escalation, config: EscalationConfig, now: Date) -> Transition<Escalation>? {
        guard case .claimed(let by, let at) = e.status, e.tier < config.tiers.count else { return nil }
        let tier = config.tiers[e.tier]
        let due = at + tier.ackTimeout
        guard now >= due else { return Transition(entity: e, effects: [.schedule(.ackTimeout, at: due)]) }
        var next = e
        next.status = .open(since: now)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: .system, entity: e.ref, from: "claimed", to: "open",
                               detail: "@\(by) did not resolve it within \(tier.ackTimeout); re-opened")],
            effects: [.schedule(.sla, at: now + tier.sla), .updateCards,
                      .notify(Notice(.person(by), "Escalation #\(e.id) was re-opened: it was not resolved within \(tier.ackTimeout)."))])
    }

    /// Decides whether a conversation turn needs a person.
    package static func trigger(
        userMessage: String?, aiAnswer: String?, confidence: Double?, floor: Double?, config: EscalationConfig
    ) -> EscalationTrigger? {
        if let message = userMessage, let phrase = PhraseMatcher(phrases: config.phrases).matches(message) {
            return .userAsked(phrase: phrase)
        }
        if let answer = aiAnswer, let phrase = PhraseMatcher(phrases: config.cannotHelpPhrases).matches(answer) {
            return .cannotHelp(phrase: phrase)
        }
        if let confidence, let floor, confidence < floor { return .lowConfidence(confidence) }
        return nil
    }
}
