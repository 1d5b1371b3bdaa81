import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import ServiceLifecycle

/// Answers the questions users ask in chat, a few at a time, and applies approved system-prompt changes.
///
/// Questions are durable rows: each is leased to one worker while the provider answers (a crash lets
/// the lease lapse and another attempt take it), and its answer, routing and completion commit in one
/// transaction. A provider failure is not a failure here: the question goes to a person with the reason.
/// Failures of the store are retried with backoff; a question that cannot be routed at all ends as failed.
package final class AnsweringService: Service, Sendable {
    package struct Configuration: Sendable {
        /// How often pending questions are looked for when no commit wakes the service.
        package var pollInterval: Duration = .milliseconds(200)
        /// Questions answered at once.
        package var concurrency = 2
        package var batch = 20
        /// How long one worker holds a question (longer than a provider call with its retries).
        package var lease: Span = .minutes(5)
        /// Attempts before a question that keeps failing is given to a person without an AI answer.
        package var maxAttempts = 5

        package init() {}
    }

    package let pipeline: AnsweringPipeline
    let configuration: Configuration
    let logger: Logger
    private let wake = WakeSignal()

    package init(pipeline: AnsweringPipeline, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "handoff.ai.answering")) {
        self.pipeline = pipeline
        self.configuration = configuration
        self.logger = logger
    }

    var workflow: Workflow { pipeline.workflow }

    package func run() async throws {
        // Any commit may be a decided prompt approval or a new question: look again at once.
        let token = workflow.addListener { [wake] _ in wake.signal() }
        defer { workflow.removeListener(token) }
        // Graceful shutdown stops taking questions; the ones in hand finish (their answers are routed, not lost).
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                var busy = false
                do {
                    let applied = try await self.workflow.applyApprovedPrompts()
                    for p in applied.activated { self.logger.notice("route \(p.route) now answers with system prompt version \(p.version)") }
                    for item in try await self.workflow.followUpAnswerFeedback() {
                        self.logger.info("an answer the user rated 👎 went to review", metadata: ["review_item": "\(item.id)"])
                    }
                    busy = try await self.processPending() >= self.configuration.batch
                } catch is CancellationError {
                    break
                } catch {
                    if Task.isCancelled { break }
                    self.logger.error("answering round failed", metadata: ["error": "\(error)"])
                }
                if !busy { await self.wake.wait(timeout: self.configuration.pollInterval) }
            }
        } onGracefulShutdown: { [wake] in
            wake.signal()
        }
        logger.info("answering service stopped")
    }

    /// Answers one batch of pending questions, `concurrency` at a time; returns how many it took.
    @discardableResult
    package func processPending() async throws -> Int {
        guard !Task.isShuttingDownGracefully else { return 0 }
        let questions = try await workflow.store.pendingQuestions(now: workflow.clock.now(), limit: configuration.batch)
        guard !questions.isEmpty else { return 0 }
        await withTaskGroup(of: Void.self) { group in
            var next = 0
            var running = 0
            while next < questions.count || running > 0 {
                while next < questions.count && running < max(1, configuration.concurrency) {
                    let question = questions[next]
                    next += 1
                    running += 1
                    group.addTask { await self.process(question) }
                }
                if await group.next() != nil { running -= 1 }
            }
        }
        return questions.count
    }

    private func process(_ question: AIQuestion) async {
        let store = workflow.store
        let now = workflow.clock.now()
        do {
            guard try await store.leaseQuestion(question.id, until: now + configuration.lease, now: now) else { return }
        } catch {
            logger.warning("could not lease a question", metadata: ["question": "\(question.id)", "error": "\(error)"])
            return
        }
        do {
            let result = try await pipeline.answer(question)
            var metadata: Logger.Metadata = [
                "question": "\(question.id)", "route": "\(result.answer.route)", "decision": "\(result.decision.name)",
                "confidence": "\(result.answer.confidence.map { String(format: "%.2f", $0) } ?? "-")",
            ]
            if let reason = result.answer.reason { metadata["reason"] = "\(reason)" }
            if result.answer.answer == nil {
                // No AI answer (a refused key, a provider outage): the operator needs to see why.
                logger.warning("question sent to people without an AI answer", metadata: metadata)
            } else {
                logger.info("question answered", metadata: metadata)
            }
        } catch let error as WorkflowError where error.code == .conflict {
            logger.debug("question already answered elsewhere", metadata: ["question": "\(question.id)"])
        } catch let error as WorkflowError where error.code == .invalid {
            // e.g. the route was removed from the policy: retrying cannot help.
            logger.error("a question cannot be routed", metadata: ["question": "\(question.id)", "error": "\(error.message)"])
            try? await workflow.failQuestion(question.id, error: error.message)
        } catch {
            await failed(question, error: error)
        }
    }

    /// A failed attempt: try again later with backoff; after the last attempt, send it to a person
    /// without an AI answer (and if even that fails, mark it failed).
    private func failed(_ question: AIQuestion, error: any Error) async {
        let attempts = question.attempts + 1
        let store = workflow.store
        if error is CancellationError || Task.isCancelled {
            // Stopped mid-answer: another run picks it up again; a person is not bothered for it.
            try? await store.questionAttemptFailed(question.id, error: "interrupted", retryAt: workflow.clock.now())
            return
        }
        if attempts < configuration.maxAttempts {
            let wait = min(300, pow(2, Double(attempts)))
            logger.warning("answering a question failed; retrying", metadata: ["question": "\(question.id)", "error": "\(error)", "in_s": "\(wait)"])
            try? await store.questionAttemptFailed(question.id, error: "\(error)", retryAt: workflow.clock.now().addingTimeInterval(wait))
            return
        }
        let route = question.route ?? pipeline.policy.chatRoute
        do {
            _ = try await workflow.completeQuestion(question, route: route, draft: Workflow.AnswerDraft(
                text: nil, confidence: .unavailable(reason: "the question could not be answered automatically: \(error)"), measured: nil,
                estimator: pipeline.policy.settings(for: route).estimator.rawValue))
        } catch {
            logger.error("giving up on a question", metadata: ["question": "\(question.id)", "error": "\(error)"])
            try? await workflow.failQuestion(question.id, error: "\(error)")
        }
    }
}
