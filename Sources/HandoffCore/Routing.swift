import Foundation

/// Why a self-rating text could not be read as a confidence.
package struct ConfidenceParseFailure: Error, Hashable, Sendable {
    package var text: String
    package var reason: String
}

/// Reads a model's self-rating into [0, 1].
///
/// Only evidence that is clearly a rating counts: the whole text being one rating ("0.85", "85%",
/// "8/10", "high"); a rating right after a label ("Confidence: 0.9", "my certainty is very low",
/// "I'd rate it 0.7"); a rating word right before "confidence" ("low confidence"); or a number with a
/// scale ("85%", "8/10", "3 out of 5"). A detached number ("step 1 was unclear") is not a rating.
/// The scale is decided from the text: "0.85" is a probability and is never divided by 100. Anything
/// unreadable, out of range, ambiguous or self-contradicting is a failure, and the caller must route
/// the answer to a person.
package enum ConfidenceParser {
    static let words: [(String, Double)] = [
        ("extremely high", 0.97), ("extremely low", 0.05), ("very high", 0.95), ("very low", 0.1),
        ("certain", 0.97), ("high", 0.85), ("medium", 0.6), ("moderate", 0.6), ("low", 0.3), ("uncertain", 0.3),
    ]
    static let labels = ["confidence", "certainty", "probability", "rating", "score", "rate"]
    static let fillers: Set<String> = [
        "is", "was", "level", "score", "of", "about", "around", "approximately", "roughly", "at", "it", "this", "as",
        "my", "overall", "would", "be", "i", "d", "say",
    ]
    /// Two readings further apart than this contradict each other.
    static let tolerance = 0.25

    package static func parse(_ raw: String) -> Result<Double, ConfidenceParseFailure> {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        func fail(_ reason: String) -> Result<Double, ConfidenceParseFailure> {
            .failure(ConfidenceParseFailure(text: String(raw.prefix(200)), reason: reason))
        }
        guard !text.isEmpty else { return fail("the self-rating is empty") }
        guard text.count <= 2000 else { return fail("the self-rating is too long to be a rating") }
        let lower = text.lowercased()

        // The whole text is one rating.
        var bare = lower[...]
        while let last = bare.last, ".!?;,\"' ".contains(last) { bare = bare.dropLast() }
        while let first = bare.first, "\"' ".contains(first) { bare = bare.dropFirst() }
        if let n = firstNumber(in: bare), n.start == bare.startIndex || (n.negative && bare.index(after: bare.startIndex) == n.start),
           n.end == bare.endIndex
        {
            return interpret(n, fail: fail)
        }
        if let value = words.first(where: { $0.0 == PhraseMatcher.normalize(String(bare)) })?.1 { return .success(value) }

        // Evidence inside a longer text.
        var readings: [Double] = []
        for label in labels {
            var from = lower.startIndex
            while let r = lower.range(of: label, range: from..<lower.endIndex) {
                from = r.upperBound
                guard isWordBoundary(lower, r) else { continue }
                if let after = rating(after: r.upperBound, in: lower) {
                    switch after {
                    case .number(let n):
                        switch interpret(n, fail: fail) {
                        case .success(let v): readings.append(v)
                        case .failure(let f): return .failure(f)
                        }
                    case .word(let v): readings.append(v)
                    }
                }
                if label == "confidence", let before = word(endingAt: r.lowerBound, in: lower) { readings.append(before) }
            }
        }
        var from = lower.startIndex
        while from < lower.endIndex, let n = firstNumber(in: lower[from...]) {
            from = n.end
            guard n.percent || n.denominator != nil else { continue }
            switch interpret(n, fail: fail) {
            case .success(let v): readings.append(v)
            case .failure(let f): return .failure(f)
            }
        }
        guard let first = readings.first else { return fail("no number or confidence word found") }
        if let outlier = readings.first(where: { abs($0 - first) > tolerance }) {
            return fail("the ratings contradict each other (\(format(first)) and \(format(outlier)))")
        }
        return .success(first)
    }

    static func format(_ x: Double) -> String { String(format: "%.2f", x) }

    enum Reading {
        case number(FoundNumber)
        case word(Double)
    }

    static func isWordBoundary(_ text: String, _ r: Range<String.Index>) -> Bool {
        let before = r.lowerBound == text.startIndex ? nil : text[text.index(before: r.lowerBound)]
        let after = r.upperBound == text.endIndex ? nil : text[r.upperBound]
        return !(before?.isLetter ?? false) && !(after?.isLetter ?? false)
    }

    /// The rating right after a label, skipping punctuation and filler words ("Confidence level: high").
    static func rating(after index: String.Index, in text: String) -> Reading? {
        var i = index
        while i < text.endIndex {
            let ch = text[i]
            if ch.isLetter {
                var j = i
                while j < text.endIndex, text[j].isLetter { j = text.index(after: j) }
                let token = String(text[i..<j])
                if fillers.contains(token) {
                    i = j
                    continue
                }
                let rest = text[i...]
                for (word, value) in words where rest.hasPrefix(word) {
                    let end = text.index(i, offsetBy: word.count)
                    if end == text.endIndex || !text[end].isLetter { return .word(value) }
                }
                return nil
            }
            if ch.isNumber || (ch == "." && text.index(after: i) < text.endIndex && text[text.index(after: i)].isNumber) {
                return firstNumber(in: text[i...]).map(Reading.number)
            }
            if ch == "-" , text.index(after: i) < text.endIndex, text[text.index(after: i)].isNumber {
                return firstNumber(in: text[i...]).map(Reading.number)
            }
            guard " :=-–—(~'\t".contains(ch) else { return nil }
            i = text.index(after: i)
        }
        return nil
    }

    /// A rating word ending right before `index` ("low confidence").
    static func word(endingAt index: String.Index, in text: String) -> Double? {
        let head = text[..<index].trimmingCharacters(in: .whitespaces)
        for (word, value) in words where head.hasSuffix(word) {
            let start = head.index(head.endIndex, offsetBy: -word.count)
            if start == head.startIndex || !head[head.index(before: start)].isLetter { return value }
        }
        return nil
    }

    /// A number found in the text and the scale markers next to it.
    struct FoundNumber {
        var start: String.Index
        /// Just past the number and its scale ("%", "/10", " out of 5").
        var end: String.Index
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
                var end = j
                var rest = text[j...].drop { $0 == " " }
                var percent = false
                var denominator: Double?
                if rest.hasPrefix("%") {
                    percent = true
                    end = rest.index(after: rest.startIndex)
                } else if rest.hasPrefix("percent") {
                    percent = true
                    end = rest.index(rest.startIndex, offsetBy: "percent".count)
                } else if rest.hasPrefix("/") || rest.hasPrefix("out of") {
                    rest = rest.hasPrefix("/") ? rest.dropFirst() : rest.dropFirst("out of".count)
                    rest = rest.drop { $0 == " " }
                    let d = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
                    if !d.isEmpty {
                        denominator = Double(d)
                        end = d.endIndex
                    }
                }
                return FoundNumber(start: i, end: end, value: value, text: digits, percent: percent, denominator: denominator,
                                   negative: negative)
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
        } else if n.value == 0 || (n.value <= 1 && n.text.contains(".")) {
            // Already a probability: 0.85 means 0.85, never 0.0085. Zero is zero on every scale.
            value = n.value
        } else if n.value <= 10 {
            // "8" could be 8/10 or 8%, and a bare "1" is the top of 0–1 but the bottom of 1–10 or 1–5:
            // guessing could auto-send an unsure answer, so refuse.
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
