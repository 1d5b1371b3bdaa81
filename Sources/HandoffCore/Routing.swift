import Foundation

/// Why a self-rating text could not be read as a confidence.
package struct ConfidenceParseFailure: Error, Hashable, Sendable {
    package var text: String
    package var reason: String
}

/// Reads a model's self-rating into [0, 1].
///
/// The scale is decided from the text itself: "0.85" is already a probability, "85%" and "85/100" are
/// out of 100, "8/10" out of 10, a bare "85" can only be a percentage, words map to fixed points. A value
/// on the 0–1 scale is never divided by 100. Anything unreadable or out of range is a failure, and the
/// caller must route it to a person.
package enum ConfidenceParser {
    static let words: [(String, Double)] = [
        ("very high", 0.95), ("very low", 0.1), ("extremely high", 0.97), ("extremely low", 0.05),
        ("certain", 0.97), ("high", 0.85), ("medium", 0.6), ("moderate", 0.6), ("low", 0.3), ("uncertain", 0.3),
    ]

    package static func parse(_ raw: String) -> Result<Double, ConfidenceParseFailure> {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        func fail(_ reason: String) -> Result<Double, ConfidenceParseFailure> {
            .failure(ConfidenceParseFailure(text: String(raw.prefix(200)), reason: reason))
        }
        guard !text.isEmpty else { return fail("the self-rating is empty") }
        guard text.count <= 2000 else { return fail("the self-rating is too long to be a rating") }
        let lower = text.lowercased()

        // Look after a "confidence" label first, then in the whole text; in each, whichever rating
        // comes first wins ("Confidence: high (I checked 3 sources)" is high, not 3).
        var regions: [Substring] = []
        if let label = lower.range(of: "confidence") { regions.append(lower[label.upperBound...]) }
        regions.append(lower[...])
        for region in regions {
            let number = firstNumber(in: region)
            let word = firstWord(in: region)
            if let word, word.position < (number?.position ?? region.endIndex) { return .success(word.value) }
            if let number { return interpret(number, fail: fail) }
        }
        return fail("no number or confidence word found")
    }

    /// The first confidence word in the text ("high", "very low") as a whole word; at one position
    /// the longer phrase wins ("very high" over "high").
    static func firstWord(in text: Substring) -> (value: Double, position: String.Index)? {
        var best: (value: Double, position: String.Index, length: Int)?
        for (word, value) in words {
            var from = text.startIndex
            while let r = text.range(of: word, range: from..<text.endIndex) {
                let before = r.lowerBound == text.startIndex ? nil : text[text.index(before: r.lowerBound)]
                let after = r.upperBound == text.endIndex ? nil : text[r.upperBound]
                if !(before?.isLetter ?? false) && !(after?.isLetter ?? false) {
                    if best == nil || r.lowerBound < best!.position || (r.lowerBound == best!.position && word.count > best!.length) {
                        best = (value, r.lowerBound, word.count)
                    }
                    break
                }
                from = r.upperBound
            }
        }
        return best.map { ($0.value, $0.position) }
    }

    /// A number found in the text and the scale markers next to it.
    struct FoundNumber {
        var position: String.Index
        var value: Double
        var text: String
        var percent: Bool
        var denominator: Double?
        var negative: Bool
    }

    static func firstNumber(in text: Substring) -> FoundNumber? {
        var i = text.startIndex
        while i < text.endIndex {
            let ch = text[i]
            if ch.isASCII && (ch.isNumber || (ch == "." && text.index(after: i) < text.endIndex && text[text.index(after: i)].isNumber)) {
                let negative = i > text.startIndex && text[text.index(before: i)] == "-"
                var j = i
                var digits = ""
                while j < text.endIndex, text[j].isASCII, text[j].isNumber || text[j] == "." {
                    digits.append(text[j])
                    j = text.index(after: j)
                }
                if digits.hasSuffix(".") { digits.removeLast() }
                guard let value = Double(digits) else { return nil }
                var rest = text[j...].drop { $0 == " " }
                var percent = false
                var denominator: Double?
                if rest.hasPrefix("%") || rest.hasPrefix("percent") {
                    percent = true
                } else if rest.hasPrefix("/") || rest.hasPrefix("out of") {
                    rest = rest.hasPrefix("/") ? rest.dropFirst() : rest.dropFirst("out of".count)
                    rest = rest.drop { $0 == " " }
                    let d = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
                    denominator = Double(d)
                }
                return FoundNumber(position: i, value: value, text: digits, percent: percent, denominator: denominator, negative: negative)
            }
            i = text.index(after: i)
        }
        return nil
    }

    static func interpret(_ n: FoundNumber, fail: (String) -> Result<Double, ConfidenceParseFailure>) -> Result<Double, ConfidenceParseFailure> {
        if n.negative { return fail("a confidence cannot be negative (-\(n.text))") }
        let value: Double
        if let d = n.denominator {
            guard d > 0 else { return fail("the scale \(n.text)/\(d) has a zero denominator") }
            value = n.value / d
        } else if n.percent {
            value = n.value / 100
        } else if n.value <= 1 {
            // Already a probability: 0.85 means 0.85, never 0.0085.
            value = n.value
        } else if n.value <= 10 {
            // "8" could be 8/10 or 8%: guessing could auto-send an unsure answer, so refuse.
            return fail("\(n.text) is ambiguous without a scale; expected 0.8, 80% or 8/10")
        } else if n.value <= 100 {
            // A bare number above 10 can only be a percentage ("85").
            value = n.value / 100
        } else {
            return fail("\(n.text) is outside every known scale (0–1, 0–100, n/d)")
        }
        guard (0...1).contains(value) else {
            return fail("\(n.text)\(n.percent ? "%" : n.denominator.map { "/\(Int($0))" } ?? "") is outside 0–1")
        }
        return .success(value)
    }
}

