import Foundation
import HandoffCore

// MARK: Records of the AI layer

package enum AIQuestionStatus: String, Hashable, Sendable, Codable {
    /// Waiting for the AI layer (or leased by one worker until `leaseUntil`).
    case pending
    /// Answered: routed to the user, a review queue or an escalation.
    case answered
    /// Could not be handled at all (e.g. its route was removed from the policy); `lastError` says why.
    case failed
}

/// A question a user asked the bot (a DM or a mention), waiting for the AI layer.
package struct AIQuestion: Hashable, Sendable {
    package var id: Int64
    /// The route to answer on; nil takes the configured chat route.
    package var route: String?
    package var query: String
    /// Where the answer goes back (an encoded chat conversation).
    package var origin: String?
    package var asker: ActorID?
    package var status: AIQuestionStatus
    package var attempts: Int
    package var leaseUntil: Date?
    package var createdAt: Date
    package var answeredAt: Date?
    package var lastError: String?
}

/// A question to record.
package struct AIQuestionDraft: Hashable, Sendable {
    package var route: String?
    package var query: String
    package var origin: String?
    package var asker: ActorID?

    package init(route: String? = nil, query: String, origin: String?, asker: ActorID?) {
        self.route = route
        self.query = query
        self.origin = origin
        self.asker = asker
    }
}

/// One AI answer as it was routed: the text, the raw confidence and how it was measured, the past
/// corrections the prompt carried as examples, and the entity the routing created.
package struct AIAnswerRecord: Hashable, Sendable {
    /// Assigned by the store on insert; nil on a draft.
    package var id: Int64?
    package var questionID: Int64?
    package var route: String
    package var query: String
    package var answer: String?
    /// The measured raw confidence; nil when none could be measured.
    package var confidence: Double?
    /// `self_rating`, `self_consistency`, `logprobs`, `caller`.
    package var estimator: String
    /// `auto_send`, `review` or `escalate`.
    package var decision: String
    package var reason: String?
    package var provider: String?
    package var model: String?
    /// The route's prompt version used, when one from the database was.
    package var promptVersion: Int?
    /// Corrections included in the prompt as examples.
    package var examples: [CorrectionID]
    /// What the estimator saw, as JSON text.
    package var details: String
    package var origin: String?
    package var reviewItem: ReviewItemID?
    package var escalation: EscalationID?
    package var feedback: FeedbackID?
    package var createdAt: Date

    package init(id: Int64? = nil, questionID: Int64?, route: String, query: String, answer: String?, confidence: Double?, estimator: String,
                 decision: String, reason: String?, provider: String?, model: String?, promptVersion: Int?, examples: [CorrectionID],
                 details: String, origin: String?, reviewItem: ReviewItemID? = nil, escalation: EscalationID? = nil,
                 feedback: FeedbackID? = nil, createdAt: Date)
    {
        self.id = id
        self.questionID = questionID
        self.route = route
        self.query = query
        self.answer = answer
        self.confidence = confidence
        self.estimator = estimator
        self.decision = decision
        self.reason = reason
        self.provider = provider
        self.model = model
        self.promptVersion = promptVersion
        self.examples = examples
        self.details = details
        self.origin = origin
        self.reviewItem = reviewItem
        self.escalation = escalation
        self.feedback = feedback
        self.createdAt = createdAt
    }
}

/// How a reviewer judged a routed answer.
package enum AIOutcomeVerdict: String, Hashable, Sendable, Codable, CaseIterable {
    /// Approved as it was: acceptable.
    case approved
    /// A reviewer wrote a corrected answer: not acceptable as it was.
    case corrected
    /// Rejected (or sent back) without a correction: not acceptable.
    case rejected
}

/// Why a judged answer was reviewed.
package enum AIOutcomeSource: String, Hashable, Sendable, Codable {
    /// Routed to review by its confidence (or a route in shadow mode): what calibration learns from.
    case review
    /// Sent to the user, then flagged 👎 by them: a biased sample (only unhappy users flag), so kept out of calibration.
    case flagged
}

