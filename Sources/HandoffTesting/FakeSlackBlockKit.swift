import Foundation
import HandoffCore

/// The fake's own Block Kit checks — written apart from the bot's validator on purpose, so a bug in
/// one is caught by the other. Violations answer `invalid_blocks` like Slack does. Text lengths are
/// UTF-8 bytes: Slack documents characters but refuses some multi-byte text under the character
/// count, so the fake refuses whatever Slack might.
package enum FakeSlackBlockKit {
    /// Problems with a message's `text` and `blocks`; empty when Slack would accept it.
    package static func problems(text: String?, blocks: JSONValue?) -> [String] {
        var out: [String] = []
        if let text, text.utf8.count > 40_000 { out.append("msg_too_long") }
        guard let blocks else { return out }
        guard case .array(let list) = blocks else { return ["blocks must be an array"] }
        if list.count > 50 { out.append("more than 50 blocks") }
        var blockIDs = Set<String>()
        for (i, block) in list.enumerated() {
            guard case .object(let b) = block else { out.append("[\(i)] not an object"); continue }
            if case .string(let id)? = b["block_id"] {
                if id.count > 255 { out.append("[\(i)] block_id too long") }
                if !blockIDs.insert(id).inserted { out.append("[\(i)] duplicate block_id") }
            }
            guard case .string(let type)? = b["type"] else { out.append("[\(i)] missing type"); continue }
            switch type {
            case "header":
                textObject(b["text"], max: 150, plain: true, at: "[\(i)].text", into: &out)
            case "section":
                let hasFields: Bool
                if case .array(let fields)? = b["fields"] {
                    hasFields = true
                    if fields.isEmpty || fields.count > 10 { out.append("[\(i)].fields must have 1-10 items") }
                    for (j, f) in fields.enumerated() { textObject(f, max: 2000, plain: false, at: "[\(i)].fields[\(j)]", into: &out) }
                } else {
                    hasFields = false
                }
                if let t = b["text"] {
                    textObject(t, max: 3000, plain: false, at: "[\(i)].text", into: &out)
                } else if !hasFields {
                    out.append("[\(i)] section needs text or fields")
                }
            case "context":
                guard case .array(let elements)? = b["elements"], !elements.isEmpty, elements.count <= 10 else {
                    out.append("[\(i)].elements must have 1-10 items")
                    continue
                }
                for (j, e) in elements.enumerated() { textObject(e, max: 3000, plain: false, at: "[\(i)].elements[\(j)]", into: &out) }
            case "actions":
                guard case .array(let elements)? = b["elements"], !elements.isEmpty, elements.count <= 25 else {
                    out.append("[\(i)].elements must have 1-25 items")
                    continue
                }
                var actionIDs = Set<String>()
                for (j, e) in elements.enumerated() {
                    guard case .object(let button) = e, case .string("button")? = button["type"] else {
                        out.append("[\(i)].elements[\(j)] unsupported element")
                        continue
                    }
                    textObject(button["text"], max: 75, plain: true, at: "[\(i)].elements[\(j)].text", into: &out)
                    if case .string(let actionID)? = button["action_id"] {
                        if actionID.count > 255 { out.append("[\(i)].elements[\(j)].action_id too long") }
                        if !actionIDs.insert(actionID).inserted { out.append("[\(i)].elements[\(j)] duplicate action_id") }
                    }
                    if case .string(let value)? = button["value"], value.count > 2000 { out.append("[\(i)].elements[\(j)].value too long") }
                    if let style = button["style"], style != .string("primary"), style != .string("danger") {
                        out.append("[\(i)].elements[\(j)].style invalid")
                    }
                }
            case "divider":
                break
            default:
                out.append("[\(i)] unknown block type \(type)")
            }
        }
        return out
    }

    private static func textObject(_ value: JSONValue?, max: Int, plain: Bool, at: String, into out: inout [String]) {
        guard case .object(let o)? = value, case .string(let type)? = o["type"], case .string(let text)? = o["text"] else {
            out.append("\(at) must be a text object")
            return
        }
        if plain && type != "plain_text" { out.append("\(at) must be plain_text") }
        if type != "plain_text" && type != "mrkdwn" { out.append("\(at) has unknown type \(type)") }
        if text.isEmpty { out.append("\(at) must not be empty") }
        if text.utf8.count > max { out.append("\(at) must be at most \(max) bytes") }
    }
}
