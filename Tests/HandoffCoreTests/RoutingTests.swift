import Foundation
import HandoffCore
import Testing

@Suite("Confidence parsing")
struct ConfidenceParserTests {
    @Test(arguments: [
        ("0.85", 0.85),
        ("85%", 0.85),
        ("85 percent", 0.85),
        ("85/100", 0.85),
        ("8/10", 0.8),
        ("10/10", 1.0),
        ("3 out of 5", 0.6),
        ("Confidence: 0.9", 0.9),
        ("My answer mentions 3 plans. Confidence: 0.72", 0.72),
        ("confidence: high", 0.85),
        ("high", 0.85),
        ("Medium", 0.6),
        ("low", 0.3),
        ("very low", 0.1),
        ("VERY HIGH!", 0.95),
        ("85", 0.85),
        ("  .5 ", 0.5),
        ("1.0", 1.0),
        ("Confidence: 1.00", 1.0),
        ("0", 0.0),
    ])
    func reads(text: String, expected: Double) throws {
        switch ConfidenceParser.parse(text) {
        case .success(let value):
            #expect(abs(value - expected) < 1e-12, "'\(text)' read as \(value), expected \(expected)")
        case .failure(let failure):
            Issue.record("'\(text)' should read as \(expected) but failed: \(failure.reason)")
        }
    }

    @Test func whicheverRatingComesFirstAfterTheLabelWins() throws {
        #expect(try ConfidenceParser.parse("Confidence: high (I checked 3 sources)").get() == 0.85)
        #expect(try ConfidenceParser.parse("Confidence: 0.9 — high").get() == 0.9)
        #expect(try ConfidenceParser.parse("My confidence is very low; 2 of the 5 facts are unverified").get() == 0.1)
        #expect(try ConfidenceParser.parse("Answer: Paris. Confidence: very high").get() == 0.95)
        // A word inside another word is not a rating ("highway" is not "high").
        #expect((try? ConfidenceParser.parse("Take the highway").get()) == nil)
    }

    /// A number that is not a rating must never become one: these would otherwise auto-send.
    @Test func detachedNumbersAreNotRatings() throws {
        #expect(try ConfidenceParser.parse("Low confidence overall; 1 source agreed").get() == 0.3)
        #expect(try ConfidenceParser.parse("High confidence, though step 1 was unclear").get() == 0.85)
        #expect((try? ConfidenceParser.parse("I checked 1 source").get()) == nil)
        #expect((try? ConfidenceParser.parse("There are 2 answers and 1 is right").get()) == nil)
        #expect(try ConfidenceParser.parse("I'd rate it 0.7").get() == 0.7)
        #expect(try ConfidenceParser.parse("I am 90% sure").get() == 0.9)
        #expect(try ConfidenceParser.parse("certainty level - 6/10").get() == 0.6)
    }

    @Test func contradictoryRatingsGoToAPerson() {
        guard case .failure(let failure) = ConfidenceParser.parse("Low confidence, maybe 90%") else {
            Issue.record("contradicting ratings must not be read")
            return
        }
        #expect(failure.reason.contains("contradict"))
    }

    @Test func aProbabilityIsNeverDividedByAHundred() throws {
        let value = try ConfidenceParser.parse("0.85").get()
        #expect(value == 0.85)
        #expect(value != 0.0085)
    }

    @Test(arguments: [
        ("", "empty"),
        ("   ", "empty"),
        ("banana", "no number"),
        ("-0.5", "negative"),
        ("150%", "outside"),
        ("12/10", "outside"),
        ("8", "ambiguous"),
        // "1" tops 0–1 but is the lowest rating of 1–5 or 1–10: never read as full confidence.
        ("1", "ambiguous"),
        ("Confidence: 1", "ambiguous"),
        ("250", "outside"),
        ("5/0", "zero"),
    ])
    func refuses(text: String, reasonMentions: String) {
        switch ConfidenceParser.parse(text) {
        case .success(let value):
            Issue.record("'\(text)' must not read as a confidence, got \(value)")
        case .failure(let failure):
            #expect(!failure.reason.isEmpty)
            #expect(failure.reason.contains(reasonMentions), "reason: \(failure.reason)")
        }
    }
}

@Suite("Confidence routing")
struct RouterTests {
    let route = RouteConfig(threshold: 0.8, queue: "support", escalationFloor: nil)
    let escalation = EscalationConfig()

