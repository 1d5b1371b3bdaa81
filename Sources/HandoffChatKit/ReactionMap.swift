import Foundation

/// What a reaction on a card means.
package enum ReactionAction: String, Hashable, Sendable, Codable, CaseIterable {
    case approve, reject, revise, claim, escalate
    case feedbackPositive = "feedback_positive"
    case feedbackNegative = "feedback_negative"
}

/// Maps reaction names (Slack shortcodes, unicode emoji) to actions. Configurable per action in the
/// policy file's `chat.reactions`; aliases (`+1`/`thumbsup`) and skin tones (`+1::skin-tone-3`,
/// `👍🏽`) map like the base emoji; anything unknown maps to nothing.
package struct ReactionMap: Hashable, Sendable {
    package private(set) var names: [ReactionAction: [String]]
    private var index: [String: ReactionAction]

    /// The defaults: ✅ approve, ❌ reject, 🔁 revise, ✋ claim, ⬆️ escalate, 👍/👎 feedback.
    package static let defaultNames: [ReactionAction: [String]] = [
        .approve: ["white_check_mark", "heavy_check_mark", "ballot_box_with_check", "✅", "✔️", "☑️"],
        .reject: ["x", "negative_squared_cross_mark", "no_entry_sign", "❌", "❎", "🚫"],
        .revise: ["repeat", "arrows_counterclockwise", "recycle", "🔁", "🔄", "♻️"],
        .claim: ["raised_hand", "hand", "raising_hand", "✋", "🙋"],
        .escalate: ["arrow_up", "arrow_double_up", "⬆️", "⏫"],
        .feedbackPositive: ["+1", "thumbsup", "👍"],
        .feedbackNegative: ["-1", "thumbsdown", "👎"],
    ]

    package init(names: [ReactionAction: [String]] = ReactionMap.defaultNames) {
        self.names = names
        var index: [String: ReactionAction] = [:]
        for action in ReactionAction.allCases {
            for name in names[action] ?? [] { index[Self.normalize(name)] = action }
        }
        self.index = index
    }

    /// The defaults with some actions' names replaced (from configuration).
    package func overriding(_ overrides: [ReactionAction: [String]]) -> ReactionMap {
        var merged = names
        for (action, list) in overrides { merged[action] = list }
        return ReactionMap(names: merged)
    }

    /// The action for a reaction name, or nil for an emoji that means nothing here.
    package func action(for name: String) -> ReactionAction? {
        index[Self.normalize(name)]
    }

    /// The first configured shortcode for an action (what the bot itself reacts with).
    package func shortcode(for action: ReactionAction) -> String? {
        names[action]?.first { $0.unicodeScalars.allSatisfy(\.isASCII) }
    }

    /// The first configured emoji for an action (what the bot seeds on its cards where reactions are
    /// raw emoji, as on Matrix): `✅` for approve by default.
    package func emoji(for action: ReactionAction) -> String? {
        names[action]?.first { !$0.unicodeScalars.allSatisfy(\.isASCII) }
    }

    /// Lower-cases, drops surrounding colons, skin tones (`::skin-tone-3`, U+1F3FB…U+1F3FF) and the
    /// variation selectors (U+FE0F emoji style, U+FE0E text style), so every spelling of one emoji
    /// compares equal: `✔️` and `✔`, `👍︎` and `👍`.
    package static func normalize(_ raw: String) -> String {
        var name = raw.trimmingCharacters(in: .whitespaces)
        if name.hasPrefix(":") && name.hasSuffix(":") && name.count > 2 { name = String(name.dropFirst().dropLast()) }
        if let range = name.range(of: "::skin-tone-") { name = String(name[..<range.lowerBound]) }
        let scalars = name.unicodeScalars.filter { s in
            !(0x1F3FB...0x1F3FF).contains(s.value) && s.value != 0xFE0F && s.value != 0xFE0E
        }
        return String(String.UnicodeScalarView(scalars)).lowercased()
    }
}
