import Foundation

package enum FeedbackKind: Hashable, Sendable, Codable {
    /// A rating from 1 to 5.
    case rating
    case text
    case choice(options: [String])

    package var name: String {
        switch self {
        case .rating: "rating"
        case .text: "text"
        case .choice: "choice"
        }
    }
}

package enum FeedbackResponse: Hashable, Sendable, Codable {
    case rating(Int)
    case text(String)
    case choice(String)

    package var display: String {
        switch self {
        case .rating(let r): "\(r)/5"
        case .text(let t): t
        case .choice(let c): c
        }
    }
}

package enum FeedbackStatus: Hashable, Sendable, Codable {
    case open
    case answered(response: FeedbackResponse, by: ActorID, at: Date)
    case expired(at: Date)

    package var name: String {
        switch self {
        case .open: "open"
        case .answered: "answered"
        case .expired: "expired"
        }
    }

    package static let allNames = ["open", "answered", "expired"]
}

/// A question to a user or reviewer about an AI answer, answered whenever they get to it.
package struct FeedbackRequest: Hashable, Sendable, Codable {
    package var id: FeedbackID
    package var kind: FeedbackKind
    package var prompt: String
    /// The answer being judged, shown with the question.
    package var subject: String?
    /// Where it was asked (for response rates per channel).
    package var channel: String
    /// Only this person may answer, when set.
    package var respondent: ActorID?
    package var origin: String?
    package var callbackURL: String?
    package var createdAt: Date
    package var deadline: Date
    package var status: FeedbackStatus

    package var ref: EntityRef { EntityRef(kind: .feedback, id: id.rawValue) }
}

package struct FeedbackRequestInput: Hashable, Sendable, Codable {
    package var kind: FeedbackKind
    package var prompt: String
    package var subject: String?
    package var channel: String
    package var respondent: ActorID?
    package var origin: String?
    package var callbackURL: String?
    package var deadline: Span?

    package init(kind: FeedbackKind, prompt: String, subject: String? = nil, channel: String = "default",
                 respondent: ActorID? = nil, origin: String? = nil, callbackURL: String? = nil, deadline: Span? = nil)
    {
        self.kind = kind
        self.prompt = prompt
        self.subject = subject
        self.channel = channel
        self.respondent = respondent
        self.origin = origin
        self.callbackURL = callbackURL
        self.deadline = deadline
    }
}

package enum FeedbackMachine {
    package static let maxTextLength = 4000

    package static func request(
        id: FeedbackID, input: FeedbackRequestInput, config: FeedbackConfig, by actor: ActorID, now: Date
    ) throws(WorkflowError) -> Transition<FeedbackRequest> {
        guard input.prompt.nilIfBlank != nil else { throw .invalid("prompt", "is required") }
        guard input.prompt.count <= maxTextLength else { throw .invalid("prompt", "is longer than \(maxTextLength) characters") }
        guard input.channel.nilIfBlank != nil else { throw .invalid("channel", "is required") }
        if case .choice(let options) = input.kind {
            let cleaned = options.map { $0.trimmingCharacters(in: .whitespaces) }
            guard cleaned.count >= 2 else { throw .invalid("options", "needs at least two choices") }
            guard !cleaned.contains(where: \.isEmpty) else { throw .invalid("options", "cannot contain an empty choice") }
            guard Set(cleaned.map { $0.lowercased() }).count == cleaned.count else { throw .invalid("options", "must be different from each other") }
        }
        let deadline = input.deadline ?? config.deadline
        guard deadline.seconds > 0 else { throw .invalid("deadline", "must be in the future") }
        let request = FeedbackRequest(
            id: id, kind: input.kind, prompt: input.prompt, subject: input.subject, channel: input.channel,
            respondent: input.respondent, origin: input.origin, callbackURL: input.callbackURL, createdAt: now,
            deadline: now + deadline, status: .open)
        return Transition(
            entity: request,
            audit: [AuditEvent(at: now, actor: actor, entity: request.ref, from: nil, to: "open", detail: "\(input.kind.name) feedback")],
            effects: [.schedule(.deadline, at: request.deadline), .postCard(destination: input.channel)])
    }

    /// Checks a raw answer against the request's kind.
    package static func validate(_ raw: String, for kind: FeedbackKind) throws(WorkflowError) -> FeedbackResponse {
        let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        switch kind {
        case .rating:
            guard let rating = Int(value) else { throw .invalid("rating", "must be a whole number from 1 to 5, not '\(value.prefix(40))'") }
            guard (1...5).contains(rating) else { throw .invalid("rating", "must be from 1 to 5, not \(rating)") }
            return .rating(rating)
        case .text:
            guard !value.isEmpty else { throw .invalid("text", "is empty") }
            guard value.count <= maxTextLength else { throw .invalid("text", "is longer than \(maxTextLength) characters") }
            return .text(value)
        case .choice(let options):
            if let match = options.first(where: { $0.caseInsensitiveCompare(value) == .orderedSame }) { return .choice(match) }
            if let index = Int(value), (1...options.count).contains(index) { return .choice(options[index - 1]) }
            throw .invalid("choice", "must be one of \(options.joined(separator: ", ")) (or its number)")
        }
    }

    package static func respond(
        _ request: FeedbackRequest, value: String, by actor: Actor, now: Date
    ) throws(WorkflowError) -> Transition<FeedbackRequest> {
        switch request.status {
        case .open: break
        case .answered(_, let by, _): throw .wrongState("feedback request #\(request.id) was already answered by @\(by)")
        case .expired: throw .wrongState("feedback request #\(request.id) has expired")
        }
        guard now < request.deadline else { throw .wrongState("feedback request #\(request.id) has expired") }
        if let respondent = request.respondent, respondent != actor.id, !actor.isAdmin {
            throw .notAllowed("feedback request #\(request.id) asks @\(respondent), not you")
        }
        let response = try validate(value, for: request.kind)
        var next = request
        next.status = .answered(response: response, by: actor.id, at: now)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: request.ref, from: "open", to: "answered", detail: response.display)],
            effects: [.cancel(.deadline), .updateCards, .webhook(event: "feedback.answered")])
    }

    package static func deadlinePassed(_ request: FeedbackRequest, now: Date) -> Transition<FeedbackRequest>? {
        guard case .open = request.status else { return nil }
        guard now >= request.deadline else { return Transition(entity: request, effects: [.schedule(.deadline, at: request.deadline)]) }
        var next = request
        next.status = .expired(at: now)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: .system, entity: request.ref, from: "open", to: "expired", detail: "no answer by the deadline")],
            effects: [.updateCards])
    }
}

/// Response rate over closed requests (answered + expired); open ones are counted apart.
package struct ResponseRate: Hashable, Sendable, Codable {
    package var channel: String?
    package var answered: Int
    package var expired: Int
    package var open: Int

    package init(channel: String?, answered: Int, expired: Int, open: Int) {
        self.channel = channel
        self.answered = answered
        self.expired = expired
        self.open = open
    }

    /// answered / (answered + expired); nil while nothing has closed.
    package var rate: Double? {
        let closed = answered + expired
        return closed == 0 ? nil : Double(answered) / Double(closed)
    }
}
