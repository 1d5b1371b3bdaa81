import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import Testing

/// The behaviour every ``WorkflowStore`` backend must have. Each test runs once per entry of
/// ``StoreFactory/all``.
@Suite("Store contract")
struct StoreContractTests {
    let approvers = Directory(groups: ["approvers": ["slack:alice", "slack:bob"]])
    let alice = Actor("slack:alice")
    let bob = Actor("slack:bob")

    /// Catches the store failure `body` throws, or records that it threw none.
    func storeFailure(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> StoreError? {
        do {
            try await body()
            Issue.record("expected a StoreError, but the commit succeeded", sourceLocation: sourceLocation)
        } catch let error as StoreError {
            return error
        } catch {
            Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    // MARK: Migrations and restarts

    @Test(arguments: StoreFactory.all)
    func aFreshDatabaseIsMigratedAndEmpty(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            try await store.ping()
            #expect(try await store.approvals(status: nil, limit: 10, before: nil).isEmpty)
            #expect(try await store.reviewItems(queue: nil, status: nil, limit: 10, before: nil).isEmpty)
            #expect(try await store.dueTimers(now: .distantFuture, limit: 10).isEmpty)
            #expect(try await store.nextTimerDue() == nil)
            #expect(try await store.corrections(after: nil, limit: 10).isEmpty)
            #expect(try await store.queueNames().isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aRestartKeepsEverything(factory: StoreFactory) async throws {
        try await factory.withDatabase { database in try await restartKeepsEverything(database) }
    }

    func restartKeepsEverything(_ database: TestDatabase) async throws {
        let f = Fixtures()
        let store = try await database.open()

        let approval = try f.approval(1, callbackURL: "https://agent.example/hook")
        let idempotency = EventKey(source: "api:key:agent", key: "idem-1")
        try await store.commit(.inserting(approval, event: idempotency), now: f.now)

        let enqueued = try f.reviewItem(1)
        try await store.commit(.inserting(enqueued), now: f.now)
        f.clock.advance(by: 10)
        let claimed = try ReviewMachine.claim(enqueued.entity, by: alice, queue: QueueConfig(reviewers: ["*"]), directory: approvers, now: f.now)
        try await store.commit(.claiming(claimed, of: enqueued.entity, from: 1), now: f.now)
        f.clock.advance(by: 20)
        let submitted = try ReviewMachine.submit(claimed.entity, verdict: .rejected, feedback: "wrong window", correctedAnswer: "14 days",
                                                 by: alice, now: f.now)
        var submit = try ChangeSet.updating(submitted, from: 2)
        submit.reviews.append((submitted.entity.id, submitted.entity.queue, try #require(submitted.entity.reviews.last)))
        try await store.commit(submit, now: f.now)

        let escalation = try f.escalation(1)
        try await store.commit(.inserting(escalation), now: f.now)
        let feedback = try f.feedback(1)
        try await store.commit(.inserting(feedback), now: f.now)

        let correction = try f.correction(1, query: "How long do refunds take?")
        var cs = try ChangeSet.inserting(correction)
        cs.correctionTerms.append((correction.entity.id, ["long", "refund", "take"]))
        try await store.commit(cs, now: f.now)

        let task = try f.labelTask(1)
        try await store.commit(.inserting(task), now: f.now)
        let (labeled, label) = try LabelingMachine.label(task.entity, value: .choice("negative"), by: bob, alreadyLabeled: false,
                                                         directory: approvers, now: f.now)
        var labelSet = try ChangeSet.updating(labeled, from: 1)
        labelSet.labels.append((label, "sentiment"))
        try await store.commit(labelSet, now: f.now)

        #expect(try await store.reserveIDs(.approval, count: 5) == 1...5)
        try await store.close()

        // Restart: a new store on the same database; migrations find nothing to do.
        let reopened = try await database.open()

        let storedApproval = try #require(try await reopened.approval(ApprovalID(1)))
        #expect(storedApproval.value == approval.entity)
        #expect(storedApproval.version == 1)
        #expect(try await reopened.eventEntity(source: idempotency.source, key: idempotency.key) == .some(approval.entity.ref))
        #expect(try await reopened.timers(of: approval.entity.ref) == [DueTimer(entity: approval.entity.ref, kind: .expiry,
                                                                                dueAt: approval.entity.expiresAt)])
        #expect(try await reopened.audit(of: approval.entity.ref) == approval.audit)
        #expect(try await reopened.outbox(of: approval.entity.ref).map(\.kind) == [.postCard])

        let storedItem = try #require(try await reopened.reviewItem(ReviewItemID(1)))
        #expect(storedItem.value == submitted.entity)
        #expect(storedItem.version == 3)
        #expect(storedItem.value.reviews.first?.correctedAnswer == "14 days")
        let stats = try await reopened.queueStats(queue: "support")
        #expect(stats.completed == 1)
        #expect(stats.timeToClaim == DurationStats(count: 1, p50Seconds: 10, p90Seconds: 10))
        #expect(stats.timeToDecide == DurationStats(count: 1, p50Seconds: 20, p90Seconds: 20))

        #expect(try await reopened.escalation(EscalationID(1))?.value == escalation.entity)
        #expect(try await reopened.feedback(FeedbackID(1))?.value == feedback.entity)
        #expect(try await reopened.correction(CorrectionID(1)) == correction.entity)
        #expect(try await reopened.correctionCandidates(terms: ["refund"], limit: 5).map(\.id) == [CorrectionID(1)])

        #expect(try await reopened.labelTask(LabelTaskID(1))?.value == labeled.entity)
        let labels = try await reopened.labels(task: LabelTaskID(1))
        #expect(labels.map(\.labeler) == ["slack:bob"])
        #expect(labels.map(\.value) == [.choice("negative")])
        #expect(labels.map(\.at) == [label.at])
        #expect(try await reopened.hasLabel(task: LabelTaskID(1), labeler: "slack:bob"))

        // Reserved ids are never handed out again.
        #expect(try await reopened.reserveIDs(.approval, count: 1) == 6...6)
        try await reopened.close()
    }

    @Test(arguments: StoreFactory.all)
    func reopeningManyTimesIsHarmless(factory: StoreFactory) async throws {
        try await factory.withDatabase { database in
            let f = Fixtures()
            for round in 1...3 {
                let store = try await database.open()
                try await store.commit(.inserting(try f.approval(Int64(round))), now: f.now)
                #expect(try await store.approvals(status: "pending", limit: 10, before: nil).count == round)
                try await store.close()
            }
        }
    }

    // MARK: Atomic commits

    @Test(arguments: StoreFactory.all)
    func aLostCompareAndSetWritesNothing(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let created = try f.approval(1)
            try await store.commit(.inserting(created), now: f.now)
            let decided = try ApprovalMachine.decide(created.entity, verdict: .approve, comment: nil, by: alice, directory: approvers,
                                                     now: f.now)
            // Read at a version that is no longer current, with an event key, an insert, timers and outbox rows.
            var stale = try ChangeSet.updating(decided, from: 7, event: EventKey(source: "slack", key: "Ev-lost"))
            let other = try f.approval(2)
            stale.inserts.append(try other.entity.row())
            stale.timers.append(.schedule(other.entity.ref, .expiry, at: f.now.addingTimeInterval(60)))
            stale.audit += other.audit
            #expect(!stale.outbox.isEmpty)

            let error = await storeFailure { try await store.commit(stale, now: f.now) }
            guard case .conflict = error else { Issue.record("expected a conflict, got \(String(describing: error))"); return }

            let current = try #require(try await store.approval(ApprovalID(1)))
            #expect(current.version == 1)
            #expect(current.value.status == .pending)
            #expect(try await store.approval(ApprovalID(2)) == nil)
            #expect(try await store.audit(of: created.entity.ref).count == 1)
            #expect(try await store.audit(of: other.entity.ref).isEmpty)
            #expect(try await store.outbox(of: created.entity.ref).map(\.kind) == [.postCard])
            #expect(try await store.timers(of: created.entity.ref).map(\.kind) == [.expiry])
            #expect(try await store.timers(of: other.entity.ref).isEmpty)
            #expect(try await store.eventEntity(source: "slack", key: "Ev-lost") == nil)

            // The same change set at the right version commits.
            try await store.commit(try .updating(decided, from: 1, event: EventKey(source: "slack", key: "Ev-lost")), now: f.now)
            #expect(try await store.approval(ApprovalID(1))?.value.status.name == "approved")
            #expect(try await store.approval(ApprovalID(1))?.version == 2)
            #expect(try await store.timers(of: created.entity.ref).isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aFailureLateInTheChangeSetRollsBackEarlierWrites(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let directory = Directory(groups: ["reviewers": ["slack:alice"]])
            let enqueued = try f.reviewItem(1, reviewsRequired: 2)
            try await store.commit(.inserting(enqueued), now: f.now)
            let claimed = try ReviewMachine.claim(enqueued.entity, by: alice, queue: QueueConfig(reviewsRequired: 2, reviewers: ["*"]), directory: directory, now: f.now)
            try await store.commit(.updating(claimed, from: 1), now: f.now)
            let submitted = try ReviewMachine.submit(claimed.entity, verdict: .approved, feedback: nil, correctedAnswer: nil, by: alice, now: f.now)
            let review = try #require(submitted.entity.reviews.last)
            var first = try ChangeSet.updating(submitted, from: 2)
            first.reviews.append((ReviewItemID(1), "support", review))
            try await store.commit(first, now: f.now)

            // A second change set whose update succeeds but whose review row already exists.
            let released = try ReviewMachine.claim(submitted.entity, by: bob, queue: QueueConfig(reviewsRequired: 2, reviewers: ["*"]),
                                                   directory: Directory(groups: [:]), now: f.now)
            var second = try ChangeSet.updating(released, from: 3, event: EventKey(source: "slack", key: "Ev-dup-review"))
            second.reviews.append((ReviewItemID(1), "support", review))
            let error = await storeFailure { try await store.commit(second, now: f.now) }
            guard case .uniqueViolation = error else { Issue.record("expected a unique violation, got \(String(describing: error))"); return }

            let stored = try #require(try await store.reviewItem(ReviewItemID(1)))
            #expect(stored.version == 3)
            #expect(stored.value.status == .pending)
            #expect(try await store.eventEntity(source: "slack", key: "Ev-dup-review") == nil)
            #expect(try await store.timers(of: enqueued.entity.ref).map(\.kind) == [.sla])
        }
    }

    @Test(arguments: StoreFactory.all)
    func aDuplicateEventKeyWritesNothing(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let key = EventKey(source: "slack", key: "Ev1")
            let first = try f.approval(1)
            try await store.commit(.inserting(first, event: key), now: f.now)

            let second = try f.approval(2)
            let error = await storeFailure { try await store.commit(.inserting(second, event: key), now: f.now) }
            #expect(error == .duplicate)
            #expect(try await store.approval(ApprovalID(2)) == nil)
            #expect(try await store.audit(of: second.entity.ref).isEmpty)
            #expect(try await store.outbox(of: second.entity.ref).isEmpty)
            #expect(try await store.timers(of: second.entity.ref).isEmpty)
            #expect(try await store.eventEntity(source: "slack", key: "Ev1") == .some(first.entity.ref))

            // The same key from another platform is another event.
            try await store.commit(.inserting(second, event: EventKey(source: "discord", key: "Ev1")), now: f.now)
            #expect(try await store.approval(ApprovalID(2)) != nil)
        }
    }

