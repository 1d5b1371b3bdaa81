import Foundation
import HandoffChatKit
import HandoffCore

/// A message ready to send: the plain `body` every client shows and the HTML `formatted_body`
/// (`org.matrix.custom.html`), plus the people it mentions on purpose.
package struct MatrixMessage: Hashable, Sendable {
    package var body: String
    package var formattedBody: String
    /// User ids for `m.mentions.user_ids`; an empty list still sends `m.mentions`, which turns off the
    /// legacy body-keyword mentions (`@room`, display names) on clients and servers that support it.
    package var mentions: [String]

    package init(body: String, formattedBody: String, mentions: [String] = []) {
        self.body = body
        self.formattedBody = formattedBody
        self.mentions = mentions
    }

    /// The event content (`m.room.message`), as `msgtype` (bots send `m.notice`).
    package func content(msgtype: String) -> [String: JSONValue] {
        [
            "msgtype": .string(msgtype), "body": .string(body), "format": .string("org.matrix.custom.html"),
            "formatted_body": .string(formattedBody),
            "m.mentions": .object(mentions.isEmpty ? [:] : ["user_ids": .array(mentions.map(JSONValue.string))]),
        ]
    }
}

/// Matrix's limits, checked before anything is sent.
package enum MatrixLimits {
    /// The whole event may be 65,536 bytes; the content is kept well under, for the envelope. An
    /// edit's content counts its new content and its fallback together (the fallback is shortened).
    package static let contentBytes = 60_000
    /// Each text of a card's title, fields and state line, in characters.
    package static let fieldCharacters = 2_000
    /// The same when the card is still too big without its body.
    package static let shortCharacters = 200
}

/// A card that cannot be sent, with the limit it breaks.
package struct MatrixRenderError: Error, Hashable, Sendable, CustomStringConvertible {
    package var description: String
}