/// One calibration data point: a routed answer with a raw confidence that a reviewer judged.
package struct AIOutcome: Hashable, Sendable {
    package var reviewItem: ReviewItemID
    package var route: String
    package var confidence: Double
    package var verdict: AIOutcomeVerdict
    package var estimator: String
    package var answerID: Int64?
    package var judgedBy: ActorID
    package var judgedAt: Date
    package var source: AIOutcomeSource

    package var acceptable: Bool { verdict == .approved }

    /// The 0.001-wide confidence bin calibration groups by (0…1000).
    package var bin: Int { Self.bin(confidence) }
    package static func bin(_ confidence: Double) -> Int { min(1000, max(0, Int((confidence * 1000).rounded(.down)))) }

    package init(reviewItem: ReviewItemID, route: String, confidence: Double, verdict: AIOutcomeVerdict, estimator: String, answerID: Int64?,
                 judgedBy: ActorID, judgedAt: Date, source: AIOutcomeSource = .review)
    {
        self.source = source
        self.reviewItem = reviewItem
        self.route = route
        self.confidence = confidence
        self.verdict = verdict
        self.estimator = estimator
        self.answerID = answerID
        self.judgedBy = judgedBy
        self.judgedAt = judgedAt
    }
}

/// Judged answers of one confidence bin.
package struct OutcomeCount: Hashable, Sendable {
    /// 0…1000: confidences in [bin/1000, (bin+1)/1000).
    package var bin: Int
    package var total: Int
    package var acceptable: Int

    package init(bin: Int, total: Int, acceptable: Int) {
        self.bin = bin
        self.total = total
        self.acceptable = acceptable
    }
}

/// A route threshold kept in the database (`handoff calibrate --apply`); it takes precedence over the
/// policy file's `routes.<name>.threshold`.
package struct RouteThresholdOverride: Hashable, Sendable {
    package var route: String
    package var threshold: Double
    package var targetError: Double?
    package var estimatedError: Double?
    package var outcomes: Int?
    package var appliedBy: ActorID
    package var appliedAt: Date

    package init(route: String, threshold: Double, targetError: Double?, estimatedError: Double?, outcomes: Int?, appliedBy: ActorID, appliedAt: Date) {
        self.route = route
        self.threshold = threshold
        self.targetError = targetError
        self.estimatedError = estimatedError
        self.outcomes = outcomes
        self.appliedBy = appliedBy
        self.appliedAt = appliedAt
    }
}

package enum PromptStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Suggested; waits for its approval.
    case proposed
    /// The route's system prompt now (one per route).
    case active
    /// Was active; replaced by a newer version.
    case superseded
    /// Its approval was rejected, expired or cancelled.
    case rejected
}

/// One version of a route's system prompt.
package struct PromptVersion: Hashable, Sendable {
    package var id: Int64
    package var route: String
    package var version: Int
    package var prompt: String
    package var status: PromptStatus
    package var approval: ApprovalID?
    /// Why it was written (the correction pattern it should prevent).
    package var reason: String?
    package var createdBy: ActorID
    package var createdAt: Date
    package var activatedAt: Date?
}

