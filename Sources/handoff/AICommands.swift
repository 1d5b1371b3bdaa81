import ArgumentParser
import Foundation
import HandoffAI
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffWorkflow

extension GlobalOptions {
    /// The AI settings from the environment (provider, model, key, timeouts).
    var aiOptions: AIOptions { configuration.ai }
    /// The policy file the `ai:` section is read from.
    var aiPolicyPath: String? { configuration.chatPolicyPath }
}

/// Runs an AI command body; configuration problems print their message and exit 2.
func performAI(_ body: () async throws -> Void) async throws {
    try await perform {
        do {
            try await body()
        } catch let error as AIRuntime.ConfigurationError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(2)
        } catch let error as ProviderError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit a route's raw AI confidence to what reviewers accepted, and propose (or --apply) a threshold.",
        discussion: """
            Every routed answer a reviewer judged (approved as is, corrected, rejected) is an outcome. This fits a \
            monotone map from raw confidence to P(acceptable) (isotonic regression), prints a reliability table, \
            and proposes the lowest threshold whose auto-sent answers keep the estimated error under --target, \
            so the fewest answers go to people. --apply stores it in the database; a stored threshold takes \
            precedence over routes.<route>.threshold in the policy file until --reset.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @Argument(help: "The route to calibrate.") var route: String
    @Option(help: "The error rate auto-sent answers may have (0.05 = 5%).") var target: Double = 0.05
    @Option(name: .customLong("min-auto-sent"), help: "Judged answers that must lie at or above a proposed threshold.") var minAutoSent: Int = 20
    @Option(help: "Rows in the reliability table.") var bins: Int = 10
    @Option(help: "Only outcomes of this estimator (self_rating, self_consistency, logprobs, caller).") var estimator: String?
    @Flag(help: "Store the proposed threshold for the route.") var apply = false
    @Flag(help: "Remove the stored threshold; the policy file's applies again.") var reset = false

    func run() async throws {
        try await performAI {
            let workflow = try await global.openWorkflow()
            if reset {
                _ = try workflow.routeConfig(route)
                try await workflow.clearRouteThreshold(route)
                print("Route \(route) uses the policy file's threshold (\(String(format: "%.3f", try workflow.routeConfig(route).threshold))) again.")
                return
            }
            var options = CalibrationReport.Options()
            options.targetError = target > 1 ? target / 100 : target
            options.minAutoSent = minAutoSent
            options.bins = bins
            options.estimator = estimator
            let report = try await CalibrationReport.build(workflow: workflow, route: route, options: options)
            var applied: RouteThresholdOverride?
            if apply { applied = try await report.apply(workflow: workflow, by: actor.resolved.id) }
            if global.json { return try printJSON(Output(report, applied: applied)) }
            print("Route \(route): \(report.calibration.total) judged answers, \(report.calibration.acceptable) accepted as they were.")
            if report.estimators.count > 1 && estimator == nil {
                print("Outcomes come from several estimators (\(report.estimators.map { "\($0.estimator) \($0.count)" }.joined(separator: ", "))); their raw confidences differ in meaning, so consider --estimator.")
            }
            var table = Table("raw confidence", "answers", "mean claimed", "accepted", "fitted")
            for row in report.rows {
                table.add(String(format: "%.1f–%.1f", row.lower, row.upper), String(row.count), CalibrationReport.number(row.meanConfidence),
                          CalibrationReport.percent(row.observedRate), CalibrationReport.percent(row.fittedRate))
            }
            table.print()
            print("")
            print("Threshold now: \(CalibrationReport.number(report.route.config.threshold)) (\(report.thresholdSource)); estimated error of auto-sent answers \(CalibrationReport.percent(report.current.estimatedError)), \(CalibrationReport.percent(report.current.humanShare)) to people.")
            if let p = report.proposal.evaluation {
                print("Proposed: \(CalibrationReport.number(p.threshold)) — estimated error \(CalibrationReport.percent(p.estimatedError)) (observed \(CalibrationReport.percent(p.observedError)), 95% bound \(CalibrationReport.percent(p.errorUpperBound))), \(CalibrationReport.percent(p.humanShare)) to people; \(report.proposal.reason).")
            } else {
                print("No threshold proposed: \(report.proposal.reason).")
            }
            if let applied {
                print("Applied: route \(route) now routes with threshold \(CalibrationReport.number(applied.threshold)) (stored in the database; `handoff calibrate \(route) --reset` returns to the policy file).")
            } else if report.proposal.evaluation != nil {
                print("Run with --apply to use it.")
            }
        }
    }

    struct Output: Encodable {
        struct Row: Encodable {
            var lower: Double, upper: Double, count: Int, meanConfidence: Double?, observedRate: Double?, fittedRate: Double?
        }
        struct Evaluation: Encodable {
            var threshold: Double, autoSent: Int, toHumans: Int, estimatedError: Double?, observedError: Double?, errorUpperBound: Double?
            init(_ e: ThresholdEvaluation) {
                threshold = e.threshold
                autoSent = e.autoSent
                toHumans = e.toHumans
                estimatedError = e.estimatedError
                observedError = e.observedError
                errorUpperBound = e.errorUpperBound
            }
        }
        var route: String
        var outcomes: Int
        var acceptable: Int
        var threshold: Double
        var thresholdSource: String
        var current: Evaluation
        var targetError: Double
        var proposed: Evaluation?
        var reason: String
        var applied: Bool
        var rows: [Row]

        init(_ r: CalibrationReport, applied: RouteThresholdOverride?) {
            route = r.route.name
            outcomes = r.calibration.total
            acceptable = r.calibration.acceptable
            threshold = applied?.threshold ?? r.route.config.threshold
            thresholdSource = applied == nil ? r.thresholdSource : "database"
            current = Evaluation(r.current)
            targetError = r.proposal.targetError
            proposed = r.proposal.evaluation.map(Evaluation.init)
            reason = r.proposal.reason
            self.applied = applied != nil
            rows = r.rows.map { Row(lower: $0.lower, upper: $0.upper, count: $0.count, meanConfidence: $0.meanConfidence, observedRate: $0.observedRate,
                                    fittedRate: $0.fittedRate) }
        }
    }
}

struct PatternsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patterns",
        abstract: "Correction patterns above the floor; --suggest proposes an instruction change for one, through an approval.",
        discussion: """
            With --suggest, the AI provider is asked for a revised system prompt that prevents the pattern. The \
            change is not made: an approval (action update_system_prompt, arguments route, version, prompt) goes \
            to the approvers, and the version becomes the route's prompt only once it is approved (`handoff serve` \
            applies it, or `handoff prompts apply`). Without a provider, the pattern's examples are printed instead.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @Option(help: "Only patterns with at least this many corrections.") var floor: Int = 2
    @Option(help: "How alike two changes must be (Jaccard, 0–1).") var similarity: Double = 0.5
    @Flag(help: "Ask the AI provider for an instruction change that would prevent the pattern.") var suggest = false
    @Option(help: "Which pattern to suggest for (1 = the largest).") var pattern: Int = 1
    @Option(help: "The route whose prompt should change (default: the route of the pattern's corrections).") var route: String?

    func run() async throws {
        try await performAI {
            let workflow = try await global.openWorkflow()
            let reports = try await workflow.correctionPatterns(floor: floor, similarity: similarity, examples: 5)
            guard suggest else {
                if global.json {
                    struct Out: Encodable { var summary: String; var count: Int; var signature: [String]; var examples: [CorrectionView] }
                    return try printJSON(reports.map {
                        Out(summary: $0.pattern.summary, count: $0.pattern.count, signature: $0.pattern.signature, examples: $0.examples.map { CorrectionView($0) })
                    })
                }
                if reports.isEmpty { print("No pattern has \(floor) or more corrections yet.") }
                for (i, r) in reports.enumerated() { printPattern(r, index: i + 1) }
                return
            }
            guard !reports.isEmpty else {
                print("No pattern has \(floor) or more corrections yet; nothing to suggest.")
                return
            }
            guard (1...reports.count).contains(pattern) else {
                throw WorkflowError.invalid("pattern", "must be from 1 to \(reports.count)")
            }
            let report = reports[pattern - 1]
            try await AIRuntime.withProvider(options: global.aiOptions, policyPath: global.aiPolicyPath, workflow: workflow) { policy, provider in
                let target = route ?? PromptSuggester.route(of: report, policy: policy)
                guard let provider else {
                    printPattern(report, index: pattern)
                    print("No AI provider is configured, so no instruction change was suggested. Set HANDOFF_AI_PROVIDER, HANDOFF_AI_MODEL and a key (README, \"Connect an AI provider\"), or write one yourself: handoff prompts propose \(target) --prompt \"…\"")
                    return
                }
                let (version, approval) = try await PromptSuggester(workflow: workflow, policy: policy, provider: provider)
                    .propose(for: report, route: target, by: actor.resolved.id)
                if global.json {
                    struct Out: Encodable { var route: String; var version: Int; var prompt: String; var approval: ApprovalView }
                    return try printJSON(Out(route: version.route, version: version.version, prompt: version.prompt, approval: ApprovalView(approval)))
                }
                print("Suggested system prompt for route \(target) (version \(version.version)), to prevent: \(report.pattern.summary)")
                print("")
                print(version.prompt)
                print("")
                print("Approval #\(approval.id) (update_system_prompt) waits for \(approval.deciders.joined(separator: ", ")); the prompt changes only once it is approved.")
            }
        }
    }

    func printPattern(_ r: Workflow.PatternReport, index: Int) {
        print("\(index). \(r.pattern.count)× \(r.pattern.summary)")
        for c in r.examples {
            print("    #\(c.id) \(Table.cell(c.query, 50)): \(Table.cell(c.original, 40)) → \(Table.cell(c.corrected, 40))")
        }
    }
}

