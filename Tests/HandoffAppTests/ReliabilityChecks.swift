import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HandoffWorkflow

/// What one crash or fault run did and what the end-state checks found.
struct RunReport: Sendable {
    /// Every broken promise, one line each: a lost acked event, a second decision, a grant used twice, a
    /// card posted twice or left stale, a webhook never delivered or unsigned, a timer fired twice or never.
    var violations: [String] = []
    var eventsSent = 0
    var eventsAcked = 0
    var envelopesDelivered = 0
    /// Acks that came after the fake's 3 s deadline (it had redelivered the envelope by then).
    var lateAcks = 0
    var decisions = 0
    var grantsUsed = 0
    var reviewsCompleted = 0
    var escalationsTimedOut = 0
    var cards = 0
    var webhooksDelivered = 0
    var webhookRedeliveries = 0
    var timersDueWhileDown = 0
    /// API answers 503 (busy, retry) the agent got and retried.
    var apiBusyAnswers = 0

    var losses: Int { violations.count }

    mutating func violation(_ text: String) { violations.append(text) }

    /// The figures, for the summary line the README quotes.
    var figures: String {
        "events acked=\(eventsAcked) (of \(eventsSent) sent, \(envelopesDelivered) deliveries, \(lateAcks) acks late), decisions=\(decisions), grants used=\(grantsUsed), "
            + "reviews=\(reviewsCompleted), escalations timed out=\(escalationsTimedOut), cards=\(cards), "
            + "webhooks=\(webhooksDelivered) (+\(webhookRedeliveries) redelivered), timers due while down=\(timersDueWhileDown), API 503s retried=\(apiBusyAnswers), losses=\(losses)"
    }
}

