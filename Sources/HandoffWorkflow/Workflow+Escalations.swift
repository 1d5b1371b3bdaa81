import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    func loadEscalation(_ id: EscalationID) async throws -> Versioned<Escalation> {
        guard let found = try await store.escalation(id) else { throw WorkflowError.notFound(EntityRef(kind: .escalation, id: id.rawValue)) }
        return found
    }

    package func escalation(_ id: EscalationID) async throws -> Escalation { try await loadEscalation(id).value }

    package func escalations(status: String? = nil, limit: Int = 50, before: EscalationID? = nil) async throws -> [Escalation] {
        if let status, !EscalationStatus.allNames.contains(status) {
            throw WorkflowError.invalid("status", "must be one of \(EscalationStatus.allNames.joined(separator: ", "))")
        }
        return try await store.escalations(status: status, limit: limit, before: before)
    }

    /// Opens an escalation at its first human tier (or the named one) and posts its card there.
    package func escalate(_ request: EscalationRequest, by actor: ActorID, event: EventKey? = nil) async throws -> Escalation {
        let event = try bind(event, to: request)
        if let found = try await replay(event, kind: .escalation, load: { try await store.escalation(EscalationID($0)) }) {
            return found.value
        }
        let now = clock.now()
        let id = EscalationID(try await nextID(.escalation))
        let t = try EscalationMachine.open(id: id, request: request, config: policy.escalation, by: actor, now: now)
        if let winner = try await createOnce(t.entity.ref, key: event, load: { try await store.escalation(EscalationID($0)) }, {
            try await commit(try changeSet(t, expectedVersion: nil, event: event, now: now), now: now)
        }) {
            return winner.value
        }
        return t.entity
    }

    func mutateEscalation(
        _ id: EscalationID, event: EventKey?, _ decide: (Escalation, Date) throws -> Transition<Escalation>
    ) async throws -> Escalation {
        try await checkNotApplied(event)
        return try await retrying(EntityRef(kind: .escalation, id: id.rawValue)) {
            let current = try await loadEscalation(id)
            let now = clock.now()
            let t = try decide(current.value, now)
            try await commit(try changeSet(t, expectedVersion: current.version, event: event, now: now), now: now)
            return t.entity
        }
    }

    package func claimEscalation(_ id: EscalationID, by actor: Actor, event: EventKey? = nil) async throws -> Escalation {
        let (config, directory) = (policy.escalation, policy.directory)
        return try await mutateEscalation(id, event: event) { e, now in
            try EscalationMachine.claim(e, by: actor, config: config, directory: directory, now: now)
        }
    }

    package func resolveEscalation(_ id: EscalationID, resolution: String, by actor: Actor, event: EventKey? = nil) async throws -> Escalation {
        let (config, directory) = (policy.escalation, policy.directory)
        return try await mutateEscalation(id, event: event) { e, now in
            try EscalationMachine.resolve(e, resolution: resolution, by: actor, config: config, directory: directory, now: now)
        }
    }

    package func raiseEscalation(_ id: EscalationID, reason: String?, by actor: Actor, event: EventKey? = nil) async throws -> Escalation {
        let (config, directory) = (policy.escalation, policy.directory)
        return try await mutateEscalation(id, event: event) { e, now in
            try EscalationMachine.raise(e, reason: reason, by: actor, config: config, directory: directory, now: now)
        }
    }

    /// The oldest open escalation at a tier this actor answers at, for `/handoff claim` without an id.
    package func nextOpenEscalation(for actor: Actor) async throws -> Escalation? {
        let tiers = Set(policy.escalation.tiers.filter { tier in
            guard let group = tier.group else { return false }
            return policy.directory.mayActFor(actor, anyOf: [group])
        }.map(\.name))
        guard !tiers.isEmpty else { return nil }
        return try await store.oldestOpenEscalation(tiers: Array(tiers))
    }
}

extension Workflow {
    /// The result of routing one answer.
    package struct RoutingResult: Sendable {
        package var decision: RoutingDecision
        package var reviewItem: ReviewItem?
        package var escalation: Escalation?
    }

    /// Routes an answer: confident → the caller sends it; unsure → a review item in the route's queue;
    /// a request for a person, an AI that cannot help, or confidence below the floor → an escalation.
    package func route(
        _ routeName: String, query: String?, answer: String?, confidence: ConfidenceInput, userMessage: String? = nil,
        origin: String? = nil, callbackURL: String? = nil, by actor: ActorID, idempotencyKey: EventKey? = nil
    ) async throws -> RoutingResult {
        // A threshold calibrated into the database wins over the policy file's (Workflow+AI.swift).
        let route = try await effectiveRoute(routeName).config
        let decision = Router.route(answer: answer, confidence: confidence, userMessage: userMessage ?? query, route: route,
                                    escalation: policy.escalation)
        switch decision {
        case .autoSend:
            return RoutingResult(decision: decision)
        case .review(let c, let reason):
            let request = ReviewItemRequest(
                queue: route.queue, priority: route.priority,
                content: ReviewContent(query: query, answer: answer, confidence: c, reason: reason),
                origin: origin, route: routeName, callbackURL: callbackURL)
            let (item, _) = try await enqueue(request, by: actor, idempotencyKey: idempotencyKey)
            return RoutingResult(decision: decision, reviewItem: item)
        case .escalate(let c, let reason):
            let trigger: EscalationTrigger
            if let message = userMessage ?? query, let phrase = PhraseMatcher(phrases: policy.escalation.phrases).matches(message) {
                trigger = .userAsked(phrase: phrase)
            } else if let answer, let phrase = PhraseMatcher(phrases: policy.escalation.cannotHelpPhrases).matches(answer) {
                trigger = .cannotHelp(phrase: phrase)
            } else if let c {
                trigger = .lowConfidence(c)
            } else {
                trigger = .manual(reason)
            }
            let context = answer.map { "AI draft: \($0)" }
            let e = try await escalate(
                EscalationRequest(query: query ?? userMessage ?? "(no question)", context: context, trigger: trigger, origin: origin),
                by: actor, event: idempotencyKey)
            return RoutingResult(decision: decision, escalation: e)
        }
    }
}
