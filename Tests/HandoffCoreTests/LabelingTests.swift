import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Labeling")
struct LabelingTests {
    let clock = ManualClock()
    let directory = People.directory

    func task(_ type: LabelType, content: String = "The battery died after two days.", overlap: Int = 1,
              labelers: [String] = ["*"]) throws(WorkflowError) -> LabelTask
    {
        try LabelingMachine.create(id: LabelTaskID(1), input: LabelTaskInput(dataset: "reviews", type: type, content: content,
                                                                             overlap: overlap, labelers: labelers),
                                   by: "key:loader", now: clock.now()).entity
    }

    func label(_ task: LabelTask, _ value: LabelValue, by actor: Actor, already: Bool = false) throws(WorkflowError) -> LabelTask {
        try LabelingMachine.label(task, value: value, by: actor, alreadyLabeled: already, directory: directory, now: clock.now()).0.entity
    }

    // MARK: Validation

    @Test func tasksAreValidated() {
        expectRefusal(.invalid, field: "overlap") { try task(.text, overlap: 0) }
        expectRefusal(.invalid, field: "overlap") { try task(.text, overlap: 101) }
        expectRefusal(.invalid, field: "options") { try task(.choice(options: ["yes"])) }
        expectRefusal(.invalid, field: "options") { try task(.choice(options: ["yes", "yes"])) }
        expectRefusal(.invalid, field: "range") { try task(.rating(min: 5, max: 1)) }
        expectRefusal(.invalid, field: "content") { try task(.text, content: "  ") }
    }

    @Test func choiceLabelsMustBeAnOption() throws {
        let t = try task(.choice(options: ["positive", "negative", "neutral"]))
        expectRefusal(.invalid, "one of positive, negative, neutral", field: "label") {
            try LabelingMachine.validate(.choice("mixed"), for: t)
        }
        #expect(try LabelingMachine.validate(.choice("Positive"), for: t) == .choice("positive"))
        #expect(try LabelingMachine.parse("2", for: t) == .choice("negative"))
        expectRefusal(.invalid, field: "label") { try LabelingMachine.parse("4", for: t) }
    }

    @Test func ratingLabelsMustBeInRange() throws {
        let t = try task(.rating(min: 1, max: 5))
        for bad in [0.0, 5.5, 6, -1, .nan, .infinity] {
            expectRefusal(.invalid, "between 1 and 5", field: "label") { try LabelingMachine.validate(.rating(bad), for: t) }
        }
        #expect(try LabelingMachine.validate(.rating(1), for: t) == .rating(1))
        #expect(try LabelingMachine.parse(" 4.5 ", for: t) == .rating(4.5))
        expectRefusal(.invalid, "number", field: "label") { try LabelingMachine.parse("four", for: t) }
    }

    @Test func spanOffsetsAreUTF16AndInsideTheContent() throws {
        // 13 characters but 14 UTF-16 code units: the emoji takes two, as in a browser selection.
        let content = "héllo 👋 world"
        #expect(content.count == 13)
        let t = try task(.span, content: content)
        #expect(try LabelingMachine.validate(.span(start: 6, end: 14), for: t) == .span(start: 6, end: 14))
        expectRefusal(.invalid, "UTF-16", field: "label") { try LabelingMachine.validate(.span(start: 6, end: 15), for: t) }
        expectRefusal(.invalid, field: "label") { try LabelingMachine.validate(.span(start: -1, end: 3), for: t) }
        expectRefusal(.invalid, field: "label") { try LabelingMachine.validate(.span(start: 5, end: 5), for: t) }
        expectRefusal(.invalid, field: "label") { try LabelingMachine.validate(.span(start: 7, end: 2), for: t) }
        #expect(try LabelingMachine.parse("0-5", for: t) == .span(start: 0, end: 5))
        expectRefusal(.invalid, "start-end", field: "label") { try LabelingMachine.parse("0-2.5", for: t) }
        #expect(try LabelingMachine.parse(" 3 - 9 ", for: t) == .span(start: 3, end: 9))
        #expect(try LabelingMachine.parse("3 9", for: t) == .span(start: 3, end: 9))
        // A minus sign is not a separator to skip: "-1-5" is not the span [1, 5).
        expectRefusal(.invalid, "start-end", field: "label") { try LabelingMachine.parse("-1-5", for: t) }
        expectRefusal(.invalid, "start-end", field: "label") { try LabelingMachine.parse("1--5", for: t) }
        expectRefusal(.invalid, "start-end", field: "label") { try LabelingMachine.parse("1-5-7", for: t) }
    }