/// A prompt version to insert.
package struct PromptVersionDraft: Hashable, Sendable {
    package var route: String
    package var version: Int
    package var prompt: String
    package var status: PromptStatus
    package var approval: ApprovalID?
    package var reason: String?
    package var createdBy: ActorID
    package var createdAt: Date

    package init(route: String, version: Int, prompt: String, status: PromptStatus, approval: ApprovalID?, reason: String?, createdBy: ActorID,
                 createdAt: Date)
    {
        self.route = route
        self.version = version
        self.prompt = prompt
        self.status = status
        self.approval = approval
        self.reason = reason
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

/// The AI layer's writes that ride in the same transaction as a workflow change set.
package struct AIChanges: Sendable {
    package var answers: [AIAnswerRecord] = []
    /// Questions that move from pending to answered; a question already answered fails the transaction (conflict).
    package var answeredQuestions: [Int64] = []
    package var outcomes: [AIOutcome] = []
    package var thresholds: [RouteThresholdOverride] = []
    package var clearedThresholds: [String] = []
    package var newPrompts: [PromptVersionDraft] = []
    /// Compare-and-set status changes of prompt versions.
    package var promptTransitions: [(id: Int64, from: PromptStatus, to: PromptStatus)] = []
    /// Auto-sent answers whose 👍/👎 was looked at, with the review item a 👎 opened.
    package var followUps: [(answer: Int64, reviewItem: ReviewItemID?)] = []

    package init() {}

    package var isEmpty: Bool {
        answers.isEmpty && answeredQuestions.isEmpty && outcomes.isEmpty && thresholds.isEmpty && clearedThresholds.isEmpty
            && newPrompts.isEmpty && promptTransitions.isEmpty && followUps.isEmpty
    }
}

// MARK: SQL

extension SQLWorkflowStore {
    /// Commits a workflow change set and the AI layer's writes in one transaction.
    package func commit(_ changes: ChangeSet, ai: AIChanges, now: Date) async throws {
        guard !changes.isEmpty || !ai.isEmpty else { return }
        _ = try await database.write(ChangeSetPlanner.steps(for: changes, now: now) + Self.steps(for: ai, now: now))
    }

    static func steps(for ai: AIChanges, now: Date) -> [WriteStep] {
        var steps: [WriteStep] = []
        for id in ai.answeredQuestions {
            steps.append(WriteStep(SQLStatement(
                "UPDATE ai_questions SET status = 'answered', answered_at = ?, lease_until = NULL WHERE id = ? AND status = 'pending'",
                [SQLValue(now), .integer(id)]),
                expect: .exactlyOne(.conflict("question #\(id) (already answered)"))))
        }
        for a in ai.answers {
            let examples = "[" + a.examples.map { String($0.rawValue) }.joined(separator: ",") + "]"
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO ai_answers (question_id, route, query, answer, confidence, estimator, decision, reason, provider, model,
                    prompt_version, examples, details, origin, review_item_id, escalation_id, feedback_id, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [SQLValue(a.questionID), .text(a.route), .text(a.query), SQLValue(a.answer), a.confidence.map(SQLValue.real) ?? .null,
                 .text(a.estimator), .text(a.decision), SQLValue(a.reason), SQLValue(a.provider), SQLValue(a.model),
                 SQLValue(a.promptVersion.map(Int64.init)), .text(examples), .text(a.details), SQLValue(a.origin),
                 SQLValue(a.reviewItem?.rawValue), SQLValue(a.escalation?.rawValue), SQLValue(a.feedback?.rawValue), SQLValue(a.createdAt)]),
                expect: .exactlyOne(.uniqueViolation("an answer to question #\(a.questionID ?? 0)"))))
        }
        for o in ai.outcomes {
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO ai_outcomes (review_item_id, route, confidence, confidence_bin, acceptable, verdict, estimator, source, answer_id,
                    judged_by, judged_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                [.integer(o.reviewItem.rawValue), .text(o.route), .real(o.confidence), SQLValue(o.bin), SQLValue(o.acceptable),
                 .text(o.verdict.rawValue), .text(o.estimator), .text(o.source.rawValue), SQLValue(o.answerID), .text(o.judgedBy.rawValue),
                 SQLValue(o.judgedAt)])))
        }
        for (answer, item) in ai.followUps {
            steps.append(WriteStep(SQLStatement(
                "UPDATE ai_answers SET followed_up = 1, review_item_id = COALESCE(?, review_item_id) WHERE id = ? AND followed_up = 0",
                [SQLValue(item?.rawValue), .integer(answer)]),
                expect: .exactlyOne(.conflict("answer #\(answer) (already followed up)"))))
        }
        for t in ai.thresholds {
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO ai_route_thresholds (route, threshold, target_error, estimated_error, outcomes, applied_by, applied_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (route) DO UPDATE SET threshold = excluded.threshold, target_error = excluded.target_error,
                    estimated_error = excluded.estimated_error, outcomes = excluded.outcomes, applied_by = excluded.applied_by,
                    applied_at = excluded.applied_at
                """,
                [.text(t.route), .real(t.threshold), t.targetError.map(SQLValue.real) ?? .null, t.estimatedError.map(SQLValue.real) ?? .null,
                 SQLValue(t.outcomes.map(Int64.init)), .text(t.appliedBy.rawValue), SQLValue(t.appliedAt)])))
        }
        for route in ai.clearedThresholds {
            steps.append(WriteStep(SQLStatement("DELETE FROM ai_route_thresholds WHERE route = ?", [.text(route)])))
        }
        for (id, from, to) in ai.promptTransitions {
            steps.append(WriteStep(SQLStatement(
                "UPDATE ai_prompts SET status = ?, activated_at = CASE WHEN ? = 'active' THEN ? ELSE activated_at END WHERE id = ? AND status = ?",
                [.text(to.rawValue), .text(to.rawValue), SQLValue(now), .integer(id), .text(from.rawValue)]),
                expect: .exactlyOne(.conflict("prompt version #\(id) (no longer \(from.rawValue))"))))
        }
        for p in ai.newPrompts {
            steps.append(WriteStep(SQLStatement(
                """
                INSERT INTO ai_prompts (route, version, prompt, status, approval_id, reason, created_by, created_at, activated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                [.text(p.route), SQLValue(p.version), .text(p.prompt), .text(p.status.rawValue), SQLValue(p.approval?.rawValue), SQLValue(p.reason),
                 .text(p.createdBy.rawValue), SQLValue(p.createdAt), p.status == .active ? SQLValue(p.createdAt) : .null]),
                expect: .exactlyOne(.conflict("prompt version \(p.version) of route \(p.route) (already exists)"))))
        }
        return steps
    }

    // MARK: Questions

    private static let questionColumns = "id, route, query, origin, asker, status, attempts, lease_until, created_at, answered_at, last_error"

    private func decodeQuestion(_ row: SQLRow) throws -> AIQuestion {
        guard let status = AIQuestionStatus(rawValue: try row.string("status")) else { throw StoreError.corrupt("ai_questions status") }
        return AIQuestion(
            id: try row.int("id"), route: row["route"].string, query: try row.string("query"), origin: row["origin"].string,
            asker: row["asker"].string.map { ActorID($0) }, status: status, attempts: Int(try row.int("attempts")),
            leaseUntil: row.optionalDate("lease_until"), createdAt: try row.date("created_at"), answeredAt: row.optionalDate("answered_at"),
            lastError: row["last_error"].string)
    }

    /// Records a question; with an event key, in the same transaction as the key (a redelivery throws
    /// ``StoreError/duplicate`` and records nothing).
    package func insertQuestion(_ draft: AIQuestionDraft, eventKey: EventKey?, now: Date) async throws -> AIQuestion {
        let insert = WriteStep(SQLStatement(
            "INSERT INTO ai_questions (route, query, origin, asker, status, attempts, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?) RETURNING id",
            [SQLValue(draft.route), .text(draft.query), SQLValue(draft.origin), SQLValue(draft.asker?.rawValue), SQLValue(now)]),
            expect: .exactlyOne(.conflict("question insert")))
        let results = try await database.write(ChangeSetPlanner.steps(for: ChangeSet(eventKey: eventKey), now: now) + [insert])
        guard let id = results.last?.rows.first?["id"].int else { throw StoreError.corrupt("ai_questions insert returned no id") }
        return AIQuestion(id: id, route: draft.route, query: draft.query, origin: draft.origin, asker: draft.asker, status: .pending, attempts: 0,
                          leaseUntil: nil, createdAt: now, answeredAt: nil, lastError: nil)
    }

    package func question(_ id: Int64) async throws -> AIQuestion? {
        try await database.read("SELECT \(Self.questionColumns) FROM ai_questions WHERE id = ?", [.integer(id)]).first.map(decodeQuestion)
    }

    /// Pending questions nobody holds a lease on, oldest first.
    package func pendingQuestions(now: Date, limit: Int) async throws -> [AIQuestion] {
        try await database.read(
            """
            SELECT \(Self.questionColumns) FROM ai_questions
            WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?
            """, [SQLValue(now), SQLValue(max(1, min(limit, 500)))]
        ).map(decodeQuestion)
    }

    /// Takes a question for one worker until `until`; false when another worker holds it or it is answered.
    package func leaseQuestion(_ id: Int64, until: Date, now: Date) async throws -> Bool {
        let r = try await database.write([WriteStep(SQLStatement(
            "UPDATE ai_questions SET lease_until = ? WHERE id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)",
            [SQLValue(until), .integer(id), SQLValue(now)]))])
        return (r.first?.changes ?? 0) == 1
    }

    /// Counts a failed attempt; the question waits until `retryAt` (or ends as failed).
    package func questionAttemptFailed(_ id: Int64, error: String, retryAt: Date?) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            """
            UPDATE ai_questions SET attempts = attempts + 1, last_error = ?, lease_until = ?,
                status = CASE WHEN ? = 1 THEN 'failed' ELSE status END
            WHERE id = ? AND status = 'pending'
            """,
            [.text(String(error.prefix(1000))), SQLValue(retryAt), SQLValue(retryAt == nil), .integer(id)]))])
    }

    // MARK: Answers

    private func decodeAnswer(_ row: SQLRow) throws -> AIAnswerRecord {
        let examplesText = try row.string("examples")
        let examples = examplesText.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: ",")
            .compactMap { Int64($0.trimmingCharacters(in: .whitespaces)) }.map { CorrectionID($0) }
        return AIAnswerRecord(
            id: try row.int("id"), questionID: row["question_id"].int, route: try row.string("route"), query: try row.string("query"),
            answer: row["answer"].string, confidence: row["confidence"].double, estimator: try row.string("estimator"),
            decision: try row.string("decision"), reason: row["reason"].string, provider: row["provider"].string, model: row["model"].string,
            promptVersion: row["prompt_version"].int.map(Int.init), examples: examples, details: try row.string("details"),
            origin: row["origin"].string, reviewItem: row["review_item_id"].int.map { ReviewItemID($0) },
            escalation: row["escalation_id"].int.map { EscalationID($0) }, feedback: row["feedback_id"].int.map { FeedbackID($0) },
            createdAt: try row.date("created_at"))
    }

    package func aiAnswer(id: Int64) async throws -> AIAnswerRecord? {
        try await database.read("SELECT * FROM ai_answers WHERE id = ?", [.integer(id)]).first.map(decodeAnswer)
    }

    package func aiAnswer(reviewItem: ReviewItemID) async throws -> AIAnswerRecord? {
        try await database.read("SELECT * FROM ai_answers WHERE review_item_id = ? ORDER BY id DESC LIMIT 1",
                                [.integer(reviewItem.rawValue)]).first.map(decodeAnswer)
    }

    package func aiAnswer(question: Int64) async throws -> AIAnswerRecord? {
        try await database.read("SELECT * FROM ai_answers WHERE question_id = ?", [.integer(question)]).first.map(decodeAnswer)
    }

    /// A route's answers (or every route's), newest first, one page before the cursor.
    package func aiAnswers(route: String?, limit: Int, before: Int64?) async throws -> [AIAnswerRecord] {
        var clauses: [String] = []
        var binds: [SQLValue] = []
        if let route {
            clauses.append("route = ?")
            binds.append(.text(route))
        }
        if let before {
            clauses.append("id < ?")
            binds.append(.integer(before))
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try await database.read("SELECT * FROM ai_answers \(filter) ORDER BY id DESC LIMIT ?",
                                       binds + [SQLValue(max(1, min(limit, 500)))]).map(decodeAnswer)
    }

    /// Auto-sent answers whose 👍/👎 prompt was answered or expired and not looked at yet, oldest first.
    package func answersWithClosedFeedback(limit: Int) async throws -> [AIAnswerRecord] {
        try await database.read(
            """
            SELECT a.* FROM ai_answers a
            WHERE a.feedback_id IS NOT NULL AND a.followed_up = 0
              AND EXISTS (SELECT 1 FROM feedback f WHERE f.id = a.feedback_id AND f.status <> 'open')
            ORDER BY a.id LIMIT ?
            """, [SQLValue(max(1, min(limit, 500)))]
        ).map(decodeAnswer)
    }

    // MARK: Outcomes and thresholds

    /// A route's judged answers per 0.001 confidence bin (at most 1,001 rows, however many outcomes);
    /// only answers routed to review (flagged ones are a biased sample).
    package func outcomeCounts(route: String, estimator: String?) async throws -> [OutcomeCount] {
        let filter = estimator == nil ? "" : "AND estimator = ?"
        let binds: [SQLValue] = [.text(route)] + (estimator.map { [.text($0)] } ?? [])
        return try await database.read(
            """
            SELECT confidence_bin, COUNT(*) AS n, SUM(acceptable) AS ok FROM ai_outcomes
            WHERE route = ? AND source = 'review' \(filter) GROUP BY confidence_bin ORDER BY confidence_bin
            """, binds
        ).map { OutcomeCount(bin: Int(try $0.int("confidence_bin")), total: Int(try $0.int("n")), acceptable: Int($0["ok"].int ?? 0)) }
    }

    /// How many outcomes a route has per estimator.
    package func outcomeEstimators(route: String) async throws -> [(estimator: String, count: Int)] {
        try await database.read(
            "SELECT estimator, COUNT(*) AS n FROM ai_outcomes WHERE route = ? AND source = 'review' GROUP BY estimator ORDER BY estimator", [.text(route)]
        ).map { (try $0.string("estimator"), Int(try $0.int("n"))) }
    }

    /// Routes that have outcomes.
    package func outcomeRoutes() async throws -> [String] {
        try await database.read("SELECT DISTINCT route FROM ai_outcomes ORDER BY route").compactMap { $0["route"].string }
    }

    private func decodeThreshold(_ row: SQLRow) throws -> RouteThresholdOverride {
        RouteThresholdOverride(
            route: try row.string("route"), threshold: row["threshold"].double ?? 1, targetError: row["target_error"].double,
            estimatedError: row["estimated_error"].double, outcomes: row["outcomes"].int.map(Int.init),
            appliedBy: ActorID(try row.string("applied_by")), appliedAt: try row.date("applied_at"))
    }

    package func routeThreshold(_ route: String) async throws -> RouteThresholdOverride? {
        try await database.read("SELECT * FROM ai_route_thresholds WHERE route = ?", [.text(route)]).first.map(decodeThreshold)
    }

    package func routeThresholds() async throws -> [RouteThresholdOverride] {
        try await database.read("SELECT * FROM ai_route_thresholds ORDER BY route").map(decodeThreshold)
    }

    // MARK: Prompt versions

    private func decodePrompt(_ row: SQLRow) throws -> PromptVersion {
        guard let status = PromptStatus(rawValue: try row.string("status")) else { throw StoreError.corrupt("ai_prompts status") }
        return PromptVersion(
            id: try row.int("id"), route: try row.string("route"), version: Int(try row.int("version")), prompt: try row.string("prompt"),
            status: status, approval: row["approval_id"].int.map { ApprovalID($0) }, reason: row["reason"].string,
            createdBy: ActorID(try row.string("created_by")), createdAt: try row.date("created_at"), activatedAt: row.optionalDate("activated_at"))
    }

    /// A route's prompt versions (or every route's), newest first.
    package func promptVersions(route: String?, limit: Int) async throws -> [PromptVersion] {
        let filter = route == nil ? "" : "WHERE route = ?"
        let binds: [SQLValue] = (route.map { [.text($0)] } ?? []) + [SQLValue(max(1, min(limit, 500)))]
        return try await database.read("SELECT * FROM ai_prompts \(filter) ORDER BY id DESC LIMIT ?", binds).map(decodePrompt)
    }

    package func activePrompt(route: String) async throws -> PromptVersion? {
        try await database.read("SELECT * FROM ai_prompts WHERE route = ? AND status = 'active'", [.text(route)]).first.map(decodePrompt)
    }

    /// Versions waiting for their approval, oldest first.
    package func proposedPrompts(limit: Int) async throws -> [PromptVersion] {
        try await database.read("SELECT * FROM ai_prompts WHERE status = 'proposed' ORDER BY id LIMIT ?", [SQLValue(max(1, min(limit, 500)))])
            .map(decodePrompt)
    }

    package func prompt(approval: ApprovalID) async throws -> PromptVersion? {
        try await database.read("SELECT * FROM ai_prompts WHERE approval_id = ?", [.integer(approval.rawValue)]).first.map(decodePrompt)
    }

    /// The next free version number of a route's prompt.
    package func nextPromptVersion(route: String) async throws -> Int {
        Int(try await database.scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM ai_prompts WHERE route = ?", [.text(route)]))
    }
}
