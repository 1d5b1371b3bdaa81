import Foundation
import HandoffCore

/// One AI answer with its measured confidence, ready for routing.
package struct AnswerAttempt: Sendable {
    /// The answer to send or to show reviewers as a draft; nil when the provider gave none.
    package var text: String?
    /// What routing sees: a score, a self-rating text, or why there is no confidence.
    package var confidence: ConfidenceInput
    /// The raw confidence when one was measured (what calibration learns from).
    package var measured: Double?
    package var estimator: EstimatorKind
    /// What the estimator saw (samples and their support, the rating text, token statistics, stop reasons).
    package var details: JSONValue
    package var model: String?

    package init(text: String?, confidence: ConfidenceInput, measured: Double?, estimator: EstimatorKind, details: JSONValue = .object([:]),
                 model: String? = nil)
    {
        self.text = text
        self.confidence = confidence
        self.measured = measured
        self.estimator = estimator
        self.details = details
        self.model = model
    }

    /// No AI answer at all, with the reason people will see.
    package static func unavailable(_ reason: String, estimator: EstimatorKind) -> AnswerAttempt {
        AnswerAttempt(text: nil, confidence: .unavailable(reason: reason), measured: nil, estimator: estimator,
                      details: .object(["error": .string(reason)]))
    }
}

