import Foundation
import HandoffCore
import HandoffStore

/// The JSON shapes callers see (CLI `--json`, webhooks, HTTP API). Property names are camelCase here
/// and snake_case on the wire (``WireJSON``).
package enum WireJSON {
    package static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true)
                .timeSeparator(.colon).timeZone(separator: .omitted)))
        }
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    package static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.dateDecodingStrategy = .iso8601
        return d
    }

    package static func string(_ value: some Encodable, pretty: Bool = false) throws -> String {
        String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
    }
}

package struct DecisionView: Codable, Sendable, Hashable {
    package var by: [String]
    package var at: Date
    package var comment: String?
    package var argumentsHash: String
    package var automatic: Bool

    init(_ d: Decision) {
        by = d.by.map(\.rawValue)
        at = d.at
        comment = d.comment
        argumentsHash = d.argumentsHash
        automatic = d.automatic
    }
}

package struct ApprovalView: Codable, Sendable, Hashable {
    package var id: Int64
    package var status: String
    package var action: String
    package var arguments: JSONValue
    package var argumentsHash: String
    package var summary: String?
    package var requester: String
    package var callerState: JSONValue?
    package var callbackUrl: String?
    package var policy: String
    package var deciders: [String]
    package var quorum: Int
    package var approvals: [String]
    package var createdAt: Date
    package var expiresAt: Date
    package var decision: DecisionView?
    package var cancelledBy: String?
    package var execution: ExecutionView

    package struct ExecutionView: Codable, Sendable, Hashable {
        package var state: String
        package var consumedAt: Date?
        package var reportedAt: Date?
        package var message: String?
    }

    package init(_ a: Approval) {
        id = a.id.rawValue
        status = a.status.name
        action = a.action
        arguments = a.arguments
        argumentsHash = a.argumentsHash
        summary = a.summary
        requester = a.requester.rawValue
        callerState = a.callerState
        callbackUrl = a.callbackURL
        policy = a.policyName
        deciders = a.deciders
        quorum = a.policy.quorum
        approvals = a.votes.map(\.by.rawValue)
        createdAt = a.createdAt
        expiresAt = a.expiresAt
        decision = a.status.decision.map(DecisionView.init)
        if case .cancelled(let by, _, _) = a.status { cancelledBy = by.rawValue }
        switch a.execution {
        case .unused: execution = ExecutionView(state: "unused")
        case .consumed(let at, _): execution = ExecutionView(state: "consumed", consumedAt: at)
        case .finished(let at, _, let outcome, let reported):
            var message: String?
            if case .failed(let m) = outcome { message = m }
            execution = ExecutionView(state: a.execution.name, consumedAt: at, reportedAt: reported, message: message)
        }
    }
}

package struct ReviewView: Codable, Sendable, Hashable {
    package var reviewer: String
    package var verdict: String
    package var feedback: String?
    package var correctedAnswer: String?
    package var claimedAt: Date
    package var submittedAt: Date
    package var waitedSeconds: Double
    package var decideSeconds: Double
}

package struct ReviewItemView: Codable, Sendable, Hashable {
    package var id: Int64
    package var queue: String
    package var priority: String
    package var status: String
    package var title: String?
    package var query: String?
    package var answer: String?
    package var confidence: Double?
    package var reason: String?
    package var context: JSONValue?
    package var claimedBy: String?
    package var leaseUntil: Date?
    package var verdict: String?
    package var reviewsRequired: Int
    package var reviews: [ReviewView]
    package var slaBreached: Bool
    package var route: String?
    package var createdAt: Date

    package init(_ item: ReviewItem) {
        id = item.id.rawValue
        queue = item.queue
        priority = item.priority.rawValue
        status = item.status.name
        title = item.content.title
        query = item.content.query
        answer = item.content.answer
        confidence = item.content.confidence
        reason = item.content.reason
        context = item.content.context
        switch item.status {
        case .claimed(let by, _, let until):
            claimedBy = by.rawValue
            leaseUntil = until
        case .completed(let v, _): verdict = v.rawValue
        case .pending: break
        }
        reviewsRequired = item.reviewsRequired
        reviews = item.reviews.map {
            ReviewView(reviewer: $0.reviewer.rawValue, verdict: $0.verdict.rawValue, feedback: $0.feedback,
                       correctedAnswer: $0.correctedAnswer, claimedAt: $0.claimedAt, submittedAt: $0.submittedAt,
                       waitedSeconds: $0.waitedSeconds, decideSeconds: $0.decideSeconds)
        }
        slaBreached = item.slaBreached
        route = item.route
        createdAt = item.createdAt
    }
}

package struct EscalationView: Codable, Sendable, Hashable {
    package var id: Int64
    package var status: String
    package var tier: String
    package var query: String
    package var context: String?
    package var reason: String
    package var requester: String?
    package var claimedBy: String?
    package var resolvedBy: String?
    package var resolution: String?
    package var breached: Bool
    package var createdAt: Date

    package init(_ e: Escalation) {
        id = e.id.rawValue
        status = e.status.name
        tier = e.tierName
        query = e.query
        context = e.context
        reason = e.trigger.text
        requester = e.requester?.rawValue
        switch e.status {
        case .claimed(let by, _): claimedBy = by.rawValue
        case .resolved(let by, _, let r):
            resolvedBy = by.rawValue
            resolution = r
        case .open: break
        }
        breached = e.breached
        createdAt = e.createdAt
    }
}

