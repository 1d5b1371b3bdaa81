import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Async feedback")
struct FeedbackTests {
    let clock = ManualClock()

    func request(_ kind: FeedbackKind, respondent: ActorID? = nil, deadline: Span? = .hours(2)) throws(WorkflowError) -> FeedbackRequest {
        let input = FeedbackRequestInput(kind: kind, prompt: "Was this answer helpful?", subject: "Refunds take 14 days.",
                                         channel: "support", respondent: respondent, deadline: deadline)
        return try FeedbackMachine.request(id: FeedbackID(9), input: input, config: FeedbackConfig(), by: People.agentBot, now: clock.now()).entity
    }

    @Test(arguments: ["6", "abc", "0", "-1", "4.5", ""])
    func ratingsOutsideOneToFiveAreRefused(value: String) {
        expectRefusal(.invalid, "1 to 5", field: "rating") { try FeedbackMachine.validate(value, for: .rating) }
    }

    @Test func ratingsOneToFiveAreRead() throws {
        for n in 1...5 { #expect(try FeedbackMachine.validate(" \(n) ", for: .rating) == .rating(n)) }
    }

    @Test func choicesByNameIgnoringCaseOrByNumber() throws {
        let kind = FeedbackKind.choice(options: ["Helpful", "Wrong", "Too long"])
        #expect(try FeedbackMachine.validate("wrong", for: kind) == .choice("Wrong"))
        #expect(try FeedbackMachine.validate("TOO LONG", for: kind) == .choice("Too long"))
        #expect(try FeedbackMachine.validate("3", for: kind) == .choice("Too long"))
        #expect(try FeedbackMachine.validate("1", for: kind) == .choice("Helpful"))
        for bad in ["4", "0", "maybe", ""] {
            expectRefusal(.invalid, "one of Helpful, Wrong, Too long", field: "choice") { try FeedbackMachine.validate(bad, for: kind) }
        }
    }

    @Test func textMustNotBeEmpty() throws {
        expectRefusal(.invalid, "empty", field: "text") { try FeedbackMachine.validate("  \n ", for: .text) }
        #expect(try FeedbackMachine.validate("  too long-winded ", for: .text) == .text("too long-winded"))
    }

    @Test func requestsAreValidated() {
        expectRefusal(.invalid, field: "options") { try request(.choice(options: ["only one"])) }
        expectRefusal(.invalid, field: "options") { try request(.choice(options: ["Yes", "yes"])) }
        expectRefusal(.invalid, field: "deadline") { try request(.rating, deadline: Span(seconds: 0)) }
        expectRefusal(.invalid, field: "prompt") {
            try FeedbackMachine.request(id: FeedbackID(1), input: FeedbackRequestInput(kind: .text, prompt: " "), config: FeedbackConfig(),
                                        by: People.agentBot, now: clock.now())
        }
    }

    @Test func aRequestPostsACardAndSchedulesItsDeadline() throws {
        let input = FeedbackRequestInput(kind: .rating, prompt: "Rate it", channel: "support")
        let t = try FeedbackMachine.request(id: FeedbackID(1), input: input, config: FeedbackConfig(deadline: .hours(24)), by: People.agentBot,
                                            now: clock.now())
        #expect(t.entity.deadline == clock.now().addingTimeInterval(86_400))
        #expect(t.effects.scheduled(.deadline) == t.entity.deadline)
        #expect(t.effects.postedDestinations == ["support"])
    }

    @Test func onlyTheNamedRespondentAnswers() throws {
        let open = try request(.rating, respondent: "slack:ana")
        expectRefusal(.notAllowed, "asks @slack:ana, not you") {
            try FeedbackMachine.respond(open, value: "5", by: People.bob, now: clock.now())
        }
        let t = try FeedbackMachine.respond(open, value: "4", by: Actor("slack:ana"), now: clock.now())
        #expect(t.entity.status == .answered(response: .rating(4), by: "slack:ana", at: clock.now()))
        #expect(t.effects.contains(.cancel(.deadline)))
        #expect(t.effects.contains(.webhook(event: "feedback.answered")))
        expectRefusal(.wrongState, "already answered by @slack:ana") {
            try FeedbackMachine.respond(t.entity, value: "5", by: Actor("slack:ana"), now: clock.now())
        }
        // An admin may answer on someone's behalf.
        #expect(try FeedbackMachine.respond(open, value: "2", by: People.root, now: clock.now()).entity.status.name == "answered")
    }

    @Test func anInvalidAnswerLeavesTheRequestOpen() throws {
        let open = try request(.rating)
        expectRefusal(.invalid, field: "rating") { try FeedbackMachine.respond(open, value: "6", by: People.bob, now: clock.now()) }
        #expect(try FeedbackMachine.respond(open, value: "5", by: People.bob, now: clock.now()).entity.status.name == "answered")
    }

    @Test func theDeadlineClosesTheRequest() throws {
        let open = try request(.text, deadline: .hours(2))
        clock.advance(.hours(1))
        let early = try #require(FeedbackMachine.deadlinePassed(open, now: clock.now()))
        #expect(early.entity == open)
        #expect(early.effects == [.schedule(.deadline, at: open.deadline)])

        clock.advance(.hours(1))
        expectRefusal(.wrongState, "expired") { try FeedbackMachine.respond(open, value: "late", by: People.bob, now: clock.now()) }
        let expired = try #require(FeedbackMachine.deadlinePassed(open, now: clock.now()))
        #expect(expired.entity.status == .expired(at: clock.now()))
        expectRefusal(.wrongState, "expired") { try FeedbackMachine.respond(expired.entity, value: "late", by: People.bob, now: clock.now()) }
        #expect(FeedbackMachine.deadlinePassed(expired.entity, now: clock.now()) == nil)
    }

    @Test func responseRateCountsOnlyClosedRequests() {
        #expect(ResponseRate(channel: "support", answered: 3, expired: 1, open: 10).rate == 0.75)
        #expect(ResponseRate(channel: nil, answered: 0, expired: 4, open: 0).rate == 0)
        #expect(ResponseRate(channel: nil, answered: 0, expired: 0, open: 5).rate == nil)
    }
}
