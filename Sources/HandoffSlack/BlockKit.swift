import Foundation
import HandoffChatKit
import HandoffCore

/// A message ready for `chat.postMessage` / `chat.update`: the fallback text and the blocks.
package struct SlackMessage: Hashable, Sendable {
    package var text: String
    package var blocks: JSONValue

    package init(text: String, blocks: JSONValue) {
        self.text = text
        self.blocks = blocks
    }
}

/// Block Kit's limits (api.slack.com/reference/block-kit), checked before anything is sent.
///
/// Texts are measured in UTF-8 bytes: Slack documents characters, but refuses some multi-byte text
/// (emoji, CJK) that is under the character count, and a text within the limit in bytes is within
/// it however Slack counts. ASCII text gets the full documented length.
package enum BlockKitLimits {
    package static let blocksPerMessage = 50
    package static let sectionText = 3000
    package static let sectionFields = 10
    package static let fieldText = 2000
    package static let headerText = 150
    package static let contextElements = 10
    package static let contextText = 3000
    package static let actionsElements = 25
    package static let buttonText = 75
    package static let actionID = 255
    package static let buttonValue = 2000
    package static let blockID = 255
    package static let fallbackText = 40000
}

/// A card or message that breaks a Block Kit limit; the message names the block and the limit.
package struct BlockKitError: Error, Hashable, Sendable, CustomStringConvertible {
    package var problems: [String]
    package var description: String { "invalid Block Kit: " + problems.joined(separator: "; ") }
}

/// Checks blocks against the limits Slack enforces, so a card is never rejected with `invalid_blocks`.
package enum BlockKitValidator {
    package static func validate(_ message: SlackMessage) throws(BlockKitError) {
        var problems: [String] = []
        if message.text.isEmpty { problems.append("the fallback text is empty") }
        if message.text.utf8.count > BlockKitLimits.fallbackText {
            problems.append("the fallback text has \(message.text.utf8.count) bytes (limit \(BlockKitLimits.fallbackText))")
        }
        guard let blocks = message.blocks.asArray else { throw BlockKitError(problems: problems + ["blocks is not an array"]) }
        if blocks.count > BlockKitLimits.blocksPerMessage {
            problems.append("\(blocks.count) blocks (limit \(BlockKitLimits.blocksPerMessage))")
        }
        var blockIDs: Set<String> = []
        for (i, block) in blocks.enumerated() {
            let at = "block \(i)"
            if let id = block.member("block_id")?.asString {
                if id.count > BlockKitLimits.blockID { problems.append("\(at): block_id longer than \(BlockKitLimits.blockID)") }
                if !blockIDs.insert(id).inserted { problems.append("\(at): duplicate block_id \(id)") }
            }
            switch block.member("type")?.asString {
            case "header":
                check(text: block.member("text"), at: at, limit: BlockKitLimits.headerText, plainOnly: true, into: &problems)
            case "section":
                let fields = block.member("fields")?.asArray
                if block.member("text") == nil && fields == nil { problems.append("\(at): a section needs text or fields") }
                if let text = block.member("text") { check(text: text, at: at, limit: BlockKitLimits.sectionText, into: &problems) }
                if let fields {
                    if fields.isEmpty || fields.count > BlockKitLimits.sectionFields {
                        problems.append("\(at): \(fields.count) fields (1 to \(BlockKitLimits.sectionFields))")
                    }
                    for (j, f) in fields.enumerated() { check(text: f, at: "\(at) field \(j)", limit: BlockKitLimits.fieldText, into: &problems) }
                }
            case "context":
                let elements = block.member("elements")?.asArray ?? []
                if elements.isEmpty || elements.count > BlockKitLimits.contextElements {
                    problems.append("\(at): \(elements.count) context elements (1 to \(BlockKitLimits.contextElements))")
                }
                for (j, e) in elements.enumerated() { check(text: e, at: "\(at) element \(j)", limit: BlockKitLimits.contextText, into: &problems) }
            case "actions":
                let elements = block.member("elements")?.asArray ?? []
                if elements.isEmpty || elements.count > BlockKitLimits.actionsElements {
                    problems.append("\(at): \(elements.count) actions (1 to \(BlockKitLimits.actionsElements))")
                }
                var actionIDs: Set<String> = []
                for (j, e) in elements.enumerated() {
                    let where_ = "\(at) button \(j)"
                    guard e.member("type")?.asString == "button" else { problems.append("\(where_): only buttons are used"); continue }
                    check(text: e.member("text"), at: where_, limit: BlockKitLimits.buttonText, plainOnly: true, into: &problems)
                    let actionID = e.member("action_id")?.asString ?? ""
                    if actionID.isEmpty || actionID.count > BlockKitLimits.actionID {
                        problems.append("\(where_): action_id must be 1 to \(BlockKitLimits.actionID) characters")
                    }
                    if !actionIDs.insert(actionID).inserted { problems.append("\(where_): duplicate action_id \(actionID)") }
                    if let value = e.member("value")?.asString, value.count > BlockKitLimits.buttonValue {
                        problems.append("\(where_): value longer than \(BlockKitLimits.buttonValue)")
                    }
                    if let style = e.member("style")?.asString, style != "primary" && style != "danger" {
                        problems.append("\(where_): style must be primary or danger")
                    }
                }
            case "divider":
                break
            case let other:
                problems.append("\(at): unsupported block type \(other ?? "(none)")")
            }
        }
        if !problems.isEmpty { throw BlockKitError(problems: problems) }
    }

    private static func check(text: JSONValue?, at: String, limit: Int, plainOnly: Bool = false, into problems: inout [String]) {
        guard let text, let type = text.member("type")?.asString, let value = text.member("text")?.asString else {
            problems.append("\(at): missing text object")
            return
        }
        if type != "plain_text" && type != "mrkdwn" { problems.append("\(at): text type \(type)") }
        if plainOnly && type != "plain_text" { problems.append("\(at): must be plain_text") }
        if value.isEmpty { problems.append("\(at): empty text") }
        if value.utf8.count > limit { problems.append("\(at): text has \(value.utf8.count) bytes (limit \(limit))") }
    }
}

