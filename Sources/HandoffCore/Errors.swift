/// Every refusal the workflow can give, with a message a person can act on.
///
/// Modeled on async-http-client's `HTTPClientError`: a struct with a private code so new cases do not
/// break callers; match on the static members (`error.code == .notAllowed`).
package struct WorkflowError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: String, Sendable, Hashable, Codable {
        /// No entity with that id.
        case notFound = "not_found"
        /// The actor may not do this (not in the group, requester deciding their own request, …).
        case notAllowed = "not_allowed"
        /// The entity is not in a state that accepts this act (already decided, expired, …).
        case wrongState = "wrong_state"
        /// The input itself is wrong (missing reason, rating out of range, malformed JSON, …).
        case invalid = "invalid"
        /// A concurrent writer changed the entity first; retrying re-evaluates against the new state.
        case conflict = "conflict"
        /// The inbound event (or idempotency key) was already applied; nothing changed this time.
        case duplicate = "duplicate"
    }

    package let code: Code
    /// A sentence for the person who caused it; safe to show in chat and HTTP bodies.
    package let message: String
    /// The input field the problem is in, when there is one.
    package let field: String?

    package init(code: Code, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    package var description: String { message }

    package static func notFound(_ ref: EntityRef) -> WorkflowError {
        WorkflowError(code: .notFound, message: "\(ref.kind.displayName) #\(ref.id) does not exist")
    }
    package static func notFound(_ message: String) -> WorkflowError {
        WorkflowError(code: .notFound, message: message)
    }
    package static func notAllowed(_ message: String) -> WorkflowError {
        WorkflowError(code: .notAllowed, message: message)
    }
    package static func wrongState(_ message: String) -> WorkflowError {
        WorkflowError(code: .wrongState, message: message)
    }
    package static func invalid(_ field: String, _ problem: String) -> WorkflowError {
        WorkflowError(code: .invalid, message: "\(field) \(problem)", field: field)
    }
    package static func duplicate(_ message: String) -> WorkflowError {
        WorkflowError(code: .duplicate, message: message)
    }
    package static func conflict(_ ref: EntityRef) -> WorkflowError {
        WorkflowError(code: .conflict, message: "\(ref.kind.displayName) #\(ref.id) was changed concurrently; try again")
    }
}

extension EntityKind {
    /// How the kind is named in messages.
    package var displayName: String {
        switch self {
        case .approval: "approval"
        case .reviewItem: "review item"
        case .escalation: "escalation"
        case .feedback: "feedback request"
        case .correction: "correction"
        case .labelTask: "labeling task"
        case .label: "label"
        }
    }
}
