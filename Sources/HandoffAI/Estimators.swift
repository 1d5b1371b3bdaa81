import Foundation
import HandoffCore

/// How a route measures the confidence of an AI answer.
package enum EstimatorKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// A second call asks the model to rate its own answer; read with the core's ``ConfidenceParser``.
    case selfRating = "self_rating"
    /// n samples at temperature > 0; confidence is how many agree with the answer returned.
    case selfConsistency = "self_consistency"
    /// The mean (or minimum) probability of the answer's tokens (OpenAI-compatible servers).
    case logprobs
    /// The calling app supplies its own score (`POST /v1/route`); Handoff measures nothing.
    case caller
}

/// Self-consistency voting: which sampled answer most others agree with, and how many do.
///
/// Order-independent: every sample's support is the number of samples that agree with it (itself
/// included); the best-supported sample is returned, ties going to the one most similar to all the
/// others, then to the earliest. Confidence is support ÷ samples requested, so failed samples count
/// as disagreement.
package struct SelfConsistency: Sendable {
    package enum Agreement: String, Hashable, Sendable, Codable {
        /// Same text after lower-casing and dropping punctuation and extra spaces.
        case exact
        /// Jaccard similarity of the answers' content words (stemmed, stopwords removed) at least ``threshold``.
        case similarity
    }

    package struct Vote: Hashable, Sendable {
        /// The majority answer (one of the samples, as the model wrote it).
        package var answer: String
        /// How many samples agree with it.
        package var support: Int
        /// support ÷ requested samples.
        package var confidence: Double
        /// Each sample's support, in sample order.
        package var supports: [Int]
    }

    package var agreement: Agreement
    package var threshold: Double

    package init(agreement: Agreement = .similarity, threshold: Double = 0.6) {
        self.agreement = agreement
        self.threshold = threshold
    }

    /// How alike two answers are, 0–1.
    package func similarity(_ a: String, _ b: String) -> Double {
        let na = PhraseMatcher.normalize(a)
        let nb = PhraseMatcher.normalize(b)
        if na == nb { return 1 }
        switch agreement {
        case .exact: return 0
        case .similarity:
            let ta = Set(TextAnalysis.tokens(a))
            let tb = Set(TextAnalysis.tokens(b))
            // Answers made only of stopwords ("yes", "no") are compared as normalized text above.
            if ta.isEmpty || tb.isEmpty { return 0 }
            return TextAnalysis.jaccard(ta, tb)
        }
    }

    /// Votes over the samples that came back; `requested` is how many were asked for. Nil when none came back.
    package func vote(_ samples: [String], requested: Int? = nil) -> Vote? {
        let answers = samples.filter { $0.nilIfBlank != nil }
        guard !answers.isEmpty else { return nil }
        let n = answers.count
        var supports = Array(repeating: 0, count: n)
        var closeness = Array(repeating: 0.0, count: n)
        for i in 0..<n {
            for j in 0..<n {
                let s = i == j ? 1 : similarity(answers[i], answers[j])
                closeness[i] += s
                if i == j || s >= (agreement == .exact ? 1 : threshold) { supports[i] += 1 }
            }
        }
        var best = 0
        for i in 1..<n where supports[i] > supports[best] || (supports[i] == supports[best] && closeness[i] > closeness[best] + 1e-12) {
            best = i
        }
        let total = max(requested ?? n, n)
        return Vote(answer: answers[best], support: supports[best], confidence: Double(supports[best]) / Double(total), supports: supports)
    }
}

/// Confidence from token log-probabilities.
package enum LogprobConfidence {
    package enum Aggregate: String, Hashable, Sendable, Codable {
        /// The arithmetic mean of the token probabilities.
        case mean
        /// The geometric mean, exp(mean log-probability): 1 / per-token perplexity.
        case geometric
        /// The least likely token's probability: one unsure token makes the answer unsure.
        case min
    }

    /// The answer's confidence, or nil without tokens. Non-finite log-probabilities count as probability 0.
    package static func confidence(_ logprobs: [Double], aggregate: Aggregate) -> Double? {
        guard !logprobs.isEmpty else { return nil }
        let clean = logprobs.map { $0.isFinite ? Swift.min(0, $0) : -Double.infinity }
        let value: Double
        switch aggregate {
        case .mean: value = clean.reduce(0) { $0 + exp($1) } / Double(clean.count)
        case .geometric:
            let mean = clean.reduce(0, +) / Double(clean.count)
            value = mean.isFinite ? exp(mean) : 0
        case .min: value = exp(clean.min() ?? -Double.infinity)
        }
        return Swift.max(0, Swift.min(1, value))
    }
}