    @Test func boxesNeedAPositiveSize() throws {
        let t = try task(.boundingBox, content: "https://img.example.com/cat.png")
        expectRefusal(.invalid, "width, height > 0", field: "label") {
            try LabelingMachine.validate(.boundingBox(x: 1, y: 1, width: 0, height: 5), for: t)
        }
        expectRefusal(.invalid, field: "label") { try LabelingMachine.validate(.boundingBox(x: 1, y: 1, width: 5, height: -2), for: t) }
        expectRefusal(.invalid, field: "label") { try LabelingMachine.validate(.boundingBox(x: -1, y: 1, width: 5, height: 2), for: t) }
        #expect(try LabelingMachine.parse("10,20,50,40", for: t) == .boundingBox(x: 10, y: 20, width: 50, height: 40))
        // A negative coordinate is read as negative, then refused — never silently made positive.
        expectRefusal(.invalid, "x, y ≥ 0", field: "label") { try LabelingMachine.parse("-10,20,50,40", for: t) }
        expectRefusal(.invalid, "x,y,width,height", field: "label") { try LabelingMachine.parse("10,20,50", for: t) }
    }

    @Test func aLabelOfTheWrongTypeIsRefused() throws {
        let t = try task(.choice(options: ["positive", "negative"]))
        expectRefusal(.invalid, "rating label", "takes choice labels") { try LabelingMachine.validate(.rating(3), for: t) }
        let text = try task(.text)
        expectRefusal(.invalid, "span label", "takes text labels") { try LabelingMachine.validate(.span(start: 0, end: 1), for: text) }
    }

    // MARK: Overlap

    @Test func labelersMustBeNamed() throws {
        expectRefusal(.invalid, "anyone", field: "labelers") { try task(.text, labelers: []) }
        let restricted = try task(.text)
        #expect(LabelTaskInput(dataset: "d", type: .text, content: "c").labelers == ["labelers"])
        _ = restricted
    }

    @Test func overlapKIsEnforced() throws {
        var t = try task(.choice(options: ["positive", "negative"]), overlap: 2)
        t = try label(t, .choice("negative"), by: People.alice)
        #expect(t.labelCount == 1)
        #expect(t.status == .open)
        expectRefusal(.wrongState, "already labeled") { try label(t, .choice("positive"), by: People.alice, already: true) }
        t = try label(t, .choice("negative"), by: People.bob)
        #expect(t.labelCount == 2)
        #expect(t.status == .complete)
        expectRefusal(.wrongState, "already has its 2 labels") { try label(t, .choice("negative"), by: People.carol) }
    }

    @Test func labelersAreRestrictedToTheirGroups() throws {
        let t = try task(.text, labelers: ["labelers"])
        expectRefusal(.notAllowed, "not a labeler") { try label(t, .text("ok"), by: People.meg) }
        #expect(try label(t, .text("ok"), by: People.alice).labelCount == 1)
    }

    // MARK: Consensus per type

    @Test func choiceConsensusIsTheMajority() throws {
        let t = try task(.choice(options: ["positive", "negative", "neutral"]), overlap: 3)
        let c = Consensus.of(task: t, labels: [.choice("positive"), .choice("negative"), .choice("positive")])
        #expect(c.consensus == .choice("positive"))
        // Pairs that agree: 1 of 3.
        #expect(c.agreement.map { abs($0 - 1.0 / 3) < 1e-12 } == true)
        let tie = Consensus.of(task: t, labels: [.choice("positive"), .choice("negative")])
        #expect(tie.consensus == nil)
        #expect(tie.agreement == 0)
        let one = Consensus.of(task: t, labels: [.choice("neutral")])
        #expect(one.consensus == .choice("neutral"))
        #expect(one.agreement == nil)
    }

    @Test func textConsensusIgnoresCaseAndPunctuation() throws {
        let t = try task(.text, overlap: 3)
        let c = Consensus.of(task: t, labels: [.text("Paris"), .text("paris."), .text("PARIS!")])
        #expect(c.consensus == .text("Paris"))
        #expect(c.agreement == 1)
    }

    @Test func ratingConsensusIsTheMedian() throws {
        let t = try task(.rating(min: 1, max: 5), overlap: 3)
        let c = Consensus.of(task: t, labels: [.rating(2), .rating(5), .rating(4)])
        #expect(c.consensus == .rating(4))
        // Mean pairwise distance (2 + 3 + 1) / 3 = 2 over a range of 4.
        #expect(c.agreement == 0.5)
        #expect(Consensus.of(task: t, labels: [.rating(2), .rating(5)]).consensus == .rating(3.5))
    }

