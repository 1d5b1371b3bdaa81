import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

@Suite("Workflow: reviews and corrections on SQLite")
struct WorkflowReviewTests {
    @Test func aCorrectedAnswerIsRecordedAndFoundForASimilarQuestion() async throws {
        try await WorkflowHarness.with { harness, workflow in
            _ = try await workflow.recordCorrection(CorrectionInput(query: "What does shipping to Canada cost?", original: "Shipping is $5.",
                                                                    corrected: "Shipping to Canada is $15."), by: "slack:bob")
            let routed = try await workflow.route("default", query: "How long do I have to return a jacket?",
                                                  answer: "You can return items within 30 days.", confidence: .selfRating("0.55"),
                                                  by: "key:agent")
            let item = try #require(routed.reviewItem)
            #expect(item.content.reason == "confidence 0.55 is below the threshold 0.80")
            #expect(item.route == "default")

            harness.clock.advance(by: 12)
            _ = try #require(try await workflow.claimNext(queue: "default", by: Who.alice))
            harness.clock.advance(by: 30)
            let (done, correction) = try await workflow.submit(item.id, verdict: .rejected, feedback: "policy changed in March",
                                                               correctedAnswer: "You can return items within 14 days.", by: Who.alice)
            #expect(done.status == .completed(verdict: .rejected, at: harness.clock.now()))
            let recorded = try #require(correction)
            #expect(recorded.query == "How long do I have to return a jacket?")
            #expect(recorded.original == "You can return items within 30 days.")
            #expect(recorded.corrected == "You can return items within 14 days.")
            #expect(recorded.source == item.ref)
            #expect(recorded.route == "default")
            #expect(try await workflow.correction(recorded.id) == recorded)

            let similar = try await workflow.similarCorrections(to: "How many days do I have to return shoes?", k: 3)
            #expect(similar.map(\.correction.id) == [recorded.id])
            #expect(similar.first.map { $0.similarity > 0 && $0.similarity <= 1 } == true)
            #expect(try await workflow.similarCorrections(to: "Do you sell gift cards?").isEmpty)

            // The review's durations are real: 12 s to claim, 30 s to decide.
            let stats = try await workflow.queueStats(queue: "default")
            #expect(stats.timeToClaim == DurationStats(count: 1, p50Seconds: 12, p90Seconds: 12))
            #expect(stats.timeToDecide == DurationStats(count: 1, p50Seconds: 30, p90Seconds: 30))
            #expect(stats.completed == 1)
        }
    }

