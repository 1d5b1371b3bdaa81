import ArgumentParser
import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow

struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Prioritized review queues: enqueue, claim, submit, stats.",
        subcommands: [Enqueue.self, Claim.self, Submit.self, Release.self, List.self, Show.self, Stats.self])

    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put an item in a review queue.")
        @OptionGroup var global: GlobalOptions
        @Option var queue: String = "default"
        @Option(help: "critical, high, medium or low.") var priority: String = "medium"
        @Option var title: String?
        @Option(help: "The user's question.") var query: String?
        @Option(help: "The AI's draft answer.") var answer: String?
        @Option var confidence: Double?
        @Option var reason: String?

        func run() async throws {
            try await perform {
                guard let p = Priority(rawValue: priority) else {
                    throw WorkflowError.invalid("priority", "must be critical, high, medium or low")
                }
                let request = ReviewItemRequest(queue: queue, priority: p, content: ReviewContent(
                    title: title, query: query, answer: answer, confidence: confidence, reason: reason))
                let (item, _) = try await global.openWorkflow().enqueue(request, by: ActorOptions.operatorID)
                if global.json { return try printJSON(ReviewItemView(item)) }
                print("Queued review item #\(item.id) in \(item.queue) at \(item.priority.rawValue) priority.")
            }
        }
    }

    struct Claim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take the next item (priority, then oldest) with a lease.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Option var queue: String = "default"
        @Option(help: "Claim this item instead of the next one.") var item: Int64?

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let claimed: ReviewItem?
                if let item {
                    claimed = try await workflow.claim(ReviewItemID(item), by: actor.resolved)
                } else {
                    claimed = try await workflow.claimNext(queue: queue, by: actor.resolved)
                }
                guard let claimed else {
                    if global.json { return print("null") }
                    return print("Nothing to claim in \(queue).")
                }
                if global.json { return try printJSON(ReviewItemView(claimed)) }
                printItem(claimed)
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit your review: approved, rejected or revision_needed.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Argument(help: "approved, rejected or revision_needed.") var verdict: String
        @Option var feedback: String?
        @Option(help: "The corrected answer; recorded as a correction.") var correction: String?

        func run() async throws {
            try await perform {
                guard let v = ReviewVerdict(word: verdict) else {
                    throw WorkflowError.invalid("verdict", "must be approved, rejected or revision_needed")
                }
                let (item, correctionMade) = try await global.openWorkflow().submit(
                    ReviewItemID(id), verdict: v, feedback: feedback, correctedAnswer: correction, by: actor.resolved)
                if global.json { return try printJSON(ReviewItemView(item)) }
                print("Review item #\(item.id) is now \(item.status.name)." + (correctionMade.map { " Correction #\($0.id) recorded." } ?? ""))
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a claimed item back before the lease ends.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64

        func run() async throws {
            try await perform {
                let item = try await global.openWorkflow().release(ReviewItemID(id), by: actor.resolved)
                print("Review item #\(item.id) is back in \(item.queue).")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List review items, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option var queue: String?
        @Option(help: "pending, claimed or completed.") var status: String?
        @Option var limit: Int = 50

        func run() async throws {
            try await perform {
                let items = try await global.openWorkflow().reviewItems(queue: queue, status: status, limit: limit)
                if global.json { return try printJSON(items.map(ReviewItemView.init)) }
                var table = Table("id", "queue", "priority", "status", "holder", "title / query", "sla")
                for i in items {
                    table.add("#\(i.id)", i.queue, i.priority.rawValue, i.status.name, i.leaseHolder?.rawValue ?? "-",
                              i.content.title ?? i.content.query ?? i.content.answer ?? "", i.slaBreached ? "BREACHED" : "ok")
                }
                table.print()
            }
        }
    }

    struct Show: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument var id: Int64

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let item = try await workflow.reviewItem(ReviewItemID(id))
                if global.json { return try printJSON(ReviewItemView(item)) }
                printItem(item)
                try await printAudit(workflow, item.ref)
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts per state, SLA breaches, time to claim and time to decide (p50, p90) per queue and reviewer.")
        @OptionGroup var global: GlobalOptions
        @Option var queue: String?

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let queues: [QueueStats]
                if let queue {
                    queues = [try await workflow.queueStats(queue: queue)]
                } else {
                    queues = try await workflow.allQueueStats()
                }
                let reviewers = try await workflow.reviewerStats(queue: queue)
                if global.json {
                    struct Out: Encodable { var queues: [QueueStats]; var reviewers: [ReviewerStats] }
                    return try printJSON(Out(queues: queues, reviewers: reviewers))
                }
                var table = Table("queue", "pending", "claimed", "completed", "sla breaches", "claim p50", "claim p90", "decide p50", "decide p90")
                for q in queues {
                    table.add(q.queue, "\(q.pending)", "\(q.claimed)", "\(q.completed)", "\(q.slaBreaches)",
                              Format.seconds(q.timeToClaim.p50Seconds), Format.seconds(q.timeToClaim.p90Seconds),
                              Format.seconds(q.timeToDecide.p50Seconds), Format.seconds(q.timeToDecide.p90Seconds))
                }
                table.print()
                print("")
                var r = Table("reviewer", "reviews", "approved", "rejected", "revision", "claim p50", "claim p90", "decide p50", "decide p90",
                              "sla breaches")
                for s in reviewers {
                    r.add(s.reviewer.rawValue, "\(s.reviews)", "\(s.approved)", "\(s.rejected)", "\(s.revisionNeeded)",
                          Format.seconds(s.timeToClaim.p50Seconds), Format.seconds(s.timeToClaim.p90Seconds),
                          Format.seconds(s.timeToDecide.p50Seconds), Format.seconds(s.timeToDecide.p90Seconds), "\(s.slaBreaches)")
                }
                r.print()
            }
        }
    }
}

func printItem(_ i: ReviewItem) {
    var d = Details()
    d.add("review item", "#\(i.id) in \(i.queue) (\(i.priority.rawValue))")
    d.add("status", i.status.name + (i.leaseHolder.map { " by \($0)" } ?? ""))
    if case .claimed(_, _, let until) = i.status { d.add("lease until", Format.date(until)) }
    d.add("title", i.content.title)
    d.add("query", i.content.query)
    d.add("answer", i.content.answer)
    d.add("confidence", i.content.confidence.map { String(format: "%.2f", $0) })
    d.add("reason", i.content.reason)
    d.add("reviews", "\(i.reviews.count) of \(i.reviewsRequired)")
    for r in i.reviews {
        d.add("  \(r.reviewer)", "\(r.verdict.rawValue)" + (r.feedback.map { ": \($0)" } ?? "") + (r.correctedAnswer.map { " → \($0)" } ?? ""))
    }
    d.add("sla", i.slaBreached ? "breached" : "ok")
    d.print()
}