/// Where a confidence came from.
package enum ConfidenceInput: Hashable, Sendable {
    /// A number the caller computed.
    case score(Double)
    /// A model's self-rating text, parsed by ``ConfidenceParser``.
    case selfRating(String)
    /// No confidence could be produced (e.g. no AI provider); routes to a person with this reason.
    case unavailable(reason: String)
}

/// The routing outcome.
package enum RoutingDecision: Hashable, Sendable {
    /// Confident enough: the answer goes to the user.
    case autoSend(confidence: Double)
    /// Send to a review queue, with the reason recorded.
    case review(confidence: Double?, reason: String)
    /// Hand the conversation to a person at the escalation tiers.
    case escalate(confidence: Double?, reason: String)

    package var name: String {
        switch self {
        case .autoSend: "auto_send"
        case .review: "review"
        case .escalate: "escalate"
        }
    }

    package var confidence: Double? {
        switch self {
        case .autoSend(let c): c
        case .review(let c, _), .escalate(let c, _): c
        }
    }

    package var reason: String? {
        switch self {
        case .autoSend: nil
        case .review(_, let r), .escalate(_, let r): r
        }
    }
}

package enum Router {
    /// Routes one answer. Unparseable or missing confidence never auto-sends.
    package static func route(
        answer: String?, confidence input: ConfidenceInput, userMessage: String?, route: RouteConfig,
        escalation: EscalationConfig
    ) -> RoutingDecision {
        if let message = userMessage, PhraseMatcher(phrases: escalation.phrases).matches(message) != nil {
            return .escalate(confidence: nil, reason: "the user asked for a person")
        }
        let confidence: Double
        switch input {
        case .score(let c):
            guard c.isFinite, (0...1).contains(c) else {
                return .review(confidence: nil, reason: "confidence \(c) is outside 0–1")
            }
            confidence = c
        case .selfRating(let text):
            switch ConfidenceParser.parse(text) {
            case .success(let c): confidence = c
            case .failure(let failure):
                return .review(confidence: nil, reason: "could not read the self-rating '\(failure.text)': \(failure.reason)")
            }
        case .unavailable(let reason):
            return .review(confidence: 0, reason: reason)
        }
        if let answer, let phrase = PhraseMatcher(phrases: escalation.cannotHelpPhrases).matches(answer) {
            return .escalate(confidence: confidence, reason: "the AI answer says it cannot help (\"\(phrase)\")")
        }
        if let floor = route.escalationFloor, confidence < floor {
            return .escalate(confidence: confidence, reason: "confidence \(format(confidence)) is below the escalation floor \(format(floor))")
        }
        if confidence >= route.threshold { return .autoSend(confidence: confidence) }
        return .review(confidence: confidence, reason: "confidence \(format(confidence)) is below the threshold \(format(route.threshold))")
    }

    static func format(_ x: Double) -> String { String(format: "%.2f", x) }
}

/// Finds configured phrases in free text, ignoring case, punctuation and spacing.
package struct PhraseMatcher: Sendable {
    let phrases: [(original: String, normalized: String)]

    package init(phrases: [String]) {
        self.phrases = phrases.map { ($0, Self.normalize($0)) }.filter { !$0.1.isEmpty }
    }

    /// Lowercased words separated by single spaces; apostrophes vanish ("can't" → "cant").
    package static func normalize(_ text: String) -> String {
        var out = ""
        var pendingSpace = false
        for ch in text.lowercased() {
            if ch == "'" || ch == "\u{2019}" { continue }
            if ch.isLetter || ch.isNumber {
                if pendingSpace && !out.isEmpty { out.append(" ") }
                pendingSpace = false
                out.append(ch)
            } else {
                pendingSpace = true
            }
        }
        return out
    }

    /// The first configured phrase found as whole words, or nil.
    package func matches(_ text: String) -> String? {
        let haystack = " " + Self.normalize(text) + " "
        return phrases.first { haystack.contains(" \($0.normalized) ") }?.original
    }
}
