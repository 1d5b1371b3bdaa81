import Foundation
import HandoffCore

/// The longest value each string field of each POST body may have: the one table the HTTP layer
/// checks before a body reaches the workflow (JSON bodies of `/v1` and the dashboard's forms), and
/// the one `manifests/openapi.yaml` documents as `maxLength` / `maxItems` (`SizeLimitTests` compares
/// the two and sends one character too many to every field).
///
/// Lengths count Unicode scalars, as JSON Schema's `maxLength` does, so a value cannot pass by
/// packing combining marks into a few "characters". Where the core keeps a limit of its own (the
/// chat and the command line reach the core without this table) the table uses the core's constant.
/// Values that are not strings (numbers, objects) are left to their decoders; arbitrary JSON
/// (`arguments`, `state`, `context`) is bounded by the body size.
package enum APILimits {
    /// One field's limit.
    package struct Field: Hashable, Sendable {
        /// The field as it is sent (`callback_url`).
        package var name: String
        /// The most Unicode scalars the value (or each element of an array) may have.
        package var maxLength: Int
        /// For an array of strings: the most elements it may have.
        package var maxItems: Int?

        package init(_ name: String, _ maxLength: Int, maxItems: Int? = nil) {
            self.name = name
            self.maxLength = maxLength
            self.maxItems = maxItems
        }
    }

    // Shared sizes, so the same kind of value has the same limit everywhere.
    package static let name = 100
    package static let word = 20
    package static let identity = 255
    package static let url = 2048
    package static let hash = 128
    package static let reason = 2000
    package static let summary = 4000
    package static let choice = 200
    /// Choices become buttons, and a card shows at most 25 of them (Slack's actions block).
    package static let choices = 25

    /// `METHOD /path` (as the router lists it) → the limits of its body's string fields. Every POST
    /// route with a body is listed; a route listed with no fields takes no strings.
    package static let routes: [String: [Field]] = [
        // Approvals
        "POST /v1/approvals": [
            Field("action", ApprovalMachine.maxActionLength), Field("summary", summary), Field("policy", name), Field("callback_url", url),
        ],
        "POST /v1/approvals/{id}/decision": [
            Field("verdict", word), Field("comment", ApprovalMachine.maxCommentLength), Field("reason", ApprovalMachine.maxCommentLength),
            Field("arguments_hash", hash),
        ],
        "POST /v1/approvals/{id}/cancel": [Field("reason", reason)],
        "POST /v1/approvals/{id}/consume": [Field("arguments_hash", hash)],
        "POST /v1/approvals/{id}/outcome": [Field("result", word), Field("message", reason)],
        // Review queues
        "POST /v1/review-items": [
            Field("queue", name), Field("priority", word), Field("title", ReviewMachine.maxTextLength),
            Field("query", ReviewMachine.maxTextLength), Field("answer", ReviewMachine.maxTextLength),
            Field("reason", ReviewMachine.maxTextLength), Field("origin", url), Field("callback_url", url),
        ],
        "POST /v1/review-items/{id}/claim": [],
        "POST /v1/review-items/{id}/release": [],
        "POST /v1/review-items/{id}/submit": [
            Field("verdict", word), Field("feedback", ReviewMachine.maxTextLength), Field("corrected_answer", ReviewMachine.maxTextLength),
        ],
        "POST /v1/queues/{queue}/claim": [],
        // Routing and escalations
        "POST /v1/route": [
            Field("route", name), Field("query", ReviewMachine.maxTextLength), Field("answer", ReviewMachine.maxTextLength),
            Field("self_rating", choice), Field("user_message", ReviewMachine.maxTextLength), Field("origin", url), Field("callback_url", url),
        ],
        "POST /v1/escalations": [
            Field("query", EscalationMachine.maxTextLength), Field("context", EscalationMachine.maxTextLength), Field("reason", reason),
            Field("tier", name), Field("requester", identity), Field("origin", url),
        ],
        "POST /v1/escalations/{id}/claim": [],
        "POST /v1/escalations/{id}/resolve": [Field("resolution", EscalationMachine.maxTextLength)],
        "POST /v1/escalations/{id}/raise": [Field("reason", reason)],
        // Feedback and corrections
        "POST /v1/feedback": [
            Field("kind", word), Field("options", choice, maxItems: choices), Field("prompt", FeedbackMachine.maxTextLength),
            Field("subject", ReviewMachine.maxTextLength), Field("channel", name), Field("respondent", identity), Field("origin", url),
            Field("callback_url", url), Field("deadline", word),
        ],
        "POST /v1/feedback/{id}/response": [Field("value", FeedbackMachine.maxTextLength)],
        "POST /v1/corrections": [
            Field("query", CorrectionMachine.maxTextLength), Field("original", CorrectionMachine.maxTextLength),
            Field("corrected", CorrectionMachine.maxTextLength), Field("route", name),
        ],
        // Labeling
        "POST /v1/label-tasks": [
            Field("dataset", choice), Field("type", word), Field("options", choice, maxItems: choices),
            Field("content", LabelingMachine.maxContentLength), Field("instructions", summary), Field("labelers", name, maxItems: 50),
        ],
        "POST /v1/label-tasks/{id}/labels": [Field("value", LabelingMachine.maxTextLabelLength)],
        // Dashboard forms (application/x-www-form-urlencoded)
        "POST /login": [Field("key", 200), Field("csrf", name), Field("next", url)],
        "POST /logout": [Field("csrf", name)],
        "POST /approvals/{id}/decide": [
            Field("verdict", word), Field("comment", ApprovalMachine.maxCommentLength), Field("arguments_hash", hash), Field("csrf", name),
        ],
        "POST /reviews/claim": [Field("queue", name), Field("csrf", name)],
        "POST /reviews/{id}/claim": [Field("csrf", name)],
        "POST /reviews/{id}/submit": [
            Field("verdict", word), Field("feedback", ReviewMachine.maxTextLength), Field("corrected_answer", ReviewMachine.maxTextLength),
            Field("csrf", name),
        ],
        "POST /escalations/{id}/claim": [Field("csrf", name)],
        "POST /escalations/{id}/resolve": [Field("resolution", EscalationMachine.maxTextLength), Field("csrf", name)],
        "POST /labeling/{id}": [
            Field("value", LabelingMachine.maxTextLabelLength), Field("start", word), Field("end", word), Field("x", word), Field("y", word),
            Field("width", word), Field("height", word), Field("dataset", choice), Field("csrf", name),
        ],
    ]

    /// The limits of a route (`POST`, `/v1/approvals/{id}/decision`); nil when the route is not listed.
    package static func fields(_ method: String, _ path: String) -> [Field]? {
        routes["\(method) \(path)"]
    }

    /// The first field of a JSON body over its limit, as the 400 the caller gets; nil when all fit or
    /// when the body is not a JSON object (its decoder says what is wrong with it).
    package static func violation(json body: some Collection<UInt8>, _ fields: [Field]) -> APIError? {
        guard !fields.isEmpty, let value = try? JSONValue.decodeDocument(body),
              case .object(let object) = value
        else { return nil }
        for field in fields {
            switch object[field.name] {
            case .string(let s)?:
                if let error = check(s, field) { return error }
            case .array(let items)?:
                if let maxItems = field.maxItems, items.count > maxItems {
                    return .invalid(field.name, "\(field.name) has \(items.count) items; at most \(maxItems) are allowed")
                }
                for case .string(let s) in items {
                    if let error = check(s, field, element: true) { return error }
                }
            default:
                continue
            }
        }
        return nil
    }

    /// The first form field over its limit, as the error to show; nil when all fit.
    package static func violation(form: [String: String], _ fields: [Field]) -> APIError? {
        for field in fields {
            if let value = form[field.name], let error = check(value, field) { return error }
        }
        return nil
    }

    private static func check(_ value: String, _ field: Field, element: Bool = false) -> APIError? {
        let length = value.unicodeScalars.count
        guard length > field.maxLength else { return nil }
        let what = element ? "each of \(field.name)" : field.name
        return .invalid(field.name, "\(what) is longer than \(field.maxLength) characters (\(length) sent); send at most \(field.maxLength)")
    }
}