struct Prompts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompts", abstract: "System prompt versions per route: list them, propose one (through an approval), apply approved ones.",
        subcommands: [List.self, Propose.self, Apply.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A route's prompt versions, newest first (active, proposed, superseded, rejected).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Only this route.") var route: String?

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let versions = try await workflow.store.promptVersions(route: route, limit: 100)
                if global.json {
                    struct Out: Encodable { var route: String; var version: Int; var status: String; var approval: Int64?; var reason: String?; var prompt: String }
                    return try printJSON(versions.map {
                        Out(route: $0.route, version: $0.version, status: $0.status.rawValue, approval: $0.approval?.rawValue, reason: $0.reason, prompt: $0.prompt)
                    })
                }
                var table = Table("route", "version", "status", "approval", "created", "prompt")
                for v in versions {
                    table.add(v.route, String(v.version), v.status.rawValue, v.approval.map { "#\($0)" } ?? "-", Format.date(v.createdAt), v.prompt)
                }
                table.print()
                if versions.isEmpty { print("Routes answer with the policy file's ai.routes.<route>.system_prompt (or the built-in prompt).") }
            }
        }
    }

    struct Propose: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Propose a new system prompt for a route; it applies once its approval is approved.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var route: String
        @Option(help: "The complete new system prompt.") var prompt: String
        @Option(help: "Why it should change.") var reason: String?

        func run() async throws {
            try await performAI {
                let workflow = try await global.openWorkflow()
                let policy = try AIRuntime.loadPolicy(path: global.aiPolicyPath, workflow: workflow.policy)
                let (version, approval) = try await workflow.proposePrompt(route: route, prompt: prompt, reason: reason, by: actor.resolved.id,
                                                                           policyName: policy.promptApprovalPolicy)
                if global.json { return try printJSON(ApprovalView(approval)) }
                print("Proposed version \(version.version) of route \(route)'s system prompt; approval #\(approval.id) waits for \(approval.deciders.joined(separator: ", ")).")
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply decided prompt approvals now: approved versions become active (the grant is consumed), refused ones are marked rejected.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let result = try await workflow.applyApprovedPrompts()
                for v in result.activated { print("Route \(v.route) now answers with system prompt version \(v.version) (approval #\(v.approval.map(String.init(describing:)) ?? "-")).") }
                for v in result.rejected { print("Version \(v.version) of route \(v.route) was not approved; it stays unused.") }
                if result.activated.isEmpty && result.rejected.isEmpty { print("No decided prompt approvals to apply.") }
            }
        }
    }
}

