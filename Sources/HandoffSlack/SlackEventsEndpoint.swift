import Crypto
import Foundation
import HandoffChatKit
import HandoffCore
import HTTPTypes
import Logging

/// Verifies Slack's request signature (chat-protocols.md §1.8): `v0=hex(HMAC-SHA256(secret,
/// "v0:" + timestamp + ":" + rawBody))`, compared in constant time, within five minutes of now.
package struct SlackSignatureVerifier: Sendable {
    package struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        package var description: String
    }

    let secret: Secret
    package var tolerance: TimeInterval = 300

    package init(secret: Secret) { self.secret = secret }

    package func verify(timestamp: String?, signature: String?, body: [UInt8], now: Date) throws(Failure) {
        guard let timestamp, let seconds = Int64(timestamp) else { throw Failure(description: "missing or malformed X-Slack-Request-Timestamp") }
        guard abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance else {
            throw Failure(description: "X-Slack-Request-Timestamp is more than \(Int(tolerance)) s from now (replayed or clock skew)")
        }
        guard let signature, signature.hasPrefix("v0="), let mac = Self.hexBytes(signature.dropFirst(3)), mac.count == 32 else {
            throw Failure(description: "missing or malformed X-Slack-Signature")
        }
        let key = SymmetricKey(data: Array(secret.revealed.utf8))
        let signed = Array("v0:\(timestamp):".utf8) + body
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: key) else {
            throw Failure(description: "X-Slack-Signature does not match the body")
        }
    }

    /// The signature Slack would send (for tests and tools).
    package static func sign(body: [UInt8], timestamp: String, secret: Secret) -> String {
        let key = SymmetricKey(data: Array(secret.revealed.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("v0:\(timestamp):".utf8) + body, using: key)
        return "v0=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    static func hexBytes(_ hex: Substring) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}

/// An HTTP answer, independent of any server framework.
package struct SlackHTTPResponse: Hashable, Sendable {
    package var status: Int
    package var contentType: String
    package var body: String

    package static func empty(_ status: Int = 200) -> SlackHTTPResponse {
        SlackHTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: "")
    }

    package static func json(_ value: JSONValue, status: Int = 200) -> SlackHTTPResponse {
        SlackHTTPResponse(status: status, contentType: "application/json; charset=utf-8", body: value.jsonText)
    }

    package static func text(_ status: Int, _ text: String) -> SlackHTTPResponse {
        SlackHTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: text)
    }
}

/// The Events API over HTTP, for deployments that prefer a public URL to Socket Mode: one handler for
/// `/slack/events` (events, `url_verification`, slash commands) and `/slack/interactivity`
/// (`payload=` form posts). Takes headers and the raw body and returns a response, so it mounts on
/// any router. Every request is signature-checked; events are acked only once durable.
package struct SlackEventsEndpoint: Sendable {
    package struct Configuration: Sendable {
        package var signingSecret: Secret
        /// How long a slash command may take to produce its reply (Slack waits 3 s).
        package var replyDeadline: Duration = .milliseconds(2200)
        package var maxBodyBytes = 1 << 20

        package init(signingSecret: Secret) { self.signingSecret = signingSecret }
    }

    let configuration: Configuration
    let sink: any InboundSink
    let now: @Sendable () -> Date
    let logger: Logger

    package init(configuration: Configuration, sink: any InboundSink, now: @escaping @Sendable () -> Date = { Date() },
                 logger: Logger = Logger(label: "handoff.slack.http"))
    {
        self.configuration = configuration
        self.sink = sink
        self.now = now
        self.logger = logger
    }

    package static let timestampHeader = HTTPField.Name("X-Slack-Request-Timestamp")!
    package static let signatureHeader = HTTPField.Name("X-Slack-Signature")!

    /// Handles one POST from Slack.
    package func handle(headers: HTTPFields, body: [UInt8]) async -> SlackHTTPResponse {
        guard body.count <= configuration.maxBodyBytes else { return .text(413, "body too large") }
        do {
            try SlackSignatureVerifier(secret: configuration.signingSecret).verify(
                timestamp: headers[Self.timestampHeader], signature: headers[Self.signatureHeader], body: body, now: now())
        } catch {
            logger.warning("rejected a Slack request", metadata: ["why": "\(error)"])
            return .text(401, "invalid signature: \(error)")
        }
        let type: String
        let payload: JSONValue
        if body.first == UInt8(ascii: "{") {
            guard let json = try? JSONValue.parsePayload(body) else { return .text(400, "body is not JSON") }
            switch json.member("type")?.asString {
            case "url_verification":
                return .json(.object(["challenge": json.member("challenge") ?? .string("")]))
            case "event_callback":
                (type, payload) = ("events_api", json)
            default:
                logger.info("acking a Slack request with nothing to act on", metadata: ["type": "\(json.member("type")?.asString ?? "-")"])
                return .empty()
            }
        } else {
            let form = Self.formFields(String(decoding: body, as: UTF8.self))
            if let interactive = form["payload"] {
                guard let json = try? JSONValue.parsePayload(interactive) else { return .text(400, "payload is not JSON") }
                (type, payload) = ("interactive", json)
            } else if form["command"] != nil {
                (type, payload) = ("slash_commands", .object(form.mapValues { .string($0) }))
            } else {
                return .text(400, "not a Slack event, interaction or command")
            }
        }
        guard let key = SlackInbound.key(type: type, payload: payload) else { return .empty() }
        let wantsReply = type == "slash_commands"
        let raw = RawInbound(platform: SlackInbound.platform, key: key, payload: SlackInbound.stored(type: type, payload: payload),
                             replyDeadline: wantsReply ? configuration.replyDeadline : nil)
        do {
            if case .reply(let text) = try await sink.accept(raw), wantsReply {
                return .json(.object(["response_type": .string("ephemeral"), "text": .string(text)]))
            }
            return .empty()
        } catch {
            logger.error("could not record a Slack event; answering 500 so Slack retries", metadata: ["key": "\(key)", "error": "\(error)"])
            return .text(500, "could not record the event")
        }
    }

    /// `a=1&b=x%20y` → fields (`+` is a space).
    package static func formFields(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(kv[0]) else { continue }
            out[name] = kv.count > 1 ? decode(kv[1]) ?? "" : ""
        }
        return out
    }

    private static func decode(_ s: Substring) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
