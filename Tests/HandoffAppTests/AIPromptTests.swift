import Foundation
import HandoffAI
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// Suggested instruction changes go through the product's own approval workflow: the route's system
/// prompt changes only once the approval is approved and applied, and every version is kept.
@Suite(.serialized) struct AIPromptTests {
    static let policy = testPolicy + """

        ai:
          defaults:
            estimator: self_rating
            system_prompt: "You answer questions about Acme's shop."
        """
    static let newPrompt = "You answer questions about Acme's shop. Refunds are accepted within 14 days of purchase, never 30."

    /// Two corrections that changed the same thing: a pattern above the floor of 2.
    static func recordPattern(_ workflow: Workflow) async throws {
        for (q, o, c) in [("How long do refunds take?", "Refunds take 30 days.", "Refunds take 14 days."),
                          ("What is the refund window?", "The window is 30 days.", "The window is 14 days.")] {
            _ = try await workflow.recordCorrection(CorrectionInput(query: q, original: o, corrected: c, route: "default"), by: "key:alice")
        }
    }

    static func environment(_ llm: FakeAnthropic) -> [String: String] {
        ["HANDOFF_AI_PROVIDER": "anthropic", "HANDOFF_AI_MODEL": "claude-sonnet-4-5", "ANTHROPIC_API_KEY": llm.configuration.apiKey,
         "HANDOFF_AI_BASE_URL": llm.baseURL]
    }