/// The end-state checks every crash and fault run ends with, on the database (read after the last
/// process stopped cleanly), the fake Slack's record and the webhook receiver's.
enum EndStateChecks {
    static func run(rig: ServeRig, ledger: Ledger) async throws -> RunReport {
        let database = try SQLiteDatabase(path: rig.databasePath)
        let store = try await SQLWorkflowStore(database: database)
        do {
            let policy = try PolicyFile.parse(ServeRig.policy)
            let checks = Checker(rig: rig, ledger: ledger, store: store, database: database, cards: CardBuilder(escalation: policy.escalation),
                                 renderer: BlockKitRenderer(templates: try CardTemplates.load(directory: PackagePaths.cardTemplates)))
            let report = try await checks.run()
            try await store.close()
            return report
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Waits (bounded) until the running service has nothing left in hand: no pending inbound event, no
    /// pending outbox row, no timer overdue.
    static func settled(rig: ServeRig, timeout: Duration) async -> Bool {
        guard let database = try? SQLiteDatabase(path: rig.databasePath) else { return false }
        let settled = await eventually(timeout: timeout, poll: .milliseconds(250)) {
            let now = Date().millisecondsSince1970
            guard let inbound = try? await database.scalar("SELECT COUNT(*) FROM inbound_events WHERE status = 'pending'"),
                  let outbox = try? await database.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"),
                  let timers = try? await database.scalar("SELECT COUNT(*) FROM timers WHERE due_at <= ?", [.integer(now)])
            else { return false }
            return inbound == 0 && outbox == 0 && timers == 0
        }
        try? await database.close()
        return settled
    }
}

private struct Checker {
    let rig: ServeRig
    let ledger: Ledger
    let store: SQLWorkflowStore
    let database: SQLiteDatabase
    let cards: CardBuilder
    let renderer: BlockKitRenderer

    func run() async throws -> RunReport {
        var report = RunReport()
        let events = ledger.events
        let subjects = ledger.subjects
        report.eventsSent = events.count

        // Which events the fake saw acked (an ack on any delivery of the event).
        let sent = await rig.fake.sentEnvelopes()
        let acks = await rig.fake.acks()
        let ackedEnvelopes = Set(acks.map(\.envelopeID))
        report.lateAcks = acks.filter { $0.late || $0.latency > .seconds(3) }.count
        let ackedIDs = Set(sent.filter { ackedEnvelopes.contains($0.envelopeID) }.map(\.dedupeID))
        report.envelopesDelivered = sent.count
        let acked = events.filter { ackedIDs.contains($0.dedupeID) }
        report.eventsAcked = acked.count

        for problem in ledger.problems { report.violation(problem) }
        report.apiBusyAnswers = rig.unavailable.count
        try await checkInbound(acked, &report)
        for subject in subjects {
            if let problem = subject.problem { report.violation("\(subject.ref) (\(subject.plan.rawValue)): the workload saw it stuck: \(problem)") }
            try await checkAudit(subject, events: events, ackedIDs: ackedIDs, &report)
            switch subject.ref.kind {
            case .approval: try await checkApproval(subject, events: events, &report)
            case .reviewItem: try await checkReview(subject, &report)
            case .escalation: try await checkEscalation(subject, &report)
            default: break
            }
            try await checkCards(subject, &report)
        }
        try await checkCreatedOnce(subjects, &report)
        try await checkOutboxAndTimers(&report)
        try await checkWebhooks(&report)
        await checkOrphanCards(subjects, &report)
        // Calls inside a Retry-After window. One that reached the fake soon after the 429 that opened the
        // window may have been on its way already (another channel's call, in parallel) and is not counted;
        // a later one ignored the 429. (ChatStoryTests' A20 catches an immediate retry, one call at a time.)
        let calls = await rig.fake.calls()
        let hammering = await rig.fake.callsDuringRateLimit()
        for hammered in hammering {
            let opener = calls.last { call in
                call.method == hammered.method && call.status == 429 && call.at <= hammered.at
                    && !hammering.contains { $0.at == call.at && $0.method == call.method }
            }
            if let opener, hammered.at - opener.at < .milliseconds(500) { continue }
            let after = opener.map { "\((hammered.at - $0.at).components.seconds) s after the 429" } ?? "no 429 before it"
            report.violation("the service called \(hammered.method) inside its Retry-After window (\(after))")
        }
        if await rig.fake.reusedTicketAttempts() > 0 { report.violation("a socket URL was used twice") }
        for answer in rig.internalErrorAnswers { report.violation("the API answered 500 (retryable failures owe a 503): \(answer)") }
        return report
    }

    // MARK: Inbound events

    /// Every event the fake saw acked was recorded, processed (not pending, not failed) and its key is in
    /// the inbox with the entity it acted on: its effect was applied, and the unique key says at most once.
    func checkInbound(_ acked: [SentEvent], _ report: inout RunReport) async throws {
        for row in try await database.read("SELECT event_key, status, last_error FROM inbound_events WHERE status <> 'done'") {
            report.violation("inbound event \(row["event_key"].string ?? "?") left \(row["status"].string ?? "?"): \(row["last_error"].string ?? "")")
        }
        for event in acked {
            let rows = try await database.read("SELECT status FROM inbound_events WHERE platform = 'slack' AND event_key = ?", [.text(event.routerKey)])
            guard rows.count == 1 else {
                report.violation("acked event \(event.routerKey) (\(event.actor) on \(event.entity)) has \(rows.count) inbound rows")
                continue
            }
            guard let record = try await store.eventRecord(source: "slack", key: event.routerKey) else {
                report.violation("acked event \(event.routerKey) (\(event.actor) on \(event.entity)) was never applied (no inbox key)")
                continue
            }
            // Acts whose only effect is a reply or a prompt (❌ asking for the reason) keep the key alone.
            if record.entity != event.entity, record.entity != nil || event.audited {
                report.violation("acked event \(event.routerKey) was applied to \(record.entity.map { "\($0)" } ?? "nothing"), not \(event.entity)")
            }
        }
    }

    // MARK: Per entity

    /// Each processed act leaves one audit entry (a transition or a refusal); the people's entries on an
    /// entity are at least their acked acts and at most everything they sent: nothing acked is lost,
    /// nothing is applied twice.
    func checkAudit(_ subject: Subject, events: [SentEvent], ackedIDs: Set<String>, _ report: inout RunReport) async throws {
        let audit = try await store.audit(of: subject.ref)
        let mine = events.filter { $0.entity == subject.ref }
        for actor in Set(mine.map(\.actor)) {
            let theirs = mine.filter { $0.actor == actor }
            let atLeast = theirs.filter { $0.audited && ackedIDs.contains($0.dedupeID) }.count
            let atMost = theirs.count
            let entries = audit.filter { $0.actor == actor }.count
            if entries < atLeast || entries > atMost {
                report.violation("\(subject.ref): \(actor) has \(entries) audit entries for \(atLeast) acked acts (\(atMost) sent): "
                    + audit.filter { $0.actor == actor }.map { "\($0.from ?? "-")→\($0.to) \($0.detail ?? "")" }.joined(separator: "; "))
            }
        }
    }

    func checkApproval(_ subject: Subject, events: [SentEvent], _ report: inout RunReport) async throws {
        guard let approval = try await store.approval(ApprovalID(subject.ref.id))?.value else {
            return report.violation("\(subject.ref) is missing")
        }
        let audit = try await store.audit(of: subject.ref)
        let endings = audit.filter { $0.from == "pending" && $0.to != "pending" }
        if endings.count != 1 {
            report.violation("\(subject.ref) has \(endings.count) decisions: \(endings.map { "\($0.actor) \($0.to)" })")
        }
        if approval.status.isPending { return report.violation("\(subject.ref) is still pending") }
        report.decisions += 1
        if subject.plan == .quick {
            if approval.status.name != "expired" { report.violation("\(subject.ref) should have expired, is \(approval.status.name)") }
            if rig.wasDown(at: approval.expiresAt) { report.timersDueWhileDown += 1 }
        } else if let decision = approval.status.decision {
            let deciders = Set(events.filter { $0.entity == subject.ref && ($0.audited || $0.mayDecide) }.map(\.actor))
            if !Set(decision.by).isSubset(of: deciders) {
                report.violation("\(subject.ref) was decided by \(decision.by), who sent no decision")
            }
            if subject.plan == .reasonInThread, decision.comment != "the numbers look off" {
                report.violation("\(subject.ref) was decided without the reason given in the thread: \(decision.comment ?? "-")")
            }
        } else {
            report.violation("\(subject.ref) ended \(approval.status.name) without a decision")
        }
        // The execution grant: used at most once, whatever the agent's retries saw.
        let uses = audit.filter { $0.to == "consumed" }.count
        let answeredOK = subject.consumeAnswers.filter { $0 == 200 }.count
        if uses > 1 || answeredOK > 1 { report.violation("\(subject.ref): the grant was used \(uses) times (\(answeredOK) answered 200)") }
        if approval.status.name == "approved", !subject.consumeAnswers.isEmpty {
            if uses != 1 { report.violation("\(subject.ref): approved and asked for, but its grant was used \(uses) times") }
            if approval.execution.name == "unused" { report.violation("\(subject.ref): the grant shows unused after it was used") }
            report.grantsUsed += uses
        }
        if approval.status.name != "approved", answeredOK > 0 { report.violation("\(subject.ref) is \(approval.status.name) but its grant was used") }
        // One webhook per decision (and one per reported outcome).
        let hooks = try await store.outbox(of: subject.ref).filter { $0.kind == .webhook }
        let expected = 1 + (audit.contains { $0.from == "consumed" } ? 1 : 0)
        if hooks.count != expected {
            report.violation("\(subject.ref) has \(hooks.count) webhook rows, expected \(expected): \(hooks.map { (try? JSONValue.parse($0.payload))?.member("event")?.asString ?? "?" })")
        }
    }

    func checkReview(_ subject: Subject, _ report: inout RunReport) async throws {
        guard let item = try await store.reviewItem(ReviewItemID(subject.ref.id))?.value else { return report.violation("\(subject.ref) is missing") }
        let audit = try await store.audit(of: subject.ref)
        let completions = audit.filter { $0.to == "completed" }.count
        if completions != 1 { report.violation("\(subject.ref) completed \(completions) times") }
        if item.status.name != "completed" { return report.violation("\(subject.ref) is \(item.status.name), not completed") }
        if item.reviews.count != 1 { report.violation("\(subject.ref) has \(item.reviews.count) reviews") }
        report.reviewsCompleted += 1
        let hooks = try await store.outbox(of: subject.ref).filter { $0.kind == .webhook }
        if hooks.count != 1 { report.violation("\(subject.ref) has \(hooks.count) webhook rows, expected 1") }
    }

    /// An escalation nobody resolves: every timer fires exactly once, also the ones that came due while
    /// no process was running (they fire after the restart).
    func checkEscalation(_ subject: Subject, _ report: inout RunReport) async throws {
        guard let escalation = try await store.escalation(EscalationID(subject.ref.id))?.value else {
            return report.violation("\(subject.ref) is missing")
        }
        let audit = try await store.audit(of: subject.ref)
        let moves = audit.filter { $0.to == "open@expert" }
        let breaches = audit.filter { $0.detail?.contains("SLA breached at the top tier") == true }
        let claims = audit.filter { $0.to == "claimed" }
        let reopened = audit.filter { $0.from == "claimed" && $0.to == "open" }
        if moves.count != 1 { report.violation("\(subject.ref) moved up \(moves.count) times: \(audit.map { "\($0.from ?? "-")→\($0.to)" })") }
        if breaches.count != 1 { report.violation("\(subject.ref) breached \(breaches.count) times") }
        if reopened.count != claims.count { report.violation("\(subject.ref): \(claims.count) claims but \(reopened.count) ack timeouts fired") }
        if !escalation.breached || escalation.tierName != "expert" {
            report.violation("\(subject.ref) ended at \(escalation.tierName), breached \(escalation.breached)")
        } else {
            report.escalationsTimedOut += 1
        }
        // Timers that came due while the service was down: the SLA of each tier, the ack timeout of each claim.
        let policy = try PolicyFile.parse(ServeRig.policy).escalation
        var dues: [Date] = []
        for entry in audit {
            switch (entry.from, entry.to) {
            case (nil, "open"), ("claimed", "open"): dues.append(entry.at + policy.tiers[1].sla)
            case ("open", "claimed"): dues.append(entry.at + policy.tiers[1].ackTimeout)
            case (_, "open@expert"): dues.append(entry.at + policy.tiers[2].sla)
            default: break
            }
        }
        report.timersDueWhileDown += dues.filter { rig.wasDown(at: $0) }.count
        if !(try await store.timers(of: subject.ref)).isEmpty, escalation.breached {
            report.violation("\(subject.ref) still has timers after its last transition")
        }
    }

    /// Cards: one per destination, posted once (one bot message carrying the entity), showing the
    /// entity's final state exactly as the card builder renders it now (no buttons on a decided approval).
    func checkCards(_ subject: Subject, _ report: inout RunReport) async throws {
        let refs = try await store.cards(of: subject.ref)
        let destinations: [String]
        let card: Card?
        switch subject.ref.kind {
        case .approval:
            destinations = ["approvals"]
            card = try await store.approval(ApprovalID(subject.ref.id)).map { cards.card(for: $0.value) }
        case .reviewItem:
            destinations = ["reviews"]
            card = try await store.reviewItem(ReviewItemID(subject.ref.id)).map { cards.card(for: $0.value) }
        case .escalation:
            destinations = ["agents", "experts"]
            card = try await store.escalation(EscalationID(subject.ref.id)).map { cards.card(for: $0.value) }
        default:
            return
        }
        guard let card else { return }
        let expected = try renderer.render(card)
        for destination in destinations {
            let here = refs.filter { $0.destination == destination }
            guard here.count == 1, let ref = here.first else {
                report.violation("\(subject.ref) has \(here.count) cards in \(destination)")
                continue
            }
            guard ref.state == .posted, let ts = ref.messageID else {
                report.violation("\(subject.ref)'s card in \(destination) is \(ref.state)")
                continue
            }
            report.cards += 1
            let value = CardButtonValue.encode(subject.ref)
            let posts = await rig.fake.messages(in: ref.channel).filter {
                $0.botID != nil && $0.metadata?.member(path: "event_payload", "entity")?.asString == value
            }
            if posts.count != 1 { report.violation("\(subject.ref) was posted \(posts.count) times in \(destination)") }
            guard let message = await rig.fake.message(channel: ref.channel, ts: ts) else {
                report.violation("\(subject.ref)'s card \(ts) is not in \(ref.channel)")
                continue
            }
            if message.blocks != expected.blocks || message.text != expected.text {
                report.violation("\(subject.ref)'s card in \(destination) does not show its final state (\(message.edits) edits): "
                    + "shows \(String(message.allText.prefix(300)))")
            }
            if subject.ref.kind == .approval, card.buttons.isEmpty, !message.actionIDs.isEmpty {
                report.violation("\(subject.ref)'s card still shows buttons \(message.actionIDs) after the decision")
            }
        }
    }

    // MARK: Across entities

    /// Retried creates (same Idempotency-Key through restarts) made one entity each.
    func checkCreatedOnce(_ subjects: [Subject], _ report: inout RunReport) async throws {
        for (table, kind) in [("approvals", EntityKind.approval), ("review_items", .reviewItem), ("escalations", .escalation)] {
            let stored = try await database.scalar("SELECT COUNT(*) FROM \(table)")
            let created = subjects.filter { $0.ref.kind == kind }.count
            if stored != Int64(created) { report.violation("\(table): \(stored) stored for \(created) created (retries made duplicates?)") }
        }
    }

    func checkOutboxAndTimers(_ report: inout RunReport) async throws {
        for row in try await database.read("SELECT id, kind, entity_kind, entity_id, status, attempts, last_error FROM outbox WHERE status <> 'done'") {
            report.violation("outbox row \(row["id"].int ?? 0) (\(row["kind"].string ?? "?") for \(row["entity_kind"].string ?? "?") "
                + "\(row["entity_id"].int ?? 0)) is \(row["status"].string ?? "?") after \(row["attempts"].int ?? 0) attempts: \(row["last_error"].string ?? "")")
        }
        let now = Date().millisecondsSince1970
        for row in try await database.read("SELECT entity_kind, entity_id, kind FROM timers WHERE due_at <= ?", [.integer(now)]) {
            report.violation("timer \(row["kind"].string ?? "?") of \(row["entity_kind"].string ?? "?") \(row["entity_id"].int ?? 0) is overdue and never fired")
        }
    }

    /// Every webhook row reached its receiver (answered 2xx at least once), every request was signed, and
    /// repeats carry the same delivery id and body, so the receiver can drop them.
    func checkWebhooks(_ report: inout RunReport) async throws {
        let deliveries = rig.receiver.deliveries
        for d in deliveries where !d.signed { report.violation("webhook \(d.id ?? "?") arrived with a bad or missing signature") }
        let rows = try await database.read("SELECT id, payload FROM outbox WHERE kind = 'webhook'")
        let rowIDs = Set(rows.compactMap { $0["id"].int.map(String.init) })
        for row in rows {
            let id = String(row["id"].int ?? 0)
            let mine = deliveries.filter { $0.id == id }
            if !mine.contains(where: { $0.answered == 200 }) { report.violation("webhook \(id) was never delivered (\(mine.count) attempts)") }
            if mine.contains(where: { $0.body != Array((row["payload"].string ?? "").utf8) }) {
                report.violation("webhook \(id) was sent with different bodies under one delivery id")
            }
        }
        for d in deliveries where !rowIDs.contains(d.id ?? "") { report.violation("a webhook with unknown delivery id \(d.id ?? "none") arrived") }
        let delivered = deliveries.filter { $0.answered == 200 }
        report.webhooksDelivered = Set(delivered.compactMap(\.id)).count
        report.webhookRedeliveries = delivered.count - report.webhooksDelivered
    }

    /// No card the service posted is unaccounted for (a second post of a card whose reply was lost).
    func checkOrphanCards(_ subjects: [Subject], _ report: inout RunReport) async {
        let known = Set(subjects.map { CardButtonValue.encode($0.ref) })
        for message in await rig.fake.botMessages() {
            guard let entity = message.metadata?.member(path: "event_payload", "entity")?.asString else { continue }
            if !known.contains(entity) { report.violation("a card for \(entity) nobody created was posted in \(message.channel)") }
        }
    }
}
