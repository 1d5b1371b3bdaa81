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
        for ch in text {
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

    /// Escapes text for HTML (the dashboard, Mattermost-style markup).
    package static func html(_ text: String) -> String {
        var out = ""
        for ch in text {
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

    /// Cuts escaped text to at most `limit` characters without splitting an `&…;` entity, adding `…`.
    package static func truncate(_ text: String, to limit: Int) -> String {
        guard text.count > limit else { return text }
        guard limit > 1 else { return String(text.prefix(limit)) }
        var cut = String(text.prefix(limit - 1))
        if let amp = cut.lastIndex(of: "&"), !cut[amp...].contains(";") {
            cut = String(cut[..<amp])
        }
        return cut + "…"
    }
}