    @Test func anApprovedReviewWithoutCorrectionRecordsNone() async throws {
        try await WorkflowHarness.with { _, workflow in
            let item = try await workflow.enqueue(ReviewItemRequest(content: ReviewContent(query: "q", answer: "a")), by: "key:agent").item
            _ = try await workflow.claim(item.id, by: Who.bob)
            let (_, correction) = try await workflow.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: "  ", by: Who.bob)
            #expect(correction == nil)
            #expect(try await workflow.store.corrections(after: nil, limit: 10).isEmpty)
        }
    }

    @Test func twoReviewsFromDifferentReviewersCompleteAnItem() async throws {
        try await WorkflowHarness.with { _, workflow in
            let item = try await workflow.enqueue(ReviewItemRequest(queue: "double", content: ReviewContent(answer: "draft")),
                                                  by: "key:agent").item
            #expect(try await workflow.claimNext(queue: "double", by: Who.alice)?.id == item.id)
            _ = try await workflow.submit(item.id, verdict: .approved, feedback: nil, correctedAnswer: nil, by: Who.alice)
            // Alice already reviewed it: nothing for her; Bob gets it.
            #expect(try await workflow.claimNext(queue: "double", by: Who.alice) == nil)
            await expectWorkflowError(.notAllowed, "already reviewed") { try await workflow.claim(item.id, by: Who.alice) }
            #expect(try await workflow.claimNext(queue: "double", by: Who.bob)?.id == item.id)
            let (done, _) = try await workflow.submit(item.id, verdict: .rejected, feedback: "wrong tone", correctedAnswer: nil, by: Who.bob)
            #expect(done.status.name == "completed")
            if case .completed(let verdict, _) = done.status { #expect(verdict == .rejected) }
            await expectWorkflowError(.notAllowed, "not a reviewer") { try await workflow.claimNext(queue: "double", by: Who.meg) }
        }
    }

    @Test func concurrentClaimsHandOutDifferentItems() async throws {
        try await WorkflowHarness.with { _, workflow in
            for n in 0..<6 {
                _ = try await workflow.enqueue(ReviewItemRequest(content: ReviewContent(query: "question \(n)")), by: "key:agent")
            }
            // Six claims race for six items: each gets its own, none is handed out twice.
            let claims = [Who.alice, Who.bob, Who.carol, Who.alice, Who.bob, Who.carol]
            let claimed = try await withThrowingTaskGroup(of: ReviewItemID?.self) { group in
                for reviewer in claims { group.addTask { try await workflow.claimNext(queue: "default", by: reviewer)?.id } }
                var ids: [ReviewItemID] = []
                for try await id in group { if let id { ids.append(id) } }
                return ids
            }
            #expect(claimed.count == 6)
            #expect(Set(claimed).count == 6)
        }
    }

    /// Refund-window corrections worded every which way, free-shipping threshold corrections, and noise.
    static let refundFixes: [(String, String)] = [
        ("You can return items within 30 days of purchase.", "You can return items within 14 days of purchase."),
        ("Our refund window is 30 days.", "Our refund window is 14 days."),
        ("Refunds are available for 30 days after delivery.", "Refunds are available for 14 days after delivery."),
        ("You have 30 days to send it back.", "You have 14 days to send it back."),
        ("Returns are accepted up to 30 days after you receive the order.", "Returns are accepted up to 14 days after you receive the order."),
        ("The return period lasts 30 days.", "The return period lasts 14 days."),
        ("We take returns for 30 days, no questions asked.", "We take returns for 14 days, no questions asked."),
        ("Unworn shoes can be returned within 30 days.", "Unworn shoes can be returned within 14 days."),
        ("Electronics: 30 days to return.", "Electronics: 14 days to return."),
        ("Store credit is offered for 30 days.", "Store credit is offered for 14 days."),
        ("A full refund is possible for 30 days.", "A full refund is possible for 14 days."),
        ("Gifts can be exchanged for 30 days.", "Gifts can be exchanged for 14 days, with the gift receipt."),
    ]
    static let shippingFixes: [(String, String)] = [
        ("Shipping is free on orders over $50.", "Shipping is free on orders over $75."),
        ("Orders above $50 ship free.", "Orders above $75 ship free."),
        ("Free delivery starts at $50.", "Free delivery starts at $75."),
        ("Spend $50 and shipping is on us.", "Spend $75 and shipping is on us."),
        ("No shipping fee for baskets over $50.", "No shipping fee for baskets over $75."),
        ("Free standard shipping over $50.", "Free standard shipping over $75."),
        ("We ship free past $50.", "We ship free past $75."),
        ("Delivery costs nothing above $50.", "Delivery costs nothing above $75."),
    ]
    static let noise: [(String, String)] = [
        ("Support is open 24/7.", "Support is open weekdays from 9am to 5pm."),
        ("We accept Visa and Mastercard.", "We accept Visa, Mastercard and PayPal."),
        ("Our store is in Berlin.", "Our flagship store is in Munich."),
        ("Gift cards never expire.", "Gift cards expire after three years."),
    ]

    @Test func correctionPatternsGroupWhatChangedAcrossManyCorrections() async throws {
        try await WorkflowHarness.with { _, workflow in
            // Interleave the groups so the patterns cannot come from insertion order.
            let all = Self.refundFixes.map { ("refund", $0) } + Self.shippingFixes.map { ("shipping", $0) } + Self.noise.map { ("noise", $0) }
            var kindByID: [CorrectionID: String] = [:]
            for (_, (kind, fix)) in all.enumerated().sorted(by: { ($0.offset * 7) % all.count < ($1.offset * 7) % all.count }) {
                let c = try await workflow.recordCorrection(CorrectionInput(query: "customer question", original: fix.0, corrected: fix.1),
                                                            by: "slack:alice")
                kindByID[c.id] = kind
            }
            #expect(kindByID.count == 24)

            let patterns = try await workflow.correctionPatterns(floor: 3)
            #expect(patterns.map(\.pattern.count) == [12, 8])
            let refund = try #require(patterns.first)
            #expect(refund.pattern.signature == ["+14", "-30"])
            #expect(refund.pattern.summary == "replaced 30 with 14")
            #expect(refund.examples.count == 3)
            #expect(refund.examples.allSatisfy { kindByID[$0.id] == "refund" })
            let shipping = try #require(patterns.last)
            #expect(shipping.pattern.signature == ["+75", "-50"])
            #expect(shipping.examples.allSatisfy { kindByID[$0.id] == "shipping" })
        }
    }
}

