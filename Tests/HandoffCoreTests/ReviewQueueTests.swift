import Foundation
import HandoffCore
import HandoffTesting
import Testing

@Suite("Review queues")
struct ReviewQueueTests {
    let clock = ManualClock()
    let directory = People.directory
    let queue = QueueConfig(lease: .minutes(15), sla: .hours(4), reviewsRequired: 1, reviewers: ["*"], channel: "reviews")

    func enqueue(_ id: Int64 = 1, reviewsRequired: Int = 1, priority: Priority = .medium) throws -> ReviewItem {
        var config = queue
        config.reviewsRequired = reviewsRequired
        let request = ReviewItemRequest(priority: priority, content: ReviewContent(query: "How long is the refund window?",
                                                                                   answer: "30 days", confidence: 0.41))
        return try ReviewMachine.enqueue(id: ReviewItemID(id), request: request, queue: config, by: People.agentBot, now: clock.now()).entity
    }

    func claim(_ item: ReviewItem, by actor: Actor, queue config: QueueConfig? = nil) throws(WorkflowError) -> ReviewItem {
        try ReviewMachine.claim(item, by: actor, queue: config ?? queue, directory: directory, now: clock.now()).entity
    }

    func submit(
        _ item: ReviewItem, _ verdict: ReviewVerdict, feedback: String? = nil, corrected: String? = nil, by actor: Actor
    ) throws(WorkflowError) -> ReviewItem {
        try ReviewMachine.submit(item, verdict: verdict, feedback: feedback, correctedAnswer: corrected, by: actor, now: clock.now()).entity
    }

    @Test func prioritiesAreServedCriticalHighMediumLow() {
        #expect([Priority.low, .critical, .medium, .high].sorted() == [.critical, .high, .medium, .low])
        #expect(Priority.allCases.map(\.rank) == [0, 1, 2, 3])
        #expect(Priority(rank: 1) == .high)
        #expect(Priority(rank: 9) == nil)
    }

    @Test func enqueueSchedulesTheSLAAndPostsACard() throws {
        let request = ReviewItemRequest(priority: .high, content: ReviewContent(answer: "draft"))
        let t = try ReviewMachine.enqueue(id: ReviewItemID(3), request: request, queue: queue, by: People.agentBot, now: clock.now())
        #expect(t.entity.status == .pending)
        #expect(t.entity.pendingSince == clock.now())
        #expect(t.effects.scheduled(.sla) == clock.now().addingTimeInterval(4 * 3600))
        #expect(t.effects.postedDestinations == ["reviews"])
    }

    @Test func enqueueValidatesContent() {
        expectRefusal(.invalid, field: "content") {
            try ReviewMachine.enqueue(id: ReviewItemID(1), request: ReviewItemRequest(content: ReviewContent(title: "  ")), queue: queue,
                                      by: People.agentBot, now: clock.now())
        }
        expectRefusal(.invalid, "between 0 and 1", field: "confidence") {
            try ReviewMachine.enqueue(id: ReviewItemID(1), request: ReviewItemRequest(content: ReviewContent(answer: "x", confidence: 1.5)),
                                      queue: queue, by: People.agentBot, now: clock.now())
        }
    }

    @Test func claimTakesALeaseAndOthersAreToldWhoHoldsIt() throws {
        let item = try enqueue()
        let t = try ReviewMachine.claim(item, by: People.alice, queue: queue, directory: directory, now: clock.now())
        #expect(t.entity.status == .claimed(by: "slack:alice", at: clock.now(), leaseUntil: clock.now().addingTimeInterval(900)))
        #expect(t.effects.scheduled(.lease) == clock.now().addingTimeInterval(900))
        expectRefusal(.wrongState, "claimed by @slack:alice") { try claim(t.entity, by: People.bob) }
        expectRefusal(.wrongState, "already hold") { try claim(t.entity, by: People.alice) }
    }

    @Test func submitRules() throws {
        let item = try enqueue()
        expectRefusal(.wrongState, "not claimed") { try submit(item, .approved, by: People.alice) }
        let claimed = try claim(item, by: People.alice)
        expectRefusal(.notAllowed, "claimed by @slack:alice, not you") { try submit(claimed, .approved, by: People.bob) }
        expectRefusal(.invalid, "required", field: "feedback") { try submit(claimed, .rejected, feedback: " ", by: People.alice) }
        let done = try submit(claimed, .rejected, feedback: "wrong window", by: People.alice)
        #expect(done.status == .completed(verdict: .rejected, at: clock.now()))
        expectRefusal(.wrongState, "already completed (rejected)") { try submit(done, .approved, by: People.alice) }
        expectRefusal(.wrongState, "already completed") { try claim(done, by: People.bob) }
    }