struct Ask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the AI a question as a user would, and see the answer, its confidence and where it was routed.",
        discussion: "Checks the provider set-up end to end. An unsure answer becomes a review item like any other.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "The route (default: ai.chat.route, else default).") var route: String?
    @Argument(parsing: .remaining, help: "The question.") var question: [String] = []

    func run() async throws {
        try await performAI {
            let workflow = try await global.openWorkflow()
            let text = question.joined(separator: " ")
            try await AIRuntime.withProvider(options: global.aiOptions, policyPath: global.aiPolicyPath, workflow: workflow) { policy, provider in
                let asked = try await workflow.ask(AIQuestionDraft(route: route ?? policy.chatRoute, query: text, origin: nil, asker: ActorOptions.operatorID))
                let result = try await AnsweringPipeline(workflow: workflow, policy: policy, provider: provider).answer(asked)
                let a = result.answer
                if global.json {
                    struct Out: Encodable {
                        var decision: String; var answer: String?; var confidence: Double?; var estimator: String; var reason: String?
                        var reviewItem: Int64?; var escalation: Int64?; var examples: [Int64]
                    }
                    return try printJSON(Out(decision: a.decision, answer: a.answer, confidence: a.confidence, estimator: a.estimator, reason: a.reason,
                                             reviewItem: a.reviewItem?.rawValue, escalation: a.escalation?.rawValue, examples: a.examples.map(\.rawValue)))
                }
                var d = Details()
                d.add("route", a.route)
                d.add("answer", a.answer ?? "(none)")
                d.add("confidence", a.confidence.map { String(format: "%.3f", $0) } ?? "-")
                d.add("estimator", a.estimator)
                d.add("model", a.model)
                d.add("decision", a.decision)
                d.add("reason", a.reason)
                d.add("examples", a.examples.isEmpty ? nil : a.examples.map { "correction #\($0)" }.joined(separator: ", "))
                d.add("review item", a.reviewItem.map { "#\($0)" })
                d.add("escalation", a.escalation.map { "#\($0)" })
                d.print()
            }
        }
    }
}