    @Test("`handoff patterns --suggest` asks the provider; the prompt changes only after approval; the running service applies it")
    func suggestionApprovalFlow() async throws {
        let llm = try await FakeAnthropic.start()
        // Newest rules win: the suggestion request mentions refunds too.
        await llm.script(.user("refund"), .text("Refunds are accepted within 14 days."))
        await llm.script(.user("How likely is it"), .text("0.9"))
        await llm.script(.user("Write a revised system prompt"), .text("```\n\(Self.newPrompt)\n```"))
        try await withTestApp(policy: Self.policy, configure: { c in
            c.ai.environment = Self.environment(llm)
            c.ai.answering.pollInterval = .milliseconds(20)
        }) { app in
            let k = try await app.keys()
            try await Self.recordPattern(app.workflow)
            let env = ["HANDOFF_DATABASE": app.directory.file("handoff.sqlite"), "HANDOFF_POLICY": app.directory.file("policy.yaml")]
                .merging(Self.environment(llm)) { a, _ in a }

            // Without --suggest: the patterns above the floor.
            let listed = try await runHandoff(["patterns"], environment: env)
            #expect(listed.stdout.contains("1. 2× replaced 30 with 14"), "\(listed.stdout)\(listed.stderr)")

            let suggested = try await runHandoff(["patterns", "--suggest", "--json"], environment: env)
            #expect(suggested.status == 0, "\(suggested.stderr)")
            let out = try JSONValue.parse(suggested.stdout)
            #expect(out[member: "prompt"]?.stringValue == Self.newPrompt, "the code fence is removed")
            let approvalID = try #require(out[member: "approval"]?[member: "id"]?.number).rounded()
            #expect(out[member: "approval"]?[member: "action"]?.stringValue == "update_system_prompt")
            #expect(out[member: "approval"]?[member: "arguments"]?[member: "route"]?.stringValue == "default")
            let ask = try #require(await llm.answered().first { $0.lastUser?.contains("Write a revised system prompt") == true })
            #expect(ask.lastUser?.contains("You answer questions about Acme's shop.") == true, "the current prompt is shown")
            #expect(ask.lastUser?.contains("Corrected to: Refunds take 14 days.") == true, "with the pattern's examples")

            // Proposed, not active: questions still get the policy file's prompt.
            let versions = try await app.workflow.store.promptVersions(route: "default", limit: 10)
            #expect(versions.map(\.status) == [.proposed])
            #expect(try await app.workflow.activePrompt(route: "default") == nil)
            let pipeline = try #require(app.app.ai).answering.pipeline
            #expect(try await pipeline.systemPrompt(route: "default").text == "You answer questions about Acme's shop.")
            #expect(try await app.workflow.applyApprovedPrompts() == Workflow.PromptApplication(), "pending: nothing to apply")

            // An approver approves through the API; the running service applies it (consumes the grant).
            let decided = try await app.post("/v1/approvals/\(Int(approvalID))/decision", key: k.bob, #"{"verdict":"approve"}"#)
            #expect(decided.json["status"]?.stringValue == "approved")
            #expect(await eventually { (try? await app.workflow.activePrompt(route: "default"))?.version == 1 })
            let approval = try await app.workflow.approval(ApprovalID(Int64(approvalID)))
            #expect(approval.execution.name == "consumed", "the execution grant was used for exactly these arguments")
            #expect(try await pipeline.systemPrompt(route: "default") == (Self.newPrompt, 1))

            // The next answer (by the running service) uses the approved prompt, and records its version.
            let question = try await app.workflow.ask(AIQuestionDraft(query: "How long do refunds take?", origin: nil, asker: "key:user"))
            var answer: AIAnswerRecord?
            #expect(await eventually {
                answer = try? await app.workflow.store.aiAnswer(question: question.id)
                return answer != nil
            })
            #expect(answer?.promptVersion == 1)
            let sent = try #require(await llm.answered().last { $0.lastUser == "How long do refunds take?" })
            #expect(sent.system?.hasPrefix(Self.newPrompt) == true)

            // Versions are kept: a second proposal, rejected, never becomes active.
            let (second, secondApproval) = try await app.workflow.proposePrompt(route: "default", prompt: "Be terse.", reason: "test", by: "cli:op")
            #expect(second.version == 2)
            _ = try await app.workflow.decide(secondApproval.id, verdict: .reject, comment: "too terse", by: Actor("key:alice"))
            #expect(await eventually { (try? await app.workflow.store.promptVersions(route: "default", limit: 10))?.map(\.status) == [.rejected, .active] })
            #expect(try await app.workflow.activePrompt(route: "default")?.prompt == Self.newPrompt)

            let list = try await runHandoff(["prompts", "default"], environment: env)
            #expect(list.stdout.contains("rejected") && list.stdout.contains("active"), "\(list.stdout)")
        }
        await llm.stop()
    }

    @Test("Without a provider, --suggest prints the pattern's examples and changes nothing")
    func suggestWithoutProvider() async throws {
        try await withTestApp(policy: Self.policy) { app in
            try await Self.recordPattern(app.workflow)
            let env = ["HANDOFF_DATABASE": app.directory.file("handoff.sqlite"), "HANDOFF_POLICY": app.directory.file("policy.yaml"),
                       "HANDOFF_AI_PROVIDER": "none"]
            let run = try await runHandoff(["patterns", "--suggest"], environment: env)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("Refunds take 30 days. → Refunds take 14 days."), "\(run.stdout)")
            #expect(run.stdout.contains("No AI provider is configured"))
            #expect(try await app.workflow.approvals(status: nil, limit: 10).isEmpty)
            #expect(try await app.workflow.store.promptVersions(route: nil, limit: 10).isEmpty)
        }
    }

    @Test("A prompt approval applies once; one whose arguments differ from its version is never applied")
    func applyOnceAndRefuseMismatch() async throws {
        try await withTestApp(policy: Self.policy) { app in
            let w = app.workflow
            let (version, approval) = try await w.proposePrompt(route: "default", prompt: "Version A", reason: nil, by: "cli:op")
            #expect(approval.arguments == Workflow.promptArguments(route: "default", version: version.version, prompt: "Version A"))
            #expect(approval.requester == Workflow.aiActor)
            #expect(approval.action == Workflow.promptChangeAction)
            _ = try await w.decide(approval.id, verdict: .approve, comment: nil, by: Actor("key:bob"))
            // The running service or this call: whoever comes first applies it, exactly once.
            _ = try await w.applyApprovedPrompts()
            #expect(await eventually { (try? await w.activePrompt(route: "default"))?.prompt == "Version A" })
            #expect(try await w.applyApprovedPrompts() == Workflow.PromptApplication(), "applied once")
            #expect(try await w.approval(approval.id).execution.name == "consumed")

            // A version bound to an approval of other arguments (the prompt text differs): approved, yet not applied.
            let other = try await w.requestApproval(ApprovalRequest(
                action: Workflow.promptChangeAction, arguments: Workflow.promptArguments(route: "default", version: 2, prompt: "What was approved"),
                requester: Workflow.aiActor)).approval
            var ai = AIChanges()
            ai.newPrompts = [PromptVersionDraft(route: "default", version: 2, prompt: "Something else", status: .proposed, approval: other.id,
                                                reason: nil, createdBy: "cli:op", createdAt: w.clock.now())]
            try await w.store.commit(ChangeSet(), ai: ai, now: w.clock.now())
            _ = try await w.decide(other.id, verdict: .approve, comment: nil, by: Actor("key:bob"))
            _ = try await w.applyApprovedPrompts()
            #expect(await eventually { (try? await w.store.promptVersions(route: "default", limit: 5))?.first?.status == .rejected })
            #expect(try await w.activePrompt(route: "default")?.prompt == "Version A")
            #expect(try await w.approval(other.id).execution.name == "unused", "the grant was not used")
        }
    }

    @Test("The ai section of the policy file is validated with messages that name the field")
    func policyValidation() throws {
        let workflowPolicy = try PolicyFile.parse(testPolicy)
        let good = try AIRuntime.parsePolicy(Self.policy + "\n  routes:\n    default: { estimator: self_consistency, samples: 7 }\n", workflow: workflowPolicy)
        #expect(good.settings(for: "default").estimator == .selfConsistency)
        #expect(good.settings(for: "default").samples == 7)
        #expect(good.settings(for: "default").systemPrompt == "You answer questions about Acme's shop.", "routes inherit the defaults")
        #expect(throws: AIRuntime.ConfigurationError.self) { try AIRuntime.parsePolicy("ai:\n  routes:\n    nope: {}\n", workflow: workflowPolicy) }
        do {
            _ = try AIRuntime.parsePolicy("ai:\n  defaults: { samples: 1 }\n  chat: { route: missing }\n", workflow: workflowPolicy)
            Issue.record("expected problems")
        } catch {
            #expect("\(error)".contains("ai.defaults.samples must be from 2 to 20"))
            #expect("\(error)".contains("ai.chat.route names route 'missing'"))
        }
        // The example policy in manifests/ is valid.
        let example = BuiltProducts.packageRoot.appendingPathComponent("manifests/policies/handoff.example.yaml").path
        let examplePolicy = try PolicyFile.load(path: example)
        let ai = try AIRuntime.loadPolicy(path: example, workflow: examplePolicy)
        #expect(ai.routes["support"]?.estimator == .selfConsistency)
    }
}
