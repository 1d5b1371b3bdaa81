import ArgumentParser
import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow

struct Approvals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "Ask for, list, show and decide approvals before actions.",
        subcommands: [Create.self, List.self, Show.self, Decide.self, Cancel.self, Consume.self, Outcome.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask for approval of an action with exact arguments.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The action to approve, e.g. deploy.") var action: String
        @Option(name: .customLong("args"), help: "The action's arguments as JSON; the decision is bound to their hash.") var arguments: String = "{}"
        @Option(help: "Who asks (default: the operator).") var requester: String?
        @Option(help: "A one-line summary for the card.") var summary: String?
        @Option(help: "Approval policy name.") var policy: String = "default"
        @Option(name: .customLong("callback-url"), help: "Where to POST the decision.") var callbackURL: String?
        @Option(help: "Opaque JSON echoed back with the decision.") var state: String?
        @Option(name: .customLong("idempotency-key"), help: "A retry with the same key returns the same approval.") var idempotencyKey: String?

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let requesterID = requester.map { ActorID($0) } ?? ActorOptions.operatorID
                let request = ApprovalRequest(
                    action: action, arguments: try parseJSON(arguments, option: "--args"), summary: summary, requester: requesterID,
                    callerState: try state.map { try parseJSON($0, option: "--state") }, callbackURL: callbackURL, policyName: policy)
                let key = idempotencyKey.map { EventKey(source: "cli:\(requesterID)", key: $0) }
                let (approval, created) = try await workflow.requestApproval(request, idempotencyKey: key)
                if global.json { return try printJSON(ApprovalView(approval)) }
                print("\(created ? "Created" : "Already exists:") approval #\(approval.id) for \(approval.action) — \(approval.status.name), expires \(Format.date(approval.expiresAt))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List approvals, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "pending, approved, rejected, needs_revision, expired or cancelled.") var status: String?
        @Option(help: "At most this many.") var limit: Int = 50

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let list = try await workflow.approvals(status: status, limit: limit)
                if global.json { return try printJSON(list.map(ApprovalView.init)) }
                var table = Table("id", "status", "action", "requester", "approvals", "expires", "decided by")
                for a in list {
                    table.add("#\(a.id)", a.status.name, a.action, a.requester.rawValue, "\(a.votes.count)/\(a.policy.quorum)",
                              Format.date(a.expiresAt), a.status.decision?.by.map(\.rawValue).joined(separator: ",") ?? "-")
                }
                table.print()
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one approval with its audit trail.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Approval id.") var id: Int64

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let a = try await workflow.approval(ApprovalID(id))
                if global.json { return try printJSON(ApprovalView(a)) }
                var d = Details()
                d.add("approval", "#\(a.id)")
                d.add("status", a.status.name)
                d.add("action", a.action)
                d.add("arguments", a.arguments.canonicalText)
                d.add("arguments hash", a.argumentsHash)
                d.add("summary", a.summary)
                d.add("requester", a.requester.rawValue)
                d.add("policy", "\(a.policyName) (deciders: \(a.deciders.joined(separator: ", ")); quorum \(a.policy.quorum))")
                d.add("approvals", a.votes.isEmpty ? nil : a.votes.map(\.by.rawValue).joined(separator: ", "))
                d.add("created", Format.date(a.createdAt))
                d.add("expires", Format.date(a.expiresAt))
                if let decision = a.status.decision {
                    d.add("decided by", decision.by.map(\.rawValue).joined(separator: ", ") + (decision.automatic ? " (automatic)" : ""))
                    d.add("decided at", Format.date(decision.at))
                    d.add("comment", decision.comment)
                }
                d.add("execution", a.execution.name)
                d.print()
                try await printAudit(workflow, a.ref)
            }
        }
    }

    struct Decide: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve, reject (reason required) or ask for a revision (comment required).",
            discussion: "Example: handoff approvals decide 3 reject too risky on a Friday --as slack:U123")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument(help: "Approval id.") var id: Int64
        @Argument(help: "approve, reject or revise.") var verdict: String
        @Argument(parsing: .remaining, help: "Comment or reason.") var comment: [String] = []

        func run() async throws {
            try await perform {
                guard let v = Verdict(word: verdict) else {
                    throw WorkflowError.invalid("verdict", "must be approve, reject or revise, not '\(verdict)'")
                }
                let workflow = try await global.openWorkflow()
                let text = comment.joined(separator: " ")
                let a = try await workflow.decide(ApprovalID(id), verdict: v, comment: text.isEmpty ? nil : text, by: actor.resolved)
                if global.json { return try printJSON(ApprovalView(a)) }
                if a.status.isPending {
                    print("Recorded your approval of #\(a.id): \(a.votes.count) of \(a.policy.quorum).")
                } else {
                    print("Approval #\(a.id) is now \(a.status.name).")
                }
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a pending approval (requester or admin).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Option var reason: String?

        func run() async throws {
            try await perform {
                let a = try await global.openWorkflow().cancelApproval(ApprovalID(id), by: actor.resolved, reason: reason)
                if global.json { return try printJSON(ApprovalView(a)) }
                print("Approval #\(a.id) is now \(a.status.name).")
            }
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Use an approved request's execution grant (once) for exactly the approved arguments.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Option(name: .customLong("args"), help: "The arguments about to be executed, as JSON.") var arguments: String

        func run() async throws {
            try await perform {
                let a = try await global.openWorkflow().consume(ApprovalID(id), arguments: try parseJSON(arguments, option: "--args"),
                                                                by: actor.resolved)
                if global.json { return try printJSON(ApprovalView(a)) }
                print("Execution grant of approval #\(a.id) used. Go ahead, then report the outcome.")
            }
        }
    }

    struct Outcome: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Report how the approved action went: succeeded or failed.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Argument(help: "succeeded or failed.") var result: String
        @Option(help: "What went wrong (required for failed).") var message: String?

        func run() async throws {
            try await perform {
                let outcome: Execution.Outcome
                switch result {
                case "succeeded", "success", "ok": outcome = .succeeded
                case "failed", "failure": outcome = .failed(message: message ?? "")
                default: throw WorkflowError.invalid("result", "must be succeeded or failed")
                }
                let a = try await global.openWorkflow().reportOutcome(ApprovalID(id), outcome: outcome, by: actor.resolved)
                if global.json { return try printJSON(ApprovalView(a)) }
                print("Approval #\(a.id): execution \(a.execution.name).")
            }
        }
    }
}

