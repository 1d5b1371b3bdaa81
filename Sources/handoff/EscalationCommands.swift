import ArgumentParser
import Foundation
import HandoffCore
import HandoffWorkflow

struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Route an AI answer by confidence: send it, queue it for review, or escalate to a person.")
    @OptionGroup var global: GlobalOptions
    @Option var route: String = "default"
    @Option(help: "The user's question.") var query: String?
    @Option(help: "The AI's answer.") var answer: String?
    @Option(help: "A confidence the caller computed, 0–1.") var confidence: Double?
    @Option(name: .customLong("self-rating"), help: "The model's self-rating text, e.g. \"85%\" or \"Confidence: high\".") var selfRating: String?

    func run() async throws {
        try await perform {
            let input: ConfidenceInput
            switch (confidence, selfRating) {
            case (let c?, nil): input = .score(c)
            case (nil, let text?): input = .selfRating(text)
            case (nil, nil): input = .unavailable(reason: "no confidence given")
            case (.some, .some): throw WorkflowError.invalid("confidence", "give either --confidence or --self-rating, not both")
            }
            let result = try await global.openWorkflow().route(
                route, query: query, answer: answer, confidence: input, by: ActorOptions.operatorID)
            if global.json {
                struct Out: Encodable {
                    var decision: String; var confidence: Double?; var reason: String?
                    var reviewItem: ReviewItemView?; var escalation: EscalationView?
                }
                return try printJSON(Out(decision: result.decision.name, confidence: result.decision.confidence,
                                         reason: result.decision.reason, reviewItem: result.reviewItem.map(ReviewItemView.init),
                                         escalation: result.escalation.map(EscalationView.init)))
            }
            switch result.decision {
            case .autoSend(let c): print("auto_send: confidence \(String(format: "%.2f", c)) meets the threshold; send the answer.")
            case .review(_, let reason): print("review: \(reason). Queued as review item #\(result.reviewItem?.id.description ?? "?").")
            case .escalate(_, let reason): print("escalate: \(reason). Opened escalation #\(result.escalation?.id.description ?? "?").")
            }
        }
    }
}

struct Escalations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalations", abstract: "Hand conversations to people, tier by tier (ai → agent → expert).",
        subcommands: [Create.self, Claim.self, Resolve.self, Raise.self, List.self, Show.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open an escalation at the first human tier (or --tier).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The user's question or message.") var query: String
        @Option var context: String?
        @Option var reason: String = "escalated by an operator"
        @Option var tier: String?
        @Option(help: "The user waiting for the answer.") var requester: String?

        func run() async throws {
            try await perform {
                let e = try await global.openWorkflow().escalate(
                    EscalationRequest(query: query, context: context, trigger: .manual(reason), requester: requester.map { ActorID($0) }, tier: tier),
                    by: ActorOptions.operatorID)
                if global.json { return try printJSON(EscalationView(e)) }
                print("Opened escalation #\(e.id) at the \(e.tierName) tier.")
            }
        }
    }

    struct Claim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an escalation (stops its SLA clock).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64

        func run() async throws {
            try await perform {
                let e = try await global.openWorkflow().claimEscalation(EscalationID(id), by: actor.resolved)
                if global.json { return try printJSON(EscalationView(e)) }
                print("Escalation #\(e.id) claimed at the \(e.tierName) tier.")
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resolve an escalation; the user gets the resolution.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Argument(parsing: .remaining) var resolution: [String] = []

        func run() async throws {
            try await perform {
                let e = try await global.openWorkflow().resolveEscalation(
                    EscalationID(id), resolution: resolution.joined(separator: " "), by: actor.resolved)
                if global.json { return try printJSON(EscalationView(e)) }
                print("Escalation #\(e.id) resolved.")
            }
        }
    }

    struct Raise: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move an escalation to the next tier.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Option var reason: String?

        func run() async throws {
            try await perform {
                let e = try await global.openWorkflow().raiseEscalation(EscalationID(id), reason: reason, by: actor.resolved)
                if global.json { return try printJSON(EscalationView(e)) }
                print("Escalation #\(e.id) is now at the \(e.tierName) tier.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Option(help: "open, claimed or resolved.") var status: String?
        @Option var limit: Int = 50

        func run() async throws {
            try await perform {
                let list = try await global.openWorkflow().escalations(status: status, limit: limit)
                if global.json { return try printJSON(list.map(EscalationView.init)) }
                var table = Table("id", "status", "tier", "breached", "query", "reason")
                for e in list {
                    table.add("#\(e.id)", e.status.name, e.tierName, e.breached ? "yes" : "no", e.query, e.trigger.text)
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
                let e = try await workflow.escalation(EscalationID(id))
                if global.json { return try printJSON(EscalationView(e)) }
                let v = EscalationView(e)
                var d = Details()
                d.add("escalation", "#\(e.id)")
                d.add("status", e.status.name + (e.breached ? " (SLA breached)" : ""))
                d.add("tier", e.tierName)
                d.add("query", e.query)
                d.add("context", e.context)
                d.add("reason", e.trigger.text)
                d.add("claimed by", v.claimedBy)
                d.add("resolved by", v.resolvedBy)
                d.add("resolution", v.resolution)
                d.print()
                try await printAudit(workflow, e.ref)
            }
        }
    }
}
