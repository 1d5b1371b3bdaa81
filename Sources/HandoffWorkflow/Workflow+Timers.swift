import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    /// Fires every timer due now (up to `limit`), each exactly once even with several schedulers:
    /// the transition commits only together with deleting the timer row it fired.
    @discardableResult
    package func fireDueTimers(limit: Int = 200) async throws -> Int {
        let now = clock.now()
        var fired = 0
        for timer in try await store.dueTimers(now: now, limit: limit) {
            do {
                try await fire(timer, now: now)
                fired += 1
            } catch StoreError.conflict {
                // Another scheduler fired it, or the entity changed under us; the next round re-reads.
                continue
            } catch where StoreError.isTransient(error) {
                // The database is busy (another process holds its lock): nothing is wrong with the timer, so it
                // stays due and fires on a later round. Postponing it a minute would make an SLA of seconds late
                // by a minute; trying the rest now would only wait out the same lock once per timer.
                throw error
            } catch {
                // One broken timer must not block the ones behind it: push it back and say so.
                logger.error("a timer failed; retrying it in a minute", metadata: [
                    "timer": "\(timer.kind.rawValue)", "entity": "\(timer.entity)", "error": "\(error)",
                ])
                var postpone = ChangeSet()
                postpone.timers = [.schedule(timer.entity, timer.kind, at: now.addingTimeInterval(configuration.failedTimerDelay.seconds))]
                try? await store.commit(postpone, now: now)
            }
        }
        return fired
    }

    func fire(_ timer: DueTimer, now: Date) async throws {
        let id = timer.entity.id
        switch (timer.entity.kind, timer.kind) {
        case (.approval, .expiry):
            try await fire(timer, now: now, load: { try await self.store.approval(ApprovalID(id)) }) { ApprovalMachine.expire($0, now: now) }
        case (.reviewItem, .lease):
            try await fire(timer, now: now, load: { try await self.store.reviewItem(ReviewItemID(id)) }) { ReviewMachine.leaseLapsed($0, now: now) }
        case (.reviewItem, .sla):
            try await fire(timer, now: now, load: { try await self.store.reviewItem(ReviewItemID(id)) }) { ReviewMachine.slaLapsed($0, now: now) }
        case (.escalation, .sla):
            let config = policy.escalation
            try await fire(timer, now: now, load: { try await self.store.escalation(EscalationID(id)) }) {
                EscalationMachine.slaLapsed($0, config: config, now: now)
            }
        case (.escalation, .ackTimeout):
            let config = policy.escalation
            try await fire(timer, now: now, load: { try await self.store.escalation(EscalationID(id)) }) {
                EscalationMachine.ackLapsed($0, config: config, now: now)
            }
        case (.feedback, .deadline):
            try await fire(timer, now: now, load: { try await self.store.feedback(FeedbackID(id)) }) { FeedbackMachine.deadlinePassed($0, now: now) }
        default:
            logger.warning("dropping a timer nothing handles", metadata: ["timer": "\(timer.kind.rawValue)", "entity": "\(timer.entity)"])
            try await commit(ChangeSet(firedTimer: timer), now: now)
        }
    }

    private func fire<E: StoredEntity & OutboxSubject>(
        _ timer: DueTimer, now: Date, load: () async throws -> Versioned<E>?, transition: (E) -> Transition<E>?
    ) async throws {
        guard let current = try await load(), let t = transition(current.value) else {
            // Nothing to do (already decided, entity gone): just retire the timer.
            try await commit(ChangeSet(firedTimer: timer), now: now)
            return
        }
        let cs = try changeSet(t, expectedVersion: current.version, firedTimer: timer, now: now)
        try await commit(cs, now: now)
        logger.debug("timer fired", metadata: ["timer": "\(timer.kind.rawValue)", "entity": "\(timer.entity)"])
    }

    package func nextTimerDue() async throws -> Date? { try await store.nextTimerDue() }
}
