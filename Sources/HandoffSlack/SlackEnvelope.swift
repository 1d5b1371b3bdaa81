import Foundation
import HandoffChatKit
import HandoffCore

/// One Socket Mode envelope (chat-protocols.md §1.4).
package struct SlackEnvelope: Hashable, Sendable {
    package var id: String
    /// `events_api`, `slash_commands`, `interactive`, …
    package var type: String
    package var acceptsResponsePayload: Bool
    package var retryAttempt: Int
    package var retryReason: String
    /// Absent for some envelopes (e.g. `app_rate_limited` carries no event).
    package var payload: JSONValue?
}

/// A text frame from the Socket Mode socket.
package enum SocketFrame: Hashable, Sendable {
    case hello(approximateConnectionTime: Int?)
    case disconnect(reason: String)
    case envelope(SlackEnvelope)
    /// Not JSON, or a type we do not know: logged and ignored (the connection stays up).
    case unknown(String)

    package static func parse(_ text: String) -> SocketFrame {
        guard let json = try? JSONValue.parsePayload(text), json.asObject != nil else { return .unknown("not a JSON object") }
        if let envelopeID = json.member("envelope_id")?.asString {
            return .envelope(SlackEnvelope(
                id: envelopeID, type: json.member("type")?.asString ?? "",
                acceptsResponsePayload: json.member("accepts_response_payload")?.asBool ?? false,
                retryAttempt: Int(json.member("retry_attempt")?.asInt ?? 0), retryReason: json.member("retry_reason")?.asString ?? "",
                payload: json.member("payload")))
        }
        switch json.member("type")?.asString {
        case "hello":
            return .hello(approximateConnectionTime: json.member(path: "debug_info", "approximate_connection_time")?.asInt.map(Int.init))
        case "disconnect":
            return .disconnect(reason: json.member("reason")?.asString ?? "unknown")
        case let other:
            return .unknown("frame type \(other ?? "(none)")")
        }
    }
}

/// The platform dedupe key of a Slack payload, the same over Socket Mode and HTTP, and the stored form.
package enum SlackInbound {
    package static let platform = "slack"

    /// The key events are deduplicated on (chat-protocols.md §0):
    /// - a human message is keyed by `(channel, ts)`, so its `app_mention` and `message` copies (different
    ///   `event_id`s) are one event;
    /// - other events by `event_id` (retries and redeliveries reuse it, whatever their envelope);
    /// - button clicks by `(channel, message_ts, action_id, user, action_ts)`;
    /// - slash commands by `trigger_id`.
    /// Nil for payloads that carry nothing to act on (`app_rate_limited`).
    package static func key(type: String, payload: JSONValue?) -> String? {
        guard let payload else { return nil }
        switch type {
        case "events_api":
            guard let event = payload.member("event") else { return nil }
            let eventType = event.member("type")?.asString
            if eventType == "message" || eventType == "app_mention", event.member("subtype") == nil,
               let channel = event.member("channel")?.asString, let ts = event.member("ts")?.asString
            {
                return "msg:\(channel):\(ts)"
            }
            return payload.member("event_id")?.asString.map { "event:\($0)" }
        case "interactive":
            if payload.member("type")?.asString == "block_actions", let action = payload.member("actions")?.asArray?.first {
                let channel = payload.member(path: "container", "channel_id")?.asString ?? payload.member(path: "channel", "id")?.asString ?? ""
                let messageTS = payload.member(path: "container", "message_ts")?.asString ?? ""
                let user = payload.member(path: "user", "id")?.asString ?? ""
                let actionID = action.member("action_id")?.asString ?? ""
                let actionTS = action.member("action_ts")?.asString ?? ""
                return "action:\(channel):\(messageTS):\(actionID):\(user):\(actionTS)"
            }
            return payload.member("trigger_id")?.asString.map { "interaction:\($0)" }
        case "slash_commands":
            return payload.member("trigger_id")?.asString.map { "cmd:\($0)" }
        default:
            return nil
        }
    }

    /// The stored form: the envelope type and its payload, identical for Socket Mode and HTTP.
    package static func stored(type: String, payload: JSONValue) -> String {
        JSONValue.object(["type": .string(type), "payload": payload]).jsonText
    }
}
