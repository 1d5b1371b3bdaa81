import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Learning from corrections")
struct CorrectionTests {
    let clock = ManualClock()

    @Test func theSignatureIsWhatChanged() {
        let signature = TextAnalysis.changeSignature(original: "Refunds are accepted within 30 days of purchase.",
                                                     corrected: "Refunds are accepted within 14 days of purchase.")
        #expect(signature == ["-30", "+14"])
        #expect(TextAnalysis.changeSignature(original: "Same text.", corrected: "same TEXT") == [])
    }

    @Test func recordingRefusesEmptyOrUnchangedCorrections() throws {
        expectRefusal(.invalid, field: "query") {
            try CorrectionMachine.record(id: CorrectionID(1), input: CorrectionInput(query: "", original: "a", corrected: "b"), by: "slack:alice",
                                         now: clock.now())
        }
        expectRefusal(.invalid, "nothing was corrected", field: "corrected") {
            try CorrectionMachine.record(id: CorrectionID(1), input: CorrectionInput(query: "q", original: "Ships in 2 days", corrected: " Ships in 2 days\n"),
                                         by: "slack:alice", now: clock.now())
        }
        let t = try CorrectionMachine.record(id: CorrectionID(4), input: CorrectionInput(query: "q", original: "30 days", corrected: "14 days"),
                                             by: "slack:alice", now: clock.now())
        #expect(t.entity.signature == ["-30", "+14"])
        #expect(t.audit.map(\.to) == ["recorded"])
    }

    /// Refund-window fixes worded differently every time, plus changes that only look alike.
    static let corrections: [(original: String, corrected: String)] = [
        ("You can return items within 30 days of purchase.", "You can return items within 14 days of purchase."),
        ("Our refund window is 30 days.", "Our refund window is 14 days."),
        ("Refunds are available for 30 days after delivery.", "Refunds are available for 14 days after delivery."),
        ("You have 30 days to ask for your money back.", "You have 14 days to ask for your money back, counted from delivery."),
        // Same first five words as the first one, different change.
        ("You can return items within 30 days of purchase.",
         "You can return items within 30 days of purchase if they are unused and in their original packaging."),
        ("Shipping is free on orders over $50.", "Shipping is free on orders over $75."),
        ("Support is open 24/7.", "Support is open weekdays from 9am to 5pm."),
    ]

    @Test func correctionsThatChangedTheSameThingFormOnePattern() throws {
        var clusterer = PatternClusterer(similarity: 0.5, maxExamples: 3)
        for (i, c) in Self.corrections.enumerated() {
            clusterer.add(id: CorrectionID(Int64(i + 1)), signature: TextAnalysis.changeSignature(original: c.original, corrected: c.corrected))
        }
        let patterns = clusterer.patterns(floor: 2)
        #expect(patterns.count == 1)
        let refund = try #require(patterns.first)
        #expect(refund.count == 4)
        #expect(refund.signature == ["+14", "-30"])
        #expect(refund.summary == "replaced 30 with 14")
        #expect(refund.examples == [CorrectionID(1), CorrectionID(2), CorrectionID(3)])

        // Everything else stands alone.
        let all = clusterer.patterns(floor: 1)
        #expect(all.map(\.count) == [4, 1, 1, 1])
    }

    @Test func correctionsWithoutAChangeAreIgnored() {
        var clusterer = PatternClusterer()
        clusterer.add(id: CorrectionID(1), signature: [])
        #expect(clusterer.patterns(floor: 1).isEmpty)
    }

    @Test func jaccard() {
        #expect(TextAnalysis.jaccard(["a", "b"], ["b", "c"]) == 1.0 / 3)
        #expect(TextAnalysis.jaccard([], []) == 1)
        #expect(TextAnalysis.jaccard(["a"], []) == 0)
    }

    @Test func tfidfRanksSharedRareTermsHighest() {
        // Ten documents: "policy" is in nine of them, "refund" in one.
        let df = ["refund": 1, "policy": 9, "window": 2]
        let query = TextAnalysis.tokens("What is the refund policy?")
        #expect(query == ["refund", "policy"])
        let refundDoc = TextAnalysis.tokens("refund window")
        let policyDoc = TextAnalysis.tokens("shipping policy")
        let unrelated = TextAnalysis.tokens("store opening hours")
        let sRefund = TextAnalysis.tfidfCosine(query: query, document: refundDoc, documentFrequency: df, documentCount: 10)
        let sPolicy = TextAnalysis.tfidfCosine(query: query, document: policyDoc, documentFrequency: df, documentCount: 10)
        let sNone = TextAnalysis.tfidfCosine(query: query, document: unrelated, documentFrequency: df, documentCount: 10)
        #expect(sRefund > sPolicy)
        #expect(sPolicy > 0)
        #expect(sNone == 0)
        let same = TextAnalysis.tfidfCosine(query: query, document: query, documentFrequency: df, documentCount: 10)
        #expect(abs(same - 1) < 1e-12)
    }
}