/// Renders a ``Card`` as a Matrix message from `templates/cards/matrix/<kind>.mustache` (HTML) and
/// `<kind>.text.mustache` (the plain body). Untrusted text is escaped for HTML and neutralized
/// (`@room`, `@user:server`, `matrix.to`) before it reaches a template; only people the workflow
/// names (``Inline/user(_:)`` runs with a valid Matrix id) become `matrix.to` pills.
package struct MatrixRenderer: Sendable {
    let templates: CardTemplates

    package init(templates: CardTemplates) { self.templates = templates }

    package func render(_ card: Card) throws -> MatrixMessage {
        let message = try render(card, body: card.body, cut: MatrixLimits.fieldCharacters)
        if Self.size(message) <= MatrixLimits.contentBytes { return message }
        // Too big even with quotes cut by the card builder: show the rest of the card without the body,
        // then with every text of it cut short (escaping can make a text several times longer in HTML).
        let short = card.body.map { _ in RichText([.text("(too long to show here; see the dashboard)")]) }
        let smaller = try render(card, body: short, cut: MatrixLimits.fieldCharacters)
        if Self.size(smaller) <= MatrixLimits.contentBytes { return smaller }
        let smallest = try render(card, body: short, cut: MatrixLimits.shortCharacters)
        guard Self.size(smallest) <= MatrixLimits.contentBytes else {
            throw MatrixRenderError(description: "card \(card.kind.rawValue) is \(Self.size(smallest)) bytes, over Matrix's \(MatrixLimits.contentBytes)-byte limit for an event's content")
        }
        return smallest
    }

    private func render(_ card: Card, body: RichText?, cut limit: Int) throws -> MatrixMessage {
        var html: [String: Any] = [:]
        var text: [String: Any] = [:]
        let title = card.title.count > limit ? String(card.title.prefix(limit)) + "…" : card.title
        html["title"] = Escaping.matrixHTML(title)
        text["title"] = Escaping.matrixPlain(title)
        let bodyHTML = body.map(Self.html) ?? ""
        html["body"] = bodyHTML
        text["body"] = body.map(Self.plain) ?? ""
        html["has_body"] = !bodyHTML.isEmpty
        text["has_body"] = !bodyHTML.isEmpty
        html["fields"] = card.fields.map { f -> [String: Any] in
            ["label": Escaping.matrixHTML(f.label), "value": Self.html(Self.cut(f.value, to: limit))]
        }
        text["fields"] = card.fields.map { f -> [String: Any] in
            ["label": Escaping.matrixPlain(f.label), "value": Self.plain(Self.cut(f.value, to: limit))]
        }
        html["has_fields"] = !card.fields.isEmpty
        text["has_fields"] = !card.fields.isEmpty
        let state = Self.cut(card.stateLine ?? RichText([]), to: limit)
        html["state"] = Self.html(state)
        text["state"] = Self.plain(state)
        html["has_state"] = !state.isEmpty
        text["has_state"] = !state.isEmpty
        let footer = card.footer ?? "Handoff"
        html["footer"] = Self.html(footer)
        text["footer"] = Self.plain(footer)
        let formatted = try templates.render(html, template: "matrix/\(card.kind.rawValue)")
        let plain = try templates.render(text, template: "matrix/\(card.kind.rawValue).text")
        return MatrixMessage(body: Self.tidy(plain), formattedBody: formatted.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A message (not a card): HTML and plain text, mentioning the Matrix people it names; long texts
    /// (a resolution, an AI answer) are cut until the event fits Matrix's size limit.
    package static func message(_ text: RichText) -> MatrixMessage {
        var message = MatrixMessage(body: plain(text), formattedBody: html(text), mentions: mentionedUsers(text))
        for limit in [MatrixLimits.fieldCharacters * 2, MatrixLimits.shortCharacters] where size(message) > MatrixLimits.contentBytes {
            let cut = cut(text, to: limit)
            message = MatrixMessage(body: plain(cut), formattedBody: html(cut), mentions: mentionedUsers(cut))
        }
        return message
    }

    /// The content of an edit (`m.replace`): the new content in `m.new_content`, and at the top level
    /// the `* ` fallback older clients show — the whole card when the event stays within Matrix's
    /// limit, else its first lines (the fallback would otherwise double the event's size).
    package static func editContent(_ message: MatrixMessage, msgtype: String, replacing messageID: String) -> [String: JSONValue] {
        func content(_ fallback: MatrixMessage) -> [String: JSONValue] {
            var content = fallback.content(msgtype: msgtype)
            content["m.new_content"] = .object(message.content(msgtype: msgtype))
            content["m.relates_to"] = .object(["rel_type": .string("m.replace"), "event_id": .string(messageID)])
            return content
        }
        let full = content(MatrixMessage(body: "* " + message.body, formattedBody: "* " + message.formattedBody))
        if JSONValue.object(full).jsonText.utf8.count <= MatrixLimits.contentBytes { return full }
        let lines = message.body.split(separator: "\n", omittingEmptySubsequences: false).prefix(3).joined(separator: "\n")
        let short = lines.count > MatrixLimits.shortCharacters ? String(lines.prefix(MatrixLimits.shortCharacters)) + "…" : lines
        return content(MatrixMessage(body: "* " + short, formattedBody: "* " + Escaping.html(short).replacingOccurrences(of: "\n", with: "<br>")))
    }

    /// Rich text as `org.matrix.custom.html`: untrusted runs escaped and neutralized, people as pills.
    package static func html(_ text: RichText) -> String {
        var out = ""
        for run in text.runs {
            switch run {
            case .text(let s): out += Escaping.matrixHTML(s)
            case .bold(let s): out += s.isEmpty ? "" : "<strong>\(Escaping.matrixHTML(s))</strong>"
            case .code(let s): out += s.isEmpty ? "" : "<code>\(Escaping.matrixHTML(s))</code>"
            case .codeBlock(let s): out += "<pre><code>\(Escaping.matrixPlain(Escaping.html(s)))</code></pre>"
            case .command(let s): out += "<code>\(Escaping.matrixHTML(command(s)))</code>"
            case .user(let id):
                if let mxid = matrixUserID(id) {
                    out += "<a href=\"https://matrix.to/#/\(Escaping.html(mxid))\">\(Escaping.html(mxid))</a>"
                } else {
                    out += "<code>\(Escaping.matrixHTML(id.rawValue))</code>"
                }
            case .date(let d): out += Escaping.html(RichText.isoFormatter(d))
            }
        }
        return out
    }

    /// Rich text as the plain `body`: untrusted runs neutralized, people as their ids.
    package static func plain(_ text: RichText) -> String {
        var out = ""
        for run in text.runs {
            switch run {
            case .text(let s), .bold(let s), .code(let s): out += Escaping.matrixPlain(s)
            case .codeBlock(let s): out += "\n" + Escaping.matrixPlain(s) + "\n"
            case .command(let s): out += Escaping.matrixPlain(command(s))
            case .user(let id): out += matrixUserID(id) ?? Escaping.matrixPlain(id.rawValue)
            case .date(let d): out += RichText.isoFormatter(d)
            }
        }
        return out
    }

    /// `resolve 42 <answer>` as typed on Matrix, which has no slash commands: `!handoff resolve 42 <answer>`.
    package static func command(_ arguments: String) -> String {
        arguments.isEmpty ? "!\(Command.slashName)" : "!\(Command.slashName) \(arguments)"
    }

    /// The Matrix people a text names (for `m.mentions`).
    package static func mentionedUsers(_ text: RichText) -> [String] {
        var seen: [String] = []
        for case .user(let id) in text.runs {
            if let mxid = matrixUserID(id), !seen.contains(mxid) { seen.append(mxid) }
        }
        return seen
    }

    /// `matrix:@alice:example.org` → `@alice:example.org` when it is a well-formed Matrix user id.
    package static func matrixUserID(_ id: ActorID) -> String? {
        guard id.namespace == MatrixStoredEvent.platform else { return nil }
        let mxid = String(id.localPart)
        return isUserID(mxid) ? mxid : nil
    }

    /// `@localpart:server`: the characters the spec allows, nothing that could break out of an attribute.
    package static func isUserID(_ s: String) -> Bool {
        guard s.hasPrefix("@"), s.count <= 255, let colon = s.firstIndex(of: ":") else { return false }
        let local = s[s.index(after: s.startIndex)..<colon]
        let server = s[s.index(after: colon)...]
        guard !local.isEmpty, !server.isEmpty else { return false }
        let localOK = local.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "._=-/+".contains($0)) }
        let serverOK = server.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-:[]".contains($0)) }
        return localOK && serverOK
    }

    /// Each text run cut to `limit` characters (whole grapheme clusters), ending with `…`.
    static func cut(_ text: RichText, to limit: Int) -> RichText {
        RichText(text.runs.map { run in
            switch run {
            case .text(let s) where s.count > limit: .text(String(s.prefix(limit)) + "…")
            case .bold(let s) where s.count > limit: .bold(String(s.prefix(limit)) + "…")
            case .code(let s) where s.count > limit: .code(String(s.prefix(limit)) + "…")
            case .codeBlock(let s) where s.count > limit: .codeBlock(String(s.prefix(limit)) + "…")
            default: run
            }
        })
    }

    /// Collapses the blank lines templates leave and trims the ends.
    private static func tidy(_ text: String) -> String {
        var out = text.trimmingCharacters(in: .whitespacesAndNewlines)
        while out.contains("\n\n\n") { out = out.replacingOccurrences(of: "\n\n\n", with: "\n\n") }
        return out
    }

    static func size(_ m: MatrixMessage) -> Int {
        JSONValue.object(m.content(msgtype: "m.notice")).jsonText.utf8.count
    }
}