@Suite("Workflow: labeling on SQLite")
struct WorkflowLabelingTests {
    @Test func nextTaskNeverRepeatsForALabelerAndSkipsFullTasks() async throws {
        try await WorkflowHarness.with { _, workflow in
            var ids: [LabelTaskID] = []
            for n in 1...4 {
                ids.append(try await workflow.createLabelTask(
                    LabelTaskInput(dataset: "sentiment", type: .choice(options: ["positive", "negative"]), content: "review \(n)",
                                   overlap: 2, labelers: ["labelers"]), by: "key:loader").id)
            }
            // Alice walks the whole dataset once.
            var aliceSaw: [LabelTaskID] = []
            while let task = try await workflow.nextLabelTask(dataset: "sentiment", for: Who.alice) {
                #expect(!aliceSaw.contains(task.id), "task #\(task.id) offered twice")
                aliceSaw.append(task.id)
                _ = try await workflow.addLabel(task.id, text: "positive", by: Who.alice)
                if aliceSaw.count > 10 { break }
            }
            #expect(aliceSaw == ids)
            await expectWorkflowError(.wrongState, "already labeled") { try await workflow.addLabel(ids[2], text: "negative", by: Who.alice) }

            // Bob completes the first two tasks; Carol is offered only the ones still short of labels.
            _ = try await workflow.addLabel(ids[0], text: "negative", by: Who.bob)
            _ = try await workflow.addLabel(ids[1], text: "2", by: Who.bob)
            #expect(try await workflow.labelTask(ids[1]).status == .complete)
            #expect(try await workflow.nextLabelTask(dataset: "sentiment", for: Who.carol)?.id == ids[2])
            await expectWorkflowError(.wrongState, "already has its 2 labels") { try await workflow.addLabel(ids[0], text: "positive", by: Who.carol) }
            await expectWorkflowError(.notAllowed, "not a labeler") { try await workflow.addLabel(ids[3], text: "positive", by: Who.meg) }
            await expectWorkflowError(.invalid, "one of positive, negative") { try await workflow.addLabel(ids[3], text: "meh", by: Who.carol) }
            #expect(try await workflow.labelTask(ids[3]).labelCount == 1)

            let consensus = try await workflow.consensus(ids[1])
            #expect(consensus.labels.map(\.value) == [.choice("positive"), .choice("negative")])
            #expect(consensus.consensus.agreement == 0)
        }
    }

    @Test func datasetAgreementOverStoredLabelsMatchesTheCore() async throws {
        try await WorkflowHarness.with { _, workflow in
            // Krippendorff (2011): observers A–D rate twelve units on 1…5, some values missing.
            let rows: [[Double?]] = [
                [1, 2, 3, 3, 2, 1, 4, 1, 2, nil, nil, nil],
                [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nil, 3],
                [nil, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nil],
                [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nil],
            ]
            let observers = ["slack:obs-a", "slack:obs-b", "slack:obs-c", "slack:obs-d"]
            var expected = AgreementAccumulator()
            for unit in 0..<12 {
                let task = try await workflow.createLabelTask(
                    LabelTaskInput(dataset: "kripp", type: .rating(min: 1, max: 5), content: "unit \(unit + 1)", overlap: 4, labelers: ["*"]), by: "key:loader")
                var values: [Double] = []
                for (o, row) in rows.enumerated() {
                    guard let value = row[unit] else { continue }
                    _ = try await workflow.addLabel(task.id, json: .int(Int64(value)), by: Actor(ActorID(observers[o])))
                    values.append(value)
                }
                expected.addInterval(values)
            }
            let agreement = try await workflow.agreement(dataset: "kripp")
            #expect(agreement.tasks == 12)
            #expect(agreement.labels == 41)
            #expect(agreement.pairableTasks == 11)
            let interval = try #require(agreement.krippendorffAlphaInterval)
            let nominal = try #require(agreement.krippendorffAlphaNominal)
            let kappa = try #require(agreement.fleissKappa)
            #expect(abs(interval - (try #require(expected.alphaInterval))) < 1e-12)
            #expect(abs(nominal - (try #require(expected.alphaNominal))) < 1e-12)
            #expect(abs(kappa - (try #require(expected.fleissKappa))) < 1e-12)
            #expect(abs(interval - 0.8491071428571428) < 1e-9)
            #expect(abs(nominal - 0.743421052631579) < 1e-9)
        }
    }

