import AsyncHTTPClient
import Foundation
import HandoffAI
import HandoffCore
import HandoffTesting
import Testing

@Suite struct EstimatorTests {
    static let refundAnswer = "Refunds are accepted within 14 days."

    func settings(_ estimator: EstimatorKind, _ change: (inout RouteAISettings) -> Void = { _ in }) -> RouteAISettings {
        var s = RouteAISettings()
        s.estimator = estimator
        change(&s)
        return s
    }

    @Test("Self-rating: a second call asks the model to rate its answer; the rating is read by the core's parser")
    func selfRating() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        await fake.script(.user("refund window"), .text(Self.refundAnswer))
        await fake.script(.user("How likely is it that the proposed answer is correct"), .text("Confidence: 85%"))
        let examples = [PromptExample(correctionID: 7, question: "How long do refunds take?", wrongAnswer: "30 days", correctedAnswer: "14 days")]
        let attempt = await Answerer(provider: h.anthropic(fake, retry: RecordedSleeps().policy()))
            .answer(question: "What is the refund window?", route: "default", settings: settings(.selfRating), systemPrompt: "Be helpful.",
                    examples: examples)
        #expect(attempt.text == Self.refundAnswer)
        #expect(attempt.measured == 0.85)
        #expect(attempt.confidence == .selfRating("Confidence: 85%"))
        let requests = await fake.answered()
        #expect(requests.count == 2)
        let answerCall = try #require(requests.first)
        #expect(answerCall.system?.hasPrefix("Be helpful.") == true)
        #expect(answerCall.system?.contains("Corrected answer: 14 days") == true, "past corrections are examples in the prompt")
        let ratingCall = try #require(requests.last)
        #expect(ratingCall.lastUser?.contains("What is the refund window?") == true)
        #expect(ratingCall.lastUser?.contains(Self.refundAnswer) == true)
        #expect(ratingCall.field("max_tokens") == .int(16))
        await h.shutdown()
        await fake.stop()
    }

    @Test("Self-rating that cannot be read routes to a person with the parser's reason")
    func unreadableSelfRating() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        await fake.script(.user("How likely is it"), .text("I am fairly sure about it"))
        let attempt = await Answerer(provider: h.anthropic(fake, retry: RecordedSleeps().policy()))
            .answer(question: "Is the sky blue?", route: "default", settings: settings(.selfRating), systemPrompt: "x", examples: [])
        #expect(attempt.measured == nil)
        let decision = Router.route(answer: attempt.text, confidence: attempt.confidence, userMessage: "Is the sky blue?", route: RouteConfig(),
                                    escalation: EscalationConfig())
        guard case .review(nil, let reason) = decision else { Issue.record("expected review, got \(decision)"); return }
        #expect(reason.contains("could not read the self-rating 'I am fairly sure about it'"))
        await h.shutdown()
        await fake.stop()
    }

    @Test("Self-consistency: n samples at temperature > 0; the majority answer with its agreement as confidence")
    func selfConsistencyMajority() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        await fake.script(.user("refund window"),
                          .text(Self.refundAnswer), .text("Refunds are accepted within 14 days of purchase."),
                          .text("You can get a refund within 30 days."), .text(Self.refundAnswer), .text("Within 14 days, refunds are accepted."))
        let attempt = await Answerer(provider: h.anthropic(fake, retry: RecordedSleeps().policy()))
            .answer(question: "What is the refund window?", route: "default", settings: settings(.selfConsistency), systemPrompt: "x", examples: [])
        #expect(await fake.answered().count == 5)
        #expect(await fake.answered().allSatisfy { $0.field("temperature") == .double(0.8) })
        #expect(attempt.confidence == .score(0.8), "4 of 5 samples agree")
        #expect(attempt.measured == 0.8)
        #expect(attempt.text?.contains("14 days") == true)
        #expect(attempt.text?.contains("30") == false)
        await h.shutdown()
        await fake.stop()
    }

    @Test("Self-consistency with exact agreement, and a failed sample counts as disagreement")
    func selfConsistencyExactAndFailures() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        await fake.script(.user("capital"), .text("Paris."), .text("paris"), .text("Lyon"), .text("Paris"))
        await fake.failNext(.serverError)
        let attempt = await Answerer(provider: h.openAI(fake, retry: RecordedSleeps().policy(attempts: 1)))
            .answer(question: "What is the capital of France?", route: "default",
                    settings: settings(.selfConsistency) { $0.agreement = .exact; $0.samples = 5 }, systemPrompt: "x", examples: [])
        #expect(attempt.confidence == .score(0.6), "3 of 5 requested say Paris; the failed one counts against")
        #expect(attempt.text.map(PhraseMatcher.normalize) == "paris")
        await h.shutdown()
        await fake.stop()
    }

    @Test("Token log-probabilities: mean, geometric and min token probability")
    func logprobConfidence() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        await fake.script(.user("capital"), .logprobs("Paris is the capital", [-0.1, -0.2, -0.05, -0.05]))
        let provider = h.openAI(fake, retry: RecordedSleeps().policy())
        for (aggregate, expected) in [(LogprobConfidence.Aggregate.mean, (exp(-0.1) + exp(-0.2) + 2 * exp(-0.05)) / 4),
                                      (.geometric, exp(-0.1)), (.min, exp(-0.2))] {
            let attempt = await Answerer(provider: provider).answer(
                question: "What is the capital of France?", route: "default", settings: settings(.logprobs) { $0.logprobAggregate = aggregate },
                systemPrompt: "x", examples: [])
            #expect(abs((attempt.measured ?? 0) - expected) < 1e-9, "\(aggregate): \(attempt.measured ?? -1) vs \(expected)")
            #expect(attempt.text == "Paris is the capital")
        }
        #expect(await fake.answered().allSatisfy { $0.field("logprobs") == .bool(true) })
        await h.shutdown()
        await fake.stop()
    }

    @Test("Log-probabilities where there are none: Anthropic, or a server that does not return them, route to a person with the reason")
    func logprobsUnavailable() async throws {
        let anthropic = try await FakeAnthropic.start()
        var local = FakeOpenAI.Configuration()
        local.offersLogprobs = false
        let openAI = try await FakeOpenAI.start(local)
        let h = ProviderHarness()
        let a = await Answerer(provider: h.anthropic(anthropic, retry: RecordedSleeps().policy()))
            .answer(question: "q?", route: "billing", settings: settings(.logprobs), systemPrompt: "x", examples: [])
        guard case .unavailable(let reason) = a.confidence else { Issue.record("\(a.confidence)"); return }
        #expect(reason.contains("route billing measures confidence with token log-probabilities, which the anthropic provider does not return"))
        #expect(await anthropic.requests().isEmpty, "nothing is sent when the estimator cannot work")
        let b = await Answerer(provider: h.openAI(openAI, retry: RecordedSleeps().policy()))
            .answer(question: "q?", route: "default", settings: settings(.logprobs), systemPrompt: "x", examples: [])
        guard case .unavailable(let reason2) = b.confidence else { Issue.record("\(b.confidence)"); return }
        #expect(reason2.contains("returned no token log-probabilities"))
        #expect(b.text != nil, "the draft is kept for the reviewer")
        await h.shutdown()
        await anthropic.stop()
        await openAI.stop()
    }

    @Test("A cut-off answer and a provider that is down both route to a person with the reason")
    func incompleteAndDown() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        await fake.script(.user("essay"), .text("Once upon a", stop: "max_tokens"))
        let cut = await Answerer(provider: h.anthropic(fake, retry: RecordedSleeps().policy()))
            .answer(question: "Write an essay", route: "default", settings: settings(.selfRating), systemPrompt: "x", examples: [])
        #expect(cut.confidence == .unavailable(reason: "the AI answer was cut off at the token limit (stop reason max_tokens)"))
        #expect(cut.text == "Once upon a")
        await fake.failNext(.serverError, times: 10)
        let down = await Answerer(provider: h.anthropic(fake, retry: RecordedSleeps().policy(attempts: 2)))
            .answer(question: "Hello?", route: "default", settings: settings(.selfRating), systemPrompt: "x", examples: [])
        guard case .unavailable(let reason) = down.confidence else { Issue.record("\(down.confidence)"); return }
        #expect(reason.hasPrefix("the AI provider failed: Anthropic returned 500 api_error"))
        #expect(down.text == nil)
        await h.shutdown()
        await fake.stop()
    }
}

