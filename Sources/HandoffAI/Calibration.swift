import Foundation

/// Judged answers that share a raw confidence: how many, and how many a reviewer accepted as they were.
package struct OutcomeBin: Hashable, Sendable {
    package var confidence: Double
    package var total: Int
    package var acceptable: Int

    package init(confidence: Double, total: Int, acceptable: Int) {
        self.confidence = confidence
        self.total = total
        self.acceptable = acceptable
    }
}

/// A monotone (non-decreasing) step function fitted by pool-adjacent-violators: the closest
/// non-decreasing sequence to the observed rates in weighted least squares.
package struct IsotonicFit: Hashable, Sendable {
    package struct Block: Hashable, Sendable {
        /// The lowest and highest x pooled into this block.
        package var lower: Double
        package var upper: Double
        package var value: Double
        package var weight: Double
    }

    package var blocks: [Block]

    /// Fits points `(x, y, weight)`; points with equal x are pooled first. Weights must be positive.
    package static func fit(_ points: [(x: Double, y: Double, weight: Double)]) -> IsotonicFit {
        let sorted = points.filter { $0.weight > 0 && $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
        var blocks: [Block] = []
        for p in sorted {
            var block = Block(lower: p.x, upper: p.x, value: p.y, weight: p.weight)
            // Pool while the previous block is higher (a violation) or sits at the same x.
            while let last = blocks.last, last.value > block.value || last.upper == block.lower {
                let weight = last.weight + block.weight
                block = Block(lower: last.lower, upper: block.upper,
                              value: (last.value * last.weight + block.value * block.weight) / weight, weight: weight)
                blocks.removeLast()
            }
            blocks.append(block)
        }
        return IsotonicFit(blocks: blocks)
    }

    /// The fitted value at x: the block containing x, else the nearest block (constant outside the data).
    package func value(at x: Double) -> Double? {
        guard let first = blocks.first else { return nil }
        if x < first.lower { return first.value }
        for (i, b) in blocks.enumerated() {
            if x <= b.upper { return b.value }
            if i + 1 < blocks.count, x < blocks[i + 1].lower {
                // Between two blocks: the step holds until the next block starts.
                return b.value
            }
        }
        return blocks.last?.value
    }

    /// True when the values never decrease (the fit's one promise).
    package var isMonotone: Bool {
        zip(blocks, blocks.dropFirst()).allSatisfy { $0.value <= $1.value + 1e-12 }
    }
}

/// One row of a reliability table: a confidence range, the answers in it, what the raw confidence
/// claimed, what reviewers found, and what the fitted map says.
package struct ReliabilityRow: Hashable, Sendable {
    package var lower: Double
    package var upper: Double
    package var count: Int
    package var meanConfidence: Double?
    package var observedRate: Double?
    package var fittedRate: Double?
}

/// What a threshold would do on the judged answers.
package struct ThresholdEvaluation: Hashable, Sendable {
    package var threshold: Double
    /// Answers at or above the threshold (sent without a person).
    package var autoSent: Int
    /// Answers below it (sent to people).
    package var toHumans: Int
    /// The calibrated probability of an unacceptable answer among the auto-sent ones.
    package var estimatedError: Double?
    /// The share of auto-sent answers reviewers did not accept as they were.
    package var observedError: Double?
    /// A 95% Wilson upper bound on the auto-sent error rate (how bad it could plausibly be).
    package var errorUpperBound: Double?

    package var humanShare: Double { autoSent + toHumans == 0 ? 0 : Double(toHumans) / Double(autoSent + toHumans) }
}

/// The threshold calibration proposes, or why there is none.
package struct ThresholdProposal: Hashable, Sendable {
    package var targetError: Double
    /// Nil when no threshold keeps the estimated error under the target with enough answers above it.
    package var evaluation: ThresholdEvaluation?
    package var reason: String
}

/// Calibration of one route's raw confidence against reviewers' judgements.
///
/// Fits a monotone map from raw confidence to P(acceptable) (isotonic regression, pool-adjacent-violators),
/// and proposes the lowest threshold whose auto-sent answers have an estimated error rate at or under
/// the target: the fewest items for people while keeping errors under it. Because the fitted map is
/// non-decreasing, the estimated error of "everything at or above t" only falls as t rises, so the
/// lowest feasible threshold is the best one.
package struct Calibration: Sendable {
    package let bins: [OutcomeBin]
    package let fit: IsotonicFit

    package init(bins: [OutcomeBin]) {
        self.bins = bins.filter { $0.total > 0 }.sorted { $0.confidence < $1.confidence }
        self.fit = IsotonicFit.fit(self.bins.map { ($0.confidence, Double($0.acceptable) / Double($0.total), Double($0.total)) })
    }

    package var total: Int { bins.reduce(0) { $0 + $1.total } }
    package var acceptable: Int { bins.reduce(0) { $0 + $1.acceptable } }

    /// The calibrated probability that an answer with this raw confidence is acceptable.
    package func probability(at confidence: Double) -> Double? { fit.value(at: confidence) }

    /// A reliability table of `binCount` equal-width confidence ranges.
    package func reliability(binCount: Int = 10) -> [ReliabilityRow] {
        let n = max(1, binCount)
        var rows = (0..<n).map { i in
            ReliabilityRow(lower: Double(i) / Double(n), upper: Double(i + 1) / Double(n), count: 0, meanConfidence: nil, observedRate: nil,
                           fittedRate: nil)
        }
        var sums = Array(repeating: (confidence: 0.0, acceptable: 0, fitted: 0.0), count: n)
        for bin in bins {
            let i = min(n - 1, max(0, Int((bin.confidence * Double(n)).rounded(.down))))
            rows[i].count += bin.total
            sums[i].confidence += bin.confidence * Double(bin.total)
            sums[i].acceptable += bin.acceptable
            sums[i].fitted += (fit.value(at: bin.confidence) ?? 0) * Double(bin.total)
        }
        for i in 0..<n where rows[i].count > 0 {
            let c = Double(rows[i].count)
            rows[i].meanConfidence = sums[i].confidence / c
            rows[i].observedRate = Double(sums[i].acceptable) / c
            rows[i].fittedRate = sums[i].fitted / c
        }
        return rows
    }

    /// What auto-sending everything at or above `threshold` would have done.
    package func evaluate(threshold: Double) -> ThresholdEvaluation {
        var auto = 0
        var humans = 0
        var autoAcceptable = 0
        var expectedErrors = 0.0
        for bin in bins {
            if bin.confidence >= threshold {
                auto += bin.total
                autoAcceptable += bin.acceptable
                expectedErrors += (1 - (fit.value(at: bin.confidence) ?? 0)) * Double(bin.total)
            } else {
                humans += bin.total
            }
        }
        let errors = auto - autoAcceptable
        return ThresholdEvaluation(
            threshold: threshold, autoSent: auto, toHumans: humans,
            estimatedError: auto == 0 ? nil : expectedErrors / Double(auto),
            observedError: auto == 0 ? nil : Double(errors) / Double(auto),
            errorUpperBound: auto == 0 ? nil : Self.wilsonUpper(errors: errors, n: auto))
    }

    /// The lowest threshold (one of the observed confidences) whose auto-sent answers have an estimated
    /// error rate ≤ `targetError`, with at least `minAutoSent` judged answers at or above it.
    package func proposeThreshold(targetError: Double = 0.05, minAutoSent: Int = 20) -> ThresholdProposal {
        guard total > 0 else {
            return ThresholdProposal(targetError: targetError, evaluation: nil, reason: "no judged answers yet")
        }
        // Suffix sums from the top: answers and expected errors at or above each bin.
        var count = 0
        var expected = 0.0
        var feasible: Int?
        for i in stride(from: bins.count - 1, through: 0, by: -1) {
            count += bins[i].total
            expected += (1 - (fit.value(at: bins[i].confidence) ?? 0)) * Double(bins[i].total)
            if count >= minAutoSent, expected / Double(count) <= targetError + 1e-12 { feasible = i }
        }
        guard let index = feasible else {
            return ThresholdProposal(
                targetError: targetError, evaluation: nil,
                reason: "no threshold keeps the estimated error of auto-sent answers at or under \(Self.percent(targetError)) with at least \(minAutoSent) judged answers above it; keep sending this route's answers to people")
        }
        let evaluation = evaluate(threshold: bins[index].confidence)
        return ThresholdProposal(
            targetError: targetError, evaluation: evaluation,
            reason: "the lowest threshold whose auto-sent answers have an estimated error of at most \(Self.percent(targetError))")
    }

    /// 95% Wilson score upper bound for a binomial proportion.
    package static func wilsonUpper(errors: Int, n: Int, z: Double = 1.96) -> Double {
        guard n > 0 else { return 1 }
        let p = Double(errors) / Double(n)
        let nn = Double(n)
        let center = p + z * z / (2 * nn)
        let margin = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn))
        return min(1, (center + margin) / (1 + z * z / nn))
    }

    static func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
}