    @Test func spanAndBoxAgreementIsMeanIoU() throws {
        let spans = try task(.span, content: String(repeating: "x", count: 20), overlap: 3)
        let c = Consensus.of(task: spans, labels: [.span(start: 0, end: 10), .span(start: 0, end: 10), .span(start: 5, end: 10)])
        #expect(c.consensus == .span(start: 0, end: 10))
        // IoUs: 1, 0.5, 0.5.
        #expect(c.agreement.map { abs($0 - 2.0 / 3) < 1e-12 } == true)

        let boxes = try task(.boundingBox, content: "https://img.example.com/1.png", overlap: 2)
        let b = Consensus.of(task: boxes, labels: [.boundingBox(x: 0, y: 0, width: 10, height: 10),
                                                   .boundingBox(x: 5, y: 0, width: 10, height: 10)])
        // Overlap 50, union 150.
        #expect(b.agreement.map { abs($0 - 1.0 / 3) < 1e-12 } == true)
        #expect(b.consensus == nil)
    }
}

@Suite("Dataset agreement")
struct AgreementTests {
    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with four
    /// observers, twelve units and missing values (nil).
    static let krippendorff: [[Double?]] = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nil, nil, nil],   // A
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nil, 3],       // B
        [nil, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nil],     // C
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nil],       // D
    ]

    /// One unit per column, missing values dropped.
    static var krippendorffUnits: [[Double]] {
        (0..<12).map { unit in krippendorff.compactMap { $0[unit] } }
    }

    /// Fleiss (1971) as on Wikipedia: 10 subjects, 14 raters, counts per category 1…5.
    static let fleiss: [[Int]] = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]

    @Test func krippendorffAlphaNominalMatchesThePaper() throws {
        var acc = AgreementAccumulator()
        for unit in Self.krippendorffUnits { acc.addNominal(unit.map { String(Int($0)) }) }
        let alpha = try #require(acc.alphaNominal)
        #expect(abs(alpha - 0.743421052631579) < 1e-9, "α = \(alpha)")
        // The last unit has a single value and is not pairable.
        #expect(acc.units == 11)
        #expect(acc.pairableValues == 40)
    }

    @Test func krippendorffAlphaIntervalMatchesThePaper() throws {
        var acc = AgreementAccumulator()
        for unit in Self.krippendorffUnits { acc.addInterval(unit) }
        let alpha = try #require(acc.alphaInterval)
        #expect(abs(alpha - 0.8491071428571428) < 1e-9, "α = \(alpha)")
        // Ratings also count as categories.
        let nominal = try #require(acc.alphaNominal)
        #expect(abs(nominal - 0.743421052631579) < 1e-9)
    }

    @Test func fleissKappaMatchesTheWorkedExample() throws {
        var acc = AgreementAccumulator()
        for counts in Self.fleiss {
            acc.addNominal(counts.enumerated().flatMap { category, n in Array(repeating: "c\(category + 1)", count: n) })
        }
        let kappa = try #require(acc.fleissKappa)
        #expect(abs(kappa - 0.20993070442195522) < 1e-9, "κ = \(kappa)")
        #expect(String(format: "%.3f", kappa) == "0.210")
    }

    @Test func theOrderOfUnitsAndValuesDoesNotMatter() throws {
        var forward = AgreementAccumulator()
        var backward = AgreementAccumulator()
        for unit in Self.krippendorffUnits { forward.addInterval(unit) }
        for unit in Self.krippendorffUnits.reversed() { backward.addInterval(unit.reversed()) }
        let f = try #require(forward.alphaInterval)
        let b = try #require(backward.alphaInterval)
        #expect(abs(f - b) < 1e-12)
    }

    @Test func perfectAgreementIsOne() throws {
        var acc = AgreementAccumulator()
        acc.addNominal(["positive", "positive", "positive"])
        acc.addNominal(["negative", "negative"])
        acc.addNominal(["neutral", "neutral", "neutral"])
        #expect(acc.alphaNominal == 1)
        #expect(acc.fleissKappa == 1)

        var ratings = AgreementAccumulator()
        ratings.addInterval([1, 1, 1])
        ratings.addInterval([4, 4])
        ratings.addInterval([2, 2])
        #expect(ratings.alphaInterval == 1)
    }

    @Test func systematicDisagreementIsBelowZero() throws {
        var acc = AgreementAccumulator()
        for _ in 0..<5 { acc.addNominal(["yes", "no"]) }
        #expect(try #require(acc.alphaNominal) < 0)
    }

    @Test func nothingPairableMeansNoAgreement() {
        var acc = AgreementAccumulator()
        acc.addNominal(["positive"])
        acc.addInterval([3])
        #expect(acc.alphaNominal == nil)
        #expect(acc.alphaInterval == nil)
        #expect(acc.fleissKappa == nil)
        #expect(acc.units == 0)
    }
}