/// Answers a question with a provider and measures the answer's confidence with the route's estimator.
/// Never throws: a provider failure becomes an attempt whose confidence is unavailable, with the reason,
/// so the question goes to a person.
package struct Answerer: Sendable {
    package let provider: any LLMProvider
    /// How many self-consistency samples run at once.
    package var maxConcurrentSamples = 4

    package init(provider: any LLMProvider) {
        self.provider = provider
    }

    package func answer(question: String, route: String, settings: RouteAISettings, systemPrompt: String,
                        examples: [PromptExample]) async -> AnswerAttempt
    {
        let system = PromptBuilder.system(base: systemPrompt, examples: examples)
        let request = CompletionRequest(system: system, messages: [.user(question)], maxTokens: settings.maxTokens,
                                        temperature: settings.temperature, model: settings.model)
        switch settings.estimator {
        case .selfRating: return await selfRating(question: question, request: request, settings: settings)
        case .selfConsistency: return await selfConsistency(request: request, settings: settings)
        case .logprobs: return await logprobs(request: request, route: route, settings: settings)
        case .caller:
            return await single(request: request, estimator: .caller) { _ in
                (.unavailable(reason: "route \(route) expects the calling app to supply a confidence, and this question came without one"), nil, [:])
            }
        }
    }

    private func failed(_ error: ProviderError, _ estimator: EstimatorKind) -> AnswerAttempt {
        .unavailable("the AI provider failed: \(error.description)", estimator: estimator)
    }

    /// An incomplete answer (cut off, refused) never goes out on its own.
    private func incomplete(_ c: Completion) -> String? {
        switch c.stopReason {
        case .maxTokens: "the AI answer was cut off at the token limit (stop reason max_tokens)"
        case .refused: "the AI declined to answer (stop reason refused)"
        case .other(let s): "the AI answer ended unexpectedly (stop reason \(s))"
        case .endTurn, .stopSequence: nil
        }
    }

    private func single(
        request: CompletionRequest, estimator: EstimatorKind,
        measure: (Completion) async -> (ConfidenceInput, Double?, [String: JSONValue])
    ) async -> AnswerAttempt {
        let c: Completion
        do {
            c = try await provider.complete(request)
        } catch {
            return failed(error, estimator)
        }
        var details: [String: JSONValue] = ["stop_reason": .string(c.stopReason.description)]
        if let id = c.requestID { details["request_id"] = .string(id) }
        if let reason = incomplete(c) {
            details["error"] = .string(reason)
            return AnswerAttempt(text: c.text, confidence: .unavailable(reason: reason), measured: nil, estimator: estimator,
                                 details: .object(details), model: c.model)
        }
        let (confidence, measured, extra) = await measure(c)
        details.merge(extra) { _, new in new }
        return AnswerAttempt(text: c.text.trimmingCharacters(in: .whitespacesAndNewlines), confidence: confidence, measured: measured,
                             estimator: estimator, details: .object(details), model: c.model)
    }

    private func selfRating(question: String, request: CompletionRequest, settings: RouteAISettings) async -> AnswerAttempt {
        await single(request: request, estimator: .selfRating) { c in
            let rating: Completion
            do throws(ProviderError) {
                rating = try await provider.complete(PromptBuilder.selfRating(question: question, answer: c.text, model: settings.model))
            } catch {
                return (.unavailable(reason: "the AI could not rate its answer: \(error.description)"), nil, [:])
            }
            let text = rating.text.trimmingCharacters(in: .whitespacesAndNewlines)
            // Routing parses the text again and names the problem when it cannot be read.
            let measured = try? ConfidenceParser.parse(text).get()
            return (.selfRating(text), measured, ["self_rating": .string(String(text.prefix(200)))])
        }
    }

    private func selfConsistency(request: CompletionRequest, settings: RouteAISettings) async -> AnswerAttempt {
        let n = settings.samples
        var sampling = request
        sampling.temperature = settings.sampleTemperature
        let sampleRequest = sampling
        let provider = self.provider
        let width = min(n, maxConcurrentSamples)
        let results = await withTaskGroup(of: (Int, Result<Completion, ProviderError>).self) { group in
            var out: [(Int, Result<Completion, ProviderError>)] = []
            var next = 0
            // At most `width` samples in flight; start the next one as each finishes.
            while next < n || !group.isEmpty {
                while next < n && next - out.count < width {
                    let index = next
                    next += 1
                    group.addTask {
                        do throws(ProviderError) {
                            return (index, .success(try await provider.complete(sampleRequest)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                if let result = await group.next() { out.append(result) }
            }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let complete = results.compactMap { r -> Completion? in
            guard case .success(let c) = r, incomplete(c) == nil else { return nil }
            return c
        }
        let failures = results.compactMap { r -> ProviderError? in if case .failure(let e) = r { e } else { nil } }
        let voter = SelfConsistency(agreement: settings.agreement, threshold: settings.similarityThreshold)
        guard let vote = voter.vote(complete.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }, requested: n) else {
            if let error = failures.first { return failed(error, .selfConsistency) }
            return .unavailable("none of the \(n) AI samples was a complete answer", estimator: .selfConsistency)
        }
        var details: [String: JSONValue] = [
            "samples": .array(complete.map { .string(String($0.text.prefix(500))) }),
            "support": .array(vote.supports.map { .int(Int64($0)) }),
            "requested": .int(Int64(n)),
            "agreement": .string(settings.agreement.rawValue),
        ]
        if !failures.isEmpty { details["failed_samples"] = .int(Int64(failures.count)) }
        return AnswerAttempt(text: vote.answer, confidence: .score(vote.confidence), measured: vote.confidence, estimator: .selfConsistency,
                             details: .object(details), model: complete.first?.model)
    }

    private func logprobs(request: CompletionRequest, route: String, settings: RouteAISettings) async -> AnswerAttempt {
        guard provider.offersLogprobs else {
            return .unavailable(
                "route \(route) measures confidence with token log-probabilities, which the \(provider.name) provider does not return; use self_rating or self_consistency",
                estimator: .logprobs)
        }
        var withLogprobs = request
        withLogprobs.logprobs = true
        return await single(request: withLogprobs, estimator: .logprobs) { c in
            guard let lps = c.tokenLogprobs, let score = LogprobConfidence.confidence(lps, aggregate: settings.logprobAggregate) else {
                return (.unavailable(reason: "the AI server returned no token log-probabilities (does it support logprobs?)"), nil, [:])
            }
            return (.score(score), score, [
                "tokens": .int(Int64(lps.count)), "aggregate": .string(settings.logprobAggregate.rawValue),
                "min_probability": .double(LogprobConfidence.confidence(lps, aggregate: .min) ?? 0),
            ])
        }
    }
}