    @Test func completingCancelsTimersAndTellsTheCaller() throws {
        let claimed = try claim(try enqueue(), by: People.alice)
        let t = try ReviewMachine.submit(claimed, verdict: .approved, feedback: nil, correctedAnswer: nil, by: People.alice, now: clock.now())
        #expect(t.effects == [.cancel(.lease), .cancel(.sla), .updateCards, .webhook(event: "review.completed")])
    }

    @Test func aQueueWithReviewersRefusesOthers() throws {
        let restricted = QueueConfig(reviewers: ["managers"])
        let item = try enqueue()
        expectRefusal(.notAllowed, "not a reviewer") { try claim(item, by: People.alice, queue: restricted) }
        #expect(try claim(item, by: People.meg, queue: restricted).leaseHolder == "slack:meg")
        #expect(try claim(item, by: People.root, queue: restricted).leaseHolder == "cli:root")
    }

    /// The default is the reviewers group, never "anyone": letting any chat user approve review items
    /// would have to be written out as "*".
    @Test func byDefaultOnlyReviewersMayClaim() throws {
        let item = try enqueue()
        #expect(QueueConfig().reviewers == ["reviewers"])
        expectRefusal(.notAllowed, "not a reviewer") { try claim(item, by: People.meg, queue: QueueConfig()) }
        #expect(try claim(item, by: People.alice, queue: QueueConfig()).leaseHolder == "slack:alice")
        expectRefusal(.notAllowed, "not a reviewer") { try claim(item, by: People.alice, queue: QueueConfig(reviewers: [])) }
    }

    @Test func severalReviewsComeFromDifferentReviewers() throws {
        var item = try enqueue(reviewsRequired: 3)
        item = try claim(item, by: People.alice)
        item = try submit(item, .approved, by: People.alice)
        #expect(item.status == .pending)
        #expect(item.reviews.count == 1)
        // Alice cannot review the same item twice.
        expectRefusal(.notAllowed, "already reviewed", "different reviewer") { try claim(item, by: People.alice) }
        item = try submit(try claim(item, by: People.bob), .rejected, feedback: "too vague", by: People.bob)
        #expect(item.status == .pending)
        item = try submit(try claim(item, by: People.carol), .approved, by: People.carol)
        #expect(item.status == .completed(verdict: .approved, at: clock.now()))
        #expect(item.reviews.map(\.reviewer) == ["slack:alice", "slack:bob", "slack:carol"])
    }

    @Test(arguments: [
        ([ReviewVerdict.approved], ReviewVerdict.approved),
        ([.approved, .approved, .rejected], .approved),
        ([.approved, .rejected], .rejected),
        ([.approved, .revisionNeeded], .revisionNeeded),
        ([.revisionNeeded, .rejected], .rejected),
        ([.rejected, .revisionNeeded, .revisionNeeded], .revisionNeeded),
        ([.approved, .approved, .rejected, .rejected, .revisionNeeded], .rejected),
    ])
    func finalVerdictIsTheMajorityWithCautiousTieBreak(verdicts: [ReviewVerdict], expected: ReviewVerdict) {
        #expect(ReviewMachine.finalVerdict(verdicts) == expected)
        #expect(ReviewMachine.finalVerdict(verdicts.reversed()) == expected)
    }

    @Test func aLapsedLeaseReturnsTheItemToTheQueue() throws {
        let claimed = try claim(try enqueue(), by: People.alice)
        clock.advance(by: 600)
        // Before the lease ends the timer only re-arms.
        let early = try #require(ReviewMachine.leaseLapsed(claimed, now: clock.now()))
        #expect(early.entity == claimed)
        #expect(early.audit.isEmpty)
        #expect(early.effects == [.schedule(.lease, at: clock.now().addingTimeInterval(300))])

        clock.advance(by: 300)
        let lapsed = try #require(ReviewMachine.leaseLapsed(claimed, now: clock.now()))
        #expect(lapsed.entity.status == .pending)
        #expect(lapsed.entity.pendingSince == clock.now())
        #expect(lapsed.effects.notices == [Notice(.person("slack:alice"), "Your claim on review item #1 lapsed; it is back in the queue.")])
        #expect(try claim(lapsed.entity, by: People.bob).leaseHolder == "slack:bob")
        // A pending item has no lease to lapse.
        #expect(ReviewMachine.leaseLapsed(lapsed.entity, now: clock.now()) == nil)
    }