    @Test func fleissKappaOverStoredChoiceLabels() async throws {
        try await WorkflowHarness.with { _, workflow in
            let counts: [[Int]] = [
                [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
            ]
            let options = ["c1", "c2", "c3", "c4", "c5"]
            for row in counts {
                let task = try await workflow.createLabelTask(
                    LabelTaskInput(dataset: "fleiss", type: .choice(options: options), content: "subject", overlap: 14, labelers: ["*"]), by: "key:loader")
                var rater = 0
                for (category, n) in row.enumerated() {
                    for _ in 0..<n {
                        rater += 1
                        _ = try await workflow.addLabel(task.id, text: options[category], by: Actor(ActorID("slack:rater-\(rater)")))
                    }
                }
            }
            let kappa = try #require(try await workflow.agreement(dataset: "fleiss").fleissKappa)
            #expect(abs(kappa - 0.20993070442195522) < 1e-9)
        }
    }

    @Test func exportWritesOneJSONLinePerTask() async throws {
        try await WorkflowHarness.with { _, workflow in
            let text = "The battery died after two days 🔋."
            let span = try await workflow.createLabelTask(LabelTaskInput(dataset: "export", type: .span, content: text, overlap: 2), by: "key:loader")
            let box = try await workflow.createLabelTask(LabelTaskInput(dataset: "export", type: .boundingBox, content: "https://img.example/1.png"),
                                                         by: "key:loader")
            let rating = try await workflow.createLabelTask(LabelTaskInput(dataset: "export", type: .rating(min: 1, max: 5), content: "rate me",
                                                                           instructions: "1 = bad, 5 = \"great\""), by: "key:loader")
            _ = try await workflow.addLabel(span.id, text: "4-11", by: Who.alice)
            _ = try await workflow.addLabel(span.id, json: .object(["start": .int(4), "end": .int(11)]), by: Who.bob)
            _ = try await workflow.addLabel(box.id, text: "10,20,50,40", by: Who.alice)
            _ = try await workflow.addLabel(rating.id, text: "4.5", by: Who.carol)

            var lines: [String] = []
            let count = try await workflow.exportJSONL(dataset: "export") { lines.append($0) }
            #expect(count == 3)
            #expect(lines.count == 3)
            #expect(lines.allSatisfy { $0.hasSuffix("\n") && $0.dropLast().firstIndex(of: "\n") == nil })
            let objects = try lines.map { try jsonObject($0) }
            let tasks = objects.compactMap { $0["task"] as? [String: Any] }
            #expect(tasks.compactMap { number($0["id"]) } == [span, box, rating].map { Double($0.id.rawValue) })
            #expect(tasks.first?["content"] as? String == text)
            #expect(tasks.last?["instructions"] as? String == "1 = bad, 5 = \"great\"")

            let spanLine = objects[0]
            #expect((spanLine["labels"] as? [Any])?.count == 2)
            let consensus = try #require(spanLine["consensus"] as? [String: Any])
            #expect(number(consensus["start"]) == 4)
            #expect(number(consensus["end"]) == 11)
            #expect(number(spanLine["agreement"]) == 1)
            #expect(number(objects[2]["consensus"]) == 4.5)
            #expect(objects[1]["agreement"] == nil || objects[1]["agreement"] is NSNull)
        }
    }
}