@Suite struct VotingTests {
    @Test func similarityVoteIsOrderIndependent() {
        let samples = ["The office opens at 9 am.", "It opens at 9 am.", "Opening time is 10 am.", "The office opens at 9 am on weekdays."]
        let voter = SelfConsistency(agreement: .similarity, threshold: 0.5)
        let a = try! #require(voter.vote(samples))
        let b = try! #require(voter.vote(samples.reversed()))
        #expect(a.confidence == b.confidence)
        #expect(a.answer.contains("9 am") && b.answer.contains("9 am"))
        #expect(voter.vote([]) == nil)
        #expect(voter.vote(["yes", "Yes!", "no"])?.support == 2, "short answers compare as normalized text")
    }

    @Test func logprobAggregates() {
        #expect(LogprobConfidence.confidence([], aggregate: .mean) == nil)
        #expect(LogprobConfidence.confidence([0, 0], aggregate: .min) == 1)
        #expect(LogprobConfidence.confidence([-Double.infinity, 0], aggregate: .mean) == 0.5)
        #expect(LogprobConfidence.confidence([-Double.infinity, 0], aggregate: .geometric) == 0)
    }
}

@Suite struct ProviderSettingsTests {
    @Test("Environment over policy file; the key never prints")
    func resolve() throws {
        var policy = AIPolicy()
        policy.provider = "openai"
        policy.model = "from-file"
        let env = ["HANDOFF_AI_PROVIDER": "anthropic", "HANDOFF_AI_MODEL": "claude-sonnet-4-5", "ANTHROPIC_API_KEY": "sk-ant-api03-SECRETVALUE",
                   "HANDOFF_AI_TIMEOUT": "30s", "HANDOFF_AI_MAX_RETRIES": "2"]
        let s = try #require(try ProviderSettings.resolve(environment: env, policy: policy))
        #expect(s.kind == .anthropic && s.model == "claude-sonnet-4-5" && s.baseURL == "https://api.anthropic.com")
        #expect(s.timeout == .seconds(30) && s.maxAttempts == 3)
        #expect(!s.description.contains("SECRETVALUE"))
        #expect(!"\(s)".contains("SECRETVALUE") && !String(reflecting: s.apiKey!).contains("SECRETVALUE"))
        let generic = try #require(try ProviderSettings.resolve(environment: ["HANDOFF_AI_PROVIDER": "openai", "HANDOFF_AI_MODEL": "llama3.1",
                                                                              "HANDOFF_AI_BASE_URL": "http://localhost:11434/v1"]))
        #expect(generic.apiKey == nil && generic.baseURL == "http://localhost:11434/v1")
        #expect(try ProviderSettings.resolve(environment: [:]) == nil, "no provider: questions go to people")
        #expect(try ProviderSettings.resolve(environment: ["HANDOFF_AI_PROVIDER": "none"], policy: policy) == nil)
        #expect(try ProviderSettings.resolve(environment: ["OPENAI_API_KEY": "k"], policy: policy)?.model == "from-file")
    }

    @Test("Misconfiguration is refused with a message that says what to set")
    func problems() {
        func problem(_ env: [String: String]) -> String {
            do {
                _ = try ProviderSettings.resolve(environment: env)
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(problem(["HANDOFF_AI_PROVIDER": "gemini"]).contains("must be anthropic, openai or none"))
        #expect(problem(["HANDOFF_AI_PROVIDER": "anthropic"]).contains("needs a model: set HANDOFF_AI_MODEL"))
        #expect(problem(["HANDOFF_AI_PROVIDER": "anthropic", "HANDOFF_AI_MODEL": "m"]).contains("set ANTHROPIC_API_KEY"))
        #expect(problem(["HANDOFF_AI_PROVIDER": "openai", "HANDOFF_AI_MODEL": "m", "HANDOFF_AI_BASE_URL": "localhost:11434"]).contains("http(s) URL"))
        #expect(problem(["HANDOFF_AI_PROVIDER": "openai", "HANDOFF_AI_MODEL": "m", "HANDOFF_AI_TIMEOUT": "soon"]).contains("HANDOFF_AI_TIMEOUT"))
    }

    @Test func urlJoin() {
        #expect(ProviderURL.join("https://api.openai.com/v1", "v1/chat/completions") == "https://api.openai.com/v1/chat/completions")
        #expect(ProviderURL.join("http://localhost:8080/", "v1/chat/completions") == "http://localhost:8080/v1/chat/completions")
        #expect(ProviderURL.join("https://api.anthropic.com", "v1/messages") == "https://api.anthropic.com/v1/messages")
    }

    @Test func suggestionPromptAndUnwrap() {
        let request = PromptBuilder.suggestion(route: "default", currentPrompt: "Be nice.", pattern: "replaced 30 day with 14 day",
                                               examples: [PromptExample(correctionID: 1, question: "q", wrongAnswer: "30 days", correctedAnswer: "14 days")])
        #expect(request.messages.first?.content.contains("Be nice.") == true)
        #expect(request.messages.first?.content.contains("Corrected to: 14 days") == true)
        #expect(PromptBuilder.unwrap("```text\nNew prompt.\n```") == "New prompt.")
        #expect(PromptBuilder.unwrap("<<<\nNew prompt.\n>>>") == "New prompt.")
    }
}
