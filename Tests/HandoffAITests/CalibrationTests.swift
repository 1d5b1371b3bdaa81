import Foundation
import HandoffAI
import Testing

/// A seeded generator (SplitMix64), so synthetic outcome data is the same on every run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Synthetic outcomes with a known miscalibration: raw confidence c ~ U(0, 1), and an answer with raw
/// confidence c is acceptable with probability `truth(c)`, not c.
struct SyntheticOutcomes {
    var truth: @Sendable (Double) -> Double

    /// Outcomes binned at 0.001 as the store bins them.
    func bins(count: Int, seed: UInt64) -> [OutcomeBin] {
        var rng = SeededRandom(seed: seed)
        var table: [Int: (total: Int, acceptable: Int)] = [:]
        for _ in 0..<count {
            let c = Double.random(in: 0..<1, using: &rng)
            let ok = Double.random(in: 0..<1, using: &rng) < truth(c)
            let bin = Int((c * 1000).rounded(.down))
            table[bin, default: (0, 0)].total += 1
            if ok { table[bin, default: (0, 0)].acceptable += 1 }
        }
        return table.map { OutcomeBin(confidence: Double($0.key) / 1000, total: $0.value.total, acceptable: $0.value.acceptable) }
    }

    /// The planted threshold: the lowest t whose auto-sent answers (c ≥ t, uniform) have a true error
    /// rate ≤ target, found by integrating the true curve numerically.
    func plantedThreshold(target: Double) -> Double {
        let steps = 20_000
        var t = 1.0
        var integral = 0.0
        for i in stride(from: steps - 1, through: 0, by: -1) {
            let lo = Double(i) / Double(steps)
            let hi = Double(i + 1) / Double(steps)
            integral += (truth(lo) + truth(hi)) / 2 * (hi - lo)
            if 1 - integral / (1 - lo) <= target { t = lo }
        }
        return t
    }
}

@Suite struct CalibrationTests {
    @Test("Pool-adjacent-violators: a non-decreasing fit that pools violators to their weighted mean")
    func isotonicPoolsViolators() {
        let fit = IsotonicFit.fit([(0.1, 0.2, 1), (0.2, 0.6, 1), (0.3, 0.4, 1), (0.4, 0.9, 2)])
        #expect(fit.isMonotone)
        #expect(fit.blocks.count == 3)
        #expect(fit.value(at: 0.1) == 0.2)
        #expect(abs((fit.value(at: 0.25) ?? 0) - 0.5) < 1e-12, "0.6 and 0.4 pooled to 0.5")
        #expect(fit.value(at: 0.4) == 0.9)
        #expect(fit.value(at: 0.0) == 0.2, "constant below the data")
        // Weighted: a heavy low point pulls the pool toward it.
        let weighted = IsotonicFit.fit([(0.5, 1.0, 1), (0.6, 0.0, 3)])
        #expect(abs((weighted.value(at: 0.55) ?? 0) - 0.25) < 1e-12)
    }

    @Test("An already monotone sequence is left as it is")
    func isotonicKeepsMonotoneData() {
        let fit = IsotonicFit.fit([(0.1, 0.1, 1), (0.5, 0.5, 1), (0.9, 0.9, 1)])
        #expect(fit.blocks.map(\.value) == [0.1, 0.5, 0.9])
    }

    @Test("Calibration recovers the planted threshold of an underconfident model (logistic truth)")
    func recoversPlantedThresholdUnderconfident() {
        // The model says 0.7 when it is right 88% of the time: raw confidence understates quality.
        let data = SyntheticOutcomes(truth: { c in 1 / (1 + exp(-20 * (c - 0.6))) })
        let planted = data.plantedThreshold(target: 0.05)
        #expect(abs(planted - 0.642) < 0.005, "the planted threshold is \(planted)")
        let calibration = Calibration(bins: data.bins(count: 4000, seed: 7))
        let proposal = calibration.proposeThreshold(targetError: 0.05, minAutoSent: 50)
        let recovered = try! #require(proposal.evaluation?.threshold)
        #expect(abs(recovered - planted) < 0.03, "planted \(planted), recovered \(recovered)")
        // Taking the raw confidence at its word would need c ≥ 0.90 for a 5% error rate: calibration
        // sends far fewer answers to people for the same error budget.
        #expect(recovered < 0.8)
        let evaluation = try! #require(proposal.evaluation)
        #expect((evaluation.estimatedError ?? 1) <= 0.05)
        #expect(abs((evaluation.observedError ?? 1) - 0.05) < 0.02, "observed \(evaluation.observedError ?? -1)")
        #expect(calibration.fit.isMonotone)
    }

    @Test("Calibration recovers the planted threshold of an overconfident model")
    func recoversPlantedThresholdOverconfident() {
        // Right only 50% of the time at 0.8: thresholds must go up, not down.
        let data = SyntheticOutcomes(truth: { c in 1 / (1 + exp(-15 * (c - 0.8))) })
        let planted = data.plantedThreshold(target: 0.05)
        let calibration = Calibration(bins: data.bins(count: 20_000, seed: 11))
        let recovered = try! #require(calibration.proposeThreshold(targetError: 0.05, minAutoSent: 50).evaluation?.threshold)
        #expect(planted > 0.9)
        #expect(abs(recovered - planted) < 0.03, "planted \(planted), recovered \(recovered)")
        // The threshold in the policy (0.8) would have auto-sent far too many wrong answers.
        let current = calibration.evaluate(threshold: 0.8)
        #expect((current.observedError ?? 0) > 0.1, "at 0.8 the error rate is \(current.observedError ?? 0)")
    }

    @Test("No threshold is proposed when the target cannot be met, and the reason says so")
    func infeasibleTarget() {
        let data = SyntheticOutcomes(truth: { _ in 0.5 })
        let proposal = Calibration(bins: data.bins(count: 500, seed: 3)).proposeThreshold(targetError: 0.05)
        #expect(proposal.evaluation == nil)
        #expect(proposal.reason.contains("no threshold keeps the estimated error"))
        #expect(Calibration(bins: []).proposeThreshold().reason == "no judged answers yet")
    }

    @Test("The reliability table shows claimed versus observed per confidence range")
    func reliabilityTable() {
        let bins = [OutcomeBin(confidence: 0.05, total: 10, acceptable: 1), OutcomeBin(confidence: 0.95, total: 10, acceptable: 9),
                    OutcomeBin(confidence: 0.91, total: 10, acceptable: 10)]
        let rows = Calibration(bins: bins).reliability(binCount: 10)
        #expect(rows.count == 10)
        #expect(rows[0].count == 10 && rows[0].observedRate == 0.1)
        #expect(rows[9].count == 20 && rows[9].observedRate == 0.95)
        #expect(abs((rows[9].meanConfidence ?? 0) - 0.93) < 1e-9)
        #expect(rows[5].count == 0 && rows[5].observedRate == nil)
    }

    @Test("Wilson upper bound is above the observed rate and shrinks with more data")
    func wilson() {
        let small = Calibration.wilsonUpper(errors: 1, n: 20)
        let large = Calibration.wilsonUpper(errors: 50, n: 1000)
        #expect(small > 0.05 && large > 0.05 && large < small)
    }
}
