import Foundation

/// One line of the audit trail: every transition appends one.
package struct AuditEvent: Hashable, Sendable, Codable {
    package var at: Date
    package var actor: ActorID
    package var entity: EntityRef
    /// State before; nil for creation.
    package var from: String?
    package var to: String
    package var detail: String?

    package init(at: Date, actor: ActorID, entity: EntityRef, from: String?, to: String, detail: String? = nil) {
        self.at = at
        self.actor = actor
        self.entity = entity
        self.from = from
        self.to = to
        self.detail = detail
    }
}

/// A timer the scheduler fires from the database. One timer per (entity, kind): scheduling again moves it.
package enum TimerKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// Approval expiry.
    case expiry
    /// A review item's lease lapses.
    case lease
    /// A review item or escalation misses its SLA.
    case sla
    /// A claimed escalation was not resolved in time: re-open it.
    case ackTimeout = "ack_timeout"
    /// A feedback request's deadline.
    case deadline
}

/// What a transition asks its owner to do. The workflow service turns these into outbox rows and
/// timer rows in the same transaction as the state change.
package enum Effect: Hashable, Sendable {
    /// Schedule (or move) this entity's timer of that kind.
    case schedule(TimerKind, at: Date)
    /// Remove this entity's timer of that kind.
    case cancel(TimerKind)
    /// Post a new card for this entity to a destination (a named channel binding from the policy).
    case postCard(destination: String)
    /// Re-render every card already posted for this entity (state changed).
    case updateCards
    /// Deliver the entity's new state to the caller's callback URL.
    case webhook(event: String)
    /// Tell a person something (a DM, or a reply in the card's thread).
    case notify(Notice)
}

/// A message for one person, delivered by the chat layer (privately where the platform allows).
package struct Notice: Hashable, Sendable, Codable {
    package enum Audience: Hashable, Sendable, Codable {
        /// One person, privately.
        case person(ActorID)
        /// Whoever is in the conversation the entity came from (e.g. the user who escalated).
        case origin
    }

    package var audience: Audience
    package var text: String

    package init(_ audience: Audience, _ text: String) {
        self.audience = audience
        self.text = text
    }
}

/// The result of a transition: the new entity, what to audit, what to do next.
package struct Transition<Entity: Sendable>: Sendable {
    package var entity: Entity
    package var audit: [AuditEvent]
    package var effects: [Effect]

    package init(entity: Entity, audit: [AuditEvent] = [], effects: [Effect] = []) {
        self.entity = entity
        self.audit = audit
        self.effects = effects
    }
}
