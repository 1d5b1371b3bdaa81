import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Hummingbird

/// The dashboard's pages and form targets.
extension Dashboard {
    func registerPages(_ router: HTTPRouter) {
        page(router, "/") { _, _, viewer in try await overview(viewer) }
        page(router, "/approvals") { request, _, viewer in try await approvals(request, viewer) }
        page(router, "/approvals/{id}") { _, context, viewer in
            try await approval(try context.id(.approval), viewer, error: nil, notice: nil)
        }
        action(router, "/approvals/{id}/decide") { _, context, viewer, form in
            let id: ApprovalID = try context.id(.approval)
            guard let verdict = form["verdict"].flatMap(Verdict.init(word:)) else {
                return try await approval(id, viewer, error: "Choose approve, reject or needs revision.", notice: nil, status: .badRequest)
            }
            do {
                let decided = try await workflow.decide(id, verdict: verdict, comment: form["comment"]?.nilIfBlank, by: viewer.actor,
                                                        argumentsHash: form["arguments_hash"]?.nilIfBlank)
                let word = decided.status.isPending ? "Your approval is recorded" : "Approval #\(id) is now \(decided.status.name.replacingOccurrences(of: "_", with: " "))"
                return try await approval(id, viewer, error: nil, notice: word + ".")
            } catch let error as WorkflowError {
                return try await approval(id, viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        page(router, "/reviews") { _, _, viewer in try await reviews(viewer, notice: nil) }
        action(router, "/reviews/claim") { _, _, viewer, form in
            let queue = form["queue"] ?? "default"
            guard let item = try await workflow.claimNext(queue: queue, by: viewer.actor) else {
                return try await reviews(viewer, notice: "Nothing to claim in \(queue) right now.")
            }
            return redirect("/reviews/\(item.id)")
        }
        page(router, "/reviews/{id}") { _, context, viewer in
            try await reviewItem(try context.id(.reviewItem), viewer, error: nil, notice: nil)
        }
        action(router, "/reviews/{id}/claim") { _, context, viewer, _ in
            let id: ReviewItemID = try context.id(.reviewItem)
            do {
                _ = try await workflow.claim(id, by: viewer.actor)
                return redirect("/reviews/\(id)")
            } catch let error as WorkflowError {
                return try await reviewItem(id, viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        action(router, "/reviews/{id}/submit") { _, context, viewer, form in
            let id: ReviewItemID = try context.id(.reviewItem)
            guard let verdict = form["verdict"].flatMap(ReviewVerdict.init(word:)) else {
                return try await reviewItem(id, viewer, error: "Choose a verdict.", notice: nil, status: .badRequest)
            }
            do {
                let (item, correction) = try await workflow.submit(id, verdict: verdict, feedback: form["feedback"]?.nilIfBlank,
                                                                  correctedAnswer: form["corrected_answer"]?.nilIfBlank, by: viewer.actor)
                return try await reviews(viewer, notice: "Review item #\(item.id) submitted (\(verdict.rawValue.replacingOccurrences(of: "_", with: " ")))."
                    + (correction.map { " Correction #\($0.id) recorded." } ?? ""))
            } catch let error as WorkflowError {
                return try await reviewItem(id, viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        page(router, "/escalations") { _, _, viewer in try await escalations(viewer, error: nil, notice: nil) }
        action(router, "/escalations/{id}/claim") { _, context, viewer, _ in
            let id: EscalationID = try context.id(.escalation)
            do {
                _ = try await workflow.claimEscalation(id, by: viewer.actor)
                return try await escalations(viewer, error: nil, notice: "Escalation #\(id) claimed; its SLA clock is stopped.")
            } catch let error as WorkflowError {
                return try await escalations(viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        action(router, "/escalations/{id}/resolve") { _, context, viewer, form in
            let id: EscalationID = try context.id(.escalation)
            do {
                _ = try await workflow.resolveEscalation(id, resolution: form["resolution"] ?? "", by: viewer.actor)
                return try await escalations(viewer, error: nil, notice: "Escalation #\(id) resolved.")
            } catch let error as WorkflowError {
                return try await escalations(viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        page(router, "/labeling") { request, _, viewer in
            try await labeling(dataset: request.query("dataset"), viewer, error: nil, notice: nil)
        }
        action(router, "/labeling/{id}") { _, context, viewer, form in
            let id: LabelTaskID = try context.id(.labelTask)
            let dataset = form["dataset"]?.nilIfBlank
            do {
                let task = try await workflow.labelTask(id)
                let (_, label) = try await workflow.addLabel(id, json: try Self.labelValue(form, for: task), by: viewer.actor)
                return try await labeling(dataset: dataset, viewer, error: nil, notice: "Labeled task #\(id) as \(label.value.display).")
            } catch let error as WorkflowError {
                return try await labeling(dataset: dataset, viewer, error: error.message, notice: nil, status: APIError(error).status)
            }
        }
        page(router, "/stats") { _, _, viewer in try await stats(viewer) }
        registerCalibration(router)
    }

    // MARK: Formatting

    static func date(_ date: Date?) -> String {
        guard let date else { return "" }
        return date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
            .timeSeparator(.colon)).replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
    }

    static func duration(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        switch seconds {
        case ..<60: return String(format: "%.0fs", seconds)
        case ..<3600: return String(format: "%.0fm", seconds / 60)
        case ..<86400: return String(format: "%.1fh", seconds / 3600)
        default: return String(format: "%.1fd", seconds / 86400)
        }
    }

    static func pretty(_ json: JSONValue?) -> String {
        guard let json else { return "" }
        return (try? WireJSON.string(json, pretty: true)) ?? json.canonicalText
    }

    static func approvalRow(_ a: Approval) -> [String: Any] {
        var row: [String: Any] = [
            "id": String(a.id.rawValue), "action": a.action, "summary": a.summary ?? "", "requester": a.requester.rawValue,
            "status": a.status.name, "status_text": a.status.name.replacingOccurrences(of: "_", with: " "),
            "created": date(a.createdAt), "expires": date(a.expiresAt), "votes": "\(a.votes.count)/\(a.policy.quorum)",
        ]
        if let decision = a.status.decision {
            row["decided_by"] = decision.automatic ? "expiry policy" : decision.by.map(\.rawValue).joined(separator: ", ")
            row["decided_at"] = date(decision.at)
            row["comment"] = decision.comment ?? ""
            row["has_comment"] = decision.comment?.nilIfBlank != nil
            row["time_to_decide"] = duration(decision.at.timeIntervalSince(a.createdAt))
        }
        return row
    }

    static func itemRow(_ i: ReviewItem) -> [String: Any] {
        [
            "id": String(i.id.rawValue), "queue": i.queue, "priority": i.priority.rawValue, "status": i.status.name,
            "title": i.content.title ?? i.content.query ?? i.content.answer.map { String($0.prefix(80)) } ?? "(untitled)",
            "holder": i.leaseHolder?.rawValue ?? "", "created": date(i.createdAt), "sla_breached": i.slaBreached,
            "reviews": "\(i.reviews.count)/\(i.reviewsRequired)",
        ]
    }

    // MARK: Overview

    func overview(_ viewer: Viewer) async throws -> Response {
        let counts = try await workflow.store.dashboardCounts()
        let pending = try await workflow.approvals(status: "pending", limit: 10)
        let queues = try await workflow.allQueueStats()
        let recent = try await workflow.store.recentDecisions(limit: 10)
        return render("overview", [
            "title": "Overview",
            "pending_count": counts.pendingApprovals, "open_escalations": counts.openEscalations,
            "breached_escalations": counts.breachedEscalations, "sla_breaches": counts.openSLABreaches,
            "pending": pending.map(Self.approvalRow), "has_pending": !pending.isEmpty,
            "queues": queues.map { q -> [String: Any] in
                ["name": q.queue, "pending": q.pending, "claimed": q.claimed, "completed": q.completed, "breaches": q.slaBreaches,
                 "has_breaches": q.slaBreaches > 0, "decide_p50": Self.duration(q.timeToDecide.p50Seconds), "claim_p50": Self.duration(q.timeToClaim.p50Seconds)]
            },
            "has_queues": !queues.isEmpty,
            "recent": recent.map(Self.approvalRow), "has_recent": !recent.isEmpty,
        ], viewer: viewer)
    }

    // MARK: Approvals

    func approvals(_ request: Request, _ viewer: Viewer) async throws -> Response {
        let status = request.query("status") ?? "pending"
        let filter = status == "all" ? nil : status
        let before: ApprovalID? = try request.idQuery("before")
        let list = try await workflow.approvals(status: filter, limit: 50, before: before)
        let filters = (["pending", "approved", "rejected", "needs_revision", "expired", "cancelled", "all"]).map {
            ["value": $0, "label": $0.replacingOccurrences(of: "_", with: " "), "current": $0 == status] as [String: Any]
        }
        var values: [String: Any] = [
            "title": "Approvals", "status": status, "filters": filters,
            "approvals": list.map(Self.approvalRow), "has_approvals": !list.isEmpty,
        ]
        if list.count == 50, let last = list.last { values["older"] = "/approvals?status=\(FormURLEncoding.encode(status))&before=\(last.id)" }
        return render("approvals", values, viewer: viewer)
    }

    func approval(_ id: ApprovalID, _ viewer: Viewer, error: String?, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let a = try await workflow.approval(id)
        var values = Self.approvalRow(a)
        values["title"] = "Approval #\(id)"
        values["arguments"] = Self.pretty(a.arguments)
        values["arguments_hash"] = a.argumentsHash
        if a.callerState != nil { values["caller_state"] = Self.pretty(a.callerState) }
        values["policy"] = a.policyName
        values["deciders"] = a.deciders.joined(separator: ", ")
        values["quorum"] = a.policy.quorum
        values["voters"] = a.votes.map {
            ["by": $0.by.rawValue, "at": Self.date($0.at), "comment": $0.comment ?? "", "has_comment": $0.comment?.nilIfBlank != nil] as [String: Any]
        }
        values["execution"] = a.execution.name
        values["pending"] = a.status.isPending
        if let refusal = try await workflow.decisionRefusal(id, by: viewer.actor) {
            values["refusal"] = refusal.message
        } else {
            values["may_decide"] = true
        }
        values["audit"] = try await workflow.store.audit(of: a.ref).suffix(50).map {
            ["at": Self.date($0.at), "actor": $0.actor.rawValue, "from": $0.from ?? "", "to": $0.to, "detail": $0.detail ?? ""]
        }
        if let error { values["error"] = error }
        if let notice { values["notice"] = notice }
        return render("approval", values, viewer: viewer, status: status)
    }

    // MARK: Reviews

    func reviews(_ viewer: Viewer, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let queues = try await workflow.allQueueCounts()
        var mine: [ReviewItem] = []
        for q in queues where q.claimed > 0 {
            mine += try await workflow.reviewItems(queue: q.queue, status: "claimed", limit: 100).filter { $0.leaseHolder == viewer.actor.id }
        }
        let waiting = try await workflow.reviewItems(status: "pending", limit: 25)
        var values: [String: Any] = [
            "title": "Review queue",
            "queues": queues.map { q -> [String: Any] in
                ["name": q.queue, "pending": q.pending, "claimed": q.claimed, "completed": q.completed, "breaches": q.slaBreaches,
                 "can_claim": q.pending > 0]
            },
            "has_queues": !queues.isEmpty,
            "mine": mine.map(Self.itemRow), "has_mine": !mine.isEmpty,
            "waiting": waiting.map(Self.itemRow), "has_waiting": !waiting.isEmpty,
        ]
        if let notice { values["notice"] = notice }
        return render("reviews", values, viewer: viewer, status: status)
    }

    func reviewItem(_ id: ReviewItemID, _ viewer: Viewer, error: String?, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let item = try await workflow.reviewItem(id)
        var values = Self.itemRow(item)
        values["title"] = "Review item #\(id)"
        values["query"] = item.content.query ?? ""
        values["answer"] = item.content.answer ?? ""
        values["item_title"] = item.content.title ?? ""
        values["confidence"] = item.content.confidence.map { String(format: "%.2f", $0) } ?? ""
        values["reason"] = item.content.reason ?? ""
        if item.content.context != nil { values["context"] = Self.pretty(item.content.context) }
        if case .claimed(_, _, let until) = item.status { values["lease_until"] = Self.date(until) }
        values["held_by_me"] = item.leaseHolder == viewer.actor.id
        values["claimable"] = item.status == .pending
        values["past_reviews"] = item.reviews.map {
            ["reviewer": $0.reviewer.rawValue, "verdict": $0.verdict.rawValue.replacingOccurrences(of: "_", with: " "),
             "feedback": $0.feedback ?? "", "corrected": $0.correctedAnswer ?? ""]
        }
        if let error { values["error"] = error }
        if let notice { values["notice"] = notice }
        return render("review", values, viewer: viewer, status: status)
    }

    // MARK: Escalations

    func escalations(_ viewer: Viewer, error: String?, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        func row(_ e: Escalation) -> [String: Any] {
            let v = EscalationView(e)
            return ["id": String(e.id.rawValue), "tier": e.tierName, "query": e.query, "context": e.context ?? "", "reason": e.trigger.text,
                    "requester": e.requester?.rawValue ?? "", "claimed_by": v.claimedBy ?? "", "resolved_by": v.resolvedBy ?? "",
                    "resolution": v.resolution ?? "", "breached": e.breached, "created": Self.date(e.createdAt),
                    "mine": v.claimedBy == viewer.actor.id.rawValue || viewer.actor.isAdmin]
        }
        let open = try await workflow.escalations(status: "open", limit: 50)
        let claimed = try await workflow.escalations(status: "claimed", limit: 50)
        let resolved = try await workflow.escalations(status: "resolved", limit: 10)
        var values: [String: Any] = [
            "title": "Escalations",
            "open": open.map(row), "has_open": !open.isEmpty,
            "claimed": claimed.map(row), "has_claimed": !claimed.isEmpty,
            "resolved": resolved.map(row), "has_resolved": !resolved.isEmpty,
        ]
        if let error { values["error"] = error }
        if let notice { values["notice"] = notice }
        return render("escalations", values, viewer: viewer, status: status)
    }

    // MARK: Labeling

    /// A form's fields as the wire value for the task's type.
    static func labelValue(_ form: [String: String], for task: LabelTask) throws -> JSONValue {
        func number(_ name: String) throws -> Double {
            guard let text = form[name]?.trimmingCharacters(in: .whitespaces), let n = Double(text), n.isFinite else {
                throw WorkflowError.invalid(name, "must be a number")
            }
            return n
        }
        switch task.type {
        case .text, .choice:
            guard let value = form["value"], value.nilIfBlank != nil else { throw WorkflowError.invalid("value", "is required") }
            return .string(value)
        case .rating: return .double(try number("value"))
        case .span: return .object(["start": .double(try number("start")), "end": .double(try number("end"))])
        case .boundingBox:
            return .object(["x": .double(try number("x")), "y": .double(try number("y")),
                            "width": .double(try number("width")), "height": .double(try number("height"))])
        }
    }

    /// Span content as the browser's DOM will hold it, and where it differs from the stored text.
    ///
    /// Span offsets are UTF-16 offsets into the exact stored content, but the HTML parser normalizes the
    /// text it reads: CR LF and lone CR become LF, and NUL is dropped (a leading LF right after `<pre>`
    /// is dropped too; the template writes a guard newline for that). So the page gets the content with
    /// those changes already made — nothing is left for the parser to change — plus, for each stored
    /// code unit the DOM does not have, the DOM offset it is missing at. The page adds, to a DOM offset
    /// `x`, the number of missing units before `x` to get the stored offset.
    static func spanDisplay(_ content: String) -> (text: String, dropped: [Int]) {
        let units = Array(content.utf16)
        var shown: [UInt16] = []
        shown.reserveCapacity(units.count)
        var dropped: [Int] = []
        var i = 0
        while i < units.count {
            switch units[i] {
            case 0x0D where i + 1 < units.count && units[i + 1] == 0x0A:
                dropped.append(shown.count)  // the CR; its LF follows
            case 0x0D:
                shown.append(0x0A)  // a lone CR reads as LF: same length, nothing to add
            case 0x00:
                dropped.append(shown.count)
            default:
                shown.append(units[i])
            }
            i += 1
        }
        return (String(decoding: shown, as: UTF16.self), dropped)
    }

    /// Choices with their keyboard shortcut (1–9).
    static func keyed(_ values: [String]) -> [[String: String]] {
        var out: [[String: String]] = []
        for (offset, value) in values.enumerated() {
            out.append(["value": value, "key": offset < 9 ? String(offset + 1) : ""])
        }
        return out
    }

    func labeling(dataset: String?, _ viewer: Viewer, error: String?, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        var values: [String: Any] = ["title": "Labeling", "dataset_filter": dataset ?? ""]
        if let dataset { values["dataset"] = dataset }
        values["datasets"] = try await workflow.store.datasets(limit: 50).map {
            ["name": $0, "query": FormURLEncoding.encode($0), "current": $0 == dataset] as [String: Any]
        }
        if let error { values["error"] = error }
        if let notice { values["notice"] = notice }
        guard let task = try await workflow.nextLabelTask(dataset: dataset, for: viewer.actor) else {
            values["done"] = true
            return render("labeling", values, viewer: viewer, status: status)
        }
        let progress = try await workflow.store.labelProgress(dataset: task.dataset, labeler: viewer.actor.id)
        var taskValues: [String: Any] = [
            "id": String(task.id.rawValue), "dataset": task.dataset, "type": task.type.name, "content": task.content,
            "labels": "\(task.labelCount) of \(task.overlap)",
        ]
        if let instructions = task.instructions?.nilIfBlank { taskValues["instructions"] = instructions }
        values["task"] = taskValues
        values["progress_labeled"] = progress.labeled
        values["progress_total"] = progress.tasks
        values["progress_percent"] = progress.tasks == 0 ? 0 : Int((Double(progress.labeled) / Double(progress.tasks) * 100).rounded())
        switch task.type {
        case .text: values["is_text"] = true
        case .choice(let options):
            values["is_choice"] = true
            values["options"] = Self.keyed(options)
        case .rating(let lo, let hi):
            values["is_rating"] = true
            if lo == lo.rounded(), hi == hi.rounded(), hi - lo <= 10 {
                values["rating_buttons"] = Self.keyed(stride(from: Int(lo), through: Int(hi), by: 1).map { String($0) })
            } else {
                values["rating_min"] = lo
                values["rating_max"] = hi
                values["rating_input"] = true
            }
        case .span:
            values["is_span"] = true
            let shown = Self.spanDisplay(task.content)
            values["span_text"] = shown.text
            values["span_dropped"] = shown.dropped.map(String.init).joined(separator: ",")
        case .boundingBox:
            values["is_bbox"] = true
            if let url = URL(string: task.content), ["http", "https"].contains(url.scheme?.lowercased() ?? "") {
                values["image_url"] = task.content
            }
        }
        return render("labeling", values, viewer: viewer, status: status)
    }

    // MARK: Stats

    static let decideBounds: [(label: String, seconds: Double)] = [
        ("< 1m", 60), ("1–5m", 300), ("5–15m", 900), ("15m–1h", 3600), ("1–4h", 14400), ("4h–1d", 86400),
    ]

    func stats(_ viewer: Viewer) async throws -> Response {
        let now = workflow.clock.now()
        // Queue depth over the last 24 hours, hour by hour, walked back from the current depth.
        let hours = 24
        let start = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600 - Double(hours - 1) * 3600)
        let activity = try await workflow.store.queueActivity(since: start, bucketSeconds: 3600)
        let queues = try await workflow.allQueueStats()
        var depthSeries: [SVGChart.Series] = []
        for q in queues.prefix(8) {
            var depth = Double(q.pending + q.claimed)
            var values = Array(repeating: 0.0, count: hours)
            for bucket in stride(from: hours - 1, through: 0, by: -1) {
                values[bucket] = max(0, depth)
                depth -= Double(activity.created[q.queue]?[bucket] ?? 0)
                depth += Double(activity.completed[q.queue]?[bucket] ?? 0)
            }
            depthSeries.append(SVGChart.Series(name: q.queue, values: values))
        }
        let hourLabels = (0..<hours).map { i -> String in
            let hour = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: start.addingTimeInterval(Double(i) * 3600)).hour ?? 0
            return String(format: "%02d:00", hour)
        }
        // Time to decide: reviews (every queue) and the last 500 approval decisions.
        let bounds = Self.decideBounds.map { Int64($0.seconds * 1000) }
        var reviewBuckets = Array(repeating: 0.0, count: bounds.count + 1)
        for q in queues {
            let (below, total) = try await workflow.store.reviewDecideCounts(queue: q.queue, boundsMilliseconds: bounds)
            var previous = 0
            for (i, count) in below.enumerated() {
                reviewBuckets[i] += Double(count - previous)
                previous = count
            }
            reviewBuckets[bounds.count] += Double(total - previous)
        }
        var approvalBuckets = Array(repeating: 0.0, count: bounds.count + 1)
        for timing in try await workflow.store.recentDecisionTimings(limit: 500) {
            let index = Self.decideBounds.firstIndex { timing.seconds < $0.seconds } ?? bounds.count
            approvalBuckets[index] += 1
        }
        // Agreement per task set.
        var agreementNames: [String] = []
        var alpha: [Double] = []
        var agreementRows: [[String: Any]] = []
        for dataset in try await workflow.store.datasets(limit: 20) {
            let a = try await workflow.recentAgreement(dataset: dataset)
            let value = a.krippendorffAlphaNominal ?? a.krippendorffAlphaInterval
            agreementNames.append(dataset)
            alpha.append(max(0, value ?? 0))
            agreementRows.append([
                "dataset": dataset, "tasks": a.tasks, "labels": a.labels, "pairable": a.pairableTasks,
                "alpha_nominal": a.krippendorffAlphaNominal.map { String(format: "%.3f", $0) } ?? "–",
                "alpha_interval": a.krippendorffAlphaInterval.map { String(format: "%.3f", $0) } ?? "–",
                "kappa": a.fleissKappa.map { String(format: "%.3f", $0) } ?? "–",
            ])
        }
        let reviewers = try await workflow.reviewerStats()
        return render("stats", [
            "title": "Stats",
            "depth_chart": SVGChart.lines(title: "Queue depth, last 24 hours (UTC)", xLabels: hourLabels, series: depthSeries,
                                          emptyText: "No review queues yet"),
            "decide_chart": SVGChart.bars(title: "Time to decide", categories: Self.decideBounds.map(\.label) + ["> 1d"],
                                          series: [SVGChart.Series(name: "reviews", values: reviewBuckets),
                                                   SVGChart.Series(name: "approvals (last 500)", values: approvalBuckets)],
                                          emptyText: "Nothing decided yet"),
            "agreement_chart": SVGChart.bars(title: "Agreement per task set (Krippendorff's α)", categories: agreementNames,
                                             series: [SVGChart.Series(name: "α", values: alpha)], yMax: 1,
                                             yFormat: { String(format: "%.2f", $0) }, valueFormat: { String(format: "%.3f", $0) },
                                             emptyText: "No labeling task sets yet"),
            "agreement": agreementRows, "has_agreement": !agreementRows.isEmpty,
            "reviewers": reviewers.map { r -> [String: Any] in
                ["reviewer": r.reviewer.rawValue, "reviews": r.reviews, "approved": r.approved, "rejected": r.rejected,
                 "revision": r.revisionNeeded, "p50": Self.duration(r.timeToDecide.p50Seconds), "p90": Self.duration(r.timeToDecide.p90Seconds),
                 "claim_p50": Self.duration(r.timeToClaim.p50Seconds), "claim_p90": Self.duration(r.timeToClaim.p90Seconds),
                 "breaches": r.slaBreaches]
            },
            "has_reviewers": !reviewers.isEmpty,
        ], viewer: viewer)
    }
}