    @Test func theSLABreachIsMarkedOnce() throws {
        let item = try enqueue()
        clock.advance(.hours(4))
        let breached = try #require(ReviewMachine.slaLapsed(item, now: clock.now()))
        #expect(breached.entity.slaBreached)
        #expect(breached.entity.status == .pending)
        #expect(breached.audit.map(\.detail) == ["SLA breached"])
        #expect(ReviewMachine.slaLapsed(breached.entity, now: clock.now()) == nil)
        // A completed item is never marked.
        let done = try submit(try claim(item, by: People.alice), .approved, by: People.alice)
        #expect(ReviewMachine.slaLapsed(done, now: clock.now()) == nil)
    }

    @Test func completingAfterTheSLAIsABreachEvenIfItsTimerNeverFired() throws {
        let item = try enqueue()
        #expect(item.slaDueAt == clock.now().addingTimeInterval(4 * 3600))
        clock.advance(by: 600)
        let onTime = try submit(try claim(item, by: People.alice), .approved, by: People.alice)
        #expect(!onTime.slaBreached)
        #expect(onTime.reviews.last?.afterSLA == false)
        // The scheduler was down past the deadline: no SLA timer fired, and the item is completed late.
        let other = try enqueue(2)
        clock.advance(.hours(4))
        let t = try ReviewMachine.submit(try claim(other, by: People.bob), verdict: .approved, feedback: nil, correctedAnswer: nil,
                                         by: People.bob, now: clock.now())
        #expect(t.entity.slaBreached)
        #expect(t.entity.reviews.last?.afterSLA == true)
        #expect(t.audit.first?.detail?.contains("after its SLA") == true)
    }

    @Test func aLapsedLeaseCannotSubmitEvenBeforeItsTimerFires() throws {
        let claimed = try claim(try enqueue(), by: People.alice)
        clock.advance(by: 899)
        #expect(try submit(claimed, .approved, by: People.alice).status.name == "completed")
        clock.advance(by: 1)
        expectRefusal(.wrongState, "lapsed") { try submit(claimed, .approved, by: People.alice) }
    }

    @Test func reviewDurationsAreRealDurations() throws {
        let start = clock.now()
        let first = try enqueue(1)
        let second = try enqueue(2)
        clock.advance(by: 10)
        let a = try claim(first, by: People.alice)
        clock.advance(by: 20)
        let b = try claim(second, by: People.bob)
        clock.advance(by: 5)
        let doneA = try submit(a, .approved, by: People.alice)
        clock.advance(by: 2)
        let doneB = try submit(b, .approved, by: People.bob)

        let reviewA = try #require(doneA.reviews.first)
        let reviewB = try #require(doneB.reviews.first)
        #expect(reviewA.waitedSeconds == 10)
        #expect(reviewA.decideSeconds == 25)
        #expect(reviewB.waitedSeconds == 30)
        #expect(reviewB.decideSeconds == 7)
        #expect(reviewA.claimedAt == start.addingTimeInterval(10))
        #expect(reviewB.submittedAt == start.addingTimeInterval(37))
    }

    @Test func waitingForASecondReviewCountsFromTheFirstSubmission() throws {
        var item = try enqueue(reviewsRequired: 2)
        clock.advance(by: 10)
        item = try claim(item, by: People.alice)
        clock.advance(by: 4)
        item = try submit(item, .approved, by: People.alice)
        clock.advance(by: 30)
        item = try claim(item, by: People.bob)
        clock.advance(by: 6)
        item = try submit(item, .approved, by: People.bob)
        #expect(item.reviews.map(\.waitedSeconds) == [10, 30])
        #expect(item.reviews.map(\.decideSeconds) == [4, 6])
    }

    @Test func releaseGivesTheItemBack() throws {
        let claimed = try claim(try enqueue(), by: People.alice)
        expectRefusal(.wrongState, "not claimed by you") { try ReviewMachine.release(claimed, by: People.bob, now: clock.now()) }
        let released = try ReviewMachine.release(claimed, by: People.alice, now: clock.now())
        #expect(released.entity.status == .pending)
        #expect(released.effects.contains(.cancel(.lease)))
    }
}