package struct FeedbackView: Codable, Sendable, Hashable {
    package var id: Int64
    package var kind: String
    package var options: [String]?
    package var prompt: String
    package var subject: String?
    package var channel: String
    package var respondent: String?
    package var status: String
    package var response: String?
    package var respondedBy: String?
    package var deadline: Date
    package var createdAt: Date

    package init(_ f: FeedbackRequest) {
        id = f.id.rawValue
        kind = f.kind.name
        if case .choice(let o) = f.kind { options = o }
        prompt = f.prompt
        subject = f.subject
        channel = f.channel
        respondent = f.respondent?.rawValue
        status = f.status.name
        if case .answered(let r, let by, _) = f.status {
            switch r {
            case .rating(let n): response = String(n)
            case .text(let t), .choice(let t): response = t
            }
            respondedBy = by.rawValue
        }
        deadline = f.deadline
        createdAt = f.createdAt
    }
}

package struct CorrectionView: Codable, Sendable, Hashable {
    package var id: Int64
    package var query: String
    package var original: String
    package var corrected: String
    package var by: String
    package var at: Date
    package var route: String?
    package var similarity: Double?

    package init(_ c: Correction, similarity: Double? = nil) {
        id = c.id.rawValue
        query = c.query
        original = c.original
        corrected = c.corrected
        by = c.by.rawValue
        at = c.at
        route = c.route
        self.similarity = similarity
    }
}

package struct LabelTaskView: Codable, Sendable, Hashable {
    package var id: Int64
    package var dataset: String
    package var type: String
    package var options: [String]?
    package var min: Double?
    package var max: Double?
    package var content: String
    package var instructions: String?
    package var overlap: Int
    package var labels: Int
    package var status: String

    package init(_ t: LabelTask) {
        id = t.id.rawValue
        dataset = t.dataset
        type = t.type.name
        switch t.type {
        case .choice(let o): options = o
        case .rating(let lo, let hi):
            min = lo
            max = hi
        default: break
        }
        content = t.content
        instructions = t.instructions
        overlap = t.overlap
        labels = t.labelCount
        status = t.status.rawValue
    }
}

/// A label value on the wire: `"positive"`, `4`, `{"start":3,"end":17}`, `{"x":…,"y":…,"width":…,"height":…}`.
package enum LabelValueJSON {
    package static func encode(_ value: LabelValue) -> JSONValue {
        switch value {
        case .text(let t), .choice(let t): .string(t)
        case .rating(let r): r == r.rounded() && abs(r) < 1e15 ? .int(Int64(r)) : .double(r)
        case .span(let s, let e): .object(["start": .int(Int64(s)), "end": .int(Int64(e))])
        case .boundingBox(let x, let y, let w, let h):
            .object(["x": .double(x), "y": .double(y), "width": .double(w), "height": .double(h)])
        }
    }

    /// Reads a wire value for a task's type.
    package static func decode(_ json: JSONValue, for task: LabelTask) throws(WorkflowError) -> LabelValue {
        func number(_ v: JSONValue?) -> Double? {
            switch v {
            case .int(let i): Double(i)
            case .double(let d): d
            default: nil
            }
        }
        switch (task.type, json) {
        case (.text, .string(let s)): return try LabelingMachine.validate(.text(s), for: task)
        case (.choice, .string(let s)): return try LabelingMachine.validate(.choice(s), for: task)
        case (.rating, _) where number(json) != nil: return try LabelingMachine.validate(.rating(number(json)!), for: task)
        case (.span, .object(let o)):
            guard let s = number(o["start"]), let e = number(o["end"]), s == s.rounded(), e == e.rounded() else {
                throw .invalid("value", "must be {\"start\": int, \"end\": int}")
            }
            return try LabelingMachine.validate(.span(start: Int(s), end: Int(e)), for: task)
        case (.boundingBox, .object(let o)):
            guard let x = number(o["x"]), let y = number(o["y"]), let w = number(o["width"]), let h = number(o["height"]) else {
                throw .invalid("value", "must be {\"x\", \"y\", \"width\", \"height\"} numbers")
            }
            return try LabelingMachine.validate(.boundingBox(x: x, y: y, width: w, height: h), for: task)
        case (_, .string(let s)): return try LabelingMachine.parse(s, for: task)
        default:
            throw .invalid("value", "does not fit a \(task.type.name) task")
        }
    }
}

package struct ConsensusView: Codable, Sendable, Hashable {
    package var task: Int64
    package var labels: Int
    package var consensus: JSONValue?
    package var agreement: Double?

    package init(_ c: TaskConsensus) {
        task = c.task.rawValue
        labels = c.labels
        consensus = c.consensus.map(LabelValueJSON.encode)
        agreement = c.agreement
    }
}

/// What a webhook receiver gets.
package struct WebhookBody<Data: Codable & Sendable>: Codable, Sendable {
    package var event: String
    package var occurredAt: Date
    package var data: Data
}