func printAudit(_ workflow: Workflow, _ ref: EntityRef) async throws {
    let events = try await workflow.store.audit(of: ref)
    guard !events.isEmpty else { return }
    print("")
    var table = Table("at", "actor", "from", "to", "detail")
    table.maxWidth = 60
    for e in events { table.add(Format.date(e.at), e.actor.rawValue, e.from ?? "-", e.to, e.detail ?? "") }
    table.print()
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Print the audit trail of any entity.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "approval, review_item, escalation, feedback, correction or label_task.") var kind: String
    @Argument var id: Int64

    func run() async throws {
        try await perform {
            guard let k = EntityKind(rawValue: kind) else {
                throw WorkflowError.invalid("kind", "must be one of \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let workflow = try await global.openWorkflow()
            let ref = EntityRef(kind: k, id: id)
            if global.json {
                struct Line: Encodable { var at: Date; var actor: String; var from: String?; var to: String; var detail: String? }
                return try printJSON(try await workflow.store.audit(of: ref).map {
                    Line(at: $0.at, actor: $0.actor.rawValue, from: $0.from, to: $0.to, detail: $0.detail)
                })
            }
            try await printAudit(workflow, ref)
        }
    }
}

struct Timers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fire every due timer once now (serve does this continuously).", subcommands: [Fire.self], defaultSubcommand: Fire.self)

    struct Fire: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                var total = 0
                while true {
                    let n = try await workflow.fireDueTimers(limit: 500)
                    total += n
                    if n < 500 { break }
                }
                print("Fired \(total) due timer\(total == 1 ? "" : "s").")
            }
        }
    }
}
