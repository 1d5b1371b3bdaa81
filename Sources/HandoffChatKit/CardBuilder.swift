import Foundation
import HandoffCore

/// Builds the ``Card`` for an entity's current state. Cards are always rebuilt from the stored entity,
/// so an edit shows exactly what the database holds.
package struct CardBuilder: Sendable {
    package var escalation: EscalationConfig
    /// How long argument JSON and AI answers may get on a card before they are cut.
    package var maxQuoteLength = 1500

    package init(escalation: EscalationConfig = EscalationConfig()) {
        self.escalation = escalation
    }

    // MARK: Approvals

    package func card(for a: Approval) -> Card {
        let ref = a.ref
        var fields: [CardField] = [
            CardField("Requested by", RichText([.user(a.requester)])),
            CardField("Policy", .plain(a.policyName)),
        ]
        if a.policy.quorum > 1 || !a.votes.isEmpty {
            var votes = RichText([.text("\(a.votes.count) of \(a.policy.quorum)")])
            if !a.votes.isEmpty {
                votes += RichText([.text(": ")]) + people(a.votes.map(\.by))
            }
            fields.append(CardField("Approvals", votes))
        }
        fields.append(CardField(a.status.isPending ? "Expires" : "Created", RichText([.date(a.status.isPending ? a.expiresAt : a.createdAt)])))
        var body = RichText([])
        if let summary = a.summary?.nilIfBlank { body += RichText([.text(summary), .text("\n")]) }
        body += RichText([.bold("Arguments"), .text("\n"), .codeBlock(cut(a.arguments.canonicalText))])
        let value = CardButtonValue.encode(ref)
        let footer = RichText([.text("Approval #\(a.id) · react ✅ approve, ❌ reject, 🔁 revise · or reply in the thread: "),
                               .code("approve"), .text(", "), .code("reject <reason>"), .text(", "), .code("revise <comment>")])
        switch a.status {
        case .pending:
            let missing = a.policy.quorum - a.votes.count
            let who = a.deciders.joined(separator: ", ")
            var state = RichText([.text("⏳ Waiting for \(missing) approval\(missing == 1 ? "" : "s") from \(who) · expires ")])
            state += RichText([.date(a.expiresAt)])
            if a.expiryStage == .escalated { state += RichText([.text(" · escalated: nobody decided in time")]) }
            if a.expiryStage == .extended { state += RichText([.text(" · deadline extended once")]) }
            return Card(
                kind: .approvalRequest, entity: ref, title: "Approval needed: \(a.action)", body: body, fields: fields,
                buttons: [
                    CardButton(.approve, label: "Approve", value: value, style: .primary),
                    CardButton(.reject, label: "Reject", value: value, style: .danger),
                    CardButton(.revise, label: "Needs revision", value: value),
                ],
                stateLine: state, footer: footer,
                fallback: RichText([.text("Approval #\(a.id) needed: \(a.action)" + (a.summary.map { " — \($0)" } ?? ""))]))
        default:
            let (title, state, word) = decidedState(a)
            return Card(
                kind: .approvalDecided, entity: ref, title: "\(title): \(a.action)", body: body, fields: fields, buttons: [],
                stateLine: state, footer: RichText([.text("Approval #\(a.id)")]),
                fallback: RichText([.text("Approval #\(a.id) \(word): \(a.action) — ")]) + state)
        }
    }

    private func decidedState(_ a: Approval) -> (title: String, state: RichText, word: String) {
        func decided(_ icon: String, _ verb: String, _ d: Decision) -> RichText {
            var line = RichText([.text("\(icon) \(verb) by ")])
            line += d.automatic ? RichText([.text("the expiry policy")]) : people(d.by)
            line += RichText([.text(" · "), .date(d.at)])
            if let comment = d.comment?.nilIfBlank { line += RichText([.text(" — “"), .text(comment), .text("”")]) }
            return line
        }
        switch a.status {
        case .approved(let d): return ("✅ Approved", decided("✅", "Approved", d), "approved")
        case .rejected(let d): return ("❌ Rejected", decided("❌", "Rejected", d), "rejected")
        case .needsRevision(let d): return ("🔁 Revision requested", decided("🔁", "Revision requested", d), "needs revision")
        case .expired(let at): return ("⌛ Expired", RichText([.text("⌛ Expired · nobody decided by "), .date(at)]), "expired")
        case .cancelled(let by, let at, let reason):
            var line = RichText([.text("🚫 Cancelled by "), .user(by), .text(" · "), .date(at)])
            if let reason = reason?.nilIfBlank { line += RichText([.text(" — “"), .text(reason), .text("”")]) }
            return ("🚫 Cancelled", line, "cancelled")
        case .pending: return ("Pending", "", "pending")
        }
    }

    // MARK: Escalations

    package func card(for e: Escalation) -> Card {
        let ref = e.ref
        let tier = e.tier < escalation.tiers.count ? escalation.tiers[e.tier] : nil
        var fields: [CardField] = [
            CardField("Why", .plain(e.trigger.text)),
            CardField("Tier", .plain(e.tierName + (tier?.group.map { " (\($0))" } ?? ""))),
        ]
        if let requester = e.requester { fields.append(CardField("From", RichText([.user(requester)]))) }
        fields.append(CardField("Opened", RichText([.date(e.createdAt)])))
        var body = RichText([.bold("Question"), .text("\n"), .codeBlock(cut(e.query))])
        if let context = e.context?.nilIfBlank { body += RichText([.text("\n"), .bold("Context"), .text("\n"), .codeBlock(cut(context))]) }
        let value = CardButtonValue.encode(ref)
        var buttons: [CardButton] = []
        var state: RichText
        var title = "Escalation #\(e.id) · \(e.tierName) tier"
        switch e.status {
        case .open(let since):
            state = RichText([.text("🟡 Open since "), .date(since)])
            if let tier, tier.sla.seconds > 0 {
                state += RichText([.text(" · moves up if nobody claims it by "), .date(since.addingTimeInterval(tier.sla.seconds))])
            }
            buttons.append(CardButton(.claim, label: "Claim", value: value, style: .primary))
            if e.tier + 1 < escalation.tiers.count { buttons.append(CardButton(.escalate, label: "Escalate", value: value)) }
        case .claimed(let by, let at):
            state = RichText([.text("✋ Claimed by "), .user(by), .text(" · "), .date(at), .text(" · answer with "),
                              .code("resolve <answer>"), .text(" in this thread")])
            if e.tier + 1 < escalation.tiers.count { buttons.append(CardButton(.escalate, label: "Escalate", value: value)) }
        case .resolved(let by, let at, let resolution):
            title = "✅ Resolved: escalation #\(e.id)"
            state = RichText([.text("✅ Resolved by "), .user(by), .text(" · "), .date(at), .text(" — “"), .text(resolution), .text("”")])
        }
        if e.breached { state += RichText([.text(" · ⚠️ SLA breached at the top tier")]) }
        let footer = RichText([.text("Escalation #\(e.id) · ✋ claim · ⬆️ escalate · "), .command("resolve \(e.id) <answer>")])
        return Card(kind: .escalation, entity: ref, title: title, body: body, fields: fields, buttons: buttons, stateLine: state,
                    footer: footer, fallback: RichText([.text("Escalation #\(e.id) (\(e.tierName) tier, \(e.status.name)): \(e.query)")]))
    }

    // MARK: Review items

    package func card(for item: ReviewItem) -> Card {
        let ref = item.ref
        let c = item.content
        var fields: [CardField] = [
            CardField("Queue", .plain(item.queue)),
            CardField("Priority", .plain(item.priority.rawValue)),
            CardField("Reviews", .plain("\(item.reviews.count) of \(item.reviewsRequired)")),
        ]
        if let confidence = c.confidence { fields.append(CardField("Confidence", .plain(String(format: "%.2f", confidence)))) }
        if let reason = c.reason?.nilIfBlank { fields.append(CardField("Why", .plain(reason))) }
        var body = RichText([])
        if let title = c.title?.nilIfBlank { body += RichText([.bold(title), .text("\n")]) }
        if let query = c.query?.nilIfBlank { body += RichText([.bold("Question"), .text("\n"), .codeBlock(cut(query)), .text("\n")]) }
        if let answer = c.answer?.nilIfBlank { body += RichText([.bold("AI answer"), .text("\n"), .codeBlock(cut(answer))]) }
        if let context = c.context { body += RichText([.text("\n"), .bold("Context"), .text("\n"), .codeBlock(cut(context.canonicalText))]) }
        let value = CardButtonValue.encode(ref)
        var buttons: [CardButton] = []
        var state: RichText
        switch item.status {
        case .pending:
            state = RichText([.text("⏳ Waiting for a reviewer")])
            buttons.append(CardButton(.claim, label: "Claim", value: value, style: .primary))
        case .claimed(let by, _, let until):
            state = RichText([.text("✋ Claimed by "), .user(by), .text(" until "), .date(until)])
            buttons += [
                CardButton(.approve, label: "Approve", value: value, style: .primary),
                CardButton(.reject, label: "Reject", value: value, style: .danger),
                CardButton(.revise, label: "Needs revision", value: value),
            ]
        case .completed(let verdict, let at):
            state = RichText([.text("✅ Completed: \(verdict.rawValue.replacingOccurrences(of: "_", with: " ")) · "), .date(at)])
            if let last = item.reviews.last {
                state += RichText([.text(" · by "), .user(last.reviewer)])
                if let feedback = last.feedback?.nilIfBlank { state += RichText([.text(" — “"), .text(feedback), .text("”")]) }
            }
        }
        if item.slaBreached { state += RichText([.text(" · ⚠️ SLA breached")]) }
        let footer = RichText([.text("Review item #\(item.id) · ✋ claim · then reply in the thread: "), .code("approve"), .text(", "),
                               .code("reject <feedback>"), .text(", "), .code("revise <feedback>")])
        let headline = c.title?.nilIfBlank ?? c.query?.nilIfBlank ?? "review"
        return Card(kind: .reviewItem, entity: ref, title: "Review item #\(item.id) · \(item.queue) · \(item.priority.rawValue)",
                    body: body.isEmpty ? nil : body, fields: fields, buttons: buttons, stateLine: state, footer: footer,
                    fallback: RichText([.text("Review item #\(item.id) (\(item.priority.rawValue), \(item.status.name)): \(headline)")]))
    }

    // MARK: Feedback

    package func card(for f: FeedbackRequest) -> Card {
        let ref = f.ref
        var body = RichText([.text(f.prompt)])
        if let subject = f.subject?.nilIfBlank { body += RichText([.text("\n"), .codeBlock(cut(subject))]) }
        var buttons: [CardButton] = []
        var state: RichText
        switch f.status {
        case .open:
            state = RichText([.text("⏳ Open until "), .date(f.deadline)])
            let value = CardButtonValue.encode(ref)
            switch f.kind {
            case .rating: buttons = (1...5).map { CardButton(.answer(String($0), index: $0), label: String(repeating: "★", count: $0), value: value) }
            case .choice(let options):
                buttons = options.prefix(25).enumerated().map { CardButton(.answer($1, index: $0 + 1), label: $1, value: value) }
            case .text: break
            }
        case .answered(let response, let by, let at):
            state = RichText([.text("✅ Answered by "), .user(by), .text(" · "), .date(at), .text(" — "), .text(response.display)])
        case .expired(let at):
            state = RichText([.text("⌛ Expired · "), .date(at)])
        }
        let footer = RichText([.text("Feedback #\(f.id) · 👍/👎 · "), .command("rate \(f.id) <answer>")])
        return Card(kind: .feedbackRequest, entity: ref, title: "Feedback #\(f.id): \(f.prompt)", body: body, fields: [],
                    buttons: buttons, stateLine: state, footer: footer,
                    fallback: RichText([.text("Feedback #\(f.id): \(f.prompt)")]))
    }

    // MARK: Labeling

    package func card(for t: LabelTask) -> Card {
        let ref = t.ref
        var body = RichText([.codeBlock(cut(t.content))])
        if let instructions = t.instructions?.nilIfBlank { body = RichText([.text(instructions), .text("\n")]) + body }
        var buttons: [CardButton] = []
        let value = CardButtonValue.encode(ref)
        if t.status == .open {
            switch t.type {
            case .choice(let options):
                buttons = options.prefix(25).enumerated().map { CardButton(.answer($1, index: $0 + 1), label: $1, value: value) }
            case .rating(let lo, let hi) where hi - lo <= 10 && lo == lo.rounded() && hi == hi.rounded():
                buttons = (Int(lo)...Int(hi)).enumerated().map { CardButton(.answer(String($1), index: $0 + 1), label: String($1), value: value) }
            default: break
            }
        }
        let state: RichText = t.status == .open
            ? RichText([.text("🏷️ \(t.labelCount) of \(t.overlap) labels")])
            : RichText([.text("✅ Complete · \(t.labelCount) labels")])
        let footer = RichText([.text("Labeling task #\(t.id) · "), .command("label \(t.id) <value>")])
        return Card(kind: .labelingTask, entity: ref, title: "Labeling task #\(t.id) · \(t.dataset) (\(t.type.name))", body: body,
                    fields: [], buttons: buttons, stateLine: state, footer: footer,
                    fallback: RichText([.text("Labeling task #\(t.id) in \(t.dataset): \(t.content.prefix(200))")]))
    }

    // MARK: Help

    package func helpCard() -> Card {
        Card(kind: .help, entity: nil, title: "Handoff commands", body: .plain(Command.helpText()),
             footer: RichText([.text("Handoff · approvals, reviews, escalations, feedback and labeling from chat")]),
             fallback: .plain(Command.helpText()))
    }

    // MARK: Helpers

    private func people(_ ids: [ActorID]) -> RichText {
        var out = RichText([])
        for (i, id) in ids.enumerated() {
            if i > 0 { out.runs.append(.text(", ")) }
            out.runs.append(.user(id))
        }
        return out
    }

    private func cut(_ s: String) -> String {
        s.count > maxQuoteLength ? String(s.prefix(maxQuoteLength)) + "…" : s
    }
}