    func route(
        answer: String? = "Refunds are accepted within 14 days.", _ confidence: ConfidenceInput, user: String? = "How do refunds work?",
        config: RouteConfig? = nil
    ) -> RoutingDecision {
        Router.route(answer: answer, confidence: confidence, userMessage: user, route: config ?? route, escalation: escalation)
    }

    @Test func anUnreadableSelfRatingGoesToAPersonWithTheReason() {
        let decision = route(.selfRating("banana"))
        guard case .review(let confidence, let reason) = decision else {
            Issue.record("expected review, got \(decision)")
            return
        }
        #expect(confidence == nil)
        #expect(reason.contains("could not read the self-rating 'banana'"))
        #expect(reason.contains("no number"))
    }

    @Test func anAmbiguousSelfRatingIsNeverAutoSent() {
        #expect(route(.selfRating("8")).name == "review")
        #expect(route(.selfRating("")).name == "review")
    }

    @Test func scoresAtOrAboveTheThresholdAreSent() {
        #expect(route(.score(0.93)) == .autoSend(confidence: 0.93))
        #expect(route(.score(0.8)) == .autoSend(confidence: 0.8))
        #expect(route(.selfRating("Confidence: 90%")) == .autoSend(confidence: 0.9))
    }

    @Test func scoresBelowTheThresholdAreReviewed() {
        let decision = route(.score(0.79))
        #expect(decision == .review(confidence: 0.79, reason: "confidence 0.79 is below the threshold 0.80"))
        // The seed read "0.85" as 0.0085 and would have queued this; 0.85 passes a 0.8 threshold.
        #expect(route(.selfRating("0.85")).name == "auto_send")
    }

    @Test func outOfRangeOrMissingScoresAreReviewed() {
        #expect(route(.score(1.5)).name == "review")
        #expect(route(.score(.nan)).name == "review")
        #expect(route(.unavailable(reason: "no AI provider configured")) == .review(confidence: 0, reason: "no AI provider configured"))
    }

    @Test(arguments: ["talk to a human!!", "TALK TO A HUMAN", "Can I talk to a... human?", "please, speak-to-a-person now", "I want a REAL person"])
    func askingForAPersonEscalates(message: String) {
        let decision = route(.score(0.99), user: message)
        #expect(decision.name == "escalate", "'\(message)' should escalate")
        #expect(decision.reason == "the user asked for a person")
    }

    @Test func phrasesMatchWholeWordsOnly() {
        #expect(route(.score(0.99), user: "I read a talk to a humanitarian group").name == "auto_send")
    }

    @Test func anAIThatCannotHelpEscalates() {
        let decision = route(answer: "I'm not able to help with that.", .score(0.97))
        guard case .escalate(let confidence, let reason) = decision else {
            Issue.record("expected escalate, got \(decision)")
            return
        }
        #expect(confidence == 0.97)
        #expect(reason.contains("cannot help"))
        #expect(route(answer: "I’m unable to access your account", .score(0.9)).name == "escalate")
    }

    @Test func belowTheEscalationFloorEscalates() {
        let withFloor = RouteConfig(threshold: 0.8, queue: "support", escalationFloor: 0.3)
        #expect(route(.score(0.2), config: withFloor)
            == .escalate(confidence: 0.2, reason: "confidence 0.20 is below the escalation floor 0.30"))
        #expect(route(.score(0.5), config: withFloor).name == "review")
        #expect(route(.score(0.9), config: withFloor).name == "auto_send")
    }

    @Test func escalationTriggerPrefersTheUsersRequest() {
        let config = EscalationConfig()
        #expect(EscalationMachine.trigger(userMessage: "talk to a human", aiAnswer: "I don't know", confidence: 0.1, floor: 0.5, config: config)
            == .userAsked(phrase: "talk to a human"))
        #expect(EscalationMachine.trigger(userMessage: "hi", aiAnswer: "I don't know", confidence: 0.9, floor: 0.5, config: config)
            == .cannotHelp(phrase: "i don't know"))
        #expect(EscalationMachine.trigger(userMessage: "hi", aiAnswer: "Sure!", confidence: 0.1, floor: 0.5, config: config)
            == .lowConfidence(0.1))
        #expect(EscalationMachine.trigger(userMessage: "hi", aiAnswer: "Sure!", confidence: 0.9, floor: 0.5, config: config) == nil)
    }
}
