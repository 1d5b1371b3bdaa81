import Foundation

/// Keeps untrusted text (AI output, user input) as text on each platform: no mention, broadcast or
/// link injection, whatever the text contains.
package enum Escaping {
    /// Escapes text for Slack mrkdwn: `&`, `<`, `>` become entities, so `<!channel>`, `<!here>`,
    /// `<@U123>`, `<#C1>` and `<https://evil|innocent>` show as typed instead of acting; bare
    /// `@channel`/`@here`/`@everyone` get a zero-width joiner so they cannot broadcast either.
    package static func slackMrkdwn(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in inert(text) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(ch)
            }
        }
        return neutralizeBroadcasts(out)
    }

    /// `@channel` → `@\u{2060}channel` (word joiner), case-insensitively, for the broadcast keywords.
    static func neutralizeBroadcasts(_ text: String) -> String {
        guard text.contains("@") else { return text }
        let chars = Array(text)
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for (i, ch) in chars.enumerated() {
            out.append(ch)
            guard ch == "@" else { continue }
            let following = String(chars[(i + 1)...].prefix(8)).lowercased()
            if ["channel", "here", "everyone"].contains(where: { following.hasPrefix($0) }) {
                out.append("\u{2060}")
            }
        }
        return out
    }

    /// Slack sends message text HTML-escaped (`&amp; &lt; &gt;`); this gives back what the person typed.
    package static func slackUnescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// Turns Slack message markup into what a person reads, for command arguments and comments:
    /// mentions of `botUserID` are removed (by id, never by display name), other mentions become
    /// `@name`/`@U123`, channels `#name`, links `label (url)`, broadcasts `@here`; entities are unescaped.
    package static func slackPlainText(_ text: String, removingMentionOf botUserID: String?) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: ">") else {
                out += rest[open...]
                rest = ""
                break
            }
            let token = rest[rest.index(after: open)..<close]
            out += render(token: token, botUserID: botUserID)
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        let collapsed = out.replacingOccurrences(of: "  ", with: " ")
        return slackUnescape(collapsed).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func render(token: Substring, botUserID: String?) -> String {
        let parts = token.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        let target = parts.first.map(String.init) ?? ""
        let label = parts.count > 1 ? String(parts[1]) : nil
        if target.hasPrefix("@") {
            let id = String(target.dropFirst())
            if let botUserID, id == botUserID { return "" }
            return "@" + (label ?? id)
        }
        if target.hasPrefix("#") { return "#" + (label ?? String(target.dropFirst())) }
        if target.hasPrefix("!") {
            let keyword = target.dropFirst().split(separator: "^").first.map(String.init) ?? ""
            return label ?? "@" + keyword
        }
        if let label, label != target { return "\(label) (\(target))" }
        return target
    }

    /// Escapes text for HTML text and quoted attribute values: `& < > " '` become entities. The one
    /// HTML escaper: Matrix `formatted_body`, the dashboard's SVG charts, Mattermost-style markup.
    package static func html(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in inert(text) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// Escapes untrusted text for a Matrix `formatted_body` (`org.matrix.custom.html`): HTML special
    /// characters become entities (no tag, link or pill can be made), line breaks become `<br>`, and
    /// the text is neutralized as in ``matrixPlain(_:)``.
    package static func matrixHTML(_ text: String) -> String {
        neutralizeMatrix(html(text)).replacingOccurrences(of: "\n", with: "<br>")
    }

    /// Neutralizes untrusted text for a Matrix plain `body`: `@room` cannot notify the room, `@user:server`
    /// cannot be linkified into a mention, and `matrix.to` links cannot become pills (a word joiner,
    /// U+2060, goes after the `@` and inside `matrix.to`, so the text reads the same).
    package static func matrixPlain(_ text: String) -> String {
        neutralizeMatrix(inert(text))
    }

    static func neutralizeMatrix(_ text: String) -> String {
        guard text.contains("@") || text.localizedCaseInsensitiveContains("matrix.to") else { return text }
        let chars = Array(text)
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        var i = 0
        while i < chars.count {
            let ch = chars[i]
            out.append(ch)
            if ch == "@" {
                let following = String(chars[(i + 1)...].prefix(5)).lowercased()
                let atWordStart = i == 0 || !(chars[i - 1].isLetter || chars[i - 1].isNumber)
                if following.hasPrefix("room") || (atWordStart && looksLikeUserID(chars, from: i + 1)) {
                    out.append("\u{2060}")
                }
            } else if (ch == "x" || ch == "X"), i >= 5, String(chars[(i - 5)...i]).lowercased() == "matrix",
                      i + 3 < chars.count, String(chars[(i + 1)...(i + 3)]).lowercased() == ".to"
            {
                out.append("\u{2060}")
            }
            i += 1
        }
        return out
    }

    /// `alice:example.org` after an `@`: a Matrix user id's localpart, a colon, then a server name.
    private static func looksLikeUserID(_ chars: [Character], from start: Int) -> Bool {
        var i = start
        var local = 0
        while i < chars.count, chars[i].isASCII, chars[i].isLetter || chars[i].isNumber || "._=-/+".contains(chars[i]) {
            local += 1
            i += 1
        }
        guard local > 0, i + 1 < chars.count, chars[i] == ":" else { return false }
        let next = chars[i + 1]
        return next.isASCII && (next.isLetter || next.isNumber || next == "[")
    }

    /// Replaces the characters that act instead of showing: C0 and C1 control characters other than
    /// tab, line feed and carriage return (NUL ends strings in C consumers and is refused by some
    /// homeservers' databases; ESC starts terminal sequences) and the bidirectional embedding, override
    /// and isolate controls (U+202A–U+202E, U+2066–U+2069), which reorder the text after them so it
    /// reads differently from what it is. Each becomes U+FFFD, so a reader sees that something was
    /// there; the replacement is one UTF-16 unit for one, so offsets into the text stay valid.
    /// Joiners (U+200D, U+200C), marks and variation selectors stay: emoji and scripts need them.
    package static func inert(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isActing) else { return text }
        var scalars = String.UnicodeScalarView()
        scalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            scalars.append(isActing(scalar) ? "\u{FFFD}" : scalar)
        }
        return String(scalars)
    }

    /// True for the characters ``inert(_:)`` replaces.
    package static func isActing(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: false
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// Cuts escaped Slack mrkdwn to at most `limit` UTF-8 bytes, ending with `…`.
    ///
    /// Bytes, because Slack documents its limits in characters yet refuses some multi-byte text
    /// (emoji, CJK) that is under the character count; a text within the limit in bytes is within it
    /// however it is counted. The cut never splits a grapheme cluster, an `&…;` entity or a `<…>`
    /// token (mentions and dates: after escaping, every `<` is one Handoff wrote), and a code block it
    /// cuts open is closed again.
    package static func truncate(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        let ellipsis = "…"
        let fence = "```"
        func cut(_ budget: Int) -> (text: Substring, openFence: Bool) {
            var cut = prefix(text, bytes: max(0, budget))
            if let amp = cut.lastIndex(of: "&"), !cut[amp...].contains(";") { cut = cut[..<amp] }
            if let open = cut.lastIndex(of: "<"), !cut[open...].contains(">") { cut = cut[..<open] }
            return (cut, cut.components(separatedBy: fence).count % 2 == 0)
        }
        guard limit >= ellipsis.utf8.count + fence.utf8.count else { return limit >= ellipsis.utf8.count ? ellipsis : "" }
        let first = cut(limit - ellipsis.utf8.count)
        guard first.openFence else { return String(first.text) + ellipsis }
        let second = cut(limit - ellipsis.utf8.count - fence.utf8.count)
        return String(second.text) + ellipsis + (second.openFence ? fence : "")
    }

    /// Plain text (no markup: Slack `plain_text`) cut to at most `limit` UTF-8 bytes, ending with `…`,
    /// never splitting a grapheme cluster.
    package static func truncatePlain(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        let ellipsis = "…"
        guard limit > ellipsis.utf8.count else { return limit >= ellipsis.utf8.count ? ellipsis : "" }
        return String(prefix(text, bytes: limit - ellipsis.utf8.count)) + ellipsis
    }

    /// The longest run of whole grapheme clusters from the start that fits in `bytes` UTF-8 bytes.
    static func prefix(_ text: String, bytes: Int) -> Substring {
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let size = text[index].utf8.count
            if used + size > bytes { break }
            used += size
            end = text.index(after: index)
        }
        return text[..<end]
    }
}
