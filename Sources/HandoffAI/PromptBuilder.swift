import Foundation
import HandoffCore

/// A past correction shown to the model as an example.
package struct PromptExample: Hashable, Sendable {
    package var correctionID: Int64
    package var question: String
    package var wrongAnswer: String
    package var correctedAnswer: String

    package init(correctionID: Int64, question: String, wrongAnswer: String, correctedAnswer: String) {
        self.correctionID = correctionID
        self.question = question
        self.wrongAnswer = wrongAnswer
        self.correctedAnswer = correctedAnswer
    }
}

/// The prompts Handoff sends. Kept in one place so tests and reviewers can read exactly what the
/// model is told.
package enum PromptBuilder {
    /// Used when neither the database nor the policy file gives a route a system prompt.
    package static let defaultSystemPrompt = """
        You answer questions from the users of our product. Answer accurately and concisely. \
        If you are not sure, say so plainly instead of guessing.
        """

    /// Longest example text quoted into a prompt.
    static let maxExampleLength = 1500

    /// The route's instructions plus similar past corrections as examples, so a corrected mistake is
    /// not repeated.
    package static func system(base: String, examples: [PromptExample]) -> String {
        guard !examples.isEmpty else { return base }
        var out = base.trimmingCharacters(in: .whitespacesAndNewlines)
        out += "\n\nReviewers corrected earlier answers to similar questions. Follow the corrected answers and do not repeat the mistakes:"
        for (i, e) in examples.enumerated() {
            out += "\n\nExample \(i + 1)\nQuestion: \(cut(e.question))\nEarlier answer (wrong): \(cut(e.wrongAnswer))\nCorrected answer: \(cut(e.correctedAnswer))"
        }
        return out
    }

    /// The second call of the self-rating estimator.
    package static func selfRating(question: String, answer: String, model: String?) -> CompletionRequest {
        CompletionRequest(
            system: "You grade answers. You reply with a single probability and nothing else.",
            messages: [.user("""
                Question:
                \(question)

                Proposed answer:
                \(answer)

                How likely is it that the proposed answer is correct and complete? Reply with only a probability between 0 and 1, for example 0.85.
                """)],
            maxTokens: 16, temperature: 0, model: model)
    }

    /// Asks for a system prompt that would prevent a correction pattern.
    package static func suggestion(route: String, currentPrompt: String, pattern: String, examples: [PromptExample]) -> CompletionRequest {
        var text = """
            The assistant for the route "\(route)" follows this system prompt:
            <<<
            \(currentPrompt)
            >>>

            Reviewers keep correcting its answers in the same way: \(pattern). Examples:
            """
        for (i, e) in examples.enumerated() {
            text += "\n\n\(i + 1). Question: \(cut(e.question))\n   Answer given: \(cut(e.wrongAnswer))\n   Corrected to: \(cut(e.correctedAnswer))"
        }
        text += """


            Write a revised system prompt that keeps everything still right in the current one and adds the \
            instruction that prevents this mistake. Reply with only the complete new system prompt, without commentary.
            """
        return CompletionRequest(system: "You improve the instructions of AI assistants. You reply with only the revised instructions.",
                                 messages: [.user(text)], maxTokens: 2048, temperature: 0)
    }

    /// Removes a Markdown code fence or `<<< >>>` wrapper the model may have put around its reply.
    package static func unwrap(_ reply: String) -> String {
        var text = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("```") {
            text = String(text.drop { $0 != "\n" }.dropFirst())
            if text.hasSuffix("```") { text = String(text.dropLast(3)) }
        }
        if text.hasPrefix("<<<") && text.hasSuffix(">>>") { text = String(text.dropFirst(3).dropLast(3)) }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func cut(_ s: String) -> String {
        s.count > maxExampleLength ? String(s.prefix(maxExampleLength)) + "…" : s
    }
}