    @Test(arguments: StoreFactory.all)
    func eventKeysArePrunedByAge(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            try await store.commit(.inserting(try f.approval(1), event: EventKey(source: "slack", key: "old")), now: f.now)
            f.clock.advance(.hours(25))
            try await store.commit(.inserting(try f.approval(2), event: EventKey(source: "slack", key: "new")), now: f.now)
            #expect(try await store.pruneEventKeys(before: f.now.addingTimeInterval(-86_400),
                                                   idempotencyBefore: f.now.addingTimeInterval(-30 * 86_400)) == 1)
            #expect(try await store.eventEntity(source: "slack", key: "old") == nil)
            #expect(try await store.eventEntity(source: "slack", key: "new") != nil)
        }
    }

    @Test(arguments: StoreFactory.all)
    func idempotencyKeysOutliveChatEventKeys(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let key = EventKey(source: "api:key:agent", key: "deploy-42", requestHash: "abc")
            try await store.commit(.inserting(try f.approval(1), event: key), now: f.now)
            try await store.commit(.inserting(try f.approval(2), event: EventKey(source: "slack", key: "Ev9")), now: f.now)
            f.clock.advance(.hours(48))
            let pruned = try await store.pruneEventKeys(before: f.now.addingTimeInterval(-86_400),
                                                        idempotencyBefore: f.now.addingTimeInterval(-30 * 86_400))
            #expect(pruned == 1, "only the day-old chat key goes")
            let record = try #require(try await store.eventRecord(source: "api:key:agent", key: "deploy-42"))
            #expect(record.entity == EntityRef(kind: .approval, id: 1))
            #expect(record.requestHash == "abc")
            f.clock.advance(.hours(24 * 30))
            #expect(try await store.pruneEventKeys(before: f.now.addingTimeInterval(-86_400),
                                                   idempotencyBefore: f.now.addingTimeInterval(-30 * 86_400)) == 1)
        }
    }

    @Test(arguments: StoreFactory.all)
    func anOutboxRowIsLeasedToOneDeliverer(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let a = EntityRef(kind: .approval, id: 1)
            var cs = ChangeSet()
            cs.outbox = [OutboxDraft(kind: .webhook, entity: a, destination: "https://agent.example/hook")]
            try await store.commit(cs, now: f.now)
            let row = try #require(try await store.dueOutbox(now: f.now, kinds: [.webhook], limit: 10).first)
            let until = f.now.addingTimeInterval(120)
            #expect(try await store.claimOutbox(row.id, until: until, now: f.now))
            #expect(try await store.claimOutbox(row.id, until: until, now: f.now) == false, "a second process must not take it")
            #expect(try await store.dueOutbox(now: f.now, kinds: [.webhook], limit: 10).isEmpty, "a leased row is not due")
            // A deliverer that died: the lease runs out and the row is due again.
            let later = until.addingTimeInterval(1)
            #expect(try await store.dueOutbox(now: later, kinds: [.webhook], limit: 10).map(\.id) == [row.id])
            #expect(try await store.claimOutbox(row.id, until: later.addingTimeInterval(120), now: later))
            try await store.markOutboxRetry(row.id, at: later, error: "HTTP 500")
            #expect(try await store.dueOutbox(now: later, kinds: [.webhook], limit: 10).map(\.id) == [row.id], "a retry releases the lease")
            try await store.markOutboxDone(row.id)
            #expect(try await store.claimOutbox(row.id, until: later.addingTimeInterval(120), now: later) == false)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aGeneratedValueIsStoredOnce(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let first = try await store.insertValueIfAbsent("one", forKey: "secret", at: f.now)
            let second = try await store.insertValueIfAbsent("two", forKey: "secret", at: f.now)
            #expect(first == "one")
            #expect(second == "one", "the second process must adopt the stored secret")
        }
    }

    // MARK: Timers

    @Test(arguments: StoreFactory.all)
    func aFiredTimerIsDeletedExactlyOnce(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let created = try f.approval(1)
            try await store.commit(.inserting(created), now: f.now)
            #expect(try await store.dueTimers(now: f.now, limit: 10).isEmpty)
            #expect(try await store.nextTimerDue() == created.entity.expiresAt)

            f.clock.advance(.hours(1))
            let due = try await store.dueTimers(now: f.now, limit: 10)
            #expect(due == [DueTimer(entity: created.entity.ref, kind: .expiry, dueAt: created.entity.expiresAt)])
            let timer = try #require(due.first)
            let expired = try #require(ApprovalMachine.expire(created.entity, now: f.now))
            try await store.commit(.updating(expired, from: 1, firedTimer: timer), now: f.now)

            // A second scheduler that saw the same row loses, even against the current version.
            var again = ChangeSet(firedTimer: timer)
            again.audit = expired.audit
            let error = await storeFailure { try await store.commit(again, now: f.now) }
            guard case .conflict = error else { Issue.record("expected a conflict, got \(String(describing: error))"); return }
            #expect(try await store.audit(of: created.entity.ref).map(\.to) == ["pending", "expired"])
            #expect(try await store.dueTimers(now: .distantFuture, limit: 10).isEmpty)
        }
    }

    @Test(arguments: StoreFactory.all)
    func aMovedTimerCannotBeFiredAtItsOldTime(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let created = try f.approval(1)
            try await store.commit(.inserting(created), now: f.now)
            let old = try #require(try await store.timers(of: created.entity.ref).first)
            var move = ChangeSet()
            let later = created.entity.expiresAt.addingTimeInterval(600)
            move.timers.append(.schedule(created.entity.ref, .expiry, at: later))
            try await store.commit(move, now: f.now)
            #expect(try await store.timers(of: created.entity.ref) == [DueTimer(entity: created.entity.ref, kind: .expiry, dueAt: later)])

            let error = await storeFailure { try await store.commit(ChangeSet(firedTimer: old), now: f.now) }
            guard case .conflict = error else { Issue.record("expected a conflict, got \(String(describing: error))"); return }
            #expect(try await store.timers(of: created.entity.ref).count == 1)
        }
    }

    @Test(arguments: StoreFactory.all)
    func dueTimersComeOldestFirstUpToTheLimit(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            var cs = ChangeSet()
            for (id, minutes) in [(1, 30.0), (2, 10), (3, 20), (4, 90)] {
                cs.timers.append(.schedule(EntityRef(kind: .reviewItem, id: Int64(id)), .lease, at: f.now.addingTimeInterval(minutes * 60)))
            }
            try await store.commit(cs, now: f.now)
            let due = try await store.dueTimers(now: f.now.addingTimeInterval(3600), limit: 10)
            #expect(due.map(\.entity.id) == [2, 3, 1])
            #expect(try await store.dueTimers(now: f.now.addingTimeInterval(3600), limit: 2).map(\.entity.id) == [2, 3])
        }
    }

    // MARK: Ids

    @Test(arguments: StoreFactory.all)
    func reservedIDsNeverRepeatAcrossReopens(factory: StoreFactory) async throws {
        try await factory.withDatabase { database in try await reservedIDsNeverRepeat(database) }
    }

    func reservedIDsNeverRepeat(_ database: TestDatabase) async throws {
        var seen: Set<Int64> = []
        var last: Int64 = 0

        let store = try await database.open()
        for count in [3, 1, 5] {
            let range = try await store.reserveIDs(.approval, count: count)
            #expect(range.count == count)
            #expect(range.lowerBound == last + 1)
            last = range.upperBound
            seen.formUnion(range)
        }
        // Kinds count separately.
        #expect(try await store.reserveIDs(.reviewItem, count: 2) == 1...2)
        // Concurrent reservations never share an id.
        let concurrent = try await withThrowingTaskGroup(of: ClosedRange<Int64>.self) { group in
            for _ in 0..<20 { group.addTask { try await store.reserveIDs(.approval, count: 1) } }
            var ranges: [ClosedRange<Int64>] = []
            for try await range in group { ranges.append(range) }
            return ranges
        }
        for range in concurrent {
            #expect(seen.isDisjoint(with: range))
            seen.formUnion(range)
        }
        #expect(seen.count == 9 + 20)
        try await store.close()

        let reopened = try await database.open()
        let after = try await reopened.reserveIDs(.approval, count: 4)
        #expect(seen.isDisjoint(with: after))
        #expect(after.lowerBound == (seen.max() ?? 0) + 1)
        try await reopened.close()
    }

    // MARK: Review queues

    /// Inserts review items enqueued one second apart.
    func enqueue(_ items: [(id: Int64, queue: String, priority: Priority)], into store: any WorkflowStore, _ f: Fixtures) async throws {
        for item in items {
            try await store.commit(.inserting(try f.reviewItem(item.id, queue: item.queue, priority: item.priority, reviewsRequired: 2)), now: f.now)
            f.clock.advance(by: 1)
        }
    }

    @Test(arguments: StoreFactory.all)
    func nextClaimableServesPriorityThenOldest(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            try await enqueue([(1, "support", .low), (2, "support", .critical), (3, "support", .high), (4, "support", .medium),
                               (5, "support", .critical), (6, "billing", .critical), (7, "support", .critical)], into: store, f)
            // Item 7 is claimed by someone: not claimable.
            let seven = try #require(try await store.reviewItem(ReviewItemID(7)))
            let claimed = try ReviewMachine.claim(seven.value, by: bob, queue: QueueConfig(reviewers: ["*"]), directory: Directory(), now: f.now)
            try await store.commit(.updating(claimed, from: seven.version), now: f.now)

            var order: [Int64] = []
            var skipping: Set<ReviewItemID> = []
            while let next = try await store.nextClaimable(queue: "support", reviewer: "slack:alice", skipping: skipping) {
                order.append(next.value.id.rawValue)
                skipping.insert(next.value.id)
                #expect(next.version == 1)
            }
            #expect(order == [2, 5, 3, 4, 1])
            #expect(try await store.nextClaimable(queue: "billing", reviewer: "slack:alice", skipping: [])?.value.id == ReviewItemID(6))
            #expect(try await store.nextClaimable(queue: "nowhere", reviewer: "slack:alice", skipping: []) == nil)
            #expect(try await store.queueNames() == ["billing", "support"])
        }
    }

    @Test(arguments: StoreFactory.all)
    func nextClaimableSkipsItemsTheReviewerAlreadyReviewed(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            try await enqueue([(1, "support", .critical), (2, "support", .low)], into: store, f)
            let item = try #require(try await store.reviewItem(ReviewItemID(1)))
            let claimed = try ReviewMachine.claim(item.value, by: alice, queue: QueueConfig(reviewsRequired: 2, reviewers: ["*"]), directory: Directory(), now: f.now)
            try await store.commit(.updating(claimed, from: 1), now: f.now)
            let submitted = try ReviewMachine.submit(claimed.entity, verdict: .approved, feedback: nil, correctedAnswer: nil, by: alice, now: f.now)
            var cs = try ChangeSet.updating(submitted, from: 2)
            cs.reviews.append((ReviewItemID(1), "support", try #require(submitted.entity.reviews.last)))
            try await store.commit(cs, now: f.now)
            #expect(try await store.reviewItem(ReviewItemID(1))?.value.status == .pending)

            // Item 1 is pending again and outranks item 2, but Alice already reviewed it.
            #expect(try await store.nextClaimable(queue: "support", reviewer: "slack:alice", skipping: [])?.value.id == ReviewItemID(2))
            #expect(try await store.nextClaimable(queue: "support", reviewer: "slack:bob", skipping: [])?.value.id == ReviewItemID(1))
        }
    }

    /// Runs one review: claim `waited` seconds after the item became claimable, submit `decided` seconds later.
    func review(_ id: Int64, queue: String, by actor: Actor, waited: TimeInterval, decided: TimeInterval, verdict: ReviewVerdict = .approved,
                store: any WorkflowStore, clock: ManualClock) async throws {
        let item = try #require(try await store.reviewItem(ReviewItemID(id)))
        clock.set(item.value.pendingSince.addingTimeInterval(waited))
        let claimed = try ReviewMachine.claim(item.value, by: actor, queue: QueueConfig(reviewers: ["*"]), directory: Directory(), now: clock.now())
        try await store.commit(.claiming(claimed, of: item.value, from: item.version), now: clock.now())
        clock.advance(by: decided)
        let submitted = try ReviewMachine.submit(claimed.entity, verdict: verdict, feedback: verdict == .approved ? nil : "not right",
                                                 correctedAnswer: nil, by: actor, now: clock.now())
        var cs = try ChangeSet.updating(submitted, from: item.version + 1)
        cs.reviews.append((submitted.entity.id, queue, try #require(submitted.entity.reviews.last)))
        try await store.commit(cs, now: clock.now())
    }

    @Test(arguments: StoreFactory.all)
    func queueStatsUseNearestRankPercentilesOfRealDurations(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for id in 1...13 {
                try await store.commit(.inserting(try f.reviewItem(Int64(id), queue: "stats")), now: f.now)
            }
            // Ten reviews: waited 10, 20, …, 100 s; decided 30, 27, …, 3 s.
            for i in 1...10 {
                try await review(Int64(i), queue: "stats", by: i % 2 == 1 ? alice : bob, waited: Double(10 * i),
                                 decided: Double(3 * (11 - i)), verdict: i == 10 ? .rejected : .approved, store: store, clock: f.clock)
            }
            // Item 11 claimed, item 12 pending, item 13 pending and past its SLA.
            let eleven = try #require(try await store.reviewItem(ReviewItemID(11)))
            try await store.commit(.claiming(try ReviewMachine.claim(eleven.value, by: alice, queue: QueueConfig(reviewers: ["*"]), directory: Directory(),
                                                                     now: f.now), of: eleven.value, from: 1), now: f.now)
            let thirteen = try #require(try await store.reviewItem(ReviewItemID(13)))
            try await store.commit(.updating(try #require(ReviewMachine.slaLapsed(thirteen.value, now: f.now)), from: 1), now: f.now)

            let stats = try await store.queueStats(queue: "stats")
            #expect(stats.pending == 2)
            #expect(stats.claimed == 1)
            #expect(stats.completed == 10)
            #expect(stats.slaBreaches == 1)
            // Time to claim counts item 11's claim too (103 s, in hand): 10, 20, …, 100, 103.
            #expect(stats.timeToClaim == DurationStats(count: 11, p50Seconds: 60, p90Seconds: 100))
            #expect(stats.timeToDecide == DurationStats(count: 10, p50Seconds: 15, p90Seconds: 27))

            let reviewers = try await store.reviewerStats(queue: "stats")
            #expect(reviewers.map(\.reviewer) == ["slack:alice", "slack:bob"])
            let a = try #require(reviewers.first)
            #expect(a.reviews == 5)
            #expect(a.approved == 5)
            // Alice decided in 30, 24, 18, 12, 6 s, and claimed after 10, 30, 50, 70, 90 s and (item 11) 103 s.
            #expect(a.timeToDecide == DurationStats(count: 5, p50Seconds: 18, p90Seconds: 30))
            #expect(a.timeToClaim == DurationStats(count: 6, p50Seconds: 50, p90Seconds: 103))
            #expect(a.slaBreaches == 0)
            let b = try #require(reviewers.last)
            #expect(b.approved == 4)
            #expect(b.rejected == 1)
            #expect(b.timeToClaim == DurationStats(count: 5, p50Seconds: 60, p90Seconds: 100))
        }
    }

    @Test(arguments: StoreFactory.all)
    func percentilesAreNotAverages(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for id in 1...3 { try await store.commit(.inserting(try f.reviewItem(Int64(id), queue: "skewed")), now: f.now) }
            for (id, waited) in [(1, 5.0), (2, 100), (3, 7)] {
                try await review(Int64(id), queue: "skewed", by: alice, waited: waited, decided: 1, store: store, clock: f.clock)
            }
            let stats = try await store.queueStats(queue: "skewed")
            #expect(stats.timeToClaim == DurationStats(count: 3, p50Seconds: 7, p90Seconds: 100))
            #expect(try await store.queueStats(queue: "empty").timeToClaim == DurationStats(count: 0, p50Seconds: nil, p90Seconds: nil))
        }
    }

    // MARK: Labels

    @Test(arguments: StoreFactory.all)
    func labelsPageByTaskThenLabeler(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for (id, dataset) in [(1, "sentiment"), (2, "other"), (3, "sentiment"), (4, "sentiment")] {
                try await store.commit(.inserting(try f.labelTask(Int64(id), dataset: dataset)), now: f.now)
            }
            for id in [1, 2, 3, 4] {
                for labeler in ["slack:carol", "slack:alice", "slack:bob"] {
                    let current = try #require(try await store.labelTask(LabelTaskID(Int64(id))))
                    let (t, label) = try LabelingMachine.label(current.value, value: .choice("positive"), by: Actor(ActorID(labeler)),
                                                               alreadyLabeled: false, directory: Directory(), now: f.now)
                    var cs = try ChangeSet.updating(t, from: current.version)
                    cs.labels.append((label, current.value.dataset))
                    try await store.commit(cs, now: f.now)
                }
            }
            var seen: [String] = []
            var pageSizes: [Int] = []
            var cursor: (LabelTaskID, ActorID)?
            while true {
                let page = try await store.labels(dataset: "sentiment", after: cursor, limit: 2)
                guard let last = page.last else { break }
                pageSizes.append(page.count)
                seen += page.map { "\($0.task)/\($0.labeler.localPart)" }
                cursor = (last.task, last.labeler)
            }
            #expect(seen == ["1/alice", "1/bob", "1/carol", "3/alice", "3/bob", "3/carol", "4/alice", "4/bob", "4/carol"])
            #expect(pageSizes == [2, 2, 2, 2, 1])
            #expect(try await store.labelTask(LabelTaskID(4))?.value.status == .complete)
        }
    }

    @Test(arguments: StoreFactory.all)
    func nextLabelTaskSkipsLabeledAndCompleteTasks(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for id in 1...3 { try await store.commit(.inserting(try f.labelTask(Int64(id), overlap: 1)), now: f.now) }
            try await store.commit(.inserting(try f.labelTask(4, dataset: "other", overlap: 2)), now: f.now)
            let one = try #require(try await store.labelTask(LabelTaskID(1)))
            let (t, label) = try LabelingMachine.label(one.value, value: .choice("neutral"), by: bob, alreadyLabeled: false,
                                                       directory: Directory(), now: f.now)
            var cs = try ChangeSet.updating(t, from: one.version)
            cs.labels.append((label, "sentiment"))
            try await store.commit(cs, now: f.now)

            // Task 1 has its one label: nobody gets it any more.
            func next(_ dataset: String?, _ who: ActorID) async throws -> LabelTaskID? {
                try await store.nextLabelTask(dataset: dataset, labeler: who, groups: ["labelers"], now: f.now,
                                              holdUntil: f.now.addingTimeInterval(600))?.id
            }
            #expect(try await next("sentiment", "slack:alice") == LabelTaskID(2))
            #expect(try await next("other", "slack:alice") == LabelTaskID(4))
            #expect(try await next("missing", "slack:alice") == nil)
            // Alice holds task 2 now (overlap 1): Carol is handed task 3, then there is nothing left for Dave.
            #expect(try await next("sentiment", "slack:carol") == LabelTaskID(3))
            #expect(try await next("sentiment", "slack:dave") == nil)
            #expect(try await next(nil, "slack:dave") == LabelTaskID(4), "task 4 takes two labels; Alice holds one")
        }
    }

    @Test(arguments: StoreFactory.all)
    func labelersAskingAtOnceAreHandedDifferentTasksAndHoldsEnd(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for id in 1...3 { try await store.commit(.inserting(try f.labelTask(Int64(id), overlap: 2)), now: f.now) }
            func next(_ who: ActorID, at now: Date? = nil) async throws -> LabelTaskID? {
                let now = now ?? f.now
                return try await store.nextLabelTask(dataset: "sentiment", labeler: who, groups: [], now: now, holdUntil: now.addingTimeInterval(600))?.id
            }
            // Eight labelers at once, two labels per task: two per task, the rest get nothing.
            let people: [ActorID] = (1...8).map { ActorID("slack:u\($0)") }
            let handed = try await withThrowingTaskGroup(of: (ActorID, LabelTaskID?).self) { group in
                for who in people { group.addTask { (who, try await next(who)) } }
                return try await group.reduce(into: [ActorID: LabelTaskID?]()) { $0[$1.0] = $1.1 }
            }
            let perTask = Dictionary(grouping: handed.values.compactMap { $0 }, by: { $0 }).mapValues(\.count)
            #expect(perTask == [LabelTaskID(1): 2, LabelTaskID(2): 2, LabelTaskID(3): 2], "\(handed)")
            #expect(handed.values.filter { $0 == nil }.count == 2)
            // Asking again gives the same task.
            let u1 = try #require(handed[people[0]] ?? nil)
            #expect(try await next(people[0]) == u1)
            // Labeling it ends the hold: the label fills the slot, and the holder is handed another task (none left).
            let task = try #require(try await store.labelTask(u1))
            let (t, label) = try LabelingMachine.label(task.value, value: .choice("neutral"), by: Actor(people[0]), alreadyLabeled: false,
                                                       directory: Directory(), now: f.now)
            var cs = try ChangeSet.updating(t, from: task.version)
            cs.labels.append((label, "sentiment"))
            try await store.commit(cs, now: f.now)
            #expect(try await next(people[0]) == nil, "task \(u1) is labeled by them; the others are held by others")
            // Holds lapse: eleven minutes on, a waiting labeler is handed a task.
            let waiting = try #require(people.first { handed[$0] == .some(nil) })
            #expect(try await next(waiting) == nil)
            #expect(try await next(waiting, at: f.now.addingTimeInterval(660)) == LabelTaskID(1))
            // Pruning deletes lapsed holds only: the one just taken (until +21 min) stays.
            #expect(try await store.pruneLabelHolds(before: f.now.addingTimeInterval(660)) == 5)
            #expect(try await next(waiting, at: f.now.addingTimeInterval(700)) == LabelTaskID(1), "their hold survived the prune")
        }
    }

    @Test(arguments: StoreFactory.all)
    func nextLabelTaskHandsOutOnlyTasksTheLabelerMayLabel(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            func task(_ id: Int64, _ labelers: [String]) throws -> Transition<LabelTask> {
                try LabelingMachine.create(
                    id: LabelTaskID(id),
                    input: LabelTaskInput(dataset: "d", type: .choice(options: ["a", "b"]), content: "text \(id)", overlap: 1, labelers: labelers),
                    by: "key:loader", now: f.now)
            }
            // Group names LIKE would misread (`_`, `%`) must match only themselves.
            try await store.commit(.inserting(try task(1, ["med_ical"])), now: f.now)
            try await store.commit(.inserting(try task(2, ["legal", "100%"])), now: f.now)
            try await store.commit(.inserting(try task(3, ["*"])), now: f.now)
            func next(_ who: ActorID, _ groups: [String]?) async throws -> LabelTaskID? {
                try await store.nextLabelTask(dataset: "d", labeler: who, groups: groups, now: f.now, holdUntil: f.now.addingTimeInterval(600))?.id
            }
            #expect(try await next("slack:none", []) == LabelTaskID(3), "in no group: only the task open to anyone")
            #expect(try await next("slack:x", ["medXical", "100"]) == nil, "no wildcard match, and task 3 is held")
            #expect(try await next("slack:l", ["100%"]) == LabelTaskID(2))
            #expect(try await next("slack:m", ["med_ical"]) == LabelTaskID(1))
            #expect(try await next("slack:admin", nil) == nil, "an admin may label any task, but every one is held by someone now")
            #expect(try await store.pruneLabelHolds(before: f.now.addingTimeInterval(601)) == 3)
            #expect(try await next("slack:admin", nil) == LabelTaskID(1))
        }
    }

    @Test(arguments: StoreFactory.all)
    func aLabelerLabelsATaskOnce(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            try await store.commit(.inserting(try f.labelTask(1)), now: f.now)
            let task = try #require(try await store.labelTask(LabelTaskID(1)))
            let (t, label) = try LabelingMachine.label(task.value, value: .choice("neutral"), by: bob, alreadyLabeled: false,
                                                       directory: Directory(), now: f.now)
            var cs = try ChangeSet.updating(t, from: 1)
            cs.labels.append((label, "sentiment"))
            try await store.commit(cs, now: f.now)
            // A second label by the same person, even against the current version, is refused by the schema.
            let (t2, label2) = try LabelingMachine.label(t.entity, value: .choice("positive"), by: bob, alreadyLabeled: false,
                                                         directory: Directory(), now: f.now)
            var again = try ChangeSet.updating(t2, from: 2)
            again.labels.append((label2, "sentiment"))
            let error = await storeFailure { try await store.commit(again, now: f.now) }
            guard case .uniqueViolation = error else { Issue.record("expected a unique violation, got \(String(describing: error))"); return }
            #expect(try await store.labels(task: LabelTaskID(1)).map(\.value) == [.choice("neutral")])
            #expect(try await store.labelTask(LabelTaskID(1))?.value.labelCount == 1)
        }
    }

    // MARK: Corrections

    @Test(arguments: StoreFactory.all)
    func correctionCandidatesShareTermsMostSharedFirst(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let rows: [(Int64, String, Set<String>)] = [
                (1, "How long do refunds take?", ["long", "refund", "take"]),
                (2, "Can I get a refund after 30 days?", ["get", "refund", "after", "30", "day"]),
                (3, "What is the shipping cost?", ["shipping", "cost"]),
                (4, "Refund window for shoes", ["refund", "window", "shoe"]),
            ]
            for (id, query, terms) in rows {
                var cs = try ChangeSet.inserting(try f.correction(id, query: query))
                cs.correctionTerms.append((CorrectionID(id), terms))
                try await store.commit(cs, now: f.now)
            }
            let candidates = try await store.correctionCandidates(terms: ["refund", "window"], limit: 10)
            #expect(candidates.map(\.id.rawValue) == [4, 2, 1])
            #expect(try await store.correctionCandidates(terms: ["refund", "window"], limit: 2).map(\.id.rawValue) == [4, 2])
            #expect(try await store.correctionCandidates(terms: ["zebra"], limit: 10).isEmpty)
            #expect(try await store.correctionCandidates(terms: [], limit: 10).isEmpty)

            let stats = try await store.termFrequencies(["refund", "window", "zebra"])
            #expect(stats.documents == 4)
            #expect(stats.frequencies == ["refund": 3, "window": 1])

            #expect(try await store.corrections(after: nil, limit: 3).map(\.id.rawValue) == [1, 2, 3])
            #expect(try await store.corrections(after: CorrectionID(3), limit: 3).map(\.id.rawValue) == [4])
        }
    }

    // MARK: Outbox

    @Test(arguments: StoreFactory.all)
    func outboxRowsAreDueRetriedAndFinished(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            let a = EntityRef(kind: .approval, id: 1)
            let b = EntityRef(kind: .approval, id: 2)
            var cs = ChangeSet()
            cs.outbox = [OutboxDraft(kind: .postCard, entity: a, destination: "approvals"),
                         OutboxDraft(kind: .webhook, entity: a, destination: "https://agent.example/hook", payload: #"{"event":"x"}"#),
                         OutboxDraft(kind: .postCard, entity: b, destination: "approvals")]
            try await store.commit(cs, now: f.now)
            let rows = try await store.outbox(of: a)
            #expect(rows.map(\.kind) == [.postCard, .webhook])
            #expect(rows.allSatisfy { $0.status == .pending && $0.attempts == 0 && $0.nextAttemptAt == f.now })
            #expect(rows.last?.payload == #"{"event":"x"}"#)
            let postA = rows[0].id, hookA = rows[1].id
            let postB = try #require(try await store.outbox(of: b).first).id

            #expect(try await store.dueOutbox(now: f.now, kinds: [.postCard], limit: 10).map(\.id) == [postA, postB])
            #expect(try await store.dueOutbox(now: f.now, kinds: [.webhook], limit: 10).map(\.id) == [hookA])
            // Among all kinds, an entity's webhook waits for its earlier card: messages keep their order.
            #expect(try await store.dueOutbox(now: f.now, kinds: Set(OutboxKind.allCases), limit: 10).map(\.id) == [postA, postB])
            #expect(try await store.dueOutbox(now: f.now, kinds: [.postCard], limit: 1).map(\.id) == [postA])
            #expect(try await store.dueOutbox(now: f.now.addingTimeInterval(-1), kinds: Set(OutboxKind.allCases), limit: 10).isEmpty)
            #expect(try await store.dueOutbox(now: f.now, kinds: [], limit: 10).isEmpty)

            // A failed attempt waits until its retry time, and the later post to its destination waits
            // with it (a channel's cards appear in order); a post to another destination does not.
            let c = EntityRef(kind: .approval, id: 3)
            var other = ChangeSet()
            other.outbox = [OutboxDraft(kind: .postCard, entity: c, destination: "reviews")]
            try await store.commit(other, now: f.now)
            let postC = try #require(try await store.outbox(of: c).first).id
            try await store.markOutboxRetry(postA, at: f.now.addingTimeInterval(60), error: "HTTP 503")
            #expect(try await store.dueOutbox(now: f.now, kinds: [.postCard], limit: 10).map(\.id) == [postC])
            #expect(try await store.outbox(of: b).first?.attempts == 0, "the post behind it was only put off, not tried")
            // Due rows come in due-time order: postC (due since the start), then postA and postB, in order.
            let dueLater = try await store.dueOutbox(now: f.now.addingTimeInterval(60), kinds: [.postCard], limit: 10)
            #expect(dueLater.map(\.id) == [postC, postA, postB])
            try await store.markOutboxDone(postC)
            let retried = try #require(dueLater.first { $0.id == postA })
            #expect(retried.id == postA)
            #expect(retried.attempts == 1)
            #expect(retried.lastError == "HTTP 503")

            try await store.markOutboxDone(postA)
            try await store.markOutboxFailed(postB, error: "channel_not_found")
            let done = try #require(try await store.outbox(of: a).first)
            #expect(done.status == .done)
            #expect(done.attempts == 2)
            #expect(done.lastError == nil)
            #expect(try await store.outbox(of: b).first?.status == .failed)
            #expect(try await store.dueOutbox(now: f.now.addingTimeInterval(60), kinds: Set(OutboxKind.allCases), limit: 10).map(\.id) == [hookA])
            // A finished row is not retried again.
            try await store.markOutboxRetry(postA, at: f.now, error: "late")
            #expect(try await store.outbox(of: a).first?.status == .done)
        }
    }

    // MARK: Listing

    @Test(arguments: StoreFactory.all)
    func listsFilterByStatusAndPageNewestFirst(factory: StoreFactory) async throws {
        try await factory.withStore { store in
            let f = Fixtures()
            for id in 1...5 { try await store.commit(.inserting(try f.approval(Int64(id))), now: f.now) }
            let three = try #require(try await store.approval(ApprovalID(3)))
            let rejected = try ApprovalMachine.decide(three.value, verdict: .reject, comment: "no", by: alice, directory: approvers, now: f.now)
            try await store.commit(.updating(rejected, from: 1), now: f.now)

            #expect(try await store.approvals(status: nil, limit: 10, before: nil).map(\.id.rawValue) == [5, 4, 3, 2, 1])
            #expect(try await store.approvals(status: "pending", limit: 10, before: nil).map(\.id.rawValue) == [5, 4, 2, 1])
            #expect(try await store.approvals(status: "rejected", limit: 10, before: nil).map(\.id.rawValue) == [3])
            #expect(try await store.approvals(status: nil, limit: 2, before: ApprovalID(4)).map(\.id.rawValue) == [3, 2])
        }
    }
}