/// Renders a ``Card`` as Block Kit from `templates/cards/slack/<kind>.mustache`. All untrusted text
/// is escaped for mrkdwn first, every text is cut to its limit, and the result is validated.
package struct BlockKitRenderer: Sendable {
    let templates: CardTemplates

    package init(templates: CardTemplates) { self.templates = templates }

    package func render(_ card: Card) throws -> SlackMessage {
        var context: [String: Any] = [:]
        context["title_plain"] = Self.plain(card.title, limit: BlockKitLimits.headerText)
        let body = card.body.map { Escaping.truncate(Self.mrkdwn($0), to: BlockKitLimits.sectionText) } ?? ""
        context["body"] = body
        context["has_body"] = !body.isEmpty
        let fields = card.fields.prefix(BlockKitLimits.sectionFields)
        context["fields"] = fields.enumerated().map { i, f -> [String: Any] in
            let text = "*\(Escaping.slackMrkdwn(f.label))*\n" + Self.mrkdwn(f.value)
            return ["text": Escaping.truncate(text, to: BlockKitLimits.fieldText), "last": i == fields.count - 1]
        }
        context["has_fields"] = !fields.isEmpty
        let state = card.stateLine.map { Escaping.truncate(Self.mrkdwn($0), to: BlockKitLimits.sectionText) } ?? ""
        context["state"] = state
        context["has_state"] = !state.isEmpty
        let footer = card.footer.map { Escaping.truncate(Self.mrkdwn($0), to: BlockKitLimits.contextText) } ?? ""
        context["footer"] = footer.isEmpty ? "Handoff" : footer
        let buttons = card.buttons.prefix(BlockKitLimits.actionsElements)
        context["buttons"] = buttons.enumerated().map { i, b -> [String: Any] in
            [
                "action_id": b.action.actionID, "value": String(b.value.prefix(BlockKitLimits.buttonValue)),
                "text": Self.plain(b.label, limit: BlockKitLimits.buttonText),
                "style": b.style == .plain ? "" : b.style.rawValue, "has_style": b.style != .plain, "last": i == buttons.count - 1,
            ]
        }
        context["has_buttons"] = !buttons.isEmpty
        context["block_id"] = card.entity.map { "handoff:\(CardButtonValue.encode($0))" } ?? "handoff"
        let json = try templates.render(context, template: "slack/\(card.kind.rawValue)")
        let blocks: JSONValue
        do {
            blocks = try JSONValue.parsePayload(json)
        } catch {
            throw BlockKitError(problems: ["template slack/\(card.kind.rawValue) did not produce JSON: \(error)"])
        }
        let fallback = Escaping.truncate(Self.mrkdwn(card.fallback), to: BlockKitLimits.fallbackText)
        let message = SlackMessage(text: fallback.isEmpty ? Escaping.slackMrkdwn(card.title) : fallback, blocks: blocks)
        try BlockKitValidator.validate(message)
        return message
    }

    /// Plain text for `plain_text` objects (no markup is parsed there), cut to the limit, never empty.
    static func plain(_ text: String, limit: Int) -> String {
        let flat = Escaping.inert(text).replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\r", with: " ").trimmingCharacters(in: .whitespaces)
        let cut = Escaping.truncatePlain(flat, to: limit)
        return cut.isEmpty ? "—" : cut
    }

    /// Renders rich text as mrkdwn: untrusted runs escaped, people as mentions, dates localized.
    package static func mrkdwn(_ text: RichText) -> String {
        var out = ""
        for run in text.runs {
            switch run {
            case .text(let s):
                out += Escaping.slackMrkdwn(s)
            case .bold(let s):
                let inner = Escaping.slackMrkdwn(s).replacingOccurrences(of: "*", with: "∗").trimmingCharacters(in: .whitespaces)
                if !inner.isEmpty { out += "*\(inner)*" }
            case .code(let s):
                let inner = Escaping.slackMrkdwn(s).replacingOccurrences(of: "`", with: "ˋ")
                if !inner.isEmpty { out += "`\(inner)`" }
            case .codeBlock(let s):
                let inner = Escaping.slackMrkdwn(s).replacingOccurrences(of: "```", with: "ˋˋˋ")
                out += "```\(inner.isEmpty ? " " : inner)```"
            case .command(let s):
                out += "`" + Escaping.slackMrkdwn(Command.slashCommand(s)).replacingOccurrences(of: "`", with: "ˋ") + "`"
            case .user(let id):
                out += mention(id)
            case .date(let d):
                let fallback = RichText.isoFormatter(d)
                out += "<!date^\(Int64(d.timeIntervalSince1970))^{date_short_pretty} {time}|\(fallback)>"
            }
        }
        return out
    }

    /// `slack:U123` → `<@U123>`; anyone else is shown by name, escaped.
    package static func mention(_ id: ActorID) -> String {
        if id.namespace == "slack", isUserID(id.localPart) { return "<@\(id.localPart)>" }
        return "`" + Escaping.slackMrkdwn(id.rawValue).replacingOccurrences(of: "`", with: "ˋ") + "`"
    }

    /// Slack user ids: `U…`/`W…` then upper-case letters and digits.
    static func isUserID(_ s: Substring) -> Bool {
        guard let first = s.first, first == "U" || first == "W", s.count >= 2, s.count <= 32 else { return false }
        return s.allSatisfy { ($0.isASCII && $0.isUppercase) || ($0.isASCII && $0.isNumber) }
    }
}
